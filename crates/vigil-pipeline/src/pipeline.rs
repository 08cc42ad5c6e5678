//! [`Pipeline`]: the one object the server drives. Every call takes the current time and
//! appends what happened to an event buffer the caller owns.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_model::{AgentId, AgentInfo, Alert, AlertResolved, Category, Severity};

use crate::anomaly::{AgentDetector, AnomalyFacts, AnomalySignal};
use crate::baseline::{EndReason, Floor, SeriesBaseline, Signal, SpikeFacts};
use crate::churn::Churn;
use crate::config::{ConfigError, PipelineConfig};
use crate::dos::{DosCorrelator, DosCounters, DosOutcome, Trigger};
use crate::error::PipelineError;
use crate::event::{PipelineEvent, ResolveReason, Subject};
use crate::iforest::IsolationForest;
use crate::lifecycle::{
    AlertRecord, DedupKey, Incident, IncidentKind, IngestOpts, Ingested, Lifecycle, LifecycleCounters, NewIncident,
    Silence, SilenceSpec, Touch,
};
use crate::metrics::{ALERT_RATE, METRIC_NAME_MAX, MetricBatch};
use crate::monitor::{MonitorOutcome, MonitorWatch};
use crate::util::{BoundedMap, at, ms, secs_ms};

/// Identifies one baseline series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The agent.
    pub agent: AgentId,
    /// The metric name.
    pub metric: String,
}

/// Counters of inputs the pipeline refused or could not keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InputCounters {
    /// Metric points accepted.
    pub metric_points: u64,
    /// Metric points refused: empty or over-long name, non-finite value.
    pub metric_rejected: u64,
}

/// Everything the pipeline remembers. Persist it with serde (JSON: the alert evidence is
/// free-form JSON) and hand it back to [`Pipeline::restore`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineState {
    /// Records, incidents, silences.
    pub lifecycle: Lifecycle,
    /// DoS windows.
    pub dos: DosCorrelator,
    /// Attacks on the monitor.
    pub monitor: MonitorWatch,
    /// Baselines per agent and metric.
    pub baselines: BoundedMap<SeriesKey, SeriesBaseline>,
    /// Anomaly detectors per agent.
    pub anomaly: BoundedMap<AgentId, AgentDetector>,
    /// Agent presence.
    pub churn: Churn,
    /// Input counters.
    pub inputs: InputCounters,
}

/// Every counter, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Lifecycle counters.
    pub lifecycle: LifecycleCounters,
    /// DoS correlator counters.
    pub dos: DosCounters,
    /// Input counters.
    pub inputs: InputCounters,
    /// Open records resolved early because `limits.open_alerts` was reached.
    pub evicted_alerts: u64,
    /// Open incidents resolved early because `limits.open_incidents` was reached.
    pub evicted_incidents: u64,
    /// Grouping keys (source/destination addresses) dropped at `limits.group_keys`.
    pub evicted_group_keys: u64,
    /// DoS destinations dropped at `limits.dos_targets`.
    pub evicted_dos_targets: u64,
    /// Monitor-attack peers dropped at `limits.monitor_peers`.
    pub evicted_monitor_peers: u64,
    /// Baseline series dropped at `limits.series`.
    pub evicted_series: u64,
    /// Agents dropped at `limits.agents` (presence, anomaly models).
    pub evicted_agents: u64,
    /// Open records now.
    pub open_alerts: u64,
    /// Open incidents now.
    pub open_incidents: u64,
}

/// The server-side pipeline. Pure: no I/O, no clock, no globals; given the same config,
/// state and inputs it produces the same events.
#[derive(Debug, Clone)]
pub struct Pipeline {
    cfg: PipelineConfig,
    state: PipelineState,
    template: IsolationForest,
    features: HashMap<String, usize>,
    scratch: Vec<f64>,
}

fn reason_of(r: EndReason) -> ResolveReason {
    match r {
        EndReason::Cleared => ResolveReason::Cleared,
        EndReason::Adapted => ResolveReason::Adapted,
    }
}

