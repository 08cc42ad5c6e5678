use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest agent id accepted anywhere (certificate CN, wire header, API path).
pub const AGENT_ID_MAX_LEN: usize = 64;

/// The identity of one agent: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, starting with a
/// letter or digit. The same string is the certificate common name, the id inside every
/// sealed message and the key in storage, so it is validated once, here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AgentId(String);

/// Why a string is not a valid [`AgentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentIdError {
    /// The id is empty.
    #[error("agent id is empty; expected 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    Empty,
    /// The id is longer than [`AGENT_ID_MAX_LEN`].
    #[error("agent id is {0} characters long; at most 64 are allowed")]
    TooLong(usize),
    /// The id holds a character outside the allowed set, or starts with punctuation.
    #[error(
        "agent id has an invalid character at position {0}; use A-Z a-z 0-9 . _ - and start with a letter or digit"
    )]
    BadChar(usize),
}

impl AgentId {
    /// Validates `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, AgentIdError> {
        let s = s.into();
        if s.is_empty() {
            return Err(AgentIdError::Empty);
        }
        if s.len() > AGENT_ID_MAX_LEN {
            return Err(AgentIdError::TooLong(s.len()));
        }
        for (i, b) in s.bytes().enumerate() {
            let ok = b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(AgentIdError::BadChar(i));
            }
        }
        Ok(Self(s))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({})", self.0)
    }
}

impl FromStr for AgentId {
    type Err = AgentIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AgentId::new(s).map_err(serde::de::Error::custom)
    }
}

/// What an agent says about itself in heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AgentInfo {
    /// Host name of the machine the agent runs on.
    pub hostname: String,
    /// Operating system name and version.
    pub os: String,
    /// vigil version of the agent.
    pub version: String,
    /// Metrics interval the agent runs with, in milliseconds.
    pub interval_ms: u64,
}

/// Counters an agent reports about its own health: spool use and drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AgentStats {
    /// Bytes currently held in the on-disk spool.
    pub spool_bytes: u64,
    /// Batches currently held in the on-disk spool.
    pub spool_batches: u64,
    /// Metric samples dropped because the spool was full (since the spool was created).
    pub dropped_samples: u64,
    /// Alerts dropped because the spool was full (since the spool was created).
    pub dropped_alerts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids() {
        for ok in ["a", "web-01", "db.prod_3", "A9"] {
            assert!(AgentId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(AgentId::new(""), Err(AgentIdError::Empty));
        assert_eq!(AgentId::new("-x"), Err(AgentIdError::BadChar(0)));
        assert_eq!(AgentId::new("a b"), Err(AgentIdError::BadChar(1)));
        assert_eq!(AgentId::new("a/../b"), Err(AgentIdError::BadChar(1)));
        assert_eq!(AgentId::new("x".repeat(65)), Err(AgentIdError::TooLong(65)));
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<AgentId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<AgentId>("\"bad id\"").is_err());
    }
}
