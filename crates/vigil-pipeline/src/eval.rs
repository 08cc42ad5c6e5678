//! Labelled evaluation of `traffic_spike` and `metric_anomaly` on a seeded synthetic fleet.
//!
//! [`simulate_agent`] generates one agent's metrics at a fixed step with a daily rhythm
//! (two harmonics, a per-agent phase, a smooth weekend change), autocorrelated noise
//! (additive for CPU and memory, log-normal for rates), unlabelled one- or two-sample
//! blips that a sustained-deviation detector must ignore, and labelled events:
//!
//! | kind | what | labelled window |
//! |---|---|---|
//! | spike | one metric (bytes also move packets) rises by 6–20 noise σ for 2–20 min | the spike |
//! | level shift | one metric rises by 6–12 σ for good | onset + `shift_window_secs` |
//! | slow leak | memory climbs 15–30 points over hours, then drops (restart) | the climb |
//! | multi-metric | three metrics rise together by 2.5–3.5 σ each for 10–40 min | the anomaly |
//!
//! Magnitudes are in units of the metric's own noise: `m·σ` added for additive metrics,
//! a factor `e^(m·σ_log)` for log-normal ones (m σ in log space). Multi-metric events are below the univariate
//! threshold on purpose: they are what the multivariate model is for.
//!
//! [`run_agent`] feeds the metrics through a real [`Pipeline`] and collects the alerts it
//! raises; [`score`] matches alerts to labels: an alert matches an event of the same agent
//! when its timestamp falls in `[start, end + grace]` and, for `traffic_spike`, its metric
//! is one of the event's metrics. Precision counts alerts, recall counts events (detected
//! when at least one alert matches).

use std::collections::HashMap;

use chrono::DateTime;
use serde::Serialize;
use vigil_model::{AgentId, Category};

use crate::config::PipelineConfig;
use crate::event::PipelineEvent;
use crate::metrics::{BYTES_IN, BYTES_OUT, CPU, DISK_IO, MEMORY, MetricBatch, NEW_CONNS, PACKETS};
use crate::pipeline::Pipeline;
use crate::util::{SplitMix64, fnv1a, mix64};

/// 2024-01-01T00:00:00Z, a Monday.
pub const EPOCH_MS: i64 = 1_704_067_200_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSpec {
    /// Agents.
    pub agents: usize,
    /// Simulated days.
    pub days: u32,
    /// Seconds between samples.
    pub step_secs: u32,
    /// Seed of everything.
    pub seed: u64,
    /// No labelled event starts before this many hours (the learning period and the first
    /// training window of the model).
    pub events_from_hours: f64,
    /// Spikes per agent.
    pub spikes: usize,
    /// Level shifts per agent.
    pub shifts: usize,
    /// Slow leaks per agent.
    pub leaks: usize,
    /// Multi-metric anomalies per agent.
    pub multi: usize,
    /// An alert up to this long after an event's end still matches it.
    pub grace_secs: u64,
    /// Labelled window of a level shift after its onset.
    pub shift_window_secs: u64,
    /// Probability per sample and metric of an unlabelled one- or two-sample blip.
    pub blip_rate: f64,
}

impl EvalSpec {
    /// The full evaluation: 50 agents × 7 days at 10 s.
    pub fn full() -> Self {
        EvalSpec {
            agents: 50,
            days: 7,
            step_secs: 10,
            seed: 2024,
            events_from_hours: 12.0,
            spikes: 6,
            shifts: 2,
            leaks: 1,
            multi: 3,
            grace_secs: 300,
            shift_window_secs: 1800,
            blip_rate: 1.0 / 5000.0,
        }
    }

    /// A small version for tests: 5 agents × 1 day.
    pub fn small() -> Self {
        EvalSpec {
            agents: 5,
            days: 1,
            events_from_hours: 7.0,
            spikes: 2,
            shifts: 1,
            leaks: 1,
            multi: 1,
            ..Self::full()
        }
    }
}

