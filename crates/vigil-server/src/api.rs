//! The read side of the REST API under `/api/v1` (agents, metrics, alerts and their
//! status, incidents, network figures, the overview) and the request plumbing every route
//! shares: JSON bodies, path and query parameters that answer 400 naming the bad field.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use uuid::Uuid;
use vigil_model::{AgentId, Category, HostSample, Severity};
use vigil_store::{
    AgentRow, AlertCursor, AlertFilter, AlertStatus, AlertView, Change, IncidentFilter, IncidentStatus, MetricPoint,
};

use crate::apikey::Role;
use crate::auth::{Audit, Caller};
use crate::error::ApiError;
use crate::events::EventKind;
use crate::pipeline::Operator;
use crate::state::AppState;

// ---- plumbing ------------------------------------------------------------------------

/// The error body every route answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `rate_limited`, ...
    pub code: String,
    /// One sentence: what is wrong (naming the field) and what to do.
    pub message: String,
}

/// A JSON body whose errors are answered as 400 naming the bad field (unknown fields too,
/// where the type denies them).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) => {
                let status = rej.status();
                let text: String = rej.body_text().chars().take(300).collect();
                let text = text.replace("Failed to deserialize the JSON body into the target type: ", "");
                if status == http::StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::new(status, "too_large", "request body too large"))
                } else if status == http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    Err(ApiError::bad_request("request body: expected JSON with `Content-Type: application/json`"))
                } else {
                    Err(ApiError::bad_request(format!("request body: {text}")))
                }
            }
        }
    }
}

/// One path parameter, as text; a bad encoding is a 400.
#[derive(Debug)]
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::bad_request(format!(
                "path parameter `id`: {}",
                e.body_text().chars().take(200).collect::<String>()
            ))),
        }
    }
}

impl ApiPath {
    /// The parameter as a UUID.
    pub fn uuid(&self) -> Result<Uuid, ApiError> {
        Uuid::parse_str(&self.0).map_err(|_| {
            ApiError::bad_request(format!(
                "path parameter `id`: {:?} is not a UUID",
                self.0.chars().take(40).collect::<String>()
            ))
        })
    }
}

/// Query parameters, checked by hand so that an unknown or bad one gets a 400 that names it.
#[derive(Debug)]
pub struct ApiQuery(pub BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        query_map(&parts.uri).map(ApiQuery)
    }
}

fn query_map(uri: &http::Uri) -> Result<BTreeMap<String, String>, ApiError> {
    axum::extract::Query::<BTreeMap<String, String>>::try_from_uri(uri).map(|axum::extract::Query(m)| m).map_err(|e| {
        ApiError::bad_request(format!("query string: {}", e.body_text().chars().take(200).collect::<String>()))
    })
}

/// Query parameters after the unknown ones were refused.
pub struct Params(BTreeMap<String, String>);

fn clip(v: &str) -> String {
    v.chars().take(40).collect()
}

