//! The alert pipeline inside a real server: `dos_suspected` correlation across agents seen
//! through `/api/v1/incidents` and `/api/v1/alerts`, and its state surviving a restart.
//!
//! The pipeline windows on the alerts' own timestamps (not on arrival), so the tests set
//! alert timestamps to place alerts in or out of the 10 s window; no clock injection is
//! needed. With the default settings a DoS needs 5 flood alerts from at least 2 agents
//! within 10 s (`[pipeline.dos]`), so "three agents flooding" is three agents sending five
//! alerts between them, as an agent repeats its alert while a flood goes on.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;
use vigil_model::{Alert, Category, Item, Severity};
use vigil_server::RunningServer;
use vigil_testkit::{Lab, RawAgent, api_get, eventually};

const WAIT: Duration = Duration::from_secs(10);

fn flood(target: &str, src: &str, ts: DateTime<Utc>) -> Alert {
    let mut a = Alert::new(Category::SynFlood, ts, format!("SYN flood from {src} against {target}"));
    a.severity = Severity::High;
    a.src_ip = Some(src.parse::<IpAddr>().unwrap());
    a.dst_ip = Some(target.parse::<IpAddr>().unwrap());
    a.dst_port = Some(80);
    a.evidence = serde_json::json!({"rate_pps": 5000.0, "window_secs": 5});
    a
}

async fn start(lab: &Lab) -> RunningServer {
    vigil_server::start(lab.settings(SocketAddr::from(([127, 0, 0, 1], 0)))).await.unwrap()
}

fn agents(lab: &Lab, server: &RunningServer, names: &[&str]) -> Vec<RawAgent> {
    names
        .iter()
        .map(|n| {
            let (_, cred) = lab.issue(n, None).unwrap();
            RawAgent::new(cred, server.local_addr).unwrap()
        })
        .collect()
}

async fn send(agent: &mut RawAgent, alert: &Alert) {
    let body = agent.seal(&[Item::Alert(alert.clone())]);
    let (status, reply) = agent.post(body).await.unwrap();
    assert_eq!(status, 200, "{reply}");
}