impl Pipeline {
    /// A pipeline with empty state.
    pub fn new(cfg: PipelineConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let l = &cfg.limits;
        let state = PipelineState {
            lifecycle: Lifecycle::new(l, cfg.seed),
            dos: DosCorrelator::new(l),
            monitor: MonitorWatch::new(l),
            baselines: BoundedMap::new(l.series),
            anomaly: BoundedMap::new(l.agents),
            churn: Churn::new(l),
            inputs: InputCounters::default(),
        };
        Ok(Self::assemble(cfg, state))
    }

    /// A pipeline continuing from persisted `state` (caps of `cfg` apply; entries over
    /// them are dropped and counted).
    pub fn restore(cfg: PipelineConfig, mut state: PipelineState) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let l = &cfg.limits;
        state.lifecycle.rebuild_indexes(l);
        state.dos.apply_limits(l);
        state.monitor.apply_limits(l);
        state.baselines.set_cap(l.series);
        state.anomaly.set_cap(l.agents);
        state.churn.apply_limits(l);
        Ok(Self::assemble(cfg, state))
    }

    fn assemble(cfg: PipelineConfig, state: PipelineState) -> Self {
        let template = IsolationForest::new(cfg.anomaly.trees, cfg.anomaly.sample_size);
        let features = cfg.anomaly.features.iter().enumerate().map(|(i, f)| (f.clone(), i)).collect();
        Self { cfg, state, template, features, scratch: Vec::new() }
    }

    /// The config in force.
    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// The state, to persist.
    pub fn state(&self) -> &PipelineState {
        &self.state
    }

    /// Gives up the state, to persist.
    pub fn into_state(self) -> PipelineState {
        self.state
    }

    /// Open alert records, least recently seen first.
    pub fn open_alerts(&self) -> impl Iterator<Item = &AlertRecord> {
        self.state.lifecycle.records()
    }

    /// Open incidents, least recently active first.
    pub fn open_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.state.lifecycle.incidents()
    }

    /// The open record `id`.
    pub fn alert_record(&self, id: Uuid) -> Option<&AlertRecord> {
        self.state.lifecycle.record(id)
    }

    /// The open incident `id`.
    pub fn incident(&self, id: Uuid) -> Option<&Incident> {
        self.state.lifecycle.incident(id)
    }

    /// Active silences.
    pub fn silences(&self) -> &[Silence] {
        self.state.lifecycle.silences()
    }

    /// Every counter.
    pub fn counters(&self) -> Counters {
        let s = &self.state;
        let (ea, ei, eg) = s.lifecycle.evictions();
        let (open_alerts, open_incidents) = s.lifecycle.open_counts();
        Counters {
            lifecycle: s.lifecycle.counters(),
            dos: s.dos.counters(),
            inputs: s.inputs,
            evicted_alerts: ea,
            evicted_incidents: ei,
            evicted_group_keys: eg,
            evicted_dos_targets: s.dos.evicted(),
            evicted_monitor_peers: s.monitor.evicted(),
            evicted_series: s.baselines.evicted(),
            evicted_agents: s.anomaly.evicted() + s.churn.evicted(),
            open_alerts: open_alerts as u64,
            open_incidents: open_incidents as u64,
        }
    }

    /// Marks `agent` as heard from at `now`; resolves its offline alert when it was away.
    fn agent_seen(&mut self, agent: &AgentId, now: i64, interval_ms: Option<i64>, out: &mut Vec<PipelineEvent>) {
        let (returned, evicted) = self.state.churn.seen(agent, now, interval_ms, &self.cfg.churn);
        if let Some(a) = evicted {
            self.state.lifecycle.resolve_by_alert(a, ResolveReason::Evicted, now, out);
        }
        if let Some(r) = returned {
            if let Some(a) = r.alert {
                self.state.lifecycle.resolve_by_alert(a, ResolveReason::AgentReturned, now, out);
            }
            out.push(PipelineEvent::AgentStatus { agent: agent.clone(), online: true, at: at(now) });
        }
    }

    fn is_backfill(&self, agent: Option<&AgentId>, t: i64, now: i64) -> bool {
        t < now - secs_ms(self.cfg.lifecycle.backfill_age_secs)
            || agent.is_some_and(|a| self.state.churn.is_backfill(a, t))
    }

    /// Takes one alert reported by an agent (or raised by the server, e.g.
    /// `integrity_failure`). Store the raw alert yourself; the result says which record it
    /// was counted in.
    pub fn ingest_alert(&mut self, alert: &Alert, now: DateTime<Utc>, out: &mut Vec<PipelineEvent>) -> Ingested {
        let now = ms(now);
        let t = ms(alert.timestamp).min(now);
        if let Some(agent) = &alert.agent {
            self.agent_seen(agent, now, None, out);
            if let Some(p) = self.state.churn.presence_mut(agent) {
                p.alerts_since_batch = p.alerts_since_batch.saturating_add(1);
            }
        }
        let backfill = self.is_backfill(alert.agent.as_ref(), t, now);
        let monitor_kind = matches!(alert.category, Category::IntegrityFailure | Category::ReplayAttempt);
        let opts = IngestOpts { backfill, no_group: monitor_kind, ..IngestOpts::default() };
        let PipelineState { lifecycle, dos, .. } = &mut self.state;
        let ingested = lifecycle.ingest(alert, t, now, opts, &self.cfg.lifecycle, &self.cfg.limits, out);
        if backfill {
            return ingested;
        }
        // The incident keeps the evidence of its heaviest window.
        let rate = |v: &serde_json::Value| v["combined_rate_pps"].as_f64().unwrap_or(0.0);
        let alerts = |v: &serde_json::Value| v["alerts"].as_u64().unwrap_or(0);
        let heavier = |i: Uuid, r: f64, n: u64| {
            lifecycle.incident(i).is_some_and(|inc| (r, n) > (rate(&inc.evidence), alerts(&inc.evidence)))
        };
        match dos.observe(alert, t, &self.cfg.dos, &self.cfg.limits, |i| lifecycle.incident_open(i), heavier) {
            DosOutcome::None => {}
            DosOutcome::Trigger(trig) => self.raise_dos(trig, now, out),
            DosOutcome::Update { incident, evidence } => {
                // A record already in the incident was counted by the lifecycle.
                let counted = ingested
                    .record
                    .and_then(|r| lifecycle.record(r))
                    .is_some_and(|r| r.incident == Some(incident) && !ingested.opened);
                let touch = Touch {
                    record: None,
                    raw: Some(alert.id),
                    agents: Cow::Borrowed(alert.agent.as_slice()),
                    category: alert.category,
                    severity: alert.severity,
                    add: u64::from(!counted),
                    t,
                };
                lifecycle.touch_incident(incident, touch, now, &self.cfg.lifecycle, &self.cfg.limits, out);
                // (Refreshed at most once a second of alert time: see `dos`.)
                if let Some(evidence) = evidence
                    && lifecycle.incident(incident).is_some_and(|i| {
                        (rate(&evidence), alerts(&evidence)) > (rate(&i.evidence), alerts(&i.evidence))
                    })
                {
                    lifecycle.set_incident_evidence(incident, evidence, now, &self.cfg.lifecycle, out);
                }
            }
        }
        if monitor_kind {
            let PipelineState { lifecycle, monitor, .. } = &mut self.state;
            match monitor.observe(alert, t, &self.cfg.monitor, |i| lifecycle.incident_open(i)) {
                MonitorOutcome::None => {}
                MonitorOutcome::Trigger { peer, first_ts, alert_ids } => {
                    let count = alert_ids.len() as u64;
                    let severity =
                        if count >= self.cfg.monitor.critical_alerts { Severity::Critical } else { Severity::High };
                    let key = DedupKey::of(alert);
                    let silenced = lifecycle.silenced(&key, alert.agent.as_ref(), now);
                    let id = lifecycle.open_incident(
                        NewIncident {
                            kind: IncidentKind::MonitorAttack,
                            title: format!("Repeated {} from {peer}", alert.category),
                            severity,
                            t: first_ts,
                            source: alert.src_ip,
                            target: None,
                            peer: Some(peer.clone()),
                            records: ingested.record.into_iter().collect(),
                            alert_ids,
                            agents: alert.agent.iter().cloned().collect(),
                            categories: vec![alert.category],
                            count,
                            evidence: serde_json::json!({
                                "peer": peer,
                                "window_secs": self.cfg.monitor.window_secs,
                                "min_alerts": self.cfg.monitor.min_alerts,
                            }),
                            silenced,
                        },
                        now,
                        &self.cfg.lifecycle,
                        out,
                    );
                    if let Some(r) = ingested.record {
                        lifecycle.link_record(r, id, now, &self.cfg.lifecycle, out);
                    }
                    monitor.set_incident(&peer, id);
                }
                MonitorOutcome::Update { incident } => {
                    // A record already in the incident was counted by the lifecycle.
                    let counted = ingested
                        .record
                        .and_then(|r| lifecycle.record(r))
                        .is_some_and(|r| r.incident == Some(incident) && !ingested.opened);
                    let touch = Touch {
                        record: ingested.record,
                        raw: Some(alert.id),
                        agents: Cow::Borrowed(alert.agent.as_slice()),
                        category: alert.category,
                        severity: alert.severity,
                        add: u64::from(!counted),
                        t,
                    };
                    lifecycle.touch_incident(incident, touch, now, &self.cfg.lifecycle, &self.cfg.limits, out);
                    if lifecycle.incident(incident).is_some_and(|i| i.count >= self.cfg.monitor.critical_alerts) {
                        lifecycle.raise_incident(incident, Severity::Critical, now, &self.cfg.lifecycle, out);
                    }
                    if let Some(r) = ingested.record
                        && lifecycle.record(r).is_some_and(|r| r.incident.is_none())
                    {
                        lifecycle.link_record(r, incident, now, &self.cfg.lifecycle, out);
                    }
                }
            }
        }
        ingested
    }

    fn raise_dos(&mut self, trig: Trigger, now: i64, out: &mut Vec<PipelineEvent>) {
        let lc = &self.cfg.lifecycle;
        let lifecycle = &mut self.state.lifecycle;
        let summary = format!(
            "suspected DoS against {}: {} alerts from {} agents within {} s",
            trig.target,
            trig.count,
            trig.agents.len(),
            self.cfg.dos.window_secs
        );
        let mut a = Alert::new(Category::DosSuspected, at(trig.last_ts), summary.clone());
        a.id = lifecycle.new_id(trig.last_ts);
        a.dst_ip = Some(trig.target);
        a.evidence = trig.evidence.clone();
        out.push(PipelineEvent::AlertRaised(a.clone()));
        let opts = IngestOpts { quiet: true, no_group: true, ..IngestOpts::default() };
        let ing = lifecycle.ingest(&a, trig.last_ts, now, opts, lc, &self.cfg.limits, out);
        let silenced = lifecycle.silenced(&DedupKey::of(&a), None, now);
        let incident = match lifecycle.promote_target_incident(trig.target, trig.evidence.clone(), now, lc, out) {
            Some(id) => {
                let touch = Touch {
                    record: ing.record,
                    raw: None,
                    agents: Cow::Borrowed(trig.agents.as_slice()),
                    category: Category::DosSuspected,
                    severity: Severity::Critical,
                    add: 0,
                    t: trig.last_ts,
                };
                lifecycle.touch_incident(id, touch, now, lc, &self.cfg.limits, out);
                for raw in &trig.alert_ids {
                    let touch = Touch {
                        record: None,
                        raw: Some(*raw),
                        agents: Cow::Borrowed(&[]),
                        category: Category::DosSuspected,
                        severity: Severity::Critical,
                        add: 0,
                        t: trig.last_ts,
                    };
                    lifecycle.touch_incident(id, touch, now, lc, &self.cfg.limits, out);
                }
                id
            }
            None => {
                let mut categories = trig.categories.clone();
                categories.push(Category::DosSuspected);
                lifecycle.open_incident(
                    NewIncident {
                        kind: IncidentKind::DosSuspected,
                        title: format!("Suspected DoS against {}", trig.target),
                        severity: Severity::Critical,
                        t: trig.first_ts,
                        source: None,
                        target: Some(trig.target),
                        peer: None,
                        records: ing.record.into_iter().collect(),
                        alert_ids: trig.alert_ids.clone(),
                        agents: trig.agents.clone(),
                        categories,
                        count: trig.count,
                        evidence: trig.evidence.clone(),
                        silenced,
                    },
                    now,
                    lc,
                    out,
                )
            }
        };
        if let Some(r) = ing.record {
            lifecycle.link_record(r, incident, now, lc, out);
        }
        self.state.dos.set_incident(trig.target, incident, trig.rule);
    }

    /// An agent says the condition behind one of its alerts cleared: resolves the record
    /// whose first or latest occurrence is that alert. Returns whether one was open.
    pub fn ingest_resolved(
        &mut self,
        agent: &AgentId,
        resolved: &AlertResolved,
        now: DateTime<Utc>,
        out: &mut Vec<PipelineEvent>,
    ) -> bool {
        let now = ms(now);
        self.agent_seen(agent, now, None, out);
        self.state.lifecycle.resolve_by_alert(resolved.alert_id, ResolveReason::Cleared, now, out)
    }

    /// A heartbeat from `agent`; `info` carries its interval.
    pub fn heartbeat(
        &mut self,
        agent: &AgentId,
        info: Option<&AgentInfo>,
        now: DateTime<Utc>,
        out: &mut Vec<PipelineEvent>,
    ) {
        let interval = info.map(|i| i64::try_from(i.interval_ms).unwrap_or(i64::MAX)).filter(|i| *i > 0);
        self.agent_seen(agent, ms(now), interval, out);
    }

    /// Metric values of one agent at one instant: updates the baselines (→ `traffic_spike`)
    /// and the agent's anomaly model (→ `metric_anomaly`).
    pub fn ingest_metrics(&mut self, batch: &MetricBatch, now: DateTime<Utc>, out: &mut Vec<PipelineEvent>) {
        let now = ms(now);
        let agent = &batch.agent;
        self.agent_seen(agent, now, None, out);
        let ts = ms(batch.timestamp).min(now);
        let backfill = self.is_backfill(Some(agent), ts, now);
        let mut values: Vec<(&str, f64)> = batch.values.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        if self.features.contains_key(ALERT_RATE)
            && !values.iter().any(|(n, _)| *n == ALERT_RATE)
            && let Some(p) = self.state.churn.presence_mut(agent)
        {
            if let Some(prev) = p.last_batch_ms
                && ts > prev
            {
                values.push((ALERT_RATE, f64::from(p.alerts_since_batch) * 1000.0 / (ts - prev) as f64));
            }
            if p.last_batch_ms.is_none_or(|prev| ts > prev) {
                p.last_batch_ms = Some(ts);
                p.alerts_since_batch = 0;
            }
        }
        let dim = self.cfg.anomaly.features.len();
        let mut vector = vec![0f32; dim];
        let (mut any, mut ready) = (false, true);
        let clip = self.cfg.anomaly.clip;
        for (name, value) in values {
            if name.is_empty() || name.len() > METRIC_NAME_MAX || !value.is_finite() {
                self.state.inputs.metric_rejected += 1;
                continue;
            }
            self.state.inputs.metric_points += 1;
            let key = SeriesKey { agent: agent.clone(), metric: name.to_string() };
            if self.state.baselines.get(&key).is_none() {
                let fresh = SeriesBaseline::new(&self.cfg.baseline);
                if let Some((_, old)) = self.state.baselines.insert(key.clone(), fresh, ts)
                    && let Some(a) = old.alert()
                {
                    self.state.lifecycle.resolve_by_alert(a, ResolveReason::Evicted, now, out);
                }
            }
            let bc = &self.cfg.baseline;
            let abs = bc
                .abs_scale_floor
                .iter()
                .find(|(n, _)| n == name)
                .or_else(|| bc.abs_scale_floor.iter().find(|(n, _)| n == "*"))
                .map_or(1e-9, |(_, f)| *f);
            let log = bc.log_metrics.iter().any(|m| m == name);
            let (x, floor) = if log {
                ((1.0 + value.max(0.0)).ln(), Floor { abs, rel: 0.0 })
            } else {
                (value, Floor { abs, rel: bc.rel_scale_floor })
            };
            let Some(b) = self.state.baselines.get_mut(&key) else { continue };
            let obs = b.observe(ts, x, floor, &self.cfg.baseline, &mut self.scratch);
            match obs.signal {
                Signal::None => {}
                Signal::Spike(facts) => {
                    if self.cfg.baseline.spike_metrics.iter().any(|m| m == name) {
                        let id = self.state.lifecycle.new_id(ts);
                        b.mark_alerted(id);
                        self.raise_spike(agent, name, log, ts, &facts, id, backfill, now, out);
                    } else {
                        b.mark_alerted(Uuid::nil());
                    }
                }
                Signal::Ended { alert, reason } => {
                    if !alert.is_nil() {
                        self.state.lifecycle.resolve_by_alert(alert, reason_of(reason), now, out);
                    }
                }
            }
            self.state.baselines.touch(&key, ts);
            if let Some(&i) = self.features.get(name) {
                any = true;
                match obs.z {
                    Some(z) => {
                        let lo = if self.cfg.anomaly.rises_only { 0.0 } else { -clip };
                        vector[i] = z.clamp(lo, clip) as f32;
                    }
                    None => ready = false,
                }
            }
        }
        if self.cfg.anomaly.enabled && any && ready {
            self.observe_anomaly(agent, ts, vector, backfill, now, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn raise_spike(
        &mut self,
        agent: &AgentId,
        metric: &str,
        log: bool,
        ts: i64,
        f: &SpikeFacts,
        id: Uuid,
        backfill: bool,
        now: i64,
        out: &mut Vec<PipelineEvent>,
    ) {
        let k = self.cfg.baseline.k;
        // Log-modelled metrics report in their own units; the ratio says how far above.
        let raw = |v: f64| if log { v.exp() - 1.0 } else { v };
        let (value, expected) = (raw(f.value), raw(f.expected));
        let ratio = if log { Some((f.value - f.expected).exp()) } else { None };
        let how = match ratio {
            Some(r) => format!("{r:.2}× its baseline {expected:.4}"),
            None => format!("its baseline {expected:.4}"),
        };
        let mut a = Alert::new(
            Category::TrafficSpike,
            at(ts),
            format!(
                "{metric} on {agent} at {value:.4} is {:.1} robust deviations from {how}, for {:.0} s",
                f.z, f.sustained_secs
            ),
        );
        a.id = id;
        a.agent = Some(agent.clone());
        if f.peak_z.abs() >= 2.0 * k {
            a.severity = Severity::High;
        }
        a.evidence = serde_json::json!({
            "metric": metric,
            "value": value,
            "expected": expected,
            "ratio": ratio,
            "scale": f.scale,
            "log_scale": log,
            "z": f.z,
            "peak_z": f.peak_z,
            "k": k,
            "since": at(f.since_ms).to_rfc3339(),
            "sustained_secs": f.sustained_secs,
            "profile": f.profile,
        });
        out.push(PipelineEvent::AlertRaised(a.clone()));
        let opts = IngestOpts { backfill, held: true, no_group: true, ..IngestOpts::default() };
        self.state.lifecycle.ingest(&a, ts, now, opts, &self.cfg.lifecycle, &self.cfg.limits, out);
    }

    fn observe_anomaly(
        &mut self,
        agent: &AgentId,
        ts: i64,
        vector: Vec<f32>,
        backfill: bool,
        now: i64,
        out: &mut Vec<PipelineEvent>,
    ) {
        if self.state.anomaly.get(agent).is_none()
            && let Some((_, old)) = self.state.anomaly.insert(agent.clone(), AgentDetector::default(), ts)
            && let Some(a) = old.alert()
        {
            self.state.lifecycle.resolve_by_alert(a, ResolveReason::Evicted, now, out);
        }
        let Some(d) = self.state.anomaly.get_mut(agent) else { return };
        let signal = d.observe(ts, vector, agent.as_str(), self.cfg.seed, &self.template, &self.cfg.anomaly);
        match signal {
            AnomalySignal::None => {}
            AnomalySignal::Anomaly(facts) => {
                let id = self.state.lifecycle.new_id(ts);
                d.mark_alerted(id);
                self.raise_anomaly(agent, ts, &facts, id, backfill, now, out);
            }
            AnomalySignal::Ended { alert } => {
                self.state.lifecycle.resolve_by_alert(alert, ResolveReason::Cleared, now, out);
            }
        }
        self.state.anomaly.touch(agent, ts);
    }

    #[allow(clippy::too_many_arguments)]
    fn raise_anomaly(
        &mut self,
        agent: &AgentId,
        ts: i64,
        f: &AnomalyFacts,
        id: Uuid,
        backfill: bool,
        now: i64,
        out: &mut Vec<PipelineEvent>,
    ) {
        let top: Vec<String> = f.top_features.iter().map(|c| format!("{} (z {:.1})", c.feature, c.z)).collect();
        let mut a = Alert::new(
            Category::MetricAnomaly,
            at(ts),
            format!(
                "metrics of {agent} are anomalous (score {:.2}, threshold {:.2}) for {:.0} s; most unusual: {}",
                f.score,
                f.threshold,
                f.sustained_secs,
                top.join(", ")
            ),
        );
        a.id = id;
        a.agent = Some(agent.clone());
        a.evidence = serde_json::json!({
            "score": f.score,
            "peak_score": f.peak_score,
            "threshold": f.threshold,
            "since": at(f.since_ms).to_rfc3339(),
            "sustained_secs": f.sustained_secs,
            "top_features": f.top_features,
            "model": f.model,
            "generation": f.generation,
        });
        out.push(PipelineEvent::AlertRaised(a.clone()));
        let opts = IngestOpts { backfill, held: true, no_group: true, ..IngestOpts::default() };
        self.state.lifecycle.ingest(&a, ts, now, opts, &self.cfg.lifecycle, &self.cfg.limits, out);
    }

    /// Advances time: agents that missed their heartbeats go offline, quiet alerts and
    /// incidents resolve, silences expire, idle windows are dropped, rate-limited updates
    /// are flushed. Call it every second or so.
    pub fn tick(&mut self, now: DateTime<Utc>, out: &mut Vec<PipelineEvent>) {
        let now = ms(now);
        for (agent, off, interval) in self.state.churn.tick(now, &self.cfg.churn) {
            let missed = self.cfg.churn.missed_intervals;
            let mut a = Alert::new(
                Category::AgentOffline,
                at(now),
                format!(
                    "agent {agent} missed {missed} heartbeats of {} s; last heard {}",
                    interval / 1000,
                    at(off.last_seen_ms).to_rfc3339()
                ),
            );
            a.id = self.state.lifecycle.new_id(now);
            a.agent = Some(agent.clone());
            a.evidence = serde_json::json!({
                "last_seen": at(off.last_seen_ms).to_rfc3339(),
                "interval_secs": interval as f64 / 1000.0,
                "missed_intervals": missed,
            });
            out.push(PipelineEvent::AlertRaised(a.clone()));
            out.push(PipelineEvent::AgentStatus { agent: agent.clone(), online: false, at: at(now) });
            let opts = IngestOpts { held: true, no_group: true, ..IngestOpts::default() };
            self.state.lifecycle.ingest(&a, now, now, opts, &self.cfg.lifecycle, &self.cfg.limits, out);
            self.state.churn.set_offline_alert(&agent, a.id);
        }
        self.state.lifecycle.tick(now, &self.cfg.lifecycle, out);
        let PipelineState { lifecycle, dos, monitor, .. } = &mut self.state;
        dos.expire(now, &self.cfg.dos, |i| lifecycle.incident_open(i));
        monitor.expire(now, &self.cfg.monitor, |i| lifecycle.incident_open(i));
    }

    /// Open → acknowledged, by an operator.
    pub fn acknowledge(
        &mut self,
        subject: Subject,
        now: DateTime<Utc>,
        out: &mut Vec<PipelineEvent>,
    ) -> Result<(), PipelineError> {
        self.state.lifecycle.acknowledge(subject, ms(now), &self.cfg.lifecycle, out)
    }

    /// Resolved by an operator.
    pub fn resolve(
        &mut self,
        subject: Subject,
        now: DateTime<Utc>,
        out: &mut Vec<PipelineEvent>,
    ) -> Result<(), PipelineError> {
        if self.state.lifecycle.resolve(subject, ResolveReason::Operator, ms(now), out) {
            Ok(())
        } else {
            Err(PipelineError::NotFound(subject))
        }
    }

    /// Adds a silence.
    pub fn add_silence(&mut self, spec: SilenceSpec, now: DateTime<Utc>) -> Result<Silence, PipelineError> {
        self.state.lifecycle.add_silence(spec, None, ms(now), &self.cfg.limits)
    }

    /// Adds a silence under an id chosen by the caller (the server's stored silence, so
    /// removing that one removes this one); a silence with the same id is replaced.
    pub fn add_silence_with_id(
        &mut self,
        id: Uuid,
        spec: SilenceSpec,
        now: DateTime<Utc>,
    ) -> Result<Silence, PipelineError> {
        self.state.lifecycle.add_silence(spec, Some(id), ms(now), &self.cfg.limits)
    }

    /// The open record whose first or latest occurrence is raw alert `alert_id` (the id of
    /// a stored alert), for operator actions taken on stored alerts.
    pub fn record_of_alert(&self, alert_id: Uuid) -> Option<Uuid> {
        self.state.lifecycle.record_of_alert(alert_id)
    }

    /// Removes a silence.
    pub fn remove_silence(&mut self, id: Uuid) -> Result<Silence, PipelineError> {
        self.state.lifecycle.remove_silence(id)
    }

    /// Forgets a decommissioned agent: its presence, baselines and model; its open
    /// pipeline alerts are resolved.
    pub fn forget_agent(&mut self, agent: &AgentId, now: DateTime<Utc>, out: &mut Vec<PipelineEvent>) {
        let now = ms(now);
        let mut alerts: Vec<Uuid> = self.state.churn.forget(agent).into_iter().collect();
        if let Some(d) = self.state.anomaly.remove(agent) {
            alerts.extend(d.alert());
        }
        let keys: Vec<SeriesKey> =
            self.state.baselines.iter().map(|(k, _)| k).filter(|k| &k.agent == agent).cloned().collect();
        for k in keys {
            if let Some(b) = self.state.baselines.remove(&k) {
                alerts.extend(b.alert().filter(|a| !a.is_nil()));
            }
        }
        for a in alerts {
            self.state.lifecycle.resolve_by_alert(a, ResolveReason::Operator, now, out);
        }
    }
}
