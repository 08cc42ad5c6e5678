//! Server storage for vigil, on SQLite through sqlx.
//!
//! **Owns** the database schema (embedded migrations under `migrations/`, applied by
//! [`Store::open`]), idempotent ingest of the items an agent sends, server-raised alerts,
//! the queries the API and dashboard run, API key rows and retention. Metrics and alerts
//! are keyed by their UUID, so a batch resent after a lost reply is counted as duplicates
//! and never stored twice.
//!
//! **Must not** open sealed messages, check replay windows, decide what is an attack, hash
//! API keys or keep state outside the database: callers verify and validate, the store
//! records. The replay state is an opaque blob saved in the same transaction as the items
//! it admitted, so the two cannot disagree after a crash. Callers must not ingest two
//! batches of one agent concurrently (the server serializes per agent).
//!
//! **Threads**: async, on the server's tokio runtime. sqlx runs each SQLite connection on
//! its own worker thread, so no call blocks an async worker. Writes go through a pool of
//! one connection: SQLite admits one writer at a time, and waiting for the pool is async
//! and fair where waiting on SQLite's lock would hold a connection thread. Reads go through
//! a small pool of their own, which WAL lets run beside the writer.
//!
//! Times are stored as unix milliseconds. Queries are built at run time (no
//! `DATABASE_URL` at build time) in SQL kept close to what PostgreSQL also accepts.

mod api;
mod error;
mod netstats;
mod pipeline_state;

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;
use vigil_model::{AgentId, AgentInfo, AgentStats, Alert, AlertResolved, Category, HostSample, Item, Severity};

pub use api::{
    AlertCursor, AlertFilter, AlertStatus, AlertView, AuditEntry, BlockRow, CategoryCount, Change, HourCount,
    IncidentFilter, IncidentRow, IncidentStatus, MetricPoint, PAGE_LIMIT_MAX, PoolStats, SERIES_LIMIT_MAX, SessionRow,
    SilenceRow, SourceCount,
};
pub use error::StoreError;
pub use pipeline_state::SavedPipelineState;

/// Most samples one [`Store::metrics`] call returns.
pub const METRICS_LIMIT_MAX: u32 = 10_000;
/// Alerts one [`Store::alerts`] call returns when the query names no limit.
pub const ALERTS_LIMIT_DEFAULT: u32 = 100;
/// Most alerts one [`Store::alerts`] call returns.
pub const ALERTS_LIMIT_MAX: u32 = 1000;
/// Most rows one retention statement deletes, so a writer never waits long behind it.
pub const RETENTION_CHUNK: u32 = 5000;

/// How long a connection waits on a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a free connection of its pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections of the reader pool.
const READERS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Handle on the server database. Cheap to clone; clones share the connection pools.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// One connection: every write goes through it.
    writer: SqlitePool,
    /// A few connections for reads.
    reader: SqlitePool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

/// One verified batch of items from one agent, ready to store.
#[derive(Debug, Clone, Copy)]
pub struct IngestBatch<'a> {
    /// The agent that sent it (already checked against its certificate and seal).
    pub agent: &'a AgentId,
    /// Address the batch came from (`ip:port` of the agent or relay).
    pub peer: &'a str,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// The agent's replay state after admitting this batch, saved in the same transaction.
    pub replay_state: &'a [u8],
    /// The items, applied in order.
    pub items: &'a [Item],
}

/// What [`Store::ingest`] did with a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Samples stored.
    pub samples: u32,
    /// Alerts stored.
    pub alerts: u32,
    /// Samples and alerts whose id was already stored (a resent batch), not stored again.
    pub duplicates: u32,
    /// Alerts marked resolved.
    pub resolved: u32,
}

/// One agent as the server knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRow {
    /// The agent's id.
    pub id: AgentId,
    /// When its first batch was stored.
    pub first_seen: DateTime<Utc>,
    /// When its latest batch was stored (server clock).
    pub last_seen: DateTime<Utc>,
    /// Address its latest batch came from.
    pub last_addr: Option<String>,
    /// What its latest heartbeat said; `None` before the first heartbeat.
    pub info: Option<AgentInfo>,
    /// Its latest reported counters; zero before the first report.
    pub stats: AgentStats,
}

