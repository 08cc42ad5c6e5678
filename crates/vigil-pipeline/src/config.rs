//! Pipeline settings: what the operator writes (serde, `deny_unknown_fields`, every field
//! defaulted) and [`PipelineConfig::validate`], which the pipeline runs before using them.

use serde::{Deserialize, Serialize};
use vigil_model::{Category, Severity};

/// Every setting of the pipeline. `PipelineConfig::default()` is the documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Seed for every random choice (ids, anomaly model sampling). Same seed and same inputs
    /// give the same outputs.
    pub seed: u64,
    /// Dedup, incidents, escalation, auto-resolve, notification.
    pub lifecycle: LifecycleConfig,
    /// `dos_suspected` correlation.
    pub dos: DosConfig,
    /// Repeated `integrity_failure` / `replay_attempt` from one peer.
    pub monitor: MonitorConfig,
    /// Per-metric robust baselines → `traffic_spike`.
    pub baseline: BaselineConfig,
    /// Multivariate anomaly model → `metric_anomaly`.
    pub anomaly: AnomalyConfig,
    /// Heartbeats → `agent_offline`, spool backfill.
    pub churn: ChurnConfig,
    /// Caps on every map the pipeline keeps.
    pub limits: Limits,
}

/// Dedup, incident grouping, escalation and auto-resolve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// An open alert with no new occurrence for this long is resolved.
    pub quiet_period_secs: u64,
    /// An open incident with no new evidence for this long is resolved.
    pub incident_quiet_period_secs: u64,
    /// Alerts sharing an attacker (source address) or a target (destination address)
    /// within this window group into one incident.
    pub group_window_secs: u64,
    /// Distinct open alerts (different category or peer) needed to form an incident.
    pub group_min_alerts: usize,
    /// Alerts below this severity do not group into incidents.
    pub group_min_severity: Severity,
    /// Each count threshold an alert reaches raises its severity one level.
    pub escalate_counts: Vec<u64>,
    /// An alert (or incident) seen by at least this many distinct agents rises one level.
    pub escalate_agents: usize,
    /// Nothing below this severity is notified (it is still recorded).
    pub notify_min_severity: Severity,
    /// Updates of one alert or incident are emitted at most once per this interval (the
    /// latest state is flushed by `tick`); state changes and escalations go out at once.
    pub update_interval_ms: u64,
    /// Alerts older than this (relative to the injected clock) are backfill: stored, counted
    /// into an open alert if one exists, never notified and never reopening anything.
    pub backfill_age_secs: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            quiet_period_secs: 15 * 60,
            incident_quiet_period_secs: 30 * 60,
            group_window_secs: 10 * 60,
            group_min_alerts: 2,
            group_min_severity: Severity::Medium,
            escalate_counts: vec![10, 100],
            escalate_agents: 3,
            notify_min_severity: Severity::Medium,
            update_interval_ms: 1000,
            backfill_age_secs: 15 * 60,
        }
    }
}

/// `dos_suspected`: many alerts from several agents against one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DosConfig {
    /// Alerts of `flood_categories` needed against one destination (N).
    pub min_alerts: usize,
    /// Distinct agents those alerts must come from (M).
    pub min_agents: usize,
    /// Consensus: flood or scan alerts against one destination from at least this many
    /// distinct agents raise `dos_suspected` even below `min_alerts` (0 turns it off).
    /// Agents raise one alert per (category, source, target) per cooldown, so a flood
    /// from spoofed sources is one per-destination alert per watcher: independent
    /// watchers agreeing is the evidence, whatever the count.
    pub consensus_agents: usize,
    /// Window the alerts must fall in (T), inclusive at both ends.
    pub window_secs: u64,
    /// The flood and scan kinds the narrow rule counts.
    pub flood_categories: Vec<Category>,
    /// The broad rule: `broad_min_alerts` alerts of any kind (at least
    /// `broad_min_severity`) from `broad_min_agents` agents within the window.
    pub broad_rule: bool,
    /// Alerts the broad rule needs.
    pub broad_min_alerts: usize,
    /// Distinct agents the broad rule needs.
    pub broad_min_agents: usize,
    /// Alerts below this severity do not count for the broad rule.
    pub broad_min_severity: Severity,
}

