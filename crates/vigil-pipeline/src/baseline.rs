//! Robust per-series baselines and the `traffic_spike` rule.
//!
//! Each series (agent × metric) keeps:
//! - a **level**: an EWMA with a time-based half-life, fed with *winsorized* values (a
//!   residual is clipped to ±`winsor` scales first), and not fed at all while a point is
//!   beyond k, so an outlier or an attack cannot drag the baseline;
//! - a **scale**: 1.4826 × the median absolute deviation of the last `mad_window` residuals
//!   (≈ the standard deviation for Gaussian noise, but unmoved by a minority of outliers),
//!   with floors so a flat series does not divide by zero;
//! - a **time-of-day profile** (`profile_bins` bins per day, interpolated; each bin the
//!   median of its means over the last `profile_days` days, so one unusual day does not
//!   teach it): once every bin has `profile_min_days` days of history, the expected value is
//!   the profile plus an EWMA offset with the longer `profile_half_life_secs`, so a daily
//!   rhythm is not mistaken for a deviation and a sub-threshold deviation lasting tens of
//!   minutes is not absorbed before the anomaly model sees it.
//!
//! The robust z-score is `(x - expected) / scale`. A `traffic_spike` is raised when it stays
//! above k for `sustain_secs` (after `learning_secs` of history), and ends when no point
//! is above k for `clear_secs`. A deviation lasting `adapt_after_secs` is a level shift:
//! the baseline re-seeds its level and scale from the recent values, the alert ends, and the
//! new level is normal from then on: a permanent change alerts once.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{BaselineConfig, Direction};
use crate::util::secs_ms;

const DAY_MS: i64 = 86_400_000;
/// Residuals needed before the scale is trusted.
const MIN_RESIDUALS: usize = 30;
/// Recent values kept during a deviation, to re-seed the level after a shift.
const RECENT: usize = 64;
/// Consistency constant: MAD × this ≈ σ for Gaussian noise.
const MAD_TO_SIGMA: f64 = 1.4826;

/// The baseline of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesBaseline {
    first_ms: i64,
    last_ms: i64,
    points: u64,
    /// Raw level (profile inactive) or offset from the profile (profile active).
    level: f64,
    mad_scale: f64,
    residuals: VecDeque<f32>,
    since_mad: u32,
    profile: Profile,
    run: Option<Run>,
}

/// Time-of-day profile: per bin, the means of that bin on the last `profile_days` days
/// (a ring), and their median. The median ignores a day that was unusual (an incident, a
/// leak) as long as most days were not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    bins: usize,
    keep: usize,
    /// `bins × keep` day means; bin `i` uses `[i*keep, (i+1)*keep)`.
    history: Vec<f32>,
    /// Day means held per bin.
    filled: Vec<u8>,
    /// Next slot to write per bin.
    head: Vec<u8>,
    /// Median per bin.
    values: Vec<f64>,
    active: bool,
    acc_key: i64,
    acc_sum: f64,
    acc_n: u32,
}

/// A run of points beyond k in one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Run {
    up: bool,
    start_ms: i64,
    last_ms: i64,
    peak_z: f64,
    /// Deseasonalized values of the run's points, newest last.
    recent: VecDeque<f32>,
    /// The alert raised for this run, once raised.
    alert: Option<Uuid>,
}

/// Lower bounds of the scale, so a flat series does not divide by zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// Absolute floor, in the metric's units.
    pub abs: f64,
    /// Floor relative to the expected value.
    pub rel: f64,
}

/// Why an alert of a baseline ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The series came back within k.
    Cleared,
    /// The deviation lasted long enough to become the new baseline.
    Adapted,
}

/// What one observation produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Nothing to report.
    None,
    /// The deviation has been sustained: raise `traffic_spike`, then call
    /// [`SeriesBaseline::mark_alerted`] with the alert's id.
    Spike(SpikeFacts),
    /// The alert `alert` ended.
    Ended {
        /// Id given to [`SeriesBaseline::mark_alerted`].
        alert: Uuid,
        /// Why.
        reason: EndReason,
    },
}

