//! Alert lifecycle: dedup into records, grouping into incidents, escalation, states,
//! auto-resolve, silences.
//!
//! - **Dedup**: alerts with the same category, source, target (and, for alerts about a host
//!   rather than a flow, the same agent and metric) merge into one open [`AlertRecord`]
//!   with a count, first and last seen, and the agents that reported it.
//! - **Escalation**: a record rises one severity level for each of
//!   `escalate_counts` it reaches and one more when `escalate_agents` distinct agents
//!   reported it. Info alerts never escalate (they are recorded, not worth waking anyone).
//! - **Incidents**: open records of at least `group_min_severity` that share a source
//!   address (an attacker) or, failing that, a destination (a target) within
//!   `group_window_secs` form an [`Incident`]; later records of the same attacker or target
//!   join it. DoS and attacks on the monitor open incidents of their own kinds.
//! - **States**: open → acknowledged → resolved. Records resolve after `quiet_period_secs`
//!   without a new occurrence (except "held" records, which their producer resolves:
//!   baselines, the anomaly model, offline agents), incidents after
//!   `incident_quiet_period_secs`. Resolved items leave memory; the server keeps them.
//! - **Silences** match category, agent and/or source network, and expire. A silenced
//!   record is kept and updated but never notified.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;
use vigil_model::{AgentId, Alert, Category, Severity};

use crate::config::{LifecycleConfig, Limits};
use crate::error::PipelineError;
use crate::event::{Notification, NotifyReason, PipelineEvent, ResolveReason, Subject};
use crate::util::{BoundedMap, FastMap, FastSet, IdGen, at, fnv1a, ms, push_capped, secs_ms};

/// Longest evidence `metric` string used to tell host alerts apart.
const SUBJECT_MAX: usize = 64;
/// Distinct records remembered per grouping key before an incident forms.
const GROUP_RECORDS: usize = 16;

/// State of a record or incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// New or still active, not yet looked at.
    Open,
    /// Someone is on it; it keeps counting.
    Acknowledged,
    /// Over.
    Resolved,
}

/// What makes two alerts "identical".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DedupKey {
    /// Category.
    pub category: Category,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// The reporting agent, for alerts with neither address (they describe the host).
    pub host: Option<AgentId>,
    /// The evidence `metric` field, for alerts about one metric of a host.
    pub metric: Option<String>,
}

impl DedupKey {
    /// The key of `a`.
    pub fn of(a: &Alert) -> Self {
        let host = if a.src_ip.is_none() && a.dst_ip.is_none() { a.agent.clone() } else { None };
        let metric =
            a.evidence.get("metric").and_then(|m| m.as_str()).map(|m| m.chars().take(SUBJECT_MAX).collect::<String>());
        DedupKey { category: a.category, src: a.src_ip, dst: a.dst_ip, host, metric }
    }
}

/// A deduplicated alert: every occurrence of one [`DedupKey`] while it stays open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The record's id (not any raw alert's id).
    pub id: Uuid,
    /// What identifies it.
    pub key: DedupKey,
    /// Open or acknowledged while in memory; resolved in the final event.
    pub state: State,
    /// Effective severity: the highest reported, escalated by count and agents.
    pub severity: Severity,
    /// Highest severity any occurrence reported.
    pub reported_severity: Severity,
    /// Occurrences merged.
    pub count: u64,
    /// Earliest occurrence.
    pub first_seen: DateTime<Utc>,
    /// Latest occurrence.
    pub last_seen: DateTime<Utc>,
    /// Distinct agents that reported it (up to `limits.links`).
    pub agents: Vec<AgentId>,
    /// Raw id of the first occurrence.
    pub first_alert_id: Uuid,
    /// Raw id of the latest occurrence.
    pub last_alert_id: Uuid,
    /// Summary of the first occurrence.
    pub summary: String,
    /// Evidence of the first occurrence.
    pub evidence: serde_json::Value,
    /// MITRE technique.
    pub mitre: Option<String>,
    /// The incident it belongs to.
    pub incident: Option<Uuid>,
    /// The silence that mutes it, if any.
    pub silenced_by: Option<Uuid>,
    /// Resolved by its producer rather than by the quiet period.
    pub held: bool,
    /// When acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Items not kept in lists (agents beyond the cap).
    pub links_dropped: u64,
}

/// What kind of incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Related alerts from one source address.
    Attacker,
    /// Related alerts against one destination address.
    Target,
    /// `dos_suspected`: many alerts from several agents against one destination.
    DosSuspected,
    /// Repeated integrity failures or replays from one peer.
    MonitorAttack,
}

/// Related alerts, grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: IncidentKind,
    /// One line.
    pub title: String,
    /// Open or acknowledged while in memory.
    pub state: State,
    /// Severity: the highest of its members, escalated when many agents saw it.
    pub severity: Severity,
    /// Highest severity of its members, before escalation.
    pub base_severity: Severity,
    /// Earliest evidence.
    pub first_seen: DateTime<Utc>,
    /// Latest evidence.
    pub last_seen: DateTime<Utc>,
    /// The attacker, when one address is behind it.
    pub source: Option<IpAddr>,
    /// The target, when one address is under attack.
    pub target: Option<IpAddr>,
    /// The peer (address or agent id) for attacks on the monitor.
    pub peer: Option<String>,
    /// Alert records that belong to it.
    pub records: Vec<Uuid>,
    /// Raw alert ids that contributed (DoS and monitor incidents).
    pub alert_ids: Vec<Uuid>,
    /// Agents involved.
    pub agents: Vec<AgentId>,
    /// Categories involved.
    pub categories: Vec<Category>,
    /// Alerts counted into it.
    pub count: u64,
    /// Rule-specific facts (DoS: combined packet rate, window).
    pub evidence: serde_json::Value,
    /// Muted by silences.
    pub silenced: bool,
    /// When acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Items not kept in lists because of `limits.links`.
    pub links_dropped: u64,
}

