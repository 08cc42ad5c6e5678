//! The sustained-threshold evaluator: host samples in, `host_*_high` alerts and their
//! resolutions out. Pure: no clock, no I/O; time comes from sample timestamps only.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;
use vigil_model::{AgentId, Alert, AlertResolved, Category, DiskUsage, HostSample};

use crate::collector::uuid_at;

/// Most mounts the evaluator keeps state for at once. Only mounts that are over their
/// threshold (pending or firing) hold state, so this is reached only on hosts with hundreds
/// of full file systems; a new mount going over while the state is full is ignored and
/// counted in [`ThresholdEvaluator::mounts_over_cap`].
pub const MAX_TRACKED_MOUNTS: usize = 256;

/// Longest `sustain` that [`Thresholds::validate`] accepts.
const MAX_SUSTAIN: Duration = Duration::from_secs(3600);

/// When host metrics become alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Total CPU use, percent, at or above which `host_cpu_high` is pending. Default 80.
    pub cpu_percent: f32,
    /// Memory use, percent, at or above which `host_memory_high` is pending. Default 80.
    pub memory_percent: f32,
    /// Use of any one file system, percent, at or above which `host_disk_high` is pending
    /// for that mount. Default 90.
    pub disk_percent: f32,
    /// How long a metric must stay at or above its threshold before the alert fires, and
    /// below `threshold - hysteresis` before it resolves, measured between sample
    /// timestamps. Default 30 s.
    pub sustain: Duration,
    /// Percentage points below the threshold a metric must fall before the alert can
    /// resolve, so a value hovering around the threshold does not flap. Default 5.
    pub hysteresis: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            cpu_percent: 80.0,
            memory_percent: 80.0,
            disk_percent: 90.0,
            sustain: Duration::from_secs(30),
            hysteresis: 5.0,
        }
    }
}

impl Thresholds {
    /// Checks the values for the configuration layer: each threshold in (0, 100],
    /// `hysteresis` in [0, smallest threshold), `sustain` at most 1 h. The error names the
    /// field, the value and what to use instead.
    pub fn validate(&self) -> Result<(), String> {
        for (field, v) in [
            ("cpu_percent", self.cpu_percent),
            ("memory_percent", self.memory_percent),
            ("disk_percent", self.disk_percent),
        ] {
            // Written so that NaN fails too.
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!("thresholds.{field} is {v}; use a percentage above 0 and at most 100"));
            }
        }
        let smallest = self.cpu_percent.min(self.memory_percent).min(self.disk_percent);
        if !(self.hysteresis >= 0.0 && self.hysteresis < smallest) {
            return Err(format!(
                "thresholds.hysteresis is {}; use at least 0 and less than the smallest threshold ({smallest})",
                self.hysteresis
            ));
        }
        if self.sustain > MAX_SUSTAIN {
            return Err(format!("thresholds.sustain is {} s; use at most 3600 s (1 h)", self.sustain.as_secs()));
        }
        Ok(())
    }
}

/// What the evaluator concluded from one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdEvent {
    /// A metric stayed at or above its threshold for `sustain`: a new alert.
    Fire(Alert),
    /// The condition behind an alert fired earlier has cleared.
    Resolve(AlertResolved),
}

/// Where one metric stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Below the threshold (or never seen).
    Normal,
    /// At or above the threshold since `since`, not yet for `sustain`.
    Pending { since: DateTime<Utc> },
    /// Alert `alert_id` fired; below `threshold - hysteresis` since `clearing_since`, if so.
    Firing { alert_id: Uuid, clearing_since: Option<DateTime<Utc>> },
}

/// What one observation of one metric calls for.
enum Step {
    Stay,
    Fire { sustained: TimeDelta },
    Resolve { alert_id: Uuid },
}

