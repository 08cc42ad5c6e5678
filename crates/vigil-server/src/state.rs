//! Shared server state handed to every route.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_model::{AgentId, Category};
use vigil_pki::AgentDirectory;
use vigil_store::Store;
use vigil_wire::ReplayWindow;

use crate::ServerSettings;
use crate::events::{EventHub, EventKind};
use crate::ratelimit::RateLimiter;

/// One agent's replay window, loaded from storage on first use (`None` until then).
pub type ReplaySlot = Arc<tokio::sync::Mutex<Option<ReplayWindow>>>;

/// Who is on the other end of a connection, as established by the TLS handshake.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Remote address.
    pub addr: SocketAddr,
    /// The agent id from a verified client certificate, if one was presented.
    pub agent: Option<AgentId>,
}

/// Everything the routes share.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Store,
    /// Issued agents and their sealing keys.
    pub agents: AgentDirectory,
    /// Validated settings.
    pub settings: Arc<ServerSettings>,
    /// Replay windows of the agents seen since start (loaded from storage on first sight).
    /// Keyed by authenticated agent ids only, so bounded by the number of issued agents.
    pub replay: Arc<Mutex<HashMap<AgentId, ReplaySlot>>>,
    /// Flood control for the security alerts the server raises itself.
    pub security_limiter: Arc<Mutex<SecurityAlertLimiter>>,
    /// Counters for refusals, by reason.
    pub counters: Arc<Counters>,
    /// Live events for the dashboard and other clients.
    pub events: Arc<EventHub>,
    /// Rate limits of the human-facing routes.
    pub limiter: Arc<RateLimiter>,
    /// Whether each agent seen since start was online at the last look, to publish changes
    /// only. Keyed by authenticated agent ids (and the stored agent list): bounded by the
    /// agents issued.
    pub agent_online: Arc<Mutex<HashMap<AgentId, bool>>>,
    /// Turns true when the server shuts down (ends event streams).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The last 24 hours' top alert sources, kept fresh in the background while the
    /// dashboard asks for them (the one overview figure that is costly to compute).
    pub top_sources: Arc<Mutex<TopSourcesCache>>,
    /// Every agent's newest sample and capture statistics, in memory.
    pub latest: Arc<crate::latest::LatestCache>,
    /// The alert pipeline's input queue (and its counters).
    pub pipeline: crate::pipeline::PipelineFeed,
}

/// See [`AppState::top_sources`].
#[derive(Debug, Default)]
pub struct TopSourcesCache {
    /// When `value` was computed.
    pub at: Option<Instant>,
    /// When someone last asked.
    pub asked: Option<Instant>,
    /// The figures.
    pub value: Arc<Vec<vigil_store::SourceCount>>,
}

impl AppState {
    /// The replay slot of `agent`, created empty (not yet loaded) on first use.
    pub fn replay_slot(&self, agent: &AgentId) -> ReplaySlot {
        let mut map = self.replay.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(agent.clone()).or_default().clone()
    }

    /// Records that `agent` was just heard from; publishes an `agent` event when it was
    /// not known to be online.
    pub fn set_agent_online(&self, agent: &AgentId, at: chrono::DateTime<chrono::Utc>) {
        let was = self.agent_online.lock().unwrap_or_else(|p| p.into_inner()).insert(agent.clone(), true);
        if was != Some(true) {
            self.events
                .publish(EventKind::Agent, &serde_json::json!({"id": agent, "status": "online", "last_seen": at}));
        }
    }

