//! The REST API end to end: every route's authentication and roles, 400s that name the
//! bad field, paging and filters, alert status, blocks, silences, keys, sessions with
//! CSRF, rate limits, the audit log, OpenAPI, Prometheus metrics, the dashboard files,
//! and a schema-driven fuzz run that must never get a 5xx.

use std::net::SocketAddr;
use std::process::Command;

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use vigil_model::{AgentInfo, Alert, Category, HostSample, Item, NetInterfaceRate, Severity};
use vigil_server::{ApiSettings, RunningServer, ServerSettings};
use vigil_testkit::{Lab, RawAgent};

/// A server with generous rate limits and one key per role.
pub struct Env {
    pub lab: Lab,
    pub server: RunningServer,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub admin: String,
    pub operator: String,
    pub viewer: String,
}

pub fn loose_limits() -> ApiSettings {
    ApiSettings {
        client_rate: 100_000,
        client_burst: 100_000,
        key_rate: 100_000,
        key_burst: 100_000,
        ..Default::default()
    }
}

pub async fn start(lab: Lab, api: ApiSettings) -> Env {
    let settings = ServerSettings { api, ..lab.settings(SocketAddr::from(([127, 0, 0, 1], 0))) };
    let server = vigil_server::start(settings).await.unwrap();
    let addr = server.local_addr;
    let client = lab.api_client();
    let admin = lab.admin_key();
    let mut env = Env { lab, server, addr, client, admin, operator: String::new(), viewer: String::new() };
    for role in ["operator", "viewer"] {
        let (st, body, _) = env
            .call(Method::POST, "/api/v1/keys", Some(&env.admin.clone()), Some(json!({"name": role, "role": role})))
            .await;
        assert_eq!(st, 201, "{body}");
        let key = body["key"].as_str().unwrap().to_owned();
        if role == "operator" {
            env.operator = key;
        } else {
            env.viewer = key;
        }
    }
    env
}

pub async fn env() -> Env {
    start(Lab::new().unwrap(), loose_limits()).await
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// One call with an optional key and JSON body: status, JSON body (Null if none), headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
    }

    pub async fn get(&self, path: &str, key: &str) -> Value {
        let (st, body, _) = self.call(Method::GET, path, Some(key), None).await;
        assert_eq!(st, 200, "GET {path}: {body}");
        body
    }

    /// An agent that speaks the protocol by hand.
    pub fn raw_agent(&self, id: &str) -> RawAgent {
        let (_, cred) = self.lab.issue(id, None).unwrap();
        RawAgent::new(cred, self.addr).unwrap()
    }
}

pub fn sample(cpu: f32) -> HostSample {
    HostSample {
        id: uuid::Uuid::now_v7(),
        timestamp: Utc::now(),
        boot_epoch: 1,
        index: 0,
        cpu_percent: cpu,
        cpu_per_core: vec![cpu],
        memory_used_bytes: 1 << 30,
        memory_total_bytes: 4 << 30,
        memory_percent: 25.0,
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
        networks: vec![NetInterfaceRate {
            name: "eth0".into(),
            rx_bytes_per_sec: 1000.0,
            tx_bytes_per_sec: 500.0,
            rx_packets_per_sec: 10.0,
            tx_packets_per_sec: 5.0,
        }],
        process_count: 10,
        uptime_secs: 100,
    }
}

pub fn heartbeat() -> Item {
    Item::Heartbeat(AgentInfo { hostname: "host".into(), os: "test".into(), version: "0".into(), interval_ms: 1000 })
}

pub fn alert(category: Category, severity: Severity, src: &str) -> Alert {
    let mut a = Alert::new(category, Utc::now(), format!("{category} from {src}"));
    a.severity = severity;
    a.src_ip = Some(src.parse().unwrap());
    a.dst_ip = Some("10.0.0.1".parse().unwrap());
    a
}

pub async fn send(raw: &mut RawAgent, items: Vec<Item>) {
    let body = raw.seal(&items);
    let (st, resp) = raw.post(body).await.unwrap();
    assert_eq!(st, 200, "{resp}");
}