/// Kind of a labelled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A short rise of one metric.
    Spike,
    /// A lasting rise of one metric.
    LevelShift,
    /// A slow memory climb.
    SlowLeak,
    /// Several metrics rising together, each below the univariate threshold.
    MultiMetric,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 4] =
        [EventKind::Spike, EventKind::LevelShift, EventKind::SlowLeak, EventKind::MultiMetric];

    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Spike => "spike",
            EventKind::LevelShift => "level_shift",
            EventKind::SlowLeak => "slow_leak",
            EventKind::MultiMetric => "multi_metric",
        }
    }
}

/// One labelled event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Label {
    /// Agent id.
    pub agent: String,
    /// Kind.
    pub kind: EventKind,
    /// Metrics it moves.
    pub metrics: Vec<&'static str>,
    /// Start (unix ms).
    pub start_ms: i64,
    /// End of the labelled window (unix ms).
    pub end_ms: i64,
    /// Size in noise σ (per metric for multi-metric events).
    pub magnitude: f64,
}

/// One alert the pipeline raised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// Agent id.
    pub agent: String,
    /// `traffic_spike` or `metric_anomaly`.
    pub category: Category,
    /// The metric, for `traffic_spike`.
    pub metric: Option<String>,
    /// Alert timestamp (unix ms).
    pub ts_ms: i64,
    /// The alert's summary.
    pub summary: String,
}

#[derive(Debug, Clone, Copy)]
enum Noise {
    Additive { base: f64, amp: f64, sigma: f64, lo: f64, hi: f64 },
    LogNormal { base: f64, amp: f64, sigma: f64 },
}

#[derive(Debug, Clone)]
struct Series {
    name: &'static str,
    noise: Noise,
    rho: f64,
    state: f64,
}

impl Series {
    /// The size of an `m`-σ effect: an offset (additive), or a relative rise
    /// `e^(m·σ_log) - 1` (log-normal: `m` σ in log space).
    fn effect(&self, m: f64) -> f64 {
        match self.noise {
            Noise::Additive { sigma, .. } => m * sigma,
            Noise::LogNormal { sigma, .. } => (m * sigma).exp_m1(),
        }
    }
}

