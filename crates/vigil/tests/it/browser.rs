//! The dashboard in headless Chromium (Debian's `chromium`, driven over the DevTools
//! protocol by chromiumoxide): it loads with no console errors, a wrong key cannot log
//! in, a chart updates as samples arrive, a new alert shows in the feed within 2 s of
//! ingest, and acknowledging it in the page changes its status in the API. Screenshots of
//! the main pages go to `<target>/tmp/screenshots/` (not committed).
//!
//! Without Chromium the test skips loudly, unless `VIGIL_REQUIRE` contains `browser`
//! (CI sets it), which turns the skip into a failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::log::{EnableParams as LogEnable, EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::js_protocol::runtime::{ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use chrono::Utc;
use futures_util::StreamExt;
use vigil_model::{CaptureCounters, Category, Item, NetStats, ProtocolCount, Severity, Talker};
use vigil_store::{IncidentRow, IncidentStatus};
use vigil_testkit::eventually;

use crate::api::{alert, env, heartbeat, sample, send};

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

fn required() -> bool {
    std::env::var("VIGIL_REQUIRE").is_ok_and(|v| v.split(',').any(|x| x.trim() == "browser"))
}

pub fn screenshot_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A headless Chromium with a fresh profile, and the task driving its DevTools connection.
pub(crate) struct Chrome {
    pub(crate) browser: Browser,
    pub(crate) handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

/// Starts Chromium at `exe` headless, 1280 × 860, with `extra` command-line switches.
pub(crate) async fn launch(exe: &Path, extra: &[&str]) -> Chrome {
    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(exe)
        .disable_default_args()
        .no_sandbox()
        .args(
            [
                "disable-gpu",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                "disable-quic",
                "disable-dev-shm-usage",
            ]
            .iter()
            .chain(extra)
            .copied(),
        )
        .user_data_dir(profile.path())
        .window_size(1280, 860)
        .viewport(Viewport { width: 1280, height: 860, device_scale_factor: Some(1.0), ..Viewport::default() })
        .launch_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (browser, mut handler) = Browser::launch(config).await.unwrap();
    let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
    Chrome { browser, handler, _profile: profile }
}

/// Console errors, uncaught exceptions and error log entries of a page.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl Errors {
    async fn watch(page: &Page) -> Errors {
        let e = Errors::default();
        page.execute(LogEnable::default()).await.unwrap();
        let mut console = page.event_listener::<EventConsoleApiCalled>().await.unwrap();
        let mut thrown = page.event_listener::<EventExceptionThrown>().await.unwrap();
        let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
        let (a, b, c) = (e.clone(), e.clone(), e.clone());
        tokio::spawn(async move {
            while let Some(ev) = console.next().await {
                if ev.r#type == ConsoleApiCalledType::Error {
                    let text: Vec<String> = ev.args.iter().map(|a| format!("{:?}", a.value)).collect();
                    a.push(format!("console.error: {}", text.join(" ")));
                }
            }
        });
        tokio::spawn(async move {
            while let Some(ev) = thrown.next().await {
                b.push(format!("exception: {:?}", ev.exception_details));
            }
        });
        tokio::spawn(async move {
            while let Some(ev) = log.next().await {
                if ev.entry.level == LogEntryLevel::Error {
                    c.push(format!("log: {} {}", ev.entry.text, ev.entry.url.clone().unwrap_or_default()));
                }
            }
        });
        e
    }

    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

async fn js<T: serde::de::DeserializeOwned>(page: &Page, expr: &str) -> T {
    page.evaluate(expr).await.unwrap_or_else(|e| panic!("{expr}: {e}")).into_value().unwrap()
}

/// Polls a JavaScript condition until it holds, up to `limit`.
async fn until(page: &Page, expr: &str, limit: Duration) -> bool {
    let p = page.clone();
    eventually(limit, || {
        let p = p.clone();
        async move { p.evaluate(format!("!!({expr})")).await.ok()?.into_value::<bool>().ok()?.then_some(()) }
    })
    .await
    .is_some()
}

/// What the page shows, for failure messages.
async fn dump(page: &Page) -> String {
    page.evaluate("`hash=${location.hash} login_hidden=${document.getElementById('login').hidden} login_error=${document.getElementById('login-error').textContent} live=${document.getElementById('live').textContent} view=${document.getElementById('view').innerText.slice(0, 600)}`")
        .await
        .ok()
        .and_then(|v| v.into_value::<String>().ok())
        .unwrap_or_default()
}

