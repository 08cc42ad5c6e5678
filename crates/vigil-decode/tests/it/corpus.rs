//! Decoding the public captures in `../shared/corpus` (read where they are, never copied).
//!
//! `VIGIL_CORPUS` overrides the location; when the corpus is absent these tests print a
//! loud SKIP and pass, unless `VIGIL_CORPUS_REQUIRED=1`, which makes absence a failure.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use vigil_capture::CaptureReader;
use vigil_decode::cleartext::{self, AuthCommand, Protocol};
use vigil_decode::{Anomalies, LinkType, Outcome, Packet, Transport, decode, dns, http, telnet, tls};

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

/// Every packet of a corpus file: (timestamp ns, link type, bytes).
fn packets(name: &str) -> Option<Vec<(i64, u32, Vec<u8>)>> {
    let path = corpus()?.join(name);
    let mut r = CaptureReader::open(&path).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        v.push((p.ts_nanos, p.link_type, p.data.to_vec()));
    }
    Some(v)
}

fn each_packet(name: &str, mut f: impl FnMut(&Packet<'_>)) -> bool {
    let Some(pkts) = packets(name) else {
        return false;
    };
    for (_, lt, data) in &pkts {
        let p = decode(LinkType(*lt), data).unwrap();
        f(&p);
    }
    true
}

type FlowKey = (IpAddr, u16, IpAddr, u16);

/// The TCP payload of every direction of every connection, in sequence order
/// (retransmissions dropped).
fn tcp_streams(name: &str) -> Option<HashMap<FlowKey, Vec<u8>>> {
    let mut segs: HashMap<FlowKey, BTreeMap<u32, Vec<u8>>> = HashMap::new();
    let ok = each_packet(name, |p| {
        if let (Some(t), Some(s), Some(d)) = (p.tcp(), p.src_ip(), p.dst_ip())
            && !t.payload.is_empty()
        {
            segs.entry((s, t.src_port, d, t.dst_port)).or_default().entry(t.seq).or_insert_with(|| t.payload.to_vec());
        }
    });
    ok.then(|| {
        segs.into_iter()
            .map(|(k, m)| {
                let mut out = Vec::new();
                let mut next: Option<u32> = None;
                for (seq, d) in m {
                    // Skip bytes already taken from an overlapping earlier segment; a gap
                    // (lost segment) is simply closed up.
                    let overlap = next.map_or(0, |n| n.wrapping_sub(seq));
                    let skip = if overlap < 1 << 31 { overlap as usize } else { 0 };
                    out.extend(d.get(skip..).unwrap_or(&[]));
                    next = Some(seq.wrapping_add(d.len() as u32));
                }
                (k, out)
            })
            .collect()
    })
}

#[test]
fn every_corpus_frame_decodes_and_l7_parsers_hold() {
    let Some(dir) = corpus() else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 45, "the MANIFEST lists 45 captures");
    let mut total = 0;
    for path in files {
        let mut r = CaptureReader::open(&path).unwrap();
        while let Some(raw) = r.next_packet().unwrap() {
            total += 1;
            let mut p = decode(LinkType(raw.link_type), raw.data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let _ = p.verify_l4_checksum();
            let payload = p.l4_payload();
            if let (Some(proto), Some(sp), Some(dp)) = (p.ip_protocol(), p.src_port(), p.dst_port()) {
                let _ = vigil_decode::hint::by_port(proto, sp, dp);
            }
            vigil_decode::fuzzing::dns(payload);
            vigil_decode::fuzzing::tls(payload);
            vigil_decode::fuzzing::http(payload);
            vigil_decode::fuzzing::cleartext(payload);
        }
    }
    assert_eq!(total, 87_142, "sum of the MANIFEST packet counts");
}

#[test]
fn dns_tunnel_query_names() {
    let mut names = Vec::new();
    if !each_packet("dmachard-dnscat2.pcap", |p| {
        if let Some(m) = p.udp().and_then(|u| dns::parse(u.payload).ok())
            && !m.is_response()
        {
            names.push(m.question().unwrap().name.to_string());
        }
    }) {
        return;
    }
    assert_eq!(names.len(), 12);
    assert_eq!(names[0], "147901b8d3df9cc46c59d600078b3316ce.biillpi.com");
    assert!(names.iter().all(|n| n.ends_with(".biillpi.com") && n.len() > 40));

    let mut iodine = Vec::new();
    each_packet("dmachard-iodine.pcap", |p| {
        if let Some(m) = p.udp().and_then(|u| dns::parse(u.payload).ok()) {
            let q = m.question().unwrap();
            iodine.push((m.is_response(), q.qtype, q.name.to_string(), m.answers.len()));
        }
    });
    assert_eq!(iodine.len(), 24);
    assert_eq!(iodine[0], (false, dns::TYPE_NULL, "yrb0pe.t1.biillpi.com".to_string(), 0));
    assert!(iodine.iter().any(|(_, _, n, _)| n == "laczi1dwmfbaywb0fm5xhkrgz0heotzq.t1.biillpi.com"));
    assert!(iodine.iter().filter(|(r, ..)| *r).all(|(_, _, _, answers)| *answers == 1));

    // dnsextractor exfiltrates through TXT answers.
    let mut txt = 0;
    each_packet("dmachard-dnsextrator.pcap", |p| {
        if let Some(m) = p.udp().and_then(|u| dns::parse(u.payload).ok()) {
            txt += m.answers.iter().filter(|a| matches!(a.data, dns::RData::Txt { .. })).count();
        }
    });
    assert!(txt > 0);
}

#[test]
fn dns_over_80211_and_pcapng_multi_interface() {
    let mut ids = Vec::new();
    if !each_packet("zeek-radiotap-80211.pcap", |p| {
        let m = dns::parse(p.udp().unwrap().payload).unwrap();
        ids.push((m.id(), m.is_response(), m.answers.len()));
    }) {
        return;
    }
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0].0, ids[1].0);
    assert!(!ids[0].1 && ids[1].1 && ids[1].2 > 0);
    let mut n = 0;
    each_packet("zeek-pcapng-multi-interface.pcapng", |p| {
        assert!(dns::parse(p.udp().unwrap().payload).is_ok());
        n += 1;
    });
    assert_eq!(n, 6);
}