/// A record or incident as the lifecycle holds it: shared with the events that report it
/// (an event holds a snapshot: a change made while one is still held copies the item
/// first, see [`Arc::make_mut`]), and when its last update went out. Persisted as the bare
/// item; the emit bookkeeping restarts at zero after a restore.
/// `aux` is a derived index of the item (not persisted: rebuilt from the item).
#[derive(Debug, Clone)]
struct Tracked<T, A = ()> {
    item: Arc<T>,
    last_emit_ms: i64,
    dirty: bool,
    aux: A,
}

impl<T, A: Default> Tracked<T, A> {
    fn new(item: T, now: i64) -> Self {
        Self { item: Arc::new(item), last_emit_ms: now, dirty: false, aux: A::default() }
    }
}

impl<T: Clone, A> Tracked<T, A> {
    /// The item (copied first if an event holds it) and its index.
    fn parts_mut(&mut self) -> (&mut T, &mut A) {
        (Arc::make_mut(&mut self.item), &mut self.aux)
    }
}

impl<T, A> Tracked<T, A> {
    /// A handle for an event (no copy).
    fn share(&self) -> Arc<T> {
        Arc::clone(&self.item)
    }
}

impl<T, A> std::ops::Deref for Tracked<T, A> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.item
    }
}

/// Copy on write: the item is copied only while an event still holds it.
impl<T: Clone, A> std::ops::DerefMut for Tracked<T, A> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.item)
    }
}

impl<T: Serialize, A> Serialize for Tracked<T, A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.item.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, A: Default> Deserialize<'de> for Tracked<T, A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::new(T::deserialize(d)?, 0))
    }
}

/// Fingerprints of an incident's link lists (`records`, `alert_ids`, `agents`), item for
/// item. Every alert that touches an incident checks those lists (up to `limits.links`
/// items each) for the ids and agent it brings; comparing 4-byte prints, in blocks the
/// compiler vectorizes, and the full item only where a print matches, costs a fraction of
/// comparing every 16-byte id or agent name. The prints are not keyed: crafted ids that
/// collide only bring a check back to the full comparison of every item, the cost without
/// prints. The lists only ever grow by a push at the end, so a list whose length differs
/// from its prints' (after a restore, or a new incident) is printed afresh.
#[derive(Debug, Clone, Default)]
struct LinkPrints {
    records: Vec<u32>,
    alert_ids: Vec<u32>,
    agents: Vec<u32>,
}

fn print_id(id: &Uuid) -> u32 {
    let v = id.as_u128();
    (v as u32) ^ ((v >> 32) as u32) ^ ((v >> 64) as u32) ^ ((v >> 96) as u32)
}

fn print_agent(a: &AgentId) -> u32 {
    let h = fnv1a(a.as_str().as_bytes());
    (h as u32) ^ ((h >> 32) as u32)
}

impl LinkPrints {
    fn sync(&mut self, i: &Incident) {
        if self.records.len() != i.records.len() {
            self.records = i.records.iter().map(print_id).collect();
        }
        if self.alert_ids.len() != i.alert_ids.len() {
            self.alert_ids = i.alert_ids.iter().map(print_id).collect();
        }
        if self.agents.len() != i.agents.len() {
            self.agents = i.agents.iter().map(print_agent).collect();
        }
    }
}

/// Whether `v` (printed item for item in `prints`) holds `item`, whose print is `print`.
fn holds<T: PartialEq>(v: &[T], prints: &[u32], item: &T, print: u32) -> bool {
    const BLOCK: usize = 16;
    prints.chunks(BLOCK).enumerate().any(|(b, block)| {
        // Branch-free over the block (vectorized); the items only where a print matched.
        block.iter().fold(false, |hit, p| hit | (*p == print))
            && block.iter().enumerate().any(|(j, p)| *p == print && v.get(b * BLOCK + j) == Some(item))
    })
}

/// [`push_capped`] for a printed list: the same outcome, found through the prints.
fn push_printed<T: PartialEq + Clone>(
    v: &mut Vec<T>,
    prints: &mut Vec<u32>,
    item: &T,
    print: u32,
    cap: usize,
    dropped: &mut u64,
) {
    if holds(v, prints, item, print) {
        return;
    }
    if v.len() >= cap {
        *dropped += 1;
        return;
    }
    v.push(item.clone());
    prints.push(print);
}

/// An address or CIDR network, as silences match sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network `addr/prefix`; the prefix is capped at the address length.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix: prefix.min(max) }
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = PipelineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PipelineError::BadNetwork { input: s.chars().take(64).collect() };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a silence matches: every field given must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SilenceMatcher {
    /// Alert category.
    pub category: Option<Category>,
    /// Reporting agent.
    pub agent: Option<AgentId>,
    /// Source address or network.
    pub source: Option<IpNet>,
}

/// A request to mute notifications for matching alerts until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    /// What it matches.
    pub matcher: SilenceMatcher,
    /// When it stops.
    pub expires_at: DateTime<Utc>,
    /// Why (cut to 256 characters).
    #[serde(default)]
    pub comment: String,
}

/// An active silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Id.
    pub id: Uuid,
    /// What it matches.
    pub matcher: SilenceMatcher,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops.
    pub expires_at: DateTime<Utc>,
    /// Why.
    pub comment: String,
}

impl SilenceMatcher {
    fn matches(&self, key: &DedupKey, agent: Option<&AgentId>) -> bool {
        self.category.is_none_or(|c| c == key.category)
            && self.agent.as_ref().is_none_or(|a| Some(a) == agent)
            && self.source.is_none_or(|n| key.src.is_some_and(|ip| n.contains(ip)))
    }
}