    /// Every agent with its newest sample (from memory: see [`crate::latest`]).
    pub async fn agents_with_latest(
        &self,
    ) -> Result<Vec<(vigil_store::AgentRow, Option<Arc<vigil_model::HostSample>>)>, vigil_store::StoreError> {
        let rows = self.store.all_agents().await?;
        let mut latest = self.latest.samples(&self.store).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let s = latest.remove(&r.id);
                (r, s)
            })
            .collect())
    }

    /// Stores an incident (insert or update by id) and publishes it as an `incident`
    /// event: what the pipeline's incident output should be fed to.
    pub async fn record_incident(&self, incident: &vigil_store::IncidentRow) -> Result<(), vigil_store::StoreError> {
        self.store.upsert_incident(incident).await?;
        self.events.publish(EventKind::Incident, incident);
        Ok(())
    }

    /// Records `agent`'s status as seen by the periodic check; publishes a change.
    pub fn note_agent_status(&self, agent: &AgentId, online: bool, last_seen: chrono::DateTime<chrono::Utc>) {
        let was = self.agent_online.lock().unwrap_or_else(|p| p.into_inner()).insert(agent.clone(), online);
        if was.is_some_and(|w| w != online) {
            let status = if online { "online" } else { "offline" };
            self.events
                .publish(EventKind::Agent, &serde_json::json!({"id": agent, "status": status, "last_seen": last_seen}));
        }
    }
}

/// Counts of what the ingest route did, for logs and (later) `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Batches stored.
    pub accepted: std::sync::atomic::AtomicU64,
    /// Messages refused because they failed to open.
    pub integrity_failures: std::sync::atomic::AtomicU64,
    /// Messages refused as replays or stale.
    pub replays: std::sync::atomic::AtomicU64,
    /// Messages refused for identity reasons (no cert, id mismatch, revoked, unknown).
    pub identity_refusals: std::sync::atomic::AtomicU64,
    /// Security alerts not stored because an identical one was stored moments before.
    pub security_alerts_suppressed: std::sync::atomic::AtomicU64,
    /// Samples stored.
    pub samples: std::sync::atomic::AtomicU64,
    /// Alerts stored (agents' and the server's own).
    pub alerts: std::sync::atomic::AtomicU64,
    /// Items that were already stored (resent batches).
    pub duplicates: std::sync::atomic::AtomicU64,
}

/// Decides whether a server-raised security alert is stored now or folded into the next
/// one, so a peer hammering the server with bad messages cannot fill the database.
/// Keyed by (category, peer address): attacker-controlled, so capped with eviction.
#[derive(Debug)]
pub struct SecurityAlertLimiter {
    every: Duration,
    cap: usize,
    last: HashMap<(Category, IpAddr), (Instant, u64)>,
}

impl SecurityAlertLimiter {
    /// At most one stored alert per `(category, peer)` per `every`, tracking `cap` peers.
    pub fn new(every: Duration, cap: usize) -> Self {
        SecurityAlertLimiter { every, cap, last: HashMap::new() }
    }

    /// `Some(n)` when an alert should be stored now, `n` being how many were folded into
    /// it since the last one; `None` when it should only be counted.
    pub fn admit(&mut self, category: Category, peer: IpAddr, now: Instant) -> Option<u64> {
        if let Some((at, folded)) = self.last.get_mut(&(category, peer)) {
            if now.duration_since(*at) < self.every {
                *folded += 1;
                return None;
            }
            let n = *folded;
            *at = now;
            *folded = 0;
            return Some(n);
        }
        if self.last.len() >= self.cap {
            // Evict entries whose quiet period is over; if none, the oldest one.
            let every = self.every;
            self.last.retain(|_, (at, _)| now.duration_since(*at) < every);
            if self.last.len() >= self.cap
                && let Some(oldest) = self.last.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
            {
                self.last.remove(&oldest);
            }
        }
        self.last.insert((category, peer), (now, 0));
        Some(0)
    }

    /// How many peers are tracked.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_folds_repeats_and_stays_bounded() {
        let mut l = SecurityAlertLimiter::new(Duration::from_secs(10), 4);
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(l.admit(Category::IntegrityFailure, ip, t0), Some(0));
        assert_eq!(l.admit(Category::IntegrityFailure, ip, t0 + Duration::from_secs(1)), None);
        assert_eq!(l.admit(Category::IntegrityFailure, ip, t0 + Duration::from_secs(2)), None);
        assert_eq!(l.admit(Category::ReplayAttempt, ip, t0 + Duration::from_secs(2)), Some(0));
        assert_eq!(l.admit(Category::IntegrityFailure, ip, t0 + Duration::from_secs(11)), Some(2));
        for i in 0..100u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            l.admit(Category::IntegrityFailure, ip, t0 + Duration::from_secs(12));
        }
        assert!(l.len() <= 4);
    }
}