fn http_users(name: &str) -> Option<Vec<String>> {
    let mut users = Vec::new();
    each_packet(name, |p| {
        if let Some(t) = p.tcp()
            && let Ok(r) = http::parse_request(t.payload)
            && let Some(a) = r.authorization()
        {
            users.push(a.basic_user().unwrap());
        }
    })
    .then_some(users)
}

#[test]
fn http_basic_user_names() {
    let Some(users) = http_users("zeek-http-basic-auth.pcap") else { return };
    assert!(!users.is_empty());
    assert!(users.iter().all(|u| u == "test"), "{users:?}");
    // The password contains a colon there: the user is still "test".
    let users = http_users("zeek-http-basic-auth-rawip4.pcap").unwrap();
    assert_eq!(users, ["test"]);
}

fn commands(name: &str, port: u16, proto: Protocol) -> Option<Vec<AuthCommand>> {
    let mut out = Vec::new();
    each_packet(name, |p| {
        if let Some(t) = p.tcp()
            && t.dst_port == port
        {
            out.extend(cleartext::commands(proto, t.payload));
        }
    })
    .then_some(out)
}

#[test]
fn cleartext_logins() {
    let Some(ftp) = commands("cs-ppa1e-ftp.pcap", 21, Protocol::Ftp) else { return };
    assert_eq!(ftp, [AuthCommand::User { user: "csanders".into() }, AuthCommand::Pass]);
    let pop = commands("sv-pop3-user-pass.pcap", 110, Protocol::Pop3).unwrap();
    assert_eq!(pop[0], AuthCommand::User { user: "test@tt.com".into() });
    assert!(pop.contains(&AuthCommand::Pass));
    let imap = commands("sv-imap-login.pcap", 143, Protocol::Imap).unwrap();
    assert_eq!(imap, [AuthCommand::Login { user: Some("neulingern".into()) }]);
    let brute = commands("zeek-ftp-bruteforce.pcap", 21, Protocol::Ftp).unwrap();
    let passes = brute.iter().filter(|c| **c == AuthCommand::Pass).count();
    assert!(passes >= 20, "{passes}");
}

#[test]
fn telnet_login_after_stripping_iac() {
    let Some(streams) = tcp_streams("cs-ppa1e-telnet.pcap") else { return };
    let (to_server, to_client): (Vec<_>, Vec<_>) = streams.iter().partition(|((_, _, _, dport), _)| *dport == 23);
    let client = telnet::strip_iac(to_server[0].1);
    let server = telnet::strip_iac(to_client[0].1);
    let server = String::from_utf8_lossy(&server);
    let client = String::from_utf8_lossy(&client);
    assert!(server.contains("login: "), "{server}");
    assert!(client.contains("fake\r\n"), "{client:?}");
    assert!(!client.contains('\u{fffd}'), "IAC bytes left: {client:?}");
}

/// (negotiated version, cipher) of every ServerHello, and SNIs of ClientHellos.
type Hellos = (Vec<(tls::TlsVersion, u16)>, Vec<Option<String>>);

