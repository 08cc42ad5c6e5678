//! The vigil server: one TLS 1.3 port for agents (mutual TLS, sealed messages) and people
//! (API keys), SQLite storage, retention.
//!
//! This crate owns the listener and accept loop, the ingest route, the read API and the
//! server's background tasks. It runs on the tokio runtime the binary builds; storage and
//! PKI come from their crates, and it must not parse packets or hold detection logic.

mod api;
pub mod apikey;
mod config;
mod error;
mod ingest;
mod listener;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use vigil_pki::Pki;
use vigil_store::{ApiKeyRow, Store};

pub use api::Caller;
pub use config::{EXAMPLE, ServerOverrides, ServerSettings};
pub use error::ApiError;
pub use state::{AppState, Counters, PeerInfo, SecurityAlertLimiter};

/// Name of the file, in the data dir, that holds the first admin API key.
pub const INITIAL_ADMIN_KEY_FILE: &str = "initial-admin-key";
/// Name of the database file in the data dir.
pub const DATABASE_FILE: &str = "vigil.db";

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The PKI is missing from the data dir.
    #[error("no PKI in {0}: create it first with `vigil certs init --dir {1}`")]
    NoPki(PathBuf, PathBuf),
    /// A PKI file could not be used.
    #[error(transparent)]
    Pki(#[from] vigil_pki::PkiError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] vigil_store::StoreError),
    /// The data dir could not be prepared.
    #[error("cannot prepare data dir {path}: {source}")]
    DataDir {
        /// The dir.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another server running there? pick another with --listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The first API key could not be made or saved.
    #[error("cannot create the initial admin API key: {0}")]
    AdminKey(String),
}

/// A started server.
pub struct RunningServer {
    /// The address actually bound (useful with port 0).
    pub local_addr: SocketAddr,
    /// The admin API key, when this start created it (first start on a fresh database).
    /// Show it once; it is also in `<data-dir>/initial-admin-key`.
    pub initial_admin_key: Option<String>,
    /// Shared state (storage, counters), for embedding and tests.
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets open requests finish (up to 10 s), closes storage.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops by itself (it only does on shutdown).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Starts a server with `settings` and returns once it is listening.
pub async fn start(settings: ServerSettings) -> Result<RunningServer, ServerError> {
    let data_dir = settings.data_dir.clone();
    prepare_dir(&data_dir)?;
    let pki = Pki::at(&data_dir);
    if !pki.is_initialized() {
        return Err(ServerError::NoPki(pki.pki_dir(), data_dir));
    }
    let tls = pki.server_tls()?;
    let db_path = data_dir.join(DATABASE_FILE);
    let store = Store::open(&db_path).await?;
    // The database holds API key hashes and agent state: owner only, like the rest of the dir.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db_path, std::fs::Permissions::from_mode(0o600))
            .map_err(|source| ServerError::DataDir { path: db_path.clone(), source })?;
    }
    let initial_admin_key = ensure_admin_key(&store, &data_dir).await?;

    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServerError::Bind { addr: settings.listen, source })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind { addr: settings.listen, source })?;

    let state = AppState {
        store: store.clone(),
        agents: pki.agent_directory(),
        settings: Arc::new(settings),
        replay: Arc::default(),
        security_limiter: Arc::new(Mutex::new(SecurityAlertLimiter::new(Duration::from_secs(10), 4096))),
        counters: Arc::default(),
    };
    let app = router(state.clone());
    let (shutdown, rx) = watch::channel(false);
    let retention = tokio::spawn(retention_loop(state.clone(), rx.clone()));
    let task = tokio::spawn(async move {
        listener::serve(listener, tls, app, rx).await;
        let _ = retention.await;
        store.close().await;
        tracing::info!("server stopped");
    });
    tracing::info!(%local_addr, data_dir = %state.settings.data_dir.display(), "server listening");
    Ok(RunningServer { local_addr, initial_admin_key, state, shutdown, task })
}

/// Runs a server until `signal` completes, then shuts it down cleanly.
pub async fn run(settings: ServerSettings, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
    let server = start(settings).await?;
    if let Some(key) = &server.initial_admin_key {
        print_admin_key(key, &server.state.settings.data_dir);
    }
    signal.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// Prints a newly created admin key to standard output (never to the log).
pub fn print_admin_key(key: &str, data_dir: &Path) {
    println!("Initial admin API key (shown once; also saved in {}):", data_dir.join(INITIAL_ADMIN_KEY_FILE).display());
    println!("  {key}");
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/agent/v1/ingest", post(ingest::ingest))
        .route("/api/v1/health", get(api::health))
        .route("/api/v1/agents", get(api::agents))
        .route("/api/v1/agents/{id}", get(api::agent))
        .route("/api/v1/agents/{id}/metrics", get(api::metrics))
        .route("/api/v1/alerts", get(api::alerts))
        .fallback(|| async { ApiError::not_found("no such route; see /api/v1/health") })
        .layer(DefaultBodyLimit::max(vigil_wire::MAX_ENVELOPE_LEN))
        .with_state(state)
}

fn prepare_dir(dir: &Path) -> Result<(), ServerError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| ServerError::DataDir { path: dir.to_owned(), source })
}

async fn ensure_admin_key(store: &Store, data_dir: &Path) -> Result<Option<String>, ServerError> {
    if store.api_key_count().await? > 0 {
        return Ok(None);
    }
    let key = apikey::generate().map_err(|e| ServerError::AdminKey(e.to_string()))?;
    let path = data_dir.join(INITIAL_ADMIN_KEY_FILE);
    write_secret(&path, format!("{}\n", key.text).as_bytes())
        .map_err(|e| ServerError::AdminKey(format!("{}: {e}", path.display())))?;
    store
        .insert_api_key(&ApiKeyRow {
            id: key.id.clone(),
            name: "initial-admin".into(),
            role: apikey::Role::Admin.as_str().into(),
            hash: key.hash,
            created_at: Utc::now(),
            revoked_at: None,
        })
        .await?;
    tracing::info!(key_id = %key.id, file = %path.display(), "created the initial admin API key");
    Ok(Some(key.text))
}

/// Writes `bytes` to `path` with mode 0600 (atomically: temp file, fsync, rename).
fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

async fn retention_loop(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let s = state.settings.clone();
    loop {
        let now = Utc::now();
        let m = now - chrono::Duration::from_std(s.retain_metrics).unwrap_or(chrono::Duration::MAX);
        let a = now - chrono::Duration::from_std(s.retain_alerts).unwrap_or(chrono::Duration::MAX);
        match state.store.apply_retention(m, a).await {
            Ok(r) if r.metrics_deleted + r.alerts_deleted > 0 => {
                tracing::info!(metrics = r.metrics_deleted, alerts = r.alerts_deleted, "retention deleted old data");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(s.retention_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}
