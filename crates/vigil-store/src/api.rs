//! What the API and dashboard read and write beyond ingest (schema version 3): alert
//! status (acknowledge, resolve, who and when), cursor-paged alert queries, the overview
//! roll-ups, one-query agent lists, downsampled metric series, blocks, silences, the audit
//! log, dashboard sessions and incidents.
//!
//! Like the rest of the store this module records what callers already validated: it
//! parses nothing from people and decides nothing.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;
use vigil_model::{AgentId, Category, HostSample, Severity};

use crate::{ALERT_COLS, AgentRow, Cells, StoreError, StoredAlert, alert_from_row, ms, sample_from_row, severity_rank};

/// Most rows one page of alerts, blocks, silences, incidents or audit entries holds.
pub const PAGE_LIMIT_MAX: u32 = 1000;
/// Most points one downsampled series returns.
pub const SERIES_LIMIT_MAX: u32 = 10_000;

/// Where an alert stands, as people see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// Nobody has looked at it yet.
    Open,
    /// Someone acknowledged it; its condition may still hold.
    Acknowledged,
    /// Resolved, by its agent or by a person.
    Resolved,
}

impl AlertStatus {
    /// Every status.
    pub const ALL: [AlertStatus; 3] = [AlertStatus::Open, AlertStatus::Acknowledged, AlertStatus::Resolved];

    /// The lowercase name used in JSON and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    /// Parses a name from [`AlertStatus::as_str`].
    pub fn parse(s: &str) -> Option<AlertStatus> {
        AlertStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }

    fn predicate(self) -> &'static str {
        match self {
            AlertStatus::Open => " AND resolved_at IS NULL AND acked_at IS NULL",
            AlertStatus::Acknowledged => " AND resolved_at IS NULL AND acked_at IS NOT NULL",
            AlertStatus::Resolved => " AND resolved_at IS NOT NULL",
        }
    }
}

/// A position in the newest-first order of alerts: the last alert of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertCursor {
    /// Its timestamp, unix milliseconds.
    pub ts_ms: i64,
    /// Its id.
    pub id: Uuid,
}

/// Filters for [`crate::Store::alert_page`]; all given ones must hold.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AlertFilter {
    /// Observed at or after.
    pub since: Option<DateTime<Utc>>,
    /// Observed strictly before.
    pub until: Option<DateTime<Utc>>,
    /// Any of these categories (empty: all).
    pub categories: Vec<Category>,
    /// This severity or above.
    pub min_severity: Option<Severity>,
    /// From this agent.
    pub agent: Option<AgentId>,
    /// In this status.
    pub status: Option<AlertStatus>,
    /// With this source address.
    pub src_ip: Option<IpAddr>,
    /// With this destination address.
    pub dst_ip: Option<IpAddr>,
    /// Strictly after this position (older alerts).
    pub cursor: Option<AlertCursor>,
    /// At most this many (capped at [`PAGE_LIMIT_MAX`]).
    pub limit: u32,
}

/// An alert with its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    /// The stored alert.
    #[serde(flatten)]
    pub stored: StoredAlert,
    /// Open, acknowledged or resolved.
    pub status: AlertStatus,
    /// When someone acknowledged it.
    pub acked_at: Option<DateTime<Utc>>,
    /// Who acknowledged it (API key name).
    pub acked_by: Option<String>,
    /// Who resolved it by hand; `None` when its agent resolved it or it is not resolved.
    pub resolved_by: Option<String>,
}

/// What a status change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It changed.
    Done,
    /// It was already in that state (or past it); nothing changed.
    Already,
    /// No such row.
    Missing,
}

/// Alerts in one hour of one severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourCount {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// Severity.
    pub severity: Severity,
    /// How many.
    pub count: u64,
}

/// A source address and how many alerts named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceCount {
    /// The address as stored.
    pub src_ip: String,
    /// How many alerts.
    pub count: u64,
}

/// A category and how many alerts it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    /// The category.
    pub category: String,
    /// How many alerts.
    pub count: u64,
}

/// One point of a downsampled metric series: averages over `[t, t + step)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPoint {
    /// Start of the bucket.
    pub t: DateTime<Utc>,
    /// Samples in the bucket.
    pub n: u64,
    /// CPU use, percent.
    pub cpu: f64,
    /// Memory use, percent.
    pub mem: f64,
    /// Fullest disk, percent used.
    pub disk: f64,
    /// Received bytes per second, all interfaces but loopback.
    pub rx_bps: f64,
    /// Sent bytes per second.
    pub tx_bps: f64,
    /// Received packets per second.
    pub rx_pps: f64,
    /// Sent packets per second.
    pub tx_pps: f64,
}