fn hellos(name: &str) -> Option<Hellos> {
    let mut servers = Vec::new();
    let mut snis = Vec::new();
    each_packet(name, |p| {
        let pl = p.l4_payload();
        if let Some(sh) = tls::server_hello(pl) {
            servers.push((sh.selected_version(), sh.cipher_suite));
        }
        if let Some(ch) = tls::client_hello(pl) {
            snis.push(ch.sni().map(str::to_owned));
        }
    })
    .then_some((servers, snis))
}

#[test]
fn tls_versions_and_sslv2() {
    let Some((sh, _)) = hellos("zeek-tls1_0-rc4-md5.pcap") else { return };
    assert_eq!(sh.len(), 3);
    assert!(sh.iter().all(|s| *s == (tls::TlsVersion::TLS_1_0, 0x0004)));
    let (sh, _) = hellos("zeek-tls-tls1_1.pcap").unwrap();
    assert_eq!(sh, [(tls::TlsVersion::TLS_1_1, 0xc013)]);
    let (sh, _) = hellos("zeek-tls-expired-cert.pcap").unwrap();
    assert!(!sh.is_empty() && sh.iter().all(|(v, _)| *v == tls::TlsVersion::TLS_1_0));
    let (sh, snis) = hellos("sv-tls-pre-1970.pcap").unwrap();
    assert_eq!(sh, [(tls::TlsVersion::TLS_1_0, 0x0005)]);
    assert_eq!(snis, [Some("fkp.samsungcloudsolution.com".to_string())]);

    let mut v2 = Vec::new();
    each_packet("zeek-tls-sslv2.pcap", |p| {
        if let Ok((h, _)) = tls::parse_sslv2(p.l4_payload()) {
            v2.push(matches!(h, tls::Sslv2Hello::Server { .. }));
            assert_eq!(h.version(), tls::TlsVersion::SSL_2_0);
        }
    });
    assert_eq!(v2, [false, true]);
}

/// Certificates of every connection, through the stream reassembler.
fn certificates(name: &str) -> Option<Vec<tls::CertInfo>> {
    let streams = tcp_streams(name)?;
    let mut keys: Vec<_> = streams.keys().copied().collect();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let mut s = tls::TlsStream::default();
        for chunk in streams[&k].chunks(1400) {
            s.push(chunk);
            while let Some(m) = s.next_message() {
                match m {
                    Ok(tls::TlsMessage::Handshake(tls::Handshake::Certificate(c))) => {
                        out.extend(c.certs().map(|d| tls::cert_info(d).unwrap()));
                    }
                    Ok(tls::TlsMessage::Sslv2(tls::Sslv2Hello::Server { certificate, .. })) => {
                        out.push(tls::cert_info(certificate).unwrap());
                    }
                    Ok(_) => {}
                    Err(e) => panic!("{name} {k:?}: {e}"),
                }
            }
        }
    }
    Some(out)
}

#[test]
fn certificate_fingerprints_subjects_and_validity() {
    let Some(certs) = certificates("zeek-tls-expired-cert.pcap") else { return };
    let leaf = certs.iter().find(|c| c.subject_cn.as_deref() == Some("www.spidh.org")).expect("spidh leaf");
    // Cross-checked with `openssl x509 -inform der -fingerprint -sha256`.
    assert_eq!(leaf.fingerprint_hex(), "7920ebd7acfb8c3c569b83db76e7e61b8a0a5bcdf55bdee5519f838f73732173");
    assert_eq!(leaf.subject, "OU=Domain Control Validated, OU=COMODO SSL, CN=www.spidh.org");
    assert!(leaf.issuer.contains("CN=COMODO SSL CA"));
    assert_eq!((leaf.not_before, leaf.not_after), (1_359_936_000, 1_393_977_599));
    let captured = packets("zeek-tls-expired-cert.pcap").unwrap()[0].0 / 1_000_000_000;
    assert!(leaf.is_expired_at(captured));
    assert_eq!(certs.len(), 5);

    let certs = certificates("sv-tls-pre-1970.pcap").unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].not_before, -86_400);
    assert!(certs[0].issuer.contains("CN=ROOT CA SISC FKP2_PLUS"));
    assert_eq!(certs[0].fingerprint_hex(), "6ded6ad00f50d930239004cc46325300993d33af77a96d3c4e4716721d389c1d");

    let certs = certificates("zeek-tls1_0-rc4-md5.pcap").unwrap();
    assert!(certs.len() >= 3, "{}", certs.len());
    let certs = certificates("zeek-tls-sslv2.pcap").unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].subject_cn.as_deref(), Some("plesk"));
}

