//! Alert throughput through dedup, incident grouping and DoS correlation on one core.
//!
//! ```text
//! cargo bench -p vigil-pipeline --bench throughput
//! ```
//! Each iteration feeds 100,000 pre-built alerts (built outside the timed part) into a
//! fresh pipeline with the default config, calling `tick` every 1,000 alerts, and drops the
//! events. Timed with the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), the
//! per-core cost, which stays honest on a shared machine; `VIGIL_BENCH_CLOCK=wall` switches
//! to criterion's wall clock. Figures and machine in BENCHMARKS.md.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, Utc};
use criterion::measurement::Measurement;
use criterion::{BatchSize, Criterion, Throughput};
use vigil_model::{AgentId, Alert, Category};
use vigil_pipeline::{Pipeline, PipelineConfig, SplitMix64};

const N: usize = 100_000;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

/// A realistic mix: 50 agents, 1,000 sources, 200 targets, alerts over 100 s.
fn mixed(n: usize) -> Vec<Alert> {
    let mut r = SplitMix64::new(7);
    let agents: Vec<AgentId> = (0..50).filter_map(|i| AgentId::new(format!("agent-{i:02}")).ok()).collect();
    let cats = [
        (Category::PortScan, 30),
        (Category::SynFlood, 20),
        (Category::BruteForce, 15),
        (Category::SuspiciousPort, 10),
        (Category::UnencryptedHttp, 10),
        (Category::InsecureProtocol, 5),
        (Category::IcmpFlood, 5),
        (Category::HostCpuHigh, 5),
    ];
    (0..n)
        .map(|i| {
            let mut pick = r.below(100);
            let cat = cats
                .iter()
                .find(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .map_or(Category::PortScan, |(c, _)| *c);
            let ts = t0() + Duration::milliseconds(i as i64);
            let mut a = Alert::new(cat, ts, format!("{cat} bench"));
            a.agent = Some(agents[r.below(agents.len())].clone());
            if cat != Category::HostCpuHigh {
                a.src_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, (r.below(4)) as u8, r.below(250) as u8)));
                a.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, r.below(200) as u8)));
                a.evidence = serde_json::json!({ "rate_pps": r.uniform(100.0, 5000.0) });
            }
            a
        })
        .collect()
}

/// The same alert over and over: the pure dedup (merge) path.
fn repeated(n: usize) -> Vec<Alert> {
    (0..n)
        .map(|i| {
            let mut a = Alert::new(Category::PortScan, t0() + Duration::milliseconds(i as i64), "scan");
            a.agent = AgentId::new("agent-01").ok();
            a.src_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
            a.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
            a
        })
        .collect()
}

/// Every alert a new source (a spoofed flood): new records, grouping keys and evictions.
fn distinct(n: usize) -> Vec<Alert> {
    (0..n)
        .map(|i| {
            let mut a = Alert::new(Category::SynFlood, t0() + Duration::milliseconds(i as i64), "flood");
            a.agent = AgentId::new(format!("agent-{:02}", i % 3)).ok();
            a.src_ip = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i as u32)));
            a.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
            a
        })
        .collect()
}

fn feed(p: &mut Pipeline, alerts: &[Alert]) -> usize {
    let mut out = Vec::with_capacity(64);
    let mut events = 0;
    for (i, a) in alerts.iter().enumerate() {
        p.ingest_alert(a, a.timestamp, &mut out);
        if i % 1000 == 999 {
            p.tick(a.timestamp, &mut out);
        }
        events += out.len();
        out.clear();
    }
    events
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    for (name, alerts, cfg) in [
        ("mixed", mixed(N), PipelineConfig::default()),
        ("repeated", repeated(N), PipelineConfig::default()),
        ("distinct_sources_capped", distinct(N), {
            let mut c = PipelineConfig::default();
            c.limits.open_alerts = 10_000;
            c.limits.group_keys = 10_000;
            c
        }),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || Pipeline::new(cfg.clone()).unwrap(),
                |mut p| black_box(feed(&mut p, &alerts)),
                BatchSize::LargeInput,
            )
        });
    }
    // Reference, same run: the floor of any dedup — count each alert under its
    // `DedupKey` in a std `HashMap` (no lifecycle, no correlation, no events).
    let alerts = mixed(N);
    g.bench_function("reference_hashmap_dedup", |b| {
        b.iter_batched(
            std::collections::HashMap::<vigil_pipeline::DedupKey, u64>::new,
            |mut m| {
                for a in &alerts {
                    *m.entry(vigil_pipeline::DedupKey::of(a)).or_default() += 1;
                }
                black_box(m.len())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn main() {
    vigil_bench::main(bench, bench);
}
