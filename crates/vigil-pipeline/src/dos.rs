//! `dos_suspected`: many alerts from several agents against one destination in a short
//! window.
//!
//! Per destination address the correlator keeps the alerts of the last `window_secs`
//! (by alert time, inclusive at both ends). The **narrow rule** fires when at least
//! `min_alerts` of them are of a flood or scan kind and come from at least `min_agents`
//! distinct agents, or when such alerts come from at least `consensus_agents` distinct
//! agents whatever their number (independent watchers agreeing); the **broad rule** when `broad_min_alerts` of any kind (at least
//! `broad_min_severity`) come from `broad_min_agents` agents. While the resulting incident
//! is open, further alerts against the destination join it instead of opening another.
//!
//! The combined packet rate is the sum, over (agent, source) pairs, of the highest rate
//! each pair reported in the window: evidence `rate_pps`, or `packets / window_secs` when
//! only a packet count and its window are given. Repeats of one observation are not added
//! up; different agents seeing the same flood are (they may watch different links).

use std::collections::VecDeque;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_model::{AgentId, Alert, Category};

use crate::config::{DosConfig, Limits};
use crate::util::{BoundedMap, FastMap, at, secs_ms};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub ts: i64,
    pub alert: Uuid,
    pub agent: AgentId,
    pub category: Category,
    pub src: Option<IpAddr>,
    pub flood: bool,
    pub broad: bool,
    pub rate: Option<f64>,
    pub packets: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct Window {
    /// Sorted by alert time, so the front is always the oldest and everything behind the
    /// window's lower edge has been popped.
    entries: VecDeque<Entry>,
    newest: i64,
    incident: Option<Uuid>,
    rule: Option<DosRule>,
    /// Counts over `entries`, kept as they change so a rule check costs O(1) rather than a
    /// pass over up to `limits.dos_window_alerts` entries per alert. Not persisted:
    /// rebuilt from `entries` on first use after a restore.
    #[serde(skip)]
    tally: Option<Tally>,
    /// Alert time of the last evidence computed for the open incident: it is refreshed at
    /// most once per [`EVIDENCE_EVERY_MS`] of alert time, since it is a pass over the whole
    /// window and a flood sends many alerts a second.
    #[serde(default)]
    evidence_at: Option<i64>,
}

/// See [`Window::evidence_at`].
const EVIDENCE_EVERY_MS: i64 = 1000;

/// Counts of a window's entries by rule, and per agent.
#[derive(Debug, Clone, Default)]
struct Tally {
    flood: usize,
    broad: usize,
    /// Agent → (flood entries, broad entries); agents with no entry are removed. Bounded by
    /// the window's length.
    agents: FastMap<AgentId, (u32, u32)>,
    flood_agents: usize,
    broad_agents: usize,
}

/// A cache of `entries`: two windows with the same entries are equal whatever it holds.
impl PartialEq for Tally {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Tally {
    fn of(entries: &VecDeque<Entry>) -> Self {
        let mut t = Tally::default();
        entries.iter().for_each(|e| t.add(e));
        t
    }

    fn add(&mut self, e: &Entry) {
        // Looked up before inserting: the agent's name is only copied for a new agent.
        if !self.agents.contains_key(&e.agent) {
            self.agents.insert(e.agent.clone(), (0, 0));
        }
        let Some(c) = self.agents.get_mut(&e.agent) else { return };
        if e.flood {
            self.flood_agents += usize::from(c.0 == 0);
            c.0 += 1;
            self.flood += 1;
        }
        if e.broad {
            self.broad_agents += usize::from(c.1 == 0);
            c.1 += 1;
            self.broad += 1;
        }
    }