/// How to treat one alert entering the lifecycle.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IngestOpts {
    /// Old alert: count into an open record if any, never open or notify.
    pub backfill: bool,
    /// The producer resolves the record; the quiet period does not.
    pub held: bool,
    /// Do not notify the record (its incident does).
    pub quiet: bool,
    /// Do not group it into attacker/target incidents.
    pub no_group: bool,
}

/// What the lifecycle did with one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ingested {
    /// The record the alert is counted in (none for backfill with no open record).
    pub record: Option<Uuid>,
    /// The record was opened by this alert.
    pub opened: bool,
    /// The alert was treated as backfill.
    pub backfilled: bool,
}

/// Counters of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LifecycleCounters {
    /// Alerts ingested.
    pub alerts: u64,
    /// Of which merged into an existing record.
    pub merged: u64,
    /// Of which treated as backfill.
    pub backfilled: u64,
    /// Records opened.
    pub records_opened: u64,
    /// Incidents opened.
    pub incidents_opened: u64,
    /// Notifications emitted.
    pub notifications: u64,
    /// Notifications held back by silences.
    pub silenced: u64,
}

/// Parameters of a new incident.
pub(crate) struct NewIncident {
    pub kind: IncidentKind,
    pub title: String,
    pub severity: Severity,
    pub t: i64,
    pub source: Option<IpAddr>,
    pub target: Option<IpAddr>,
    pub peer: Option<String>,
    pub records: Vec<Uuid>,
    pub alert_ids: Vec<Uuid>,
    pub agents: Vec<AgentId>,
    pub categories: Vec<Category>,
    pub count: u64,
    pub evidence: serde_json::Value,
    pub silenced: bool,
}

/// New evidence for an open incident.
pub(crate) struct Touch<'a> {
    /// A record that belongs to it.
    pub record: Option<Uuid>,
    /// A raw alert id that contributed.
    pub raw: Option<Uuid>,
    /// Agents involved (borrowed where the caller has them, to spare a copy per alert).
    pub agents: Cow<'a, [AgentId]>,
    /// Category of the evidence.
    pub category: Category,
    /// Severity of the evidence.
    pub severity: Severity,
    /// Alerts to add to the incident's count.
    pub add: u64,
    /// When (unix ms).
    pub t: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Group {
    last_ms: i64,
    records: Vec<Uuid>,
    incident: Option<Uuid>,
}

/// Lifecycle state. Serializable: persist it and restore with [`Lifecycle::rebuild_indexes`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lifecycle {
    records: BoundedMap<DedupKey, Tracked<AlertRecord>>,
    incidents: BoundedMap<Uuid, Tracked<Incident, LinkPrints>>,
    by_source: BoundedMap<IpAddr, Group>,
    by_target: BoundedMap<IpAddr, Group>,
    silences: Vec<Silence>,
    dirty: Vec<Subject>,
    ids: IdGen,
    counters: LifecycleCounters,
    #[serde(skip)]
    by_id: FastMap<Uuid, DedupKey>,
    /// Raw alert id (first and last of each record) → record id.
    #[serde(skip)]
    by_alert: FastMap<Uuid, Uuid>,
    /// Ids of the open records not (yet) in an incident: the ones grouping may still take.
    /// A subset of `by_id`'s keys (so bounded by `limits.open_alerts`); it spares grouping a
    /// lookup of every remembered record in the big record map for every alert.
    #[serde(skip)]
    ungrouped: FastSet<Uuid>,
}

fn bump(s: Severity, steps: usize) -> Severity {
    let i = Severity::ALL.iter().position(|x| *x == s).unwrap_or(0);
    Severity::ALL[(i + steps).min(Severity::ALL.len() - 1)]
}

fn escalate(reported: Severity, count: u64, agents: usize, cfg: &LifecycleConfig) -> Severity {
    if reported == Severity::Info {
        return reported;
    }
    let mut steps = cfg.escalate_counts.iter().filter(|c| count >= **c).count();
    if agents >= cfg.escalate_agents {
        steps += 1;
    }
    bump(reported, steps)
}

impl Lifecycle {
    /// Empty state for `limits`, ids seeded with `seed`.
    pub fn new(limits: &Limits, seed: u64) -> Self {
        Self {
            records: BoundedMap::new(limits.open_alerts),
            incidents: BoundedMap::new(limits.open_incidents),
            by_source: BoundedMap::new(limits.group_keys),
            by_target: BoundedMap::new(limits.group_keys),
            silences: Vec::new(),
            dirty: Vec::new(),
            ids: IdGen::new(seed),
            counters: LifecycleCounters::default(),
            by_id: FastMap::default(),
            by_alert: FastMap::default(),
            ungrouped: FastSet::default(),
        }
    }

    /// Rebuilds the lookup indexes after deserializing, and applies `limits`.
    pub fn rebuild_indexes(&mut self, limits: &Limits) -> Vec<(DedupKey, AlertRecord)> {
        let dropped = self.records.set_cap(limits.open_alerts);
        let dropped = dropped.into_iter().map(|(k, r)| (k, Arc::unwrap_or_clone(r.item))).collect();
        self.incidents.set_cap(limits.open_incidents);
        self.by_source.set_cap(limits.group_keys);
        self.by_target.set_cap(limits.group_keys);
        self.by_id.clear();
        self.by_alert.clear();
        self.ungrouped.clear();
        for (k, r) in self.records.iter() {
            if r.incident.is_none() {
                self.ungrouped.insert(r.id);
            }
            self.by_id.insert(r.id, k.clone());
            self.by_alert.insert(r.first_alert_id, r.id);
            self.by_alert.insert(r.last_alert_id, r.id);
        }
        dropped
    }

    /// A fresh id stamped `t`.
    pub(crate) fn new_id(&mut self, t: i64) -> Uuid {
        self.ids.next(t)
    }

    /// Counters.
    pub fn counters(&self) -> LifecycleCounters {
        self.counters
    }