/// Advances `phase` by one observation. On [`Step::Fire`] the phase is left `Pending`: the
/// caller builds the alert and moves the phase to `Firing` with its id.
///
/// A timestamp earlier than the running clock's start (the sender's clock stepped back)
/// restarts that clock at the new timestamp rather than computing a negative duration.
/// NaN values carry no information and change nothing.
fn step(phase: &mut Phase, value: f32, threshold: f32, hysteresis: f32, sustain: TimeDelta, at: DateTime<Utc>) -> Step {
    if value.is_nan() {
        return Step::Stay;
    }
    match *phase {
        Phase::Normal | Phase::Pending { .. } => {
            if value < threshold {
                *phase = Phase::Normal;
                return Step::Stay;
            }
            let since = match *phase {
                Phase::Pending { since } if since <= at => since,
                _ => at,
            };
            *phase = Phase::Pending { since };
            let sustained = at - since;
            if sustained >= sustain { Step::Fire { sustained } } else { Step::Stay }
        }
        Phase::Firing { alert_id, clearing_since } => {
            if value >= threshold - hysteresis {
                *phase = Phase::Firing { alert_id, clearing_since: None };
                return Step::Stay;
            }
            let since = match clearing_since {
                Some(s) if s <= at => s,
                _ => at,
            };
            if at - since >= sustain {
                *phase = Phase::Normal;
                Step::Resolve { alert_id }
            } else {
                *phase = Phase::Firing { alert_id, clearing_since: Some(since) };
                Step::Stay
            }
        }
    }
}

/// Which metric an observation is about, with what its alert's evidence needs.
enum Metric<'a> {
    Cpu,
    Memory { used_bytes: u64, total_bytes: u64 },
    Disk(&'a DiskUsage),
}

impl Metric<'_> {
    fn category(&self) -> Category {
        match self {
            Metric::Cpu => Category::HostCpuHigh,
            Metric::Memory { .. } => Category::HostMemoryHigh,
            Metric::Disk(_) => Category::HostDiskHigh,
        }
    }
}

/// Turns host samples into sustained-threshold alerts and resolutions.
///
/// Each metric (total CPU, memory, and every mount separately) goes through the same
/// cycle: the first sample at or above the threshold starts a clock; a sample below the
/// threshold stops it; once a sample arrives at least `sustain` after the clock started
/// and the metric has not dipped, ONE alert fires (the category's default severity). While
/// firing nothing more fires; the alert resolves once the metric has stayed below
/// `threshold - hysteresis` for `sustain` too (a sample back above that line restarts the
/// resolve clock). A mount missing from a sample resolves at once if firing and is
/// forgotten if pending.
///
/// Pure and deterministic: time comes only from sample timestamps, and alert ids are
/// UUIDv7 built from the sample timestamp. Durations are measured between samples, so a
/// long gap between two over-threshold samples counts as sustained. Thresholds are used
/// as given: call [`Thresholds::validate`] first (invalid values, such as NaN, simply never
/// fire).
#[derive(Debug)]
pub struct ThresholdEvaluator {
    thresholds: Thresholds,
    sustain: TimeDelta,
    agent: Option<AgentId>,
    cpu: Phase,
    memory: Phase,
    /// Only mounts that are pending or firing; at most [`MAX_TRACKED_MOUNTS`].
    mounts: BTreeMap<String, Phase>,
    mounts_over_cap: u64,
}

impl ThresholdEvaluator {
    /// An evaluator with nothing pending. `agent` goes into every alert it raises.
    pub fn new(thresholds: Thresholds, agent: Option<AgentId>) -> Self {
        let sustain = TimeDelta::from_std(thresholds.sustain).unwrap_or(TimeDelta::MAX);
        ThresholdEvaluator {
            thresholds,
            sustain,
            agent,
            cpu: Phase::Normal,
            memory: Phase::Normal,
            mounts: BTreeMap::new(),
            mounts_over_cap: 0,
        }
    }

