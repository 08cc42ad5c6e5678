//! The read API under `/api/v1` and its API-key authentication.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde::Serialize;
use vigil_model::{AgentId, Category, Severity};
use vigil_store::{AgentRow, AlertQuery};

use crate::apikey::{self, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// A caller authenticated by API key.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Key id.
    pub key_id: String,
    /// Key name.
    pub name: String,
    /// What the key may do.
    pub role: Role,
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

fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    let auth = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(text) = presented_key(parts) else {
            return Err(ApiError::unauthorized(
                "missing API key; send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`",
            ));
        };
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
        Ok(Caller { key_id: row.id, name: row.name, role })
    }
}

/// `GET /api/v1/health`: no authentication.
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// One agent as the API shows it.
#[derive(Debug, Serialize)]
pub struct AgentView {
    #[serde(flatten)]
    row: AgentRow,
    /// `online` when heard from within three intervals, else `offline`.
    status: &'static str,
    /// The newest sample's headline figures.
    latest: Option<serde_json::Value>,
}

fn status_of(row: &AgentRow, now: DateTime<Utc>) -> &'static str {
    let interval_ms = row.info.as_ref().map_or(5_000, |i| i.interval_ms).clamp(1_000, 3_600_000);
    let limit = ChronoDuration::milliseconds(i64::try_from(interval_ms * 3).unwrap_or(i64::MAX).max(15_000));
    if now - row.last_seen <= limit { "online" } else { "offline" }
}

async fn view(state: &AppState, row: AgentRow, now: DateTime<Utc>) -> Result<AgentView, ApiError> {
    let latest = state.store.latest_sample(&row.id).await?.map(|s| {
        serde_json::json!({
            "timestamp": s.timestamp,
            "cpu_percent": s.cpu_percent,
            "memory_percent": s.memory_percent,
            "load_average": s.load_average,
            "process_count": s.process_count,
        })
    });
    Ok(AgentView { status: status_of(&row, now), row, latest })
}

/// `GET /api/v1/agents`.
pub async fn agents(State(state): State<AppState>, _caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    let now = Utc::now();
    let mut out = Vec::new();
    for row in state.store.list_agents().await? {
        out.push(view(&state, row, now).await?);
    }
    Ok(Json(serde_json::json!({ "agents": out })))
}

fn parse_agent(id: &str) -> Result<AgentId, ApiError> {
    AgentId::new(id).map_err(|e| ApiError::bad_request(format!("path parameter `id`: {e}")))
}

/// `GET /api/v1/agents/{id}`.
pub async fn agent(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let id = parse_agent(&id)?;
    let row = state.store.get_agent(&id).await?.ok_or_else(|| ApiError::not_found(format!("no agent {id}")))?;
    Ok(Json(view(&state, row, Utc::now()).await?))
}

/// Query parameters, checked by hand so that an unknown or bad one gets a 400 that names it.
struct Params(BTreeMap<String, String>);

impl Params {
    fn new(raw: BTreeMap<String, String>, allowed: &[&str]) -> Result<Self, ApiError> {
        if let Some(k) = raw.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{}`; expected one of: {}",
                k.chars().take(40).collect::<String>(),
                allowed.join(", ")
            )));
        }
        Ok(Params(raw))
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn time(&self, k: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(v) = self.get(k) else { return Ok(None) };
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(Some(t.with_timezone(&Utc)));
        }
        if let Ok(secs) = v.parse::<i64>()
            && let Some(t) = Utc.timestamp_opt(secs, 0).single()
        {
            return Ok(Some(t));
        }
        Err(ApiError::bad_request(format!(
            "query parameter `{k}`: {:?} is not a time; expected RFC 3339 (2026-01-02T15:04:05Z) or unix seconds",
            v.chars().take(40).collect::<String>()
        )))
    }

    fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "query parameter `limit`: expected a whole number from 1 to {max}"
                ))),
            },
        }
    }
}

/// `GET /api/v1/agents/{id}/metrics?since=&until=&limit=`.
pub async fn metrics(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
    Query(raw): Query<BTreeMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_agent(&id)?;
    let p = Params::new(raw, &["since", "until", "limit"])?;
    let since = p.time("since")?;
    let until = p.time("until")?;
    let limit = p.limit(1000, 10_000)?;
    if state.store.get_agent(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no agent {id}")));
    }
    let samples = state.store.metrics(&id, since, until, limit).await?;
    Ok(Json(serde_json::json!({ "agent": id, "samples": samples })))
}

/// `GET /api/v1/alerts?since=&until=&category=&severity=&agent=&limit=`.
pub async fn alerts(
    State(state): State<AppState>,
    _caller: Caller,
    Query(raw): Query<BTreeMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = Params::new(raw, &["since", "until", "category", "severity", "agent", "limit"])?;
    let category = p
        .get("category")
        .map(|c| c.parse::<Category>().map_err(|e| ApiError::bad_request(format!("query parameter `category`: {e}"))))
        .transpose()?;
    let severity = p
        .get("severity")
        .map(|s| s.parse::<Severity>().map_err(|e| ApiError::bad_request(format!("query parameter `severity`: {e}"))))
        .transpose()?;
    let agent = p
        .get("agent")
        .map(|a| AgentId::new(a).map_err(|e| ApiError::bad_request(format!("query parameter `agent`: {e}"))))
        .transpose()?;
    let q = AlertQuery {
        since: p.time("since")?,
        until: p.time("until")?,
        category,
        severity,
        agent,
        limit: Some(p.limit(100, 1000)?),
    };
    let alerts = state.store.alerts(&q).await?;
    Ok(Json(serde_json::json!({ "alerts": alerts })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_reject_unknown_and_bad_values() {
        let mut raw = BTreeMap::new();
        raw.insert("sinse".to_string(), "1".to_string());
        let e = Params::new(raw, &["since"]).err().unwrap();
        assert!(e.message.contains("sinse") && e.message.contains("since"), "{}", e.message);

        let mut raw = BTreeMap::new();
        raw.insert("since".to_string(), "yesterday".to_string());
        raw.insert("limit".to_string(), "0".to_string());
        let p = Params::new(raw, &["since", "limit"]).unwrap();
        assert!(p.time("since").unwrap_err().message.contains("`since`"));
        assert!(p.limit(10, 100).unwrap_err().message.contains("`limit`"));
    }

    #[test]
    fn times_parse_both_ways() {
        let mut raw = BTreeMap::new();
        raw.insert("a".to_string(), "2026-01-02T03:04:05Z".to_string());
        raw.insert("b".to_string(), "1700000000".to_string());
        let p = Params::new(raw, &["a", "b"]).unwrap();
        assert_eq!(p.time("a").unwrap().unwrap().timestamp(), 1_767_323_045);
        assert_eq!(p.time("b").unwrap().unwrap().timestamp(), 1_700_000_000);
    }
}
