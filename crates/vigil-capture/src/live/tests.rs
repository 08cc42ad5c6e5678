#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::*;

fn pcap(packets: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        v.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        v.extend_from_slice(&5u32.to_le_bytes());
        v.extend_from_slice(&(p.len() as u32).to_le_bytes());
        v.extend_from_slice(&(p.len() as u32).to_le_bytes());
        v.extend_from_slice(p);
    }
    v
}

#[test]
fn a_file_is_a_packet_source_that_ends() {
    let data = pcap(&[&[1u8; 60], &[2u8; 70]]);
    let mut src = FileSource::new(CaptureReader::new(Cursor::new(data), "mem.pcap").unwrap());
    assert_eq!(src.name(), "mem.pcap");
    let mut seen = Vec::new();
    loop {
        match src.next_packet(Duration::from_secs(1)).unwrap() {
            Next::Packet { packet, direction } => {
                assert_eq!(direction, Direction::Unknown);
                assert_eq!(packet.link_type, LINKTYPE_ETHERNET);
                seen.push((packet.ts_nanos, packet.data.len()));
            }
            Next::Idle => panic!("files never idle"),
            Next::End => break,
        }
    }
    assert_eq!(seen, vec![(1_700_000_000_000_005_000, 60), (1_700_000_001_000_005_000, 70)]);
    assert_eq!(src.next_packet(Duration::ZERO).unwrap(), Next::End);
    let st = src.stats();
    assert_eq!((st.packets, st.bytes, st.kernel_drops), (2, 130, 0));
    assert!(!src.truncated());
}

#[test]
fn a_broken_file_is_an_error_then_the_end() {
    let mut data = pcap(&[&[1u8; 60]]);
    // A record claiming 1 GiB.
    data.extend_from_slice(&[0; 8]);
    data.extend_from_slice(&(1u32 << 30).to_le_bytes());
    data.extend_from_slice(&(1u32 << 30).to_le_bytes());
    let mut src = FileSource::new(CaptureReader::new(Cursor::new(data), "bad.pcap").unwrap());
    assert!(matches!(src.next_packet(Duration::ZERO).unwrap(), Next::Packet { .. }));
    let e = src.next_packet(Duration::ZERO).unwrap_err();
    assert!(e.to_string().contains("bad.pcap"), "{e}");
    assert_eq!(src.next_packet(Duration::ZERO).unwrap(), Next::End);
}

