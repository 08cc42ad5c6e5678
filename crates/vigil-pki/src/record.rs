//! The server's record of one issued agent (`D/pki/agents/<agent-id>.toml`).

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use vigil_model::AgentId;
use vigil_wire::SealingKey;
use zeroize::Zeroizing;

use crate::PkiError;
use crate::fsutil;

/// What the server keeps about an issued agent. `Debug` does not show the sealing key.
#[derive(Debug, Clone)]
pub struct AgentRecord {
    /// The agent's id (also its certificate's common name).
    pub agent_id: AgentId,
    /// The agent's AES-256-GCM sealing key.
    pub sealing_key: SealingKey,
    /// Serial number of the agent's certificate, lowercase hex.
    pub cert_serial: String,
    /// SHA-256 fingerprint of the agent's certificate (DER), lowercase hex.
    pub cert_sha256: String,
    /// When the credential was issued.
    pub issued_at: DateTime<Utc>,
    /// Whether the agent has been revoked.
    pub revoked: bool,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Parses a sealing key and wipes the text it came from. The error names no key material.
pub(crate) fn de_sealing_key<'de, D: Deserializer<'de>>(d: D) -> Result<SealingKey, D::Error> {
    let s = Zeroizing::new(String::deserialize(d)?);
    SealingKey::from_hex(&s).map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    agent_id: AgentId,
    #[serde(deserialize_with = "de_sealing_key")]
    sealing_key: SealingKey,
    cert_serial: String,
    cert_sha256: String,
    issued_at: String,
    revoked: bool,
    #[serde(default)]
    revoked_at: Option<String>,
}

#[derive(Serialize)]
struct RecordOut<'a> {
    agent_id: &'a str,
    sealing_key: &'a str,
    cert_serial: &'a str,
    cert_sha256: &'a str,
    issued_at: String,
    revoked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(path: &Path, field: &str, s: &str) -> Result<DateTime<Utc>, PkiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| PkiError::bad_field(path, field, format!("not an RFC 3339 time: {e}")))
}

fn check_hex(path: &Path, field: &str, s: &str, min: usize, max: usize) -> Result<(), PkiError> {
    let ok = (min..=max).contains(&s.len())
        && s.len().is_multiple_of(2)
        && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(PkiError::bad_field(path, field, format!("expected {min} to {max} lowercase hex digits (an even number)")))
    }
}

impl AgentRecord {
    /// The record as TOML with its header comment. Holds the sealing key: zeroized on drop.
    pub(crate) fn to_toml(&self) -> Result<Zeroizing<String>, PkiError> {
        let key = Zeroizing::new(self.sealing_key.to_hex());
        let out = RecordOut {
            agent_id: self.agent_id.as_str(),
            sealing_key: &key,
            cert_serial: &self.cert_serial,
            cert_sha256: &self.cert_sha256,
            issued_at: rfc3339(&self.issued_at),
            revoked: self.revoked,
            revoked_at: self.revoked_at.as_ref().map(rfc3339),
        };
        let body = Zeroizing::new(toml::to_string(&out).map_err(|e| PkiError::Malformed {
            path: self.agent_id.as_str().into(),
            message: format!("could not encode the agent record: {e}"),
        })?);
        let mut text = Zeroizing::new(String::with_capacity(body.len() + 256));
        text.push_str(&format!(
            "# vigil agent record for {}: the server's copy of what was issued.\n\
             # It holds the agent's sealing key: keep it secret (mode 0600). Written by\n\
             # `vigil certs agent` and `vigil certs revoke`; do not edit by hand.\n",
            self.agent_id
        ));
        text.push_str(&body);
        Ok(text)
    }

    /// Parses a record file's text; errors name `path` and the bad field.
    pub(crate) fn from_toml(path: &Path, text: &str) -> Result<Self, PkiError> {
        let f: RecordFile = toml::from_str(text).map_err(|e| PkiError::from_toml(path, text, &e))?;
        check_hex(path, "cert_serial", &f.cert_serial, 2, 40)?;
        check_hex(path, "cert_sha256", &f.cert_sha256, 64, 64)?;
        let issued_at = parse_time(path, "issued_at", &f.issued_at)?;
        let revoked_at = match &f.revoked_at {
            Some(s) => Some(parse_time(path, "revoked_at", s)?),
            None => None,
        };
        if revoked_at.is_some() && !f.revoked {
            return Err(PkiError::bad_field(path, "revoked_at", "set although `revoked` is false"));
        }
        Ok(Self {
            agent_id: f.agent_id,
            sealing_key: f.sealing_key,
            cert_serial: f.cert_serial,
            cert_sha256: f.cert_sha256,
            issued_at,
            revoked: f.revoked,
            revoked_at,
        })
    }

    /// Reads the record at `path`, which must be the record of `id` (when given).
    pub(crate) fn load(path: &Path, id: Option<&AgentId>) -> Result<Self, PkiError> {
        let text = fsutil::read_text(path)?;
        let rec = Self::from_toml(path, &text)?;
        if let Some(id) = id
            && &rec.agent_id != id
        {
            return Err(PkiError::bad_field(
                path,
                "agent_id",
                format!("names agent {} but the file is for agent {id}", rec.agent_id),
            ));
        }
        Ok(rec)
    }

    /// The certificate serial as bytes (for the CRL).
    pub(crate) fn serial_bytes(&self) -> Option<Vec<u8>> {
        hex::decode(&self.cert_serial).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AgentRecord {
        AgentRecord {
            agent_id: AgentId::new("db-1").unwrap(),
            sealing_key: SealingKey::from_bytes([7; 32]),
            cert_serial: "0a1b".to_owned(),
            cert_sha256: "ab".repeat(32),
            issued_at: DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z").unwrap().with_timezone(&Utc),
            revoked: false,
            revoked_at: None,
        }
    }

    #[test]
    fn round_trip_and_debug_redacts() {
        let r = sample();
        let text = r.to_toml().unwrap();
        assert!(text.starts_with("# vigil agent record"));
        let back = AgentRecord::from_toml(Path::new("x.toml"), &text).unwrap();
        assert_eq!(back.agent_id, r.agent_id);
        assert_eq!(back.sealing_key.as_bytes(), r.sealing_key.as_bytes());
        assert_eq!(back.issued_at, r.issued_at);
        assert_eq!(back.revoked_at, None);
        let dbg = format!("{back:?}");
        assert!(!dbg.contains(&"07".repeat(32)), "{dbg}");

        let mut revoked = r.clone();
        revoked.revoked = true;
        revoked.revoked_at = Some(r.issued_at);
        let back = AgentRecord::from_toml(Path::new("x.toml"), &revoked.to_toml().unwrap()).unwrap();
        assert!(back.revoked);
        assert_eq!(back.revoked_at, Some(r.issued_at));
    }

    #[test]
    fn bad_fields_are_named() {
        let text = sample().to_toml().unwrap();
        let bad = text.replace(&"07".repeat(32), "zz");
        let err = AgentRecord::from_toml(Path::new("x.toml"), &bad).unwrap_err();
        assert!(err.to_string().contains("sealing_key"), "{err}");
        let bad = text.replace("0a1b", "0A1");
        let err = AgentRecord::from_toml(Path::new("x.toml"), &bad).unwrap_err();
        assert!(err.to_string().contains("cert_serial"), "{err}");
        let bad = format!("{}\nextra = 1\n", &*text);
        let err = AgentRecord::from_toml(Path::new("x.toml"), &bad).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        assert!(!err.to_string().contains(&"07".repeat(32)), "{err}");
    }
}