    /// Feeds one sample; returns what fired and what resolved, in this order: CPU, memory,
    /// then mounts in sample order, then mounts that disappeared (by mount point). A mount
    /// listed twice in one sample counts once (the first entry).
    pub fn observe(&mut self, sample: &HostSample) -> Vec<ThresholdEvent> {
        let at = sample.timestamp;
        let mut events = Vec::new();

        let mut phase = self.cpu;
        self.apply(&mut phase, Metric::Cpu, sample.cpu_percent, at, &mut events);
        self.cpu = phase;

        let mut phase = self.memory;
        let memory = Metric::Memory { used_bytes: sample.memory_used_bytes, total_bytes: sample.memory_total_bytes };
        self.apply(&mut phase, memory, sample.memory_percent, at, &mut events);
        self.memory = phase;

        let mut seen: HashSet<&str> = HashSet::new();
        for disk in &sample.disks {
            if !seen.insert(disk.mount.as_str()) {
                continue;
            }
            let mut phase = match self.mounts.get(&disk.mount) {
                Some(p) => *p,
                None if self.mounts.len() >= MAX_TRACKED_MOUNTS => {
                    if disk.used_percent >= self.thresholds.disk_percent {
                        self.mounts_over_cap = self.mounts_over_cap.saturating_add(1);
                    }
                    continue;
                }
                None => Phase::Normal,
            };
            self.apply(&mut phase, Metric::Disk(disk), disk.used_percent, at, &mut events);
            if phase == Phase::Normal {
                self.mounts.remove(&disk.mount);
            } else {
                self.mounts.insert(disk.mount.clone(), phase);
            }
        }

        let gone: Vec<String> = self.mounts.keys().filter(|m| !seen.contains(m.as_str())).cloned().collect();
        for mount in gone {
            if let Some(Phase::Firing { alert_id, .. }) = self.mounts.remove(&mount) {
                events.push(ThresholdEvent::Resolve(AlertResolved { alert_id, category: Category::HostDiskHigh, at }));
            }
        }
        events
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Mounts currently pending or firing.
    pub fn tracked_mounts(&self) -> usize {
        self.mounts.len()
    }

    /// Observations of a mount at or above the disk threshold that were ignored because
    /// [`MAX_TRACKED_MOUNTS`] mounts were already tracked (one per mount per sample).
    pub fn mounts_over_cap(&self) -> u64 {
        self.mounts_over_cap
    }

    /// Steps one metric and turns the outcome into an event.
    fn apply(
        &self,
        phase: &mut Phase,
        metric: Metric<'_>,
        value: f32,
        at: DateTime<Utc>,
        events: &mut Vec<ThresholdEvent>,
    ) {
        let threshold = match metric {
            Metric::Cpu => self.thresholds.cpu_percent,
            Metric::Memory { .. } => self.thresholds.memory_percent,
            Metric::Disk(_) => self.thresholds.disk_percent,
        };
        match step(phase, value, threshold, self.thresholds.hysteresis, self.sustain, at) {
            Step::Stay => {}
            Step::Fire { sustained } => {
                let alert = self.alert(&metric, value, threshold, at, sustained);
                *phase = Phase::Firing { alert_id: alert.id, clearing_since: None };
                events.push(ThresholdEvent::Fire(alert));
            }
            Step::Resolve { alert_id } => {
                events.push(ThresholdEvent::Resolve(AlertResolved { alert_id, category: metric.category(), at }));
            }
        }
    }

    fn alert(&self, metric: &Metric<'_>, value: f32, threshold: f32, at: DateTime<Utc>, sustained: TimeDelta) -> Alert {
        let secs = sustained.num_seconds().max(0);
        let (summary, evidence) = match metric {
            Metric::Cpu => (
                format!("CPU at {value:.1} % for {secs} s (threshold {threshold} %)"),
                json!({
                    "value": round1(value),
                    "threshold": tidy(threshold),
                    "sustained_secs": secs,
                }),
            ),
            Metric::Memory { used_bytes, total_bytes } => (
                format!("Memory at {value:.1} % for {secs} s (threshold {threshold} %)"),
                json!({
                    "value": round1(value),
                    "threshold": tidy(threshold),
                    "sustained_secs": secs,
                    "used_bytes": used_bytes,
                    "total_bytes": total_bytes,
                }),
            ),
            Metric::Disk(d) => (
                format!("Disk {} at {value:.1} % for {secs} s (threshold {threshold} %)", d.mount),
                json!({
                    "value": round1(value),
                    "threshold": tidy(threshold),
                    "sustained_secs": secs,
                    "mount": d.mount,
                    "fs_type": d.fs_type,
                    "used_bytes": d.used_bytes,
                    "total_bytes": d.total_bytes,
                }),
            ),
        };
        let mut alert = Alert::new(metric.category(), at, summary);
        alert.id = uuid_at(at);
        alert.agent = self.agent.clone();
        alert.evidence = evidence;
        alert
    }
}

/// `v` rounded to one decimal, as the summary shows it.
fn round1(v: f32) -> f64 {
    (f64::from(v) * 10.0).round() / 10.0
}

/// `v` as the shortest f64 that prints like it (80.0 → 80, 85.3 → 85.3, not 85.30000305).
fn tidy(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(T0 + secs, 0).unwrap()
    }

