use super::*;

use tempfile::TempDir;
use vigil_model::{DiskUsage, NetInterfaceRate};

const BASE: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn aid(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

fn sample(ts: i64, index: u64) -> HostSample {
    HostSample {
        id: Uuid::now_v7(),
        timestamp: t(ts),
        boot_epoch: 3,
        index,
        cpu_percent: 12.5,
        cpu_per_core: vec![10.0, 15.0],
        memory_used_bytes: 1 << 30,
        memory_total_bytes: 4 << 30,
        memory_percent: 25.0,
        swap_used_bytes: 0,
        swap_total_bytes: 0,
        load_average: [0.5, 0.25, 0.125],
        disks: vec![DiskUsage {
            mount: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 100,
            used_bytes: 50,
            used_percent: 50.0,
        }],
        networks: vec![NetInterfaceRate {
            name: "eth0".into(),
            rx_bytes_per_sec: 1.5,
            tx_bytes_per_sec: 2.5,
            rx_packets_per_sec: 3.0,
            tx_packets_per_sec: 4.0,
        }],
        process_count: 99,
        uptime_secs: 1000,
    }
}

fn alert(category: Category, severity: Severity, ts: i64) -> Alert {
    let mut a = Alert::new(category, t(ts), format!("{category} at {ts}"));
    a.severity = severity;
    a.src_ip = Some("10.0.0.5".parse().unwrap());
    a.dst_ip = Some("fd00::1".parse().unwrap());
    a.src_port = Some(40000);
    a.dst_port = Some(22);
    a.src_mac = Some("aa:bb:cc:dd:ee:ff".into());
    a.evidence = serde_json::json!({"count": 40, "ports": [22, 80]});
    a
}

async fn open_tmp() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("vigil.db")).await.unwrap();
    (dir, store)
}

const PEER: &str = "192.0.2.7:50000";

async fn ingest_at(store: &Store, agent: &AgentId, received: i64, state: &[u8], items: &[Item]) -> IngestOutcome {
    store
        .ingest(&IngestBatch { agent, peer: PEER, received_at: t(received), replay_state: state, items })
        .await
        .unwrap()
}

async fn ingest(store: &Store, agent: &AgentId, items: &[Item]) -> IngestOutcome {
    ingest_at(store, agent, BASE + DAY, b"state", items).await
}

async fn count(store: &Store, table: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&store.inner.reader).await.unwrap();
    n
}

#[tokio::test]
async fn reopen_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    let a = aid("web-1");
    let s = sample(BASE, 0);
    let al = alert(Category::PortScan, Severity::Medium, BASE);
    {
        let store = Store::open(&path).await.unwrap();
        let out = ingest(&store, &a, &[Item::Sample(s.clone()), Item::Alert(al.clone())]).await;
        assert_eq!(out.samples, 1);
        store.close().await;
    }
    for _ in 0..2 {
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.latest_sample(&a).await.unwrap(), Some(s.clone()));
        let alerts = store.alerts(&AlertQuery::default()).await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].alert.id, al.id);
        let applied = count(&store, "_sqlx_migrations").await;
        assert_eq!(applied, i64::try_from(MIGRATOR.iter().count()).unwrap());
        store.close().await;
    }
}

#[tokio::test]
async fn wal_and_pragmas_are_set() {
    let (_dir, store) = open_tmp().await;
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&store.inner.reader).await.unwrap();
    assert_eq!(mode, "wal");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys").fetch_one(&store.inner.writer).await.unwrap();
    assert_eq!(fk, 1);
    let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(&store.inner.writer).await.unwrap();
    assert_eq!(sync, 1, "NORMAL");
    assert!(store.size_bytes().await.unwrap() > 0);
}

#[tokio::test]
async fn open_without_parent_dir_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("vigil.db");
    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::NoParentDir { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("create it"), "{msg}");

    let err = Store::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::IsDirectory { .. }), "{err}");
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    let store = Store::open(&path).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, X'00', 0)",
    )
    .execute(&store.inner.writer)
    .await
    .unwrap();
    store.close().await;
    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema { version: 99990101000000, .. }), "{err}");
    assert!(err.to_string().contains("upgrade vigil"), "{err}");
}

