//! Who is calling: API keys (`X-API-Key` or `Authorization: Bearer`), dashboard sessions
//! (a key exchanged for an HttpOnly, Secure, SameSite=Strict cookie), CSRF protection of
//! cookie-authenticated changes, the per-key rate limit, and the audit log of every
//! state-changing call.
//!
//! A session cookie value is 256 random bits; only its SHA-256 is stored. Its CSRF token is
//! derived from it (SHA-256 under a fixed label), handed to the dashboard at login and on
//! `GET /api/v1/auth/session`, and must come back in `X-CSRF-Token` on every call that
//! changes something. A cross-site page can make the browser send the cookie (SameSite
//! aside) but cannot read the token. The session's role is its key's, read at every
//! request, so revoking a key ends its sessions at once.

use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use vigil_store::{ApiKeyRow, AuditEntry, SessionRow};

use crate::api::{ApiJson, ErrorBody};
use crate::apikey::{self, Role};
use crate::error::ApiError;
use crate::state::{AppState, PeerInfo};

/// Name of the session cookie. The `__Host-` prefix makes browsers insist on `Secure`,
/// `Path=/` and no `Domain`, so no other host can set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-vigil_session";
/// Header that must carry the session's CSRF token on cookie-authenticated changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// An API key in a header.
    Key,
    /// A dashboard session cookie.
    Session,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Key => "key",
            Via::Session => "session",
        }
    }
}

/// A caller authenticated by API key or session.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Key id.
    pub key_id: String,
    /// Key name.
    pub name: String,
    /// What the key may do.
    pub role: Role,
    /// Key or session.
    pub via: Via,
    /// The session's CSRF token and expiry, for session callers.
    session: Option<(String, DateTime<Utc>)>,
}

impl Caller {
    /// Refuses with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this call needs the {} role; key {:?} has {}",
                role.as_str(),
                self.name,
                self.role.as_str()
            )))
        }
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key") {
        return Some(v.to_str().map(str::trim).unwrap_or(""));
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The session cookie's value, if the request carries one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim())
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest(&SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The CSRF token of a session cookie value.
fn csrf_token(cookie: &str) -> String {
    let mut input = b"vigil-csrf\0".to_vec();
    input.extend_from_slice(cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(sha256(&input))
}

/// Checks a presented API key; the stored row and its role.
async fn authenticate_key(state: &AppState, text: &str) -> Result<(ApiKeyRow, Role), ApiError> {
    let wrong = || ApiError::unauthorized("invalid API key");
    let (id, hash) = apikey::parse(text).ok_or_else(wrong)?;
    let row = state.store.api_key(&id).await?.ok_or_else(wrong)?;
    if !apikey::hashes_match(&hash, &row.hash) || row.revoked_at.is_some() {
        return Err(wrong());
    }
    let role = Role::parse(&row.role).ok_or_else(|| {
        tracing::error!(key = %row.id, role = %row.role, "API key with unknown role");
        ApiError::internal()
    })?;
    Ok((row, role))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = if let Some(text) = presented_key(&parts.headers) {
            let (row, role) = authenticate_key(state, text).await?;
            Caller { key_id: row.id, name: row.name, role, via: Via::Key, session: None }
        } else if let Some(cookie) = session_cookie(&parts.headers) {
            let expired = || ApiError::unauthorized("session expired or logged out; log in again");
            let session = state.store.session(&sha256(cookie.as_bytes()), Utc::now()).await?.ok_or_else(expired)?;
            let row = state.store.api_key(&session.key_id).await?.ok_or_else(expired)?;
            let role = Role::parse(&row.role).ok_or_else(ApiError::internal)?;
            if row.revoked_at.is_some() {
                return Err(expired());
            }
            let csrf = csrf_token(cookie);
            if !is_safe(&parts.method) {
                let sent = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
                if !bool::from(sent.ct_eq(csrf.as_bytes())) {
                    return Err(ApiError::forbidden(
                        "missing or wrong X-CSRF-Token header; changes made with a session cookie must send the token from /api/v1/auth/session",
                    ));
                }
            }
            Caller {
                key_id: row.id,
                name: row.name,
                role,
                via: Via::Session,
                session: Some((csrf, session.expires_at)),
            }
        } else {
            return Err(ApiError::unauthorized(
                "missing API key; send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`, or log in to the dashboard",
            ));
        };
        if let Some(slot) = parts.extensions.get::<AuditSlot>() {
            slot.actor(&caller);
        }
        state.limiter.check_key(&caller.key_id)?;
        Ok(caller)
    }
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

// ---- audit -----------------------------------------------------------------------

#[derive(Debug, Default)]
struct AuditNote {
    key_id: Option<String>,
    name: Option<String>,
    role: Option<&'static str>,
    via: Option<Via>,
    detail: Option<String>,
}

/// Filled in while a state-changing request runs; written to the audit log after it.
#[derive(Debug, Clone, Default)]
pub struct AuditSlot(Arc<Mutex<AuditNote>>);

impl AuditSlot {
    fn actor(&self, c: &Caller) {
        let mut n = self.0.lock().unwrap_or_else(|p| p.into_inner());
        n.key_id = Some(c.key_id.clone());
        n.name = Some(c.name.clone());
        n.role = Some(c.role.as_str());
        n.via = Some(c.via);
    }
}

/// What a handler says about the change it made, for the audit log. Never fails: on a
/// request the audit layer does not cover, notes go nowhere.
#[derive(Debug, Clone, Default)]
pub struct Audit(Option<AuditSlot>);

impl Audit {
    /// Records what was done, in a few words (kept to 500 characters).
    pub fn note(&self, detail: impl Into<String>) {
        if let Some(slot) = &self.0 {
            let d: String = detail.into().chars().take(500).collect();
            slot.0.lock().unwrap_or_else(|p| p.into_inner()).detail = Some(d);
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Audit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Audit(parts.extensions.get::<AuditSlot>().cloned()))
    }
}

/// Middleware: writes one audit entry for every request that may change state (any
/// method but GET, HEAD and OPTIONS), once its answer is known.
pub async fn audit_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if is_safe(req.method()) {
        return next.run(req).await;
    }
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().to_string();
    let path: String = req.uri().path().chars().take(300).collect();
    let client = req.extensions().get::<PeerInfo>().map(|p| p.addr.ip().to_string());
    let resp = next.run(req).await;
    let note = std::mem::take(&mut *slot.0.lock().unwrap_or_else(|p| p.into_inner()));
    let entry = AuditEntry {
        id: 0,
        ts: Utc::now(),
        actor_key: note.key_id,
        actor_name: note.name,
        role: note.role.map(str::to_owned),
        via: note.via.map(|v| v.as_str().to_owned()),
        client,
        method,
        path,
        status: resp.status().as_u16(),
        detail: note.detail,
    };
    // Awaited, so a client that saw the answer finds the entry.
    if let Err(e) = state.store.insert_audit(&entry).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    resp
}

// ---- login, logout, session --------------------------------------------------------

/// `POST /api/v1/auth/login` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// An API key (`vgl_…`).
    pub key: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginRequest { key: <redacted> }")
    }
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// `key` or `session`.
    pub via: Via,
    /// For sessions: the token to send as `X-CSRF-Token` on changes.
    pub csrf_token: Option<String>,
    /// For sessions: when the session ends.
    pub expires_at: Option<DateTime<Utc>>,
}