impl Default for DosConfig {
    fn default() -> Self {
        Self {
            min_alerts: 5,
            min_agents: 2,
            consensus_agents: 3,
            window_secs: 10,
            flood_categories: vec![Category::SynFlood, Category::IcmpFlood, Category::PortScan],
            broad_rule: true,
            broad_min_alerts: 5,
            broad_min_agents: 2,
            broad_min_severity: Severity::Medium,
        }
    }
}

/// Attacks on the monitor itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// `integrity_failure` / `replay_attempt` alerts from one peer needed for an incident.
    pub min_alerts: usize,
    /// Window they must fall in.
    pub window_secs: u64,
    /// At this many the incident becomes critical.
    pub critical_alerts: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self { min_alerts: 3, window_secs: 10 * 60, critical_alerts: 20 }
    }
}

/// Which way a deviation must go to raise `traffic_spike`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only rises (spikes, upward level shifts).
    Up,
    /// Rises and drops.
    Both,
}

/// Per-metric robust baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Robust z-score threshold (k).
    pub k: f64,
    /// The deviation must stay above k at least this long (first to last point).
    pub sustain_secs: u64,
    /// An alert ends after this long with no point above `k × exit_ratio`.
    pub clear_secs: u64,
    /// Hysteresis: while an alert is up, points above `k × exit_ratio` keep it up.
    pub exit_ratio: f64,
    /// No alert until a series has this much history.
    pub learning_secs: u64,
    /// Half-life of the EWMA level.
    pub half_life_secs: u64,
    /// Residuals kept for the median absolute deviation (points).
    pub mad_window: usize,
    /// The MAD is recomputed every this many accepted points.
    pub mad_every: u32,
    /// Points whose residual exceeds this many scales are clipped before they update the
    /// level (winsorizing), so outliers cannot drag the baseline.
    pub winsor: f64,
    /// A deviation that persists this long is a level shift: the baseline re-seeds from
    /// the recent values and the alert ends (the new level is normal from then on).
    pub adapt_after_secs: u64,
    /// A gap between points longer than this breaks a run above k.
    pub max_gap_secs: u64,
    /// Time-of-day profile bins per day (0 disables the profile).
    pub profile_bins: usize,
    /// Days of history every bin needs before the profile is used.
    pub profile_min_days: u16,
    /// Days of history kept per bin (the profile is their median).
    pub profile_days: u8,
    /// Half-life of the level (an offset from the profile) once the profile is in use.
    pub profile_half_life_secs: u64,
    /// Floor of the scale, relative to the level (guards flat series; not applied to
    /// `log_metrics`).
    pub rel_scale_floor: f64,
    /// Metrics modelled on `ln(1 + x)`: rates whose noise is multiplicative, so a rise to
    /// twice the normal weighs the same at any level.
    pub log_metrics: Vec<String>,
    /// Floor of the scale, absolute; per metric name, with `"*"` as the fallback.
    pub abs_scale_floor: Vec<(String, f64)>,
    /// Which deviations alert.
    pub direction: Direction,
    /// Metrics that raise `traffic_spike` (others only feed the anomaly model).
    pub spike_metrics: Vec<String>,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        use crate::metrics::*;
        // Volumes and rates: heavy-tailed, so baselined on a log scale, and watched for spikes.
        const VOLUMES: [&str; 8] =
            [DISK_IO, BYTES_IN, BYTES_OUT, PACKETS, NEW_CONNS, CAPTURE_PACKETS, CAPTURE_BYTES_IN, CAPTURE_BYTES_OUT];
        Self {
            k: 4.0,
            sustain_secs: 30,
            clear_secs: 60,
            exit_ratio: 0.75,
            learning_secs: 3600,
            half_life_secs: 600,
            mad_window: 360,
            mad_every: 6,
            winsor: 3.0,
            adapt_after_secs: 30 * 60,
            max_gap_secs: 60,
            profile_bins: 96,
            profile_min_days: 3,
            profile_days: 7,
            profile_half_life_secs: 600,
            rel_scale_floor: 0.005,
            log_metrics: VOLUMES.iter().map(|s| s.to_string()).collect(),
            abs_scale_floor: vec![(ALERT_RATE.to_string(), 0.05), ("*".to_string(), 1e-6)],
            direction: Direction::Up,
            spike_metrics: [CPU, MEMORY].iter().chain(&VOLUMES).map(|s| s.to_string()).collect(),
        }
    }
}