impl Params {
    /// Refuses any parameter not in `allowed`.
    pub fn new(raw: BTreeMap<String, String>, allowed: &[&str]) -> Result<Self, ApiError> {
        if let Some(k) = raw.keys().find(|k| !allowed.contains(&k.as_str())) {
            let expected = if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") };
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{}`; expected one of: {expected}",
                clip(k)
            )));
        }
        Ok(Params(raw))
    }

    /// A parameter's value; empty counts as absent.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn bad(k: &str, v: &str, expected: &str) -> ApiError {
        ApiError::bad_request(format!("query parameter `{k}`: {:?} is not valid; expected {expected}", clip(v)))
    }

    /// A time: RFC 3339 or unix seconds.
    pub fn time(&self, k: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(v) = self.get(k) else { return Ok(None) };
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(Some(t.with_timezone(&Utc)));
        }
        if let Ok(secs) = v.parse::<i64>()
            && let Some(t) = Utc.timestamp_opt(secs, 0).single()
        {
            return Ok(Some(t));
        }
        Err(Self::bad(k, v, "RFC 3339 (2026-01-02T15:04:05Z) or unix seconds"))
    }

    /// `limit`, from 1 to `max`.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(Self::bad("limit", v, &format!("a whole number from 1 to {max}"))),
            },
        }
    }

    /// A whole number.
    pub fn u64(&self, k: &str) -> Result<Option<u64>, ApiError> {
        self.get(k).map(|v| v.parse::<u64>().map_err(|_| Self::bad(k, v, "a whole number"))).transpose()
    }

    /// A duration: `30s`, `5m`, `1h` or whole seconds, between `min` and `max`.
    pub fn duration(&self, k: &str, min: Duration, max: Duration) -> Result<Option<Duration>, ApiError> {
        let Some(v) = self.get(k) else { return Ok(None) };
        let d = parse_duration(v).ok_or_else(|| Self::bad(k, v, "a duration such as 30s, 5m, 1h or whole seconds"))?;
        if d < min || d > max {
            return Err(Self::bad(k, v, &format!("between {} and {}", humantime_short(min), humantime_short(max))));
        }
        Ok(Some(d))
    }

    /// A boolean: `true` or `false`.
    pub fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        self.get(k)
            .map(|v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(Self::bad(k, v, "true or false")),
            })
            .transpose()
    }

    /// An IP address.
    pub fn ip(&self, k: &str) -> Result<Option<IpAddr>, ApiError> {
        self.get(k).map(|v| v.parse::<IpAddr>().map_err(|_| Self::bad(k, v, "an IP address"))).transpose()
    }

    /// An agent id.
    pub fn agent(&self, k: &str) -> Result<Option<AgentId>, ApiError> {
        self.get(k)
            .map(|v| AgentId::new(v).map_err(|e| ApiError::bad_request(format!("query parameter `{k}`: {e}"))))
            .transpose()
    }
}

/// Parses `90`, `90s`, `5m`, `1h`, `2d`.
pub fn parse_duration(v: &str) -> Option<Duration> {
    if v.len() > 32 {
        return None;
    }
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    vigil_config::HumanDuration::parse(v).ok().map(|h| h.0)
}

fn humantime_short(d: Duration) -> String {
    vigil_config::HumanDuration(d).to_string()
}

/// The agent id in a path.
fn parse_agent(id: &str) -> Result<AgentId, ApiError> {
    AgentId::new(id).map_err(|e| ApiError::bad_request(format!("path parameter `id`: {e}")))
}

// ---- health --------------------------------------------------------------------------

/// Health and version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
    /// Server version.
    pub version: String,
}

/// Whether the server is up. No authentication.
#[utoipa::path(get, path = "/api/v1/health", tag = "server", responses((status = 200, description = "Up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

// ---- agents ----------------------------------------------------------------------------

/// One agent as the API shows it.
#[derive(Debug, Serialize)]
pub struct AgentView {
    #[serde(flatten)]
    row: AgentRow,
    /// `online` when heard from within three intervals, else `offline`.
    status: &'static str,
    /// The newest sample's headline figures.
    latest: Option<LatestView>,
}

/// Whether an agent is online at `now`: heard from within three of its intervals (at
/// least 15 s).
pub fn is_online(row: &AgentRow, now: DateTime<Utc>) -> bool {
    let interval_ms = row.info.as_ref().map_or(5_000, |i| i.interval_ms).clamp(1_000, 3_600_000);
    let limit = ChronoDuration::milliseconds(i64::try_from(interval_ms * 3).unwrap_or(i64::MAX).max(15_000));
    now - row.last_seen <= limit
}

/// An agent's newest figures.
#[derive(Debug, Serialize)]
pub struct LatestView {
    timestamp: DateTime<Utc>,
    cpu_percent: f32,
    memory_percent: f32,
    disk_percent: f64,
    load_average: [f64; 3],
    process_count: u32,
    rx_bps: f64,
    tx_bps: f64,
    rx_pps: f64,
    tx_pps: f64,
}

fn latest_json(s: &HostSample) -> LatestView {
    let p = MetricPoint::from_sample(s);
    LatestView {
        timestamp: s.timestamp,
        cpu_percent: s.cpu_percent,
        memory_percent: s.memory_percent,
        disk_percent: p.disk,
        load_average: s.load_average,
        process_count: s.process_count,
        rx_bps: p.rx_bps,
        tx_bps: p.tx_bps,
        rx_pps: p.rx_pps,
        tx_pps: p.tx_pps,
    }
}

fn agent_view(row: AgentRow, latest: Option<&HostSample>, now: DateTime<Utc>) -> AgentView {
    AgentView { status: if is_online(&row, now) { "online" } else { "offline" }, latest: latest.map(latest_json), row }
}

/// `GET /api/v1/agents` answer.
#[derive(Debug, Serialize)]
pub struct AgentList {
    agents: Vec<AgentView>,
}

/// Every agent with its status, last contact and latest figures (one query).
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    params(("status" = Option<String>, Query, description = "Only `online` or `offline` agents")),
    responses(
        (status = 200, description = "`{agents: [...]}`", body = serde_json::Value),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn agents(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<AgentList>, ApiError> {
    caller.require(Role::Viewer)?;
    let p = Params::new(raw, &["status"])?;
    let want = match p.get("status") {
        None => None,
        Some("online") => Some("online"),
        Some("offline") => Some("offline"),
        Some(v) => return Err(Params::bad("status", v, "online or offline")),
    };
    let now = Utc::now();
    let out: Vec<AgentView> = state
        .agents_with_latest()
        .await?
        .into_iter()
        .map(|(row, s)| agent_view(row, s.as_deref(), now))
        .filter(|v| want.is_none_or(|w| w == v.status))
        .collect();
    Ok(Json(AgentList { agents: out }))
}

/// One agent.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent", body = serde_json::Value),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn agent(
    State(state): State<AppState>,
    caller: Caller,
    id: ApiPath,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<AgentView>, ApiError> {
    caller.require(Role::Viewer)?;
    Params::new(raw, &[])?;
    let id = parse_agent(&id.0)?;
    let row = state.store.get_agent(&id).await?.ok_or_else(|| ApiError::not_found(format!("no agent {id}")))?;
    let latest = state.store.latest_sample(&id).await?;
    Ok(Json(agent_view(row, latest.as_ref(), Utc::now())))
}

/// Most points one series call returns.
const SERIES_POINTS_MAX: i64 = 10_000;

/// An agent's metric samples, raw or downsampled with `step`.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}/metrics",
    tag = "agents",
    params(
        ("id" = String, Path, description = "Agent id"),
        ("since" = Option<String>, Query, description = "From (RFC 3339 or unix seconds); with `step`, default one hour before `until`"),
        ("until" = Option<String>, Query, description = "Until, exclusive; with `step`, default now"),
        ("limit" = Option<u32>, Query, description = "Most samples or points (1-10000, default 1000)"),
        ("step" = Option<String>, Query, description = "Downsample: average over buckets of this length (1s to 1d, e.g. `10s`, `5m`); the answer then has `points` instead of `samples`"),
    ),
    responses(
        (status = 200, description = "`{agent, samples}` or, with `step`, `{agent, step_seconds, points: [{t, n, cpu, mem, disk, rx_bps, tx_bps, rx_pps, tx_pps}]}`", body = serde_json::Value),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
    id: ApiPath,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let id = parse_agent(&id.0)?;
    let p = Params::new(raw, &["since", "until", "limit", "step"])?;
    let since = p.time("since")?;
    let until = p.time("until")?;
    let limit = p.limit(1000, 10_000)?;
    let step = p.duration("step", Duration::from_secs(1), Duration::from_secs(86_400))?;
    if state.store.get_agent(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no agent {id}")));
    }
    let Some(step) = step else {
        let samples = state.store.metrics(&id, since, until, limit).await?;
        return Ok(Json(serde_json::json!({ "agent": id, "samples": samples })));
    };
    let until = until.unwrap_or_else(Utc::now);
    let since = since.unwrap_or(until - ChronoDuration::hours(1));
    if since >= until {
        return Err(ApiError::bad_request("query parameter `since`: must be before `until`"));
    }
    let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX).max(1);
    let buckets = (until - since).num_milliseconds() / step_ms;
    if buckets > SERIES_POINTS_MAX {
        return Err(ApiError::bad_request(format!(
            "query parameter `step`: too small for the range ({buckets} points; at most {SERIES_POINTS_MAX}); use a larger step or a shorter range"
        )));
    }
    let points = state.store.metric_series(&id, since, until, step_ms, limit).await?;
    Ok(Json(serde_json::json!({
        "agent": id,
        "since": since,
        "until": until,
        "step_seconds": step.as_secs(),
        "points": points,
    })))
}

// ---- alerts ----------------------------------------------------------------------------

fn encode_cursor(ts: DateTime<Utc>, id: Uuid) -> String {
    format!("{}.{}", ts.timestamp_millis(), id.simple())
}

fn decode_cursor(v: &str) -> Option<(i64, Uuid)> {
    let (ts, id) = v.split_once('.')?;
    Some((ts.parse().ok()?, Uuid::parse_str(id).ok()?))
}

fn cursor_param(p: &Params, k: &str) -> Result<Option<(i64, Uuid)>, ApiError> {
    p.get(k)
        .map(|v| decode_cursor(v).ok_or_else(|| Params::bad(k, v, "the `next_cursor` of a previous page")))
        .transpose()
}

/// Most alerts one page holds.
const ALERT_PAGE_MAX: u32 = 500;

/// Alerts, newest first, filtered, one page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "alerts",
    params(
        ("since" = Option<String>, Query, description = "Observed at or after (RFC 3339 or unix seconds)"),
        ("until" = Option<String>, Query, description = "Observed before"),
        ("category" = Option<String>, Query, description = "Comma-separated categories, e.g. `port_scan,syn_flood`"),
        ("severity" = Option<String>, Query, description = "This severity or above: info, low, medium, high, critical"),
        ("agent" = Option<String>, Query, description = "Raised by this agent"),
        ("status" = Option<String>, Query, description = "open, acknowledged or resolved"),
        ("src_ip" = Option<String>, Query, description = "With this source address"),
        ("dst_ip" = Option<String>, Query, description = "With this destination address"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-500 (default 100)"),
    ),
    responses(
        (status = 200, description = "`{alerts: [...], next_cursor}`; `next_cursor` is null on the last page", body = serde_json::Value),
        (status = 400, description = "Bad parameter (named)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let p = Params::new(
        raw,
        &["since", "until", "category", "severity", "agent", "status", "src_ip", "dst_ip", "cursor", "limit"],
    )?;
    let categories = match p.get("category") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .take(64)
            .map(|c| {
                c.trim()
                    .parse::<Category>()
                    .map_err(|e| ApiError::bad_request(format!("query parameter `category`: {e}")))
            })
            .collect::<Result<_, _>>()?,
    };
    let min_severity = p
        .get("severity")
        .map(|s| s.parse::<Severity>().map_err(|e| ApiError::bad_request(format!("query parameter `severity`: {e}"))))
        .transpose()?;
    let status = p
        .get("status")
        .map(|s| AlertStatus::parse(s).ok_or_else(|| Params::bad("status", s, "open, acknowledged or resolved")))
        .transpose()?;
    let limit = p.limit(100, ALERT_PAGE_MAX)?;
    let f = AlertFilter {
        since: p.time("since")?,
        until: p.time("until")?,
        categories,
        min_severity,
        agent: p.agent("agent")?,
        status,
        src_ip: p.ip("src_ip")?,
        dst_ip: p.ip("dst_ip")?,
        cursor: cursor_param(&p, "cursor")?.map(|(ts_ms, id)| AlertCursor { ts_ms, id }),
        limit: limit + 1,
    };
    let mut alerts = state.store.alert_page(&f).await?;
    let next = if alerts.len() > limit as usize {
        alerts.truncate(limit as usize);
        alerts.last().map(|a| encode_cursor(a.stored.alert.timestamp, a.stored.alert.id))
    } else {
        None
    };
    Ok(Json(serde_json::json!({ "alerts": alerts, "next_cursor": next })))
}

/// One alert with its status.
#[utoipa::path(
    get,
    path = "/api/v1/alerts/{id}",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id (UUID)")),
    responses(
        (status = 200, description = "The alert", body = serde_json::Value),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn alert(
    State(state): State<AppState>,
    caller: Caller,
    id: ApiPath,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<AlertView>, ApiError> {
    caller.require(Role::Viewer)?;
    Params::new(raw, &[])?;
    let id = id.uuid()?;
    let v = state.store.alert_view(id).await?.ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    Ok(Json(v))
}

async fn change_alert(
    state: &AppState,
    caller: &Caller,
    audit: &Audit,
    id: &ApiPath,
    what: &'static str,
) -> Result<Json<AlertView>, ApiError> {
    caller.require(Role::Operator)?;
    let id = id.uuid()?;
    let now = Utc::now();
    let change = match what {
        "acknowledge" => state.store.acknowledge_alert(id, &caller.name, now).await?,
        _ => state.store.resolve_alert_by(id, &caller.name, now).await?,
    };
    let view = state.store.alert_view(id).await?;
    let (change, view) = match (change, view) {
        (Change::Missing, _) | (_, None) => return Err(ApiError::not_found(format!("no alert {id}"))),
        (c, Some(v)) => (c, v),
    };
    // The pipeline's record follows (also when storage had it already: a resend is harmless).
    let op = if what == "acknowledge" { Operator::Acknowledge(id) } else { Operator::Resolve(id) };
    state.pipeline.command(op).await;
    if change == Change::Done {
        audit.note(format!("{what} alert {id} ({})", view.stored.alert.category));
        state.events.publish(EventKind::AlertUpdate, &view);
    } else {
        audit.note(format!("{what} alert {id}: already {}", view.status.as_str()));
    }
    Ok(Json(view))
}

/// Acknowledges an alert (operator). Idempotent: an alert already acknowledged or
/// resolved is returned as it is.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/ack",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id (UUID)")),
    responses(
        (status = 200, description = "The alert, acknowledged", body = serde_json::Value),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the operator role (or the CSRF token)", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn ack_alert(
    State(state): State<AppState>,
    caller: Caller,
    audit: Audit,
    id: ApiPath,
) -> Result<Json<AlertView>, ApiError> {
    change_alert(&state, &caller, &audit, &id, "acknowledge").await
}

/// Resolves an alert by hand (operator). Idempotent.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/resolve",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id (UUID)")),
    responses(
        (status = 200, description = "The alert, resolved", body = serde_json::Value),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Needs the operator role (or the CSRF token)", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn resolve_alert(
    State(state): State<AppState>,
    caller: Caller,
    audit: Audit,
    id: ApiPath,
) -> Result<Json<AlertView>, ApiError> {
    change_alert(&state, &caller, &audit, &id, "resolve").await
}

// ---- incidents ---------------------------------------------------------------------------

/// Incidents, most recently updated first.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    tag = "incidents",
    params(
        ("status" = Option<String>, Query, description = "open, acknowledged or resolved"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-500 (default 50)"),
    ),
    responses(
        (status = 200, description = "`{incidents: [...], next_cursor}`", body = serde_json::Value),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn incidents(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let p = Params::new(raw, &["status", "cursor", "limit"])?;
    let status = p
        .get("status")
        .map(|s| IncidentStatus::parse(s).ok_or_else(|| Params::bad("status", s, "open, acknowledged or resolved")))
        .transpose()?;
    let limit = p.limit(50, 500)?;
    let before = cursor_param(&p, "cursor")?
        .map(|(ms, id)| {
            DateTime::from_timestamp_millis(ms)
                .map(|t| (t, id))
                .ok_or_else(|| Params::bad("cursor", "", "the `next_cursor` of a previous page"))
        })
        .transpose()?;
    let mut list = state.store.incidents(&IncidentFilter { status, before, limit: limit + 1 }).await?;
    let next = if list.len() > limit as usize {
        list.truncate(limit as usize);
        list.last().map(|i| encode_cursor(i.updated_at, i.id))
    } else {
        None
    };
    Ok(Json(serde_json::json!({ "incidents": list, "next_cursor": next })))
}

/// One incident with its alerts.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    params(("id" = String, Path, description = "Incident id (UUID)")),
    responses(
        (status = 200, description = "`{incident, alerts}`", body = serde_json::Value),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn incident(
    State(state): State<AppState>,
    caller: Caller,
    id: ApiPath,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    Params::new(raw, &[])?;
    let id = id.uuid()?;
    let inc = state.store.incident(id).await?.ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    let alerts = state.store.alerts_by_id(&inc.alert_ids).await?;
    Ok(Json(serde_json::json!({ "incident": inc, "alerts": alerts })))
}

// ---- network and overview ----------------------------------------------------------------

/// Network figures: per-agent packets and bytes per second (from packet capture where the
/// agent runs it, else from its interface counters), the busiest addresses and the
/// protocol mix of the latest capture interval of every agent, and the sources behind
/// most alerts.
#[utoipa::path(
    get,
    path = "/api/v1/network",
    tag = "network",
    params(("hours" = Option<u32>, Query, description = "Window of `top_sources` (alerts), 1-720 hours (default 24)")),
    responses(
        (status = 200, description = "`{agents: [{id, hostname, status, source, at, rx_bps, tx_bps, rx_pps, tx_pps, capture}], totals, top_talkers: [{ip, packets, bytes, agents}], protocols: [{protocol, packets, bytes}], top_sources}`", body = serde_json::Value),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn network(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    use std::collections::HashMap;
    caller.require(Role::Viewer)?;
    let p = Params::new(raw, &["hours"])?;
    let hours = hours_param(&p)?;
    let now = Utc::now();
    let since = now - ChronoDuration::hours(i64::from(hours) - 1);
    let nets = state.latest.netstats(&state.store, now - ChronoDuration::minutes(2)).await?;
    let mut talkers: HashMap<IpAddr, (u64, u64, u32)> = HashMap::new();
    let mut protocols: HashMap<String, (u64, u64)> = HashMap::new();
    let (mut rx_bps, mut tx_bps, mut rx_pps, mut tx_pps, mut reporting) = (0.0, 0.0, 0.0, 0.0, 0u32);
    let mut agents = Vec::new();
    for (row, sample) in state.agents_with_latest().await? {
        let online = is_online(&row, now);
        let net = nets.get(&row.id);
        let (source, at, rates, capture) = match (net, sample.as_deref()) {
            (Some(n), _) => (
                "capture",
                Some(n.timestamp),
                [n.bytes_in_per_sec, n.bytes_out_per_sec, n.packets_in_per_sec, n.packets_out_per_sec],
                Some(&n.capture),
            ),
            (None, Some(s)) => {
                let pt = MetricPoint::from_sample(s);
                ("interfaces", Some(pt.t), [pt.rx_bps, pt.tx_bps, pt.rx_pps, pt.tx_pps], None)
            }
            (None, None) => ("none", None, [0.0; 4], None),
        };
        if online && at.is_some() {
            reporting += 1;
            rx_bps += rates[0];
            tx_bps += rates[1];
            rx_pps += rates[2];
            tx_pps += rates[3];
        }
        if let Some(n) = net {
            for t in n.top_talkers.iter().take(100) {
                let e = talkers.entry(t.ip).or_default();
                e.0 = e.0.saturating_add(t.packets);
                e.1 = e.1.saturating_add(t.bytes);
                e.2 += 1;
            }
            for pc in n.protocols.iter().take(32) {
                let e = protocols.entry(pc.protocol.chars().take(32).collect()).or_default();
                e.0 = e.0.saturating_add(pc.packets);
                e.1 = e.1.saturating_add(pc.bytes);
            }
        }
        agents.push(serde_json::json!({
            "id": row.id,
            "hostname": row.info.as_ref().map(|i| i.hostname.clone()),
            "status": if online { "online" } else { "offline" },
            "source": source,
            "at": at,
            "rx_bps": rates[0],
            "tx_bps": rates[1],
            "rx_pps": rates[2],
            "tx_pps": rates[3],
            "capture": capture,
        }));
    }
    let mut talkers: Vec<_> = talkers.into_iter().collect();
    talkers.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(&b.0)));
    let talkers: Vec<_> = talkers
        .into_iter()
        .take(20)
        .map(|(ip, (packets, bytes, n))| serde_json::json!({"ip": ip, "packets": packets, "bytes": bytes, "agents": n}))
        .collect();
    let mut protocols: Vec<_> = protocols.into_iter().collect();
    protocols.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let protocols: Vec<_> = protocols
        .into_iter()
        .map(|(protocol, (packets, bytes))| serde_json::json!({"protocol": protocol, "packets": packets, "bytes": bytes}))
        .collect();
    let top_sources = top_sources(&state, hours, since).await?;
    Ok(Json(serde_json::json!({
        "hours": hours,
        "agents": agents,
        "totals": {"agents_reporting": reporting, "rx_bps": rx_bps, "tx_bps": tx_bps, "rx_pps": rx_pps, "tx_pps": tx_pps},
        "top_talkers": talkers,
        "protocols": protocols,
        "top_sources": top_sources,
    })))
}

/// How old the cached top sources may be.
const TOP_SOURCES_FRESH: std::time::Duration = std::time::Duration::from_secs(15);
/// How long after the last request the background refresh goes on.
const TOP_SOURCES_KEEP: std::time::Duration = std::time::Duration::from_secs(120);

/// Top alert sources over `hours`. The 24-hour figures (what the dashboard shows) come
/// from a cache the status loop refreshes every 5 s while someone asks for them: grouping
/// a day of sources costs tens of milliseconds on a busy database.
async fn top_sources(
    state: &AppState,
    hours: u32,
    since: DateTime<Utc>,
) -> Result<std::sync::Arc<Vec<vigil_store::SourceCount>>, ApiError> {
    if hours != 24 {
        return Ok(std::sync::Arc::new(state.store.top_sources(since, 10).await?));
    }
    let now = std::time::Instant::now();
    {
        let mut c = state.top_sources.lock().unwrap_or_else(|p| p.into_inner());
        c.asked = Some(now);
        if c.at.is_some_and(|at| now.duration_since(at) < TOP_SOURCES_FRESH) {
            return Ok(c.value.clone());
        }
    }
    let value = std::sync::Arc::new(state.store.top_sources(since, 10).await?);
    let mut c = state.top_sources.lock().unwrap_or_else(|p| p.into_inner());
    c.at = Some(now);
    c.value = value.clone();
    Ok(value)
}

/// Recomputes the cached 24-hour top sources if someone asked for them lately.
pub async fn refresh_top_sources(state: &AppState) {
    let asked = state.top_sources.lock().unwrap_or_else(|p| p.into_inner()).asked;
    if asked.is_none_or(|a| a.elapsed() > TOP_SOURCES_KEEP) {
        return;
    }
    let since = Utc::now() - ChronoDuration::hours(23);
    match state.store.top_sources(since, 10).await {
        Ok(v) => {
            let mut c = state.top_sources.lock().unwrap_or_else(|p| p.into_inner());
            c.at = Some(std::time::Instant::now());
            c.value = std::sync::Arc::new(v);
        }
        Err(e) => tracing::warn!(error = %e, "cannot refresh the top alert sources"),
    }
}

fn hours_param(p: &Params) -> Result<u32, ApiError> {
    match p.get("hours") {
        None => Ok(24),
        Some(v) => match v.parse::<u32>() {
            Ok(h) if (1..=720).contains(&h) => Ok(h),
            _ => Err(Params::bad("hours", v, "a whole number of hours from 1 to 720")),
        },
    }
}

/// What the dashboard's overview shows, in one call: agents online and offline, alerts
/// per hour by severity, top sources and categories, open incidents.
#[utoipa::path(
    get,
    path = "/api/v1/overview",
    tag = "server",
    params(("hours" = Option<u32>, Query, description = "Window, 1-720 hours (default 24)")),
    responses(
        (status = 200, description = "`{agents: {total, online, offline}, alerts_by_hour, alerts_total, top_sources, top_categories, open_incidents, incidents}`", body = serde_json::Value),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn overview(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(raw): ApiQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let p = Params::new(raw, &["hours"])?;
    let hours = hours_param(&p)?;
    let now = Utc::now();
    let since = now - ChronoDuration::hours(i64::from(hours) - 1);
    let agents = state.store.all_agents().await?;
    let online = agents.iter().filter(|a| is_online(a, now)).count();
    let by_hour = state.store.alert_counts_by_hour(since).await?;
    let total: u64 = by_hour.iter().map(|h| h.count).sum();
    let open = state.store.incident_count(IncidentStatus::Open).await?;
    let incidents =
        state.store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), before: None, limit: 5 }).await?;
    Ok(Json(serde_json::json!({
        "hours": hours,
        "agents": {"total": agents.len(), "online": online, "offline": agents.len() - online},
        "alerts_by_hour": by_hour,
        "alerts_total": total,
        "top_sources": top_sources(&state, hours, since).await?,
        "top_categories": state.store.top_categories(since, 10).await?,
        "open_incidents": open,
        "incidents": incidents,
    })))
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
        raw.insert("step".to_string(), "0s".to_string());
        let p = Params::new(raw, &["since", "limit", "step"]).unwrap();
        assert!(p.time("since").unwrap_err().message.contains("`since`"));
        assert!(p.limit(10, 100).unwrap_err().message.contains("`limit`"));
        assert!(
            p.duration("step", Duration::from_secs(1), Duration::from_secs(9)).unwrap_err().message.contains("`step`")
        );
    }

    #[test]
    fn times_durations_and_cursors_parse() {
        let mut raw = BTreeMap::new();
        raw.insert("a".to_string(), "2026-01-02T03:04:05Z".to_string());
        raw.insert("b".to_string(), "1700000000".to_string());
        let p = Params::new(raw, &["a", "b"]).unwrap();
        assert_eq!(p.time("a").unwrap().unwrap().timestamp(), 1_767_323_045);
        assert_eq!(p.time("b").unwrap().unwrap().timestamp(), 1_700_000_000);
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("soon"), None);
        let id = Uuid::now_v7();
        let t = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(decode_cursor(&encode_cursor(t, id)), Some((1_700_000_000_123, id)));
        assert_eq!(decode_cursor("x.y"), None);
    }

    #[test]
    fn query_strings_parse() {
        let m = query_map(&"/x?limit=5&severity=high".parse().unwrap()).unwrap();
        assert_eq!(m.get("limit").map(String::as_str), Some("5"));
        assert!(query_map(&"/x".parse().unwrap()).unwrap().is_empty());
    }
}
