use super::*;
use crate::{IngestBatch, Store};
use vigil_model::{Alert, DiskUsage, Item, NetInterfaceRate};

const BASE: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn aid(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

async fn open_tmp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("vigil.db")).await.unwrap();
    (dir, store)
}

fn sample(ts: i64, cpu: f32) -> HostSample {
    HostSample {
        id: Uuid::now_v7(),
        timestamp: t(ts),
        boot_epoch: 1,
        index: 0,
        cpu_percent: cpu,
        cpu_per_core: vec![cpu],
        memory_used_bytes: 1,
        memory_total_bytes: 4,
        memory_percent: 25.0,
        swap_used_bytes: 0,
        swap_total_bytes: 0,
        load_average: [0.0; 3],
        disks: vec![
            DiskUsage { mount: "/".into(), fs_type: "ext4".into(), total_bytes: 10, used_bytes: 5, used_percent: 50.0 },
            DiskUsage {
                mount: "/d".into(),
                fs_type: "ext4".into(),
                total_bytes: 10,
                used_bytes: 9,
                used_percent: 90.0,
            },
        ],
        networks: vec![
            NetInterfaceRate {
                name: "eth0".into(),
                rx_bytes_per_sec: 100.0,
                tx_bytes_per_sec: 50.0,
                rx_packets_per_sec: 10.0,
                tx_packets_per_sec: 5.0,
            },
            NetInterfaceRate {
                name: "lo".into(),
                rx_bytes_per_sec: 1e9,
                tx_bytes_per_sec: 1e9,
                rx_packets_per_sec: 1e6,
                tx_packets_per_sec: 1e6,
            },
        ],
        process_count: 1,
        uptime_secs: 1,
    }
}

fn alert(ts: i64, sev: Severity, src: &str) -> Alert {
    let mut a = Alert::new(Category::PortScan, t(ts), "scan");
    a.severity = sev;
    a.src_ip = Some(src.parse().unwrap());
    a
}

async fn put(store: &Store, agent: &AgentId, items: &[Item]) {
    store
        .ingest(&IngestBatch { agent, peer: "127.0.0.1:1", received_at: t(BASE), replay_state: b"s", items })
        .await
        .unwrap();
}

#[tokio::test]
async fn status_changes_and_filters() {
    let (_d, store) = open_tmp().await;
    let a = aid("a1");
    let (x, y, z) = (
        alert(BASE, Severity::High, "10.0.0.1"),
        alert(BASE + 1, Severity::Low, "10.0.0.2"),
        alert(BASE + 2, Severity::Critical, "10.0.0.1"),
    );
    put(&store, &a, &[Item::Alert(x.clone()), Item::Alert(y.clone()), Item::Alert(z.clone())]).await;

    assert_eq!(store.acknowledge_alert(x.id, "alice", t(BASE + 10)).await.unwrap(), Change::Done);
    assert_eq!(store.acknowledge_alert(x.id, "bob", t(BASE + 11)).await.unwrap(), Change::Already);
    assert_eq!(store.acknowledge_alert(Uuid::now_v7(), "bob", t(BASE)).await.unwrap(), Change::Missing);
    assert_eq!(store.resolve_alert_by(y.id, "carol", t(BASE + 12)).await.unwrap(), Change::Done);
    assert_eq!(
        store.acknowledge_alert(y.id, "bob", t(BASE + 13)).await.unwrap(),
        Change::Already,
        "resolved alerts stay resolved"
    );

    let v = store.alert_view(x.id).await.unwrap().unwrap();
    assert_eq!((v.status, v.acked_by.as_deref()), (AlertStatus::Acknowledged, Some("alice")));
    let v = store.alert_view(y.id).await.unwrap().unwrap();
    assert_eq!((v.status, v.resolved_by.as_deref()), (AlertStatus::Resolved, Some("carol")));

    let page = |f: AlertFilter| {
        let store = store.clone();
        async move {
            store
                .alert_page(&AlertFilter { limit: 10, ..f })
                .await
                .unwrap()
                .iter()
                .map(|v| v.stored.alert.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(AlertFilter { status: Some(AlertStatus::Open), ..Default::default() }).await, vec![z.id]);
    assert_eq!(page(AlertFilter { status: Some(AlertStatus::Acknowledged), ..Default::default() }).await, vec![x.id]);
    assert_eq!(page(AlertFilter { min_severity: Some(Severity::High), ..Default::default() }).await, vec![z.id, x.id]);
    assert_eq!(page(AlertFilter { src_ip: Some("10.0.0.2".parse().unwrap()), ..Default::default() }).await, vec![y.id]);
    assert_eq!(
        page(AlertFilter { categories: vec![Category::SynFlood], ..Default::default() }).await,
        Vec::<Uuid>::new()
    );
    assert_eq!(page(AlertFilter { agent: Some(a.clone()), ..Default::default() }).await.len(), 3);
}

#[tokio::test]
async fn cursor_paging_visits_every_alert_once() {
    let (_d, store) = open_tmp().await;
    let a = aid("a1");
    // Several alerts share a timestamp: the id breaks ties.
    let items: Vec<Item> = (0..25).map(|i| Item::Alert(alert(BASE + (i / 3), Severity::Medium, "10.0.0.9"))).collect();
    put(&store, &a, &items).await;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = store.alert_page(&AlertFilter { cursor, limit: 4, ..Default::default() }).await.unwrap();
        let Some(last) = p.last() else { break };
        cursor = Some(AlertCursor { ts_ms: last.stored.alert.timestamp.timestamp_millis(), id: last.stored.alert.id });
        seen.extend(p.iter().map(|v| v.stored.alert.id));
    }
    assert_eq!(seen.len(), 25);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 25);
}