/// What the anomaly model sees of an agent's metric deviations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureMode {
    /// One feature per metric: its robust z-score.
    PerMetric,
    /// The largest `ranked_features` deviations, sorted: how many metrics deviate at once
    /// and by how much, whichever they are.
    Ranked,
    /// Both.
    Both,
}

/// The multivariate anomaly model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Turns the model off.
    pub enabled: bool,
    /// Feature names, in order (metric names of the baselines).
    pub features: Vec<String>,
    /// Trees in the forest.
    pub trees: usize,
    /// Points each tree is grown from (ψ).
    pub sample_size: usize,
    /// A vector joins the training window at most once per this interval.
    pub train_every_secs: u64,
    /// Training window size (vectors); the oldest leave first.
    pub train_window: usize,
    /// Vectors needed before the first training.
    pub min_train: usize,
    /// Retrain this often.
    pub retrain_secs: u64,
    /// Score threshold floor; the effective threshold is the larger of this and the
    /// `calibration_quantile` of the training scores plus `calibration_margin`.
    pub score_threshold: f64,
    /// Quantile of training scores used to calibrate the threshold.
    pub calibration_quantile: f64,
    /// Added to that quantile.
    pub calibration_margin: f64,
    /// The score must stay above threshold this long.
    pub sustain_secs: u64,
    /// An anomaly ends after this long below `threshold - exit_margin`.
    pub clear_secs: u64,
    /// Hysteresis: while an anomaly is up, scores above `threshold - exit_margin` keep it up.
    pub exit_margin: f64,
    /// Feature values (robust z-scores) are clipped to ±this.
    pub clip: f64,
    /// What the model sees.
    pub feature_mode: FeatureMode,
    /// Deviations kept in `ranked` and `both` modes.
    pub ranked_features: usize,
    /// Only rises count: negative z-scores enter the model as 0. Less activity than usual
    /// is not what this model is for (`agent_offline` covers silence), and the dips that
    /// follow a baseline's recovery after an event would otherwise look anomalous.
    pub rises_only: bool,
    /// The model scores the mean of the last this many feature vectors (1 = no
    /// smoothing): anomalies worth an alert last minutes, and averaging cuts the noise of
    /// single samples.
    pub smooth_points: usize,
    /// Features reported as the main contributors.
    pub top_features: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        use crate::metrics::*;
        Self {
            enabled: true,
            features: [CPU, MEMORY, DISK_IO, BYTES_IN, BYTES_OUT, PACKETS, NEW_CONNS, ALERT_RATE]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            trees: 100,
            sample_size: 256,
            train_every_secs: 60,
            train_window: 1440,
            min_train: 360,
            retrain_secs: 3600,
            score_threshold: 0.62,
            calibration_quantile: 0.99,
            calibration_margin: 0.08,
            sustain_secs: 30,
            clear_secs: 120,
            exit_margin: 0.03,
            clip: 12.0,
            feature_mode: FeatureMode::Ranked,
            ranked_features: 4,
            rises_only: false,
            smooth_points: 6,
            top_features: 3,
        }
    }
}

/// Agent heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChurnConfig {
    /// Heartbeat interval assumed when the agent does not say.
    pub default_interval_secs: u64,
    /// Missed intervals before `agent_offline`.
    pub missed_intervals: u32,
}

impl Default for ChurnConfig {
    fn default() -> Self {
        Self { default_interval_secs: 10, missed_intervals: 3 }
    }
}

/// Caps on the pipeline's maps; each has an eviction rule and a counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open alerts; the one seen longest ago is resolved (`evicted`) to make room.
    pub open_alerts: usize,
    /// Open incidents; the one seen longest ago is resolved to make room.
    pub open_incidents: usize,
    /// Grouping entries per source and per destination address.
    pub group_keys: usize,
    /// DoS windows (destinations); the least recent is dropped.
    pub dos_targets: usize,
    /// Alerts kept in one DoS window; the oldest is dropped.
    pub dos_window_alerts: usize,
    /// Peers tracked for attacks on the monitor.
    pub monitor_peers: usize,
    /// Baseline series (agent × metric).
    pub series: usize,
    /// Agents tracked (heartbeats, anomaly models).
    pub agents: usize,
    /// Silences.
    pub silences: usize,
    /// Ids linked from one incident or alert (ids, agents, addresses); further ones are
    /// counted, not kept.
    pub links: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            open_alerts: 100_000,
            open_incidents: 10_000,
            group_keys: 100_000,
            dos_targets: 10_000,
            dos_window_alerts: 1024,
            monitor_peers: 10_000,
            series: 200_000,
            agents: 20_000,
            silences: 1000,
            links: 256,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("pipeline setting {field} = {value} is invalid: {hint}")]
