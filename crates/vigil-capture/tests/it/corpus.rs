//! Reading the public captures in `../shared/corpus` where they are (never copied).
//!
//! `VIGIL_CORPUS` overrides the location; when the corpus is absent these tests print a
//! loud SKIP and pass, unless `VIGIL_CORPUS_REQUIRED=1`, which makes absence a failure.

use std::io::Write;
use std::path::PathBuf;

use vigil_capture::{CaptureFormat, CaptureReader};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS").map_or_else(
        || {
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
                .join("../../../shared/corpus")
        },
        PathBuf::from,
    );
    if dir.join("pcaps").is_dir() {
        return Some(dir.join("pcaps"));
    }
    if std::env::var("VIGIL_CORPUS_REQUIRED").as_deref() == Ok("1") {
        panic!("VIGIL_CORPUS_REQUIRED=1 but no corpus at {}", dir.display());
    }
    // Written straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIP: pcap corpus not found at {} (set VIGIL_CORPUS); corpus tests did not run ***\n",
        dir.display()
    );
    None
}

/// (file, packets per the MANIFEST, link type of the first packet).
const FILES: [(&str, u64, u32); 45] = [
    ("cs-synscan.pcapng", 2011, 1),
    ("cs-activeosfingerprinting.pcapng", 48, 1),
    ("stopddos-pkt.TCP.synflood.spoofed.pcap", 37841, 1),
    ("sv-tcp-session-syn-flood.pcap", 200, 1),
    ("cce15-icmp_flood.pcap", 24327, 1),
    ("cs-arppoison.pcapng", 165, 1),
    ("cce15-dns_poisning.pcap", 634, 113),
    ("zeek-dns-two-responses.pcap", 3, 1),
    ("dmachard-iodine.pcap", 24, 1),
    ("dmachard-dnscat2.pcap", 24, 1),
    ("dmachard-dnsextrator.pcap", 28, 1),
    ("cs-ppa1e-covertinfo.pcap", 2, 1),
    ("zeek-ftp-bruteforce.pcap", 606, 1),
    ("cs-ppa1e-ftp-crack.pcap", 19730, 1),
    ("zeek-ssh-sshguess.pcap", 431, 1),
    ("cs-ppa1e-ftp.pcap", 38, 1),
    ("cs-ppa1e-telnet.pcap", 92, 1),
    ("zeek-http-basic-auth.pcap", 38, 1),
    ("zeek-http-basic-auth-rawip4.pcap", 12, 228),
    ("sv-pop3-user-pass.pcap", 50, 1),
    ("sv-imap-login.pcap", 106, 1),
    ("zeek-redis-auth-null-loopback.pcap", 12, 0),
    ("sv-smb1_osx.pcap", 79, 1),
    ("sv-snmpv2c-get.pcap", 8, 1),
    ("zeek-tls-sslv2.pcap", 25, 1),
    ("zeek-tls1_0-rc4-md5.pcap", 252, 1),
    ("zeek-tls-tls1_1.pcap", 23, 1),
    ("zeek-tls-expired-cert.pcap", 49, 1),
    ("sv-tls-pre-1970.pcap", 17, 101),
    ("cs-ppa1e-blaster.pcap", 18, 1),
    ("zeek-rfb-vnc-scanner.pcap", 20, 1),
    ("zeek-http-get-to-ssh-server-nsec.pcap", 9, 1),
    ("sv-arp-vlan-stacked.pcap", 3, 1),
    ("zeek-q-in-q.pcap", 5, 1),
    ("cs-ppa1e-ipfragments.pcap", 24, 1),
    ("cs-ipv6_fragments.pcapng", 22, 1),
    ("zeek-trunc-ip4-snaplen.pcap", 1, 1),
    ("dpkt-truncated_dns_2-cutshort.pcap", 1, 1),
    ("sv-decode-too-small.pcap", 8, 1),
    ("zeek-chksum-ip4-tcp-bad.pcap", 1, 1),
    ("zeek-pcapng-multi-interface.pcapng", 6, 1),
    ("zeek-linuxsll-arp.pcap", 12, 113),
    ("zeek-linux-sll2.pcap", 6, 276),
    ("zeek-radiotap-80211.pcap", 3, 127),
    ("sv-nfs3-bigendian.pcap", 128, 1),
];

struct Summary {
    packets: u64,
    first_link: u32,
    first_ts: i64,
    last_ts: i64,
    truncated: bool,
    format: CaptureFormat,
    bytes: u64,
}