/// Filters for [`Store::alerts`]. Every filter is optional; all given ones must hold.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AlertQuery {
    /// Alerts observed at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Alerts observed strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Alerts of this category.
    pub category: Option<Category>,
    /// Alerts of this severity or above.
    pub severity: Option<Severity>,
    /// Alerts of this agent.
    pub agent: Option<AgentId>,
    /// At most this many ([`ALERTS_LIMIT_DEFAULT`] when unset, capped at [`ALERTS_LIMIT_MAX`]).
    pub limit: Option<u32>,
}

/// An alert as stored, with what the server added on receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// The alert itself.
    #[serde(flatten)]
    pub alert: Alert,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// When its condition cleared, if it has.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Address it came from; `None` for alerts the server raised without a peer.
    pub peer_addr: Option<String>,
}

/// One API key. Only a SHA-256 hash of the secret is stored; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Public key id (the part of the key that is not secret).
    pub id: String,
    /// Human label.
    pub name: String,
    /// Role granted, e.g. `admin` or `read`.
    pub role: String,
    /// SHA-256 of the secret part.
    pub hash: [u8; 32],
    /// When the key was made.
    pub created_at: DateTime<Utc>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ApiKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// What [`Store::apply_retention`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Metric samples and network statistics intervals deleted.
    pub metrics_deleted: u64,
    /// Alerts deleted.
    pub alerts_deleted: u64,
}