#[derive(Debug, Clone)]
enum Effect {
    /// Multiply (log-normal) or add (additive) `m·σ` on `metrics` over `[start, end)`.
    Bump { metrics: Vec<&'static str>, m: f64, start: i64, end: i64 },
    /// Permanent change from `start`.
    Shift { metric: &'static str, m: f64, start: i64 },
    /// Memory ramp of `points` over `[start, end)`.
    Leak { points: f64, start: i64, end: i64 },
}

fn agent_name(i: usize) -> String {
    format!("sim-{i:03}")
}

/// Simulated metrics of one agent: `(labels, batches)`.
pub fn simulate_agent(spec: &EvalSpec, index: usize) -> (Vec<Label>, Vec<MetricBatch>) {
    let name = agent_name(index);
    let Ok(agent) = AgentId::new(name.clone()) else { return (Vec::new(), Vec::new()) };
    let mut r = SplitMix64::new(mix64(spec.seed ^ fnv1a(name.as_bytes())));
    let phase1 = r.uniform(0.0, 24.0);
    let phase2 = r.uniform(0.0, 12.0);
    let weekend = r.uniform(0.4, 1.0);
    let bytes_in_base = r.uniform(1e5, 2e7);
    let mut series = [
        Series {
            name: CPU,
            noise: Noise::Additive {
                base: r.uniform(10.0, 40.0),
                amp: r.uniform(0.2, 0.6),
                sigma: r.uniform(1.0, 3.0),
                lo: 0.0,
                hi: 100.0,
            },
            rho: r.uniform(0.3, 0.7),
            state: 0.0,
        },
        Series {
            name: MEMORY,
            noise: Noise::Additive {
                base: r.uniform(30.0, 60.0),
                amp: r.uniform(0.0, 0.05),
                sigma: r.uniform(0.2, 0.5),
                lo: 0.0,
                hi: 100.0,
            },
            rho: 0.9,
            state: 0.0,
        },
        Series {
            name: DISK_IO,
            noise: Noise::LogNormal { base: r.uniform(2e5, 5e6), amp: r.uniform(0.2, 0.6), sigma: r.uniform(0.1, 0.3) },
            rho: r.uniform(0.3, 0.7),
            state: 0.0,
        },
        Series {
            name: BYTES_IN,
            noise: Noise::LogNormal { base: bytes_in_base, amp: r.uniform(0.3, 0.7), sigma: r.uniform(0.05, 0.2) },
            rho: r.uniform(0.3, 0.7),
            state: 0.0,
        },
        Series {
            name: BYTES_OUT,
            noise: Noise::LogNormal {
                base: bytes_in_base * r.uniform(0.1, 1.2),
                amp: r.uniform(0.3, 0.7),
                sigma: r.uniform(0.05, 0.2),
            },
            rho: r.uniform(0.3, 0.7),
            state: 0.0,
        },
        Series {
            name: NEW_CONNS,
            noise: Noise::LogNormal {
                base: r.uniform(0.5, 50.0),
                amp: r.uniform(0.3, 0.7),
                sigma: r.uniform(0.1, 0.3),
            },
            rho: r.uniform(0.3, 0.7),
            state: 0.0,
        },
    ];
    let packet_size = r.uniform(400.0, 1200.0);
    let packets_own_sigma = r.uniform(0.03, 0.08);
    // Packets follow bytes: their relative noise combines both byte series' and their own.
    let packets_sigma = {
        let sig = |i: usize| match series[i].noise {
            Noise::LogNormal { base, sigma, .. } => (base, sigma),
            Noise::Additive { .. } => (0.0, 0.0),
        };
        let ((bi, si), (bo, so)) = (sig(3), sig(4));
        let (wi, wo) = (bi / (bi + bo), bo / (bi + bo));
        ((wi * si).powi(2) + (wo * so).powi(2) + packets_own_sigma.powi(2)).sqrt()
    };
    let mut packets_state = 0.0;
    let start = EPOCH_MS;
    let end = start + i64::from(spec.days) * DAY_MS;

    // Schedule events: one per slot, in shuffled order, each fitting inside its slot.
    let mut kinds: Vec<EventKind> = Vec::new();
    kinds.extend(std::iter::repeat_n(EventKind::Spike, spec.spikes));
    kinds.extend(std::iter::repeat_n(EventKind::LevelShift, spec.shifts));
    kinds.extend(std::iter::repeat_n(EventKind::SlowLeak, spec.leaks));
    kinds.extend(std::iter::repeat_n(EventKind::MultiMetric, spec.multi));
    for i in (1..kinds.len()).rev() {
        let j = r.below(i + 1);
        kinds.swap(i, j);
    }
    let from = start + (spec.events_from_hours * HOUR_MS as f64) as i64;
    let usable = (end - HOUR_MS - from).max(0);
    let slot = usable / kinds.len().max(1) as i64;
    let gap = 30 * 60_000;
    let mut labels = Vec::new();
    let mut effects = Vec::new();
    let spike_metrics = [CPU, DISK_IO, BYTES_IN, BYTES_OUT, NEW_CONNS, PACKETS];
    let shift_metrics = [CPU, DISK_IO, BYTES_IN, BYTES_OUT, NEW_CONNS];
    let multi_metrics = [CPU, DISK_IO, BYTES_IN, BYTES_OUT, NEW_CONNS, PACKETS];
    for (k, kind) in kinds.iter().enumerate() {
        let slot_start = from + k as i64 * slot;
        let minutes = |r: &mut SplitMix64, lo: f64, hi: f64| (r.uniform(lo, hi) * 60_000.0) as i64;
        let dur = match kind {
            EventKind::Spike => minutes(&mut r, 2.0, 20.0),
            EventKind::LevelShift => i64::try_from(spec.shift_window_secs * 1000).unwrap_or(0),
            EventKind::SlowLeak => minutes(&mut r, 180.0, 480.0).min((slot - gap) * 4 / 5),
            EventKind::MultiMetric => minutes(&mut r, 10.0, 40.0),
        };
        let room = (slot - dur - gap).max(1);
        let s = slot_start + (r.next_f64() * room as f64) as i64;
        let e = s + dur;
        let (metrics, m) = match kind {
            EventKind::Spike => {
                let metric = spike_metrics[r.below(spike_metrics.len())];
                let m = r.uniform(6.0, 20.0);
                effects.push(Effect::Bump { metrics: vec![metric], m, start: s, end: e });
                // Bytes carry packets with them.
                let ms = if metric == BYTES_IN || metric == BYTES_OUT { vec![metric, PACKETS] } else { vec![metric] };
                (ms, m)
            }
            EventKind::LevelShift => {
                let metric = shift_metrics[r.below(shift_metrics.len())];
                let m = r.uniform(6.0, 12.0);
                effects.push(Effect::Shift { metric, m, start: s });
                let ms = if metric == BYTES_IN || metric == BYTES_OUT { vec![metric, PACKETS] } else { vec![metric] };
                (ms, m)
            }
            EventKind::SlowLeak => {
                let points = r.uniform(15.0, 30.0);
                effects.push(Effect::Leak { points, start: s, end: e });
                (vec![MEMORY], points)
            }
            EventKind::MultiMetric => {
                let mut pool = multi_metrics.to_vec();
                let mut chosen = Vec::new();
                for _ in 0..3 {
                    let i = r.below(pool.len());
                    chosen.push(pool.swap_remove(i));
                }
                let m = r.uniform(2.5, 3.5);
                effects.push(Effect::Bump { metrics: chosen.clone(), m, start: s, end: e });
                if (chosen.contains(&BYTES_IN) || chosen.contains(&BYTES_OUT)) && !chosen.contains(&PACKETS) {
                    chosen.push(PACKETS);
                }
                (chosen, m)
            }
        };
        labels.push(Label { agent: name.clone(), kind: *kind, metrics, start_ms: s, end_ms: e, magnitude: m });
    }

    let step = i64::from(spec.step_secs) * 1000;
    let mut batches = Vec::with_capacity(((end - start) / step.max(1)) as usize);
    let mut blips: HashMap<&'static str, (i64, f64)> = HashMap::new();
    let mut t = start;
    while t < end {
        let hour = (t.rem_euclid(DAY_MS)) as f64 / HOUR_MS as f64;
        let d = (std::f64::consts::TAU * (hour - phase1) / 24.0).sin()
            + 0.3 * (std::f64::consts::TAU * (hour - phase2) / 12.0).sin();
        // Weekend (days 5 and 6) damps the rhythm, blended over 6 h around midnight.
        let day = (t - start) as f64 / DAY_MS as f64;
        let wk_weight = weekend_weight(day);
        let rhythm = d * (1.0 - wk_weight * (1.0 - weekend));
        let mut values: Vec<(String, f64)> = Vec::with_capacity(7);
        let mut bytes_total = 0.0;
        for s in series.iter_mut() {
            s.state = s.rho * s.state + (1.0 - s.rho * s.rho).sqrt() * r.normal();
            // Shifts compound: each is relative to the level before it.
            let shifts = effects.iter().filter_map(|e| match e {
                Effect::Shift { metric, m, start } if *metric == s.name && t >= *start => Some(s.effect(*m)),
                _ => None,
            });
            let shift = match s.noise {
                Noise::Additive { .. } => shifts.sum::<f64>(),
                Noise::LogNormal { .. } => shifts.fold(1.0, |f, e| f * (1.0 + e)) - 1.0,
            };
            let bump: f64 = effects
                .iter()
                .map(|e| match e {
                    Effect::Bump { metrics, m, start, end } if t >= *start && t < *end && metrics.contains(&s.name) => {
                        s.effect(*m)
                    }
                    Effect::Leak { points, start, end } if s.name == MEMORY && t >= *start && t < *end => {
                        points * (t - start) as f64 / (end - start).max(1) as f64
                    }
                    _ => 0.0,
                })
                .sum();
            let blip = blip(&mut blips, &mut r, s.name, t, step, spec.blip_rate);
            let v = match s.noise {
                Noise::Additive { base, amp, sigma, lo, hi } => {
                    let level = base * (1.0 + amp * rhythm) + shift + bump;
                    let b = if blip > 1.0 { r.uniform(20.0, 50.0) } else { 0.0 };
                    (level + sigma * s.state + b).clamp(lo, hi)
                }
                Noise::LogNormal { base, amp, sigma } => {
                    let level = base * (1.0 + amp * rhythm) * (1.0 + shift) * (1.0 + bump);
                    level * (sigma * s.state - sigma * sigma / 2.0).exp() * blip
                }
            };
            if s.name == BYTES_IN || s.name == BYTES_OUT {
                bytes_total += v;
            }
            values.push((s.name.to_string(), v));
        }
        packets_state = 0.5 * packets_state + 0.75f64.sqrt() * r.normal();
        let pbump: f64 = effects
            .iter()
            .map(|e| match e {
                Effect::Bump { metrics, m, start, end } if t >= *start && t < *end && metrics.contains(&PACKETS) => {
                    (m * packets_sigma).exp_m1()
                }
                _ => 0.0,
            })
            .sum();
        let pblip = blip(&mut blips, &mut r, PACKETS, t, step, spec.blip_rate);
        let packets = bytes_total / packet_size * (packets_own_sigma * packets_state).exp() * (1.0 + pbump) * pblip;
        values.push((PACKETS.to_string(), packets));
        batches.push(MetricBatch {
            agent: agent.clone(),
            timestamp: DateTime::from_timestamp_millis(t).unwrap_or_default(),
            values,
        });
        t += step;
    }
    (labels, batches)
}

/// Weight of the weekend regime on fractional day `day` (day 0 = Monday): 0 on weekdays,
/// 1 on Saturday and Sunday, blended linearly over the 6 h around each midnight.
fn weekend_weight(day: f64) -> f64 {
    let w = |d: f64| if (5.0..7.0).contains(&d.rem_euclid(7.0).floor()) { 1.0 } else { 0.0 };
    let frac = day.rem_euclid(1.0);
    let here = w(day);
    if frac < 0.125 {
        let prev = w(day - 1.0);
        prev + (here - prev) * (0.5 + frac / 0.25)
    } else if frac > 0.875 {
        let next = w(day + 1.0);
        here + (next - here) * ((frac - 0.875) / 0.25)
    } else {
        here
    }
}

/// Multiplier of an unlabelled blip on `name` at `t` (1 when none).
fn blip(
    active: &mut HashMap<&'static str, (i64, f64)>,
    r: &mut SplitMix64,
    name: &'static str,
    t: i64,
    step: i64,
    rate: f64,
) -> f64 {
    if let Some((until, f)) = active.get(name).copied() {
        if t < until {
            return f;
        }
        active.remove(name);
    }
    if r.next_f64() < rate {
        let len = 1 + r.below(2) as i64;
        let f = r.uniform(2.0, 5.0);
        active.insert(name, (t + len * step, f));
        return f;
    }
    1.0
}

/// Outcome of one agent's run.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRun {
    /// Labelled events.
    pub labels: Vec<Label>,
    /// Alerts raised.
    pub detections: Vec<Detection>,
    /// Metric points fed.
    pub points: u64,
}

/// Simulates agent `index` and runs it through a fresh pipeline with `cfg`.
pub fn run_agent(spec: &EvalSpec, index: usize, cfg: &PipelineConfig) -> AgentRun {
    let (labels, batches) = simulate_agent(spec, index);
    let Ok(mut p) = Pipeline::new(cfg.clone()) else { return AgentRun { labels, detections: Vec::new(), points: 0 } };
    let mut out = Vec::new();
    let mut detections = Vec::new();
    let mut points = 0u64;
    for (i, b) in batches.iter().enumerate() {
        points += b.values.len() as u64;
        p.ingest_metrics(b, b.timestamp, &mut out);
        if i % 60 == 59 {
            p.tick(b.timestamp, &mut out);
        }
        for e in out.drain(..) {
            if let PipelineEvent::AlertRaised(a) = e
                && matches!(a.category, Category::TrafficSpike | Category::MetricAnomaly)
            {
                detections.push(Detection {
                    agent: a.agent.map(|a| a.to_string()).unwrap_or_default(),
                    category: a.category,
                    metric: a.evidence.get("metric").and_then(|m| m.as_str()).map(str::to_string),
                    ts_ms: a.timestamp.timestamp_millis(),
                    summary: a.summary.clone(),
                });
            }
        }
    }
    AgentRun { labels, detections, points }
}

/// Recall of one detector on one event kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindRecall {
    /// The kind.
    pub kind: EventKind,
    /// Events of that kind.
    pub events: usize,
    /// Of which detected.
    pub detected: usize,
    /// Median delay from event start to first matching alert, seconds.
    pub median_delay_secs: Option<f64>,
}

