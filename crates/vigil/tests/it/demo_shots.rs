//! Screenshots of the real `vigil demo` for the README: starts the binary, waits until it
//! has run 30 s (charts filled, the replayed attack in the feed), signs in with the printed
//! key in headless Chromium and saves the overview, an agent, the alerts, the incidents and the
//! DoS incident to `<target>/tmp/demo-screenshots/` (or `VIGIL_SHOTS_DIR`).
//!
//! Ignored: it takes about a minute and only matters when the pages change. Run it with
//! `cargo test -p vigil --test it -- --ignored demo_shots`, then shrink the PNGs into
//! `docs/screenshots/` (see docs/screenshots/README.md).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chromiumoxide::page::{Page, ScreenshotParams};
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
    let started = Instant::now();
    let (mut child, key, base) = crate::cli::start_demo(&demo_dir);
    // Charts cover 15 minutes: a longer wait (VIGIL_SHOTS_AFTER, seconds) fills more of them.
    let after = std::env::var("VIGIL_SHOTS_AFTER").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    tokio::time::sleep(Duration::from_secs(after).saturating_sub(started.elapsed())).await;

    // The demo's CA is not in the fresh profile; this browser only ever visits the demo.
    let chrome = crate::browser::launch(&exe, &["ignore-certificate-errors"]).await;
    let (mut browser, handler) = (chrome.browser, chrome.handler);
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
