//! Live events over Server-Sent Events: a client that reconnects with `Last-Event-ID`
//! misses nothing, ids only grow, a position older than the ring gets `reset`.

use std::collections::BTreeSet;
use std::time::Duration;

use vigil_model::{Category, Item, Severity};

use crate::api::{alert, env, heartbeat, sample, send};

/// A minimal SSE reader over a streaming HTTP response.
pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

/// One event: id, type, data.
#[derive(Debug, Clone)]
pub struct Ev {
    pub id: Option<u64>,
    pub kind: String,
    pub data: serde_json::Value,
}

impl Sse {
    pub async fn open(env: &crate::api::Env, query: &str, last: Option<u64>) -> Sse {
        let mut req = env.client.get(env.url(&format!("/api/v1/events{query}"))).header("X-API-Key", &env.viewer);
        if let Some(id) = last {
            req = req.header("Last-Event-ID", id.to_string());
        }
        // The lab client has a 10 s overall timeout; streams read in short steps below.
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        Sse { resp, buf: String::new() }
    }

    /// The next event, or `None` after `limit` without one.
    pub async fn next(&mut self, limit: Duration) -> Option<Ev> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, "message".to_string(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && id.is_none() {
                    continue; // keep-alive comment
                }
                let data = serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data));
                return Some(Ev { id, kind, data });
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await.ok()?.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads until `want` events of `kind` arrived; every event read, in order.
    pub async fn collect(&mut self, kind: &str, want: usize) -> Vec<Ev> {
        let mut all = Vec::new();
        let mut n = 0;
        while n < want {
            let Some(ev) = self.next(Duration::from_secs(8)).await else {
                panic!("only {n} of {want} {kind} events arrived; got {all:?}");
            };
            if ev.kind == kind {
                n += 1;
            }
            all.push(ev);
        }
        all
    }
}

fn alert_items(n: usize, tag: &str) -> (Vec<Item>, Vec<String>) {
    let mut items = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let mut a = alert(Category::PortScan, Severity::Medium, "192.0.2.10");
        a.summary = format!("{tag} {i}");
        ids.push(a.id.to_string());
        items.push(Item::Alert(a));
    }
    (items, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_last_event_id_misses_no_event() {
    let env = env().await;
    let mut raw = env.raw_agent("sse-1");
    send(&mut raw, vec![heartbeat()]).await;

    let mut s = Sse::open(&env, "", None).await;
    let ready = s.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(ready.kind, "ready", "{ready:?}");
    let start = ready.id.unwrap();

    let (items, first_ids) = alert_items(5, "first");
    send(&mut raw, items).await;
    let got = s.collect("alert", 5).await;
    let last = got.last().unwrap().id.unwrap();
    let seen: Vec<String> =
        got.iter().filter(|e| e.kind == "alert").map(|e| e.data["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, first_ids);
    drop(s); // disconnected

    // While the client is away: alerts, a sample, a block.
    let (items, mut missed) = alert_items(4, "missed-a");
    send(&mut raw, items).await;
    send(&mut raw, vec![Item::Sample(sample(50.0))]).await;
    let (items, more) = alert_items(3, "missed-b");
    missed.extend(more);
    send(&mut raw, items).await;
    let (st, _, _) = env
        .call(
            reqwest::Method::POST,
            "/api/v1/blocks",
            Some(&env.operator),
            Some(serde_json::json!({"target": "192.0.2.10", "reason": "sse"})),
        )
        .await;
    assert_eq!(st, 201);

    let mut s = Sse::open(&env, "", Some(last)).await;
    let got = s.collect("block", 1).await;
    let ids: Vec<u64> = got.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids only grow: {ids:?}");
    assert!(ids[0] > last && last > start, "resumes after {last}: {ids:?}");
    let alerts: Vec<String> =
        got.iter().filter(|e| e.kind == "alert").map(|e| e.data["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(alerts, missed, "every missed alert, once, in order");
    assert!(got.iter().any(|e| e.kind == "metric" && e.data["agent"] == "sse-1"), "{got:?}");
    drop(s);

    // A position the server no longer holds gets `reset`; then live events follow.
    let mut s = Sse::open(&env, "", Some(1)).await;
    let reset = s.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(reset.kind, "reset", "{reset:?}");
    assert!(reset.id.unwrap() >= *ids.last().unwrap());
    drop(s);

    // Only the types asked for.
    let mut s = Sse::open(&env, "?types=alert", None).await;
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap().kind, "ready");
    send(&mut raw, vec![Item::Sample(sample(1.0))]).await;
    let (items, ids) = alert_items(1, "typed");
    send(&mut raw, items).await;
    let ev = s.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!((ev.kind.as_str(), ev.data["id"].as_str()), ("alert", Some(ids[0].as_str())));

    // Status changes are events too.
    let (st, _, _) =
        env.call(reqwest::Method::POST, &format!("/api/v1/alerts/{}/ack", ids[0]), Some(&env.operator), None).await;
    assert_eq!(st, 200);
    let mut s2 = Sse::open(&env, "?types=alert_update", Some(ev.id.unwrap())).await;
    let upd = s2.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!((upd.kind.as_str(), upd.data["status"].as_str()), ("alert_update", Some("acknowledged")));
    let distinct: BTreeSet<u64> = [ev.id.unwrap(), upd.id.unwrap()].into();
    assert_eq!(distinct.len(), 2);
    drop(s);
    drop(s2);
    env.server.shutdown().await;
}

/// The stream is for signed-in people only: no key or a wrong one is a JSON 401 before
/// any event is sent (the lowest role, viewer, may read it: `Sse::open` checks that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_refuse_missing_and_wrong_keys() {
    let env = env().await;
    let wrong = "vgl_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for key in [None, Some(wrong)] {
        let mut req = env.client.get(env.url("/api/v1/events"));
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        let resp = tokio::time::timeout(Duration::from_secs(10), req.send()).await.unwrap().unwrap();
        assert_eq!(resp.status().as_u16(), 401, "key {key:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let mut s = Sse::open(&env, "", None).await;
    drop(s.next(Duration::from_millis(100)).await);
    env.server.shutdown().await;
}
