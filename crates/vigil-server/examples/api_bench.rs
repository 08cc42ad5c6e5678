//! Times the dashboard's API calls against a big database: 1,000 agents (each with 15
//! minutes of samples at 5 s and a capture interval) and 1,000,000 alerts spread over 30
//! days, 200 incidents. A real server on loopback (TLS, keys, rate limits), a keep-alive
//! HTTPS client, sequential calls, then the same calls from 8 clients at once.
//!
//! ```sh
//! cargo run --release -p vigil-server --example api_bench            # fills a temp dir
//! VIGIL_BENCH_DIR=/tmp/vb cargo run --release -p vigil-server --example api_bench  # keeps and reuses it
//! VIGIL_BENCH_ALERTS=100000 ...                                       # smaller run
//! ```
//! Figures go to BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use uuid::Uuid;
use vigil_model::{
    AgentId, AgentInfo, Alert, CaptureCounters, Category, HostSample, Item, NetInterfaceRate, NetStats, ProtocolCount,
    Severity, Talker,
};
use vigil_pki::{InitOptions, Pki};
use vigil_server::{ApiSettings, ServerSettings};
use vigil_store::{IncidentRow, IncidentStatus, IngestBatch, Store};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const AGENTS: u64 = 1000;

fn agent(i: u64) -> AgentId {
    AgentId::new(format!("agent-{i:04}")).unwrap()
}

fn sample(t: DateTime<Utc>, rng: &mut Rng) -> HostSample {
    HostSample {
        id: Uuid::now_v7(),
        timestamp: t,
        boot_epoch: 1,
        index: 0,
        cpu_percent: rng.below(100) as f32,
        cpu_per_core: vec![10.0; 4],
        memory_used_bytes: 1 << 30,
        memory_total_bytes: 8 << 30,
        memory_percent: rng.below(100) as f32,
        swap_used_bytes: 0,
        swap_total_bytes: 0,
        load_average: [0.5, 0.4, 0.3],
        disks: vec![vigil_model::DiskUsage {
            mount: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 100 << 30,
            used_bytes: 40 << 30,
            used_percent: 40.0,
        }],
        networks: vec![
            NetInterfaceRate {
                name: "eth0".into(),
                rx_bytes_per_sec: rng.below(1_000_000) as f64,
                tx_bytes_per_sec: rng.below(1_000_000) as f64,
                rx_packets_per_sec: rng.below(5000) as f64,
                tx_packets_per_sec: rng.below(5000) as f64,
            },
            NetInterfaceRate {
                name: "lo".into(),
                rx_bytes_per_sec: 10.0,
                tx_bytes_per_sec: 10.0,
                rx_packets_per_sec: 1.0,
                tx_packets_per_sec: 1.0,
            },
        ],
        process_count: 200,
        uptime_secs: 100_000,
    }
}