    fn sample(secs: i64, cpu: f32, mem: f32, disks: &[(&str, f32)]) -> HostSample {
        HostSample {
            id: Uuid::now_v7(),
            timestamp: at(secs),
            boot_epoch: 1,
            index: secs as u64,
            cpu_percent: cpu,
            cpu_per_core: vec![cpu],
            memory_used_bytes: (mem * 10.0) as u64,
            memory_total_bytes: 1000,
            memory_percent: mem,
            swap_used_bytes: 0,
            swap_total_bytes: 0,
            load_average: [0.0; 3],
            disks: disks
                .iter()
                .map(|(m, p)| DiskUsage {
                    mount: (*m).to_owned(),
                    fs_type: "ext4".into(),
                    total_bytes: 1000,
                    used_bytes: (p * 10.0) as u64,
                    used_percent: *p,
                })
                .collect(),
            networks: vec![],
            process_count: 1,
            uptime_secs: 1,
        }
    }

    fn cpu(secs: i64, v: f32) -> HostSample {
        sample(secs, v, 10.0, &[])
    }

    fn evaluator() -> ThresholdEvaluator {
        ThresholdEvaluator::new(Thresholds::default(), Some(AgentId::new("web-1").unwrap()))
    }

    fn fires(events: &[ThresholdEvent]) -> Vec<&Alert> {
        events
            .iter()
            .filter_map(|e| match e {
                ThresholdEvent::Fire(a) => Some(a),
                ThresholdEvent::Resolve(_) => None,
            })
            .collect()
    }

    fn resolves(events: &[ThresholdEvent]) -> Vec<&AlertResolved> {
        events
            .iter()
            .filter_map(|e| match e {
                ThresholdEvent::Resolve(r) => Some(r),
                ThresholdEvent::Fire(_) => None,
            })
            .collect()
    }

    /// Feeds CPU values 10 s apart starting at `start`; returns all events.
    fn feed_cpu(ev: &mut ThresholdEvaluator, start: i64, values: &[f32]) -> Vec<ThresholdEvent> {
        values.iter().enumerate().flat_map(|(i, v)| ev.observe(&cpu(start + 10 * i as i64, *v))).collect()
    }

    /// Drives CPU to firing (93.2 % at 0, 10, 20, 30 s) and returns the alert.
    fn fire_cpu(ev: &mut ThresholdEvaluator) -> Alert {
        let events = feed_cpu(ev, 0, &[93.2, 93.2, 93.2, 93.2]);
        assert_eq!(events.len(), 1, "{events:?}");
        fires(&events)[0].clone()
    }

    #[test]
    fn fires_exactly_at_sustain_not_before() {
        let mut ev = evaluator();
        for s in [0, 10, 20] {
            assert!(ev.observe(&cpu(s, 93.2)).is_empty(), "fired early at {s} s");
        }
        let events = ev.observe(&cpu(30, 93.2));
        let f = fires(&events);
        assert_eq!((f.len(), events.len()), (1, 1));
        let a = f[0];
        assert_eq!(a.category, Category::HostCpuHigh);
        assert_eq!(a.severity, Category::HostCpuHigh.default_severity());
        assert_eq!(a.summary, "CPU at 93.2 % for 30 s (threshold 80 %)");
        assert_eq!(a.evidence["value"], 93.2);
        assert_eq!(a.evidence["threshold"], 80.0);
        assert_eq!(a.evidence["sustained_secs"], 30);
        assert_eq!(a.timestamp, at(30));
        assert_eq!(a.agent.as_ref().map(AgentId::as_str), Some("web-1"));
        let (id_secs, _) = a.id.get_timestamp().map(|t| t.to_unix()).unwrap();
        assert_eq!(id_secs as i64, T0 + 30);
    }

