//! The crate's error type. Messages name the file and field at fault and say what to do;
//! they never carry key material.

use std::io;
use std::path::{Path, PathBuf};

use vigil_model::AgentId;

/// Everything that can go wrong in the PKI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "create directory", …).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A key, record or credential file exists and `force` was not given.
    #[error(
        "{} already exists; pass --force to replace it (this invalidates {invalidates})",
        path.display()
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
        /// What replacing it would break.
        invalidates: &'static str,
    },
    /// The PKI has not been created in this data dir.
    #[error("no PKI in {}: {missing} is missing; run `vigil certs init` first", dir.display())]
    NotInitialized {
        /// The PKI directory (`D/pki`).
        dir: PathBuf,
        /// The first missing file name.
        missing: &'static str,
    },
    /// `revoke` or a lookup named an agent that was never issued.
    #[error(
        "agent {id} was never issued by this PKI (no {}); issue it with `vigil certs agent {id}`",
        path.display()
    )]
    UnknownAgent {
        /// The agent id asked for.
        id: AgentId,
        /// Where its record would be.
        path: PathBuf,
    },
    /// A file holding secrets is accessible by group or others.
    #[error(
        "{} holds secrets but is accessible by group or others (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file is larger than any valid file of its kind.
    #[error("{} is {len} bytes; a valid file of this kind is at most {max} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A file could not be parsed as a whole (TOML syntax, PEM framing…).
    #[error("{}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, with a line number where known.
        message: String,
    },
    /// One field of a record or credential file is invalid.
    #[error("{}: field `{field}`: {message}", path.display())]
    BadField {
        /// The file.
        path: PathBuf,
        /// The field name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A server name given to `init` is neither a DNS name nor an IP address.
    #[error("invalid server name {name:?}: {reason}; give a DNS name or an IP address")]
    InvalidServerName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// Generating or signing a certificate or CRL failed.
    #[error("could not {what}: {source}")]
    Certificate {
        /// What was being made.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// rustls refused the certificates or keys read from `path`.
    #[error("could not build a TLS configuration from {}: {source}", path.display())]
    Tls {
        /// The file or directory the material came from.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built (bad CA or CRL).
    #[error("could not build the client certificate verifier from {}: {source}", path.display())]
    Verifier {
        /// The PKI directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// A peer certificate does not name a valid agent.
    #[error("peer certificate does not identify an agent: {reason}")]
    PeerCertificate {
        /// Why.
        reason: String,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed while {what}")]
    Random {
        /// What the randomness was for.
        what: &'static str,
    },
}

impl PkiError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io { action, path: path.to_path_buf(), source }
    }

    pub(crate) fn bad_field(path: &Path, field: &str, message: impl Into<String>) -> Self {
        Self::BadField { path: path.to_path_buf(), field: field.to_owned(), message: message.into() }
    }

    /// Turns a TOML error into a message naming the line and, where it can be told, the
    /// field. Only the parser's message is used, never its echo of the input line, which
    /// could hold a key.
    pub(crate) fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> Self {
        let message = err.message().trim().to_owned();
        let Some(span) = err.span() else {
            return Self::Malformed { path: path.to_path_buf(), message };
        };
        let bytes = text.as_bytes();
        let start = span.start.min(bytes.len());
        let line_no = bytes[..start].iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = bytes[..start].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line_end = bytes[start..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| start + i);
        let field =
            text.get(line_start..line_end).and_then(|line| line.split_once('=')).map(|(k, _)| k.trim()).filter(|k| {
                !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        match field {
            Some(field) => Self::BadField {
                path: path.to_path_buf(),
                field: field.to_owned(),
                message: format!("{message} (line {line_no})"),
            },
            None => Self::Malformed { path: path.to_path_buf(), message: format!("line {line_no}: {message}") },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
        secret: String,
    }

    #[test]
    fn toml_errors_name_field_and_hide_values() {
        let text = "a = \"x\"\nsecret = \"hunter2\"\n";
        let err = toml::from_str::<T>(text).unwrap_err();
        let e = PkiError::from_toml(Path::new("/f.toml"), text, &err);
        let msg = e.to_string();
        assert!(msg.contains("/f.toml"), "{msg}");
        assert!(msg.contains("field `a`"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");

        let text = "a = 1\nsecret = \"hunter2\"\nextra = 3\n";
        let err = toml::from_str::<T>(text).unwrap_err();
        let msg = PkiError::from_toml(Path::new("/f.toml"), text, &err).to_string();
        assert!(msg.contains("extra"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");

        let text = "a = 1\nsecret = \"hunter2\n";
        let err = toml::from_str::<T>(text).unwrap_err();
        let msg = PkiError::from_toml(Path::new("/f.toml"), text, &err).to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
    }
}