async fn fill(store: &Store, alerts_total: u64) {
    let mut rng = Rng(42);
    let now = Utc::now();
    let cats = [
        Category::PortScan,
        Category::SynFlood,
        Category::BruteForce,
        Category::SuspiciousPort,
        Category::DnsTunnel,
        Category::WeakTls,
    ];
    let per_agent = alerts_total / AGENTS;
    let started = Instant::now();
    let mut some_alerts = Vec::new();
    for i in 0..AGENTS {
        let id = agent(i);
        let mut items = vec![Item::Heartbeat(AgentInfo {
            hostname: format!("host-{i}"),
            os: "Debian 12".into(),
            version: "0.1.0".into(),
            interval_ms: 5000,
        })];
        for k in 0..180 {
            items.push(Item::Sample(sample(now - chrono::Duration::seconds(5 * (180 - k)), &mut rng)));
        }
        items.push(Item::NetStats(NetStats {
            id: Uuid::now_v7(),
            timestamp: now - chrono::Duration::seconds(2),
            interval_ms: 5000,
            packets_in_per_sec: 1200.0,
            packets_out_per_sec: 800.0,
            bytes_in_per_sec: 1.2e6,
            bytes_out_per_sec: 0.8e6,
            top_talkers: (0..10)
                .map(|t| Talker {
                    ip: format!("10.{}.{}.{}", i % 200, t, rng.below(250)).parse().unwrap(),
                    packets: 100 + t,
                    bytes: 10_000 * (10 - t),
                })
                .collect(),
            protocols: ["tcp", "udp", "icmp"]
                .iter()
                .map(|p| ProtocolCount { protocol: (*p).into(), packets: rng.below(1000), bytes: rng.below(1_000_000) })
                .collect(),
            capture: CaptureCounters { interfaces: vec!["eth0".into()], ..Default::default() },
        }));
        for _ in 0..per_agent {
            let age_ms = rng.below(30 * 86_400_000) as i64;
            let cat = cats[rng.below(cats.len() as u64) as usize];
            let mut a = Alert::new(cat, now - chrono::Duration::milliseconds(age_ms), format!("{cat} seen by {id}"));
            a.severity = Severity::ALL[rng.below(5) as usize];
            a.src_ip = Some(format!("203.0.{}.{}", rng.below(20), rng.below(250)).parse().unwrap());
            a.dst_ip = Some(format!("10.0.{}.{}", i % 250, rng.below(250)).parse().unwrap());
            a.dst_port = Some(22);
            a.evidence = serde_json::json!({"count": rng.below(1000), "window_secs": 10});
            if some_alerts.len() < 1000 && rng.below(100) == 0 {
                some_alerts.push(a.id);
            }
            items.push(Item::Alert(a));
        }
        store
            .ingest(&IngestBatch {
                agent: &id,
                peer: "127.0.0.1:1",
                received_at: now,
                replay_state: b"",
                items: &items,
            })
            .await
            .unwrap();
        if i % 100 == 99 {
            eprintln!(
                "  {} agents, {} alerts stored ({:.0} s)",
                i + 1,
                (i + 1) * per_agent,
                started.elapsed().as_secs_f64()
            );
        }
    }
    for k in 0..200u64 {
        let ids: Vec<Uuid> =
            some_alerts.iter().skip((k as usize * 5) % some_alerts.len().max(1)).take(5).copied().collect();
        store
            .upsert_incident(&IncidentRow {
                id: Uuid::now_v7(),
                opened_at: now - chrono::Duration::minutes(k as i64 * 7),
                updated_at: now - chrono::Duration::minutes(k as i64 * 3),
                status: if k % 3 == 0 { IncidentStatus::Resolved } else { IncidentStatus::Open },
                severity: Severity::High,
                title: format!("incident {k}"),
                category: "dos_suspected".into(),
                target: Some("10.0.0.1".into()),
                alert_ids: ids,
                evidence: serde_json::json!({"agents": 4}),
            })
            .await
            .unwrap();
    }
    eprintln!("filled in {:.0} s", started.elapsed().as_secs_f64());
}

