//! Loading vigil configuration files.
//!
//! Each component declares its file format as serde structs with `deny_unknown_fields`
//! (what the user wrote) and converts them into a validated runtime config (what runs).
//! This crate holds what they share: reading a file with errors that name the file, the
//! line and the key and say what was expected, and value types that validate themselves
//! while parsing (so a bad value is reported at its own line).
//!
//! It does file I/O only in [`load`]; everything else is pure.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest configuration file read, bytes.
const MAX_CONFIG_LEN: u64 = 1024 * 1024;

/// A configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is too large to be a configuration file.
    #[error("config file {path} is larger than 1 MiB; is it the right file?")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file does not parse, or a key or value is wrong.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A value is wrong in a way only visible once the whole file is read.
    #[error("{path}: key `{key}`: {message}")]
    Value {
        /// The file (or `command line`).
        path: PathBuf,
        /// Dotted key, e.g. `thresholds.cpu_percent`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// Parses `text` (the contents of `path`) as `T`, turning parse errors into
/// [`ConfigError::Invalid`] with line and column.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError::Invalid { path: path.to_owned(), line, column, message: e.message().trim().to_owned() }
    })
}

/// Reads and parses the file at `path`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    if meta.len() > MAX_CONFIG_LEN {
        return Err(ConfigError::TooLarge { path: path.to_owned() });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    parse(path, &text)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// A duration written the human way: `"500ms"`, `"5s"`, `"10m"`, `"7d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `"5s"`-style text (also used for command-line flags).
    pub fn parse(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s.trim()).map(HumanDuration).map_err(|e| {
            format!(
                "invalid duration {s:?} ({e}); expected a number with a unit, e.g. \"500ms\", \"5s\", \"10m\", \"7d\""
            )
        })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A percentage in `(0, 100]`, validated while parsing.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Percent(pub f32);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v > 0.0 && v <= 100.0 {
            Ok(Percent(v as f32))
        } else {
            Err(serde::de::Error::custom(format!("{v} is not a percentage; expected a number above 0 and at most 100")))
        }
    }
}

/// A byte size written as an integer or with a unit: `67108864`, `"64MiB"`, `"512KiB"`, `"1GiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"64MiB"`-style text.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}; expected e.g. \"64MiB\""))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" | "KB" => 1 << 10,
            "MiB" | "M" | "MB" => 1 << 20,
            "GiB" | "G" | "GB" => 1 << 30,
            other => return Err(format!("unknown size unit {other:?} in {s:?}; use B, KiB, MiB or GiB")),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        interval: Option<HumanDuration>,
        cpu: Option<Percent>,
        size: Option<ByteSize>,
    }

    fn err(text: &str) -> String {
        parse::<Demo>(Path::new("agent.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = err("interval = \"5s\"\ncpux = 3\n");
        assert!(e.starts_with("agent.toml:2:1:"), "{e}");
        assert!(e.contains("cpux"), "{e}");
        assert!(e.contains("expected one of"), "{e}");
    }

    #[test]
    fn bad_values_name_their_line() {
        let e = err("\ncpu = 150\n");
        assert!(e.starts_with("agent.toml:2:"), "{e}");
        assert!(e.contains("not a percentage"), "{e}");
        let e = err("interval = \"5 parsecs\"");
        assert!(e.contains("invalid duration"), "{e}");
        let e = err("size = \"3 furlongs\"");
        assert!(e.contains("unknown size unit"), "{e}");
    }

    #[test]
    fn good_values_parse() {
        let d: Demo = parse(Path::new("x"), "interval = \"1m\"\ncpu = 80\nsize = \"64MiB\"").unwrap();
        assert_eq!(d.interval, Some(HumanDuration(Duration::from_secs(60))));
        assert_eq!(d.cpu, Some(Percent(80.0)));
        assert_eq!(d.size, Some(ByteSize(64 << 20)));
    }

    #[test]
    fn load_reports_missing_file() {
        let e = load::<Demo>(Path::new("/nonexistent/vigil.toml")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/vigil.toml"), "{e}");
    }
}