#[tokio::test]
async fn not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. } | StoreError::Migrate { .. }), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[tokio::test]
async fn ingest_stores_once_and_counts_duplicates() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let mut foreign = alert(Category::SynFlood, Severity::High, BASE + 2);
    foreign.agent = Some(aid("someone-else"));
    let info = AgentInfo {
        hostname: "web-1.example".into(),
        os: "Debian 13".into(),
        version: "0.1.0".into(),
        interval_ms: 5000,
    };
    let stats = AgentStats { spool_bytes: 10, spool_batches: 2, dropped_samples: 3, dropped_alerts: 4 };
    let items = vec![
        Item::Sample(sample(BASE, 0)),
        Item::Sample(sample(BASE + 1, 1)),
        Item::Sample(sample(BASE + 2, 2)),
        Item::Alert(alert(Category::PortScan, Severity::Medium, BASE + 1)),
        Item::Alert(foreign.clone()),
        Item::Heartbeat(info.clone()),
        Item::Stats(stats),
    ];
    let out = ingest_at(&store, &a, BASE + 10, b"s1", &items).await;
    assert_eq!(out, IngestOutcome { samples: 3, alerts: 2, duplicates: 0, resolved: 0 });
    let again = ingest_at(&store, &a, BASE + 20, b"s2", &items).await;
    assert_eq!(again, IngestOutcome { samples: 0, alerts: 0, duplicates: 5, resolved: 0 });
    assert_eq!(count(&store, "metrics").await, 3);
    assert_eq!(count(&store, "alerts").await, 2);

    let row = store.get_agent(&a).await.unwrap().unwrap();
    assert_eq!(row.first_seen, t(BASE + 10));
    assert_eq!(row.last_seen, t(BASE + 20));
    assert_eq!(row.last_addr.as_deref(), Some(PEER));
    assert_eq!(row.info, Some(info));
    assert_eq!(row.stats, stats);
    assert_eq!(store.list_agents().await.unwrap(), vec![row]);
    assert_eq!(store.get_agent(&aid("nobody")).await.unwrap(), None);

    let stored = store.alerts(&AlertQuery { category: Some(Category::SynFlood), ..Default::default() }).await.unwrap();
    assert_eq!(stored.len(), 1);
    let s = &stored[0];
    assert_eq!(s.alert.agent, Some(a.clone()), "agent forced to the batch's");
    assert_eq!(s.peer_addr.as_deref(), Some(PEER));
    assert_eq!(s.received_at, t(BASE + 10));
    assert_eq!(s.resolved_at, None);
    let expected = Alert { agent: Some(a), ..foreign };
    assert_eq!(s.alert, expected);
}

#[tokio::test]
async fn agent_without_heartbeat_has_no_info() {
    let (_dir, store) = open_tmp().await;
    let a = aid("quiet");
    ingest(&store, &a, &[]).await;
    let row = store.get_agent(&a).await.unwrap().unwrap();
    assert_eq!(row.info, None);
    assert_eq!(row.stats, AgentStats::default());
}

#[tokio::test]
async fn non_finite_numbers_are_stored_as_zero() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let mut s = sample(BASE, 0);
    s.cpu_percent = f32::NAN;
    s.load_average[1] = f64::INFINITY;
    s.networks[0].tx_bytes_per_sec = f64::NAN;
    ingest(&store, &a, &[Item::Sample(s.clone())]).await;
    let back = store.latest_sample(&a).await.unwrap().unwrap();
    assert_eq!(back.cpu_percent, 0.0);
    assert_eq!(back.load_average, [0.5, 0.0, 0.125]);
    assert_eq!(back.networks[0].tx_bytes_per_sec, 0.0);
    assert_eq!(back.memory_percent, s.memory_percent);
}