fn p(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let alerts_total: u64 = std::env::var("VIGIL_BENCH_ALERTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let iterations: usize = std::env::var("VIGIL_BENCH_ITER").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let (_tmp, dir) = match std::env::var("VIGIL_BENCH_DIR") {
        Ok(d) => (None, std::path::PathBuf::from(d)),
        Err(_) => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::at(&dir);
    if !pki.is_initialized() {
        pki.init(&InitOptions { server_names: vec!["localhost".into()], force: false }).unwrap();
    }
    let db = dir.join(vigil_server::DATABASE_FILE);
    let fresh = !db.exists();
    if fresh {
        let store = Store::open(&db).await.unwrap();
        eprintln!("filling {} with {AGENTS} agents and {alerts_total} alerts...", db.display());
        fill(&store, alerts_total).await;
        store.close().await;
    }
    let api = ApiSettings {
        client_rate: 1_000_000,
        client_burst: 1_000_000,
        key_rate: 1_000_000,
        key_burst: 1_000_000,
        ..Default::default()
    };
    let settings = ServerSettings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.clone(),
        api,
        ..Default::default()
    };
    let server = vigil_server::start(settings).await.unwrap();
    let key = match std::fs::read_to_string(dir.join(vigil_server::INITIAL_ADMIN_KEY_FILE)) {
        Ok(k) => k.trim().to_owned(),
        Err(_) => panic!("no initial admin key in {}", dir.display()),
    };
    let size = server.state.store.size_bytes().await.unwrap();
    let ca = CertificateDer::from_pem_file(pki.pki_dir().join("ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap();
    let base = format!("https://localhost:{}", server.local_addr.port());

    let first = client.get(format!("{base}/api/v1/alerts?limit=1")).header("X-API-Key", &key).send().await.unwrap();
    let first: serde_json::Value = first.json().await.unwrap();
    let alert_id = first["alerts"][0]["id"].as_str().unwrap().to_owned();
    let page2: serde_json::Value = client
        .get(format!("{base}/api/v1/alerts?limit=50"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = page2["next_cursor"].as_str().unwrap().to_owned();
    let since = (Utc::now() - chrono::Duration::minutes(15)).timestamp();
    // The first row is the reference measured in the same run: a route with no database
    // and no key check, i.e. the cost of TLS, HTTP and the client alone.
    let calls: Vec<(&str, String)> = vec![
        ("reference: health (no database, no auth)", "/api/v1/health".into()),
        ("overview", "/api/v1/overview".into()),
        ("agents (1,000, latest figures)", "/api/v1/agents".into()),
        ("alerts, first page", "/api/v1/alerts?limit=50".into()),
        ("alerts, next page (cursor)", format!("/api/v1/alerts?limit=50&cursor={cursor}")),
        ("alerts, severity >= high", "/api/v1/alerts?limit=50&severity=high".into()),
        ("alerts, status open", "/api/v1/alerts?limit=50&status=open".into()),
        ("alerts, one category", "/api/v1/alerts?limit=50&category=dns_tunnel".into()),
        ("alerts, one agent", "/api/v1/alerts?limit=10&agent=agent-0042".into()),
        ("alerts, one source", "/api/v1/alerts?limit=50&src_ip=203.0.7.77".into()),
        ("alert detail", format!("/api/v1/alerts/{alert_id}")),
        ("agent detail", "/api/v1/agents/agent-0042".into()),
        ("agent metrics, 15 min at 5 s", format!("/api/v1/agents/agent-0042/metrics?step=5s&since={since}")),
        ("incidents", "/api/v1/incidents?limit=50".into()),
        ("network", "/api/v1/network".into()),
        ("blocks", "/api/v1/blocks".into()),
        ("prometheus /metrics (not a dashboard call)", "/metrics".into()),
    ];
    println!("database: {} agents, {} alerts, {:.0} MB", AGENTS, alerts_total, size as f64 / 1e6);
    println!("{:<44} {:>9} {:>9} {:>9}", "call (sequential)", "p50 ms", "p99 ms", "max ms");
    for (name, path) in &calls {
        let url = format!("{base}{path}");
        for _ in 0..5 {
            let r = client.get(&url).header("X-API-Key", &key).send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            let _ = r.bytes().await.unwrap();
        }
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            let r = client.get(&url).header("X-API-Key", &key).send().await.unwrap();
            let _ = r.bytes().await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        println!("{name:<44} {:>9.2} {:>9.2} {:>9.2}", p(&times, 0.5), p(&times, 0.99), p(&times, 1.0));
    }
    // The biggest call without HTTP: where its time goes.
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let v = server.state.store.agents_with_latest().await.unwrap();
        assert_eq!(v.len() as u64, AGENTS);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>9.2}",
        "  store only: agents with latest sample",
        p(&times, 0.5),
        p(&times, 0.99),
        p(&times, 1.0)
    );

    // A dashboard-like mix from 8 clients at once.
    let mix: Vec<String> = calls.iter().skip(1).take(calls.len() - 2).map(|(_, p)| format!("{base}{p}")).collect();
    let mut tasks = Vec::new();
    let started = Instant::now();
    for c in 0..8 {
        let (client, key, mix) = (client.clone(), key.clone(), mix.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            for i in 0..iterations {
                let url = &mix[(i + c) % mix.len()];
                let t = Instant::now();
                let r = client.get(url).header("X-API-Key", &key).send().await.unwrap();
                let _ = r.bytes().await.unwrap();
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    println!(
        "mixed dashboard calls, 8 clients: {} calls in {:.1} s ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len(),
        wall.as_secs_f64(),
        all.len() as f64 / wall.as_secs_f64(),
        p(&all, 0.5),
        p(&all, 0.99),
        p(&all, 1.0)
    );
    server.shutdown().await;
}
