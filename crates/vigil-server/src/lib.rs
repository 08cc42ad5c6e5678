//! The vigil server: one TLS 1.3 port for agents (mutual TLS, sealed messages) and people
//! (API keys, dashboard sessions), SQLite storage, retention.
//!
//! This crate owns the listener and accept loop, the ingest route, the REST API under
//! `/api/v1` (described by an OpenAPI document generated from the handlers and served at
//! `/api/v1/openapi.json`), live events (`/api/v1/events`), Prometheus metrics
//! (`/metrics`), the embedded dashboard (`/`) and the server's background tasks. It runs
//! on the tokio runtime the binary builds; storage and PKI come from their crates, and it
//! must not parse packets or hold detection logic.

pub mod admin;
pub mod api;
pub mod apikey;
pub mod auth;
mod config;
mod error;
pub mod events;
mod ingest;
pub mod latest;
mod listener;
pub mod pipeline;
pub mod prom;
pub mod ratelimit;
mod state;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::post;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_pki::Pki;
use vigil_store::{ApiKeyRow, Store};

pub use auth::Caller;
pub use config::{ApiSettings, EXAMPLE, PipelineSettings, ServerOverrides, ServerSettings};
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
    /// The alert pipeline settings cannot work.
    #[error("alert pipeline: {0} (fix it in the [pipeline] section of the server config)")]
    Pipeline(#[from] vigil_pipeline::ConfigError),
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

    let pipeline = pipeline::restore(&store, settings.pipeline.config.clone()).await?;
    let (feed, pipeline_rx) = pipeline::channel(settings.pipeline.queue);
    let save_every = settings.pipeline.save_interval;

    let (shutdown, rx) = watch::channel(false);
    let state = AppState {
        store: store.clone(),
        agents: pki.agent_directory(),
        limiter: Arc::new(ratelimit::RateLimiter::new(&settings.api)),
        settings: Arc::new(settings),
        replay: Arc::default(),
        security_limiter: Arc::new(Mutex::new(SecurityAlertLimiter::new(Duration::from_secs(10), 4096))),
        counters: Arc::default(),
        events: Arc::new(events::EventHub::starting_now(events::RING_CAPACITY)),
        agent_online: Arc::default(),
        shutdown: rx.clone(),
        top_sources: Arc::default(),
        latest: Arc::default(),
        pipeline: feed,
    };
    let app = router(state.clone());
    let retention = tokio::spawn(retention_loop(state.clone(), rx.clone()));
    let status = tokio::spawn(status_loop(state.clone(), rx.clone()));
    let (stop_pipeline, pipeline_stop) = tokio::sync::oneshot::channel();
    let pipeline = tokio::spawn(pipeline::run(pipeline, state.clone(), pipeline_rx, pipeline_stop, save_every));
    let task = tokio::spawn(async move {
        listener::serve(listener, tls, app, rx).await;
        let _ = retention.await;
        let _ = status.await;
        // After the listener: what ingest stored until the end is analysed, then the
        // pipeline state is saved, before storage closes.
        let _ = stop_pipeline.send(());
        let _ = pipeline.await;
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

/// Largest JSON body the API accepts.
pub const API_BODY_MAX: usize = 64 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vigil API",
        description = "REST API of the vigil server: agents, metrics, alerts, incidents, network figures, blocks, silences, API keys, the audit log and live events. Authenticate with an API key (`X-API-Key` or `Authorization: Bearer`) or a dashboard session cookie (changes then need `X-CSRF-Token`). Roles: viewer < operator < admin. Errors are `{\"error\": {\"code\", \"message\"}}`; a 400 names the bad field.",
    ),
    paths(agent_ingest_doc),
    modifiers(&SecuritySchemes),
    tags(
        (name = "server", description = "Health, overview, OpenAPI, Prometheus metrics"),
        (name = "auth", description = "Dashboard login sessions"),
        (name = "agents", description = "Agents and their metrics"),
        (name = "alerts", description = "Alerts and their status"),
        (name = "incidents", description = "Related alerts grouped"),
        (name = "network", description = "Network figures"),
        (name = "response", description = "Blocks and silences (operator)"),
        (name = "admin", description = "API keys and the audit log (admin)"),
        (name = "events", description = "Live events (Server-Sent Events)"),
        (name = "agent", description = "The agent protocol (mutual TLS, sealed messages)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "Dashboard session from POST /api/v1/auth/login; changes also need the X-CSRF-Token header",
            ))),
        );
    }
}

/// Agents send sealed batches here (mutual TLS with a certificate from `vigil certs
/// agent`; the body is a sealed envelope, see docs/protocol.md). Not for people.
#[utoipa::path(
    post,
    path = "/agent/v1/ingest",
    tag = "agent",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A sealed envelope"),
    responses(
        (status = 200, description = "Stored: `{accepted: {samples, alerts, resolved}, duplicates}`", body = serde_json::Value),
        (status = 400, description = "Refused: integrity failure or bad payload", body = api::ErrorBody),
        (status = 401, description = "No client certificate", body = api::ErrorBody),
        (status = 403, description = "Certificate and message disagree, or the agent is revoked", body = api::ErrorBody),
        (status = 409, description = "Replayed or stale message", body = api::ErrorBody),
    )
)]
#[allow(dead_code)]
fn agent_ingest_doc() {}

