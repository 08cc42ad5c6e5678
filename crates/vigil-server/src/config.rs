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
"#;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    clock_skew: Option<HumanDuration>,
    #[serde(default)]
    retention: RetentionFile,
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
        Ok(s)
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