#[tokio::test]
async fn rollups_follow_inserts_and_retention() {
    let (_d, store) = open_tmp().await;
    let a = aid("a1");
    put(
        &store,
        &a,
        &[
            Item::Alert(alert(BASE, Severity::High, "10.0.0.1")),
            Item::Alert(alert(BASE + 1, Severity::High, "10.0.0.1")),
            Item::Alert(alert(BASE + HOUR, Severity::Low, "10.0.0.2")),
        ],
    )
    .await;
    let counts = store.alert_counts_by_hour(t(BASE - 2 * HOUR)).await.unwrap();
    assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), 3);
    assert!(counts.iter().any(|c| c.severity == Severity::High && c.count == 2));
    let top = store.top_sources(t(BASE - 2 * HOUR), 10).await.unwrap();
    assert_eq!(top[0], SourceCount { src_ip: "10.0.0.1".into(), count: 2 });
    assert_eq!(store.top_categories(t(BASE - 2 * HOUR), 5).await.unwrap()[0].count, 3);

    store.apply_retention(t(0), t(BASE + 10)).await.unwrap();
    let top = store.top_sources(t(BASE - 2 * HOUR), 10).await.unwrap();
    assert_eq!(top, vec![SourceCount { src_ip: "10.0.0.2".into(), count: 1 }]);
    assert_eq!(store.alert_counts_by_hour(t(0)).await.unwrap().iter().map(|c| c.count).sum::<u64>(), 1);
}

#[tokio::test]
async fn agents_with_latest_and_series() {
    let (_d, store) = open_tmp().await;
    let (a, b) = (aid("a1"), aid("b2"));
    put(
        &store,
        &a,
        &[
            Item::Sample(sample(BASE, 10.0)),
            Item::Sample(sample(BASE + 1000, 30.0)),
            Item::Sample(sample(BASE + 2500, 50.0)),
        ],
    )
    .await;
    put(
        &store,
        &b,
        &[Item::Heartbeat(vigil_model::AgentInfo {
            hostname: "h".into(),
            os: "o".into(),
            version: "v".into(),
            interval_ms: 7,
        })],
    )
    .await;
    assert_eq!(store.all_agents().await.unwrap(), store.list_agents().await.unwrap());
    let list = store.agents_with_latest().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].1.as_ref().unwrap().cpu_percent, 50.0);
    assert!(list[1].1.is_none());

    let s = store.metric_series(&a, t(BASE), t(BASE + 10_000), 2000, 100).await.unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].n, s[0].cpu), (2, 20.0));
    assert_eq!(s[0].disk, 90.0, "fullest disk");
    assert_eq!((s[0].rx_bps, s[0].tx_pps), (100.0, 5.0), "loopback left out");
    assert_eq!(MetricPoint::from_sample(&sample(BASE, 1.0)).rx_bps, 100.0);
}