/// The OpenAPI document, served at `/api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "server",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = serde_json::Value))
)]
async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI_JSON.as_str()).into_response()
}

static OPENAPI_JSON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    openapi().to_pretty_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode the OpenAPI document");
        "{}".into()
    })
});

/// Every route for people, each registered with its OpenAPI description: a route cannot
/// be added without its documentation, and the document lists exactly the routes served.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::health))
        .routes(routes!(openapi_json))
        .routes(routes!(api::overview))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::session))
        .routes(routes!(api::agents))
        .routes(routes!(api::agent))
        .routes(routes!(api::metrics))
        .routes(routes!(api::alerts))
        .routes(routes!(api::alert))
        .routes(routes!(api::ack_alert))
        .routes(routes!(api::resolve_alert))
        .routes(routes!(api::incidents))
        .routes(routes!(api::incident))
        .routes(routes!(api::network))
        .routes(routes!(admin::list_blocks, admin::create_block))
        .routes(routes!(admin::delete_block))
        .routes(routes!(admin::list_silences, admin::create_silence))
        .routes(routes!(admin::delete_silence))
        .routes(routes!(admin::list_keys, admin::create_key))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin::audit_log))
        .routes(routes!(events::events))
        .routes(routes!(prom::metrics))
}

/// The OpenAPI document of every route (people's and the agent protocol's).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let people = api
        .fallback(web::fallback)
        .layer(from_fn_with_state(state.clone(), auth::audit_layer))
        .layer(from_fn_with_state(state.clone(), ratelimit::by_client))
        .layer(DefaultBodyLimit::max(API_BODY_MAX));
    Router::new()
        .route("/agent/v1/ingest", post(ingest::ingest).layer(DefaultBodyLimit::max(vigil_wire::MAX_ENVELOPE_LEN)))
        .merge(people)
        .layer(from_fn(web::security_headers))
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

/// Every few seconds: publishes agents going offline (or back), refreshes the overview's
/// top sources while the dashboard is open, drops lapsed sessions.
async fn status_loop(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => return,
        }
        let now = Utc::now();
        match state.store.all_agents().await {
            Ok(rows) => {
                for row in rows {
                    state.note_agent_status(&row.id, api::is_online(&row, now), row.last_seen);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read agents for the status check"),
        }
        api::refresh_top_sources(&state).await;
        ticks += 1;
        if ticks.is_multiple_of(60)
            && let Err(e) = state.store.delete_expired_sessions(now).await
        {
            tracing::warn!(error = %e, "cannot delete lapsed sessions");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the server answers, by method and path. The router is built from the
    /// same registrations as the document (`api_routes`), so this list pins both.
    const ROUTES: &[(&str, &str)] = &[
        ("post", "/agent/v1/ingest"),
        ("get", "/api/v1/health"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/overview"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/auth/session"),
        ("get", "/api/v1/agents"),
        ("get", "/api/v1/agents/{id}"),
        ("get", "/api/v1/agents/{id}/metrics"),
        ("get", "/api/v1/alerts"),
        ("get", "/api/v1/alerts/{id}"),
        ("post", "/api/v1/alerts/{id}/ack"),
        ("post", "/api/v1/alerts/{id}/resolve"),
        ("get", "/api/v1/incidents"),
        ("get", "/api/v1/incidents/{id}"),
        ("get", "/api/v1/network"),
        ("get", "/api/v1/blocks"),
        ("post", "/api/v1/blocks"),
        ("delete", "/api/v1/blocks/{id}"),
        ("get", "/api/v1/silences"),
        ("post", "/api/v1/silences"),
        ("delete", "/api/v1/silences/{id}"),
        ("get", "/api/v1/keys"),
        ("post", "/api/v1/keys"),
        ("delete", "/api/v1/keys/{id}"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/events"),
        ("get", "/metrics"),
    ];

    fn documented() -> Vec<(String, String)> {
        let doc = serde_json::to_value(openapi()).unwrap();
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                out.push((method.clone(), path.clone()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn openapi_lists_exactly_the_routes() {
        let mut want: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        want.sort();
        assert_eq!(documented(), want);
    }

    #[test]
    fn every_people_route_names_its_errors_and_auth() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let public = ["/api/v1/health", "/api/v1/openapi.json", "/api/v1/auth/login", "/agent/v1/ingest"];
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if public.contains(&path.as_str()) {
                    continue;
                }
                assert!(op["security"].is_array(), "{method} {path} has no security requirement");
                assert!(op["responses"]["401"].is_object(), "{method} {path} does not document 401");
            }
        }
        for scheme in ["api_key", "bearer", "session"] {
            assert!(doc["components"]["securitySchemes"][scheme].is_object(), "{scheme}");
        }
    }
}