/// The facts behind a `traffic_spike`, for its summary and evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpikeFacts {
    /// Value of the point that completed the sustain time.
    pub value: f64,
    /// What the baseline expected.
    pub expected: f64,
    /// Robust scale (≈ σ).
    pub scale: f64,
    /// Robust z-score of this point.
    pub z: f64,
    /// Largest z-score of the run.
    pub peak_z: f64,
    /// When the run above k began (unix ms).
    pub since_ms: i64,
    /// How long it has lasted, in seconds.
    pub sustained_secs: f64,
    /// Whether the time-of-day profile is in use.
    pub profile: bool,
}

/// The result of one observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Robust z-score of the point, once the scale is trusted (`None` while learning the
    /// scale, or when the point was out of order).
    pub z: Option<f64>,
    /// What to do.
    pub signal: Signal,
}

impl Profile {
    fn new(cfg: &BaselineConfig) -> Self {
        let (bins, keep) = (cfg.profile_bins, usize::from(cfg.profile_days.max(1)));
        Self {
            bins,
            keep,
            history: vec![0.0; bins * keep],
            filled: vec![0; bins],
            head: vec![0; bins],
            values: vec![0.0; bins],
            active: false,
            acc_key: -1,
            acc_sum: 0.0,
            acc_n: 0,
        }
    }

    fn bin_ms(&self) -> i64 {
        DAY_MS / self.bins.max(1) as i64
    }

    /// Interpolated profile value at `ts` (0 when disabled).
    fn at(&self, ts: i64) -> f64 {
        let b = self.values.len();
        if b == 0 {
            return 0.0;
        }
        let pos = ts.rem_euclid(DAY_MS) as f64 / self.bin_ms() as f64 - 0.5;
        let base = pos.floor();
        let frac = pos - base;
        let i0 = (base as i64).rem_euclid(b as i64) as usize;
        let i1 = (i0 + 1) % b;
        self.values[i0] * (1.0 - frac) + self.values[i1] * frac
    }

    /// Adds an accepted value; returns true when this makes the profile active.
    fn accumulate(&mut self, ts: i64, v: f64, cfg: &BaselineConfig, scratch: &mut Vec<f64>) -> bool {
        if self.bins == 0 {
            return false;
        }
        let key = ts.div_euclid(self.bin_ms());
        let mut activated = false;
        if key != self.acc_key {
            activated = self.fold(cfg, scratch);
            self.acc_key = key;
            self.acc_sum = 0.0;
            self.acc_n = 0;
        }
        self.acc_sum += v;
        self.acc_n += 1;
        activated
    }

    /// Closes the bin being accumulated: its mean joins that bin's history.
    fn fold(&mut self, cfg: &BaselineConfig, scratch: &mut Vec<f64>) -> bool {
        // A bin seen for a handful of points (a gap, a start mid-bin) says little.
        if self.acc_key < 0 || self.acc_n < 3 {
            return false;
        }
        let i = self.acc_key.rem_euclid(self.bins.max(1) as i64) as usize;
        // Persisted state is trusted only as far as its own lengths agree.
        let Some(range) = i.checked_mul(self.keep).and_then(|lo| Some(lo..lo.checked_add(self.keep)?)) else {
            return false;
        };
        let (Some(slots), Some(filled), Some(head), Some(value)) =
            (self.history.get_mut(range), self.filled.get_mut(i), self.head.get_mut(i), self.values.get_mut(i))
        else {
            return false;
        };
        if slots.is_empty() {
            return false;
        }
        let at = usize::from(*head) % slots.len();
        slots[at] = (self.acc_sum / f64::from(self.acc_n)) as f32;
        *head = ((at + 1) % slots.len()) as u8;
        *filled = (usize::from(*filled) + 1).min(slots.len()) as u8;
        scratch.clear();
        scratch.extend(slots[..usize::from(*filled)].iter().map(|v| f64::from(*v)));
        *value = median(scratch).unwrap_or(0.0);
        if !self.active && self.filled.iter().all(|d| u16::from(*d) >= cfg.profile_min_days) {
            self.active = true;
            return true;
        }
        false
    }
}

