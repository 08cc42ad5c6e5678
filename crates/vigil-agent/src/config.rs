//! The agent's configuration file and the validated settings it runs with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_capture::live::{Backend, InterfaceSpec, LiveConfig, LiveError};
use vigil_config::{ByteSize, ConfigError, HumanDuration, Percent};
use vigil_detect::DetectConfig;
use vigil_hostmon::Thresholds;

/// The commented example printed by `vigil config example agent`. A test parses it and
/// checks it equals the defaults, so the example and the code cannot drift apart.
pub const EXAMPLE: &str = r#"# vigil agent configuration (TOML). Every key is optional; shown with its default.
# Command-line flags (--credentials, --server, --interval, --interface, --pcap)
# override these values.

# Credential file made on the server by `vigil certs agent ID --out FILE` (keep it 0600).
# credentials = "/etc/vigil/agent.cred"

# Server URL. Default: the URL stored in the credential file.
# server_url = "https://vigil.example.org:8443"

# How often host metrics are sampled and sent.
interval = "5s"

# Where the agent keeps its boot epoch and its spool.
# Default: "<agent id>.state" next to the credential file.
# state_dir = "/var/lib/vigil-agent"

[thresholds]
# Usage at or above which host_cpu_high / host_memory_high / host_disk_high fire,
# once sustained for `sustain`. They resolve after usage stays below
# (threshold - hysteresis) for `sustain` again, so they don't flap.
cpu_percent = 80
memory_percent = 80
disk_percent = 90
sustain = "30s"
hysteresis = 5

[spool]
# On-disk buffer used while the server is unreachable. When full, the oldest
# metrics are dropped first, then the oldest alerts; drops are reported.
max_size = "64MiB"

[shipping]
# Most items per sealed batch.
batch_max_items = 500
# Time allowed for one request to the server.
request_timeout = "10s"
# Retry delays: exponential from backoff_initial up to backoff_max, with jitter.
backoff_initial = "500ms"
backoff_max = "60s"

[capture]
# Watch this host's traffic with the detection engine. Needs root, or once:
#   sudo setcap cap_net_raw,cap_net_admin=eip /usr/bin/vigil
# Without the privilege the agent says so and goes on sending host metrics.
enabled = true
# Interfaces ("any" for all of them, cooked capture). Default: the interface of the
# default route.
# interfaces = ["eth0"]
# Capture threads per interface; several share the traffic by flow hash (PACKET_FANOUT).
workers = 1
# Kernel ring per capture thread: block_count blocks of block_size (32MiB by default).
block_size = "1MiB"
block_count = 32
# Longest a partly filled block waits in the kernel before the agent reads it.
block_timeout = "20ms"
# Put the interfaces in promiscuous mode (see traffic between other hosts).
promiscuous = true
# "afpacket" (Linux, built in) or "libpcap" (a build with the libpcap feature).
backend = "afpacket"
# BPF filter, libpcap backend only.
# filter = "not port 22"
# Batches (up to 256 packets or 256 KiB each) queued between capture and detection:
# 256 hold about 65 000 packets, 0.16 s of traffic at 400 000 packets/s. When the queue
# is full, a capture thread waits up to 4 ms for room (at most once every 0.1 s), else
# drops whole batches, counted as queue drops; the kernel ring keeps draining.
queue_batches = 256
# Busiest addresses reported in each interval's network statistics.
top_talkers = 10