    fn remove(&mut self, e: &Entry) {
        let Some(c) = self.agents.get_mut(&e.agent) else { return };
        if e.flood && c.0 > 0 {
            c.0 -= 1;
            self.flood -= 1;
            self.flood_agents -= usize::from(c.0 == 0);
        }
        if e.broad && c.1 > 0 {
            c.1 -= 1;
            self.broad -= 1;
            self.broad_agents -= usize::from(c.1 == 0);
        }
        if *c == (0, 0) {
            self.agents.remove(&e.agent);
        }
    }
}

impl Window {
    /// The tally, rebuilt (and the entries sorted) after a restore.
    fn tally(&mut self) -> &mut Tally {
        if self.tally.is_none() {
            self.entries.make_contiguous().sort_by_key(|e| e.ts);
            self.tally = Some(Tally::of(&self.entries));
        }
        self.tally.get_or_insert_with(Tally::default)
    }

    fn pop_front(&mut self) -> Option<Entry> {
        let e = self.entries.pop_front()?;
        self.tally().remove(&e);
        Some(e)
    }

    /// Inserts `e` in time order (at the back unless it arrived late).
    fn insert(&mut self, e: Entry) {
        self.tally().add(&e);
        let at = self.entries.iter().rposition(|x| x.ts <= e.ts).map_or(0, |i| i + 1);
        self.entries.insert(at, e);
    }
}

/// Which rule fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DosRule {
    /// Flood and scan kinds.
    Flood,
    /// Any kind.
    Broad,
}

/// What one alert did to the correlator.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DosOutcome {
    /// Nothing.
    None,
    /// A rule fired: open an incident, then call [`DosCorrelator::set_incident`].
    Trigger(Trigger),
    /// The alert joins the open incident `incident`; `evidence` is the window's evidence
    /// now, when it was due for a refresh (at most once a second of alert time) and heavier
    /// than the incident's (see [`DosCorrelator::observe`]).
    Update { incident: Uuid, evidence: Option<serde_json::Value> },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Trigger {
    pub target: IpAddr,
    pub rule: DosRule,
    pub first_ts: i64,
    pub last_ts: i64,
    pub alert_ids: Vec<Uuid>,
    pub agents: Vec<AgentId>,
    pub categories: Vec<Category>,
    pub count: u64,
    pub evidence: serde_json::Value,
}

/// Counters of the correlator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DosCounters {
    /// Alerts dropped from a full window (oldest first).
    pub window_overflow: u64,
    /// Alerts that arrived too late for their destination's window.
    pub too_late: u64,
    /// Incidents triggered.
    pub triggered: u64,
}

/// DoS correlation state. Serializable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DosCorrelator {
    targets: BoundedMap<IpAddr, Window>,
    counters: DosCounters,
}

fn number(v: &serde_json::Value, k: &str) -> Option<f64> {
    v.get(k).and_then(serde_json::Value::as_f64).filter(|x| x.is_finite() && *x >= 0.0)
}

/// Categories the pipeline raises itself or that say nothing about traffic to a target.
fn excluded(c: Category) -> bool {
    matches!(
        c,
        Category::DosSuspected
            | Category::AgentOffline
            | Category::TrafficSpike
            | Category::MetricAnomaly
            | Category::IntegrityFailure
            | Category::ReplayAttempt
    )
}

impl DosCorrelator {
    /// Empty state.
    pub fn new(limits: &Limits) -> Self {
        Self { targets: BoundedMap::new(limits.dos_targets), counters: DosCounters::default() }
    }

    /// Applies `limits` after a restore.
    pub fn apply_limits(&mut self, limits: &Limits) {
        self.targets.set_cap(limits.dos_targets);
    }

    /// Counters.
    pub fn counters(&self) -> DosCounters {
        self.counters
    }

    /// Destinations evicted because of the cap.
    pub fn evicted(&self) -> u64 {
        self.targets.evicted()
    }

    /// Records that the incident for `target` is `incident`.
    pub(crate) fn set_incident(&mut self, target: IpAddr, incident: Uuid, rule: DosRule) {
        if let Some(w) = self.targets.get_mut(&target) {
            w.incident = Some(incident);
            w.rule = Some(rule);
            w.evidence_at = Some(w.newest);
        }
    }

