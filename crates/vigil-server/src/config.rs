//! The server's configuration file (what the user writes) and the validated settings the
//! server runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_config::{ConfigError, HumanDuration};

/// The commented example printed by `vigil config example server`. A test parses it and
/// checks it equals the defaults, so the example and the code cannot drift apart.
pub const EXAMPLE: &str = r#"# vigil server configuration (TOML). Every key is optional; shown with its default.
# Command-line flags (--listen, --data-dir) override these values.

# Address and port the server listens on: agents, API and dashboard share it (TLS 1.3).
listen = "0.0.0.0:8443"

# Where the server keeps its database (vigil.db), its PKI (pki/) and the initial admin key.
# Create the PKI first with: vigil certs init --dir <data_dir>
data_dir = "/var/lib/vigil"

# Largest difference allowed between an agent's clock and the server's. Messages stamped
# further away are refused and recorded as replay_attempt alerts.
clock_skew = "5m"

[retention]
# How long host metric samples are kept.
metrics = "7d"
# How long alerts are kept.
alerts = "90d"
# How often old data is deleted.
interval = "1h"

[api]
# Requests per second allowed from one client address (API, dashboard, /metrics), and
# the burst allowed above that rate. Past it the server answers 429 with Retry-After.
client_rate = 50
client_burst = 500
# Requests per second allowed for one API key (all its clients and sessions together).
key_rate = 100
key_burst = 1000
# How long a dashboard login lasts.
session_ttl = "12h"

[pipeline]
# Inputs (alerts, metrics, heartbeats) queued for the alert pipeline. When the queue is
# full, inputs are dropped from the pipeline only (still stored) and counted.
queue = 65536
# How often the pipeline's memory (open alerts and incidents, baselines, models) is
# saved to the database; it is also saved at shutdown and restored at start.
save_interval = "1m"
# Seed of the pipeline's random choices (ids, anomaly model sampling).
seed = 0

# dos_suspected: min_alerts flood or scan alerts against one destination, from at least
# min_agents agents, within window_secs (by alert time); or such alerts from at least
# consensus_agents agents, whatever their number (0 turns that off).
[pipeline.dos]
min_alerts = 5
min_agents = 2
consensus_agents = 3
window_secs = 10

# Dedup and incidents: an alert or incident with nothing new for the quiet period is
# resolved; alerts older than backfill_age_secs (e.g. from an agent's spool) are stored
# but open and notify nothing.
[pipeline.lifecycle]
quiet_period_secs = 900
incident_quiet_period_secs = 1800
backfill_age_secs = 900

# Every other setting of the pipeline (sections lifecycle, dos, monitor, baseline,
# anomaly, churn, limits) is listed in docs/configuration.md.
"#;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    clock_skew: Option<HumanDuration>,
    #[serde(default)]
    retention: RetentionFile,
    #[serde(default)]
    api: ApiFile,
    #[serde(default)]
    pipeline: PipelineFile,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    queue: Option<usize>,
    save_interval: Option<HumanDuration>,
    seed: Option<u64>,
    lifecycle: Option<vigil_pipeline::LifecycleConfig>,
    dos: Option<vigil_pipeline::DosConfig>,
    monitor: Option<vigil_pipeline::MonitorConfig>,
    baseline: Option<vigil_pipeline::BaselineConfig>,
    anomaly: Option<vigil_pipeline::AnomalyConfig>,
    churn: Option<vigil_pipeline::ChurnConfig>,
    limits: Option<vigil_pipeline::Limits>,
}

/// The alert pipeline: its settings and how the server runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSettings {
    /// Inputs queued for the pipeline task; past it inputs skip the pipeline (counted).
    pub queue: usize,
    /// How often the pipeline state is saved.
    pub save_interval: Duration,
    /// The pipeline's own settings (validated).
    pub config: vigil_pipeline::PipelineConfig,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            queue: 65536,
            save_interval: Duration::from_secs(60),
            config: vigil_pipeline::PipelineConfig::default(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApiFile {
    client_rate: Option<u32>,
    client_burst: Option<u32>,
    key_rate: Option<u32>,
    key_burst: Option<u32>,
    session_ttl: Option<HumanDuration>,
}

/// Limits of the human-facing routes (API, dashboard, `/metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// Requests per second per client address.
    pub client_rate: u32,
    /// Burst per client address.
    pub client_burst: u32,
    /// Requests per second per API key.
    pub key_rate: u32,
    /// Burst per API key.
    pub key_burst: u32,
    /// Lifetime of a dashboard session.
    pub session_ttl: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            client_rate: 50,
            client_burst: 500,
            key_rate: 100,
            key_burst: 1000,
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    metrics: Option<HumanDuration>,
    alerts: Option<HumanDuration>,
    interval: Option<HumanDuration>,
}

