//! Test helpers shared by vigil's integration tests (dev-dependency only; never shipped).
//!
//! A [`Lab`] is a temporary data dir with an initialised PKI, from which tests start real
//! servers on loopback, issue agent credentials, and talk to the server as a person (API
//! key over TLS) or as an agent (raw sealed envelopes over mutual TLS), including as a
//! misbehaving one. Everything binds to 127.0.0.1 only.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use vigil_agent::{AgentSettings, RunningAgent};
use vigil_model::{AgentId, Item};
use vigil_pki::{AgentCredential, InitOptions, Pki};
use vigil_server::{RunningServer, ServerSettings};
use vigil_wire::{MessageKind, SealParams};

/// A temporary server data dir with a PKI.
pub struct Lab {
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn new() -> Result<Lab> {
        let dir = tempfile::tempdir()?;
        Pki::at(dir.path())
            .init(&InitOptions { server_names: vec!["localhost".into(), "127.0.0.1".into()], force: false })?;
        Ok(Lab { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn pki(&self) -> Pki {
        Pki::at(self.dir.path())
    }

    /// Issues a credential for `id` and writes it to `<dir>/<id>.cred`.
    pub fn issue(&self, id: &str, server: Option<SocketAddr>) -> Result<(PathBuf, AgentCredential)> {
        let id = AgentId::new(id)?;
        let url = server.map(|a| format!("https://localhost:{}", a.port()));
        let cred = self.pki().issue_agent(&id, url.as_deref(), true)?;
        let path = self.dir.path().join(format!("{id}.cred"));
        cred.write(&path, true)?;
        Ok((path, cred))
    }

    pub fn settings(&self, listen: SocketAddr) -> ServerSettings {
        ServerSettings { listen, data_dir: self.dir.path().to_owned(), ..ServerSettings::default() }
    }

    /// Starts a server on `127.0.0.1:port` (0 for any free port).
    pub async fn start_server(&self, port: u16) -> Result<RunningServer> {
        Ok(vigil_server::start(self.settings(SocketAddr::from(([127, 0, 0, 1], port)))).await?)
    }

    /// The admin key written at first start.
    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(vigil_server::INITIAL_ADMIN_KEY_FILE)).unwrap().trim().to_owned()
    }

    fn ca_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.pki().pki_dir().join("ca.crt")).unwrap()
    }

    /// An HTTPS client that trusts this lab's CA and presents no client certificate.
    pub fn api_client(&self) -> reqwest::Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der()).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        reqwest::Client::builder().use_preconfigured_tls(cfg).timeout(Duration::from_secs(10)).build().unwrap()
    }

    /// Agent settings for a fast test agent.
    pub fn agent_settings(&self, cred: &Path, server: SocketAddr, interval: Duration) -> AgentSettings {
        AgentSettings {
            credentials: Some(cred.to_owned()),
            server_url: Some(format!("https://localhost:{}", server.port())),
            interval,
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(300),
            request_timeout: Duration::from_secs(3),
            ..AgentSettings::default()
        }
    }

    pub async fn start_agent(&self, cred: &Path, server: SocketAddr, interval: Duration) -> Result<RunningAgent> {
        Ok(vigil_agent::start(self.agent_settings(cred, server, interval)).await?)
    }
}

/// GETs `path` with an API key; returns status and JSON body.
pub async fn api_get(
    client: &reqwest::Client,
    server: SocketAddr,
    path: &str,
    key: Option<&str>,
) -> Result<(u16, serde_json::Value)> {
    let mut req = client.get(format!("https://localhost:{}{path}", server.port()));
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let resp = req.send().await.context("API request")?;
    let status = resp.status().as_u16();
    let body = resp.json::<serde_json::Value>().await.unwrap_or(serde_json::Value::Null);
    Ok((status, body))
}

/// Speaks the agent protocol by hand, so tests can tamper with and replay messages.
pub struct RawAgent {
    pub cred: AgentCredential,
    pub client: reqwest::Client,
    pub url: String,
    pub epoch: u64,
    pub seq: u64,
}

impl RawAgent {
    pub fn new(cred: AgentCredential, server: SocketAddr) -> Result<RawAgent> {
        let tls = cred.client_tls_config()?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(RawAgent {
            cred,
            client,
            url: format!("https://localhost:{}/agent/v1/ingest", server.port()),
            epoch: 1,
            seq: 0,
        })
    }

    /// Seals `items` as the next message.
    pub fn seal(&mut self, items: &[Item]) -> Vec<u8> {
        self.seq += 1;
        let params = SealParams {
            agent_id: self.cred.agent_id.clone(),
            boot_epoch: self.epoch,
            seq: self.seq,
            timestamp_ms: Utc::now().timestamp_millis(),
            kind: MessageKind::Batch,
        };
        vigil_wire::seal_batch(&self.cred.sealing_key, &params, items).unwrap()
    }

    /// POSTs raw bytes; `Err` when the connection itself failed (e.g. handshake refused).
    pub async fn post(&self, body: Vec<u8>) -> Result<(u16, serde_json::Value), reqwest::Error> {
        let resp = self.client.post(&self.url).body(body).send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(serde_json::Value::Null)))
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