impl SeriesBaseline {
    /// An empty baseline.
    pub fn new(cfg: &BaselineConfig) -> Self {
        Self {
            first_ms: 0,
            last_ms: 0,
            points: 0,
            level: 0.0,
            mad_scale: 0.0,
            residuals: VecDeque::new(),
            since_mad: 0,
            profile: Profile::new(cfg),
            run: None,
        }
    }

    /// Points accepted so far.
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Whether the scale is trusted (z-scores are available).
    pub fn ready(&self) -> bool {
        self.residuals.len() >= MIN_RESIDUALS
    }

    /// Whether the time-of-day profile is in use.
    pub fn profile_active(&self) -> bool {
        self.profile.active
    }

    /// What the baseline expects at `ts`.
    pub fn expected(&self, ts: i64) -> f64 {
        if self.profile.active { self.profile.at(ts) + self.level } else { self.level }
    }

    /// The scale at `ts`: the MAD estimate, floored.
    pub fn scale(&self, ts: i64, floor: Floor) -> f64 {
        self.mad_scale.max(floor.abs).max(floor.rel * self.expected(ts).abs())
    }

    /// The id of the alert currently raised for this series, if any.
    pub fn alert(&self) -> Option<Uuid> {
        self.run.as_ref().and_then(|r| r.alert)
    }

    /// Records that `signal` `Spike` was raised as alert `id`.
    pub fn mark_alerted(&mut self, id: Uuid) {
        if let Some(run) = &mut self.run {
            run.alert = Some(id);
        }
    }

