//! vigil's built-in PKI.
//!
//! This crate owns the certificate authority that `vigil certs init` creates, the server
//! certificate, the per-agent client certificates and credential files, revocation (a CRL
//! signed by the CA) and the rustls configurations built from all of these.
//!
//! Layout under the server's data dir `D`:
//!
//! ```text
//! D/pki/ca.crt  D/pki/ca.key (0600)  D/pki/server.crt  D/pki/server.key (0600)  D/pki/crl.pem
//! D/pki/agents/<agent-id>.toml (0600)   the server's record of each issued agent
//! ```
//!
//! Every file is written atomically (a 0600 temporary file in the same directory, fsync,
//! rename) and directories are created 0700. An existing key, record or credential file is
//! never replaced unless the caller passes `force`.
//!
//! What it must not do: log, print or put into an error any private key or sealing key
//! (`Debug` impls redact them); open sockets (TLS configs are handed to the server and agent
//! crates, which own the connections); depend on anything above `vigil-model` and
//! `vigil-wire`.
//!
//! Threads: [`Pki`] operations are blocking file I/O run by the `vigil certs` command or at
//! server start. [`ServerTls::config`] and [`AgentDirectory::lookup`] are called by the
//! server's accept loop and ingest handlers; each does at most one `stat` and, only when a
//! file changed, a small read, so they may run on async workers.

mod certs;
mod credential;
mod directory;
mod error;
mod fsutil;
mod pki;
mod record;
mod tls;

pub use certs::agent_id_from_cert;
pub use credential::AgentCredential;
pub use directory::AgentDirectory;
pub use error::PkiError;
pub use pki::{InitOptions, InitReport, Pki};
pub use record::AgentRecord;
pub use tls::{ServerTls, crypto_provider};

/// ALPN protocols the server offers: HTTP/2 first, then HTTP/1.1.
pub const SERVER_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// ALPN protocol agents ask for.
pub const AGENT_ALPN: &[u8] = b"http/1.1";

/// Server names put in the server certificate when none are given.
pub const DEFAULT_SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];