async fn incidents(lab: &Lab, addr: SocketAddr, key: &str) -> Vec<Value> {
    let (status, body) = api_get(&lab.api_client(), addr, "/api/v1/incidents?limit=100", Some(key)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["incidents"].as_array().unwrap().clone()
}

fn dos(list: &[Value]) -> Vec<Value> {
    list.iter().filter(|i| i["category"] == "dos_suspected").cloned().collect()
}

fn ids(v: &Value) -> Vec<Uuid> {
    v["alert_ids"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().parse().unwrap()).collect()
}

/// Waits until everything `agent` sent before has been through the pipeline: two
/// different alerts from one new source make an attacker incident, and the pipeline takes
/// inputs in order, so once that incident is stored the earlier alerts were handled.
async fn marker(agent: &mut RawAgent, lab: &Lab, addr: SocketAddr, key: &str, target: &str) {
    let now = Utc::now();
    let mut a = Alert::new(Category::PortScan, now, "marker scan");
    a.severity = Severity::High;
    a.src_ip = Some("198.51.100.250".parse().unwrap());
    a.dst_ip = Some(target.parse().unwrap());
    send(agent, &a).await;
    let mut b = a.clone();
    b.id = Uuid::now_v7();
    b.category = Category::BruteForce;
    b.summary = "marker brute force".into();
    send(agent, &b).await;
    let found = eventually(WAIT, || async {
        incidents(lab, addr, key).await.into_iter().find(|i| i["target"] == "198.51.100.250").map(|_| ())
    })
    .await;
    assert!(found.is_some(), "the marker incident never appeared: the pipeline is not running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_flooding_one_target_make_exactly_one_dos_incident() {
    let lab = Lab::new().unwrap();
    let server = start(&lab).await;
    let key = lab.admin_key();
    let addr = server.local_addr;
    let mut a = agents(&lab, &server, &["edge-1", "edge-2", "edge-3"]);
    let target = "192.0.2.80";
    let t0 = Utc::now() - chrono::Duration::seconds(8);
    let mut sent = Vec::new();
    // One syn_flood from each agent within 8 s (alert time), each naming its own source:
    // fewer than min_alerts (5), so the consensus of three watchers raises it.
    for (i, who) in [0usize, 1, 2].into_iter().enumerate() {
        let alert = flood(target, &format!("203.0.113.{}", who + 1), t0 + chrono::Duration::seconds(4 * i as i64));
        sent.push(alert.id);
        send(&mut a[who], &alert).await;
    }
    let found = eventually(WAIT, || async {
        let d = dos(&incidents(&lab, addr, &key).await);
        (!d.is_empty()).then_some(d)
    })
    .await
    .expect("no dos_suspected incident within 10 s");
    assert_eq!(found.len(), 1, "{found:#?}");
    let inc = &found[0];
    assert_eq!(inc["target"], target);
    assert_eq!(inc["status"], "open");
    assert_eq!(inc["severity"], "critical");
    let linked = ids(inc);
    for id in &sent {
        assert!(linked.contains(id), "contributing alert {id} not linked: {linked:?}");
    }
    let agents_seen: Vec<&str> =
        inc["evidence"]["agents"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(agents_seen.len(), 3, "{agents_seen:?}");

    // The raised dos_suspected alert is stored like an agent's: the alerts API lists it.
    let (st, body) =
        api_get(&lab.api_client(), addr, "/api/v1/alerts?category=dos_suspected", Some(&key)).await.unwrap();
    assert_eq!(st, 200, "{body}");
    let raised = body["alerts"].as_array().unwrap();
    assert_eq!(raised.len(), 1, "{body:#}");
    assert_eq!(raised[0]["dst_ip"], target);

    // The flood goes on: more alerts join the incident, no second incident opens.
    let more = flood(target, "203.0.113.3", Utc::now());
    send(&mut a[2], &more).await;
    let joined = eventually(WAIT, || async {
        let d = dos(&incidents(&lab, addr, &key).await);
        d.iter().find(|i| ids(i).contains(&more.id)).map(|_| d.clone())
    })
    .await
    .expect("a further flood alert never joined the incident");
    assert_eq!(joined.len(), 1, "{joined:#?}");
    assert_eq!(joined[0]["id"], inc["id"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_or_alerts_spread_over_minutes_make_no_dos_incident() {
    let lab = Lab::new().unwrap();
    let server = start(&lab).await;
    let key = lab.admin_key();
    let addr = server.local_addr;
    let mut a = agents(&lab, &server, &["solo-1", "spread-1", "spread-2", "spread-3"]);

    let now = Utc::now();
    // Two agents, one alert each, against a third target: under min_alerts and under the
    // consensus of three agents.
    for (i, who) in [1usize, 2].into_iter().enumerate() {
        let ts = now - chrono::Duration::seconds(4 - i as i64);
        send(&mut a[who], &flood("192.0.2.30", &format!("203.0.113.{}", 30 + i), ts)).await;
    }
    // Many alerts from one agent against one target: one watcher is not a correlation.
    for i in 0..6 {
        let alert = flood("192.0.2.10", &format!("203.0.113.{}", 10 + i), now - chrono::Duration::seconds(6 - i));
        send(&mut a[0], &alert).await;
    }
    // Three agents, six alerts against another target, but 60 s apart (alert time, all
    // within the last 6 minutes so none is backfill): never 5 in one 10 s window.
    for i in 0..6i64 {
        let who = 1 + (i as usize % 3);
        let ts = now - chrono::Duration::seconds(360 - 60 * i);
        send(&mut a[who], &flood("192.0.2.20", &format!("203.0.113.{}", 20 + i), ts)).await;
    }
    // Once the marker shows, every alert above has been through the pipeline.
    marker(&mut a[0], &lab, addr, &key, "192.0.2.99").await;
    let list = incidents(&lab, addr, &key).await;
    assert!(dos(&list).is_empty(), "unexpected dos_suspected: {list:#?}");
    let (st, body) =
        api_get(&lab.api_client(), addr, "/api/v1/alerts?category=dos_suspected", Some(&key)).await.unwrap();
    assert_eq!(st, 200);
    assert!(body["alerts"].as_array().unwrap().is_empty(), "{body:#}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_incident_survives_a_restart_and_is_updated_not_duplicated() {
    let lab = Lab::new().unwrap();
    let server = start(&lab).await;
    let key = lab.admin_key();
    let mut a = agents(&lab, &server, &["r-1", "r-2", "r-3"]);
    let target = "192.0.2.66";
    let t0 = Utc::now() - chrono::Duration::seconds(5);
    for (i, who) in [0usize, 1, 2, 0, 1].into_iter().enumerate() {
        let alert =
            flood(target, &format!("203.0.113.{}", 40 + who), t0 + chrono::Duration::milliseconds(900 * i as i64));
        send(&mut a[who], &alert).await;
    }
    let addr = server.local_addr;
    let first = eventually(WAIT, || async { dos(&incidents(&lab, addr, &key).await).into_iter().next() })
        .await
        .expect("no dos_suspected incident before the restart");
    // A graceful stop saves the pipeline state; the next start restores it.
    server.shutdown().await;
    let server = start(&lab).await;
    let addr = server.local_addr;
    for agent in &mut a {
        agent.url = format!("https://localhost:{}/agent/v1/ingest", addr.port());
    }
    // Enough for a new DoS on its own: had the state been lost, a second incident would
    // open. With it restored, they join the open one.
    let now = Utc::now();
    let mut later = Vec::new();
    for (i, who) in [2usize, 1, 0, 2, 1].into_iter().enumerate() {
        let alert =
            flood(target, &format!("203.0.113.{}", 40 + who), now + chrono::Duration::milliseconds(100 * i as i64));
        later.push(alert.id);
        send(&mut a[who], &alert).await;
    }
    let after = eventually(WAIT, || async {
        let d = dos(&incidents(&lab, addr, &key).await);
        let all_joined = d.iter().any(|i| later.iter().all(|id| ids(i).contains(id)));
        all_joined.then_some(d)
    })
    .await
    .unwrap_or_else(|| panic!("the alerts after the restart never joined a dos incident"));
    assert_eq!(after.len(), 1, "one incident, updated, not a second one: {after:#?}");
    assert_eq!(after[0]["id"], first["id"]);
    assert!(ids(&after[0]).len() > ids(&first).len());
    server.shutdown().await;
}

/// POSTs `body` to `path` with an API key; returns status and JSON body.
async fn api_post(lab: &Lab, addr: SocketAddr, path: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = lab
        .api_client()
        .post(format!("https://localhost:{}{path}", addr.port()))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().await.unwrap_or(Value::Null))
}

fn attack(src: &str, target: &str, category: Category) -> Alert {
    let mut a = Alert::new(category, Utc::now(), format!("{category} from {src}"));
    a.severity = Severity::High;
    a.src_ip = Some(src.parse().unwrap());
    a.dst_ip = Some(target.parse().unwrap());
    a
}

/// Operator actions taken through the API reach the pipeline's own records: a silence
/// stored through `/api/v1/silences` mutes the pipeline (its incident of a silenced
/// attacker is marked silenced and notified to no one), and an alert acknowledged through
/// `/api/v1/alerts/{id}/ack` is acknowledged in the pipeline's persisted record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_and_acknowledgements_made_through_the_api_reach_the_pipeline() {
    let lab = Lab::new().unwrap();
    let server = start(&lab).await;
    let key = lab.admin_key();
    let addr = server.local_addr;
    let mut a = agents(&lab, &server, &["op-1"]);
    let (muted, heard) = ("198.51.100.77", "198.51.100.78");
    let (st, silence) =
        api_post(&lab, addr, "/api/v1/silences", &key, serde_json::json!({"source": muted, "comment": "pentest"}))
            .await;
    assert_eq!(st, 201, "{silence}");

    // Two different alerts from one source make an attacker incident; one source is under
    // the silence, the other is not.
    let mut acked = None;
    for (src, target) in [(muted, "192.0.2.5"), (heard, "192.0.2.6")] {
        let scan = attack(src, target, Category::PortScan);
        send(&mut a[0], &scan).await;
        send(&mut a[0], &attack(src, target, Category::BruteForce)).await;
        acked.get_or_insert(scan.id);
    }
    let acked = acked.unwrap();
    let (muted_inc, heard_inc) = eventually(WAIT, || async {
        let list = incidents(&lab, addr, &key).await;
        let find = |ip: &str| list.iter().find(|i| i["target"] == ip).cloned();
        Some((find(muted)?, find(heard)?))
    })
    .await
    .expect("the attacker incidents never appeared");
    assert_eq!(muted_inc["evidence"]["silenced"], true, "the API's silence did not reach the pipeline: {muted_inc:#}");
    assert_eq!(heard_inc["evidence"]["silenced"], false, "{heard_inc:#}");

    // Acknowledge the muted source's first alert through the API; the pipeline's record of
    // it follows, as the state saved at shutdown shows (read back through a new start,
    // which restores it and saves again only after `pipeline.save_interval`).
    let (st, view) = api_post(&lab, addr, &format!("/api/v1/alerts/{acked}/ack"), &key, Value::Null).await;
    assert_eq!(st, 200, "{view}");
    server.shutdown().await;
    let server = start(&lab).await;
    let saved = server.state.store.load_pipeline_state().await.unwrap().expect("no pipeline state saved at shutdown");
    let state: Value = serde_json::from_str(&saved.state).unwrap();
    let records = state["lifecycle"]["records"]["entries"].as_array().unwrap();
    let record = records
        .iter()
        .map(|e| &e[1])
        .find(|r| r["first_alert_id"] == acked.to_string())
        .unwrap_or_else(|| panic!("no pipeline record of alert {acked}: {records:#?}"));
    assert_eq!(record["state"], "acknowledged", "{record:#}");
    assert!(record["acknowledged_at"].is_string(), "{record:#}");
    server.shutdown().await;
}