pub struct ConfigError {
    /// Dotted path of the setting, e.g. `dos.min_agents`.
    pub field: &'static str,
    /// The value found.
    pub value: String,
    /// What would work.
    pub hint: &'static str,
}

fn check(ok: bool, field: &'static str, value: impl ToString, hint: &'static str) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError { field, value: value.to_string(), hint }) }
}

impl PipelineConfig {
    /// Checks every setting; the pipeline refuses a config that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.lifecycle;
        check(l.quiet_period_secs > 0, "lifecycle.quiet_period_secs", l.quiet_period_secs, "use at least 1")?;
        check(
            l.incident_quiet_period_secs > 0,
            "lifecycle.incident_quiet_period_secs",
            l.incident_quiet_period_secs,
            "use at least 1",
        )?;
        check(l.group_min_alerts >= 2, "lifecycle.group_min_alerts", l.group_min_alerts, "use at least 2")?;
        check(l.escalate_agents >= 2, "lifecycle.escalate_agents", l.escalate_agents, "use at least 2")?;
        check(
            l.escalate_counts.windows(2).all(|w| w[0] < w[1]) && l.escalate_counts.iter().all(|c| *c >= 2),
            "lifecycle.escalate_counts",
            format!("{:?}", l.escalate_counts),
            "list increasing counts of at least 2",
        )?;
        let d = &self.dos;
        check(d.min_alerts >= 2, "dos.min_alerts", d.min_alerts, "use at least 2")?;
        check(d.min_agents >= 1, "dos.min_agents", d.min_agents, "use at least 1")?;
        check(
            d.consensus_agents == 0 || d.consensus_agents >= d.min_agents.max(2),
            "dos.consensus_agents",
            d.consensus_agents,
            "use 0 (off) or at least 2 and at least dos.min_agents",
        )?;
        check(d.broad_min_alerts >= 2, "dos.broad_min_alerts", d.broad_min_alerts, "use at least 2")?;
        check(d.broad_min_agents >= 1, "dos.broad_min_agents", d.broad_min_agents, "use at least 1")?;
        check(d.window_secs > 0, "dos.window_secs", d.window_secs, "use at least 1")?;
        let lim = &self.limits;
        check(
            lim.dos_window_alerts >= d.min_alerts.max(d.broad_min_alerts),
            "limits.dos_window_alerts",
            lim.dos_window_alerts,
            "must hold at least dos.min_alerts and dos.broad_min_alerts",
        )?;
        check(self.monitor.min_alerts >= 2, "monitor.min_alerts", self.monitor.min_alerts, "use at least 2")?;
        check(self.monitor.min_alerts <= 1024, "monitor.min_alerts", self.monitor.min_alerts, "use at most 1024")?;
        let b = &self.baseline;
        check(b.k.is_finite() && b.k > 0.0, "baseline.k", b.k, "use a positive number such as 4")?;
        check(b.exit_ratio > 0.0 && b.exit_ratio <= 1.0, "baseline.exit_ratio", b.exit_ratio, "use a ratio in (0, 1]")?;
        check(b.winsor.is_finite() && b.winsor > 0.0, "baseline.winsor", b.winsor, "use a positive number")?;
        check(b.half_life_secs > 0, "baseline.half_life_secs", b.half_life_secs, "use at least 1")?;
        check((8..=100_000).contains(&b.mad_window), "baseline.mad_window", b.mad_window, "use 8 to 100000")?;
        check(b.mad_every >= 1, "baseline.mad_every", b.mad_every, "use at least 1")?;
        check(b.profile_bins <= 1440, "baseline.profile_bins", b.profile_bins, "use 0 to 1440")?;
        check((1..=30).contains(&b.profile_days), "baseline.profile_days", b.profile_days, "use 1 to 30")?;
        check(
            b.profile_min_days >= 1 && b.profile_min_days <= u16::from(b.profile_days),
            "baseline.profile_min_days",
            b.profile_min_days,
            "use 1 to baseline.profile_days",
        )?;
        check(
            b.profile_half_life_secs > 0,
            "baseline.profile_half_life_secs",
            b.profile_half_life_secs,
            "use at least 1",
        )?;
        check(
            b.rel_scale_floor.is_finite() && b.rel_scale_floor >= 0.0,
            "baseline.rel_scale_floor",
            b.rel_scale_floor,
            "use 0 or a small positive fraction",
        )?;
        check(
            b.abs_scale_floor.iter().all(|(_, f)| f.is_finite() && *f > 0.0),
            "baseline.abs_scale_floor",
            format!("{:?}", b.abs_scale_floor),
            "every floor must be positive",
        )?;
        let a = &self.anomaly;
        check((1..=64).contains(&a.features.len()), "anomaly.features", a.features.len(), "list 1 to 64 metric names")?;
        check((1..=1000).contains(&a.trees), "anomaly.trees", a.trees, "use 1 to 1000")?;
        check((4..=4096).contains(&a.sample_size), "anomaly.sample_size", a.sample_size, "use 4 to 4096")?;
        check(
            a.min_train >= a.sample_size.min(16) && a.min_train <= a.train_window,
            "anomaly.min_train",
            a.min_train,
            "use at least 16 and at most anomaly.train_window",
        )?;
        check(a.train_window <= 100_000, "anomaly.train_window", a.train_window, "use at most 100000")?;
        check(
            a.score_threshold > 0.0 && a.score_threshold < 1.0,
            "anomaly.score_threshold",
            a.score_threshold,
            "use a score in (0, 1)",
        )?;
        check(
            (0.0..=1.0).contains(&a.calibration_quantile),
            "anomaly.calibration_quantile",
            a.calibration_quantile,
            "use a quantile in [0, 1]",
        )?;
        check((0.0..0.5).contains(&a.exit_margin), "anomaly.exit_margin", a.exit_margin, "use 0 to 0.5")?;
        check(a.clip.is_finite() && a.clip > 0.0, "anomaly.clip", a.clip, "use a positive number")?;
        check(
            (1..=a.features.len()).contains(&a.ranked_features),
            "anomaly.ranked_features",
            a.ranked_features,
            "use 1 to the number of features",
        )?;
        check((1..=360).contains(&a.smooth_points), "anomaly.smooth_points", a.smooth_points, "use 1 to 360")?;
        check(a.retrain_secs > 0, "anomaly.retrain_secs", a.retrain_secs, "use at least 1")?;
        let c = &self.churn;
        check(c.default_interval_secs > 0, "churn.default_interval_secs", c.default_interval_secs, "use at least 1")?;
        check(c.missed_intervals >= 1, "churn.missed_intervals", c.missed_intervals, "use at least 1")?;
        check(lim.links >= 8, "limits.links", lim.links, "use at least 8")?;
        for (field, v) in [
            ("limits.open_alerts", lim.open_alerts),
            ("limits.open_incidents", lim.open_incidents),
            ("limits.group_keys", lim.group_keys),
            ("limits.dos_targets", lim.dos_targets),
            ("limits.monitor_peers", lim.monitor_peers),
            ("limits.series", lim.series),
            ("limits.agents", lim.agents),
            ("limits.silences", lim.silences),
        ] {
            check(v >= 1, field, v, "use at least 1")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip() {
        let c = PipelineConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<PipelineConfig>(&json).unwrap(), c);
        // Partial input takes defaults; unknown fields are refused.
        let p: PipelineConfig = serde_json::from_str(r#"{"dos":{"min_agents":3}}"#).unwrap();
        assert_eq!(p.dos.min_agents, 3);
        assert_eq!(p.dos.min_alerts, 5);
        assert!(serde_json::from_str::<PipelineConfig>(r#"{"dos":{"min_agent":3}}"#).is_err());
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = PipelineConfig::default();
        c.dos.min_alerts = 1;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "dos.min_alerts");
        assert!(e.to_string().contains("dos.min_alerts = 1"));
    }
}