/// Scores of one detector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorScore {
    /// `traffic_spike` or `metric_anomaly`.
    pub category: Category,
    /// Alerts raised.
    pub alerts: usize,
    /// Alerts matching a labelled event.
    pub true_alerts: usize,
    /// `true_alerts / alerts`.
    pub precision: f64,
    /// Recall per event kind.
    pub recall: Vec<KindRecall>,
    /// The kinds this detector is meant for.
    pub target_kinds: Vec<EventKind>,
    /// Recall over the target kinds.
    pub target_recall: f64,
    /// F1 of precision and target recall.
    pub f1: f64,
}

/// Scores of a whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was generated.
    pub spec: EvalSpec,
    /// Metric points fed.
    pub points: u64,
    /// Labelled events per kind.
    pub events: Vec<(EventKind, usize)>,
    /// `traffic_spike`.
    pub traffic_spike: DetectorScore,
    /// `metric_anomaly`.
    pub metric_anomaly: DetectorScore,
    /// Both detectors together: precision over all alerts.
    pub overall_precision: f64,
    /// Both detectors together: recall per kind (detected by either).
    pub overall_recall: Vec<KindRecall>,
    /// Unmatched alerts per agent-day, both detectors.
    pub false_alerts_per_agent_day: f64,
}

fn matches(d: &Detection, l: &Label, grace_ms: i64) -> bool {
    d.agent == l.agent
        && d.ts_ms >= l.start_ms
        && d.ts_ms <= l.end_ms + grace_ms
        && (d.category != Category::TrafficSpike || d.metric.as_deref().is_some_and(|m| l.metrics.contains(&m)))
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn recall_for(labels: &[Label], dets: &[&Detection], grace_ms: i64) -> Vec<KindRecall> {
    EventKind::ALL
        .iter()
        .map(|kind| {
            let of_kind: Vec<&Label> = labels.iter().filter(|l| l.kind == *kind).collect();
            let mut delays = Vec::new();
            for l in &of_kind {
                if let Some(first) = dets.iter().filter(|d| matches(d, l, grace_ms)).map(|d| d.ts_ms).min() {
                    delays.push((first - l.start_ms) as f64 / 1000.0);
                }
            }
            KindRecall { kind: *kind, events: of_kind.len(), detected: delays.len(), median_delay_secs: median(delays) }
        })
        .collect()
}

fn detector(
    category: Category,
    targets: &[EventKind],
    labels: &[Label],
    dets: &[Detection],
    grace_ms: i64,
) -> DetectorScore {
    let mine: Vec<&Detection> = dets.iter().filter(|d| d.category == category).collect();
    let true_alerts = mine.iter().filter(|d| labels.iter().any(|l| matches(d, l, grace_ms))).count();
    let recall = recall_for(labels, &mine, grace_ms);
    let (hit, all) =
        recall.iter().filter(|r| targets.contains(&r.kind)).fold((0, 0), |(h, a), r| (h + r.detected, a + r.events));
    let precision = ratio(true_alerts, mine.len());
    let target_recall = ratio(hit, all);
    DetectorScore {
        category,
        alerts: mine.len(),
        true_alerts,
        precision,
        recall,
        target_kinds: targets.to_vec(),
        target_recall,
        f1: f1(precision, target_recall),
    }
}

/// Scores agent runs against their labels.
pub fn score(spec: &EvalSpec, runs: &[AgentRun]) -> Report {
    let labels: Vec<Label> = runs.iter().flat_map(|r| r.labels.iter().cloned()).collect();
    let dets: Vec<Detection> = runs.iter().flat_map(|r| r.detections.iter().cloned()).collect();
    let grace = i64::try_from(spec.grace_secs * 1000).unwrap_or(0);
    let traffic_spike =
        detector(Category::TrafficSpike, &[EventKind::Spike, EventKind::LevelShift], &labels, &dets, grace);
    let metric_anomaly = detector(Category::MetricAnomaly, &[EventKind::MultiMetric], &labels, &dets, grace);
    let all: Vec<&Detection> = dets.iter().collect();
    let true_all = all.iter().filter(|d| labels.iter().any(|l| matches(d, l, grace))).count();
    let agent_days = (spec.agents as f64 * f64::from(spec.days)).max(1.0);
    Report {
        spec: spec.clone(),
        points: runs.iter().map(|r| r.points).sum(),
        events: EventKind::ALL.iter().map(|k| (*k, labels.iter().filter(|l| l.kind == *k).count())).collect(),
        traffic_spike,
        metric_anomaly,
        overall_precision: ratio(true_all, all.len()),
        overall_recall: recall_for(&labels, &all, grace),
        false_alerts_per_agent_day: (all.len() - true_all) as f64 / agent_days,
    }
}

impl Report {
    /// The report as Markdown tables.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| detector | alerts | matching | precision | target kinds | recall (targets) | F1 |\n");
        s.push_str("|---|---:|---:|---:|---|---:|---:|\n");
        for d in [&self.traffic_spike, &self.metric_anomaly] {
            let kinds: Vec<&str> = d.target_kinds.iter().map(|k| k.name()).collect();
            s.push_str(&format!(
                "| `{}` | {} | {} | {:.3} | {} | {:.3} | {:.3} |\n",
                d.category,
                d.alerts,
                d.true_alerts,
                d.precision,
                kinds.join(", "),
                d.target_recall,
                d.f1
            ));
        }
        s.push_str(&format!(
            "\nOverall precision (both detectors): {:.3}; unmatched alerts per agent-day: {:.3}.\n\n",
            self.overall_precision, self.false_alerts_per_agent_day
        ));
        s.push_str("| event kind | events | `traffic_spike` recall | `metric_anomaly` recall | either | median delay (either) |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|\n");
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            let t = &self.traffic_spike.recall[i];
            let m = &self.metric_anomaly.recall[i];
            let o = &self.overall_recall[i];
            let pct = |r: &KindRecall| format!("{}/{} ({:.3})", r.detected, r.events, ratio(r.detected, r.events));
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                kind.name(),
                o.events,
                pct(t),
                pct(m),
                pct(o),
                o.median_delay_secs.map_or("–".into(), |d| format!("{d:.0} s"))
            ));
        }
        s
    }
}