impl Store {
    /// Opens the database at `path`, creating the file if missing (its directory must
    /// exist), with WAL journaling, `synchronous = NORMAL`, foreign keys on and a 5 s busy
    /// timeout, and applies any pending migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(StoreError::NoParentDir { path: path.to_owned(), dir: dir.to_owned() });
        }
        if path.is_dir() {
            return Err(StoreError::IsDirectory { path: path.to_owned() });
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let open_err = |source| StoreError::Open { path: path.to_owned(), source };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts.clone())
            .await
            .map_err(open_err)?;
        if let Err(e) = MIGRATOR.run(&writer).await {
            writer.close().await;
            return Err(match e {
                sqlx::migrate::MigrateError::VersionMissing(version) => {
                    StoreError::NewerSchema { path: path.to_owned(), version }
                }
                source => StoreError::Migrate { path: path.to_owned(), source },
            });
        }
        let reader = match SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                writer.close().await;
                return Err(open_err(e));
            }
        };
        tracing::debug!(path = %path.display(), "database open");
        Ok(Store { inner: Arc::new(Inner { path: path.to_owned(), writer, reader }) })
    }

    /// Closes the store: waits for calls in progress to finish, then closes every
    /// connection. Later calls (on any clone) fail.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.reader.close().await;
    }

    /// The database file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The replay state last saved for `agent`, if any.
    pub async fn load_replay_state(&self, agent: &AgentId) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as("SELECT replay_state FROM agents WHERE id = $1")
            .bind(agent.as_str())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("load replay state"))?;
        Ok(row.and_then(|(state,)| state))
    }

    /// Stores one batch in one transaction: upserts the agent (`first_seen` on insert,
    /// `last_seen` = `received_at`, `last_addr` = `peer`), saves the replay state, then
    /// applies every item in order. A sample or alert whose id is already stored counts as
    /// a duplicate. Alerts get `agent` = the batch's agent whatever they say. A
    /// `Resolved` item marks its alert resolved only if that alert belongs to this agent and
    /// is not resolved yet. Non-finite numbers in a sample (which JSON cannot carry) are
    /// stored as 0.
    pub async fn ingest(&self, batch: &IngestBatch<'_>) -> Result<IngestOutcome, StoreError> {
        const OP: &str = "ingest";
        let path = &self.inner.path;
        let received = ms(batch.received_at);
        let agent = batch.agent.as_str();
        let mut tx = self.inner.writer.begin().await.map_err(self.query_err(OP))?;
        sqlx::query(
            "INSERT INTO agents (id, first_seen, last_seen, last_addr, replay_state) \
             VALUES ($1, $2, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, \
             last_addr = excluded.last_addr, replay_state = excluded.replay_state",
        )
        .bind(agent)
        .bind(received)
        .bind(batch.peer)
        .bind(batch.replay_state)
        .execute(&mut *tx)
        .await
        .map_err(self.query_err(OP))?;

        let mut out = IngestOutcome::default();
        for item in batch.items {
            match item {
                Item::Sample(s) => {
                    if insert_sample(&mut tx, path, batch.agent, s).await? {
                        out.samples = out.samples.saturating_add(1);
                    } else {
                        out.duplicates = out.duplicates.saturating_add(1);
                    }
                }
                Item::Alert(a) => {
                    let row = AlertInsert {
                        alert: a,
                        agent: Some(agent),
                        peer_addr: Some(batch.peer),
                        received_at: received,
                    };
                    if insert_alert(&mut tx, path, &row).await? {
                        out.alerts = out.alerts.saturating_add(1);
                    } else {
                        out.duplicates = out.duplicates.saturating_add(1);
                    }
                }
                Item::Resolved(r) => {
                    let n = resolve_alert(&mut tx, path, agent, r).await?;
                    out.resolved = out.resolved.saturating_add(n);
                }
                Item::Heartbeat(info) => {
                    sqlx::query(
                        "UPDATE agents SET hostname = $1, os = $2, version = $3, interval_ms = $4 \
                         WHERE id = $5",
                    )
                    .bind(&info.hostname)
                    .bind(&info.os)
                    .bind(&info.version)
                    .bind(to_i64(info.interval_ms))
                    .bind(agent)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(path, OP))?;
                }
                Item::NetStats(n) => {
                    if !netstats::insert_netstats(&mut tx, path, batch.agent, n).await? {
                        out.duplicates = out.duplicates.saturating_add(1);
                    }
                }
                Item::Stats(st) => {
                    sqlx::query(
                        "UPDATE agents SET spool_bytes = $1, spool_batches = $2, \
                         dropped_samples = $3, dropped_alerts = $4 WHERE id = $5",
                    )
                    .bind(to_i64(st.spool_bytes))
                    .bind(to_i64(st.spool_batches))
                    .bind(to_i64(st.dropped_samples))
                    .bind(to_i64(st.dropped_alerts))
                    .bind(agent)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(path, OP))?;
                }
            }
        }
        tx.commit().await.map_err(self.query_err(OP))?;
        Ok(out)
    }

    /// Stores an alert the server raised itself (`integrity_failure`, `replay_attempt`,
    /// correlations...), with its `agent` as given. Returns `false` if its id was already
    /// stored.
    pub async fn insert_alert(
        &self,
        alert: &Alert,
        peer_addr: Option<&str>,
        received_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.inner.writer.acquire().await.map_err(self.query_err("insert alert"))?;
        let row = AlertInsert {
            alert,
            agent: alert.agent.as_ref().map(AgentId::as_str),
            peer_addr,
            received_at: ms(received_at),
        };
        insert_alert(&mut conn, &self.inner.path, &row).await
    }

    /// Every known agent, ordered by id.
    pub async fn list_agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {AGENT_COLS} FROM agents ORDER BY id"))
            .fetch_all(&self.inner.reader)
            .await
            .map_err(self.query_err("list agents"))?;
        rows.iter().map(|r| agent_from_row(r, &self.inner.path)).collect()
    }

    /// One agent, if known.
    pub async fn get_agent(&self, id: &AgentId) -> Result<Option<AgentRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {AGENT_COLS} FROM agents WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("get agent"))?;
        row.map(|r| agent_from_row(&r, &self.inner.path)).transpose()
    }

    /// Samples of one agent taken at `since <= timestamp < until` (either bound optional),
    /// oldest first, at most `limit` (capped at [`METRICS_LIMIT_MAX`]).
    pub async fn metrics(
        &self,
        id: &AgentId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<HostSample>, StoreError> {
        let rows = self.series_rows("metrics", "read metrics", id, since, until, limit).await?;
        rows.iter().map(|r| sample_from_row(r, &self.inner.path)).collect()
    }

    /// `id, data` rows of one agent's time series in `table` (`metrics` or `netstats`; `op`
    /// names the read in errors) at
    /// `since <= ts < until`, oldest first, at most `limit` (capped at [`METRICS_LIMIT_MAX`]).
    pub(crate) async fn series_rows(
        &self,
        table: &'static str,
        op: &'static str,
        id: &AgentId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<SqliteRow>, StoreError> {
        let limit = limit.min(METRICS_LIMIT_MAX);
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT id, data FROM {table} WHERE agent_id = "));
        qb.push_bind(id.as_str());
        if let Some(t) = since {
            qb.push(" AND ts >= ").push_bind(ms(t));
        }
        if let Some(t) = until {
            qb.push(" AND ts < ").push_bind(ms(t));
        }
        qb.push(" ORDER BY ts, id LIMIT ").push_bind(i64::from(limit));
        qb.build().fetch_all(&self.inner.reader).await.map_err(self.query_err(op))
    }

    /// The newest sample of one agent, if it has any.
    pub async fn latest_sample(&self, id: &AgentId) -> Result<Option<HostSample>, StoreError> {
        let row = sqlx::query("SELECT id, data FROM metrics WHERE agent_id = $1 ORDER BY ts DESC, id DESC LIMIT 1")
            .bind(id.as_str())
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("read latest sample"))?;
        row.map(|r| sample_from_row(&r, &self.inner.path)).transpose()
    }

    /// Alerts matching `q`, newest first.
    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<StoredAlert>, StoreError> {
        let limit = q.limit.unwrap_or(ALERTS_LIMIT_DEFAULT).min(ALERTS_LIMIT_MAX);
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {ALERT_COLS} FROM alerts WHERE 1 = 1"));
        if let Some(t) = q.since {
            qb.push(" AND ts >= ").push_bind(ms(t));
        }
        if let Some(t) = q.until {
            qb.push(" AND ts < ").push_bind(ms(t));
        }
        if let Some(c) = q.category {
            qb.push(" AND category = ").push_bind(c.as_str());
        }
        if let Some(s) = q.severity {
            qb.push(" AND severity >= ").push_bind(severity_rank(s));
        }
        if let Some(a) = &q.agent {
            qb.push(" AND agent_id = ").push_bind(a.as_str());
        }
        qb.push(" ORDER BY ts DESC, id DESC LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.inner.reader).await.map_err(self.query_err("read alerts"))?;
        rows.iter().map(|r| alert_from_row(r, &self.inner.path)).collect()
    }

    /// Stores a new API key. Fails with [`StoreError::ApiKeyExists`] if the id is taken.
    pub async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<(), StoreError> {
        let res = sqlx::query(
            "INSERT INTO api_keys (id, name, role, hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.role)
        .bind(&key.hash[..])
        .bind(ms(key.created_at))
        .bind(key.revoked_at.map(ms))
        .execute(&self.inner.writer)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                Err(StoreError::ApiKeyExists { path: self.inner.path.clone(), id: key.id.clone() })
            }
            Err(e) => Err(query_err(&self.inner.path, "insert api key")(e)),
        }
    }

    /// One API key by id, revoked or not.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {API_KEY_COLS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("read api key"))?;
        row.map(|r| api_key_from_row(&r, &self.inner.path)).transpose()
    }

    /// Every API key, revoked ones included, ordered by creation time.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {API_KEY_COLS} FROM api_keys ORDER BY created_at, id"))
            .fetch_all(&self.inner.reader)
            .await
            .map_err(self.query_err("list api keys"))?;
        rows.iter().map(|r| api_key_from_row(r, &self.inner.path)).collect()
    }

    /// Marks an API key revoked at `at`. Returns `false` if no such key exists or it was
    /// already revoked (the first revocation time is kept).
    pub async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let res = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(ms(at))
            .bind(id)
            .execute(&self.inner.writer)
            .await
            .map_err(self.query_err("revoke api key"))?;
        Ok(res.rows_affected() > 0)
    }

    /// How many API keys were ever stored, revoked ones included (so revoking every key
    /// does not look like a fresh install).
    pub async fn api_key_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.inner.reader)
            .await
            .map_err(self.query_err("count api keys"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes samples taken before `metrics_before` and alerts observed before
    /// `alerts_before`, at most [`RETENTION_CHUNK`] rows per statement, each in its own
    /// transaction, so ingest waits for at most one chunk.
    pub async fn apply_retention(
        &self,
        metrics_before: DateTime<Utc>,
        alerts_before: DateTime<Utc>,
    ) -> Result<RetentionReport, StoreError> {
        self.apply_retention_chunked(metrics_before, alerts_before, RETENTION_CHUNK).await
    }

    async fn apply_retention_chunked(
        &self,
        metrics_before: DateTime<Utc>,
        alerts_before: DateTime<Utc>,
        chunk: u32,
    ) -> Result<RetentionReport, StoreError> {
        let report = RetentionReport {
            metrics_deleted: self.delete_older("metrics", ms(metrics_before), chunk).await?
                + self.delete_older("netstats", ms(metrics_before), chunk).await?,
            alerts_deleted: self.delete_older("alerts", ms(alerts_before), chunk).await?,
        };
        tracing::debug!(metrics = report.metrics_deleted, alerts = report.alerts_deleted, "retention applied");
        Ok(report)
    }

    /// `table` is one of our own table names, never input.
    async fn delete_older(&self, table: &'static str, before: i64, chunk: u32) -> Result<u64, StoreError> {
        let chunk = u64::from(chunk.max(1));
        let sql = format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE ts < $1 LIMIT $2)");
        let mut total = 0u64;
        loop {
            // Each statement takes the writer anew: ingest waiting for it goes in between.
            let n = sqlx::query(&sql)
                .bind(before)
                .bind(to_i64(chunk))
                .execute(&self.inner.writer)
                .await
                .map_err(self.query_err("apply retention"))?
                .rows_affected();
            total = total.saturating_add(n);
            if n < chunk {
                return Ok(total);
            }
        }
    }

    /// Size of the main database file, `page_count * page_size` (the WAL file not included).
    pub async fn size_bytes(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
            .fetch_one(&self.inner.reader)
            .await
            .map_err(self.query_err("read database size"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn query_err(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        query_err(&self.inner.path, op)
    }
}

fn query_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + 'a {
    move |source| StoreError::Query { path: path.to_owned(), op, source }
}

// ---- writes -------------------------------------------------------------------------

/// Inserts one sample; `false` if its id was already stored.
async fn insert_sample(
    conn: &mut SqliteConnection,
    path: &Path,
    agent: &AgentId,
    sample: &HostSample,
) -> Result<bool, StoreError> {
    let s = finite_sample(sample);
    let data = serde_json::to_string(&*s).map_err(|source| StoreError::Encode {
        path: path.to_owned(),
        what: "sample",
        id: s.id.to_string(),
        source,
    })?;
    let res = sqlx::query(
        "INSERT INTO metrics (id, agent_id, ts, boot_epoch, idx, cpu_percent, memory_percent, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(s.id)
    .bind(agent.as_str())
    .bind(ms(s.timestamp))
    .bind(to_i64(s.boot_epoch))
    .bind(to_i64(s.index))
    .bind(f64::from(s.cpu_percent))
    .bind(f64::from(s.memory_percent))
    .bind(data)
    .execute(&mut *conn)
    .await
    .map_err(query_err(path, "ingest"))?;
    Ok(res.rows_affected() > 0)
}

/// An alert row to insert: the alert and what the server adds.
struct AlertInsert<'a> {
    alert: &'a Alert,
    agent: Option<&'a str>,
    peer_addr: Option<&'a str>,
    received_at: i64,
}

/// Inserts one alert; `false` if its id was already stored.
async fn insert_alert(conn: &mut SqliteConnection, path: &Path, row: &AlertInsert<'_>) -> Result<bool, StoreError> {
    let a = row.alert;
    let evidence = serde_json::to_string(&a.evidence).map_err(|source| StoreError::Encode {
        path: path.to_owned(),
        what: "alert evidence",
        id: a.id.to_string(),
        source,
    })?;
    let res = sqlx::query(
        "INSERT INTO alerts (id, ts, received_at, category, severity, agent_id, src_ip, dst_ip, \
         src_port, dst_port, src_mac, summary, evidence, mitre, peer_addr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(a.id)
    .bind(ms(a.timestamp))
    .bind(row.received_at)
    .bind(a.category.as_str())
    .bind(severity_rank(a.severity))
    .bind(row.agent)
    .bind(a.src_ip.map(|ip| ip.to_string()))
    .bind(a.dst_ip.map(|ip| ip.to_string()))
    .bind(a.src_port.map(i64::from))
    .bind(a.dst_port.map(i64::from))
    .bind(a.src_mac.as_deref())
    .bind(&a.summary)
    .bind(evidence)
    .bind(a.mitre.as_deref())
    .bind(row.peer_addr)
    .execute(&mut *conn)
    .await
    .map_err(query_err(path, "store alert"))?;
    Ok(res.rows_affected() > 0)
}

/// Marks an alert of `agent` resolved; returns how many rows changed (0 or 1).
async fn resolve_alert(
    conn: &mut SqliteConnection,
    path: &Path,
    agent: &str,
    r: &AlertResolved,
) -> Result<u32, StoreError> {
    let res = sqlx::query("UPDATE alerts SET resolved_at = $1 WHERE id = $2 AND agent_id = $3 AND resolved_at IS NULL")
        .bind(ms(r.at))
        .bind(r.alert_id)
        .bind(agent)
        .execute(&mut *conn)
        .await
        .map_err(query_err(path, "ingest"))?;
    Ok(u32::try_from(res.rows_affected()).unwrap_or(u32::MAX))
}

/// The sample with every NaN or infinity replaced by 0: JSON writes them as `null`, which
/// would not read back as a number.
fn finite_sample(s: &HostSample) -> Cow<'_, HostSample> {
    let all_finite = s.cpu_percent.is_finite()
        && s.memory_percent.is_finite()
        && s.cpu_per_core.iter().all(|x| x.is_finite())
        && s.load_average.iter().all(|x| x.is_finite())
        && s.disks.iter().all(|d| d.used_percent.is_finite())
        && s.networks.iter().all(|n| {
            [n.rx_bytes_per_sec, n.tx_bytes_per_sec, n.rx_packets_per_sec, n.tx_packets_per_sec]
                .iter()
                .all(|x| x.is_finite())
        });
    if all_finite {
        return Cow::Borrowed(s);
    }
    fn f32z(x: &mut f32) {
        if !x.is_finite() {
            *x = 0.0;
        }
    }
    fn f64z(x: &mut f64) {
        if !x.is_finite() {
            *x = 0.0;
        }
    }
    let mut s = s.clone();
    f32z(&mut s.cpu_percent);
    f32z(&mut s.memory_percent);
    s.cpu_per_core.iter_mut().for_each(f32z);
    s.load_average.iter_mut().for_each(f64z);
    s.disks.iter_mut().for_each(|d| f32z(&mut d.used_percent));
    for n in &mut s.networks {
        f64z(&mut n.rx_bytes_per_sec);
        f64z(&mut n.tx_bytes_per_sec);
        f64z(&mut n.rx_packets_per_sec);
        f64z(&mut n.tx_packets_per_sec);
    }
    Cow::Owned(s)
}

// ---- reads --------------------------------------------------------------------------

const AGENT_COLS: &str = "id, first_seen, last_seen, last_addr, hostname, os, version, \
     interval_ms, spool_bytes, spool_batches, dropped_samples, dropped_alerts";

const ALERT_COLS: &str = "id, ts, received_at, category, severity, agent_id, src_ip, dst_ip, \
     src_port, dst_port, src_mac, summary, evidence, mitre, peer_addr, resolved_at";

const API_KEY_COLS: &str = "id, name, role, hash, created_at, revoked_at";

/// One row being read, with what an error about it must name.
struct Cells<'r> {
    row: &'r SqliteRow,
    path: &'r Path,
    table: &'static str,
    id: String,
}

impl<'r> Cells<'r> {
    /// A row whose id is text.
    fn text_id(row: &'r SqliteRow, path: &'r Path, table: &'static str) -> Self {
        let id = row
            .try_get::<String, _>("id")
            .map(|s| s.chars().take(80).collect())
            .unwrap_or_else(|_| "<unreadable id>".to_owned());
        Cells { row, path, table, id }
    }

    /// A row whose id is UUID bytes; also returns the UUID.
    fn uuid_id(row: &'r SqliteRow, path: &'r Path, table: &'static str) -> Result<(Self, Uuid), StoreError> {
        let bytes = row.try_get::<Vec<u8>, _>("id");
        let (id, uuid) = match &bytes {
            Ok(b) => match Uuid::from_slice(b) {
                Ok(u) => (u.to_string(), Some(u)),
                Err(_) => (hex_prefix(b), None),
            },
            Err(_) => ("<unreadable id>".to_owned(), None),
        };
        let cells = Cells { row, path, table, id };
        match uuid {
            Some(u) => Ok((cells, u)),
            None => Err(cells.bad("id is not a 16-byte UUID")),
        }
    }

    fn bad(&self, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.to_owned(),
            table: self.table,
            id: self.id.clone(),
            detail: detail.into(),
        }
    }

    fn get<T>(&self, col: &str) -> Result<T, StoreError>
    where
        T: for<'x> sqlx::Decode<'x, Sqlite> + sqlx::Type<Sqlite>,
    {
        self.row.try_get(col).map_err(|e| self.bad(format!("column {col}: {e}")))
    }

    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        let v: i64 = self.get(col)?;
        self.to_time(col, v)
    }

    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = self.get(col)?;
        v.map(|v| self.to_time(col, v)).transpose()
    }

    fn to_time(&self, col: &str, v: i64) -> Result<DateTime<Utc>, StoreError> {
        DateTime::from_timestamp_millis(v)
            .ok_or_else(|| self.bad(format!("column {col}: {v} is not a time in milliseconds")))
    }

    fn u64(&self, col: &str) -> Result<u64, StoreError> {
        let v: i64 = self.get(col)?;
        u64::try_from(v).map_err(|_| self.bad(format!("column {col}: {v} is negative")))
    }

    fn port(&self, col: &str) -> Result<Option<u16>, StoreError> {
        let v: Option<i64> = self.get(col)?;
        v.map(|v| u16::try_from(v).map_err(|_| self.bad(format!("column {col}: {v} is not a port")))).transpose()
    }

    fn ip(&self, col: &str) -> Result<Option<IpAddr>, StoreError> {
        let v: Option<String> = self.get(col)?;
        v.map(|s| s.parse().map_err(|_| self.bad(format!("column {col}: {:?} is not an IP address", clip(&s)))))
            .transpose()
    }

    fn agent(&self, col: &str) -> Result<Option<AgentId>, StoreError> {
        let v: Option<String> = self.get(col)?;
        v.map(|s| AgentId::new(s).map_err(|e| self.bad(format!("column {col}: {e}")))).transpose()
    }
}

