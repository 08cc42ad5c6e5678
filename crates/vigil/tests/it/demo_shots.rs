//! Screenshots of the real `vigil demo` for the README: starts the binary, waits until it
//! has run 30 s (charts filled, the replayed attack in the feed), signs in with the printed
//! key in headless Chromium and saves the overview, an agent, the alerts, the incidents and the
//! DoS incident to `<target>/tmp/demo-screenshots/` (or `VIGIL_SHOTS_DIR`).
//!
//! Ignored: it takes about a minute and only matters when the pages change. Run it with
//! `cargo test -p vigil --test it -- --ignored demo_shots`, then shrink the PNGs into
//! `docs/screenshots/` (see docs/screenshots/README.md).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt;
use vigil_testkit::eventually;

async fn until(page: &Page, expr: &str) -> bool {
    let p = page.clone();
    eventually(Duration::from_secs(20), || {
        let p = p.clone();
        async move { p.evaluate(format!("!!({expr})")).await.ok()?.into_value::<bool>().ok()?.then_some(()) }
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the README screenshots; about a minute; needs chromium"]
async fn demo_screenshots() {
    let exe = PathBuf::from("/usr/bin/chromium");
    assert!(exe.exists(), "needs Debian's chromium (apt-get install chromium)");
    let out = std::env::var_os("VIGIL_SHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-screenshots"));
    std::fs::create_dir_all(&out).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env("VIGIL_LOG", "warn")
        .args(["demo", "--dir", demo_dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut key, mut base) = (None, None);
    while key.is_none() || base.is_none() {
        let line = lines.next().expect("demo exited before printing its URL and key").unwrap();
        if let Some(k) = line.trim().strip_prefix("API key:") {
            key = Some(k.trim().to_owned());
        }
        if let Some(u) = line.trim().strip_prefix("Server:") {
            base = Some(u.trim().to_owned());
        }
    }
    let (key, base) = (key.unwrap(), base.unwrap());
    // Charts cover 15 minutes: a longer wait (VIGIL_SHOTS_AFTER, seconds) fills more of them.
    let after = std::env::var("VIGIL_SHOTS_AFTER").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    tokio::time::sleep(Duration::from_secs(after).saturating_sub(started.elapsed())).await;

    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(&exe)
        .disable_default_args()
        .no_sandbox()
        .args([
            "disable-gpu",
            "no-first-run",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
            "disable-dev-shm-usage",
            // The demo's CA is not in the fresh profile; this browser only ever visits it.
            "ignore-certificate-errors",
        ])
        .user_data_dir(profile.path())
        .window_size(1280, 860)
        .viewport(Viewport { width: 1280, height: 860, device_scale_factor: Some(1.0), ..Viewport::default() })
        .launch_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.unwrap();
    let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page(format!("{base}/")).await.unwrap();
    assert!(until(&page, "document.getElementById('login').hidden === false").await, "no login form");
    page.find_element("#login-key").await.unwrap().click().await.unwrap().type_str(&key).await.unwrap();
    page.find_element("#login-form button").await.unwrap().click().await.unwrap();
    let pages = [
        ("#/overview", "document.querySelector('[data-chart=alerts-by-hour]')", "overview"),
        (
            "#/agents/demo-agent",
            "Number(document.querySelector('canvas[data-chart=cpu]')?.dataset.points) >= 5",
            "agent",
        ),
        ("#/alerts", "document.querySelectorAll('table.alerts tbody tr[data-id]').length >= 10", "alerts"),
        (
            "#/incidents",
            "document.querySelectorAll('[aria-label=\"Incidents\"] tbody tr[data-id]').length >= 2",
            "incidents",
        ),
    ];
    for (hash, ready, name) in pages {
        page.evaluate(format!("location.hash = '{hash}'")).await.unwrap();
        assert!(until(&page, ready).await, "{hash}: {ready} never held");
        tokio::time::sleep(Duration::from_millis(800)).await;
        let path = out.join(format!("{name}.png"));
        page.save_screenshot(ScreenshotParams::builder().full_page(false).build(), &path).await.unwrap();
        eprintln!("saved {}", path.display());
    }
    // The DoS incident with its alerts from both agents.
    let dos: String = page
        .evaluate("[...document.querySelectorAll('[aria-label=\"Incidents\"] tbody a')].find(a => a.textContent.startsWith('Suspected DoS'))?.getAttribute('href') ?? ''")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert!(dos.starts_with("#/incidents/"), "no DoS incident in the list");
    page.evaluate(format!("location.hash = '{dos}'")).await.unwrap();
    assert!(until(&page, "document.querySelector('[aria-label=\"Alerts of this incident\"] tbody tr')").await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let path = out.join("incident.png");
    page.save_screenshot(ScreenshotParams::builder().full_page(false).build(), &path).await.unwrap();
    drop(page);
    let _ = browser.close().await;
    let _ = browser.wait().await;
    handler.abort();
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
}