# Detection engine settings (vigil-detect's DetectConfig; every key optional,
# defaults as in DESIGN.md section 4), e.g.:
# [detect.port_scan]
# distinct_ports = 15
"#;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    credentials: Option<PathBuf>,
    server_url: Option<String>,
    interval: Option<HumanDuration>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    thresholds: ThresholdsFile,
    #[serde(default)]
    spool: SpoolFile,
    #[serde(default)]
    shipping: ShippingFile,
    #[serde(default)]
    capture: CaptureFile,
    detect: Option<DetectConfig>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CaptureFile {
    enabled: Option<bool>,
    interfaces: Option<Vec<String>>,
    workers: Option<usize>,
    block_size: Option<ByteSize>,
    block_count: Option<u32>,
    block_timeout: Option<HumanDuration>,
    promiscuous: Option<bool>,
    backend: Option<String>,
    filter: Option<String>,
    queue_batches: Option<usize>,
    top_talkers: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ThresholdsFile {
    cpu_percent: Option<Percent>,
    memory_percent: Option<Percent>,
    disk_percent: Option<Percent>,
    sustain: Option<HumanDuration>,
    hysteresis: Option<f32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SpoolFile {
    max_size: Option<ByteSize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ShippingFile {
    batch_max_items: Option<usize>,
    request_timeout: Option<HumanDuration>,
    backoff_initial: Option<HumanDuration>,
    backoff_max: Option<HumanDuration>,
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default)]
pub struct AgentOverrides {
    /// `--credentials`.
    pub credentials: Option<PathBuf>,
    /// `--server`.
    pub server_url: Option<String>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--interface` (repeatable; `any` for all).
    pub interfaces: Vec<String>,
    /// `--pcap FILE`: analyse a capture file through the live path instead of capturing.
    pub pcap: Option<PathBuf>,
}

/// What the agent runs with. The credential file itself is read at start.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// Credential file, if given (required to run).
    pub credentials: Option<PathBuf>,
    /// Server URL override.
    pub server_url: Option<String>,
    /// Metrics interval.
    pub interval: Duration,
    /// State dir override.
    pub state_dir: Option<PathBuf>,
    /// Host threshold alerting.
    pub thresholds: Thresholds,
    /// Spool size cap, bytes.
    pub spool_max_bytes: u64,
    /// Most items per batch.
    pub batch_max_items: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// First retry delay.
    pub backoff_initial: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Packet capture and detection.
    pub capture: CaptureSettings,
    /// Detection engine settings.
    pub detect: DetectConfig,
}

/// Packet capture in the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureSettings {
    /// Capture at all.
    pub enabled: bool,
    /// Live capture settings (interfaces, workers, ring, promiscuous, backend).
    pub live: LiveConfig,
    /// A capture file to analyse instead of live capture (`--pcap`).
    pub pcap: Option<PathBuf>,
    /// Batches queued between capture and detection.
    pub queue_batches: usize,
    /// Talkers reported per interval.
    pub top_talkers: usize,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        CaptureSettings { enabled: true, live: LiveConfig::default(), pcap: None, queue_batches: 256, top_talkers: 10 }
    }
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            credentials: None,
            server_url: None,
            interval: Duration::from_secs(5),
            state_dir: None,
            thresholds: Thresholds::default(),
            spool_max_bytes: 64 << 20,
            batch_max_items: 500,
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            capture: CaptureSettings::default(),
            detect: DetectConfig::default(),
        }
    }
}

impl AgentSettings {
    /// Settings from an optional file plus command-line overrides.
    pub fn load(file: Option<&Path>, ov: &AgentOverrides) -> Result<Self, ConfigError> {
        match file {
            Some(p) => Self::from_file(vigil_config::load(p)?, p, ov),
            None => Self::from_file(FileConfig::default(), Path::new("<defaults>"), ov),
        }
    }

    /// Settings from the text of a file (for `vigil config check` and tests).
    pub fn parse(path: &Path, text: &str, ov: &AgentOverrides) -> Result<Self, ConfigError> {
        Self::from_file(vigil_config::parse(path, text)?, path, ov)
    }

    fn from_file(fc: FileConfig, path: &Path, ov: &AgentOverrides) -> Result<Self, ConfigError> {
        let d = AgentSettings::default();
        let bad = |key: &str, message: String| ConfigError::Value { path: path.to_owned(), key: key.into(), message };
        let t = &fc.thresholds;
        let thresholds = Thresholds {
            cpu_percent: t.cpu_percent.map_or(d.thresholds.cpu_percent, |p| p.0),
            memory_percent: t.memory_percent.map_or(d.thresholds.memory_percent, |p| p.0),
            disk_percent: t.disk_percent.map_or(d.thresholds.disk_percent, |p| p.0),
            sustain: t.sustain.map_or(d.thresholds.sustain, |h| h.0),
            hysteresis: t.hysteresis.unwrap_or(d.thresholds.hysteresis),
        };
        thresholds.validate().map_err(|m| bad("thresholds", m))?;
        let capture = capture_settings(&fc.capture, ov).map_err(|(key, m)| bad(key, m))?;
        let detect = fc.detect.unwrap_or_default();
        detect.validate().map_err(|e| bad("detect", e.to_string()))?;
        let s = AgentSettings {
            credentials: ov.credentials.clone().or(fc.credentials),
            server_url: ov.server_url.clone().or(fc.server_url),
            interval: ov.interval.or(fc.interval.map(|h| h.0)).unwrap_or(d.interval),
            state_dir: ov.state_dir.clone().or(fc.state_dir),
            thresholds,
            spool_max_bytes: fc.spool.max_size.map_or(d.spool_max_bytes, |b| b.0),
            batch_max_items: fc.shipping.batch_max_items.unwrap_or(d.batch_max_items),
            request_timeout: fc.shipping.request_timeout.map_or(d.request_timeout, |h| h.0),
            backoff_initial: fc.shipping.backoff_initial.map_or(d.backoff_initial, |h| h.0),
            backoff_max: fc.shipping.backoff_max.map_or(d.backoff_max, |h| h.0),
            capture,
            detect,
        };
        if let Some(url) = &s.server_url {
            check_url(url).map_err(|m| bad("server_url", m))?;
        }
        if s.interval < Duration::from_millis(100) || s.interval > Duration::from_secs(3600) {
            return Err(bad("interval", "expected between 100ms and 1h".into()));
        }
        if s.spool_max_bytes < 64 * 1024 {
            return Err(bad("spool.max_size", "expected at least 64KiB".into()));
        }
        if !(1..=vigil_wire::MAX_BATCH_ITEMS).contains(&s.batch_max_items) {
            return Err(bad("shipping.batch_max_items", format!("expected 1 to {}", vigil_wire::MAX_BATCH_ITEMS)));
        }
        if s.request_timeout < Duration::from_millis(100) {
            return Err(bad("shipping.request_timeout", "expected at least 100ms".into()));
        }
        if s.backoff_initial.is_zero() || s.backoff_initial > s.backoff_max {
            return Err(bad("shipping.backoff_initial", "expected above 0 and at most backoff_max".into()));
        }
        Ok(s)
    }
}

fn capture_settings(c: &CaptureFile, ov: &AgentOverrides) -> Result<CaptureSettings, (&'static str, String)> {
    let d = CaptureSettings::default();
    let backend = match c.backend.as_deref() {
        None | Some("afpacket") => Backend::AfPacket,
        Some("libpcap") => Backend::Libpcap,
        Some(other) => return Err(("capture.backend", format!("{other:?}: expected \"afpacket\" or \"libpcap\""))),
    };
    let block_size = match c.block_size {
        None => d.live.block_size,
        Some(b) => u32::try_from(b.0).map_err(|_| ("capture.block_size", "expected at most 4MiB".to_owned()))?,
    };
    let interfaces =
        if ov.interfaces.is_empty() { c.interfaces.clone().unwrap_or_default() } else { ov.interfaces.clone() };
    let live = LiveConfig {
        interfaces: interfaces.iter().map(|s| InterfaceSpec::parse(s)).collect(),
        workers: c.workers.unwrap_or(d.live.workers),
        block_size,
        block_count: c.block_count.unwrap_or(d.live.block_count),
        block_timeout: c.block_timeout.map_or(d.live.block_timeout, |h| h.0),
        promiscuous: c.promiscuous.unwrap_or(d.live.promiscuous),
        backend,
        filter: c.filter.clone(),
    };
    if let Err(e) = live.validate() {
        return Err(match e {
            LiveError::Config { field, message } => (field, message),
            other => ("capture", other.to_string()),
        });
    }
    if interfaces.iter().any(|i| i.is_empty() || i.len() > 64) {
        return Err(("capture.interfaces", "interface names are 1 to 64 characters".into()));
    }
    let s = CaptureSettings {
        // Flags that ask for capture turn it on.
        enabled: c.enabled.unwrap_or(d.enabled) || ov.pcap.is_some() || !ov.interfaces.is_empty(),
        live,
        pcap: ov.pcap.clone(),
        queue_batches: c.queue_batches.unwrap_or(d.queue_batches),
        top_talkers: c.top_talkers.unwrap_or(d.top_talkers),
    };
    if !(1..=4096).contains(&s.queue_batches) {
        return Err(("capture.queue_batches", "expected 1 to 4096".into()));
    }
    if s.top_talkers > crate::netstats::MAX_TOP_TALKERS {
        return Err(("capture.top_talkers", format!("expected at most {}", crate::netstats::MAX_TOP_TALKERS)));
    }
    Ok(s)
}

/// Checks that `url` is an `https://host[:port]` URL.
pub fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(()),
        _ => Err(format!("{url:?} is not an https URL; expected e.g. \"https://vigil.example.org:8443\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_to_the_defaults() {
        let s = AgentSettings::parse(Path::new("example"), EXAMPLE, &AgentOverrides::default()).unwrap();
        assert_eq!(s, AgentSettings::default());
    }

    #[test]
    fn flags_override_the_file() {
        let ov = AgentOverrides { interval: Some(Duration::from_secs(1)), ..Default::default() };
        let s = AgentSettings::parse(Path::new("a.toml"), "interval = \"9s\"", &ov).unwrap();
        assert_eq!(s.interval, Duration::from_secs(1));
    }

    #[test]
    fn capture_flags_and_file() {
        let text = "[capture]\nenabled = false\nworkers = 2\nblock_size = \"2MiB\"\ninterfaces = [\"eth1\"]\n\n[detect]\ncooldown_secs = 5.0\n";
        let s = AgentSettings::parse(Path::new("a.toml"), text, &AgentOverrides::default()).unwrap();
        assert!(!s.capture.enabled);
        assert_eq!(s.capture.live.workers, 2);
        assert_eq!(s.capture.live.block_size, 2 << 20);
        assert_eq!(s.capture.live.interfaces, vec![InterfaceSpec::Named("eth1".into())]);
        assert_eq!(s.detect.cooldown_secs, 5.0);
        // --interface replaces the file's list and turns capture on; --pcap too.
        let ov = AgentOverrides { interfaces: vec!["any".into()], pcap: Some("x.pcap".into()), ..Default::default() };
        let s = AgentSettings::parse(Path::new("a.toml"), text, &ov).unwrap();
        assert!(s.capture.enabled);
        assert_eq!(s.capture.live.interfaces, vec![InterfaceSpec::Any]);
        assert_eq!(s.capture.pcap.as_deref(), Some(Path::new("x.pcap")));
        for (text, key) in [
            ("[capture]\nworkers = 0", "capture.workers"),
            ("[capture]\nblock_size = \"3000\"", "capture.block_size"),
            ("[capture]\nbackend = \"dpdk\"", "capture.backend"),
            ("[capture]\nfilter = \"tcp\"", "capture.filter"),
            ("[capture]\nqueue_batches = 0", "capture.queue_batches"),
            ("[detect]\ncooldown_secs = -1.0", "detect"),
        ] {
            let e =
                AgentSettings::parse(Path::new("a.toml"), text, &AgentOverrides::default()).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        assert!(AgentSettings::parse(Path::new("a.toml"), "[capture]\nbogus = 1", &AgentOverrides::default()).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let e = AgentSettings::parse(Path::new("a.toml"), "server_url = \"http://x\"", &AgentOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.toml") && e.contains("server_url") && e.contains("https"), "{e}");
        let e = AgentSettings::parse(Path::new("a.toml"), "[thresholds]\ncpu_percent = 0", &AgentOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.toml:2:"), "{e}");
        let e = AgentSettings::parse(Path::new("a.toml"), "[spool]\nmax_size = 10", &AgentOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("spool.max_size"), "{e}");
    }
}