    /// Feeds one point. `scratch` is reusable working memory. Out-of-order or repeated
    /// timestamps are ignored (`z: None`).
    pub fn observe(
        &mut self,
        ts: i64,
        x: f64,
        floor: Floor,
        cfg: &BaselineConfig,
        scratch: &mut Vec<f64>,
    ) -> Observation {
        let quiet = Observation { z: None, signal: Signal::None };
        if !x.is_finite() {
            return quiet;
        }
        if self.points == 0 {
            self.first_ms = ts;
            self.last_ms = ts;
            self.points = 1;
            self.level = x;
            self.profile.accumulate(ts, x, cfg, scratch);
            return quiet;
        }
        if ts <= self.last_ms {
            return quiet;
        }
        let dt_secs = (ts - self.last_ms) as f64 / 1000.0;
        let mut signal = Signal::None;

        // A long gap ends whatever run was in progress.
        if ts - self.last_ms > secs_ms(cfg.max_gap_secs)
            && let Some(run) = self.run.take()
            && let Some(alert) = run.alert
        {
            signal = Signal::Ended { alert, reason: EndReason::Cleared };
        }

        let expected = self.expected(ts);
        let ready = self.ready();
        let scale = self.scale(ts, floor);
        let r = x - expected;
        let z = if ready { Some(r / scale) } else { None };
        // Hysteresis: while an alert is up, a point still counts as deviating above k_exit.
        let alerting = self.run.as_ref().is_some_and(|r| r.alert.is_some());
        let k = if alerting { cfg.k * cfg.exit_ratio } else { cfg.k };
        let anomalous = z.is_some_and(|z| z.abs() > k);
        let seasonal = if self.profile.active { self.profile.at(ts) } else { 0.0 };

        if anomalous {
            let z = z.unwrap_or_default();
            let up = z > 0.0;
            let continues = self.run.as_ref().is_some_and(|run| run.up == up);
            if !continues {
                if let Some(alert) = self.run.take().and_then(|r| r.alert) {
                    signal = Signal::Ended { alert, reason: EndReason::Cleared };
                }
                self.run = Some(Run {
                    up,
                    start_ms: ts,
                    last_ms: ts,
                    peak_z: z,
                    recent: VecDeque::with_capacity(RECENT),
                    alert: None,
                });
            }
            if let Some(run) = &mut self.run {
                run.last_ms = ts;
                if z.abs() > run.peak_z.abs() {
                    run.peak_z = z;
                }
                if run.recent.len() == RECENT {
                    run.recent.pop_front();
                }
                run.recent.push_back((x - seasonal) as f32);
                let lasted = ts - run.start_ms;
                let may_alert = up || cfg.direction == Direction::Both;
                if run.alert.is_none()
                    && may_alert
                    && lasted >= secs_ms(cfg.sustain_secs)
                    && ts - self.first_ms >= secs_ms(cfg.learning_secs)
                    && matches!(signal, Signal::None)
                {
                    signal = Signal::Spike(SpikeFacts {
                        value: x,
                        expected,
                        scale,
                        z,
                        peak_z: run.peak_z,
                        since_ms: run.start_ms,
                        sustained_secs: lasted as f64 / 1000.0,
                        profile: self.profile.active,
                    });
                }
                if lasted >= secs_ms(cfg.adapt_after_secs) {
                    let alert = run.alert;
                    self.adapt(scratch);
                    if let Some(alert) = alert {
                        signal = Signal::Ended { alert, reason: EndReason::Adapted };
                    }
                }
            }
        } else {
            if let Some(run) = &self.run {
                match run.alert {
                    Some(alert) if ts - run.last_ms >= secs_ms(cfg.clear_secs) => {
                        self.run = None;
                        signal = Signal::Ended { alert, reason: EndReason::Cleared };
                    }
                    Some(_) => {}
                    None => self.run = None,
                }
            }
            let r_w = if ready { r.clamp(-cfg.winsor * scale, cfg.winsor * scale) } else { r };
            let half_life = if self.profile.active { cfg.profile_half_life_secs } else { cfg.half_life_secs };
            let alpha = 1.0 - (-dt_secs * std::f64::consts::LN_2 / half_life.max(1) as f64).exp();
            self.level += alpha * r_w;
            if self.residuals.len() >= cfg.mad_window {
                self.residuals.pop_front();
            }
            self.residuals.push_back(r as f32);
            self.since_mad += 1;
            if self.since_mad >= cfg.mad_every || self.residuals.len() <= MIN_RESIDUALS {
                self.recompute_mad(scratch);
            }
            if self.profile.accumulate(ts, expected + r_w, cfg, scratch) {
                // The profile takes over the seasonal part: the level becomes an offset.
                self.level -= self.profile.at(ts);
            }
        }
        self.last_ms = ts;
        self.points += 1;
        Observation { z, signal }
    }

    /// Re-seeds level and scale from the run's recent values (a level shift).
    fn adapt(&mut self, scratch: &mut Vec<f64>) {
        let Some(run) = self.run.take() else { return };
        scratch.clear();
        scratch.extend(run.recent.iter().map(|v| f64::from(*v)));
        let Some(med) = median(scratch) else { return };
        self.level = med;
        self.residuals.clear();
        self.residuals.extend(run.recent.iter().map(|v| (f64::from(*v) - med) as f32));
        self.recompute_mad(scratch);
    }

    fn recompute_mad(&mut self, scratch: &mut Vec<f64>) {
        self.since_mad = 0;
        scratch.clear();
        scratch.extend(self.residuals.iter().map(|v| f64::from(*v)));
        let Some(med) = median(scratch) else { return };
        for v in scratch.iter_mut() {
            *v = (*v - med).abs();
        }
        self.mad_scale = median(scratch).unwrap_or(0.0) * MAD_TO_SIGMA;
    }
}

