//! Network statistics from agent packet capture (schema version 2): one row per agent
//! per interval, stored as JSON, read back by time range.

use std::borrow::Cow;
use std::path::Path;

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use vigil_model::{AgentId, NetStats};

use crate::{Cells, Store, StoreError, ms, query_err};

impl Store {
    /// Network statistics of one agent for intervals ending at `since <= timestamp <
    /// until` (either bound optional), oldest first, at most `limit` (capped at
    /// [`crate::METRICS_LIMIT_MAX`]).
    pub async fn netstats(
        &self,
        id: &AgentId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<NetStats>, StoreError> {
        let rows = self.series_rows("netstats", "read netstats", id, since, until, limit).await?;
        rows.iter().map(|r| netstats_from_row(r, &self.inner.path)).collect()
    }
}

/// Inserts one interval's statistics; `false` if its id was already stored. Non-finite
/// rates (which JSON cannot carry) are stored as 0.
pub(crate) async fn insert_netstats(
    conn: &mut SqliteConnection,
    path: &Path,
    agent: &AgentId,
    n: &NetStats,
) -> Result<bool, StoreError> {
    let n = finite(n);
    let data = serde_json::to_string(&*n).map_err(|source| StoreError::Encode {
        path: path.to_owned(),
        what: "netstats",
        id: n.id.to_string(),
        source,
    })?;
    let res = sqlx::query(
        "INSERT INTO netstats (id, agent_id, ts, data) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(n.id)
    .bind(agent.as_str())
    .bind(ms(n.timestamp))
    .bind(data)
    .execute(&mut *conn)
    .await
    .map_err(query_err(path, "ingest"))?;
    Ok(res.rows_affected() > 0)
}

fn finite(n: &NetStats) -> Cow<'_, NetStats> {
    let rates = [n.packets_in_per_sec, n.packets_out_per_sec, n.bytes_in_per_sec, n.bytes_out_per_sec];
    if rates.iter().all(|x| x.is_finite()) {
        return Cow::Borrowed(n);
    }
    let mut n = n.clone();
    for x in [&mut n.packets_in_per_sec, &mut n.packets_out_per_sec, &mut n.bytes_in_per_sec, &mut n.bytes_out_per_sec]
    {
        if !x.is_finite() {
            *x = 0.0;
        }
    }
    Cow::Owned(n)
}

fn netstats_from_row(row: &SqliteRow, path: &Path) -> Result<NetStats, StoreError> {
    let (c, _) = Cells::uuid_id(row, path, "netstats")?;
    let data: String = c.get("data")?;
    serde_json::from_str(&data).map_err(|e| c.bad(format!("column data is not network statistics: {e}")))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;
    use vigil_model::{CaptureCounters, Item, ProtocolCount, Talker};

    use crate::IngestBatch;

    use super::*;

    fn stats(at: DateTime<Utc>, rate: f64) -> NetStats {
        NetStats {
            id: Uuid::now_v7(),
            timestamp: at,
            interval_ms: 1000,
            packets_in_per_sec: rate,
            packets_out_per_sec: 2.0,
            bytes_in_per_sec: 3.0,
            bytes_out_per_sec: 4.0,
            top_talkers: vec![Talker { ip: "10.1.2.3".parse().unwrap(), packets: 5, bytes: 600 }],
            protocols: vec![ProtocolCount { protocol: "udp".into(), packets: 5, bytes: 600 }],
            capture: CaptureCounters { interfaces: vec!["eth0".into()], kernel_drops: 7, ..Default::default() },
        }
    }

    #[tokio::test]
    async fn netstats_are_stored_once_and_read_back_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v.db")).await.unwrap();
        let agent = AgentId::new("cap-1").unwrap();
        let t = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
        let a = stats(t(0), 10.0);
        let b = stats(t(5), f64::NAN);
        let items = vec![Item::NetStats(a.clone()), Item::NetStats(b.clone())];
        let batch =
            |items| IngestBatch { agent: &agent, peer: "127.0.0.1:1", received_at: t(6), replay_state: &[], items };
        store.ingest(&batch(&items)).await.unwrap();
        // A resent batch stores nothing twice.
        store.ingest(&batch(&items)).await.unwrap();
        let all = store.netstats(&agent, None, None, 100).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], a);
        assert_eq!(all[1].packets_in_per_sec, 0.0, "NaN stored as 0");
        assert_eq!(all[1].capture.kernel_drops, 7);
        let later = store.netstats(&agent, Some(t(1)), None, 100).await.unwrap();
        assert_eq!(later.len(), 1);
        assert!(store.netstats(&AgentId::new("other").unwrap(), None, None, 100).await.unwrap().is_empty());
        // Retention removes them with the metrics.
        store.apply_retention(t(3), t(0)).await.unwrap();
        assert_eq!(store.netstats(&agent, None, None, 100).await.unwrap().len(), 1);
    }
}