impl MetricPoint {
    /// The figures of one sample, as a bucket of one.
    pub fn from_sample(s: &HostSample) -> MetricPoint {
        let nets = s.networks.iter().filter(|n| n.name != "lo");
        let (mut rx_bps, mut tx_bps, mut rx_pps, mut tx_pps) = (0.0, 0.0, 0.0, 0.0);
        for n in nets {
            rx_bps += n.rx_bytes_per_sec;
            tx_bps += n.tx_bytes_per_sec;
            rx_pps += n.rx_packets_per_sec;
            tx_pps += n.tx_packets_per_sec;
        }
        let disk = s.disks.iter().map(|d| f64::from(d.used_percent)).fold(0.0, f64::max);
        MetricPoint {
            t: s.timestamp,
            n: 1,
            cpu: f64::from(s.cpu_percent),
            mem: f64::from(s.memory_percent),
            disk,
            rx_bps,
            tx_bps,
            rx_pps,
            tx_pps,
        }
    }
}

/// A block: traffic from or to `target` should be dropped until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRow {
    /// Id.
    pub id: Uuid,
    /// Canonical network, e.g. `203.0.113.7/32`.
    pub target: String,
    /// Why.
    pub reason: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Who made it (API key name).
    pub created_by: String,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
    /// When someone removed it early.
    pub removed_at: Option<DateTime<Utc>>,
    /// Who removed it.
    pub removed_by: Option<String>,
}

/// A silence: alerts matching every given matcher are muted until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceRow {
    /// Id.
    pub id: Uuid,
    /// Category matcher.
    pub category: Option<String>,
    /// Agent matcher.
    pub agent: Option<String>,
    /// Source network matcher, e.g. `10.0.0.0/8`.
    pub source: Option<String>,
    /// Why.
    pub comment: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
    /// When someone removed it early.
    pub removed_at: Option<DateTime<Utc>>,
    /// Who removed it.
    pub removed_by: Option<String>,
}

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number (0 before it is stored).
    pub id: i64,
    /// When.
    pub ts: DateTime<Utc>,
    /// Key id of the caller, when known.
    pub actor_key: Option<String>,
    /// Key name of the caller, when known.
    pub actor_name: Option<String>,
    /// Role of the caller, when known.
    pub role: Option<String>,
    /// `key` or `session`.
    pub via: Option<String>,
    /// Client address.
    pub client: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path called.
    pub path: String,
    /// HTTP status answered.
    pub status: u16,
    /// What was done, in a few words (target, id).
    pub detail: Option<String>,
}

/// A dashboard session. The cookie value itself is never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the cookie value.
    pub id_hash: [u8; 32],
    /// The key it was opened with.
    pub key_id: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
    /// Client address at login.
    pub client: Option<String>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("id_hash", &"<redacted>")
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Ongoing.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Over.
    Resolved,
}

impl IncidentStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }

    /// Parses a name from [`IncidentStatus::as_str`].
    pub fn parse(s: &str) -> Option<IncidentStatus> {
        [IncidentStatus::Open, IncidentStatus::Acknowledged, IncidentStatus::Resolved]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// An incident: related alerts grouped by the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    /// Id.
    pub id: Uuid,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Where it stands.
    pub status: IncidentStatus,
    /// Highest severity of its alerts (possibly escalated).
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// Main category, e.g. `dos_suspected`.
    pub category: String,
    /// The address under attack (or the attacker), when one.
    pub target: Option<String>,
    /// Ids of its alerts.
    pub alert_ids: Vec<Uuid>,
    /// Rule-specific facts.
    pub evidence: serde_json::Value,
}

/// Filters for [`crate::Store::incidents`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IncidentFilter {
    /// In this status.
    pub status: Option<IncidentStatus>,
    /// Updated strictly before this time (cursor: the previous page's last `updated_at`)...
    pub before: Option<(DateTime<Utc>, Uuid)>,
    /// At most this many.
    pub limit: u32,
}

const VIEW_EXTRA: &str = ", acked_at, acked_by, resolved_by";
const BLOCK_COLS: &str = "id, target, reason, created_at, created_by, expires_at, removed_at, removed_by";
const SILENCE_COLS: &str =
    "id, category, agent_id, source, comment, created_at, created_by, expires_at, removed_at, removed_by";
const AUDIT_COLS: &str = "id, ts, actor_key, actor_name, role, via, client, method, path, status, detail";
const INCIDENT_COLS: &str = "id, opened_at, updated_at, status, severity, title, category, target, alert_ids, evidence";

impl crate::Store {
    // ---- alerts -------------------------------------------------------------------