fn session_cookie_header(value: &str, max_age_secs: u64) -> HeaderValue {
    let v = format!("{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Exchanges an API key for a dashboard session cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the session cookie is set (HttpOnly, Secure, SameSite=Strict)", body = SessionInfo),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "Wrong or revoked key", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    parts: LoginParts,
    audit: Audit,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let (row, role) = authenticate_key(&state, req.key.trim()).await?;
    let caller = Caller { key_id: row.id.clone(), name: row.name.clone(), role, via: Via::Session, session: None };
    if let Some(slot) = &audit.0 {
        slot.actor(&caller);
    }
    state.limiter.check_key(&row.id)?;
    let mut raw = [0u8; 32];
    SystemRandom::new().fill(&mut raw).map_err(|_| {
        tracing::error!("system random number generator failed");
        ApiError::internal()
    })?;
    let token = URL_SAFE_NO_PAD.encode(raw);
    let now = Utc::now();
    let ttl = state.settings.api.session_ttl;
    let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    state
        .store
        .insert_session(&SessionRow {
            id_hash: sha256(token.as_bytes()),
            key_id: row.id.clone(),
            created_at: now,
            expires_at,
            client: parts.0,
        })
        .await?;
    audit.note(format!("login with key {:?}", row.name));
    let info = SessionInfo {
        name: row.name,
        key_id: row.id,
        role: role.as_str().into(),
        via: Via::Session,
        csrf_token: Some(csrf_token(&token)),
        expires_at: Some(expires_at),
    };
    let mut resp = Json(info).into_response();
    resp.headers_mut().insert(http::header::SET_COOKIE, session_cookie_header(&token, ttl.as_secs()));
    Ok(resp)
}

/// The client address for the session row, from the listener's peer info.
pub struct LoginParts(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for LoginParts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(LoginParts(parts.extensions.get::<PeerInfo>().map(|p| p.addr.ip().to_string())))
    }
}

/// Ends the caller's session and clears its cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "Logged out (cookie cleared)"),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Missing CSRF token", body = ErrorBody),
    ),
    security(("session" = []), ("api_key" = []), ("bearer" = []))
)]
pub async fn logout(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Result<Response, ApiError> {
    if caller.via == Via::Session
        && let Some(cookie) = session_cookie(&headers)
    {
        state.store.delete_session(&sha256(cookie.as_bytes())).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(http::header::SET_COOKIE, session_cookie_header("", 0));
    Ok(resp)
}

/// Who the caller is; for sessions, the CSRF token to send on changes.
#[utoipa::path(
    get,
    path = "/api/v1/auth/session",
    tag = "auth",
    responses(
        (status = 200, description = "The caller", body = SessionInfo),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("session" = []), ("api_key" = []), ("bearer" = []))
)]
pub async fn session(caller: Caller) -> Json<SessionInfo> {
    let (csrf_token, expires_at) = match caller.session {
        Some((t, e)) => (Some(t), Some(e)),
        None => (None, None),
    };
    Json(SessionInfo {
        name: caller.name,
        key_id: caller.key_id,
        role: caller.role.as_str().into(),
        via: caller.via,
        csrf_token,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_and_key_parsing() {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, HeaderValue::from_static("a=b; __Host-vigil_session=tok ; c=d"));
        assert_eq!(session_cookie(&h), Some("tok"));
        assert_eq!(presented_key(&h), None);
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer  k1 "));
        assert_eq!(presented_key(&h), Some("k1"));
        h.insert("x-api-key", HeaderValue::from_static("k2"));
        assert_eq!(presented_key(&h), Some("k2"), "X-API-Key wins");
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_cookie_is_strict() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a"), csrf_token("a"));
        let c = session_cookie_header("x", 60);
        let c = c.to_str().unwrap();
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "__Host-vigil_session=x"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!format!("{:?}", LoginRequest { key: "vgl_secret".into() }).contains("secret"));
    }
}
