#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::*;

/// A block with frames laid out the way the kernel does it.
fn fake_block(frames: &[(&[u8], u32)]) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    let first = 48usize;
    b[12..16].copy_from_slice(&(frames.len() as u32).to_ne_bytes());
    b[16..20].copy_from_slice(&(first as u32).to_ne_bytes());
    let mut off = first;
    for (i, (data, pkttype)) in frames.iter().enumerate() {
        let mac = 96usize;
        let len = (mac + data.len()).div_ceil(16) * 16;
        let next = if i + 1 == frames.len() { 0 } else { len };
        b[off..off + 4].copy_from_slice(&(next as u32).to_ne_bytes());
        b[off + 4..off + 8].copy_from_slice(&1_700_000_000u32.to_ne_bytes());
        b[off + 8..off + 12].copy_from_slice(&(i as u32 * 1000).to_ne_bytes());
        b[off + 12..off + 16].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        b[off + 16..off + 20].copy_from_slice(&(data.len() as u32 + 10).to_ne_bytes());
        b[off + 20..off + 24].copy_from_slice(&libc::TP_STATUS_VLAN_VALID.to_ne_bytes());
        b[off + 24..off + 26].copy_from_slice(&(mac as u16).to_ne_bytes());
        b[off + 32..off + 36].copy_from_slice(&42u32.to_ne_bytes());
        let sll = off + 48;
        b[sll + 2..sll + 4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[sll + 4..sll + 8].copy_from_slice(&7i32.to_ne_bytes());
        b[sll + 8..sll + 10].copy_from_slice(&1u16.to_ne_bytes());
        b[sll + 10] = *pkttype as u8;
        b[sll + 11] = 6;
        b[sll + 12..sll + 18].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        b[off + mac..off + mac + data.len()].copy_from_slice(data);
        off += len;
    }
    b
}

#[test]
fn parses_frames_the_way_the_kernel_lays_them_out() {
    let b = fake_block(&[(b"hello", 0), (b"world!", 4)]);
    let (f, next) = parse_frame(&b, 48).unwrap();
    assert_eq!(f.data, b"hello");
    assert_eq!(f.wire_len, 15);
    assert_eq!(f.sec, 1_700_000_000);
    assert_eq!(f.vlan_tci, Some(42));
    assert_eq!(f.vlan_tpid, 0x8100);
    assert_eq!(f.protocol, 0x0800);
    assert_eq!(f.ifindex, 7);
    assert_eq!(f.halen, 6);
    assert_eq!(&f.addr[..6], &[2, 0, 0, 0, 0, 9]);
    assert!(next > 0);
    let (g, last) = parse_frame(&b, 48 + next).unwrap();
    assert_eq!(g.data, b"world!");
    assert_eq!(g.pkttype, PACKET_OUTGOING);
    assert_eq!(g.nsec, 1000);
    assert_eq!(last, 0);
}

#[test]
fn bad_offsets_and_lengths_are_refused_not_read() {
    let mut b = fake_block(&[(b"hello", 0)]);
    // Snap length running past the block.
    b[48 + 12..48 + 16].copy_from_slice(&10_000u32.to_ne_bytes());
    assert!(parse_frame(&b, 48).is_none());
    // A header that does not fit.
    assert!(parse_frame(&b, 4090).is_none());
    assert!(parse_frame(&b, usize::MAX - 3).is_none());
}

#[test]
fn ring_geometry_is_checked() {
    assert!(RingConfig::default().validate().is_ok());
    let bad = [
        RingConfig { block_size: 1000, ..RingConfig::default() },
        RingConfig { block_size: 8 << 20, ..RingConfig::default() },
        RingConfig { block_count: 1, ..RingConfig::default() },
        RingConfig { frame_size: 40, ..RingConfig::default() },
        RingConfig { frame_size: 2000, ..RingConfig::default() },
        RingConfig { block_timeout_ms: 0, ..RingConfig::default() },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
    }
    assert_eq!(RingConfig::default().ring_bytes(), 32 << 20);
}

fn small() -> RingConfig {
    RingConfig { block_size: 64 << 10, block_count: 8, frame_size: 2048, block_timeout_ms: 5 }
}

/// Opens a ring on loopback, or `None` (with a note) when this process may not.
fn lo_ring() -> Option<Ring> {
    let lo = interface_index("lo").unwrap();
    match Ring::open(lo, SocketKind::Raw, &small()) {
        Ok(r) => Some(r),
        Err(e) if e.is_permission() => {
            eprintln!("SKIP: no CAP_NET_RAW, live ring test not run ({e})");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Collects frames carrying `marker` until `want` are seen or 5 s pass.
fn collect(rings: &mut [Ring], marker: &[u8], want: usize) -> Vec<usize> {
    let mut seen = vec![0usize; rings.len()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.iter().sum::<usize>() < want && Instant::now() < deadline {
        for (i, r) in rings.iter_mut().enumerate() {
            while let Some(f) = r.next_frame(Duration::from_millis(10)).unwrap() {
                if f.data.windows(marker.len()).any(|w| w == marker) && f.pkttype != PACKET_OUTGOING {
                    seen[i] += 1;
                }
            }
        }
    }
    seen
}

#[test]
fn captures_loopback_traffic() {
    let Some(ring) = lo_ring() else { return };
    let mut rings = [ring];
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let marker = format!("vigil-afpacket-{}", std::process::id());
    for _ in 0..20 {
        tx.send_to(marker.as_bytes(), rx.local_addr().unwrap()).unwrap();
    }
    let seen = collect(&mut rings, marker.as_bytes(), 20);
    assert_eq!(seen[0], 20);
    let st = rings[0].stats().unwrap();
    assert!(st.packets >= 20, "{st:?}");
    assert_eq!(st.drops, 0);
}

#[test]
fn fanout_spreads_flows_and_loses_none() {
    let Some(a) = lo_ring() else { return };
    let lo = interface_index("lo").unwrap();
    let b = Ring::open(lo, SocketKind::Raw, &small()).unwrap();
    let group = a.join_fanout(None).unwrap();
    assert_eq!(b.join_fanout(Some(group)).unwrap(), group);
    let mut rings = [a, b];
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let marker = format!("vigil-fanout-{}", std::process::id());
    // 64 flows (distinct source ports), 2 packets each.
    let senders: Vec<UdpSocket> = (0..64).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for s in &senders {
        for _ in 0..2 {
            s.send_to(marker.as_bytes(), rx.local_addr().unwrap()).unwrap();
        }
    }
    let seen = collect(&mut rings, marker.as_bytes(), 128);
    assert_eq!(seen.iter().sum::<usize>(), 128, "{seen:?}");
    assert!(seen.iter().all(|&n| n > 0), "flow hash sent everything to one socket: {seen:?}");
}

#[test]
fn unknown_interfaces_are_errors() {
    assert!(interface_index("no-such-if0").is_err());
    assert!(interface_index("a\0b").is_err());
}