    /// Alerts matching `f`, newest first (by timestamp, then id).
    pub async fn alert_page(&self, f: &AlertFilter) -> Result<Vec<AlertView>, StoreError> {
        let limit = f.limit.clamp(1, PAGE_LIMIT_MAX);
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {ALERT_COLS}{VIEW_EXTRA} FROM alerts WHERE 1 = 1"));
        if let Some(t) = f.since {
            qb.push(" AND ts >= ").push_bind(ms(t));
        }
        if let Some(t) = f.until {
            qb.push(" AND ts < ").push_bind(ms(t));
        }
        if !f.categories.is_empty() {
            qb.push(" AND category IN (");
            let mut sep = qb.separated(", ");
            for c in &f.categories {
                sep.push_bind(c.as_str());
            }
            qb.push(")");
        }
        if let Some(s) = f.min_severity {
            qb.push(" AND severity >= ").push_bind(severity_rank(s));
        }
        if let Some(a) = &f.agent {
            qb.push(" AND agent_id = ").push_bind(a.as_str().to_owned());
        }
        if let Some(s) = f.status {
            qb.push(s.predicate());
        }
        if let Some(ip) = f.src_ip {
            qb.push(" AND src_ip = ").push_bind(ip.to_string());
        }
        if let Some(ip) = f.dst_ip {
            qb.push(" AND dst_ip = ").push_bind(ip.to_string());
        }
        if let Some(c) = f.cursor {
            qb.push(" AND (ts < ").push_bind(c.ts_ms);
            qb.push(" OR (ts = ").push_bind(c.ts_ms);
            qb.push(" AND id < ").push_bind(c.id);
            qb.push("))");
        }
        qb.push(" ORDER BY ts DESC, id DESC LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.inner.reader).await.map_err(self.query_err("read alerts"))?;
        rows.iter().map(|r| view_from_row(r, &self.inner.path)).collect()
    }

    /// One alert with its status.
    pub async fn alert_view(&self, id: Uuid) -> Result<Option<AlertView>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ALERT_COLS}{VIEW_EXTRA} FROM alerts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("read alert"))?;
        row.map(|r| view_from_row(&r, &self.inner.path)).transpose()
    }

    /// Marks an open alert acknowledged by `by` at `at`.
    pub async fn acknowledge_alert(&self, id: Uuid, by: &str, at: DateTime<Utc>) -> Result<Change, StoreError> {
        let n = sqlx::query(
            "UPDATE alerts SET acked_at = $1, acked_by = $2 WHERE id = $3 AND acked_at IS NULL AND resolved_at IS NULL",
        )
        .bind(ms(at))
        .bind(by)
        .bind(id)
        .execute(&self.inner.writer)
        .await
        .map_err(self.query_err("acknowledge alert"))?
        .rows_affected();
        self.change_of(n, "alerts", id).await
    }

    /// Marks an alert resolved by `by` at `at`.
    pub async fn resolve_alert_by(&self, id: Uuid, by: &str, at: DateTime<Utc>) -> Result<Change, StoreError> {
        let n =
            sqlx::query("UPDATE alerts SET resolved_at = $1, resolved_by = $2 WHERE id = $3 AND resolved_at IS NULL")
                .bind(ms(at))
                .bind(by)
                .bind(id)
                .execute(&self.inner.writer)
                .await
                .map_err(self.query_err("resolve alert"))?
                .rows_affected();
        self.change_of(n, "alerts", id).await
    }

    async fn change_of(&self, changed: u64, table: &'static str, id: Uuid) -> Result<Change, StoreError> {
        if changed > 0 {
            return Ok(Change::Done);
        }
        let sql = format!("SELECT 1 FROM {table} WHERE id = $1");
        // Alerts are keyed by UUID bytes, the API's own tables by UUID text.
        let q = if table == "alerts" { sqlx::query(&sql).bind(id) } else { sqlx::query(&sql).bind(id.to_string()) };
        let exists = q.fetch_optional(&self.inner.reader).await.map_err(self.query_err("read row"))?.is_some();
        Ok(if exists { Change::Already } else { Change::Missing })
    }

    /// Alerts per hour and severity for the hours starting at or after `since`.
    pub async fn alert_counts_by_hour(&self, since: DateTime<Utc>) -> Result<Vec<HourCount>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT hour, severity, SUM(n) FROM alert_hourly WHERE hour >= $1 GROUP BY hour, severity \
             HAVING SUM(n) > 0 ORDER BY hour, severity",
        )
        .bind(ms(since).div_euclid(3_600_000))
        .fetch_all(&self.inner.reader)
        .await
        .map_err(self.query_err("read alert counts"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(h, s, n)| {
                Some(HourCount {
                    hour: DateTime::from_timestamp_millis(h.checked_mul(3_600_000)?)?,
                    severity: *Severity::ALL.get(usize::try_from(s).ok()?)?,
                    count: u64::try_from(n).ok()?,
                })
            })
            .collect())
    }

    /// The categories with most alerts in the hours starting at or after `since`.
    pub async fn top_categories(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<CategoryCount>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT category, SUM(n) AS c FROM alert_hourly WHERE hour >= $1 GROUP BY category \
             HAVING c > 0 ORDER BY c DESC, category LIMIT $2",
        )
        .bind(ms(since).div_euclid(3_600_000))
        .bind(i64::from(limit.min(PAGE_LIMIT_MAX)))
        .fetch_all(&self.inner.reader)
        .await
        .map_err(self.query_err("read top categories"))?;
        Ok(rows
            .into_iter()
            .map(|(category, c)| CategoryCount { category, count: u64::try_from(c).unwrap_or(0) })
            .collect())
    }

    /// The source addresses named by most alerts in the hours starting at or after `since`.
    pub async fn top_sources(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<SourceCount>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT src_ip, SUM(n) AS c FROM alert_sources_hourly WHERE hour >= $1 GROUP BY src_ip \
             HAVING c > 0 ORDER BY c DESC, src_ip LIMIT $2",
        )
        .bind(ms(since).div_euclid(3_600_000))
        .bind(i64::from(limit.min(PAGE_LIMIT_MAX)))
        .fetch_all(&self.inner.reader)
        .await
        .map_err(self.query_err("read top sources"))?;
        Ok(rows.into_iter().map(|(src_ip, c)| SourceCount { src_ip, count: u64::try_from(c).unwrap_or(0) }).collect())
    }

    // ---- agents and metrics -------------------------------------------------------

    /// Every agent with its newest sample, in one query, ordered by id. (Newest by time
    /// only: the `(agent_id, ts)` index answers that without sorting each agent's rows.)
    pub async fn agents_with_latest(&self) -> Result<Vec<(AgentRow, Option<HostSample>)>, StoreError> {
        self.agents_json(true).await
    }

    /// Every known agent, ordered by id: what `list_agents` returns, read as one JSON value
    /// (much faster with many agents).
    pub async fn all_agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        Ok(self.agents_json(false).await?.into_iter().map(|(a, _)| a).collect())
    }

    async fn agents_json(&self, with_samples: bool) -> Result<Vec<(AgentRow, Option<HostSample>)>, StoreError> {
        let sample = if with_samples {
            "json(m.data))) FROM agents a LEFT JOIN metrics m ON m.id = \
             (SELECT id FROM metrics WHERE agent_id = a.id ORDER BY ts DESC LIMIT 1)"
        } else {
            "NULL)) FROM agents a"
        };
        // One row holding a JSON array: a thousand rows through the driver one by one
        // cost more than the query itself.
        let (text,): (Option<String>,) = sqlx::query_as(&format!(
            "SELECT json_group_array(json_object('id', a.id, 'first_seen', a.first_seen, 'last_seen', a.last_seen, \
             'last_addr', a.last_addr, 'hostname', a.hostname, 'os', a.os, 'version', a.version, \
             'interval_ms', a.interval_ms, 'spool_bytes', a.spool_bytes, 'spool_batches', a.spool_batches, \
             'dropped_samples', a.dropped_samples, 'dropped_alerts', a.dropped_alerts, 'sample', {sample}"
        ))
        .fetch_one(&self.inner.reader)
        .await
        .map_err(self.query_err("list agents"))?;
        let path = &self.inner.path;
        let corrupt = |id: &str, detail: String| StoreError::Corrupt {
            path: path.to_owned(),
            table: "agents",
            id: id.chars().take(80).collect(),
            detail,
        };
        let list: Vec<AgentJson> = serde_json::from_str(text.as_deref().unwrap_or("[]"))
            .map_err(|e| corrupt("*", format!("agent list does not read back: {e}")))?;
        let mut out = Vec::with_capacity(list.len());
        for a in list {
            let time = |col: &str, v: i64| {
                DateTime::from_timestamp_millis(v)
                    .ok_or_else(|| corrupt(&a.id, format!("column {col}: {v} is not a time")))
            };
            let count = |col: &str, v: i64| {
                u64::try_from(v).map_err(|_| corrupt(&a.id, format!("column {col}: {v} is negative")))
            };
            let row = AgentRow {
                id: AgentId::new(a.id.clone()).map_err(|e| corrupt(&a.id, format!("column id: {e}")))?,
                first_seen: time("first_seen", a.first_seen)?,
                last_seen: time("last_seen", a.last_seen)?,
                last_addr: a.last_addr.clone(),
                info: match a.hostname.clone() {
                    None => None,
                    Some(hostname) => Some(vigil_model::AgentInfo {
                        hostname,
                        os: a.os.clone().unwrap_or_default(),
                        version: a.version.clone().unwrap_or_default(),
                        interval_ms: a.interval_ms.map(|v| count("interval_ms", v)).transpose()?.unwrap_or(0),
                    }),
                },
                stats: vigil_model::AgentStats {
                    spool_bytes: count("spool_bytes", a.spool_bytes)?,
                    spool_batches: count("spool_batches", a.spool_batches)?,
                    dropped_samples: count("dropped_samples", a.dropped_samples)?,
                    dropped_alerts: count("dropped_alerts", a.dropped_alerts)?,
                },
            };
            out.push((row, a.sample));
        }
        out.sort_by(|x, y| x.0.id.as_str().cmp(y.0.id.as_str()));
        Ok(out)
    }

    /// The newest sample of `agent`, as [`sample_from_row`] reads it (kept for symmetry).
    pub async fn latest_point(&self, agent: &AgentId) -> Result<Option<MetricPoint>, StoreError> {
        let row = sqlx::query("SELECT id, data FROM metrics WHERE agent_id = $1 ORDER BY ts DESC LIMIT 1")
            .bind(agent.as_str())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("read latest sample"))?;
        Ok(row.map(|r| sample_from_row(&r, &self.inner.path)).transpose()?.map(|s| MetricPoint::from_sample(&s)))
    }

    /// The samples of `agent` in `[since, until)` averaged over buckets of `step_ms`,
    /// oldest first, at most `limit` buckets (capped at [`SERIES_LIMIT_MAX`]).
    pub async fn metric_series(
        &self,
        agent: &AgentId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        step_ms: i64,
        limit: u32,
    ) -> Result<Vec<MetricPoint>, StoreError> {
        let step = step_ms.max(1);
        let net = |field: &str| {
            format!(
                "(SELECT TOTAL(json_extract(v.value, '$.{field}')) FROM json_each(data, '$.networks') v \
                 WHERE json_extract(v.value, '$.name') != 'lo')"
            )
        };
        let sql = format!(
            "SELECT (ts / $1) * $1 AS b, COUNT(*) AS n, AVG(cpu_percent) AS cpu, AVG(memory_percent) AS mem, \
             AVG((SELECT MAX(json_extract(d.value, '$.used_percent')) FROM json_each(data, '$.disks') d)) AS disk, \
             AVG({}) AS rx_bps, AVG({}) AS tx_bps, AVG({}) AS rx_pps, AVG({}) AS tx_pps \
             FROM metrics WHERE agent_id = $2 AND ts >= $3 AND ts < $4 GROUP BY b ORDER BY b LIMIT $5",
            net("rx_bytes_per_sec"),
            net("tx_bytes_per_sec"),
            net("rx_packets_per_sec"),
            net("tx_packets_per_sec"),
        );
        let rows = sqlx::query(&sql)
            .bind(step)
            .bind(agent.as_str())
            .bind(ms(since))
            .bind(ms(until))
            .bind(i64::from(limit.clamp(1, SERIES_LIMIT_MAX)))
            .fetch_all(&self.inner.reader)
            .await
            .map_err(self.query_err("read metric series"))?;
        let f = |r: &SqliteRow, c: &str| {
            r.try_get::<Option<f64>, _>(c).ok().flatten().filter(|v| v.is_finite()).unwrap_or(0.0)
        };
        Ok(rows
            .iter()
            .filter_map(|r| {
                let b: i64 = r.try_get("b").ok()?;
                let n: i64 = r.try_get("n").ok()?;
                Some(MetricPoint {
                    t: DateTime::from_timestamp_millis(b)?,
                    n: u64::try_from(n).unwrap_or(0),
                    cpu: f(r, "cpu"),
                    mem: f(r, "mem"),
                    disk: f(r, "disk"),
                    rx_bps: f(r, "rx_bps"),
                    tx_bps: f(r, "tx_bps"),
                    rx_pps: f(r, "rx_pps"),
                    tx_pps: f(r, "tx_pps"),
                })
            })
            .collect())
    }

    // ---- blocks -------------------------------------------------------------------

    /// Stores a new block.
    pub async fn insert_block(&self, b: &BlockRow) -> Result<(), StoreError> {
        sqlx::query(&format!("INSERT INTO blocks ({BLOCK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(b.id.to_string())
            .bind(&b.target)
            .bind(&b.reason)
            .bind(ms(b.created_at))
            .bind(&b.created_by)
            .bind(ms(b.expires_at))
            .bind(b.removed_at.map(ms))
            .bind(&b.removed_by)
            .execute(&self.inner.writer)
            .await
            .map_err(self.query_err("insert block"))?;
        Ok(())
    }

    /// Blocks in force at `now` (or every block when `all`), newest first, at most `limit`.
    pub async fn blocks(&self, now: DateTime<Utc>, all: bool, limit: u32) -> Result<Vec<BlockRow>, StoreError> {
        let filter = if all { "1 = 1 OR $1 = 0" } else { "removed_at IS NULL AND expires_at > $1" };
        let rows = sqlx::query(&format!(
            "SELECT {BLOCK_COLS} FROM blocks WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(ms(now))
        .bind(i64::from(limit.clamp(1, PAGE_LIMIT_MAX)))
        .fetch_all(&self.inner.reader)
        .await
        .map_err(self.query_err("list blocks"))?;
        rows.iter().map(|r| block_from_row(r, &self.inner.path)).collect()
    }

    /// One block.
    pub async fn block(&self, id: Uuid) -> Result<Option<BlockRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {BLOCK_COLS} FROM blocks WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("read block"))?;
        row.map(|r| block_from_row(&r, &self.inner.path)).transpose()
    }

    /// Ends a block early.
    pub async fn remove_block(&self, id: Uuid, by: &str, at: DateTime<Utc>) -> Result<Change, StoreError> {
        let n = sqlx::query("UPDATE blocks SET removed_at = $1, removed_by = $2 WHERE id = $3 AND removed_at IS NULL")
            .bind(ms(at))
            .bind(by)
            .bind(id.to_string())
            .execute(&self.inner.writer)
            .await
            .map_err(self.query_err("remove block"))?
            .rows_affected();
        self.change_of(n, "blocks", id).await
    }

    // ---- silences -----------------------------------------------------------------

    /// Stores a new silence.
    pub async fn insert_silence(&self, s: &SilenceRow) -> Result<(), StoreError> {
        sqlx::query(&format!("INSERT INTO silences ({SILENCE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
            .bind(s.id.to_string())
            .bind(&s.category)
            .bind(&s.agent)
            .bind(&s.source)
            .bind(&s.comment)
            .bind(ms(s.created_at))
            .bind(&s.created_by)
            .bind(ms(s.expires_at))
            .bind(s.removed_at.map(ms))
            .bind(&s.removed_by)
            .execute(&self.inner.writer)
            .await
            .map_err(self.query_err("insert silence"))?;
        Ok(())
    }

    /// Silences in force at `now` (or every silence when `all`), newest first.
    pub async fn silences(&self, now: DateTime<Utc>, all: bool, limit: u32) -> Result<Vec<SilenceRow>, StoreError> {
        let filter = if all { "1 = 1 OR $1 = 0" } else { "removed_at IS NULL AND expires_at > $1" };
        let rows = sqlx::query(&format!(
            "SELECT {SILENCE_COLS} FROM silences WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(ms(now))
        .bind(i64::from(limit.clamp(1, PAGE_LIMIT_MAX)))
        .fetch_all(&self.inner.reader)
        .await
        .map_err(self.query_err("list silences"))?;
        rows.iter().map(|r| silence_from_row(r, &self.inner.path)).collect()
    }

    /// One silence.
    pub async fn silence(&self, id: Uuid) -> Result<Option<SilenceRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SILENCE_COLS} FROM silences WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("read silence"))?;
        row.map(|r| silence_from_row(&r, &self.inner.path)).transpose()
    }

    /// Ends a silence early.
    pub async fn remove_silence(&self, id: Uuid, by: &str, at: DateTime<Utc>) -> Result<Change, StoreError> {
        let n =
            sqlx::query("UPDATE silences SET removed_at = $1, removed_by = $2 WHERE id = $3 AND removed_at IS NULL")
                .bind(ms(at))
                .bind(by)
                .bind(id.to_string())
                .execute(&self.inner.writer)
                .await
                .map_err(self.query_err("remove silence"))?
                .rows_affected();
        self.change_of(n, "silences", id).await
    }

    // ---- audit --------------------------------------------------------------------

    /// Appends one entry (its `id` is ignored and assigned); returns the id.
    pub async fn insert_audit(&self, e: &AuditEntry) -> Result<i64, StoreError> {
        let res = sqlx::query(
            "INSERT INTO audit_log (ts, actor_key, actor_name, role, via, client, method, path, status, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(ms(e.ts))
        .bind(&e.actor_key)
        .bind(&e.actor_name)
        .bind(&e.role)
        .bind(&e.via)
        .bind(&e.client)
        .bind(&e.method)
        .bind(&e.path)
        .bind(i64::from(e.status))
        .bind(&e.detail)
        .execute(&self.inner.writer)
        .await
        .map_err(self.query_err("write audit log"))?;
        Ok(res.last_insert_rowid())
    }

    /// Audit entries with an id below `before` (all when `None`), newest first, at most
    /// `limit`; only those of `actor` (key name) when given.
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        actor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {AUDIT_COLS} FROM audit_log WHERE 1 = 1"));
        if let Some(b) = before {
            qb.push(" AND id < ").push_bind(b);
        }
        if let Some(a) = actor {
            qb.push(" AND actor_name = ").push_bind(a.to_owned());
        }
        qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit.clamp(1, PAGE_LIMIT_MAX)));
        let rows = qb.build().fetch_all(&self.inner.reader).await.map_err(self.query_err("read audit log"))?;
        rows.iter().map(|r| audit_from_row(r, &self.inner.path)).collect()
    }

    // ---- sessions -----------------------------------------------------------------

    /// Stores a new session.
    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, key_id, created_at, expires_at, client) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.id_hash[..])
        .bind(&s.key_id)
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .bind(&s.client)
        .execute(&self.inner.writer)
        .await
        .map_err(self.query_err("insert session"))?;
        Ok(())
    }

    /// The session with this hash, if it exists and has not lapsed at `now`.
    pub async fn session(&self, id_hash: &[u8; 32], now: DateTime<Utc>) -> Result<Option<SessionRow>, StoreError> {
        let row: Option<(String, i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT key_id, created_at, expires_at, client FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(&id_hash[..])
        .bind(ms(now))
        .fetch_optional(&self.inner.reader)
        .await
        .map_err(self.query_err("read session"))?;
        Ok(row.and_then(|(key_id, c, e, client)| {
            Some(SessionRow {
                id_hash: *id_hash,
                key_id,
                created_at: DateTime::from_timestamp_millis(c)?,
                expires_at: DateTime::from_timestamp_millis(e)?,
                client,
            })
        }))
    }

    /// Deletes one session (logout). Returns whether it existed.
    pub async fn delete_session(&self, id_hash: &[u8; 32]) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(&id_hash[..])
            .execute(&self.inner.writer)
            .await
            .map_err(self.query_err("delete session"))?
            .rows_affected();
        Ok(n > 0)
    }

    /// Deletes lapsed sessions; returns how many.
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(&self.inner.writer)
            .await
            .map_err(self.query_err("delete expired sessions"))?
            .rows_affected())
    }

    /// Deletes every session opened with `key_id` (its key was revoked).
    pub async fn delete_sessions_of_key(&self, key_id: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE key_id = $1")
            .bind(key_id)
            .execute(&self.inner.writer)
            .await
            .map_err(self.query_err("delete sessions"))?
            .rows_affected())
    }

    // ---- incidents ----------------------------------------------------------------

    /// Inserts an incident or replaces the stored one with the same id (`opened_at` is
    /// kept from the first insert).
    pub async fn upsert_incident(&self, i: &IncidentRow) -> Result<(), StoreError> {
        let path = &self.inner.path;
        let enc = |what: &'static str, r: Result<String, serde_json::Error>| {
            r.map_err(|source| StoreError::Encode { path: path.to_owned(), what, id: i.id.to_string(), source })
        };
        let ids = enc("incident alert ids", serde_json::to_string(&i.alert_ids))?;
        let evidence = enc("incident evidence", serde_json::to_string(&i.evidence))?;
        sqlx::query(&format!(
            "INSERT INTO incidents ({INCIDENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, status = excluded.status, \
             severity = excluded.severity, title = excluded.title, category = excluded.category, \
             target = excluded.target, alert_ids = excluded.alert_ids, evidence = excluded.evidence"
        ))
        .bind(i.id.to_string())
        .bind(ms(i.opened_at))
        .bind(ms(i.updated_at))
        .bind(i.status.as_str())
        .bind(severity_rank(i.severity))
        .bind(&i.title)
        .bind(&i.category)
        .bind(&i.target)
        .bind(ids)
        .bind(evidence)
        .execute(&self.inner.writer)
        .await
        .map_err(self.query_err("store incident"))?;
        Ok(())
    }

    /// Incidents matching `f`, most recently updated first.
    pub async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<IncidentRow>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {INCIDENT_COLS} FROM incidents WHERE 1 = 1"));
        if let Some(s) = f.status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some((t, id)) = f.before {
            qb.push(" AND (updated_at < ").push_bind(ms(t));
            qb.push(" OR (updated_at = ").push_bind(ms(t));
            qb.push(" AND id < ").push_bind(id.to_string());
            qb.push("))");
        }
        qb.push(" ORDER BY updated_at DESC, id DESC LIMIT ").push_bind(i64::from(f.limit.clamp(1, PAGE_LIMIT_MAX)));
        let rows = qb.build().fetch_all(&self.inner.reader).await.map_err(self.query_err("list incidents"))?;
        rows.iter().map(|r| incident_from_row(r, &self.inner.path)).collect()
    }

    /// One incident.
    pub async fn incident(&self, id: Uuid) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("read incident"))?;
        row.map(|r| incident_from_row(&r, &self.inner.path)).transpose()
    }

    /// How many incidents are in `status`.
    pub async fn incident_count(&self, status: IncidentStatus) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM incidents WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&self.inner.reader)
            .await
            .map_err(self.query_err("count incidents"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Alerts with these ids (unknown ids skipped), newest first.
    pub async fn alerts_by_id(&self, ids: &[Uuid]) -> Result<Vec<AlertView>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {ALERT_COLS}{VIEW_EXTRA} FROM alerts WHERE id IN ("));
        let mut sep = qb.separated(", ");
        for id in ids.iter().take(PAGE_LIMIT_MAX as usize) {
            sep.push_bind(*id);
        }
        qb.push(") ORDER BY ts DESC, id DESC");
        let rows = qb.build().fetch_all(&self.inner.reader).await.map_err(self.query_err("read alerts"))?;
        rows.iter().map(|r| view_from_row(r, &self.inner.path)).collect()
    }

    /// The newest network statistics of each agent taken at or after `since`, one query.
    pub async fn latest_netstats(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(AgentId, vigil_model::NetStats)>, StoreError> {
        let (text,): (Option<String>,) = sqlx::query_as(
            "SELECT json_group_array(json_array(a.id, json(n.data))) FROM agents a JOIN netstats n ON n.id = \
             (SELECT id FROM netstats WHERE agent_id = a.id AND ts >= $1 ORDER BY ts DESC LIMIT 1)",
        )
        .bind(ms(since))
        .fetch_one(&self.inner.reader)
        .await
        .map_err(self.query_err("read latest netstats"))?;
        let bad = |detail: String| StoreError::Corrupt {
            path: self.inner.path.clone(),
            table: "netstats",
            id: "*".into(),
            detail,
        };
        let list: Vec<(String, vigil_model::NetStats)> =
            serde_json::from_str(text.as_deref().unwrap_or("[]")).map_err(|e| bad(format!("column data: {e}")))?;
        let mut out = list
            .into_iter()
            .map(|(id, stats)| Ok((AgentId::new(id).map_err(|e| bad(format!("agent id: {e}")))?, stats)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
        Ok(out)
    }

    /// Connections of the reader and writer pools in use and idle, for `/metrics`.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            writer_size: self.inner.writer.size(),
            writer_idle: u32::try_from(self.inner.writer.num_idle()).unwrap_or(u32::MAX),
            reader_size: self.inner.reader.size(),
            reader_idle: u32::try_from(self.inner.reader.num_idle()).unwrap_or(u32::MAX),
        }
    }
}

/// One agent as `agents_with_latest` reads it back from SQLite's JSON.
#[derive(Deserialize)]
struct AgentJson {
    id: String,
    first_seen: i64,
    last_seen: i64,
    last_addr: Option<String>,
    hostname: Option<String>,
    os: Option<String>,
    version: Option<String>,
    interval_ms: Option<i64>,
    spool_bytes: i64,
    spool_batches: i64,
    dropped_samples: i64,
    dropped_alerts: i64,
    sample: Option<HostSample>,
}

/// Connection pool figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Writer connections open.
    pub writer_size: u32,
    /// Writer connections idle.
    pub writer_idle: u32,
    /// Reader connections open.
    pub reader_size: u32,
    /// Reader connections idle.
    pub reader_idle: u32,
}

fn view_from_row(row: &SqliteRow, path: &std::path::Path) -> Result<AlertView, StoreError> {
    let stored = alert_from_row(row, path)?;
    let c = Cells { row, path, table: "alerts", id: stored.alert.id.to_string() };
    let acked_at = c.opt_time("acked_at")?;
    let status = if stored.resolved_at.is_some() {
        AlertStatus::Resolved
    } else if acked_at.is_some() {
        AlertStatus::Acknowledged
    } else {
        AlertStatus::Open
    };
    Ok(AlertView { status, acked_at, acked_by: c.get("acked_by")?, resolved_by: c.get("resolved_by")?, stored })
}

fn uuid_text(c: &Cells<'_>) -> Result<Uuid, StoreError> {
    let s: String = c.get("id")?;
    Uuid::parse_str(&s).map_err(|_| c.bad("column id is not a UUID"))
}

fn block_from_row(row: &SqliteRow, path: &std::path::Path) -> Result<BlockRow, StoreError> {
    let c = Cells::text_id(row, path, "blocks");
    Ok(BlockRow {
        id: uuid_text(&c)?,
        target: c.get("target")?,
        reason: c.get("reason")?,
        created_at: c.time("created_at")?,
        created_by: c.get("created_by")?,
        expires_at: c.time("expires_at")?,
        removed_at: c.opt_time("removed_at")?,
        removed_by: c.get("removed_by")?,
    })
}

fn silence_from_row(row: &SqliteRow, path: &std::path::Path) -> Result<SilenceRow, StoreError> {
    let c = Cells::text_id(row, path, "silences");
    Ok(SilenceRow {
        id: uuid_text(&c)?,
        category: c.get("category")?,
        agent: c.get("agent_id")?,
        source: c.get("source")?,
        comment: c.get("comment")?,
        created_at: c.time("created_at")?,
        created_by: c.get("created_by")?,
        expires_at: c.time("expires_at")?,
        removed_at: c.opt_time("removed_at")?,
        removed_by: c.get("removed_by")?,
    })
}

fn audit_from_row(row: &SqliteRow, path: &std::path::Path) -> Result<AuditEntry, StoreError> {
    let id: i64 = row.try_get("id").unwrap_or(0);
    let c = Cells { row, path, table: "audit_log", id: id.to_string() };
    let status: i64 = c.get("status")?;
    Ok(AuditEntry {
        id,
        ts: c.time("ts")?,
        actor_key: c.get("actor_key")?,
        actor_name: c.get("actor_name")?,
        role: c.get("role")?,
        via: c.get("via")?,
        client: c.get("client")?,
        method: c.get("method")?,
        path: c.get("path")?,
        status: u16::try_from(status).map_err(|_| c.bad(format!("column status: {status} is not an HTTP status")))?,
        detail: c.get("detail")?,
    })
}

fn incident_from_row(row: &SqliteRow, path: &std::path::Path) -> Result<IncidentRow, StoreError> {
    let c = Cells::text_id(row, path, "incidents");
    let status: String = c.get("status")?;
    let rank: i64 = c.get("severity")?;
    let ids: String = c.get("alert_ids")?;
    let evidence: String = c.get("evidence")?;
    Ok(IncidentRow {
        id: uuid_text(&c)?,
        opened_at: c.time("opened_at")?,
        updated_at: c.time("updated_at")?,
        status: IncidentStatus::parse(&status).ok_or_else(|| c.bad(format!("column status: {status:?}")))?,
        severity: usize::try_from(rank)
            .ok()
            .and_then(|i| Severity::ALL.get(i).copied())
            .ok_or_else(|| c.bad(format!("column severity: {rank} is not 0 to 4")))?,
        title: c.get("title")?,
        category: c.get("category")?,
        target: c.get("target")?,
        alert_ids: serde_json::from_str(&ids).map_err(|e| c.bad(format!("column alert_ids: {e}")))?,
        evidence: serde_json::from_str(&evidence).map_err(|e| c.bad(format!("column evidence: {e}")))?,
    })
}

#[cfg(test)]
mod tests;