async fn shot(page: &Page, name: &str) {
    // Let charts and fonts settle for a frame.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let path = screenshot_dir().join(format!("{name}.png"));
    page.save_screenshot(ScreenshotParams::builder().full_page(false).build(), &path).await.unwrap();
}

async fn visit(page: &Page, hash: &str, ready: &str) {
    js::<bool>(page, &format!("(location.hash = '{hash}', true)")).await;
    if !until(page, ready, Duration::from_secs(20)).await {
        panic!("{hash}: {ready} never held; the page shows: {}", dump(page).await);
    }
}

/// Thirteen minutes of samples every 5 s, a capture interval, and a day of alerts, so the
/// pages (and the screenshots) show something like a real network.
fn history() -> (Vec<Item>, Vec<Item>) {
    let now = Utc::now();
    let mut web = vec![heartbeat()];
    let mut db = vec![heartbeat()];
    for k in 0..160i64 {
        let x = k as f32 / 9.0;
        let t = now - chrono::Duration::seconds(5 * (160 - k));
        let mut s = sample(35.0 + 25.0 * x.sin() + 5.0 * (3.1 * x).cos());
        s.timestamp = t;
        s.memory_percent = 48.0 + 6.0 * (x / 3.0).sin();
        let n = &mut s.networks[0];
        n.rx_bytes_per_sec = 4.0e5 + 2.5e5 * (x * 0.7).sin().abs() as f64;
        n.tx_bytes_per_sec = 1.5e5 + 0.8e5 * (x * 1.3).cos().abs() as f64;
        n.rx_packets_per_sec = n.rx_bytes_per_sec / 700.0;
        n.tx_packets_per_sec = n.tx_bytes_per_sec / 500.0;
        web.push(Item::Sample(s));
        if k % 2 == 0 {
            let mut s = sample(62.0 + 8.0 * (x / 2.0).cos());
            s.timestamp = t;
            db.push(Item::Sample(s));
        }
    }
    web.push(Item::NetStats(NetStats {
        id: uuid::Uuid::now_v7(),
        timestamp: now - chrono::Duration::seconds(1),
        interval_ms: 5000,
        packets_in_per_sec: 910.0,
        packets_out_per_sec: 420.0,
        bytes_in_per_sec: 6.1e5,
        bytes_out_per_sec: 2.2e5,
        top_talkers: [
            ("203.0.113.50", 41_000_000u64),
            ("10.0.0.12", 12_500_000),
            ("10.0.0.1", 9_100_000),
            ("198.51.100.23", 2_300_000),
        ]
        .into_iter()
        .map(|(ip, bytes)| Talker { ip: ip.parse().unwrap(), packets: bytes / 900, bytes })
        .collect(),
        protocols: [("tcp", 3100u64, 2_800_000u64), ("udp", 900, 400_000), ("icmp", 240, 30_000), ("arp", 20, 1200)]
            .into_iter()
            .map(|(p, packets, bytes)| ProtocolCount { protocol: p.into(), packets, bytes })
            .collect(),
        capture: CaptureCounters {
            interfaces: vec!["eth0".into()],
            packets: 100_000,
            kernel_packets: 100_000,
            analyzed: 100_000,
            ..Default::default()
        },
    }));
    let kinds = [
        (Category::PortScan, Severity::High, "203.0.113.50"),
        (Category::SynFlood, Severity::Critical, "203.0.113.50"),
        (Category::BruteForce, Severity::High, "198.51.100.23"),
        (Category::DnsTunnel, Severity::Medium, "10.0.0.12"),
        (Category::WeakTls, Severity::Low, "10.0.0.31"),
        (Category::InsecureProtocol, Severity::Info, "10.0.0.40"),
    ];
    for i in 0..48i64 {
        let (cat, sev, src) = kinds[(i * 7 % 6) as usize];
        let mut a = alert(cat, sev, src);
        a.timestamp = now - chrono::Duration::minutes(i * 29 + 3);
        if i % 3 == 0 { db.push(Item::Alert(a)) } else { web.push(Item::Alert(a)) }
    }
    (web, db)
}