#[test]
fn settings_are_checked_before_any_socket() {
    assert!(LiveConfig::default().validate().is_ok());
    let cases = [
        (LiveConfig { workers: 0, ..LiveConfig::default() }, "capture.workers"),
        (LiveConfig { block_size: 5000, ..LiveConfig::default() }, "capture.block_size"),
        (LiveConfig { block_count: 1, ..LiveConfig::default() }, "capture.block_count"),
        (LiveConfig { block_timeout: Duration::ZERO, ..LiveConfig::default() }, "capture.block_timeout"),
        (LiveConfig { filter: Some("tcp".into()), ..LiveConfig::default() }, "capture.filter"),
    ];
    for (cfg, field) in cases {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    assert_eq!(InterfaceSpec::parse("any"), InterfaceSpec::Any);
    assert_eq!(InterfaceSpec::parse("eth0").name(), "eth0");
}

#[cfg(target_os = "linux")]
#[test]
fn cooked_header_layout() {
    let h = afpacket::sll_header(4, 1, &[2, 0, 0, 0, 0, 9], 0x0800);
    assert_eq!(h, [0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 9, 0, 0, 0x08, 0x00]);
    let h = afpacket::sll_header(0, 772, &[1; 12], 0x86dd);
    assert_eq!(&h[4..6], &[0, 8]);
}

#[test]
fn unknown_interface_is_named() {
    let cfg = LiveConfig { interfaces: vec![InterfaceSpec::Named("vigil-nope0".into())], ..LiveConfig::default() };
    match open(&cfg) {
        Err(LiveError::NoSuchInterface { interface }) => assert_eq!(interface, "vigil-nope0"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("opened a missing interface"),
    }
}

/// Opens loopback capture, or `None` when this process may not (noted on stderr).
fn open_or_skip(cfg: &LiveConfig) -> Option<Vec<Box<dyn PacketSource>>> {
    match open(cfg) {
        Ok(s) => Some(s),
        Err(e) if e.is_permission() => {
            eprintln!("SKIP: live capture not permitted here: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Reads every source until `want` packets carrying `marker` (and not outgoing) are seen,
/// or 5 s pass; returns the count per source and the link types seen.
fn drain(sources: &mut [Box<dyn PacketSource>], marker: &[u8], want: usize) -> (Vec<usize>, Vec<u32>) {
    let mut seen = vec![0; sources.len()];
    let mut links = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.iter().sum::<usize>() < want && Instant::now() < deadline {
        for (i, s) in sources.iter_mut().enumerate() {
            while let Next::Packet { packet, direction } = s.next_packet(Duration::from_millis(10)).unwrap() {
                if direction == Direction::In && packet.data.windows(marker.len()).any(|w| w == marker) {
                    seen[i] += 1;
                    if !links.contains(&packet.link_type) {
                        links.push(packet.link_type);
                    }
                    assert!(packet.ts_nanos > 1_600_000_000_000_000_000);
                    assert!(packet.orig_len as usize >= packet.data.len());
                }
            }
        }
    }
    (seen, links)
}

#[cfg(target_os = "linux")]
#[test]
fn live_loopback_with_fanout_and_any() {
    let lo = LiveConfig {
        interfaces: vec![InterfaceSpec::Named("lo".into())],
        workers: 2,
        block_size: 64 << 10,
        block_count: 4,
        block_timeout: Duration::from_millis(5),
        ..LiveConfig::default()
    };
    let Some(mut sources) = open_or_skip(&lo) else { return };
    assert_eq!(sources.len(), 2);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let marker = format!("vigil-live-{}", std::process::id());
    let senders: Vec<UdpSocket> = (0..32).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for s in &senders {
        s.send_to(marker.as_bytes(), rx.local_addr().unwrap()).unwrap();
    }
    let (seen, links) = drain(&mut sources, marker.as_bytes(), 32);
    assert_eq!(seen.iter().sum::<usize>(), 32, "{seen:?}");
    assert_eq!(links, vec![LINKTYPE_ETHERNET]);
    let mut total = SourceStats::default();
    for s in &mut sources {
        total.add(&s.stats());
    }
    assert!(total.packets >= 32 && total.kernel_packets >= total.packets, "{total:?}");
    assert_eq!(total.kernel_drops, 0);
    drop(sources);

    let any = LiveConfig { interfaces: vec![InterfaceSpec::Any], workers: 1, ..lo };
    let mut sources = open(&any).unwrap();
    let marker = format!("vigil-any-{}", std::process::id());
    senders[0].send_to(marker.as_bytes(), rx.local_addr().unwrap()).unwrap();
    let (seen, links) = drain(&mut sources, marker.as_bytes(), 1);
    assert_eq!(seen, vec![1]);
    assert_eq!(links, vec![LINKTYPE_LINUX_SLL]);
}

/// Run in a child process stripped of every capability (see the test below): capture
/// must fail with a permission error naming CAP_NET_RAW and the setcap fix.
#[test]
fn child_without_capabilities() {
    if std::env::var_os("VIGIL_CAPTURE_CHILD").is_none() {
        return;
    }
    let cfg = LiveConfig { interfaces: vec![InterfaceSpec::Named("lo".into())], ..LiveConfig::default() };
    let e = open(&cfg).err().expect("capture must be refused without CAP_NET_RAW");
    let text = e.to_string();
    assert!(e.is_permission(), "{text}");
    assert!(text.contains("CAP_NET_RAW") && text.contains("setcap cap_net_raw,cap_net_admin=eip"), "{text}");
    assert_eq!(missing_capabilities(true), vec![Capability::NetRaw, Capability::NetAdmin]);
    println!("CHILD-OK");
}

#[cfg(target_os = "linux")]
#[test]
fn without_capabilities_the_error_names_the_missing_one() {
    let have_setpriv = std::process::Command::new("setpriv").arg("--version").output().is_ok();
    if !have_setpriv || !missing_capabilities(false).is_empty() {
        eprintln!("SKIP: needs setpriv and CAP_NET_RAW to drop");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
        .arg(&exe)
        .args(["--exact", "live::tests::child_without_capabilities", "--nocapture"])
        .env("VIGIL_CAPTURE_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if text.contains("Operation not permitted") && !text.contains("running 1 test") {
        eprintln!("SKIP: setpriv may not drop capabilities here: {text}");
        return;
    }
    assert!(out.status.success() && text.contains("CHILD-OK"), "{text}");
}
