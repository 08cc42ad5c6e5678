//! The write side people use: blocks and silences (operator), API keys and the audit log
//! (admin). Every change is audited by the layer in [`crate::auth`] and published as a
//! live event.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vigil_model::{AgentId, Category};
use vigil_store::{ApiKeyRow, BlockRow, Change, SilenceRow};

use crate::api::{ApiJson, ApiPath, ApiQuery, ErrorBody, Params, parse_duration};
use crate::apikey::{self, Role};
use crate::auth::{Audit, Caller};
use crate::error::ApiError;
use crate::events::EventKind;
use crate::pipeline::Operator;
use crate::state::AppState;

/// Shortest block or silence.
const TTL_MIN: Duration = Duration::from_secs(60);
/// Longest block or silence.
const TTL_MAX: Duration = Duration::from_secs(365 * 86_400);
/// Longest reason, comment or key name.
const TEXT_MAX: usize = 500;

/// A duration in a body: whole seconds or text such as `"1h"`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Ttl {
    /// Seconds.
    Seconds(u64),
    /// `30m`, `1h`, `7d`...
    Text(String),
}

fn ttl_of(field: &str, ttl: Option<&Ttl>, default: Duration) -> Result<Duration, ApiError> {
    let d = match ttl {
        None => default,
        Some(Ttl::Seconds(s)) => Duration::from_secs(*s),
        Some(Ttl::Text(t)) => parse_duration(t).ok_or_else(|| {
            ApiError::bad_request(format!(
                "field `{field}`: {:?} is not a duration; expected seconds or text such as \"30m\", \"1h\", \"7d\"",
                t.chars().take(40).collect::<String>()
            ))
        })?,
    };
    if !(TTL_MIN..=TTL_MAX).contains(&d) {
        return Err(ApiError::bad_request(format!("field `{field}`: expected between 1m and 365d")));
    }
    Ok(d)
}

fn text_field(field: &str, v: &str, required: bool) -> Result<String, ApiError> {
    let v = v.trim();
    if required && v.is_empty() {
        return Err(ApiError::bad_request(format!("field `{field}`: must not be empty")));
    }
    if v.chars().count() > TEXT_MAX {
        return Err(ApiError::bad_request(format!("field `{field}`: at most {TEXT_MAX} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!("field `{field}`: control characters are not allowed")));
    }
    Ok(v.to_owned())
}

/// An address or network, canonical (`203.0.113.7/32`, `10.0.0.0/8`); too broad ones
/// (shorter than /8 for IPv4, /16 for IPv6) are refused.
fn network_field(field: &str, v: &str) -> Result<IpNet, ApiError> {
    let v = v.trim();
    let net = match v.parse::<IpNet>() {
        Ok(n) => n.trunc(),
        Err(_) => match v.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "field `{field}`: {:?} is not an IP address or CIDR network (e.g. 203.0.113.7 or 10.0.0.0/8)",
                    v.chars().take(60).collect::<String>()
                )));
            }
        },
    };
    let min = if net.addr().is_ipv4() { 8 } else { 16 };
    if net.prefix_len() < min {
        return Err(ApiError::bad_request(format!(
            "field `{field}`: {net} is too broad; the shortest prefix allowed is /{min}"
        )));
    }
    Ok(net)
}

fn list_params(raw: ApiQuery) -> Result<(bool, u32), ApiError> {
    let p = Params::new(raw.0, &["all", "limit"])?;
    Ok((p.bool("all")?.unwrap_or(false), p.limit(200, 1000)?))
}

fn created<T: Serialize>(v: &T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

// ---- blocks ------------------------------------------------------------------------------

/// `POST /api/v1/blocks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// Address or CIDR network to block (`ip` and `cidr` are accepted as names too).
    #[serde(alias = "ip", alias = "cidr")]
    pub target: String,
    /// How long: seconds or text such as `"1h"` (1m to 365d; default 1h).
    #[schema(value_type = Option<String>)]
    pub ttl: Option<Ttl>,
    /// Why (required, at most 500 characters).
    pub reason: String,
}