    /// Feeds one alert observed at `t`. `is_open` tells whether an incident is still open;
    /// `heavier(incident, combined_rate_pps, alerts)` whether refreshed evidence with those
    /// figures would replace the incident's (the JSON evidence is only built when it would).
    pub(crate) fn observe(
        &mut self,
        alert: &Alert,
        t: i64,
        cfg: &DosConfig,
        limits: &Limits,
        is_open: impl Fn(Uuid) -> bool,
        heavier: impl Fn(Uuid, f64, u64) -> bool,
    ) -> DosOutcome {
        let (Some(target), Some(agent)) = (alert.dst_ip, alert.agent.as_ref()) else { return DosOutcome::None };
        if excluded(alert.category) {
            return DosOutcome::None;
        }
        let flood = cfg.flood_categories.contains(&alert.category);
        let broad = cfg.broad_rule && alert.severity >= cfg.broad_min_severity;
        if !flood && !broad {
            return DosOutcome::None;
        }
        let window = secs_ms(cfg.window_secs);
        if self.targets.get(&target).is_none() {
            self.targets.insert(target, Window { newest: t, ..Window::default() }, t);
        }
        let Some(w) = self.targets.get_mut(&target) else { return DosOutcome::None };
        if t < w.newest - window {
            self.counters.too_late += 1;
            return DosOutcome::None;
        }
        w.tally();
        if w.entries.len() >= limits.dos_window_alerts {
            w.pop_front();
            self.counters.window_overflow += 1;
        }
        let ev = &alert.evidence;
        let rate = number(ev, "rate_pps").or_else(|| {
            let p = number(ev, "packets")?;
            let secs = number(ev, "window_secs").or_else(|| number(ev, "window_ms").map(|m| m / 1000.0))?;
            (secs > 0.0).then(|| p / secs)
        });
        w.insert(Entry {
            ts: t,
            alert: alert.id,
            agent: agent.clone(),
            category: alert.category,
            src: alert.src_ip,
            flood,
            broad,
            rate,
            packets: number(ev, "packets"),
        });
        w.newest = w.newest.max(t);
        let oldest_allowed = w.newest - window;
        // Sorted entries: everything before the lower edge is at the front.
        while w.entries.front().is_some_and(|e| e.ts < oldest_allowed) {
            w.pop_front();
        }
        let stamp = w.newest;
        let incident = w.incident.filter(|i| is_open(*i));
        w.incident = incident;
        let open_rule = w.rule;
        if let Some(incident) = incident {
            let due = w.evidence_at.is_none_or(|e| stamp - e >= EVIDENCE_EVERY_MS || stamp < e);
            let evidence = if due {
                w.evidence_at = Some(stamp);
                let in_window: Vec<&Entry> = w.entries.iter().collect();
                let (rate, packets) = combined(&in_window);
                // As the JSON will hold it: a non-finite sum serializes as null, read back as 0.
                let json_rate = if rate.is_finite() { rate } else { 0.0 };
                heavier(incident, json_rate, in_window.len() as u64)
                    .then(|| evidence_of(target, open_rule, &in_window, cfg, rate, packets))
            } else {
                None
            };
            self.targets.touch(&target, stamp);
            return DosOutcome::Update { incident, evidence };
        }
        let tally = w.tally();
        let rule = [
            (DosRule::Flood, cfg.min_alerts, cfg.min_agents, tally.flood, tally.flood_agents),
            (DosRule::Broad, cfg.broad_min_alerts, cfg.broad_min_agents, tally.broad, tally.broad_agents),
        ]
        .into_iter()
        .find(|(rule, n, m, count, agents)| {
            let consensus = *rule == DosRule::Flood && cfg.consensus_agents > 0 && *agents >= cfg.consensus_agents;
            (*rule == DosRule::Flood || cfg.broad_rule) && ((count >= n && agents >= m) || consensus)
        })
        .map(|(r, ..)| r);
        let trigger = rule.map(|rule| {
            let picked: Vec<&Entry> =
                w.entries.iter().filter(|e| if rule == DosRule::Flood { e.flood } else { e.broad }).collect();
            let mut agents = Vec::new();
            let mut categories = Vec::new();
            for e in &picked {
                if !agents.contains(&e.agent) {
                    agents.push(e.agent.clone());
                }
                if !categories.contains(&e.category) {
                    categories.push(e.category);
                }
            }
            Trigger {
                target,
                rule,
                first_ts: picked.iter().map(|e| e.ts).min().unwrap_or(t),
                last_ts: picked.iter().map(|e| e.ts).max().unwrap_or(t),
                alert_ids: picked.iter().take(limits.links).map(|e| e.alert).collect(),
                agents,
                categories,
                count: picked.len() as u64,
                evidence: evidence(target, Some(rule), &picked, cfg),
            }
        });
        self.targets.touch(&target, stamp);
        match trigger {
            Some(t) => {
                self.counters.triggered += 1;
                DosOutcome::Trigger(t)
            }
            None => DosOutcome::None,
        }
    }

