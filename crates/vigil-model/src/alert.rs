use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::{AgentId, Category};

/// How urgent an alert is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording, not worth a look.
    Info,
    /// Worth a look when convenient.
    Low,
    /// Worth a look today.
    Medium,
    /// Worth a look now.
    High,
    /// Wake someone up.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    /// The lowercase name used in JSON and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`Severity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}; expected one of info, low, medium, high, critical")]
pub struct SeverityParseError(String);

impl FromStr for Severity {
    type Err = SeverityParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| SeverityParseError(s.chars().take(32).collect()))
    }
}

/// One alert, with the fields of DESIGN.md §4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique id, chosen where the alert is raised (a UUIDv7, so ids sort by time). The
    /// server stores each id once, which makes resending after a lost reply harmless.
    pub id: Uuid,
    /// When the condition was observed (UTC).
    pub timestamp: DateTime<Utc>,
    /// What kind of alert this is.
    pub category: Category,
    /// How urgent it is.
    pub severity: Severity,
    /// The agent that raised it; `None` when raised offline (`vigil analyze`) or by the server.
    pub agent: Option<AgentId>,
    /// Source address, where one applies.
    pub src_ip: Option<IpAddr>,
    /// Destination address, where one applies.
    pub dst_ip: Option<IpAddr>,
    /// Source port, where one applies.
    pub src_port: Option<u16>,
    /// Destination port, where one applies.
    pub dst_port: Option<u16>,
    /// Source MAC address (`aa:bb:cc:dd:ee:ff`), where known.
    pub src_mac: Option<String>,
    /// One human sentence.
    pub summary: String,
    /// Supporting facts: counts, window, sample ports or names. A JSON object.
    #[serde(with = "evidence_serde")]
    pub evidence: serde_json::Value,
    /// MITRE ATT&CK technique id, where one applies.
    pub mitre: Option<String>,
}

impl Alert {
    /// A new alert of `category` with its default severity and MITRE id, no addresses and
    /// empty evidence. Fill in the rest with struct update syntax or the field setters.
    pub fn new(category: Category, timestamp: DateTime<Utc>, summary: impl Into<String>) -> Self {
        Alert {
            id: Uuid::now_v7(),
            timestamp,
            category,
            severity: category.default_severity(),
            agent: None,
            src_ip: None,
            dst_ip: None,
            src_port: None,
            dst_port: None,
            src_mac: None,
            summary: summary.into(),
            evidence: serde_json::Value::Object(Default::default()),
            mitre: category.mitre().map(str::to_owned),
        }
    }
}

/// Evidence is free-form JSON. Human-readable formats carry it as JSON; binary formats
/// (postcard is not self-describing, so it cannot carry a `serde_json::Value`) carry it
/// as JSON text.
mod evidence_serde {
    use super::*;

    pub fn serialize<S: Serializer>(v: &serde_json::Value, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            v.serialize(s)
        } else {
            let text = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
            s.serialize_str(&text)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
        if d.is_human_readable() {
            serde_json::Value::deserialize(d)
        } else {
            let text = String::deserialize(d)?;
            serde_json::from_str(&text).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Alert {
        let mut a = Alert::new(Category::PortScan, Utc::now(), "10.0.0.5 probed 40 ports");
        a.src_ip = Some("10.0.0.5".parse().unwrap());
        a.evidence = serde_json::json!({"ports": 40, "sample": [22, 80]});
        a.agent = Some(AgentId::new("web-1").unwrap());
        a
    }

    #[test]
    fn json_has_design_fields() {
        let v = serde_json::to_value(sample()).unwrap();
        for k in [
            "id",
            "timestamp",
            "category",
            "severity",
            "agent",
            "src_ip",
            "dst_ip",
            "src_port",
            "dst_port",
            "src_mac",
            "summary",
            "evidence",
            "mitre",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["category"], "port_scan");
        assert_eq!(v["severity"], "medium");
        assert_eq!(v["evidence"]["ports"], 40);
        assert_eq!(v["mitre"], "T1046");
    }

    #[test]
    fn postcard_round_trip_keeps_evidence() {
        let a = sample();
        let bytes = postcard::to_allocvec(&a).unwrap();
        let back: Alert = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Info < Severity::Critical);
        assert_eq!("high".parse::<Severity>(), Ok(Severity::High));
        assert!("urgent".parse::<Severity>().is_err());
    }
}
