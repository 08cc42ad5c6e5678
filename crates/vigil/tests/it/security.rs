//! The security model over real TLS: tampering, replays, foreign CAs, revocation, API keys.

use chrono::Utc;
use vigil_model::{AgentInfo, Alert, Category, Item};
use vigil_testkit::{Lab, RawAgent, api_get};

fn heartbeat() -> Vec<Item> {
    vec![Item::Heartbeat(AgentInfo {
        hostname: "raw".into(),
        os: "test".into(),
        version: "0".into(),
        interval_ms: 1000,
    })]
}

async fn alerts_of(lab: &Lab, addr: std::net::SocketAddr, key: &str, category: &str) -> Vec<serde_json::Value> {
    let (st, body) =
        api_get(&lab.api_client(), addr, &format!("/api/v1/alerts?category={category}"), Some(key)).await.unwrap();
    assert_eq!(st, 200, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_is_refused_and_recorded() {
    let lab = Lab::new().unwrap();
    let server = lab.start_server(0).await.unwrap();
    let key = lab.admin_key();
    let (_, cred) = lab.issue("web-01", None).unwrap();
    let mut raw = RawAgent::new(cred, server.local_addr).unwrap();

    let mut alert = Alert::new(Category::PortScan, Utc::now(), "tampered alert must never be stored");
    alert.summary = "TAMPER-MARKER".into();
    let mut body = raw.seal(&[Item::Alert(alert)]);
    let last = body.len() - 20; // inside the ciphertext
    body[last] ^= 0x01;
    let (status, resp) = raw.post(body).await.unwrap();
    assert_eq!(status, 400, "{resp}");
    assert_eq!(resp["error"]["code"], "integrity_failure");

    let found = alerts_of(&lab, server.local_addr, &key, "integrity_failure").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let a = &found[0];
    assert_eq!(a["agent"], "web-01", "names the certificate id");
    assert_eq!(a["src_ip"], "127.0.0.1", "names the peer address");
    assert!(a["summary"].as_str().unwrap().contains("127.0.0.1"));
    // Nothing from the tampered message was stored.
    let all = api_get(&lab.api_client(), server.local_addr, "/api/v1/alerts", Some(&key)).await.unwrap().1;
    assert!(!all.to_string().contains("TAMPER-MARKER"));
    assert!(all["alerts"].as_array().unwrap().iter().all(|a| a["category"] != "port_scan"));

    // A header flip (here: the agent id region) is refused too.
    let mut body = raw.seal(&heartbeat());
    body[3] ^= 0x20;
    let (status, _) = raw.post(body).await.unwrap();
    assert!(status == 400 || status == 403, "header flip gave {status}");
    // A truncated message is refused.
    let body = raw.seal(&heartbeat());
    let (status, _) = raw.post(body[..body.len() - 5].to_vec()).await.unwrap();
    assert_eq!(status, 400);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_message_is_refused_and_recorded() {
    let lab = Lab::new().unwrap();
    let server = lab.start_server(0).await.unwrap();
    let key = lab.admin_key();
    let (_, cred) = lab.issue("web-02", None).unwrap();
    let mut raw = RawAgent::new(cred, server.local_addr).unwrap();
    let mut alert = Alert::new(Category::PortScan, Utc::now(), "scan");
    alert.src_ip = Some("10.9.9.9".parse().unwrap());
    let body = raw.seal(&[Item::Alert(alert)]);
    let (status, resp) = raw.post(body.clone()).await.unwrap();
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["accepted"]["alerts"], 1);

    let (status, resp) = raw.post(body).await.unwrap();
    assert_eq!(status, 409, "{resp}");
    assert_eq!(resp["error"]["code"], "replay");
    let replays = alerts_of(&lab, server.local_addr, &key, "replay_attempt").await;
    assert_eq!(replays.len(), 1, "{replays:?}");
    assert_eq!(replays[0]["agent"], "web-02");
    assert_eq!(replays[0]["src_ip"], "127.0.0.1");
    assert_eq!(alerts_of(&lab, server.local_addr, &key, "port_scan").await.len(), 1, "stored once only");

    // A message sealed outside the clock-skew window is refused as stale.
    raw.seq += 1;
    let params = vigil_wire::SealParams {
        agent_id: raw.cred.agent_id.clone(),
        boot_epoch: raw.epoch,
        seq: raw.seq,
        timestamp_ms: Utc::now().timestamp_millis() - 3_600_000,
        kind: vigil_wire::MessageKind::Batch,
    };
    let old = vigil_wire::seal_batch(&raw.cred.sealing_key, &params, &heartbeat()).unwrap();
    let (status, resp) = raw.post(old).await.unwrap();
    assert_eq!(status, 409, "{resp}");
    assert_eq!(resp["error"]["code"], "stale");

    // Replay state survives a server restart.
    let addr = server.local_addr;
    server.shutdown().await;
    let server = lab.start_server(addr.port()).await.unwrap();
    let mut raw2 = RawAgent::new(raw.cred.clone(), server.local_addr).unwrap();
    raw2.seq = 0; // same epoch 1, seq 1 again: already seen before the restart
    let again = raw2.seal(&heartbeat());
    let (status, _) = raw2.post(again).await.unwrap();
    assert_eq!(status, 409, "replay window was not persisted");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_ca_and_revoked_agents_fail_the_handshake() {
    let lab = Lab::new().unwrap();
    let server = lab.start_server(0).await.unwrap();
    let (_, good) = lab.issue("good-1", None).unwrap();
    let (_, doomed) = lab.issue("doomed-1", None).unwrap();

    // A credential from another CA whose id matches a real agent's.
    let other = Lab::new().unwrap();
    let (_, foreign) = other.issue("good-1", None).unwrap();
    let mut raw = RawAgent::new(foreign, server.local_addr).unwrap();
    let body = raw.seal(&heartbeat());
    let err = raw.post(body).await.expect_err("foreign CA must be refused at the handshake");
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    let mut ok = RawAgent::new(good, server.local_addr).unwrap();
    let body = ok.seal(&heartbeat());
    assert_eq!(ok.post(body).await.unwrap().0, 200);

    let mut d = RawAgent::new(doomed.clone(), server.local_addr).unwrap();
    let body = d.seal(&heartbeat());
    assert_eq!(d.post(body).await.unwrap().0, 200);
    lab.pki().revoke(&doomed.agent_id).unwrap();
    // New connection after the revoke: refused at the handshake.
    let mut d = RawAgent::new(doomed, server.local_addr).unwrap();
    let body = d.seal(&heartbeat());
    let err = d.post(body).await.expect_err("revoked agent must be refused");
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // An agent cert on a route without a cert: a plain client cannot ingest.
    let client = lab.api_client();
    let resp = client
        .post(format!("https://localhost:{}/agent/v1/ingest", server.local_addr.port()))
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_needs_a_valid_key() {
    let lab = Lab::new().unwrap();
    let server = lab.start_server(0).await.unwrap();
    let key = lab.admin_key();
    let client = lab.api_client();
    let addr = server.local_addr;

    let (st, body) = api_get(&client, addr, "/api/v1/health", None).await.unwrap();
    assert_eq!((st, body["status"].as_str()), (200, Some("ok")));

    for path in ["/api/v1/agents", "/api/v1/alerts", "/api/v1/agents/x/metrics"] {
        let (st, body) = api_get(&client, addr, path, None).await.unwrap();
        assert_eq!(st, 401, "{path} without key");
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("X-API-Key"));

        let mut wrong = key.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        let (st, body) = api_get(&client, addr, path, Some(&wrong)).await.unwrap();
        assert_eq!(st, 401, "{path} with a wrong key");
        assert_eq!(body["error"]["code"], "unauthorized");
        let (st, _) = api_get(&client, addr, path, Some("garbage")).await.unwrap();
        assert_eq!(st, 401);
    }
    let resp = client
        .get(format!("https://localhost:{}/api/v1/agents", addr.port()))
        .header("Authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    let (st, body) = api_get(&client, addr, "/api/v1/alerts?severity=urgent", Some(&key)).await.unwrap();
    assert_eq!(st, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("severity"));
    let (st, body) = api_get(&client, addr, "/api/v1/alerts?colour=red", Some(&key)).await.unwrap();
    assert_eq!(st, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("colour"));
    let (st, body) = api_get(&client, addr, "/api/v1/nope", Some(&key)).await.unwrap();
    assert_eq!(st, 404);
    assert_eq!(body["error"]["code"], "not_found");
    server.shutdown().await;
}