#[tokio::test]
async fn metrics_range_is_half_open_ordered_and_limited() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let b = aid("web-2");
    // Inserted out of order, to check the ordering comes from the query.
    let order = [5, 1, 9, 0, 3, 7, 2, 8, 4, 6];
    let items: Vec<Item> = order.iter().map(|&i| Item::Sample(sample(BASE + i * 1000, i.unsigned_abs()))).collect();
    ingest(&store, &a, &items).await;
    ingest(&store, &b, &[Item::Sample(sample(BASE + 2500, 0))]).await;

    let ts = |v: &[HostSample]| -> Vec<i64> { v.iter().map(|s| s.timestamp.timestamp_millis() - BASE).collect() };
    let got = store.metrics(&a, Some(t(BASE + 2000)), Some(t(BASE + 5000)), 100).await.unwrap();
    assert_eq!(ts(&got), vec![2000, 3000, 4000]);
    let all = store.metrics(&a, None, None, u32::MAX).await.unwrap();
    assert_eq!(ts(&all), (0..10).map(|i| i * 1000).collect::<Vec<_>>());
    let first = store.metrics(&a, None, None, 2).await.unwrap();
    assert_eq!(ts(&first), vec![0, 1000]);
    let tail = store.metrics(&a, Some(t(BASE + 8000)), None, 100).await.unwrap();
    assert_eq!(ts(&tail), vec![8000, 9000]);
    let head = store.metrics(&a, None, Some(t(BASE + 1000)), 100).await.unwrap();
    assert_eq!(ts(&head), vec![0]);
    assert!(store.metrics(&a, None, None, 0).await.unwrap().is_empty());

    let latest = store.latest_sample(&a).await.unwrap().unwrap();
    assert_eq!(latest.timestamp, t(BASE + 9000));
    assert_eq!(store.latest_sample(&aid("nobody")).await.unwrap(), None);
}

#[tokio::test]
async fn metrics_limit_is_capped() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let n = i64::from(METRICS_LIMIT_MAX) + 5;
    let items: Vec<Item> = (0..n).map(|i| Item::Sample(sample(BASE + i, i.unsigned_abs()))).collect();
    let out = ingest(&store, &a, &items).await;
    assert_eq!(i64::from(out.samples), n);
    let got = store.metrics(&a, None, None, u32::MAX).await.unwrap();
    assert_eq!(got.len(), usize::try_from(METRICS_LIMIT_MAX).unwrap());
}

#[tokio::test]
async fn alert_filters_and_order() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let b = aid("web-2");
    let scan_a = alert(Category::PortScan, Severity::Medium, BASE + 1000);
    let flood = alert(Category::SynFlood, Severity::High, BASE + 2000);
    let cpu = alert(Category::HostCpuHigh, Severity::Medium, BASE + 3000);
    let honey = alert(Category::HoneypotContact, Severity::Critical, BASE + 4000);
    let scan_b = alert(Category::PortScan, Severity::Low, BASE + 5000);
    let integrity = alert(Category::IntegrityFailure, Severity::High, BASE + 6000);
    ingest(
        &store,
        &a,
        &[
            Item::Alert(cpu.clone()),
            Item::Alert(scan_a.clone()),
            Item::Alert(honey.clone()),
            Item::Alert(flood.clone()),
        ],
    )
    .await;
    ingest(&store, &b, &[Item::Alert(scan_b.clone())]).await;
    assert!(store.insert_alert(&integrity, None, t(BASE + DAY)).await.unwrap());
    assert!(!store.insert_alert(&integrity, None, t(BASE + DAY)).await.unwrap());

    let ids = |q: AlertQuery| {
        let store = store.clone();
        async move { store.alerts(&q).await.unwrap().into_iter().map(|s| s.alert.id).collect::<Vec<_>>() }
    };
    assert_eq!(ids(AlertQuery::default()).await, vec![integrity.id, scan_b.id, honey.id, cpu.id, flood.id, scan_a.id]);
    assert_eq!(
        ids(AlertQuery { category: Some(Category::PortScan), ..Default::default() }).await,
        vec![scan_b.id, scan_a.id]
    );
    assert_eq!(
        ids(AlertQuery { severity: Some(Severity::High), ..Default::default() }).await,
        vec![integrity.id, honey.id, flood.id]
    );
    assert_eq!(
        ids(AlertQuery { agent: Some(a.clone()), ..Default::default() }).await,
        vec![honey.id, cpu.id, flood.id, scan_a.id]
    );
    assert_eq!(
        ids(AlertQuery { since: Some(t(BASE + 3000)), until: Some(t(BASE + 5000)), ..Default::default() }).await,
        vec![honey.id, cpu.id]
    );
    assert_eq!(ids(AlertQuery { limit: Some(2), ..Default::default() }).await, vec![integrity.id, scan_b.id]);
    assert_eq!(
        ids(AlertQuery {
            agent: Some(a),
            severity: Some(Severity::Medium),
            category: Some(Category::PortScan),
            ..Default::default()
        })
        .await,
        vec![scan_a.id]
    );
    assert!(ids(AlertQuery { limit: Some(0), ..Default::default() }).await.is_empty());

    let server =
        store.alerts(&AlertQuery { category: Some(Category::IntegrityFailure), ..Default::default() }).await.unwrap();
    assert_eq!(server[0].alert, integrity);
    assert_eq!(server[0].peer_addr, None);
    // JSON shape: alert fields flattened beside what the server added.
    let v = serde_json::to_value(&server[0]).unwrap();
    assert_eq!(v["category"], "integrity_failure");
    assert!(v.get("received_at").is_some() && v.get("resolved_at").is_some());
}