/// Blocks in force (or all with `all=true`), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/blocks",
    tag = "response",
    params(
        ("all" = Option<bool>, Query, description = "Include lapsed and removed blocks"),
        ("limit" = Option<u32>, Query, description = "At most this many, 1-1000 (default 200)"),
    ),
    responses(
        (status = 200, description = "`{blocks: [...]}`", body = serde_json::Value),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn list_blocks(
    State(state): State<AppState>,
    caller: Caller,
    raw: ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let (all, limit) = list_params(raw)?;
    let blocks = state.store.blocks(Utc::now(), all, limit).await?;
    Ok(Json(serde_json::json!({ "blocks": blocks })))
}

/// Blocks an address or network for a while (operator). Recorded and shown now; agents
/// enforce blocks in a later version.
#[utoipa::path(
    post,
    path = "/api/v1/blocks",
    tag = "response",
    request_body = BlockRequest,
    responses(
        (status = 201, description = "The block", body = serde_json::Value),
        (status = 400, description = "Bad field (named)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the operator role (or the CSRF token)", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn create_block(
    State(state): State<AppState>,
    caller: Caller,
    audit: Audit,
    ApiJson(req): ApiJson<BlockRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let target = network_field("target", &req.target)?;
    let ttl = ttl_of("ttl", req.ttl.as_ref(), Duration::from_secs(3600))?;
    let reason = text_field("reason", &req.reason, true)?;
    let now = Utc::now();
    let b = BlockRow {
        id: Uuid::now_v7(),
        target: target.to_string(),
        reason,
        created_at: now,
        created_by: caller.name.clone(),
        expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
        removed_at: None,
        removed_by: None,
    };
    state.store.insert_block(&b).await?;
    audit.note(format!("block {} for {} ({}): {}", b.target, vigil_config::HumanDuration(ttl), b.id, b.reason));
    state.events.publish(EventKind::Block, &serde_json::json!({"action": "added", "block": &b}));
    Ok(created(&b))
}

/// Removes a block before it lapses (operator).
#[utoipa::path(
    delete,
    path = "/api/v1/blocks/{id}",
    tag = "response",
    params(("id" = String, Path, description = "Block id (UUID)")),
    responses(
        (status = 200, description = "The block, removed", body = serde_json::Value),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the operator role (or the CSRF token)", body = ErrorBody),
        (status = 404, description = "No such block", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn delete_block(
    State(state): State<AppState>,
    caller: Caller,
    audit: Audit,
    id: ApiPath,
) -> Result<Json<BlockRow>, ApiError> {
    caller.require(Role::Operator)?;
    let id = id.uuid()?;
    let change = state.store.remove_block(id, &caller.name, Utc::now()).await?;
    let b = state.store.block(id).await?;
    match (change, b) {
        (Change::Missing, _) | (_, None) => Err(ApiError::not_found(format!("no block {id}"))),
        (c, Some(b)) => {
            audit.note(format!(
                "unblock {} ({id}){}",
                b.target,
                if c == Change::Done { "" } else { ": already removed" }
            ));
            if c == Change::Done {
                state.events.publish(EventKind::Block, &serde_json::json!({"action": "removed", "block": &b}));
            }
            Ok(Json(b))
        }
    }
}

// ---- silences ----------------------------------------------------------------------------

/// `POST /api/v1/silences` body. At least one of `category`, `agent`, `source`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// Mute alerts of this category.
    pub category: Option<String>,
    /// Mute alerts of this agent.
    pub agent: Option<String>,
    /// Mute alerts whose source is in this address or network.
    pub source: Option<String>,
    /// Why (required).
    pub comment: String,
    /// How long: seconds or text such as `"2h"` (1m to 365d; default 1h).
    #[schema(value_type = Option<String>)]
    pub ttl: Option<Ttl>,
}

/// Silences in force (or all with `all=true`), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/silences",
    tag = "response",
    params(
        ("all" = Option<bool>, Query, description = "Include lapsed and removed silences"),
        ("limit" = Option<u32>, Query, description = "At most this many, 1-1000 (default 200)"),
    ),
    responses(
        (status = 200, description = "`{silences: [...]}`", body = serde_json::Value),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn list_silences(
    State(state): State<AppState>,
    caller: Caller,
    raw: ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let (all, limit) = list_params(raw)?;
    let silences = state.store.silences(Utc::now(), all, limit).await?;
    Ok(Json(serde_json::json!({ "silences": silences })))
}

/// Mutes matching alerts for a while (operator).
#[utoipa::path(
    post,
    path = "/api/v1/silences",
    tag = "response",
    request_body = SilenceRequest,
    responses(
        (status = 201, description = "The silence", body = serde_json::Value),
        (status = 400, description = "Bad field (named)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the operator role (or the CSRF token)", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn create_silence(
    State(state): State<AppState>,
    caller: Caller,
    audit: Audit,
    ApiJson(req): ApiJson<SilenceRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let blank = |o: &Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let category = blank(&req.category)
        .map(|c| {
            c.parse::<Category>()
                .map(|c| c.as_str().to_owned())
                .map_err(|e| ApiError::bad_request(format!("field `category`: {e}")))
        })
        .transpose()?;
    let agent = blank(&req.agent)
        .map(|a| {
            AgentId::new(a)
                .map(|a| a.as_str().to_owned())
                .map_err(|e| ApiError::bad_request(format!("field `agent`: {e}")))
        })
        .transpose()?;
    let source = blank(&req.source).map(|s| network_field("source", &s).map(|n| n.to_string())).transpose()?;
    if category.is_none() && agent.is_none() && source.is_none() {
        return Err(ApiError::bad_request(
            "fields `category`, `agent`, `source`: set at least one, or the silence would mute everything",
        ));
    }
    let comment = text_field("comment", &req.comment, true)?;
    let ttl = ttl_of("ttl", req.ttl.as_ref(), Duration::from_secs(3600))?;
    let now = Utc::now();
    let s = SilenceRow {
        id: Uuid::now_v7(),
        category,
        agent,
        source,
        comment,
        created_at: now,
        created_by: caller.name.clone(),
        expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
        removed_at: None,
        removed_by: None,
    };
    state.store.insert_silence(&s).await?;
    state.pipeline.command(Operator::AddSilence(Box::new(s.clone()))).await;
    audit.note(format!(
        "silence {} for {}: category={} agent={} source={}",
        s.id,
        vigil_config::HumanDuration(ttl),
        s.category.as_deref().unwrap_or("*"),
        s.agent.as_deref().unwrap_or("*"),
        s.source.as_deref().unwrap_or("*")
    ));
    state.events.publish(EventKind::Silence, &serde_json::json!({"action": "added", "silence": &s}));
    Ok(created(&s))
}

/// Ends a silence early (operator).
#[utoipa::path(
    delete,
    path = "/api/v1/silences/{id}",
    tag = "response",
    params(("id" = String, Path, description = "Silence id (UUID)")),
    responses(
        (status = 200, description = "The silence, removed", body = serde_json::Value),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the operator role (or the CSRF token)", body = ErrorBody),
        (status = 404, description = "No such silence", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn delete_silence(
    State(state): State<AppState>,
    caller: Caller,
    audit: Audit,
    id: ApiPath,
) -> Result<Json<SilenceRow>, ApiError> {
    caller.require(Role::Operator)?;
    let id = id.uuid()?;
    let change = state.store.remove_silence(id, &caller.name, Utc::now()).await?;
    let s = state.store.silence(id).await?;
    match (change, s) {
        (Change::Missing, _) | (_, None) => Err(ApiError::not_found(format!("no silence {id}"))),
        (c, Some(s)) => {
            audit.note(format!("remove silence {id}{}", if c == Change::Done { "" } else { ": already removed" }));
            if c == Change::Done {
                state.pipeline.command(Operator::RemoveSilence(id)).await;
                state.events.publish(EventKind::Silence, &serde_json::json!({"action": "removed", "silence": &s}));
            }
            Ok(Json(s))
        }
    }
}

// ---- API keys ----------------------------------------------------------------------------

/// An API key as listed (never its secret or hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    /// Public id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Role.
    pub role: String,
    /// When made.
    pub created_at: DateTime<Utc>,
    /// When revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKeyRow> for KeyInfo {
    fn from(r: &ApiKeyRow) -> Self {
        KeyInfo {
            id: r.id.clone(),
            name: r.name.clone(),
            role: r.role.clone(),
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// `POST /api/v1/keys` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// Label (required).
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
}

/// A new key: the only time its text is shown.
#[derive(Serialize, ToSchema)]
pub struct NewKeyInfo {
    /// The key's listing.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The key itself. Store it now; only its hash is kept.
    pub key: String,
}

/// Every API key, revoked ones included (admin).
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "admin",
    responses(
        (status = 200, description = "`{keys: [...]}`", body = serde_json::Value),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    Params::new(raw, &[])?;
    let keys: Vec<KeyInfo> = state.store.list_api_keys().await?.iter().map(KeyInfo::from).collect();
    Ok(Json(serde_json::json!({ "keys": keys })))
}

/// Makes a new API key (admin). The answer holds the key; it is not shown again.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "admin",
    request_body = KeyRequest,
    responses(
        (status = 201, description = "The new key", body = NewKeyInfo),
        (status = 400, description = "Bad field (named)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the admin role (or the CSRF token)", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    audit: Audit,
    ApiJson(req): ApiJson<KeyRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let name = text_field("name", &req.name, true)?;
    let role = Role::parse(req.role.trim()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "field `role`: {:?} is not a role; expected viewer, operator or admin",
            req.role.chars().take(40).collect::<String>()
        ))
    })?;
    let (row, text) = make_key(&state.store, &name, role).await?;
    audit.note(format!("create {} key {:?} ({})", role.as_str(), row.name, row.id));
    Ok(created(&NewKeyInfo { info: KeyInfo::from(&row), key: text }))
}

/// Makes and stores a new key; the row and the key text (show it once).
pub async fn make_key(store: &vigil_store::Store, name: &str, role: Role) -> Result<(ApiKeyRow, String), ApiError> {
    let key = apikey::generate().map_err(|e| {
        tracing::error!(error = e, "cannot make an API key");
        ApiError::internal()
    })?;
    let row = ApiKeyRow {
        id: key.id.clone(),
        name: name.to_owned(),
        role: role.as_str().into(),
        hash: key.hash,
        created_at: Utc::now(),
        revoked_at: None,
    };
    store.insert_api_key(&row).await?;
    Ok((row, key.text))
}

/// Revokes an API key and ends its sessions (admin). A caller cannot revoke its own key.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Key id (16 hex digits)")),
    responses(
        (status = 200, description = "The key, revoked", body = KeyInfo),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the admin role (or the CSRF token)", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "That is the caller's own key", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    audit: Audit,
    id: ApiPath,
) -> Result<Json<KeyInfo>, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.0;
    if id == caller.key_id {
        return Err(ApiError::conflict("you cannot revoke the key you are using; use another admin key"));
    }
    let clipped: String = id.chars().take(40).collect();
    let Some(_) = state.store.api_key(&id).await? else {
        return Err(ApiError::not_found(format!("no API key {clipped:?}")));
    };
    let revoked = state.store.revoke_api_key(&id, Utc::now()).await?;
    let ended = state.store.delete_sessions_of_key(&id).await?;
    let row = state.store.api_key(&id).await?.ok_or_else(|| ApiError::not_found(format!("no API key {clipped:?}")))?;
    audit.note(format!(
        "revoke key {:?} ({id}){}; {ended} session(s) ended",
        row.name,
        if revoked { "" } else { ": already revoked" }
    ));
    Ok(Json(KeyInfo::from(&row)))
}

// ---- audit log -------------------------------------------------------------------------

/// The audit log, newest first (admin): every state-changing call, who made it and how it
/// ended.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "admin",
    params(
        ("actor" = Option<String>, Query, description = "Only calls made with the key of this name"),
        ("cursor" = Option<u64>, Query, description = "`next_cursor` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-500 (default 100)"),
    ),
    responses(
        (status = 200, description = "`{entries: [{id, ts, actor_key, actor_name, role, via, client, method, path, status, detail}], next_cursor}`", body = serde_json::Value),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    let p = Params::new(raw, &["actor", "cursor", "limit"])?;
    let limit = p.limit(100, 500)?;
    let before = p.u64("cursor")?.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
    let mut entries = state.store.audit_log(before, p.get("actor"), limit + 1).await?;
    let next = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(serde_json::json!({ "entries": entries, "next_cursor": next })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_canonical_and_not_too_broad() {
        assert_eq!(network_field("t", "203.0.113.7").unwrap().to_string(), "203.0.113.7/32");
        assert_eq!(network_field("t", " 10.1.2.3/8 ").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(network_field("t", "2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        let e = network_field("target", "0.0.0.0/0").unwrap_err();
        assert!(e.message.contains("`target`") && e.message.contains("too broad"), "{}", e.message);
        assert!(network_field("target", "example.org").unwrap_err().message.contains("`target`"));
    }

    #[test]
    fn ttls_and_texts() {
        assert_eq!(ttl_of("ttl", Some(&Ttl::Text("2h".into())), TTL_MIN).unwrap(), Duration::from_secs(7200));
        assert_eq!(ttl_of("ttl", Some(&Ttl::Seconds(120)), TTL_MIN).unwrap(), Duration::from_secs(120));
        assert_eq!(ttl_of("ttl", None, Duration::from_secs(3600)).unwrap(), Duration::from_secs(3600));
        assert!(ttl_of("ttl", Some(&Ttl::Seconds(1)), TTL_MIN).unwrap_err().message.contains("`ttl`"));
        assert!(ttl_of("ttl", Some(&Ttl::Text("forever".into())), TTL_MIN).unwrap_err().message.contains("`ttl`"));
        assert!(text_field("reason", "  ", true).unwrap_err().message.contains("`reason`"));
        assert!(text_field("reason", "a\u{0}b", true).is_err());
        assert_eq!(text_field("reason", " scan ", true).unwrap(), "scan");
    }
}
