//! Attacks on the monitor itself: repeated `integrity_failure` or `replay_attempt` from one
//! peer (its address when the server knows it, else the agent id it claimed) within
//! `window_secs` escalate to an incident, critical once `critical_alerts` accumulate.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_model::{Alert, Category};

use crate::config::{Limits, MonitorConfig};
use crate::util::{BoundedMap, secs_ms};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct Peer {
    recent: VecDeque<(i64, Uuid)>,
    incident: Option<Uuid>,
    newest: i64,
}

/// What one alert did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MonitorOutcome {
    /// Nothing.
    None,
    /// Open an incident for `peer` linking `alert_ids`, then call
    /// [`MonitorWatch::set_incident`].
    Trigger { peer: String, first_ts: i64, alert_ids: Vec<Uuid> },
    /// The alert joins the open incident.
    Update { incident: Uuid },
}

/// State of the rule. Serializable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorWatch {
    peers: BoundedMap<String, Peer>,
}

/// The peer an alert about the monitor comes from.
pub(crate) fn peer_of(a: &Alert) -> Option<String> {
    match (a.src_ip, &a.agent) {
        (Some(ip), _) => Some(ip.to_string()),
        (None, Some(agent)) => Some(format!("agent:{agent}")),
        (None, None) => None,
    }
}

impl MonitorWatch {
    /// Empty state.
    pub fn new(limits: &Limits) -> Self {
        Self { peers: BoundedMap::new(limits.monitor_peers) }
    }

    /// Applies `limits` after a restore.
    pub fn apply_limits(&mut self, limits: &Limits) {
        self.peers.set_cap(limits.monitor_peers);
    }

    /// Peers evicted because of the cap.
    pub fn evicted(&self) -> u64 {
        self.peers.evicted()
    }

    /// Records the incident opened for `peer`.
    pub(crate) fn set_incident(&mut self, peer: &str, incident: Uuid) {
        if let Some(p) = self.peers.get_mut(&peer.to_string()) {
            p.incident = Some(incident);
        }
    }

    /// Feeds one alert observed at `t`.
    pub(crate) fn observe(
        &mut self,
        a: &Alert,
        t: i64,
        cfg: &MonitorConfig,
        is_open: impl Fn(Uuid) -> bool,
    ) -> MonitorOutcome {
        if !matches!(a.category, Category::IntegrityFailure | Category::ReplayAttempt) {
            return MonitorOutcome::None;
        }
        let Some(peer) = peer_of(a) else { return MonitorOutcome::None };
        if self.peers.get(&peer).is_none() {
            self.peers.insert(peer.clone(), Peer::default(), t);
        }
        let Some(p) = self.peers.get_mut(&peer) else { return MonitorOutcome::None };
        p.newest = p.newest.max(t);
        let stamp = p.newest;
        if let Some(inc) = p.incident.filter(|i| is_open(*i)) {
            self.peers.touch(&peer, stamp);
            return MonitorOutcome::Update { incident: inc };
        }
        p.incident = None;
        let cutoff = p.newest - secs_ms(cfg.window_secs);
        p.recent.retain(|(ts, _)| *ts >= cutoff);
        if t >= cutoff {
            if p.recent.len() >= cfg.min_alerts {
                p.recent.pop_front();
            }
            p.recent.push_back((t, a.id));
        }
        let out = if p.recent.len() >= cfg.min_alerts {
            let first_ts = p.recent.iter().map(|(ts, _)| *ts).min().unwrap_or(t);
            let alert_ids = p.recent.drain(..).map(|(_, id)| id).collect();
            MonitorOutcome::Trigger { peer: peer.clone(), first_ts, alert_ids }
        } else {
            MonitorOutcome::None
        };
        self.peers.touch(&peer, stamp);
        out
    }

    /// Drops peers idle for longer than the window whose incident is closed.
    pub(crate) fn expire(&mut self, now: i64, cfg: &MonitorConfig, is_open: impl Fn(Uuid) -> bool) {
        let cutoff = now - secs_ms(cfg.window_secs);
        let stale: Vec<String> = self
            .peers
            .keys_up_to(cutoff)
            .filter(|k| self.peers.get(k).is_some_and(|p| p.incident.is_none_or(|i| !is_open(i))))
            .cloned()
            .collect();
        for k in stale {
            self.peers.remove(&k);
        }
    }
}