/// Median of `v` (reordered in place); `None` when empty.
pub(crate) fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    let mid = n / 2;
    let (lo, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *m;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = lo.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::SplitMix64;

    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS;
    const STEP: i64 = 10_000;
    const FLOOR: Floor = Floor { abs: 1e-6, rel: 0.005 };

    struct Feed {
        b: SeriesBaseline,
        cfg: BaselineConfig,
        rng: SplitMix64,
        scratch: Vec<f64>,
        t: i64,
        spikes: Vec<SpikeFacts>,
        ends: Vec<EndReason>,
    }

    impl Feed {
        fn new(cfg: BaselineConfig) -> Self {
            Self {
                b: SeriesBaseline::new(&cfg),
                cfg,
                rng: SplitMix64::new(42),
                scratch: Vec::new(),
                t: T0,
                spikes: vec![],
                ends: vec![],
            }
        }
        /// Feeds `n` points of `f(t) + N(0,1)`.
        fn run(&mut self, n: usize, f: impl Fn(i64) -> f64) {
            for _ in 0..n {
                let x = f(self.t) + self.rng.normal();
                self.point(x);
            }
        }
        fn point(&mut self, x: f64) {
            let o = self.b.observe(self.t, x, FLOOR, &self.cfg, &mut self.scratch);
            match o.signal {
                Signal::Spike(f) => {
                    self.b.mark_alerted(Uuid::from_u128(self.spikes.len() as u128 + 1));
                    self.spikes.push(f);
                }
                Signal::Ended { reason, .. } => self.ends.push(reason),
                Signal::None => {}
            }
            self.t += STEP;
        }
    }

    fn cfg() -> BaselineConfig {
        BaselineConfig { profile_bins: 0, ..BaselineConfig::default() }
    }

    const HOUR: usize = 360;

    #[test]
    fn median_handles_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn quiet_noise_raises_nothing() {
        let mut f = Feed::new(cfg());
        f.run(24 * HOUR, |_| 100.0);
        assert!(f.spikes.is_empty(), "{:?}", f.spikes);
        let s = f.b.scale(f.t, FLOOR);
        assert!((0.8..1.25).contains(&s), "scale {s}");
    }

    #[test]
    fn sustained_spike_alerts_once_and_clears() {
        let mut f = Feed::new(cfg());
        f.run(2 * HOUR, |_| 100.0);
        // 10σ for 5 minutes.
        f.run(30, |_| 110.0);
        assert_eq!(f.spikes.len(), 1);
        let s = &f.spikes[0];
        assert!(s.z > 4.0 && (s.expected - 100.0).abs() < 0.5, "{s:?}");
        assert_eq!(s.sustained_secs, 30.0);
        f.run(HOUR, |_| 100.0);
        assert_eq!(f.ends, vec![EndReason::Cleared]);
        assert_eq!(f.spikes.len(), 1);
        // The spike did not move the baseline.
        assert!((f.b.expected(f.t) - 100.0).abs() < 0.5);
    }

    #[test]
    fn sustain_edge_three_points_do_not_alert_four_do() {
        // At 10 s spacing, 3 points span 20 s (< 30 s), 4 points span 30 s (= sustain).
        let mut f = Feed::new(cfg());
        f.run(2 * HOUR, |_| 100.0);
        for _ in 0..3 {
            f.point(120.0);
        }
        f.run(HOUR, |_| 100.0);
        assert!(f.spikes.is_empty());
        for _ in 0..4 {
            f.point(120.0);
        }
        assert_eq!(f.spikes.len(), 1);
    }

    #[test]
    fn under_threshold_deviation_does_not_alert() {
        let mut f = Feed::new(cfg());
        f.run(2 * HOUR, |_| 100.0);
        // +2σ for an hour: within k = 4 (with noise, z stays mostly under 4).
        f.run(HOUR, |_| 102.0);
        assert!(f.spikes.is_empty(), "{:?}", f.spikes);
    }

    #[test]
    fn learning_period_suppresses_alerts() {
        let mut f = Feed::new(cfg());
        f.run(HOUR / 2, |_| 100.0);
        f.run(30, |_| 130.0);
        assert!(f.spikes.is_empty());
        // Edge: with learning of 1 h, a run that completes just at 1 h alerts.
        let mut g = Feed::new(cfg());
        g.run(HOUR - 3, |_| 100.0);
        for _ in 0..4 {
            g.point(130.0);
        }
        assert_eq!(g.spikes.len(), 1, "a run completing at exactly 1 h of history alerts");
    }

    #[test]
    fn level_shift_alerts_once_then_becomes_normal() {
        let mut f = Feed::new(cfg());
        f.run(2 * HOUR, |_| 100.0);
        f.run(12 * HOUR, |_| 120.0);
        assert_eq!(f.spikes.len(), 1);
        assert_eq!(f.ends, vec![EndReason::Adapted]);
        assert!((f.b.expected(f.t) - 120.0).abs() < 0.5, "{}", f.b.expected(f.t));
        // A spike on top of the new level still alerts.
        f.run(30, |_| 130.0);
        assert_eq!(f.spikes.len(), 2);
    }

    #[test]
    fn downward_shift_adapts_silently_when_direction_is_up() {
        let mut f = Feed::new(cfg());
        f.run(2 * HOUR, |_| 100.0);
        f.run(2 * HOUR, |_| 80.0);
        assert!(f.spikes.is_empty());
        assert!((f.b.expected(f.t) - 80.0).abs() < 0.5);
        let mut g = Feed::new(BaselineConfig { direction: Direction::Both, ..cfg() });
        g.run(2 * HOUR, |_| 100.0);
        g.run(10, |_| 80.0);
        assert_eq!(g.spikes.len(), 1);
        assert!(g.spikes[0].z < -4.0);
    }

    #[test]
    fn single_outliers_neither_alert_nor_move_the_level() {
        let mut f = Feed::new(cfg());
        f.run(2 * HOUR, |_| 100.0);
        for _ in 0..50 {
            f.point(1e6);
            f.run(5, |_| 100.0);
        }
        assert!(f.spikes.is_empty());
        assert!((f.b.expected(f.t) - 100.0).abs() < 0.5);
    }

    #[test]
    fn daily_profile_takes_over_after_min_days() {
        // A rhythm of ±10σ: the level alone lags it by well under k on its steepest part.
        let daily = |t: i64| 100.0 + 10.0 * ((t % DAY_MS) as f64 / DAY_MS as f64 * std::f64::consts::TAU).sin();
        let mut f = Feed::new(BaselineConfig::default());
        f.run(3 * 24 * HOUR, daily);
        assert!(!f.b.profile_active());
        f.run(HOUR, daily);
        assert!(f.b.profile_active());
        f.run(24 * HOUR, daily);
        // The profile predicts the rhythm a few hours ahead without seeing it.
        let ahead = f.t + 6 * 3_600_000;
        assert!((f.b.expected(ahead) - daily(ahead)).abs() < 1.0, "{} vs {}", f.b.expected(ahead), daily(ahead));
        assert!(f.spikes.is_empty());
    }

    #[test]
    fn out_of_order_points_are_ignored() {
        let mut f = Feed::new(cfg());
        f.run(100, |_| 1.0);
        let before = f.b.clone();
        let o = f.b.observe(f.t - 5 * STEP, 1e9, FLOOR, &f.cfg, &mut f.scratch);
        assert_eq!(o.z, None);
        assert_eq!(f.b, before);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut f = Feed::new(BaselineConfig::default());
        f.run(500, |_| 5.0);
        let json = serde_json::to_string(&f.b).unwrap();
        let back: SeriesBaseline = serde_json::from_str(&json).unwrap();
        assert_eq!(back.points(), f.b.points());
        assert!((back.expected(f.t) - f.b.expected(f.t)).abs() < 1e-9);
    }
}