    /// Records evicted and incidents evicted because of the caps, and grouping keys evicted.
    pub fn evictions(&self) -> (u64, u64, u64) {
        (self.records.evicted(), self.incidents.evicted(), self.by_source.evicted() + self.by_target.evicted())
    }

    /// Open records, least recently seen first.
    pub fn records(&self) -> impl Iterator<Item = &AlertRecord> {
        self.records.iter().map(|(_, r)| &*r.item)
    }

    /// How many records and incidents are open.
    pub fn open_counts(&self) -> (usize, usize) {
        (self.records.len(), self.incidents.len())
    }

    /// Open incidents, least recently active first.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.iter().map(|(_, i)| &*i.item)
    }

    /// The open record `id`.
    pub fn record(&self, id: Uuid) -> Option<&AlertRecord> {
        self.by_id.get(&id).and_then(|k| self.records.get(k)).map(|r| &*r.item)
    }

    /// The open incident `id`.
    pub fn incident(&self, id: Uuid) -> Option<&Incident> {
        self.incidents.get(&id).map(|i| &*i.item)
    }

    /// Active silences.
    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    fn silence_for(&self, key: &DedupKey, agent: Option<&AgentId>, now: i64) -> Option<Uuid> {
        self.silences.iter().find(|s| ms(s.expires_at) > now && s.matcher.matches(key, agent)).map(|s| s.id)
    }

    fn notify(&mut self, n: Notification, cfg: &LifecycleConfig, out: &mut Vec<PipelineEvent>) {
        if n.severity < cfg.notify_min_severity {
            return;
        }
        self.counters.notifications += 1;
        out.push(PipelineEvent::Notify(n));
    }

    /// Counts `alert` (observed at `t`, clamped to `now` by the caller) into its record.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ingest(
        &mut self,
        alert: &Alert,
        t: i64,
        now: i64,
        opts: IngestOpts,
        cfg: &LifecycleConfig,
        limits: &Limits,
        out: &mut Vec<PipelineEvent>,
    ) -> Ingested {
        self.counters.alerts += 1;
        let key = DedupKey::of(alert);
        let silence = self.silence_for(&key, alert.agent.as_ref(), now);
        if let Some(rec) = self.records.get_mut(&key) {
            self.counters.merged += 1;
            rec.count += 1;
            if t > ms(rec.last_seen) {
                rec.last_seen = at(t);
                if rec.last_alert_id != rec.first_alert_id {
                    self.by_alert.remove(&rec.last_alert_id);
                }
                rec.last_alert_id = alert.id;
                self.by_alert.insert(alert.id, rec.id);
            }
            if t < ms(rec.first_seen) {
                rec.first_seen = at(t);
            }
            if let Some(a) = &alert.agent
                && !rec.agents.contains(a)
            {
                let rec = &mut **rec;
                push_capped(&mut rec.agents, a.clone(), limits.links, &mut rec.links_dropped);
            }
            rec.reported_severity = rec.reported_severity.max(alert.severity);
            let before = rec.severity;
            rec.severity = escalate(rec.reported_severity, rec.count, rec.agents.len(), cfg);
            rec.silenced_by = silence;
            let (id, sev, incident) = (rec.id, rec.severity, rec.incident);
            let escalated = sev > before;
            let stamp = ms(rec.last_seen);
            self.records.touch(&key, stamp);
            if opts.backfill {
                self.counters.backfilled += 1;
                out.push(PipelineEvent::AlertBackfilled {
                    alert_id: alert.id,
                    agent: alert.agent.clone(),
                    merged_into: Some(id),
                });
            }
            self.emit_record(&key, escalated, now, cfg, out);
            if escalated && !opts.backfill && !opts.quiet {
                if silence.is_some() {
                    self.counters.silenced += 1;
                } else {
                    let title = self.records.get(&key).map(|r| r.summary.clone()).unwrap_or_default();
                    self.notify(
                        Notification {
                            subject: Subject::Alert(id),
                            severity: sev,
                            title,
                            reason: NotifyReason::Escalated,
                            at: at(now),
                        },
                        cfg,
                        out,
                    );
                }
            }
            match incident {
                Some(inc) => {
                    let touch = Touch {
                        record: Some(id),
                        raw: None,
                        agents: Cow::Borrowed(alert.agent.as_slice()),
                        category: alert.category,
                        severity: sev,
                        add: 1,
                        t,
                    };
                    self.touch_incident(inc, touch, now, cfg, limits, out);
                }
                None if !opts.backfill && !opts.no_group => self.group(&key, t, now, cfg, limits, out),
                None => {}
            }
            return Ingested { record: Some(id), opened: false, backfilled: opts.backfill };
        }
        if opts.backfill {
            self.counters.backfilled += 1;
            out.push(PipelineEvent::AlertBackfilled {
                alert_id: alert.id,
                agent: alert.agent.clone(),
                merged_into: None,
            });
            return Ingested { record: None, opened: false, backfilled: true };
        }
        let id = self.ids.next(t);
        let severity = escalate(alert.severity, 1, usize::from(alert.agent.is_some()), cfg);
        let rec = AlertRecord {
            id,
            key: key.clone(),
            state: State::Open,
            severity,
            reported_severity: alert.severity,
            count: 1,
            first_seen: at(t),
            last_seen: at(t),
            agents: alert.agent.iter().cloned().collect(),
            first_alert_id: alert.id,
            last_alert_id: alert.id,
            summary: alert.summary.clone(),
            evidence: alert.evidence.clone(),
            mitre: alert.mitre.clone(),
            incident: None,
            silenced_by: silence,
            held: opts.held,
            acknowledged_at: None,
            links_dropped: 0,
        };
        let rec = Tracked::new(rec, now);
        self.counters.records_opened += 1;
        out.push(PipelineEvent::AlertOpened(rec.share()));
        if let Some((old_key, old)) = self.records.insert(key.clone(), rec, t) {
            self.forget_record(&old_key, &old);
            out.push(PipelineEvent::Resolved {
                subject: Subject::Alert(old.id),
                at: at(now),
                reason: ResolveReason::Evicted,
            });
        }
        self.by_id.insert(id, key.clone());
        self.by_alert.insert(alert.id, id);
        self.ungrouped.insert(id);
        if !opts.quiet {
            if silence.is_some() {
                self.counters.silenced += 1;
            } else {
                self.notify(
                    Notification {
                        subject: Subject::Alert(id),
                        severity,
                        title: alert.summary.clone(),
                        reason: NotifyReason::Opened,
                        at: at(now),
                    },
                    cfg,
                    out,
                );
            }
        }
        if !opts.no_group {
            self.group(&key, t, now, cfg, limits, out);
        }
        Ingested { record: Some(id), opened: true, backfilled: false }
    }

    fn forget_record(&mut self, _key: &DedupKey, rec: &AlertRecord) {
        self.by_id.remove(&rec.id);
        self.ungrouped.remove(&rec.id);
        self.by_alert.remove(&rec.first_alert_id);
        self.by_alert.remove(&rec.last_alert_id);
    }

    /// Emits the record's update now, or marks it for `tick` when one went out recently.
    fn emit_record(
        &mut self,
        key: &DedupKey,
        force: bool,
        now: i64,
        cfg: &LifecycleConfig,
        out: &mut Vec<PipelineEvent>,
    ) {
        let Some(rec) = self.records.get_mut(key) else { return };
        let interval = i64::try_from(cfg.update_interval_ms).unwrap_or(i64::MAX);
        if force || now - rec.last_emit_ms >= interval {
            rec.last_emit_ms = now;
            rec.dirty = false;
            out.push(PipelineEvent::AlertUpdated(rec.share()));
        } else if !rec.dirty {
            rec.dirty = true;
            self.dirty.push(Subject::Alert(rec.id));
        }
    }

    fn emit_incident(&mut self, id: Uuid, force: bool, now: i64, cfg: &LifecycleConfig, out: &mut Vec<PipelineEvent>) {
        let Some(inc) = self.incidents.get_mut(&id) else { return };
        let interval = i64::try_from(cfg.update_interval_ms).unwrap_or(i64::MAX);
        if force || now - inc.last_emit_ms >= interval {
            inc.last_emit_ms = now;
            inc.dirty = false;
            out.push(PipelineEvent::IncidentUpdated(inc.share()));
        } else if !inc.dirty {
            inc.dirty = true;
            self.dirty.push(Subject::Incident(id));
        }
    }

    /// Attacker / target grouping of the record at `key`.
    fn group(
        &mut self,
        key: &DedupKey,
        t: i64,
        now: i64,
        cfg: &LifecycleConfig,
        limits: &Limits,
        out: &mut Vec<PipelineEvent>,
    ) {
        let Some(rec) = self.records.get(key) else { return };
        if rec.severity < cfg.group_min_severity || rec.incident.is_some() {
            return;
        }
        let rec_id = rec.id;
        let window = secs_ms(cfg.group_window_secs);
        for (ip, by_source) in [(key.src, true), (key.dst, false)] {
            let Some(ip) = ip else { continue };
            let map = if by_source { &mut self.by_source } else { &mut self.by_target };
            if map.get(&ip).is_none() {
                map.insert(ip, Group { last_ms: t, records: Vec::new(), incident: None }, t);
            }
            let Some(g) = map.get_mut(&ip) else { continue };
            if t - g.last_ms > window {
                g.records.clear();
                g.incident = None;
            }
            g.last_ms = g.last_ms.max(t);
            let stamp = g.last_ms;
            let existing = g.incident;
            map.touch(&ip, stamp);
            if let Some(inc) = existing.filter(|i| self.incidents.get(i).is_some()) {
                self.attach(key, inc, now, cfg, limits, out);
                return;
            }
            let g = if by_source { self.by_source.get_mut(&ip) } else { self.by_target.get_mut(&ip) };
            let Some(g) = g else { continue };
            g.incident = None;
            if !g.records.contains(&rec_id) {
                if g.records.len() >= GROUP_RECORDS {
                    g.records.remove(0);
                }
                g.records.push(rec_id);
            }
            // Only records still open (and not taken by another incident) count.
            let members: Vec<Uuid> = g.records.iter().copied().filter(|r| self.ungrouped.contains(r)).collect();
            if members.len() < cfg.group_min_alerts {
                continue;
            }
            let (mut agents, mut cats, mut sev, mut count, mut silenced, mut first) =
                (Vec::new(), Vec::new(), Severity::Info, 0, true, t);
            let mut dropped = 0;
            for r in &members {
                if let Some(rec) = self.by_id.get(r).and_then(|k| self.records.get(k)) {
                    for a in &rec.agents {
                        push_capped(&mut agents, a.clone(), limits.links, &mut dropped);
                    }
                    push_capped(&mut cats, rec.key.category, limits.links, &mut dropped);
                    sev = sev.max(rec.severity);
                    count += rec.count;
                    silenced &= rec.silenced_by.is_some();
                    first = first.min(ms(rec.first_seen));
                }
            }
            let (kind, title) = if by_source {
                (IncidentKind::Attacker, format!("Related alerts from {ip}"))
            } else {
                (IncidentKind::Target, format!("Related alerts against {ip}"))
            };
            let severity = if agents.len() >= cfg.escalate_agents { bump(sev, 1) } else { sev };
            let id = self.open_incident(
                NewIncident {
                    kind,
                    title,
                    severity,
                    t: first,
                    source: by_source.then_some(ip),
                    target: (!by_source).then_some(ip),
                    peer: None,
                    records: members.clone(),
                    alert_ids: Vec::new(),
                    agents,
                    categories: cats,
                    count,
                    evidence: serde_json::json!({}),
                    silenced,
                },
                now,
                cfg,
                out,
            );
            if let Some(inc) = self.incidents.get_mut(&id) {
                inc.last_seen = at(t.max(first));
                inc.links_dropped += dropped;
            }
            self.incidents.touch(&id, t.max(first));
            let g = if by_source { self.by_source.get_mut(&ip) } else { self.by_target.get_mut(&ip) };
            if let Some(g) = g {
                g.incident = Some(id);
            }
            for r in members {
                if let Some(k) = self.by_id.get(&r).cloned() {
                    self.set_incident(&k, id, now, cfg, out);
                }
            }
            return;
        }
    }

    fn set_incident(
        &mut self,
        key: &DedupKey,
        incident: Uuid,
        now: i64,
        cfg: &LifecycleConfig,
        out: &mut Vec<PipelineEvent>,
    ) {
        if let Some(rec) = self.records.get_mut(key) {
            rec.incident = Some(incident);
            self.ungrouped.remove(&rec.id);
            self.emit_record(key, true, now, cfg, out);
        }
    }

    /// Adds the record at `key` to incident `inc`.
    fn attach(
        &mut self,
        key: &DedupKey,
        inc: Uuid,
        now: i64,
        cfg: &LifecycleConfig,
        limits: &Limits,
        out: &mut Vec<PipelineEvent>,
    ) {
        self.set_incident(key, inc, now, cfg, out);
        // A handle on the record (not a copy) lends the touch its agents; nothing below
        // changes the record, so holding it copies nothing.
        let Some(rec) = self.records.get(key).map(Tracked::share) else { return };
        let touch = Touch {
            record: Some(rec.id),
            raw: None,
            agents: Cow::Borrowed(&rec.agents),
            category: rec.key.category,
            severity: rec.severity,
            add: rec.count,
            t: ms(rec.last_seen),
        };
        self.touch_incident(inc, touch, now, cfg, limits, out);
    }

    /// Records new evidence for incident `inc`.
    pub(crate) fn touch_incident(
        &mut self,
        inc: Uuid,
        e: Touch<'_>,
        now: i64,
        cfg: &LifecycleConfig,
        limits: &Limits,
        out: &mut Vec<PipelineEvent>,
    ) {
        let Some(tracked) = self.incidents.get_mut(&inc) else { return };
        let (i, prints) = tracked.parts_mut();
        prints.sync(i);
        let before = i.severity;
        let mut d = i.links_dropped;
        if let Some(r) = e.record {
            push_printed(&mut i.records, &mut prints.records, &r, print_id(&r), limits.links, &mut d);
        }
        if let Some(r) = e.raw {
            push_printed(&mut i.alert_ids, &mut prints.alert_ids, &r, print_id(&r), limits.links, &mut d);
        }
        for a in e.agents.iter() {
            // Cloned only when new.
            push_printed(&mut i.agents, &mut prints.agents, a, print_agent(a), limits.links, &mut d);
        }
        push_capped(&mut i.categories, e.category, limits.links, &mut d);
        i.links_dropped = d;
        i.count += e.add;
        i.base_severity = i.base_severity.max(e.severity);
        let escalated_sev =
            if i.agents.len() >= cfg.escalate_agents { bump(i.base_severity, 1) } else { i.base_severity };
        i.severity = i.severity.max(escalated_sev);
        if e.t > ms(i.last_seen) {
            i.last_seen = at(e.t);
        }
        let stamp = ms(i.last_seen);
        let escalated = i.severity > before;
        // The title is copied only for a notification.
        let note = (escalated && !i.silenced).then(|| (i.title.clone(), i.severity));
        self.incidents.touch(&inc, stamp);
        self.emit_incident(inc, escalated, now, cfg, out);
        if let Some((title, sev)) = note {
            self.notify(
                Notification {
                    subject: Subject::Incident(inc),
                    severity: sev,
                    title,
                    reason: NotifyReason::Escalated,
                    at: at(now),
                },
                cfg,
                out,
            );
        }
    }

    /// Raises incident `inc` to at least `severity` (rules with their own escalation).
    pub(crate) fn raise_incident(
        &mut self,
        inc: Uuid,
        severity: Severity,
        now: i64,
        cfg: &LifecycleConfig,
        out: &mut Vec<PipelineEvent>,
    ) {
        let Some(i) = self.incidents.get_mut(&inc) else { return };
        if severity <= i.severity {
            return;
        }
        i.severity = severity;
        i.base_severity = i.base_severity.max(severity);
        let (title, silenced) = (i.title.clone(), i.silenced);
        self.emit_incident(inc, true, now, cfg, out);
        if !silenced {
            self.notify(
                Notification {
                    subject: Subject::Incident(inc),
                    severity,
                    title,
                    reason: NotifyReason::Escalated,
                    at: at(now),
                },
                cfg,
                out,
            );
        }
    }

    /// Replaces the rule-specific evidence of incident `inc`.
    pub(crate) fn set_incident_evidence(
        &mut self,
        inc: Uuid,
        evidence: serde_json::Value,
        now: i64,
        cfg: &LifecycleConfig,
        out: &mut Vec<PipelineEvent>,
    ) {
        if let Some(i) = self.incidents.get_mut(&inc) {
            i.evidence = evidence;
        }
        self.emit_incident(inc, false, now, cfg, out);
    }

    /// Links the record `record` to incident `inc` (for incidents opened by rules).
    pub(crate) fn link_record(
        &mut self,
        record: Uuid,
        inc: Uuid,
        now: i64,
        cfg: &LifecycleConfig,
        out: &mut Vec<PipelineEvent>,
    ) {
        if let Some(k) = self.by_id.get(&record).cloned() {
            self.set_incident(&k, inc, now, cfg, out);
        }
    }

    /// Whether incident `id` is open (or acknowledged).
    pub(crate) fn incident_open(&self, id: Uuid) -> bool {
        self.incidents.get(&id).is_some()
    }

    /// Opens an incident and notifies it.
    pub(crate) fn open_incident(
        &mut self,
        n: NewIncident,
        now: i64,
        cfg: &LifecycleConfig,
        out: &mut Vec<PipelineEvent>,
    ) -> Uuid {
        let id = self.ids.next(n.t);
        let inc = Incident {
            id,
            kind: n.kind,
            title: n.title.clone(),
            state: State::Open,
            severity: n.severity,
            base_severity: n.severity,
            first_seen: at(n.t),
            last_seen: at(n.t),
            source: n.source,
            target: n.target,
            peer: n.peer,
            records: n.records,
            alert_ids: n.alert_ids,
            agents: n.agents,
            categories: n.categories,
            count: n.count,
            evidence: n.evidence,
            silenced: n.silenced,
            acknowledged_at: None,
            links_dropped: 0,
        };
        let inc = Tracked::new(inc, now);
        self.counters.incidents_opened += 1;
        out.push(PipelineEvent::IncidentOpened(inc.share()));
        if let Some((_, old)) = self.incidents.insert(id, inc, n.t) {
            out.push(PipelineEvent::Resolved {
                subject: Subject::Incident(old.id),
                at: at(now),
                reason: ResolveReason::Evicted,
            });
        }
        if n.silenced {
            self.counters.silenced += 1;
        } else {
            self.notify(
                Notification {
                    subject: Subject::Incident(id),
                    severity: n.severity,
                    title: n.title,
                    reason: NotifyReason::Opened,
                    at: at(now),
                },
                cfg,
                out,
            );
        }
        id
    }

    /// Turns the open attacker-less "related alerts against `target`" incident, if any, into
    /// a DoS incident (one incident per target). Returns its id.
    pub(crate) fn promote_target_incident(
        &mut self,
        target: IpAddr,
        evidence: serde_json::Value,
        now: i64,
        cfg: &LifecycleConfig,
        out: &mut Vec<PipelineEvent>,
    ) -> Option<Uuid> {
        let inc = self.by_target.get(&target)?.incident?;
        let i = self.incidents.get_mut(&inc)?;
        if i.kind != IncidentKind::Target {
            return None;
        }
        i.kind = IncidentKind::DosSuspected;
        i.title = format!("Suspected DoS against {target}");
        i.evidence = evidence;
        i.base_severity = Severity::Critical;
        let before = i.severity;
        i.severity = Severity::Critical;
        let (title, silenced) = (i.title.clone(), i.silenced);
        self.emit_incident(inc, true, now, cfg, out);
        if before < Severity::Critical && !silenced {
            self.notify(
                Notification {
                    subject: Subject::Incident(inc),
                    severity: Severity::Critical,
                    title,
                    reason: NotifyReason::Escalated,
                    at: at(now),
                },
                cfg,
                out,
            );
        }
        Some(inc)
    }

    /// Whether a record with this key would be silenced now.
    pub(crate) fn silenced(&self, key: &DedupKey, agent: Option<&AgentId>, now: i64) -> bool {
        self.silence_for(key, agent, now).is_some()
    }

    /// Resolves a record or incident. Returns false when it is not open.
    pub(crate) fn resolve(
        &mut self,
        subject: Subject,
        reason: ResolveReason,
        now: i64,
        out: &mut Vec<PipelineEvent>,
    ) -> bool {
        match subject {
            Subject::Alert(id) => {
                let Some(key) = self.by_id.get(&id).cloned() else { return false };
                let Some(rec) = self.records.remove(&key) else { return false };
                self.forget_record(&key, &rec);
            }
            Subject::Incident(id) => {
                if self.incidents.remove(&id).is_none() {
                    return false;
                }
            }
        }
        out.push(PipelineEvent::Resolved { subject, at: at(now), reason });
        true
    }

    /// Resolves the record holding raw alert `alert_id` (its first or latest occurrence).
    pub(crate) fn resolve_by_alert(
        &mut self,
        alert_id: Uuid,
        reason: ResolveReason,
        now: i64,
        out: &mut Vec<PipelineEvent>,
    ) -> bool {
        match self.by_alert.get(&alert_id).copied() {
            Some(rec) => self.resolve(Subject::Alert(rec), reason, now, out),
            None => false,
        }
    }

    /// Open → acknowledged.
    pub(crate) fn acknowledge(
        &mut self,
        subject: Subject,
        now: i64,
        cfg: &LifecycleConfig,
        out: &mut Vec<PipelineEvent>,
    ) -> Result<(), PipelineError> {
        match subject {
            Subject::Alert(id) => {
                let key = self.by_id.get(&id).cloned().ok_or(PipelineError::NotFound(subject))?;
                let rec = self.records.get_mut(&key).ok_or(PipelineError::NotFound(subject))?;
                if rec.state == State::Open {
                    rec.state = State::Acknowledged;
                    rec.acknowledged_at = Some(at(now));
                    self.emit_record(&key, true, now, cfg, out);
                }
            }
            Subject::Incident(id) => {
                let inc = self.incidents.get_mut(&id).ok_or(PipelineError::NotFound(subject))?;
                if inc.state == State::Open {
                    inc.state = State::Acknowledged;
                    inc.acknowledged_at = Some(at(now));
                    self.emit_incident(id, true, now, cfg, out);
                }
            }
        }
        Ok(())
    }

    /// The open record whose first or latest occurrence is raw alert `alert_id`.
    pub fn record_of_alert(&self, alert_id: Uuid) -> Option<Uuid> {
        self.by_alert.get(&alert_id).copied()
    }

    /// Adds a silence (with id `id`, or a fresh one; a silence with the same id is
    /// replaced). Records already open are re-checked at their next occurrence.
    pub(crate) fn add_silence(
        &mut self,
        spec: SilenceSpec,
        id: Option<Uuid>,
        now: i64,
        limits: &Limits,
    ) -> Result<Silence, PipelineError> {
        let m = &spec.matcher;
        if m.category.is_none() && m.agent.is_none() && m.source.is_none() {
            return Err(PipelineError::SilenceMatchesEverything);
        }
        if ms(spec.expires_at) <= now {
            return Err(PipelineError::SilenceExpiry {
                expires_at: spec.expires_at.to_rfc3339(),
                now: at(now).to_rfc3339(),
            });
        }
        self.silences.retain(|s| ms(s.expires_at) > now && Some(s.id) != id);
        if self.silences.len() >= limits.silences {
            return Err(PipelineError::TooManySilences(limits.silences));
        }
        let s = Silence {
            id: id.unwrap_or_else(|| self.ids.next(now)),
            matcher: spec.matcher,
            created_at: at(now),
            expires_at: spec.expires_at,
            comment: spec.comment.chars().take(256).collect(),
        };
        self.silences.push(s.clone());
        Ok(s)
    }

    /// Removes a silence.
    pub(crate) fn remove_silence(&mut self, id: Uuid) -> Result<Silence, PipelineError> {
        let i = self.silences.iter().position(|s| s.id == id).ok_or(PipelineError::NoSuchSilence(id))?;
        Ok(self.silences.remove(i))
    }

    /// Expires silences, resolves quiet records and incidents, drops stale grouping keys
    /// and flushes rate-limited updates.
    pub(crate) fn tick(&mut self, now: i64, cfg: &LifecycleConfig, out: &mut Vec<PipelineEvent>) {
        let mut expired = Vec::new();
        self.silences.retain(|s| {
            let keep = ms(s.expires_at) > now;
            if !keep {
                expired.push(s.id);
            }
            keep
        });
        out.extend(expired.into_iter().map(|id| PipelineEvent::SilenceExpired { id }));

        let quiet: Vec<Uuid> = self
            .records
            .keys_up_to(now - secs_ms(cfg.quiet_period_secs))
            .filter_map(|k| self.records.get(k))
            .filter(|r| !r.held)
            .map(|r| r.id)
            .collect();
        for id in quiet {
            self.resolve(Subject::Alert(id), ResolveReason::Quiet, now, out);
        }
        let quiet: Vec<Uuid> =
            self.incidents.keys_up_to(now - secs_ms(cfg.incident_quiet_period_secs)).copied().collect();
        for id in quiet {
            self.resolve(Subject::Incident(id), ResolveReason::Quiet, now, out);
        }
        let window = secs_ms(cfg.group_window_secs);
        for map in [&mut self.by_source, &mut self.by_target] {
            while map.oldest().is_some_and(|(_, stamp)| stamp + window < now) {
                map.pop_oldest();
            }
        }
        for s in std::mem::take(&mut self.dirty) {
            match s {
                Subject::Alert(id) => {
                    if let Some(k) = self.by_id.get(&id).cloned()
                        && self.records.get(&k).is_some_and(|r| r.dirty)
                    {
                        self.emit_record(&k, true, now, cfg, out);
                    }
                }
                Subject::Incident(id) => {
                    if self.incidents.get(&id).is_some_and(|i| i.dirty) {
                        self.emit_incident(id, true, now, cfg, out);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;
    use crate::util::SplitMix64;

    /// Printed lists behave exactly like `push_capped` (same items, same drops), also when
    /// prints collide (ids crafted so that every print is the same).
    #[test]
    fn printed_lists_match_push_capped_even_with_colliding_prints() {
        for (seed, colliding) in [(1u64, false), (2, true), (3, true)] {
            let mut r = SplitMix64::new(seed);
            let id = |r: &mut SplitMix64| {
                let x = u128::from(r.below(300) as u64);
                // Flipping the same bit in two 32-bit words keeps the folded print.
                Uuid::from_u128(if colliding { x | (x << 32) } else { x.wrapping_mul(0x9E37_79B9_7F4A_7C15) })
            };
            let (mut plain, mut printed, mut prints) = (Vec::new(), Vec::new(), Vec::new());
            let (mut d1, mut d2) = (0u64, 0u64);
            for _ in 0..2000 {
                let item = id(&mut r);
                push_capped(&mut plain, item, 64, &mut d1);
                push_printed(&mut printed, &mut prints, &item, print_id(&item), 64, &mut d2);
                assert_eq!(plain, printed);
                assert_eq!(d1, d2);
            }
            assert!(d1 > 0, "the cap was reached");
            if colliding {
                assert!(prints.windows(2).all(|w| w[0] == w[1]), "the ids do collide");
            }
        }
    }

    #[test]
    fn prints_follow_a_restored_incident() {
        let agents: Vec<AgentId> = (0..40).filter_map(|i| AgentId::new(format!("agent-{i}")).ok()).collect();
        let mut p = LinkPrints::default();
        let mut inc = Incident {
            id: Uuid::nil(),
            kind: IncidentKind::Target,
            title: String::new(),
            state: State::Open,
            severity: Severity::Low,
            base_severity: Severity::Low,
            first_seen: at(0),
            last_seen: at(0),
            source: None,
            target: None,
            peer: None,
            records: Vec::new(),
            alert_ids: Vec::new(),
            agents: agents[..20].to_vec(),
            categories: Vec::new(),
            count: 0,
            evidence: serde_json::Value::Null,
            silenced: false,
            acknowledged_at: None,
            links_dropped: 0,
        };
        p.sync(&inc);
        let mut d = 0;
        for a in &agents {
            push_printed(&mut inc.agents, &mut p.agents, a, print_agent(a), 30, &mut d);
        }
        assert_eq!(inc.agents, agents[..30].to_vec());
        assert_eq!(d, 10);
        assert_eq!(p.agents.len(), 30);
    }
}
