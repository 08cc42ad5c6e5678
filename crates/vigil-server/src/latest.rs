//! Every agent's newest sample and capture statistics, kept in memory: the agents list,
//! the network view and `/metrics` read them on every call, and reading a thousand
//! samples back from SQLite each time would cost tens of milliseconds.
//!
//! Filled from storage on first use, then by ingest (newest by timestamp wins). Keyed by
//! authenticated agent ids only, so bounded by the agents issued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use vigil_model::{AgentId, HostSample, NetStats};
use vigil_store::{Store, StoreError};

/// See the module doc.
#[derive(Debug, Default)]
pub struct LatestCache {
    samples: Mutex<HashMap<AgentId, Arc<HostSample>>>,
    nets: Mutex<HashMap<AgentId, Arc<NetStats>>>,
    loaded: tokio::sync::OnceCell<()>,
}

fn keep_newer<T>(map: &Mutex<HashMap<AgentId, Arc<T>>>, agent: &AgentId, v: Arc<T>, ts: impl Fn(&T) -> DateTime<Utc>) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    match m.get(agent) {
        Some(old) if ts(old) > ts(&v) => {}
        _ => {
            m.insert(agent.clone(), v);
        }
    }
}

impl LatestCache {
    /// Notes a sample just stored.
    pub fn note_sample(&self, agent: &AgentId, s: &HostSample) {
        keep_newer(&self.samples, agent, Arc::new(s.clone()), |s| s.timestamp);
    }

    /// Notes capture statistics just stored.
    pub fn note_netstats(&self, agent: &AgentId, n: &NetStats) {
        keep_newer(&self.nets, agent, Arc::new(n.clone()), |n| n.timestamp);
    }

    async fn ensure_loaded(&self, store: &Store) -> Result<(), StoreError> {
        self.loaded
            .get_or_try_init(|| async {
                for (row, sample) in store.agents_with_latest().await? {
                    if let Some(s) = sample {
                        keep_newer(&self.samples, &row.id, Arc::new(s), |s| s.timestamp);
                    }
                }
                let since = Utc::now() - chrono::Duration::minutes(10);
                for (agent, n) in store.latest_netstats(since).await? {
                    keep_newer(&self.nets, &agent, Arc::new(n), |n| n.timestamp);
                }
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }

    /// The newest sample of every agent that sent one.
    pub async fn samples(&self, store: &Store) -> Result<HashMap<AgentId, Arc<HostSample>>, StoreError> {
        self.ensure_loaded(store).await?;
        Ok(self.samples.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The newest capture statistics of every agent, taken at or after `since`.
    pub async fn netstats(
        &self,
        store: &Store,
        since: DateTime<Utc>,
    ) -> Result<HashMap<AgentId, Arc<NetStats>>, StoreError> {
        self.ensure_loaded(store).await?;
        let m = self.nets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(m.iter().filter(|(_, n)| n.timestamp >= since).map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loads_once_then_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigil.db")).await.unwrap();
        let c = LatestCache::default();
        assert!(c.samples(&store).await.unwrap().is_empty());
        let a = AgentId::new("a").unwrap();
        let mut s = HostSample {
            id: uuid::Uuid::now_v7(),
            timestamp: Utc::now(),
            boot_epoch: 1,
            index: 0,
            cpu_percent: 5.0,
            cpu_per_core: vec![],
            memory_used_bytes: 0,
            memory_total_bytes: 0,
            memory_percent: 0.0,
            swap_used_bytes: 0,
            swap_total_bytes: 0,
            load_average: [0.0; 3],
            disks: vec![],
            networks: vec![],
            process_count: 0,
            uptime_secs: 0,
        };
        c.note_sample(&a, &s);
        let older = HostSample { cpu_percent: 1.0, timestamp: s.timestamp - chrono::Duration::seconds(5), ..s.clone() };
        c.note_sample(&a, &older);
        assert_eq!(c.samples(&store).await.unwrap()[&a].cpu_percent, 5.0);
        s.cpu_percent = 9.0;
        s.timestamp += chrono::Duration::seconds(5);
        c.note_sample(&a, &s);
        assert_eq!(c.samples(&store).await.unwrap()[&a].cpu_percent, 9.0);
    }
}