fn agent_from_row(row: &SqliteRow, path: &Path) -> Result<AgentRow, StoreError> {
    let c = Cells::text_id(row, path, "agents");
    let id = c.agent("id")?.ok_or_else(|| c.bad("column id: NULL"))?;
    let hostname: Option<String> = c.get("hostname")?;
    let info = match hostname {
        None => None,
        Some(hostname) => Some(AgentInfo {
            hostname,
            os: c.get::<Option<String>>("os")?.unwrap_or_default(),
            version: c.get::<Option<String>>("version")?.unwrap_or_default(),
            interval_ms: match c.get::<Option<i64>>("interval_ms")? {
                None => 0,
                Some(v) => u64::try_from(v).map_err(|_| c.bad(format!("column interval_ms: {v} is negative")))?,
            },
        }),
    };
    Ok(AgentRow {
        id,
        first_seen: c.time("first_seen")?,
        last_seen: c.time("last_seen")?,
        last_addr: c.get("last_addr")?,
        info,
        stats: AgentStats {
            spool_bytes: c.u64("spool_bytes")?,
            spool_batches: c.u64("spool_batches")?,
            dropped_samples: c.u64("dropped_samples")?,
            dropped_alerts: c.u64("dropped_alerts")?,
        },
    })
}

fn sample_from_row(row: &SqliteRow, path: &Path) -> Result<HostSample, StoreError> {
    let (c, _) = Cells::uuid_id(row, path, "metrics")?;
    let data: String = c.get("data")?;
    serde_json::from_str(&data).map_err(|e| c.bad(format!("column data is not a host sample: {e}")))
}