#[tokio::test]
async fn alerts_default_limit_and_cap() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let n = i64::from(ALERTS_LIMIT_MAX) + 1;
    let items: Vec<Item> = (0..n).map(|i| Item::Alert(alert(Category::PortScan, Severity::Low, BASE + i))).collect();
    ingest(&store, &a, &items).await;
    let default = store.alerts(&AlertQuery::default()).await.unwrap();
    assert_eq!(default.len(), usize::try_from(ALERTS_LIMIT_DEFAULT).unwrap());
    let capped = store.alerts(&AlertQuery { limit: Some(u32::MAX), ..Default::default() }).await.unwrap();
    assert_eq!(capped.len(), usize::try_from(ALERTS_LIMIT_MAX).unwrap());
    assert!(capped.windows(2).all(|w| w[0].alert.timestamp > w[1].alert.timestamp));
}

#[tokio::test]
async fn resolved_applies_only_to_the_owning_agent() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let b = aid("web-2");
    let al = alert(Category::HostCpuHigh, Severity::Medium, BASE);
    ingest(&store, &a, &[Item::Alert(al.clone())]).await;
    let resolved = |at| Item::Resolved(AlertResolved { alert_id: al.id, category: al.category, at: t(at) });
    let resolved_at = || async { store.alerts(&AlertQuery::default()).await.unwrap()[0].resolved_at };

    let out = ingest(&store, &b, &[resolved(BASE + 100)]).await;
    assert_eq!(out.resolved, 0);
    assert_eq!(resolved_at().await, None);

    let out = ingest(&store, &a, &[resolved(BASE + 200)]).await;
    assert_eq!(out.resolved, 1);
    assert_eq!(resolved_at().await, Some(t(BASE + 200)));

    let out = ingest(&store, &a, &[resolved(BASE + 300)]).await;
    assert_eq!(out.resolved, 0, "already resolved");
    assert_eq!(resolved_at().await, Some(t(BASE + 200)));
}

#[tokio::test]
async fn replay_state_round_trips() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    assert_eq!(store.load_replay_state(&a).await.unwrap(), None);
    ingest_at(&store, &a, BASE, &[1, 2, 3, 0, 255], &[]).await;
    assert_eq!(store.load_replay_state(&a).await.unwrap(), Some(vec![1, 2, 3, 0, 255]));
    ingest_at(&store, &a, BASE + 1, &[9], &[]).await;
    assert_eq!(store.load_replay_state(&a).await.unwrap(), Some(vec![9]));
    assert_eq!(store.load_replay_state(&aid("web-2")).await.unwrap(), None);
}