    #[test]
    fn irregular_samples_fire_at_the_first_one_past_sustain() {
        let mut ev = evaluator();
        assert!(ev.observe(&cpu(0, 85.0)).is_empty());
        assert!(ev.observe(&cpu(29, 85.0)).is_empty());
        let events = ev.observe(&cpu(31, 85.0));
        assert_eq!(fires(&events)[0].evidence["sustained_secs"], 31);
    }

    #[test]
    fn exactly_at_threshold_counts_as_over() {
        let mut ev = evaluator();
        let events = feed_cpu(&mut ev, 0, &[80.0, 80.0, 80.0, 80.0]);
        assert_eq!(fires(&events).len(), 1);
    }

    #[test]
    fn a_dip_resets_the_pending_clock() {
        let mut ev = evaluator();
        // Over at 0, 10; dip at 20; over again from 30: fires at 60, not 30.
        let events = feed_cpu(&mut ev, 0, &[90.0, 90.0, 79.9, 90.0, 90.0, 90.0]);
        assert!(events.is_empty(), "{events:?}");
        let events = ev.observe(&cpu(60, 90.0));
        assert_eq!(fires(&events).len(), 1);
        assert_eq!(fires(&events)[0].evidence["sustained_secs"], 30);
    }

    #[test]
    fn no_refire_while_firing() {
        let mut ev = evaluator();
        fire_cpu(&mut ev);
        let events = feed_cpu(&mut ev, 40, &[99.0; 50]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn resolves_only_below_threshold_minus_hysteresis_sustained() {
        let mut ev = evaluator();
        let alert = fire_cpu(&mut ev);
        // Below the threshold but within the hysteresis band (75..80): stays firing.
        assert!(feed_cpu(&mut ev, 40, &[76.0; 20]).is_empty());
        // Exactly at threshold - hysteresis is not below it.
        assert!(feed_cpu(&mut ev, 240, &[75.0; 5]).is_empty());
        // Below 75 at 290, 300, 310, back in the band at 320: the resolve clock restarts.
        assert!(feed_cpu(&mut ev, 290, &[74.9, 74.9, 74.9, 76.0]).is_empty());
        // Below from 330: nothing at 330..350, resolve at 360.
        assert!(feed_cpu(&mut ev, 330, &[10.0, 10.0, 10.0]).is_empty());
        let events = ev.observe(&cpu(360, 10.0));
        let r = resolves(&events);
        assert_eq!((r.len(), events.len()), (1, 1));
        assert_eq!(r[0].alert_id, alert.id);
        assert_eq!(r[0].category, Category::HostCpuHigh);
        assert_eq!(r[0].at, at(360));
        // Resolved once; staying low says nothing more.
        assert!(feed_cpu(&mut ev, 370, &[10.0; 10]).is_empty());
        // Going over again is a new alert with a new id, after a full sustain.
        let events = feed_cpu(&mut ev, 500, &[95.0, 95.0, 95.0, 95.0]);
        let f = fires(&events);
        assert_eq!(f.len(), 1);
        assert_ne!(f[0].id, alert.id);
        assert_eq!(f[0].timestamp, at(530));
    }

    #[test]
    fn flapping_around_the_threshold_never_fires() {
        let mut ev = evaluator();
        let values: Vec<f32> = (0..200).map(|i| if i % 2 == 0 { 80.5 } else { 79.5 }).collect();
        let events = feed_cpu(&mut ev, 0, &values);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn flapping_after_firing_neither_refires_nor_resolves() {
        let mut ev = evaluator();
        let values: Vec<f32> = (0..200).map(|i| if i < 4 || i % 2 == 0 { 80.5 } else { 79.5 }).collect();
        let events = feed_cpu(&mut ev, 0, &values);
        assert_eq!(fires(&events).len(), 1, "{events:?}");
        assert!(resolves(&events).is_empty(), "{events:?}");
    }

    #[test]
    fn memory_fires_with_its_own_category() {
        let mut ev = evaluator();
        let events: Vec<_> = (0..4).flat_map(|i| ev.observe(&sample(i * 10, 5.0, 88.0, &[]))).collect();
        let f = fires(&events);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].category, Category::HostMemoryHigh);
        assert_eq!(f[0].summary, "Memory at 88.0 % for 30 s (threshold 80 %)");
        assert_eq!(f[0].evidence["used_bytes"], 880);
    }

    #[test]
    fn disk_mounts_are_independent() {
        let mut ev = evaluator();
        let mut events = Vec::new();
        for s in (0..=30).step_by(10) {
            events.extend(ev.observe(&sample(s, 5.0, 5.0, &[("/", 95.0), ("/data", 50.0)])));
        }
        let f = fires(&events);
        assert_eq!(f.len(), 1, "{events:?}");
        assert_eq!(f[0].category, Category::HostDiskHigh);
        assert_eq!(f[0].evidence["mount"], "/");
        assert_eq!(f[0].summary, "Disk / at 95.0 % for 30 s (threshold 90 %)");
        let root_id = f[0].id;

        // /data goes over from 40 and fires at 70; / keeps firing without a second alert.
        let mut events = Vec::new();
        for s in (40..=70).step_by(10) {
            events.extend(ev.observe(&sample(s, 5.0, 5.0, &[("/", 95.0), ("/data", 97.0)])));
        }
        let f = fires(&events);
        assert_eq!(f.len(), 1, "{events:?}");
        assert_eq!(f[0].evidence["mount"], "/data");
        assert_eq!(f[0].timestamp, at(70));

        // / drops below 85 from 80 and resolves at 110; /data stays firing.
        let mut events = Vec::new();
        for s in (80..=110).step_by(10) {
            events.extend(ev.observe(&sample(s, 5.0, 5.0, &[("/", 40.0), ("/data", 97.0)])));
        }
        assert_eq!(events.len(), 1, "{events:?}");
        let r = resolves(&events);
        assert_eq!(r[0].alert_id, root_id);
        assert_eq!(r[0].category, Category::HostDiskHigh);
        assert_eq!(ev.tracked_mounts(), 1);
    }

    #[test]
    fn a_disappearing_mount_resolves() {
        let mut ev = evaluator();
        let mut fired = Vec::new();
        for s in (0..=30).step_by(10) {
            fired.extend(ev.observe(&sample(s, 5.0, 5.0, &[("/", 10.0), ("/mnt/usb", 99.0), ("/srv", 95.0)])));
        }
        let usb = fires(&fired).into_iter().find(|a| a.evidence["mount"] == "/mnt/usb").unwrap().id;
        // /srv drops back to pending-free; /mnt/usb is unplugged.
        let events = ev.observe(&sample(40, 5.0, 5.0, &[("/", 10.0), ("/srv", 95.0)]));
        let r = resolves(&events);
        assert_eq!((r.len(), events.len()), (1, 1), "{events:?}");
        assert_eq!(r[0].alert_id, usb);
        assert_eq!(r[0].at, at(40));
        // Plugged back in over threshold: a fresh clock, so nothing until a full sustain.
        let events = ev.observe(&sample(50, 5.0, 5.0, &[("/", 10.0), ("/mnt/usb", 99.0), ("/srv", 95.0)]));
        assert!(events.is_empty(), "{events:?}");
        let events = ev.observe(&sample(80, 5.0, 5.0, &[("/", 10.0), ("/mnt/usb", 99.0), ("/srv", 95.0)]));
        assert_eq!(fires(&events).len(), 1);
    }

    #[test]
    fn a_disappearing_pending_mount_is_forgotten_silently() {
        let mut ev = evaluator();
        assert!(ev.observe(&sample(0, 5.0, 5.0, &[("/tmp/x", 99.0)])).is_empty());
        assert_eq!(ev.tracked_mounts(), 1);
        assert!(ev.observe(&sample(10, 5.0, 5.0, &[])).is_empty());
        assert_eq!(ev.tracked_mounts(), 0);
        // Back at 20: its clock starts again at 20, so 40 is too early.
        assert!(ev.observe(&sample(20, 5.0, 5.0, &[("/tmp/x", 99.0)])).is_empty());
        assert!(ev.observe(&sample(40, 5.0, 5.0, &[("/tmp/x", 99.0)])).is_empty());
        assert_eq!(fires(&ev.observe(&sample(50, 5.0, 5.0, &[("/tmp/x", 99.0)]))).len(), 1);
    }

    #[test]
    fn mount_state_is_capped_and_overflow_counted() {
        let mut ev = evaluator();
        let names: Vec<String> = (0..MAX_TRACKED_MOUNTS + 3).map(|i| format!("/m{i:04}")).collect();
        let disks: Vec<(&str, f32)> = names.iter().map(|n| (n.as_str(), 99.0)).collect();
        let mut events = Vec::new();
        for s in (0..=30).step_by(10) {
            events.extend(ev.observe(&sample(s, 5.0, 5.0, &disks)));
        }
        assert_eq!(ev.tracked_mounts(), MAX_TRACKED_MOUNTS);
        assert_eq!(fires(&events).len(), MAX_TRACKED_MOUNTS);
        assert_eq!(ev.mounts_over_cap(), 3 * 4);
        // Mounts below their threshold take no room.
        let mut ev = evaluator();
        let low: Vec<(&str, f32)> = names.iter().map(|n| (n.as_str(), 10.0)).collect();
        assert!(ev.observe(&sample(0, 5.0, 5.0, &low)).is_empty());
        assert_eq!((ev.tracked_mounts(), ev.mounts_over_cap()), (0, 0));
    }

    #[test]
    fn zero_sustain_fires_on_the_first_sample_over() {
        let th = Thresholds { sustain: Duration::ZERO, ..Thresholds::default() };
        let mut ev = ThresholdEvaluator::new(th, None);
        let events = ev.observe(&cpu(0, 81.0));
        assert_eq!(fires(&events).len(), 1);
        assert_eq!(fires(&events)[0].agent, None);
        assert!(ev.observe(&cpu(1, 81.0)).is_empty());
        assert_eq!(resolves(&ev.observe(&cpu(2, 1.0))).len(), 1);
    }

    #[test]
    fn a_clock_stepping_back_restarts_the_clock_instead_of_firing() {
        let mut ev = evaluator();
        assert!(ev.observe(&cpu(100, 90.0)).is_empty());
        assert!(ev.observe(&cpu(50, 90.0)).is_empty());
        // The clock now runs from 50: 79 is too early, 80 fires.
        assert!(ev.observe(&cpu(79, 90.0)).is_empty());
        assert_eq!(fires(&ev.observe(&cpu(80, 90.0))).len(), 1);
    }

    #[test]
    fn nan_values_change_nothing() {
        let mut ev = evaluator();
        assert!(feed_cpu(&mut ev, 0, &[90.0, f32::NAN, 90.0]).is_empty());
        assert_eq!(fires(&ev.observe(&cpu(30, 90.0))).len(), 1);
        assert!(feed_cpu(&mut ev, 40, &[f32::NAN; 10]).is_empty());
    }

    #[test]
    fn validate_accepts_defaults_and_boundaries() {
        assert_eq!(Thresholds::default().validate(), Ok(()));
        let edge = Thresholds {
            cpu_percent: 100.0,
            memory_percent: 0.5,
            disk_percent: 100.0,
            sustain: Duration::from_secs(3600),
            hysteresis: 0.0,
        };
        assert_eq!(edge.validate(), Ok(()));
    }

    #[test]
    fn validate_rejects_bad_values_naming_the_field() {
        let d = Thresholds::default;
        let cases = [
            (Thresholds { cpu_percent: 0.0, ..d() }, "cpu_percent"),
            (Thresholds { cpu_percent: f32::NAN, ..d() }, "cpu_percent"),
            (Thresholds { memory_percent: 100.1, ..d() }, "memory_percent"),
            (Thresholds { disk_percent: -5.0, ..d() }, "disk_percent"),
            (Thresholds { hysteresis: -0.1, ..d() }, "hysteresis"),
            (Thresholds { hysteresis: 80.0, ..d() }, "hysteresis"),
            (Thresholds { hysteresis: f32::NAN, ..d() }, "hysteresis"),
            (Thresholds { sustain: Duration::from_secs(3601), ..d() }, "sustain"),
        ];
        for (t, field) in cases {
            let err = t.validate().expect_err(field);
            assert!(err.contains(field), "{err}");
        }
    }
}