fn alert_from_row(row: &SqliteRow, path: &Path) -> Result<StoredAlert, StoreError> {
    let (c, id) = Cells::uuid_id(row, path, "alerts")?;
    let category: String = c.get("category")?;
    let category: Category = category.parse().map_err(|e| c.bad(format!("column category: {e}")))?;
    let rank: i64 = c.get("severity")?;
    let severity = usize::try_from(rank)
        .ok()
        .and_then(|i| Severity::ALL.get(i).copied())
        .ok_or_else(|| c.bad(format!("column severity: {rank} is not 0 to 4")))?;
    let evidence: String = c.get("evidence")?;
    let evidence = serde_json::from_str(&evidence).map_err(|e| c.bad(format!("column evidence is not JSON: {e}")))?;
    Ok(StoredAlert {
        alert: Alert {
            id,
            timestamp: c.time("ts")?,
            category,
            severity,
            agent: c.agent("agent_id")?,
            src_ip: c.ip("src_ip")?,
            dst_ip: c.ip("dst_ip")?,
            src_port: c.port("src_port")?,
            dst_port: c.port("dst_port")?,
            src_mac: c.get("src_mac")?,
            summary: c.get("summary")?,
            evidence,
            mitre: c.get("mitre")?,
        },
        received_at: c.time("received_at")?,
        resolved_at: c.opt_time("resolved_at")?,
        peer_addr: c.get("peer_addr")?,
    })
}