#[tokio::test]
async fn retention_deletes_only_old_rows_in_chunks() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let old = i64::from(RETENTION_CHUNK) + 3;
    let mut items = Vec::new();
    for i in 0..old {
        items.push(Item::Sample(sample(BASE + i, i.unsigned_abs())));
        items.push(Item::Alert(alert(Category::PortScan, Severity::Low, BASE + i)));
    }
    // Newer rows: samples after the metrics cutoff, alerts after the alerts cutoff.
    for i in 0..3 {
        items.push(Item::Sample(sample(BASE + 10 * DAY + i, 0)));
        items.push(Item::Alert(alert(Category::PortScan, Severity::Low, BASE + 20 * DAY + i)));
    }
    ingest(&store, &a, &items).await;

    let report = store.apply_retention(t(BASE + 10 * DAY), t(BASE + 20 * DAY)).await.unwrap();
    let old_u = u64::try_from(old).unwrap();
    assert_eq!(report, RetentionReport { metrics_deleted: old_u, alerts_deleted: old_u });
    assert_eq!(count(&store, "metrics").await, 3);
    assert_eq!(count(&store, "alerts").await, 3);
    let again = store.apply_retention(t(BASE + 10 * DAY), t(BASE + 20 * DAY)).await.unwrap();
    assert_eq!(again, RetentionReport::default());
    // The cutoff is exclusive: rows at it stay.
    assert_eq!(store.metrics(&a, None, None, 10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn retention_with_small_chunks_deletes_everything_old() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let items: Vec<Item> = (0..20).map(|i| Item::Sample(sample(BASE + i, i.unsigned_abs()))).collect();
    ingest(&store, &a, &items).await;
    let report = store.apply_retention_chunked(t(BASE + 14), t(BASE), 7).await.unwrap();
    assert_eq!(report.metrics_deleted, 14);
    assert_eq!(count(&store, "metrics").await, 6);
}

#[tokio::test]
async fn api_keys_insert_get_count_revoke() {
    let (_dir, store) = open_tmp().await;
    assert_eq!(store.api_key_count().await.unwrap(), 0);
    let key = ApiKeyRow {
        id: "k1".into(),
        name: "ops laptop".into(),
        role: "admin".into(),
        hash: [0xab; 32],
        created_at: t(BASE),
        revoked_at: None,
    };
    store.insert_api_key(&key).await.unwrap();
    assert_eq!(store.api_key("k1").await.unwrap(), Some(key.clone()));
    assert_eq!(store.api_key("k2").await.unwrap(), None);
    assert_eq!(store.api_key_count().await.unwrap(), 1);

    let err = store.insert_api_key(&key).await.unwrap_err();
    assert!(matches!(err, StoreError::ApiKeyExists { .. }), "{err}");

    let dbg = format!("{key:?}");
    assert!(!dbg.contains("abab") && !dbg.contains("171"), "{dbg}");
    assert!(dbg.contains("k1"));

    assert!(store.revoke_api_key("k1", t(BASE + 5)).await.unwrap());
    assert!(!store.revoke_api_key("k1", t(BASE + 9)).await.unwrap());
    assert!(!store.revoke_api_key("nope", t(BASE)).await.unwrap());
    let back = store.api_key("k1").await.unwrap().unwrap();
    assert_eq!(back.revoked_at, Some(t(BASE + 5)));
    assert_eq!(store.api_key_count().await.unwrap(), 1, "revoked keys still count");
    assert_eq!(store.list_api_keys().await.unwrap(), vec![back]);
}

#[tokio::test]
async fn unreadable_rows_are_errors_naming_table_and_id() {
    let (_dir, store) = open_tmp().await;
    let a = aid("web-1");
    let al = alert(Category::PortScan, Severity::Low, BASE);
    let s = sample(BASE, 0);
    ingest(&store, &a, &[Item::Alert(al.clone()), Item::Sample(s.clone())]).await;

    sqlx::query("UPDATE alerts SET category = 'bogus'").execute(&store.inner.writer).await.unwrap();
    match store.alerts(&AlertQuery::default()).await {
        Err(StoreError::Corrupt { table, id, .. }) => {
            assert_eq!(table, "alerts");
            assert_eq!(id, al.id.to_string());
        }
        other => panic!("expected a corrupt-row error, got {other:?}"),
    }
    sqlx::query("UPDATE alerts SET category = 'port_scan', evidence = '{nope'")
        .execute(&store.inner.writer)
        .await
        .unwrap();
    let err = store.alerts(&AlertQuery::default()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { table: "alerts", .. }), "{err}");
    sqlx::query("UPDATE alerts SET evidence = '{}', src_port = 70000").execute(&store.inner.writer).await.unwrap();
    let err = store.alerts(&AlertQuery::default()).await.unwrap_err();
    assert!(err.to_string().contains("src_port"), "{err}");

    sqlx::query("UPDATE metrics SET data = '[1,2]'").execute(&store.inner.writer).await.unwrap();
    match store.latest_sample(&a).await {
        Err(StoreError::Corrupt { table, id, .. }) => {
            assert_eq!(table, "metrics");
            assert_eq!(id, s.id.to_string());
        }
        other => panic!("expected a corrupt-row error, got {other:?}"),
    }

    sqlx::query("UPDATE agents SET spool_bytes = -1").execute(&store.inner.writer).await.unwrap();
    let err = store.list_agents().await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { table: "agents", id, .. } if id == "web-1"), "{err}");
}

#[tokio::test]
async fn calls_after_close_fail_cleanly() {
    let (_dir, store) = open_tmp().await;
    let clone = store.clone();
    store.close().await;
    let err = clone.list_agents().await.unwrap_err();
    assert!(matches!(err, StoreError::Query { op: "list agents", .. }), "{err}");
}
