//! The memory-cap test (its own test binary, so the process's resident size is this
//! test's): a 2-million-packet SYN flood from random (spoofed) sources against one
//! victim, with a 64 MiB budget. The engine's own estimate must stay under the cap, the
//! resident size must not grow much past it, evictions must be counted, and the flood must
//! still be reported against its victim.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vigil_detect::testutil::{TcpPacket, checksum, flags};
use vigil_detect::{DetectConfig, Engine, Frame};
use vigil_model::Category;

const PACKETS: u32 = 2_000_000;
const CAP: u64 = 64 << 20;

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Rewrites the source address of the template SYN and fixes both checksums.
fn set_source(f: &mut [u8], src: [u8; 4]) {
    f[26..30].copy_from_slice(&src);
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&f[14..34], 0);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[50..52].copy_from_slice(&[0, 0]);
    let mut pseudo = 0u32;
    for w in f[26..34].chunks(2) {
        pseudo += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    pseudo += 6 + 20;
    let c = checksum(&f[34..54], pseudo);
    f[50..52].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn spoofed_syn_flood_stays_under_64_mib_and_is_reported() {
    let cfg = DetectConfig { memory_budget_bytes: CAP, ..DetectConfig::default() };
    let mut engine = Engine::new(cfg).unwrap();
    let before = rss_bytes();
    let mut frame = TcpPacket::new("1.2.3.4", 1024, "10.10.10.10", 25565).flags(flags::SYN).window(0).build();
    let mut alerts = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for i in 0..PACKETS {
        // xorshift32: a different pseudo-random source per packet.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        frame[34..36].copy_from_slice(&((i % 64_000) as u16 + 1024).to_be_bytes());
        set_source(&mut frame, x.to_be_bytes());
        // 100 000 packets per second: a 20 s flood.
        let f = Frame {
            ts_nanos: 1_700_000_000_000_000_000 + i64::from(i) * 10_000,
            link_type: 1,
            orig_len: 54,
            data: &frame,
        };
        engine.process(&f, &mut alerts);
    }
    let stats = engine.stats();
    let after = rss_bytes();
    eprintln!(
        "memcap: {} packets, estimate {} KiB of {} KiB, evictions {}, RSS {:?} -> {:?} KiB",
        stats.packets,
        stats.memory_bytes / 1024,
        CAP / 1024,
        stats.evictions,
        before.map(|b| b / 1024),
        after.map(|b| b / 1024)
    );
    assert_eq!(stats.packets, u64::from(PACKETS));
    assert!(alerts.len() < 10, "{} alerts, first: {:#?}", alerts.len(), &alerts[..alerts.len().min(3)]);
    assert!(stats.memory_bytes <= CAP, "estimate {} > cap {CAP}", stats.memory_bytes);
    assert!(stats.evictions > 1_000_000, "{:?}", stats.evictions_by_detector);
    // The real allocation agrees with the estimate (resident growth, with slack for the
    // allocator and the test harness).
    if let (Some(b), Some(a)) = (before, after) {
        assert!(a.saturating_sub(b) <= CAP + (16 << 20), "RSS grew by {} KiB", (a - b) / 1024);
    }
    let floods: Vec<_> = alerts.iter().filter(|a| a.category == Category::SynFlood).collect();
    assert_eq!(floods.len(), 1, "one alert per cooldown: {floods:#?}");
    assert_eq!(floods[0].dst_ip, "10.10.10.10".parse().ok());
    assert_eq!(floods[0].src_ip, None);
    assert_eq!(floods[0].dst_port, Some(25565));
    // Nothing else: spoofed SYNs are not scans, anomalies or anything per source.
    assert_eq!(alerts.len(), 1, "{:#?}", &alerts[..alerts.len().min(5)]);
}
