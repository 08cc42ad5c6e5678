//! Agent presence: `agent_offline` after `missed_intervals` heartbeat intervals without
//! hearing from an agent (any item counts), resolved when it returns. While an agent was
//! away it may have spooled alerts; those (timestamps between the last time it was heard
//! before going silent and its return) are backfill: stored, never notified, never
//! reopening anything.

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_model::AgentId;

use crate::config::{ChurnConfig, Limits};
use crate::util::{BoundedMap, secs_ms};

/// Presence of one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    /// Last time anything arrived from it (injected clock, unix ms).
    pub last_seen_ms: i64,
    /// Heartbeat interval it announced, ms.
    pub interval_ms: i64,
    /// Since when it is offline, and the `agent_offline` alert raised.
    pub offline: Option<Offline>,
    /// The last time it was away: alerts stamped inside are backfill.
    pub away: Option<(i64, i64)>,
    /// Alerts from it since its last metric batch (feeds the `alert_rate` feature).
    pub alerts_since_batch: u32,
    /// Time of its last metric batch (its own clock, unix ms).
    pub last_batch_ms: Option<i64>,
}

/// An agent that went quiet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offline {
    /// Last time it was heard before going quiet.
    pub last_seen_ms: i64,
    /// When the pipeline noticed.
    pub noticed_ms: i64,
    /// Raw id of the `agent_offline` alert.
    pub alert: Option<Uuid>,
}

/// Presence of every agent. Serializable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Churn {
    agents: BoundedMap<AgentId, Presence>,
}

/// An agent came back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Returned {
    pub alert: Option<Uuid>,
}

impl Churn {
    /// Empty state.
    pub fn new(limits: &Limits) -> Self {
        Self { agents: BoundedMap::new(limits.agents) }
    }

    /// Applies `limits` after a restore; returns the dropped agents' offline alerts.
    pub fn apply_limits(&mut self, limits: &Limits) -> Vec<Uuid> {
        self.agents.set_cap(limits.agents).into_iter().filter_map(|(_, p)| p.offline.and_then(|o| o.alert)).collect()
    }

    /// Agents evicted because of the cap.
    pub fn evicted(&self) -> u64 {
        self.agents.evicted()
    }

    /// Presence of `agent`.
    pub fn presence(&self, agent: &AgentId) -> Option<&Presence> {
        self.agents.get(agent)
    }

    pub(crate) fn presence_mut(&mut self, agent: &AgentId) -> Option<&mut Presence> {
        self.agents.get_mut(agent)
    }

    /// Number of agents tracked.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether no agent is tracked.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Something arrived from `agent` at `now`. Returns what to resolve when it was offline,
    /// and the evicted agent's offline alert when room had to be made.
    pub(crate) fn seen(
        &mut self,
        agent: &AgentId,
        now: i64,
        interval_ms: Option<i64>,
        cfg: &ChurnConfig,
    ) -> (Option<Returned>, Option<Uuid>) {
        let mut evicted_alert = None;
        if self.agents.get(agent).is_none() {
            let p = Presence {
                last_seen_ms: now,
                interval_ms: secs_ms(cfg.default_interval_secs),
                offline: None,
                away: None,
                alerts_since_batch: 0,
                last_batch_ms: None,
            };
            if let Some((_, old)) = self.agents.insert(agent.clone(), p, now) {
                evicted_alert = old.offline.and_then(|o| o.alert);
            }
        }
        let Some(p) = self.agents.get_mut(agent) else { return (None, evicted_alert) };
        if let Some(i) = interval_ms.filter(|i| *i > 0) {
            p.interval_ms = i;
        }
        let returned = p.offline.take().map(|o| {
            p.away = Some((o.last_seen_ms, now));
            Returned { alert: o.alert }
        });
        p.last_seen_ms = p.last_seen_ms.max(now);
        let stamp = p.last_seen_ms;
        self.agents.touch(agent, stamp);
        (returned, evicted_alert)
    }

    /// Whether an item of `agent` stamped `ts` was spooled while the agent was away.
    pub(crate) fn is_backfill(&self, agent: &AgentId, ts: i64) -> bool {
        self.agents.get(agent).and_then(|p| p.away).is_some_and(|(from, to)| ts >= from && ts < to)
    }

    /// Agents that just missed their heartbeats at `now`; they are marked offline.
    pub(crate) fn tick(&mut self, now: i64, cfg: &ChurnConfig) -> Vec<(AgentId, Offline, i64)> {
        let mut out = Vec::new();
        for (agent, p) in self.agents.iter() {
            let deadline = p.last_seen_ms.saturating_add(p.interval_ms.saturating_mul(i64::from(cfg.missed_intervals)));
            if p.offline.is_none() && now >= deadline {
                out.push((
                    agent.clone(),
                    Offline { last_seen_ms: p.last_seen_ms, noticed_ms: now, alert: None },
                    p.interval_ms,
                ));
            }
        }
        for (agent, off, _) in &out {
            if let Some(p) = self.agents.get_mut(agent) {
                p.offline = Some(off.clone());
            }
        }
        out
    }

    /// Records the `agent_offline` alert raised for `agent`.
    pub(crate) fn set_offline_alert(&mut self, agent: &AgentId, alert: Uuid) {
        if let Some(o) = self.agents.get_mut(agent).and_then(|p| p.offline.as_mut()) {
            o.alert = Some(alert);
        }
    }

    /// Stops tracking `agent`; returns its open offline alert, if any.
    pub(crate) fn forget(&mut self, agent: &AgentId) -> Option<Uuid> {
        self.agents.remove(agent).and_then(|p| p.offline).and_then(|o| o.alert)
    }
}