/// What the server runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory (database, PKI, initial admin key).
    pub data_dir: PathBuf,
    /// Largest clock difference accepted on sealed messages.
    pub clock_skew: Duration,
    /// How long samples are kept.
    pub retain_metrics: Duration,
    /// How long alerts are kept.
    pub retain_alerts: Duration,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// API limits and sessions.
    pub api: ApiSettings,
    /// The alert pipeline.
    pub pipeline: PipelineSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            data_dir: PathBuf::from("/var/lib/vigil"),
            clock_skew: Duration::from_secs(300),
            retain_metrics: Duration::from_secs(7 * 86400),
            retain_alerts: Duration::from_secs(90 * 86400),
            retention_interval: Duration::from_secs(3600),
            api: ApiSettings::default(),
            pipeline: PipelineSettings::default(),
        }
    }
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default)]
pub struct ServerOverrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

impl ServerSettings {
    /// Settings from an optional file plus command-line overrides.
    pub fn load(file: Option<&Path>, overrides: &ServerOverrides) -> Result<Self, ConfigError> {
        let (fc, path) = match file {
            Some(p) => (vigil_config::load::<FileConfig>(p)?, p.to_owned()),
            None => (FileConfig::default(), PathBuf::from("<defaults>")),
        };
        Self::from_file(fc, &path, overrides)
    }

    /// Settings from the text of a file (for `vigil config check` and tests).
    pub fn parse(path: &Path, text: &str, overrides: &ServerOverrides) -> Result<Self, ConfigError> {
        let fc = vigil_config::parse::<FileConfig>(path, text)?;
        Self::from_file(fc, path, overrides)
    }

    fn from_file(fc: FileConfig, path: &Path, ov: &ServerOverrides) -> Result<Self, ConfigError> {
        let d = ServerSettings::default();
        let listen = match ov.listen.clone().or(fc.listen) {
            Some(t) => t.parse::<SocketAddr>().map_err(|_| ConfigError::Value {
                path: if ov.listen.is_some() { PathBuf::from("--listen") } else { path.to_owned() },
                key: "listen".into(),
                message: format!("{t:?} is not an address and port; expected e.g. \"0.0.0.0:8443\" or \"[::]:8443\""),
            })?,
            None => d.listen,
        };
        let s = ServerSettings {
            listen,
            data_dir: ov.data_dir.clone().or(fc.data_dir).unwrap_or(d.data_dir),
            clock_skew: fc.clock_skew.map_or(d.clock_skew, |h| h.0),
            retain_metrics: fc.retention.metrics.map_or(d.retain_metrics, |h| h.0),
            retain_alerts: fc.retention.alerts.map_or(d.retain_alerts, |h| h.0),
            retention_interval: fc.retention.interval.map_or(d.retention_interval, |h| h.0),
            api: ApiSettings {
                client_rate: fc.api.client_rate.unwrap_or(d.api.client_rate),
                client_burst: fc.api.client_burst.unwrap_or(d.api.client_burst),
                key_rate: fc.api.key_rate.unwrap_or(d.api.key_rate),
                key_burst: fc.api.key_burst.unwrap_or(d.api.key_burst),
                session_ttl: fc.api.session_ttl.map_or(d.api.session_ttl, |h| h.0),
            },
            pipeline: pipeline_settings(fc.pipeline, &d.pipeline),
        };
        let bad = |key: &str, message: &str| ConfigError::Value {
            path: path.to_owned(),
            key: key.into(),
            message: message.into(),
        };
        if s.clock_skew < Duration::from_secs(1) || s.clock_skew > Duration::from_secs(86400) {
            return Err(bad("clock_skew", "expected between 1s and 1d"));
        }
        if s.retain_metrics < Duration::from_secs(60) {
            return Err(bad("retention.metrics", "expected at least 1m"));
        }
        if s.retain_alerts < Duration::from_secs(60) {
            return Err(bad("retention.alerts", "expected at least 1m"));
        }
        if s.retention_interval < Duration::from_secs(1) {
            return Err(bad("retention.interval", "expected at least 1s"));
        }
        for (key, v) in [
            ("api.client_rate", s.api.client_rate),
            ("api.client_burst", s.api.client_burst),
            ("api.key_rate", s.api.key_rate),
            ("api.key_burst", s.api.key_burst),
        ] {
            if v == 0 {
                return Err(bad(key, "expected at least 1"));
            }
        }
        if s.api.session_ttl < Duration::from_secs(60) || s.api.session_ttl > Duration::from_secs(30 * 86400) {
            return Err(bad("api.session_ttl", "expected between 1m and 30d"));
        }
        if !(16..=16 * 1024 * 1024).contains(&s.pipeline.queue) {
            return Err(bad("pipeline.queue", "expected between 16 and 16777216"));
        }
        if s.pipeline.save_interval < Duration::from_secs(1) || s.pipeline.save_interval > Duration::from_secs(86400) {
            return Err(bad("pipeline.save_interval", "expected between 1s and 1d"));
        }
        if let Err(e) = s.pipeline.config.validate() {
            return Err(ConfigError::Value {
                path: path.to_owned(),
                key: format!("pipeline.{}", e.field),
                message: format!("{} is invalid: {}", e.value, e.hint),
            });
        }
        Ok(s)
    }
}