    /// Drops windows idle for longer than the window whose incident (if any) is closed.
    pub(crate) fn expire(&mut self, now: i64, cfg: &DosConfig, is_open: impl Fn(Uuid) -> bool) {
        let cutoff = now - 2 * secs_ms(cfg.window_secs);
        let stale: Vec<IpAddr> = self
            .targets
            .keys_up_to(cutoff)
            .filter(|k| self.targets.get(k).is_some_and(|w| w.incident.is_none_or(|i| !is_open(i))))
            .copied()
            .collect();
        for k in stale {
            self.targets.remove(&k);
        }
    }
}

/// Evidence of a DoS incident over `entries`.
fn evidence(target: IpAddr, rule: Option<DosRule>, entries: &[&Entry], cfg: &DosConfig) -> serde_json::Value {
    let (rate, packets) = combined(entries);
    evidence_of(target, rule, entries, cfg, rate, packets)
}

/// Combined packet rate and packet count over `entries`: the highest of each per (agent,
/// source), then summed.
fn combined(entries: &[&Entry]) -> (f64, f64) {
    // Entries sorted by observer, ties by position: each observer's entries then come
    // together and in window order (the order the maxima were always taken in), with its
    // first-seen position first. Cheaper than a map keyed by agent name per refresh.
    let mut sorted: Vec<(&str, Option<IpAddr>, usize, f64, f64)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.agent.as_str(), e.src, i, e.rate.unwrap_or(0.0), e.packets.unwrap_or(0.0)))
        .collect();
    sorted.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    // (first-seen position, highest rate, highest packets) per observer.
    let mut per: Vec<(usize, f64, f64)> = Vec::new();
    let mut prev: Option<(&str, Option<IpAddr>)> = None;
    for (agent, src, i, r, p) in sorted {
        match per.last_mut() {
            Some((_, rate, packets)) if prev == Some((agent, src)) => {
                *rate = rate.max(r);
                *packets = packets.max(p);
            }
            _ => per.push((i, r, p)),
        }
        prev = Some((agent, src));
    }
    // Summed in first-seen order, so the figures are deterministic and as before.
    per.sort_unstable_by_key(|(i, ..)| *i);
    let rate: f64 = per.iter().map(|(_, r, _)| r).sum();
    let packets: f64 = per.iter().map(|(_, _, p)| p).sum();
    (rate, packets)
}

/// Evidence of a DoS incident over `entries`, with their [`combined`] rate and packets.
fn evidence_of(
    target: IpAddr,
    rule: Option<DosRule>,
    entries: &[&Entry],
    cfg: &DosConfig,
    rate: f64,
    packets: f64,
) -> serde_json::Value {
    let mut agents: Vec<&str> = entries.iter().map(|e| e.agent.as_str()).collect();
    agents.sort_unstable();
    agents.dedup();
    let first = entries.iter().map(|e| e.ts).min().unwrap_or(0);
    let last = entries.iter().map(|e| e.ts).max().unwrap_or(0);
    let mut v = serde_json::json!({
        "target": target.to_string(),
        "alerts": entries.len(),
        "agents": agents,
        "window_secs": cfg.window_secs,
        "first": at(first).to_rfc3339(),
        "last": at(last).to_rfc3339(),
        "combined_rate_pps": rate,
        "combined_packets": packets,
    });
    if let (Some(rule), Some(obj)) = (rule, v.as_object_mut()) {
        obj.insert("rule".into(), serde_json::to_value(rule).unwrap_or_default());
    }
    v
}