#[test]
fn anomaly_captures() {
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    if !each_packet("cs-activeosfingerprinting.pcapng", |p| {
        for n in p.anomalies.names() {
            *counts.entry(n).or_default() += 1;
        }
    }) {
        return;
    }
    assert_eq!(counts.get("tcp_null"), Some(&4));
    assert_eq!(counts.get("tcp_xmas"), Some(&8));
    assert_eq!(counts.get("tcp_syn_fin"), Some(&4));
    assert_eq!(counts.get("tcp_reserved_bits"), Some(&1));

    let mut pkts = packets("zeek-chksum-ip4-tcp-bad.pcap").unwrap();
    let (_, lt, data) = pkts.remove(0);
    let mut p = decode(LinkType(lt), &data).unwrap();
    assert_eq!(p.verify_l4_checksum(), Some(false));
    assert!(p.anomalies.contains(Anomalies::L4_CHECKSUM_BAD));

    each_packet("zeek-trunc-ip4-snaplen.pcap", |p| {
        assert_eq!(p.outcome(), Outcome::Truncated);
        assert!(p.anomalies.contains(Anomalies::L3_TRUNCATED));
    });
    let mut l4_cut = 0;
    each_packet("sv-decode-too-small.pcap", |p| {
        l4_cut += usize::from(p.anomalies.contains(Anomalies::L4_TRUNCATED));
    });
    assert_eq!(l4_cut, 6);
    // Checksums verify on ordinary traffic. (Not on the nsec trace: its TCP checksums fail
    // throughout, consistent with addresses rewritten without fixing them.)
    for (name, n) in [("cs-synscan.pcapng", 2011), ("cs-ppa1e-ftp.pcap", 38)] {
        let mut verified = 0;
        for (_, lt, data) in packets(name).unwrap() {
            let mut p = decode(LinkType(lt), &data).unwrap();
            assert_eq!(p.verify_l4_checksum(), Some(true), "{name}");
            verified += 1;
        }
        assert_eq!(verified, n);
    }
}

#[test]
fn fragments_v4_and_v6() {
    let (mut first, mut later) = (0, 0);
    if !each_packet("cs-ppa1e-ipfragments.pcap", |p| {
        let f = p.fragment().unwrap();
        if f.offset == 0 {
            first += 1;
            assert!(f.more && p.icmp().is_some());
        } else {
            later += 1;
            assert!(matches!(p.transport, Transport::Fragment { protocol: 1, .. }));
            assert!(f.offset == 1480 || f.offset == 2960, "{f:?}");
        }
    }) {
        return;
    }
    assert_eq!((first, later), (8, 16));
    let (mut first, mut later) = (0, 0);
    each_packet("cs-ipv6_fragments.pcapng", |p| {
        if let Some(f) = p.fragment() {
            if f.offset == 0 {
                first += 1;
                assert!(p.icmp().is_some());
            } else {
                later += 1;
            }
            assert_eq!(f.protocol, 58);
        }
    });
    assert!(first >= 8 && later >= 8, "{first} {later}");
}

#[test]
fn link_layer_variants() {
    let mut depths = Vec::new();
    if !each_packet("sv-arp-vlan-stacked.pcap", |p| {
        assert!(p.arp().is_some());
        depths.push(p.link.vlans.ids().to_vec());
    }) {
        return;
    }
    assert_eq!(depths, [vec![6], vec![1, 10], vec![1, 10, 100]]);
    each_packet("zeek-q-in-q.pcap", |p| assert_eq!(p.link.vlans.ids(), &[13, 10]));
    let mut kinds = Vec::new();
    each_packet("zeek-linux-sll2.pcap", |p| {
        kinds.push(match p.transport {
            Transport::Icmpv4(_) => "icmp",
            Transport::Icmpv6(_) => "icmp6",
            _ if p.arp().is_some() => "arp",
            _ => "other",
        })
    });
    assert_eq!(kinds, ["icmp", "icmp", "icmp6", "icmp6", "arp", "arp"]);
    let mut arps = 0;
    each_packet("zeek-linuxsll-arp.pcap", |p| arps += usize::from(p.arp().is_some()));
    assert_eq!(arps, 12);
    let mut auth = false;
    each_packet("zeek-redis-auth-null-loopback.pcap", |p| {
        if let Some(t) = p.tcp() {
            auth |= t.dst_port == 6379 && t.payload.windows(4).any(|w| w == b"AUTH");
        }
    });
    assert!(auth);
    let mut spoof_sources = 0;
    each_packet("cce15-dns_poisning.pcap", |p| spoof_sources += usize::from(p.arp().is_some()));
    assert!(spoof_sources > 0);
}