#[tokio::test]
async fn blocks_silences_audit_sessions_incidents() {
    let (_d, store) = open_tmp().await;
    let b = BlockRow {
        id: Uuid::now_v7(),
        target: "203.0.113.7/32".into(),
        reason: "scanner".into(),
        created_at: t(BASE),
        created_by: "alice".into(),
        expires_at: t(BASE + HOUR),
        removed_at: None,
        removed_by: None,
    };
    store.insert_block(&b).await.unwrap();
    assert_eq!(store.blocks(t(BASE + 1), false, 10).await.unwrap(), vec![b.clone()]);
    assert!(store.blocks(t(BASE + HOUR), false, 10).await.unwrap().is_empty(), "lapsed");
    assert_eq!(store.remove_block(b.id, "bob", t(BASE + 2)).await.unwrap(), Change::Done);
    assert_eq!(store.remove_block(b.id, "bob", t(BASE + 2)).await.unwrap(), Change::Already);
    assert!(store.blocks(t(BASE + 3), false, 10).await.unwrap().is_empty());
    assert_eq!(store.blocks(t(BASE + 3), true, 10).await.unwrap().len(), 1);
    assert_eq!(store.block(b.id).await.unwrap().unwrap().removed_by.as_deref(), Some("bob"));

    let s = SilenceRow {
        id: Uuid::now_v7(),
        category: Some("port_scan".into()),
        agent: None,
        source: Some("10.0.0.0/8".into()),
        comment: "lab".into(),
        created_at: t(BASE),
        created_by: "alice".into(),
        expires_at: t(BASE + HOUR),
        removed_at: None,
        removed_by: None,
    };
    store.insert_silence(&s).await.unwrap();
    assert_eq!(store.silences(t(BASE), false, 10).await.unwrap(), vec![s.clone()]);
    assert_eq!(store.remove_silence(s.id, "x", t(BASE)).await.unwrap(), Change::Done);
    assert_eq!(store.remove_silence(Uuid::now_v7(), "x", t(BASE)).await.unwrap(), Change::Missing);

    for i in 0..3 {
        let e = AuditEntry {
            id: 0,
            ts: t(BASE + i),
            actor_key: Some("k".into()),
            actor_name: Some(if i == 1 { "bob" } else { "alice" }.into()),
            role: Some("admin".into()),
            via: Some("key".into()),
            client: None,
            method: "POST".into(),
            path: "/api/v1/blocks".into(),
            status: 201,
            detail: Some(format!("n{i}")),
        };
        store.insert_audit(&e).await.unwrap();
    }
    let log = store.audit_log(None, None, 2).await.unwrap();
    assert_eq!(log.iter().map(|e| e.detail.clone().unwrap()).collect::<Vec<_>>(), ["n2", "n1"]);
    let older = store.audit_log(Some(log[1].id), None, 10).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(store.audit_log(None, Some("bob"), 10).await.unwrap().len(), 1);

    store
        .insert_api_key(&crate::ApiKeyRow {
            id: "0123456789abcdef".into(),
            name: "n".into(),
            role: "viewer".into(),
            hash: [1; 32],
            created_at: t(BASE),
            revoked_at: None,
        })
        .await
        .unwrap();
    let sess = SessionRow {
        id_hash: [7; 32],
        key_id: "0123456789abcdef".into(),
        created_at: t(BASE),
        expires_at: t(BASE + HOUR),
        client: None,
    };
    store.insert_session(&sess).await.unwrap();
    assert_eq!(store.session(&[7; 32], t(BASE + 1)).await.unwrap(), Some(sess.clone()));
    assert_eq!(store.session(&[7; 32], t(BASE + HOUR)).await.unwrap(), None, "lapsed");
    assert_eq!(store.session(&[8; 32], t(BASE)).await.unwrap(), None);
    assert!(!format!("{sess:?}").contains("7, 7"), "hash not in Debug");
    assert_eq!(store.delete_expired_sessions(t(BASE + HOUR)).await.unwrap(), 1);

    let mut inc = IncidentRow {
        id: Uuid::now_v7(),
        opened_at: t(BASE),
        updated_at: t(BASE),
        status: IncidentStatus::Open,
        severity: Severity::High,
        title: "DoS against 10.0.0.1".into(),
        category: "dos_suspected".into(),
        target: Some("10.0.0.1".into()),
        alert_ids: vec![Uuid::now_v7()],
        evidence: serde_json::json!({"agents": 3}),
    };
    store.upsert_incident(&inc).await.unwrap();
    inc.updated_at = t(BASE + 5);
    inc.severity = Severity::Critical;
    let opened = inc.opened_at;
    inc.opened_at = t(BASE + 99);
    store.upsert_incident(&inc).await.unwrap();
    let got = store.incident(inc.id).await.unwrap().unwrap();
    assert_eq!((got.severity, got.opened_at), (Severity::Critical, opened));
    assert_eq!(store.incident_count(IncidentStatus::Open).await.unwrap(), 1);
    let list =
        store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), before: None, limit: 10 }).await.unwrap();
    assert_eq!(list.len(), 1);
    let none = store
        .incidents(&IncidentFilter { status: None, before: Some((got.updated_at, got.id)), limit: 10 })
        .await
        .unwrap();
    assert!(none.is_empty());
}