fn pipeline_settings(f: PipelineFile, d: &PipelineSettings) -> PipelineSettings {
    let dc = &d.config;
    PipelineSettings {
        queue: f.queue.unwrap_or(d.queue),
        save_interval: f.save_interval.map_or(d.save_interval, |h| h.0),
        config: vigil_pipeline::PipelineConfig {
            seed: f.seed.unwrap_or(dc.seed),
            lifecycle: f.lifecycle.unwrap_or_else(|| dc.lifecycle.clone()),
            dos: f.dos.unwrap_or_else(|| dc.dos.clone()),
            monitor: f.monitor.unwrap_or_else(|| dc.monitor.clone()),
            baseline: f.baseline.unwrap_or_else(|| dc.baseline.clone()),
            anomaly: f.anomaly.unwrap_or_else(|| dc.anomaly.clone()),
            churn: f.churn.unwrap_or_else(|| dc.churn.clone()),
            limits: f.limits.unwrap_or_else(|| dc.limits.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_to_the_defaults() {
        let s = ServerSettings::parse(Path::new("example"), EXAMPLE, &ServerOverrides::default()).unwrap();
        assert_eq!(s, ServerSettings::default());
    }

    #[test]
    fn pipeline_section_is_partial_checked_and_named_in_errors() {
        let text = "[pipeline]\nqueue = 128\n[pipeline.dos]\nmin_agents = 3\n";
        let s = ServerSettings::parse(Path::new("s.toml"), text, &ServerOverrides::default()).unwrap();
        assert_eq!(s.pipeline.queue, 128);
        assert_eq!(s.pipeline.config.dos.min_agents, 3);
        assert_eq!(s.pipeline.config.dos.min_alerts, 5, "unset keys keep their defaults");
        let e =
            ServerSettings::parse(Path::new("s.toml"), "[pipeline.dos]\nmin_alerts = 1\n", &ServerOverrides::default())
                .unwrap_err()
                .to_string();
        assert!(e.contains("pipeline.dos.min_alerts") && e.contains("at least 2"), "{e}");
        let e =
            ServerSettings::parse(Path::new("s.toml"), "[pipeline.dos]\nmin_agentz = 3\n", &ServerOverrides::default())
                .unwrap_err()
                .to_string();
        assert!(e.contains("min_agentz"), "{e}");
        let e = ServerSettings::parse(Path::new("s.toml"), "[pipeline]\nqueue = 0\n", &ServerOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.queue"), "{e}");
    }

    #[test]
    fn overrides_win() {
        let ov = ServerOverrides { listen: Some("127.0.0.1:9000".into()), data_dir: Some("/tmp/x".into()) };
        let s = ServerSettings::parse(Path::new("f"), "listen = \"0.0.0.0:1\"", &ov).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn errors_name_key_and_expectation() {
        let e = ServerSettings::parse(Path::new("s.toml"), "listen = \"nowhere\"", &ServerOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.toml") && e.contains("listen") && e.contains("0.0.0.0:8443"), "{e}");
        let e =
            ServerSettings::parse(Path::new("s.toml"), "[retention]\nmetricz = \"1d\"", &ServerOverrides::default())
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("s.toml:2:") && e.contains("metricz"), "{e}");
    }
}