fn api_key_from_row(row: &SqliteRow, path: &Path) -> Result<ApiKeyRow, StoreError> {
    let c = Cells::text_id(row, path, "api_keys");
    let hash: Vec<u8> = c.get("hash")?;
    let hash: [u8; 32] =
        hash.as_slice().try_into().map_err(|_| c.bad(format!("column hash: {} bytes, expected 32", hash.len())))?;
    Ok(ApiKeyRow {
        id: c.get("id")?,
        name: c.get("name")?,
        role: c.get("role")?,
        hash,
        created_at: c.time("created_at")?,
        revoked_at: c.opt_time("revoked_at")?,
    })
}

// ---- conversions --------------------------------------------------------------------

/// Unix milliseconds.
fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// SQLite integers are signed: counters past `i64::MAX` are stored as `i64::MAX`.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// 0 (info) to 4 (critical), so `severity >= n` means "at or above".
fn severity_rank(s: Severity) -> i64 {
    match s {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// The first bytes of a bad id, in hex, for error messages.
fn hex_prefix(b: &[u8]) -> String {
    let mut s: String = b.iter().take(32).map(|x| format!("{x:02x}")).collect();
    if b.len() > 32 {
        s.push_str("...");
    }
    s
}

/// A stored string shortened for an error message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests;