fn summarize(mut r: CaptureReader<impl std::io::Read>) -> Summary {
    let mut s = Summary {
        packets: 0,
        first_link: u32::MAX,
        first_ts: 0,
        last_ts: 0,
        truncated: false,
        format: r.format(),
        bytes: 0,
    };
    while let Some(p) = r.next_packet().unwrap() {
        if s.packets == 0 {
            s.first_link = p.link_type;
            s.first_ts = p.ts_nanos;
        }
        s.last_ts = p.ts_nanos;
        s.packets += 1;
        assert!(p.data.len() as u64 <= u64::from(p.orig_len).max(p.data.len() as u64));
    }
    s.truncated = r.truncated();
    s.bytes = r.bytes_read();
    s
}

#[test]
fn packet_counts_match_the_manifest() {
    let Some(dir) = corpus() else { return };
    for (name, count, link) in FILES {
        let path = dir.join(name);
        let s = summarize(CaptureReader::open(&path).unwrap());
        assert_eq!(s.packets, count, "{name}");
        assert_eq!(s.first_link, link, "{name}");
        let cut = name.starts_with("dpkt-truncated");
        assert_eq!(s.truncated, cut, "{name}: truncated flag");
        if !cut {
            assert_eq!(s.bytes, std::fs::metadata(&path).unwrap().len(), "{name}: bytes read");
        }
    }
}

#[test]
fn formats_byte_orders_and_timestamps() {
    let Some(dir) = corpus() else { return };
    let open = |n: &str| summarize(CaptureReader::open(dir.join(n)).unwrap());
    let ns = open("zeek-http-get-to-ssh-server-nsec.pcap");
    assert!(matches!(ns.format, CaptureFormat::Pcap { nanos: true, big_endian: false, .. }));
    assert_eq!(ns.last_ts - ns.first_ts, 309_251_000, "MANIFEST duration 0.309251000 s");
    let be = open("sv-nfs3-bigendian.pcap");
    assert!(matches!(be.format, CaptureFormat::Pcap { nanos: false, big_endian: true, .. }));
    let ng = open("zeek-pcapng-multi-interface.pcapng");
    assert_eq!(ng.format, CaptureFormat::PcapNg);
    let dur = (ng.last_ts - ng.first_ts) as f64 / 1e9;
    assert!((dur - 347.64).abs() < 0.01, "MANIFEST duration 347.64 s, got {dur}");
    let syn = open("cs-synscan.pcapng");
    let dur = (syn.last_ts - syn.first_ts) as f64 / 1e9;
    assert!((dur - 23.09).abs() < 0.01, "{dur}");
    // Timestamps are Unix nanoseconds: the SLL2 capture is from August 2022.
    let sll2 = open("zeek-linux-sll2.pcap");
    assert_eq!(sll2.first_ts / 1_000_000_000, 1_660_534_249);
}

#[test]
fn multi_interface_pcapng_reports_its_interfaces() {
    let Some(dir) = corpus() else { return };
    let mut r = CaptureReader::open(dir.join("zeek-pcapng-multi-interface.pcapng")).unwrap();
    let mut ifaces = std::collections::BTreeSet::new();
    while let Some(p) = r.next_packet().unwrap() {
        ifaces.insert(p.interface);
    }
    assert_eq!(ifaces.len(), 2);
    assert_eq!(r.interfaces().len(), 2);
}

#[test]
fn truncated_file_ends_with_a_warning_not_an_error() {
    let Some(dir) = corpus() else { return };
    let mut r = CaptureReader::open(dir.join("dpkt-truncated_dns_2-cutshort.pcap")).unwrap();
    assert!(r.next_packet().unwrap().is_some());
    assert!(r.next_packet().unwrap().is_none());
    assert!(r.truncated());
    assert!(r.next_packet().unwrap().is_none());
}

#[test]
fn gzip_of_a_corpus_file_reads_the_same() {
    let Some(dir) = corpus() else { return };
    for name in ["cs-synscan.pcapng", "sv-nfs3-bigendian.pcap", "cce15-icmp_flood.pcap"] {
        let raw = std::fs::read(dir.join(name)).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw).unwrap();
        let gz = enc.finish().unwrap();
        let plain = summarize(CaptureReader::new(&raw[..], name).unwrap());
        let r = CaptureReader::new(&gz[..], format!("{name}.gz")).unwrap();
        assert!(r.compressed());
        let packed = summarize(r);
        assert_eq!(
            (plain.packets, plain.first_ts, plain.last_ts),
            (packed.packets, packed.first_ts, packed.last_ts),
            "{name}"
        );
    }
}