/// An agent with one alert stored; returns the alert id.
async fn seed(env: &Env) -> String {
    let mut raw = env.raw_agent("web-01");
    let a = alert(Category::PortScan, Severity::High, "203.0.113.9");
    let id = a.id.to_string();
    send(&mut raw, vec![heartbeat(), Item::Sample(sample(10.0)), Item::Alert(a)]).await;
    id
}

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Need {
    Public,
    Viewer,
    Operator,
    Admin,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_missing_keys_and_lower_roles() {
    let env = env().await;
    let alert_id = seed(&env).await;
    let (_, block, _) = env
        .call(Method::POST, "/api/v1/blocks", Some(&env.admin), Some(json!({"target": "198.51.100.7", "reason": "r"})))
        .await;
    let (_, silence, _) = env
        .call(
            Method::POST,
            "/api/v1/silences",
            Some(&env.admin),
            Some(json!({"category": "port_scan", "comment": "c"})),
        )
        .await;
    let incident = uuid::Uuid::now_v7();
    env.server
        .state
        .store
        .upsert_incident(&vigil_store::IncidentRow {
            id: incident,
            opened_at: Utc::now(),
            updated_at: Utc::now(),
            status: vigil_store::IncidentStatus::Open,
            severity: Severity::High,
            title: "scan of many hosts".into(),
            category: "port_scan".into(),
            target: None,
            alert_ids: vec![alert_id.parse().unwrap()],
            evidence: json!({}),
        })
        .await
        .unwrap();
    let (_, victim, _) = env
        .call(Method::POST, "/api/v1/keys", Some(&env.admin), Some(json!({"name": "victim", "role": "viewer"})))
        .await;
    let routes: Vec<(Method, String, Need, Option<Value>)> = vec![
        (Method::GET, "/api/v1/health".into(), Need::Public, None),
        (Method::GET, "/api/v1/openapi.json".into(), Need::Public, None),
        (Method::GET, "/api/v1/overview".into(), Need::Viewer, None),
        (Method::GET, "/api/v1/auth/session".into(), Need::Viewer, None),
        (Method::GET, "/api/v1/agents".into(), Need::Viewer, None),
        (Method::GET, "/api/v1/agents/web-01".into(), Need::Viewer, None),
        (Method::GET, "/api/v1/agents/web-01/metrics?step=10s".into(), Need::Viewer, None),
        (Method::GET, "/api/v1/alerts".into(), Need::Viewer, None),
        (Method::GET, format!("/api/v1/alerts/{alert_id}"), Need::Viewer, None),
        (Method::POST, format!("/api/v1/alerts/{alert_id}/ack"), Need::Operator, None),
        (Method::POST, format!("/api/v1/alerts/{alert_id}/resolve"), Need::Operator, None),
        (Method::GET, "/api/v1/incidents".into(), Need::Viewer, None),
        (Method::GET, format!("/api/v1/incidents/{incident}"), Need::Viewer, None),
        (Method::GET, "/api/v1/network".into(), Need::Viewer, None),
        (Method::GET, "/api/v1/blocks".into(), Need::Viewer, None),
        (
            Method::POST,
            "/api/v1/blocks".into(),
            Need::Operator,
            Some(json!({"ip": "192.0.2.1", "ttl": "1h", "reason": "x"})),
        ),
        (Method::DELETE, format!("/api/v1/blocks/{}", block["id"].as_str().unwrap()), Need::Operator, None),
        (Method::GET, "/api/v1/silences".into(), Need::Viewer, None),
        (Method::POST, "/api/v1/silences".into(), Need::Operator, Some(json!({"agent": "web-01", "comment": "x"}))),
        (Method::DELETE, format!("/api/v1/silences/{}", silence["id"].as_str().unwrap()), Need::Operator, None),
        (Method::GET, "/api/v1/keys".into(), Need::Admin, None),
        (Method::POST, "/api/v1/keys".into(), Need::Admin, Some(json!({"name": "n", "role": "viewer"}))),
        (Method::DELETE, format!("/api/v1/keys/{}", victim["id"].as_str().unwrap()), Need::Admin, None),
        (Method::GET, "/api/v1/audit".into(), Need::Admin, None),
        (Method::GET, "/metrics".into(), Need::Viewer, None),
        (Method::POST, "/api/v1/auth/logout".into(), Need::Viewer, None),
    ];
    let keys =
        [(Need::Viewer, env.viewer.clone()), (Need::Operator, env.operator.clone()), (Need::Admin, env.admin.clone())];
    for (method, path, need, body) in &routes {
        let (st, resp, _) = env.call(method.clone(), path, None, body.clone()).await;
        if *need == Need::Public {
            assert_eq!(st, 200, "{method} {path} is public: {resp}");
            continue;
        }
        assert_eq!(st, 401, "{method} {path} without a key: {resp}");
        assert_eq!(resp["error"]["code"], "unauthorized", "{method} {path}");
        let (st, resp, _) = env
            .call(
                method.clone(),
                path,
                Some("vgl_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                body.clone(),
            )
            .await;
        assert_eq!(st, 401, "{method} {path} with a wrong key: {resp}");
        for (role, key) in &keys {
            let (st, resp, _) = env.call(method.clone(), path, Some(key), body.clone()).await;
            if role < need {
                assert_eq!(st, 403, "{method} {path} with a lower role: {resp}");
                let need_name = match need {
                    Need::Operator => "operator",
                    Need::Admin => "admin",
                    _ => "viewer",
                };
                assert!(resp["error"]["message"].as_str().unwrap().contains(need_name), "{resp}");
            } else {
                assert!((200..300).contains(&st), "{method} {path} with role enough: {st} {resp}");
            }
        }
    }
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_naming_the_field() {
    let env = env().await;
    seed(&env).await;
    let k = &env.admin;
    let cases: Vec<(Method, &str, Option<Value>, &str)> = vec![
        (Method::GET, "/api/v1/alerts?severity=urgent", None, "severity"),
        (Method::GET, "/api/v1/alerts?category=port_scan,nope", None, "category"),
        (Method::GET, "/api/v1/alerts?status=done", None, "status"),
        (Method::GET, "/api/v1/alerts?since=yesterday", None, "since"),
        (Method::GET, "/api/v1/alerts?limit=0", None, "limit"),
        (Method::GET, "/api/v1/alerts?limit=100000", None, "limit"),
        (Method::GET, "/api/v1/alerts?cursor=garbage", None, "cursor"),
        (Method::GET, "/api/v1/alerts?src_ip=300.1.1.1", None, "src_ip"),
        (Method::GET, "/api/v1/alerts?agent=bad%20id", None, "agent"),
        (Method::GET, "/api/v1/alerts?colour=red", None, "colour"),
        (Method::GET, "/api/v1/alerts/not-a-uuid", None, "id"),
        (Method::GET, "/api/v1/agents/web-01/metrics?step=0s", None, "step"),
        (Method::GET, "/api/v1/agents/web-01/metrics?step=1s&since=2000-01-01T00:00:00Z", None, "step"),
        (Method::GET, "/api/v1/agents/bad%20id", None, "id"),
        (Method::GET, "/api/v1/agents?status=asleep", None, "status"),
        (Method::GET, "/api/v1/incidents?status=x", None, "status"),
        (Method::GET, "/api/v1/overview?hours=0", None, "hours"),
        (Method::GET, "/api/v1/events?last_event_id=abc", None, "last_event_id"),
        (Method::GET, "/api/v1/events?types=alert,gossip", None, "types"),
        (Method::GET, "/api/v1/audit?cursor=-1", None, "cursor"),
        (Method::GET, "/api/v1/blocks?all=maybe", None, "all"),
        (Method::POST, "/api/v1/blocks", Some(json!({"target": "not an ip", "reason": "r"})), "target"),
        (Method::POST, "/api/v1/blocks", Some(json!({"target": "0.0.0.0/0", "reason": "r"})), "target"),
        (Method::POST, "/api/v1/blocks", Some(json!({"target": "192.0.2.1", "reason": "r", "ttl": "5s"})), "ttl"),
        (Method::POST, "/api/v1/blocks", Some(json!({"target": "192.0.2.1", "reason": "r", "ttl": "soon"})), "ttl"),
        (Method::POST, "/api/v1/blocks", Some(json!({"target": "192.0.2.1", "reason": ""})), "reason"),
        (Method::POST, "/api/v1/blocks", Some(json!({"target": "192.0.2.1"})), "reason"),
        (Method::POST, "/api/v1/blocks", Some(json!({"target": "192.0.2.1", "reason": "r", "colour": 1})), "colour"),
        (Method::POST, "/api/v1/blocks", Some(json!({"target": 5, "reason": "r"})), "target"),
        (Method::POST, "/api/v1/silences", Some(json!({"comment": "all"})), "category"),
        (Method::POST, "/api/v1/silences", Some(json!({"category": "nope", "comment": "c"})), "category"),
        (Method::POST, "/api/v1/silences", Some(json!({"source": "10.0.0.0/33", "comment": "c"})), "source"),
        (Method::POST, "/api/v1/keys", Some(json!({"name": "x", "role": "root"})), "role"),
        (Method::POST, "/api/v1/keys", Some(json!({"role": "viewer"})), "name"),
        (Method::POST, "/api/v1/auth/login", Some(json!({"token": "x"})), "token"),
    ];
    for (method, path, body, field) in cases {
        let (st, resp, _) = env.call(method.clone(), path, Some(k), body).await;
        assert_eq!(st, 400, "{method} {path}: {resp}");
        assert_eq!(resp["error"]["code"], "bad_request", "{path}");
        let msg = resp["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("`{field}`")) || msg.contains(field),
            "{method} {path}: {msg:?} should name {field}"
        );
    }
    // A body that is not JSON at all.
    let resp = env
        .client
        .post(env.url("/api/v1/blocks"))
        .header("X-API-Key", k)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // Unknown routes are JSON 404s.
    let (st, resp, _) = env.call(Method::GET, "/api/v1/nothing-here", Some(k), None).await;
    assert_eq!((st, resp["error"]["code"].as_str()), (404, Some("not_found")));
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_filter_and_change_status() {
    let env = env().await;
    let mut raw = env.raw_agent("edge-1");
    let mut other = env.raw_agent("edge-2");
    let mut items = vec![heartbeat()];
    let mut ids = Vec::new();
    for i in 0..23 {
        let sev = if i % 4 == 0 { Severity::Critical } else { Severity::Low };
        let cat = if i % 3 == 0 { Category::SynFlood } else { Category::PortScan };
        let a = alert(cat, sev, &format!("198.51.100.{}", i % 5));
        ids.push(a.id.to_string());
        items.push(Item::Alert(a));
    }
    send(&mut raw, items).await;
    // Against another host: seven alerts of medium or more from two agents against one
    // target within seconds would be correlated into a dos_suspected alert of the
    // server's own (tests/it/correlation.rs), and this test counts the agents' alerts.
    let mut brute = alert(Category::BruteForce, Severity::Medium, "192.0.2.44");
    brute.dst_ip = Some("10.0.0.2".parse().unwrap());
    send(&mut other, vec![Item::Alert(brute)]).await;

    // Cursor paging visits every alert exactly once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/api/v1/alerts?limit=7&agent=edge-1".to_string(),
            Some(c) => format!("/api/v1/alerts?limit=7&agent=edge-1&cursor={c}"),
        };
        let page = env.get(&path, &env.viewer).await;
        let got = page["alerts"].as_array().unwrap();
        assert!(got.len() <= 7);
        seen.extend(got.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 23);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 23, "no alert twice");

    let count = |v: &Value| v["alerts"].as_array().unwrap().len();
    assert_eq!(count(&env.get("/api/v1/alerts?severity=critical&limit=500", &env.viewer).await), 6);
    assert_eq!(count(&env.get("/api/v1/alerts?category=syn_flood&limit=500", &env.viewer).await), 8);
    assert_eq!(count(&env.get("/api/v1/alerts?category=syn_flood,brute_force&limit=500", &env.viewer).await), 9);
    assert_eq!(count(&env.get("/api/v1/alerts?src_ip=198.51.100.0&limit=500", &env.viewer).await), 5);
    assert_eq!(count(&env.get("/api/v1/alerts?agent=edge-2", &env.viewer).await), 1);
    assert_eq!(count(&env.get("/api/v1/alerts?status=open&limit=500", &env.viewer).await), 24);

    // Acknowledge and resolve as an operator; the API shows who and when.
    let (st, v, _) = env.call(Method::POST, &format!("/api/v1/alerts/{}/ack", ids[0]), Some(&env.operator), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["status"].as_str(), v["acked_by"].as_str()), (Some("acknowledged"), Some("operator")));
    let (st, v, _) =
        env.call(Method::POST, &format!("/api/v1/alerts/{}/resolve", ids[1]), Some(&env.operator), None).await;
    assert_eq!(st, 200);
    assert_eq!((v["status"].as_str(), v["resolved_by"].as_str()), (Some("resolved"), Some("operator")));
    // Idempotent.
    let (st, v, _) = env.call(Method::POST, &format!("/api/v1/alerts/{}/ack", ids[0]), Some(&env.operator), None).await;
    assert_eq!((st, v["acked_by"].as_str()), (200, Some("operator")));
    assert_eq!(count(&env.get("/api/v1/alerts?status=acknowledged", &env.viewer).await), 1);
    assert_eq!(count(&env.get("/api/v1/alerts?status=resolved", &env.viewer).await), 1);
    let (st, _, _) = env
        .call(Method::POST, &format!("/api/v1/alerts/{}/ack", uuid::Uuid::now_v7()), Some(&env.operator), None)
        .await;
    assert_eq!(st, 404);

    // The audit log has who did what.
    let audit = env.get("/api/v1/audit?actor=operator", &env.admin).await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["path"] == format!("/api/v1/alerts/{}/ack", ids[0])
            && e["actor_name"] == "operator"
            && e["role"] == "operator"
            && e["status"] == 200
            && e["detail"].as_str().unwrap().contains("acknowledge")),
        "{audit}"
    );
    // Refused attempts are audited too.
    env.call(Method::POST, &format!("/api/v1/alerts/{}/ack", ids[2]), Some(&env.viewer), None).await;
    let audit = env.get("/api/v1/audit?actor=viewer", &env.admin).await;
    assert!(audit["entries"].as_array().unwrap().iter().any(|e| e["status"] == 403), "{audit}");

    // Overview roll-ups and the network view.
    let o = env.get("/api/v1/overview", &env.viewer).await;
    assert_eq!(o["alerts_total"], 24);
    assert_eq!(o["agents"]["total"], 2);
    assert_eq!(o["top_sources"].as_array().unwrap().len(), 6);
    let n = env.get("/api/v1/network", &env.viewer).await;
    assert_eq!(n["agents"].as_array().unwrap().len(), 2);
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_series_blocks_silences_keys() {
    let env = env().await;
    let mut raw = env.raw_agent("db-1");
    let mut items = vec![heartbeat()];
    for cpu in [10.0, 20.0, 30.0] {
        items.push(Item::Sample(sample(cpu)));
    }
    send(&mut raw, items).await;
    let s = env.get("/api/v1/agents/db-1/metrics?step=1h", &env.viewer).await;
    let points = s["points"].as_array().unwrap();
    let n: u64 = points.iter().map(|p| p["n"].as_u64().unwrap()).sum();
    assert_eq!(n, 3, "{s}");
    assert!(points.iter().all(|p| p["rx_bps"] == 1000.0), "{s}");
    let raw_s = env.get("/api/v1/agents/db-1/metrics?limit=2", &env.viewer).await;
    assert_eq!(raw_s["samples"].as_array().unwrap().len(), 2);
    let a = env.get("/api/v1/agents", &env.viewer).await;
    assert_eq!(a["agents"][0]["latest"]["rx_bps"], 1000.0);
    assert_eq!(a["agents"][0]["status"], "online");
    assert_eq!(env.get("/api/v1/agents?status=offline", &env.viewer).await["agents"].as_array().unwrap().len(), 0);

    // Blocks: add, list, remove; shown with who and when.
    let (st, b, _) = env
        .call(
            Method::POST,
            "/api/v1/blocks",
            Some(&env.operator),
            Some(json!({"cidr": "198.51.100.77/24", "ttl": 600, "reason": "scanner"})),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["target"], "198.51.100.0/24");
    assert_eq!(b["created_by"], "operator");
    let list = env.get("/api/v1/blocks", &env.viewer).await;
    assert_eq!(list["blocks"].as_array().unwrap().len(), 1);
    let id = b["id"].as_str().unwrap();
    let (st, removed, _) = env.call(Method::DELETE, &format!("/api/v1/blocks/{id}"), Some(&env.operator), None).await;
    assert_eq!((st, removed["removed_by"].as_str()), (200, Some("operator")));
    assert!(env.get("/api/v1/blocks", &env.viewer).await["blocks"].as_array().unwrap().is_empty());
    assert_eq!(env.get("/api/v1/blocks?all=true", &env.viewer).await["blocks"].as_array().unwrap().len(), 1);
    let (st, _, _) =
        env.call(Method::DELETE, &format!("/api/v1/blocks/{}", uuid::Uuid::now_v7()), Some(&env.operator), None).await;
    assert_eq!(st, 404);

    // Silences.
    let (st, s, _) = env
        .call(
            Method::POST,
            "/api/v1/silences",
            Some(&env.operator),
            Some(json!({"source": "10.0.0.0/8", "comment": "lab", "ttl": "2h"})),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    assert_eq!(env.get("/api/v1/silences", &env.viewer).await["silences"].as_array().unwrap().len(), 1);
    let (st, _, _) = env
        .call(Method::DELETE, &format!("/api/v1/silences/{}", s["id"].as_str().unwrap()), Some(&env.operator), None)
        .await;
    assert_eq!(st, 200);

    // Keys: a new key works at once, a revoked one stops at once, nobody revokes their own.
    let (st, k, _) =
        env.call(Method::POST, "/api/v1/keys", Some(&env.admin), Some(json!({"name": "ci", "role": "viewer"}))).await;
    assert_eq!(st, 201);
    let text = k["key"].as_str().unwrap();
    env.get("/api/v1/agents", text).await;
    let list = env.get("/api/v1/keys", &env.admin).await;
    assert!(!list.to_string().contains(text), "secrets are never listed");
    let (st, _, _) =
        env.call(Method::DELETE, &format!("/api/v1/keys/{}", k["id"].as_str().unwrap()), Some(&env.admin), None).await;
    assert_eq!(st, 200);
    let (st, _, _) = env.call(Method::GET, "/api/v1/agents", Some(text), None).await;
    assert_eq!(st, 401);
    let me = env.get("/api/v1/auth/session", &env.admin).await;
    let (st, body, _) = env
        .call(Method::DELETE, &format!("/api/v1/keys/{}", me["key_id"].as_str().unwrap()), Some(&env.admin), None)
        .await;
    assert_eq!(st, 409, "{body}");
    env.server.shutdown().await;
}

fn cookie_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let v = headers.get("set-cookie")?.to_str().ok()?;
    v.split(';').next().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_use_strict_cookies_and_csrf_tokens() {
    let env = env().await;
    let alert_id = seed(&env).await;
    // A wrong key cannot log in, and gets no cookie.
    let (st, body, headers) =
        env.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"key": "vgl_0000000000000000_nope"}))).await;
    assert_eq!(st, 401, "{body}");
    assert!(headers.get("set-cookie").is_none());

    let (st, me, headers) =
        env.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"key": env.operator}))).await;
    assert_eq!(st, 200, "{me}");
    let set = headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "__Host-vigil_session="] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = cookie_of(&headers).unwrap();
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(me["role"], "operator");

    let with_cookie = |m: Method, p: &str| env.client.request(m, env.url(p)).header("cookie", cookie.clone());
    let r = with_cookie(Method::GET, "/api/v1/auth/session").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!((info["via"].as_str(), info["csrf_token"].as_str()), (Some("session"), Some(csrf.as_str())));
    // Reads need no token; changes do.
    assert_eq!(with_cookie(Method::GET, "/api/v1/alerts").send().await.unwrap().status().as_u16(), 200);
    let ack = format!("/api/v1/alerts/{alert_id}/ack");
    let r = with_cookie(Method::POST, &ack).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = with_cookie(Method::POST, &ack).header("x-csrf-token", "wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = with_cookie(Method::POST, &ack).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let audit = env.get("/api/v1/audit", &env.admin).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == ack && e["via"] == "session" && e["status"] == 200),
        "{audit}"
    );
    // Logout ends the session and clears the cookie.
    let r = with_cookie(Method::POST, "/api/v1/auth/logout").header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(with_cookie(Method::GET, "/api/v1/alerts").send().await.unwrap().status().as_u16(), 401);
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let api = ApiSettings { client_rate: 1, client_burst: 5, ..ApiSettings::default() };
    let lab = Lab::new().unwrap();
    let settings = ServerSettings { api, ..lab.settings(SocketAddr::from(([127, 0, 0, 1], 0))) };
    let server = vigil_server::start(settings).await.unwrap();
    let client = lab.api_client();
    let url = format!("https://localhost:{}/api/v1/health", server.local_addr.port());
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = client.get(&url).send().await.unwrap();
        statuses.push((r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned())));
    }
    assert!(statuses[..5].iter().all(|(s, _)| *s == 200), "{statuses:?}");
    let (st, retry) = statuses.last().unwrap();
    assert_eq!(*st, 429, "{statuses:?}");
    assert!(retry.as_deref().is_some_and(|r| r.parse::<u64>().unwrap() >= 1), "{statuses:?}");

    // The per-key limit holds across addresses: here, one key, many requests.
    let env = start(Lab::new().unwrap(), ApiSettings { key_rate: 1, key_burst: 3, ..loose_limits() }).await;
    let mut last = 0;
    for _ in 0..6 {
        last = env.call(Method::GET, "/api/v1/agents", Some(&env.viewer), None).await.0;
    }
    assert_eq!(last, 429);
    // Another key is not affected.
    assert_eq!(env.call(Method::GET, "/api/v1/agents", Some(&env.operator), None).await.0, 200);
    env.server.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_route_and_each_is_served() {
    let env = env().await;
    let (st, doc, _) = env.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    // The routes the dashboard, the docs and the issue name: all documented.
    for p in [
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/agents/{id}/metrics",
        "/api/v1/alerts",
        "/api/v1/alerts/{id}",
        "/api/v1/alerts/{id}/ack",
        "/api/v1/alerts/{id}/resolve",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/network",
        "/api/v1/blocks",
        "/api/v1/blocks/{id}",
        "/api/v1/silences",
        "/api/v1/silences/{id}",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
        "/api/v1/audit",
        "/api/v1/events",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/session",
        "/api/v1/overview",
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/metrics",
        "/agent/v1/ingest",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    assert_eq!(doc, serde_json::to_value(vigil_server::openapi()).unwrap());
    // Every documented operation is answered by its handler, not by the fallback.
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            if path == "/api/v1/events" {
                continue; // a stream; covered in events.rs
            }
            let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (st, body, _) = env.call(m, &concrete, Some(&env.admin), None).await;
            let fallback = body["error"]["message"].as_str().is_some_and(|m| m.contains("no such route"));
            assert!(!fallback && st != 405, "{method} {path} not served: {st} {body}");
        }
    }
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_and_dashboard_files() {
    let env = env().await;
    let mut raw = env.raw_agent("web-9");
    send(
        &mut raw,
        vec![
            heartbeat(),
            Item::Sample(sample(42.0)),
            Item::Alert(alert(Category::PortScan, Severity::Low, "192.0.2.5")),
        ],
    )
    .await;
    let r = env.client.get(env.url("/metrics")).bearer_auth(&env.viewer).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    for needle in [
        "vigil_ingest_batches_total 1",
        "vigil_ingest_alerts_total 1",
        "vigil_ingest_refused_total{reason=\"replay\"} 0",
        "vigil_store_size_bytes ",
        // The batch's heartbeat, sample and alert, each offered to the pipeline once.
        "vigil_pipeline_inputs_total 3",
        "vigil_pipeline_inputs_dropped_total 0",
        "vigil_pipeline_queue_capacity ",
        "vigil_agent_cpu_percent{agent=\"web-9\"} 42",
        "vigil_agent_network_bytes_per_second{agent=\"web-9\",direction=\"rx\"} 1000",
        "vigil_agent_up{agent=\"web-9\"} 1",
        "vigil_agents{status=\"online\"} 1",
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }

    // Every metric the Grafana dashboard queries is served.
    let grafana = std::fs::read_to_string(
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../deploy/grafana/vigil.json"),
    )
    .unwrap();
    let grafana: Value = serde_json::from_str(&grafana).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for panel in grafana["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("vigil_") {
                let name: String = expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                names.insert(name);
            }
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(text.contains(&format!("\n{name}")), "Grafana queries {name}, which /metrics does not serve");
    }

    let r = env.client.get(env.url("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(r.text().await.unwrap().contains("/js/main.js"));
    let r = env.client.get(env.url("/js/main.js")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = env.client.get(env.url("/js/main.js")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 304);
    for bad in ["/js/../../Cargo.toml", "/.git/config", "/nope.js"] {
        let r = env.client.get(env.url(bad)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{bad}");
    }
    env.server.shutdown().await;
}

#[test]
fn apikey_cli_creates_lists_and_revokes() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let env = rt.block_on(env());
    let dir = env.lab.path().to_str().unwrap().to_owned();
    let vigil = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil")).env("VIGIL_LOG", "warn").args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = vigil(&["apikey", "create", "--data-dir", &dir, "--role", "operator", "--name", "alice"]);
    assert_eq!(code, 0, "{err}");
    let key = out.trim().to_owned();
    assert!(key.starts_with("vgl_"), "{out}");
    let me = rt.block_on(env.get("/api/v1/auth/session", &key));
    assert_eq!((me["name"].as_str(), me["role"].as_str()), (Some("alice"), Some("operator")));
    let (code, out, _) = vigil(&["apikey", "list", "--data-dir", &dir]);
    assert_eq!(code, 0);
    assert!(out.contains("alice") && out.contains("operator") && !out.contains(&key), "{out}");
    let id = me["key_id"].as_str().unwrap();
    let (code, out, err) = vigil(&["apikey", "revoke", id, "--data-dir", &dir]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    let (st, _, _) = rt.block_on(env.call(Method::GET, "/api/v1/agents", Some(&key), None));
    assert_eq!(st, 401);
    let (code, _, err) = vigil(&["apikey", "create", "--data-dir", &dir, "--role", "root", "--name", "x"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = vigil(&["apikey", "revoke", "ffffffffffffffff", "--data-dir", &dir]);
    assert_eq!(code, 2);
    assert!(err.contains("no API key"), "{err}");
    rt.block_on(env.server.shutdown());
}

// ---- schema-driven fuzzing ---------------------------------------------------------------

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// One documented operation: method, path template, parameters and body fields.
    #[derive(Debug, Clone)]
    struct Op {
        method: String,
        path: String,
        path_params: Vec<String>,
        query: Vec<(String, Vec<String>)>,
        body_fields: Vec<String>,
    }

    fn ops(doc: &Value) -> Vec<Op> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if path == "/api/v1/events" || path == "/agent/v1/ingest" {
                    continue; // a stream, and the agent protocol (fuzzed on its own)
                }
                let mut o = Op {
                    method: method.clone(),
                    path: path.clone(),
                    path_params: vec![],
                    query: vec![],
                    body_fields: vec![],
                };
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap().to_owned();
                    match p["in"].as_str() {
                        Some("path") => o.path_params.push(name),
                        Some("query") => {
                            let desc = p["description"].as_str().unwrap_or("");
                            // Values the docs mention are likelier to get past the first check.
                            let hints: Vec<String> = desc
                                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                                .filter(|w| w.len() > 1)
                                .map(str::to_owned)
                                .collect();
                            o.query.push((name, hints));
                        }
                        _ => {}
                    }
                }
                if let Some(r) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() {
                    let name = r.rsplit('/').next().unwrap();
                    let schema = &doc["components"]["schemas"][name];
                    o.body_fields =
                        schema["properties"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
                }
                out.push(o);
            }
        }
        out
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("00000000-0000-0000-0000-000000000000".to_string()),
            Just("web-01".to_string()),
            Just("10.0.0.0/8".to_string()),
            Just("2001:db8::1".to_string()),
            Just("-1".to_string()),
            Just("18446744073709551616".to_string()),
            Just("1e309".to_string()),
            Just("1h".to_string()),
            Just("..%2f..%2fetc%2fpasswd".to_string()),
            Just("%00".to_string()),
            Just("'; DROP TABLE alerts; --".to_string()),
            (0u64..u64::MAX).prop_map(|n| n.to_string()),
            "[a-z_,]{0,20}",
            "\\PC{0,30}",
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            value().prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[derive(Debug, Clone)]
    struct Case {
        op: usize,
        path_values: Vec<String>,
        query: Vec<(usize, String)>,
        extra_query: Option<(String, String)>,
        body: Option<Vec<(usize, Value)>>,
        raw_body: Option<Vec<u8>>,
    }

    fn case(n_ops: usize) -> impl Strategy<Value = Case> {
        (
            0..n_ops,
            prop::collection::vec(value(), 2),
            prop::collection::vec((0usize..16, value()), 0..4),
            prop::option::of(("[a-z]{1,8}", value())),
            prop::option::of(prop::collection::vec((0usize..8, json_value()), 0..5)),
            prop::option::weighted(0.1, prop::collection::vec(any::<u8>(), 0..64)),
        )
            .prop_map(|(op, path_values, query, extra_query, body, raw_body)| Case {
                op,
                path_values,
                query,
                extra_query,
                body,
                raw_body,
            })
    }

    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn api_answers_any_input_without_a_5xx() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let env = rt.block_on(async {
            let env = env().await;
            seed(&env).await;
            env
        });
        let doc = rt.block_on(env.get("/api/v1/openapi.json", &env.admin));
        let ops = ops(&doc);
        assert!(ops.len() >= 25, "{} operations", ops.len());
        let cases: u32 = std::env::var("VIGIL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        let served = std::cell::RefCell::new(std::collections::BTreeMap::<String, u32>::new());
        runner
            .run(&case(ops.len()), |c| {
                let op = &ops[c.op];
                let mut path = op.path.clone();
                for (i, p) in op.path_params.iter().enumerate() {
                    path = path.replace(&format!("{{{p}}}"), &enc(&c.path_values[i % c.path_values.len()]));
                }
                let mut q: Vec<String> = Vec::new();
                for (i, v) in &c.query {
                    if op.query.is_empty() {
                        break;
                    }
                    let (name, hints) = &op.query[i % op.query.len()];
                    let v = if !hints.is_empty() && i % 2 == 0 { hints[i % hints.len()].clone() } else { v.clone() };
                    q.push(format!("{}={}", enc(name), enc(&v)));
                }
                if let Some((k, v)) = &c.extra_query {
                    q.push(format!("{}={}", enc(k), enc(v)));
                }
                if !q.is_empty() {
                    path = format!("{path}?{}", q.join("&"));
                }
                // Never revoke the key the fuzzer runs with.
                if op.method == "delete" && op.path.starts_with("/api/v1/keys") {
                    return Ok(());
                }
                let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
                let mut req = env.client.request(method, env.url(&path)).header("X-API-Key", &env.admin);
                if let Some(raw) = &c.raw_body {
                    req = req.header("content-type", "application/json").body(raw.clone());
                } else if let Some(fields) = &c.body {
                    let mut obj = serde_json::Map::new();
                    for (i, v) in fields {
                        let name = if op.body_fields.is_empty() || *i >= op.body_fields.len() + 2 {
                            format!("x{i}")
                        } else {
                            op.body_fields[i % op.body_fields.len()].clone()
                        };
                        obj.insert(name, v.clone());
                    }
                    req = req.json(&Value::Object(obj));
                }
                let status = rt.block_on(async { req.send().await.map(|r| r.status().as_u16()) });
                let status = status.map_err(|e| TestCaseError::fail(format!("{} {path}: {e}", op.method)))?;
                *served.borrow_mut().entry(format!("{} {}", op.method, op.path)).or_default() += 1;
                prop_assert!(status < 500, "{} {} answered {}", op.method, path, status);
                Ok(())
            })
            .unwrap();
        let served = served.into_inner();
        assert!(served.len() >= ops.len() / 2, "too few operations reached: {served:?}");
        // The server still works after all that.
        let _ = rt.block_on(env.get("/api/v1/agents", &env.admin));
        rt.block_on(env.server.shutdown());
    }
}
