//! Metrics flow from agents to the API, and survive restarts of either side.

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_testkit::{Lab, api_get, eventually};

fn samples(body: &serde_json::Value) -> Vec<(u64, u64, String)> {
    body["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (s["boot_epoch"].as_u64().unwrap(), s["index"].as_u64().unwrap(), s["id"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_metrics_are_stored_and_queryable() {
    let lab = Lab::new().unwrap();
    let server = lab.start_server(0).await.unwrap();
    let key = server.initial_admin_key.clone().expect("first start creates a key");
    assert_eq!(key, lab.admin_key());
    let (c1, _) = lab.issue("web-01", None).unwrap();
    let (c2, _) = lab.issue("db-01", None).unwrap();
    let a1 = lab.start_agent(&c1, server.local_addr, Duration::from_millis(200)).await.unwrap();
    let a2 = lab.start_agent(&c2, server.local_addr, Duration::from_millis(200)).await.unwrap();
    let client = lab.api_client();

    for id in ["web-01", "db-01"] {
        let path = format!("/api/v1/agents/{id}/metrics");
        let got = eventually(Duration::from_secs(10), || async {
            let (st, body) = api_get(&client, server.local_addr, &path, Some(&key)).await.ok()?;
            (st == 200 && samples(&body).len() >= 3).then_some(body)
        })
        .await
        .unwrap_or_else(|| panic!("no metrics for {id} within 10 s"));
        let s = &got["samples"][0];
        assert!(s["cpu_percent"].as_f64().unwrap() >= 0.0);
        assert!(s["memory_total_bytes"].as_u64().unwrap() > 0);
        assert!(!s["cpu_per_core"].as_array().unwrap().is_empty());
    }

    let (st, body) = api_get(&client, server.local_addr, "/api/v1/agents", Some(&key)).await.unwrap();
    assert_eq!(st, 200);
    let ids: Vec<_> = body["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    assert!(ids.contains(&"web-01".into()) && ids.contains(&"db-01".into()), "{ids:?}");
    for a in body["agents"].as_array().unwrap() {
        assert_eq!(a["status"], "online");
        assert!(a["latest"]["cpu_percent"].is_number());
        assert!(a["info"]["hostname"].is_string());
    }

    // Time filters bound the result.
    let (st, body) = api_get(
        &client,
        server.local_addr,
        "/api/v1/agents/web-01/metrics?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z",
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(st, 200);
    assert!(samples(&body).is_empty());

    a1.shutdown().await;
    a2.shutdown().await;
    server.shutdown().await;
}

/// The server goes away, the agent keeps sampling into its spool, the agent itself is
/// killed and restarted (new boot epoch), the server comes back: every sample taken
/// arrives exactly once, with no gap in any epoch's index sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_lose_nothing_and_duplicate_nothing() {
    let lab = Lab::new().unwrap();
    let server = lab.start_server(0).await.unwrap();
    let addr = server.local_addr;
    let key = server.initial_admin_key.clone().unwrap();
    let (cred, _) = lab.issue("edge-1", None).unwrap();
    let interval = Duration::from_millis(100);
    let agent = lab.start_agent(&cred, addr, interval).await.unwrap();
    let client = lab.api_client();
    let count = |min: usize| {
        let client = client.clone();
        let key = key.clone();
        async move {
            eventually(Duration::from_secs(15), || async {
                let (st, body) =
                    api_get(&client, addr, "/api/v1/agents/edge-1/metrics?limit=10000", Some(&key)).await.ok()?;
                (st == 200 && samples(&body).len() >= min).then(|| samples(&body))
            })
            .await
        }
    };
    assert!(count(3).await.is_some(), "first samples never arrived");

    // Server down: the agent spools.
    server.shutdown().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        agent.counters.send_failures.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "agent never noticed the outage"
    );
    // Agent killed without a flush, as by kill -9; then started again (epoch 2).
    let epoch1_taken = agent.counters.samples.load(std::sync::atomic::Ordering::Relaxed);
    agent.abort();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = lab.start_agent(&cred, addr, interval).await.unwrap();
    assert_eq!(agent.boot_epoch, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Server back on the same port.
    let server = lab.start_server(addr.port()).await.unwrap();
    assert!(server.initial_admin_key.is_none(), "restart must not mint a new admin key");
    tokio::time::sleep(Duration::from_millis(500)).await;
    agent.shutdown().await;
    let all = count(epoch1_taken as usize).await.expect("spooled samples never arrived");

    let mut by_epoch: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut ids = std::collections::HashSet::new();
    for (epoch, index, id) in &all {
        assert!(ids.insert(id.clone()), "sample {id} stored twice");
        by_epoch.entry(*epoch).or_default().push(*index);
    }
    assert_eq!(by_epoch.keys().copied().collect::<Vec<_>>(), vec![1, 2], "{by_epoch:?}");
    for (epoch, mut idx) in by_epoch {
        idx.sort_unstable();
        let expected: Vec<u64> = (0..idx.len() as u64).collect();
        assert_eq!(idx, expected, "epoch {epoch}: gap or duplicate in sample indices");
    }
    let epoch1 = all.iter().filter(|s| s.0 == 1).count() as u64;
    assert!(epoch1 >= epoch1_taken, "epoch 1: {epoch1} stored < {epoch1_taken} taken");
    server.shutdown().await;
}
