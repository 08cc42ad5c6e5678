//! The `vigil` command line as a user runs it.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.env("VIGIL_LOG", "warn");
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = vigil().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn config_examples_pass_their_own_check() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["server", "agent"] {
        let (code, text, err) = run(&["config", "example", kind]);
        assert_eq!(code, 0, "{err}");
        let f = dir.path().join(format!("{kind}.toml"));
        std::fs::write(&f, &text).unwrap();
        let (code, out, err) = run(&["config", "check", f.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("valid {kind} configuration")), "{out}");
    }
}

#[test]
fn config_check_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("agent.toml");
    std::fs::write(&f, "interval = \"5s\"\n[thresholds]\ncpu_percent = 180\n").unwrap();
    let (code, _, err) = run(&["config", "check", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("agent.toml:3:"), "{err}");
    assert!(err.contains("percentage"), "{err}");

    std::fs::write(&f, "listen = \"0.0.0.0:8443\"\nlisten_port = 1\n").unwrap();
    let (code, _, err) = run(&["config", "check", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("agent.toml:2:") && err.contains("listen_port"), "{err}");
}

#[test]
fn certs_commands_protect_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) =
        run(&["certs", "init", "--dir", d, "--server-name", "vigil.test", "--server-name", "10.0.0.1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("vigil.test"), "{out}");
    let ca_key = dir.path().join("pki/ca.key");
    assert_eq!(mode(&ca_key), 0o600);
    assert_eq!(mode(&dir.path().join("pki/server.key")), 0o600);
    let before = std::fs::read(&ca_key).unwrap();
    let (code, _, err) = run(&["certs", "init", "--dir", d]);
    assert_eq!(code, 2, "second init must refuse");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&ca_key).unwrap(), before, "existing key overwritten");

    let out_file = dir.path().join("a1.cred");
    let o = out_file.to_str().unwrap();
    let (code, _, err) = run(&["certs", "agent", "a1", "--dir", d, "--out", o, "--server", "https://vigil.test:8443"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&out_file), 0o600);
    let cred = std::fs::read_to_string(&out_file).unwrap();
    assert!(cred.contains("agent_id = \"a1\"") && cred.contains("https://vigil.test:8443"));
    let (code, _, err) = run(&["certs", "agent", "a1", "--dir", d, "--out", o]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");
    let (code, _, err) = run(&["certs", "agent", "bad id", "--dir", d, "--out", o]);
    assert_eq!(code, 2);
    assert!(err.contains("agent id"), "{err}");

    let (code, _, err) = run(&["certs", "revoke", "a1", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["certs", "revoke", "nobody", "--dir", d]);
    assert_eq!(code, 2);
    assert!(err.contains("nobody"), "{err}");
}

#[test]
fn server_without_pki_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["server", "--data-dir", dir.path().to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2);
    assert!(err.contains("vigil certs init --dir"), "{err}");
}

/// Starts `vigil demo` in `demo_dir` on a free port; returns it with the API key and the
/// server URL it printed.
pub(crate) fn start_demo(demo_dir: &Path) -> (Child, String, String) {
    let mut child = vigil()
        .args(["demo", "--dir", demo_dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut key, mut base, mut line) = (None, None, String::new());
    while key.is_none() || base.is_none() {
        line.clear();
        if !matches!(out.read_line(&mut line), Ok(n) if n > 0) {
            panic!("demo exited before printing its URL and key");
        }
        if let Some(k) = line.trim().strip_prefix("API key:") {
            key = Some(k.trim().to_owned());
        }
        if let Some(u) = line.trim().strip_prefix("Server:") {
            base = Some(u.trim().to_owned());
        }
    }
    // Kept open: the demo goes on printing, and a closed pipe would fail its writes.
    child.stdout = Some(out.into_inner());
    (child, key.unwrap(), base.unwrap())
}

/// The README's first command: within 30 s the demo shows agent metrics, alerts of at
/// least three categories from its demo agents (their replayed synthetic attack) and an
/// incident through the API, and it stops cleanly on SIGINT.
#[test]
fn demo_shows_metrics_alerts_and_an_incident_within_thirty_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let started = Instant::now();
    let (mut child, key, base) = start_demo(&demo_dir);
    let ca = std::fs::read(demo_dir.join("pki/ca.crt")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let demo_agents = ["demo-agent", "demo-web", "demo-db"];
    let (metrics, categories, incidents) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(ca_only_config(&ca))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let get = |path: &str| {
            let req = client.get(format!("{base}{path}")).header("X-API-Key", &key);
            async move { req.send().await.ok()?.json::<serde_json::Value>().await.ok() }
        };
        let (mut metrics, mut categories, mut incidents) = (false, BTreeSet::new(), Vec::new());
        while started.elapsed() < Duration::from_secs(30) {
            if !metrics && let Some(v) = get("/api/v1/agents/demo-agent/metrics").await {
                metrics = v["samples"].as_array().is_some_and(|s| !s.is_empty());
            }
            if let Some(v) = get("/api/v1/alerts?limit=500").await {
                categories = v["alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| a["agent"].as_str().is_some_and(|id| demo_agents.contains(&id)))
                    .filter_map(|a| a["category"].as_str().map(str::to_owned))
                    .collect();
            }
            if let Some(v) = get("/api/v1/incidents").await {
                incidents = v["incidents"].as_array().cloned().unwrap_or_default();
            }
            if metrics && categories.len() >= 3 && !incidents.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (metrics, categories, incidents)
    });
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(metrics, "no demo-agent metrics through the API within 30 s");
    assert!(categories.len() >= 3, "alerts of only {categories:?} from the demo agents within 30 s");
    assert!(!incidents.is_empty(), "no incident through the API within 30 s (alerts: {categories:?})");
    let status = status.expect("demo did not stop within 15 s of SIGINT");
    assert!(status.success(), "demo exited with {status}");
}

fn ca_only_config(ca_pem: &[u8]) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem).unwrap()).unwrap();
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[test]
fn configuration_reference_matches_the_examples() {
    let doc = std::fs::read_to_string(
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../docs/configuration.md"),
    )
    .unwrap();
    for kind in ["server", "agent"] {
        let (code, text, _) = run(&["config", "example", kind]);
        assert_eq!(code, 0);
        assert!(doc.contains(&text), "docs/configuration.md is out of date for the {kind} example");
    }
}

/// `vigil analyze` on a real public capture: the synthetic single-source SYN flood.
#[test]
fn analyze_reports_a_syn_flood_and_honours_fail_on() {
    let corpus = std::env::var("VIGIL_CORPUS").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../../shared/corpus")
    });
    let file = corpus.join("pcaps/sv-tcp-session-syn-flood.pcap");
    if !file.exists() {
        assert!(std::env::var("VIGIL_CORPUS_REQUIRED").is_err(), "corpus required but {} is missing", file.display());
        eprintln!("SKIPPED analyze test: no corpus at {}", corpus.display());
        return;
    }
    let f = file.to_str().unwrap();
    let (code, out, err) = run(&["analyze", f]);
    assert_eq!(code, 0, "{err}");
    let alerts: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(alerts.iter().any(|a| a["category"] == "syn_flood" && a["src_ip"] == "192.0.2.10"), "{out}");
    assert!(err.contains("packets"), "summary on stderr: {err}");
    let (code, _, _) = run(&["analyze", "--fail-on", "high", f]);
    assert_eq!(code, 1);
    let (code, _, err) = run(&["analyze", "/nonexistent.pcap"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.pcap"), "{err}");
}