async fn seed_incidents(env: &crate::api::Env) {
    let now = Utc::now();
    for (title, sev, target) in [
        ("SYN flood against 10.0.0.1 seen by 2 agents", Severity::Critical, "10.0.0.1"),
        ("Port scans from 203.0.113.50", Severity::High, "203.0.113.50"),
    ] {
        let ids = env.get("/api/v1/alerts?limit=3&src_ip=203.0.113.50", &env.viewer).await["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().parse().unwrap())
            .collect();
        env.server
            .state
            .store
            .upsert_incident(&IncidentRow {
                id: uuid::Uuid::now_v7(),
                opened_at: now - chrono::Duration::minutes(40),
                updated_at: now - chrono::Duration::minutes(2),
                status: IncidentStatus::Open,
                severity: sev,
                title: title.into(),
                category: "dos_suspected".into(),
                target: Some(target.into()),
                alert_ids: ids,
                evidence: serde_json::json!({"agents": 2, "window_secs": 60}),
            })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let Some(exe) = chromium() else {
        assert!(!required(), "VIGIL_REQUIRE contains browser but no chromium is installed (apt-get install chromium)");
        eprintln!(
            "SKIPPED dashboard_in_headless_chromium: no chromium found (apt-get install chromium; VIGIL_REQUIRE=browser makes this a failure)"
        );
        return;
    };
    let env = env().await;
    let mut raw = env.raw_agent("web-01");
    let mut other = env.raw_agent("db-02");
    let (web, db) = history();
    send(&mut raw, web).await;
    send(&mut other, db).await;
    seed_incidents(&env).await;

    let chrome = launch(&exe, &[]).await;
    let page = chrome.browser.new_page("about:blank").await.unwrap();
    let errors = Errors::watch(&page).await;
    page.goto(env.url("/")).await.unwrap();
    assert!(until(&page, "document.getElementById('login').hidden === false", Duration::from_secs(20)).await);
    shot(&page, "login").await;

    // A wrong key cannot log in.
    js::<bool>(
        &page,
        "(document.getElementById('login-key').value = 'vgl_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', \
          document.getElementById('login-form').requestSubmit(), true)",
    )
    .await;
    assert!(until(&page, "document.getElementById('login-error').hidden === false", Duration::from_secs(15)).await);
    assert!(js::<bool>(&page, "document.getElementById('nav').hidden").await, "still logged out");
    let (st, _, _) = env.call(reqwest::Method::GET, "/api/v1/auth/session", None, None).await;
    assert_eq!(st, 401);
    // The refused login shows up as one failed request, nothing else.
    let early = errors.take();
    assert!(early.iter().all(|e| e.contains("401") || e.contains("net::ERR_NETWORK_CHANGED")), "{early:?}");

    // The right key logs in (typed, as a person would).
    js::<bool>(&page, "(document.getElementById('login-key').value = '', true)").await;
    let input = page.find_element("#login-key").await.unwrap();
    input.click().await.unwrap().type_str(&env.admin).await.unwrap();
    page.find_element("#login-form button").await.unwrap().click().await.unwrap();
    if !until(&page, "document.querySelector('[data-stat=online] .stat-value')?.textContent === '2' && document.querySelector('[data-chart=alerts-by-hour]')", Duration::from_secs(20)).await {
        panic!("the overview did not show 2 agents online: {}; errors: {:?}", dump(&page).await, errors.take());
    }
    if !until(&page, "document.getElementById('live').textContent === 'live'", Duration::from_secs(20)).await {
        let live: String = js(&page, "document.getElementById('live').textContent").await;
        panic!("the live event stream did not connect: {live}; errors: {:?}", errors.take());
    }
    let cookie: String = js(&page, "document.cookie").await;
    assert!(!cookie.contains("vigil_session"), "the session cookie is HttpOnly: {cookie}");
    shot(&page, "overview").await;

    // A chart updates as new samples arrive.
    visit(&page, "#/agents/web-01", "Number(document.querySelector('canvas[data-chart=cpu]')?.dataset.points) >= 3")
        .await;
    let before: String = js(&page, "document.querySelector('canvas[data-chart=cpu]').dataset.points").await;
    send(&mut raw, vec![Item::Sample(sample(77.0))]).await;
    assert!(
        until(
            &page,
            &format!("Number(document.querySelector('canvas[data-chart=cpu]').dataset.points) > {before}"),
            Duration::from_secs(15)
        )
        .await,
        "the CPU chart did not take the new sample"
    );
    for cpu in [40.0, 55.0, 35.0] {
        send(&mut raw, vec![Item::Sample(sample(cpu))]).await;
    }
    shot(&page, "agent").await;
    visit(&page, "#/agents", "document.querySelector('tr[data-id=\"db-02\"]')").await;
    shot(&page, "agents").await;

    // A new alert shows in the feed within 2 s of ingest.
    visit(&page, "#/alerts", "document.querySelectorAll('table.alerts tbody tr[data-id]').length >= 10").await;
    let mut a = alert(Category::PortScan, Severity::Critical, "192.0.2.99");
    a.summary = "browser test scan".into();
    let id = a.id.to_string();
    // The page itself notes when each row appears, so the figure does not include the time
    // this test takes to ask it over the DevTools protocol.
    js::<bool>(
        &page,
        "(window.__seen = {}, new MutationObserver(() => { for (const tr of document.querySelectorAll('tr[data-id]')) \
           if (!window.__seen[tr.dataset.id]) window.__seen[tr.dataset.id] = Date.now(); }) \
           .observe(document.getElementById('view'), { childList: true, subtree: true }), true)",
    )
    .await;
    send(&mut raw, vec![Item::Alert(a)]).await;
    let ingested = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as f64;
    assert!(
        until(&page, &format!("window.__seen['{id}']"), Duration::from_secs(20)).await,
        "the alert never showed in the feed"
    );
    let shown: f64 = js(&page, &format!("window.__seen['{id}']")).await;
    let delay = shown - ingested;
    eprintln!("alert shown {delay:.0} ms after ingest");
    if delay >= 2000.0 {
        let live: String = js(&page, "JSON.stringify(window.vigilLive)").await;
        panic!(
            "the alert showed {delay:.0} ms after ingest ({ingested:.0}); at most 2 s expected; live stream: {live}"
        );
    }
    shot(&page, "alerts").await;

    // Acknowledging it in the page changes its status in the API.
    page.find_element(format!("tr[data-id=\"{id}\"] button[data-action=\"ack\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = eventually(Duration::from_secs(15), || async {
        let v = env.get(&format!("/api/v1/alerts/{id}"), &env.viewer).await;
        (v["status"] == "acknowledged").then_some(v)
    })
    .await;
    let v = status.expect("the API never showed the alert acknowledged");
    assert_eq!(v["acked_by"], "initial-admin");
    assert!(
        until(
            &page,
            &format!("document.querySelector('tr[data-id=\"{id}\"]')?.dataset.status === 'acknowledged'"),
            Duration::from_secs(15)
        )
        .await
    );

    visit(&page, &format!("#/alerts/{id}"), "document.querySelector('dl.facts[data-status=acknowledged]')").await;
    shot(&page, "alert").await;
    let (st, _, _) = env
        .call(
            reqwest::Method::POST,
            "/api/v1/blocks",
            Some(&env.operator),
            Some(serde_json::json!({"target": "203.0.113.50", "ttl": "6h", "reason": "port scan and SYN flood"})),
        )
        .await;
    assert_eq!(st, 201);
    for (hash, ready, name) in [
        ("#/incidents", "document.querySelector('#view h1')?.textContent === 'Incidents'", "incidents"),
        ("#/network", "document.querySelector('[aria-label=\"Traffic per agent\"]')", "network"),
        ("#/blocks", "document.querySelector('[aria-label=\"Blocks\"] tr[data-id]')", "blocks"),
        ("#/silences", "document.querySelector('#view h1')?.textContent === 'Silences'", "silences"),
        ("#/audit", "document.querySelector('[aria-label=\"Audit log\"] tbody tr')", "audit"),
        ("#/keys", "document.querySelector('[aria-label=\"API keys\"] tbody tr')", "keys"),
        ("#/overview", "document.querySelector('[data-stat=alerts]')", "overview-after"),
    ] {
        visit(&page, hash, ready).await;
        shot(&page, name).await;
    }
    // Adding a block in the page works with the session cookie and its CSRF token.
    visit(&page, "#/blocks", "document.getElementById('b-target')").await;
    js::<bool>(
        &page,
        "(document.getElementById('b-target').value = '198.51.100.0/24', document.getElementById('b-reason').value = 'from the browser', \
          document.querySelector('form.filters').requestSubmit(), true)",
    )
    .await;
    assert!(until(&page, "[...document.querySelectorAll('[aria-label=\"Blocks\"] td')].some(td => td.textContent === '198.51.100.0/24')", Duration::from_secs(15)).await);

    // Chromium drops open connections when the host's interfaces change, which the lab
    // tests running beside this one do (veth pairs); the event stream reconnects with
    // Last-Event-ID (tested above). Those drops are the environment, not the dashboard.
    let errs: Vec<String> = errors.take().into_iter().filter(|e| !e.contains("net::ERR_NETWORK_CHANGED")).collect();
    assert!(errs.is_empty(), "console errors: {errs:?}");
    drop(page);
    let mut browser = chrome.browser;
    let _ = browser.close().await;
    let _ = browser.wait().await;
    chrome.handler.abort();
    env.server.shutdown().await;
}
