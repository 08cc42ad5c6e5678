//! Per-agent multivariate anomaly detection → `metric_anomaly`.
//!
//! The feature vector of an agent at one instant is the robust z-score of each configured
//! metric against its own baseline (clipped to ±`clip`; 0 for a metric the batch does not
//! carry). Working on residuals rather than raw values removes the daily rhythm and each
//! metric's units, so the model learns how the metrics deviate *together*: a host whose CPU,
//! disk I/O and outbound bytes all run 3σ high is unusual even when none of them alone would
//! cross a univariate threshold.
//!
//! Vectors join a rolling training window (one per `train_every_secs`, only while nothing
//! is anomalous, so an attack does not teach the model). The model is refitted every
//! `retrain_secs` on that window with a seed derived from the pipeline seed, the agent id
//! and the retraining generation, and its threshold is calibrated on its own training
//! scores. A `metric_anomaly` is raised when the score stays above threshold for
//! `sustain_secs`, and ends after `clear_secs` below it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{AnomalyConfig, FeatureMode};
use crate::iforest::{AnomalyModel, IsolationForest};
use crate::util::{fnv1a, mix64, secs_ms};

/// One feature's part in an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureContribution {
    /// Metric name.
    pub feature: String,
    /// Its robust z-score against its own baseline (mean over the smoothing window).
    pub z: f64,
    /// Its share of the model's isolation of this point (0–1).
    pub share: f64,
}

/// What the detector of one agent saw at one instant.
#[derive(Debug, Clone, PartialEq)]
pub enum AnomalySignal {
    /// Nothing to report.
    None,
    /// Sustained anomaly: raise `metric_anomaly`, then call
    /// [`AgentDetector::mark_alerted`] with its id.
    Anomaly(AnomalyFacts),
    /// The anomaly raised as `alert` ended.
    Ended {
        /// The alert id.
        alert: Uuid,
    },
}

/// The facts behind a `metric_anomaly`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyFacts {
    /// Model score of this point.
    pub score: f64,
    /// Largest score of the run.
    pub peak_score: f64,
    /// Threshold in force.
    pub threshold: f64,
    /// When the run above threshold began (unix ms).
    pub since_ms: i64,
    /// How long it has lasted, in seconds.
    pub sustained_secs: f64,
    /// The features that contributed most, largest first.
    pub top_features: Vec<FeatureContribution>,
    /// Which model.
    pub model: &'static str,
    /// Retraining generation of the model.
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Run {
    start_ms: i64,
    last_ms: i64,
    peak: f64,
    alert: Option<Uuid>,
}

/// The anomaly detector of one agent. Persist it with serde: the fitted model itself is not
/// serialized; it is refitted deterministically from the stored training set and
/// generation on first use after a restore.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = ""))]
pub struct AgentDetector<M = IsolationForest> {
    recent: VecDeque<Vec<f32>>,
    window: VecDeque<Vec<f32>>,
    last_push_ms: i64,
    last_ms: i64,
    training: Vec<Vec<f32>>,
    generation: u64,
    last_train_ms: i64,
    threshold: f64,
    last_score: Option<f64>,
    run: Option<Run>,
    #[serde(skip)]
    model: Option<M>,
}

impl<M> Default for AgentDetector<M> {
    fn default() -> Self {
        Self {
            recent: VecDeque::new(),
            window: VecDeque::new(),
            last_push_ms: i64::MIN,
            last_ms: i64::MIN,
            training: Vec::new(),
            generation: 0,
            last_train_ms: i64::MIN,
            threshold: 1.0,
            last_score: None,
            run: None,
            model: None,
        }
    }
}

/// The seed of `agent`'s model at `generation`.
pub fn model_seed(seed: u64, agent: &str, generation: u64) -> u64 {
    mix64(seed ^ fnv1a(agent.as_bytes()) ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl<M: AnomalyModel + Clone> AgentDetector<M> {
    /// Vectors in the training window.
    pub fn window_len(&self) -> usize {
        self.window.len()
    }

    /// How many times the model has been fitted.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The calibrated threshold of the current model.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Score of the latest vector (for dashboards), once a model exists.
    pub fn last_score(&self) -> Option<f64> {
        self.last_score
    }

    /// The alert currently raised, if any.
    pub fn alert(&self) -> Option<Uuid> {
        self.run.as_ref().and_then(|r| r.alert)
    }

    /// Records that the signal `Anomaly` was raised as alert `id`.
    pub fn mark_alerted(&mut self, id: Uuid) {
        if let Some(r) = &mut self.run {
            r.alert = Some(id);
        }
    }

    fn fit(&mut self, template: &M, cfg: &AnomalyConfig, seed: u64) {
        let mut m = template.clone();
        if m.fit(&self.training, seed).is_err() {
            self.model = None;
            return;
        }
        let mut scores: Vec<f64> = self.training.iter().filter_map(|v| m.score(v)).collect();
        scores.sort_by(f64::total_cmp);
        let q = if scores.is_empty() {
            0.0
        } else {
            let i = ((scores.len() - 1) as f64 * cfg.calibration_quantile).round() as usize;
            scores[i.min(scores.len() - 1)]
        };
        self.threshold = (q + cfg.calibration_margin).max(cfg.score_threshold).min(0.99);
        self.model = Some(m);
    }

    /// Scores `v` (the agent's per-metric z-scores at `ts`, in the order of
    /// `cfg.features`), retraining first when due. `agent` and `seed` derive the model's
    /// seed; `template` is an unfitted model.
    pub fn observe(
        &mut self,
        ts: i64,
        v: Vec<f32>,
        agent: &str,
        seed: u64,
        template: &M,
        cfg: &AnomalyConfig,
    ) -> AnomalySignal {
        let names = &cfg.features;
        if ts <= self.last_ms {
            return AnomalySignal::None;
        }
        if self.recent.front().is_some_and(|w| w.len() != v.len()) {
            // The feature list changed: what was learned no longer applies.
            *self = Self::default();
        }
        if self.recent.len() >= cfg.smooth_points {
            self.recent.pop_front();
        }
        self.recent.push_back(v);
        let n = self.recent.len() as f32;
        let mut v = vec![0f32; self.recent.front().map_or(0, Vec::len)];
        for r in &self.recent {
            for (acc, x) in v.iter_mut().zip(r) {
                *acc += x / n;
            }
        }
        let (x, ranks) = shape(&v, cfg);
        if self.window.front().is_some_and(|w| w.len() != x.len()) {
            // The model's input changed shape (feature mode): start learning again.
            self.window.clear();
            self.training.clear();
            self.model = None;
            self.run = None;
        }
        let mut signal = AnomalySignal::None;
        // A long silence ends a run (and its alert).
        if let Some(run) = &self.run
            && ts - run.last_ms > secs_ms(cfg.clear_secs).max(secs_ms(cfg.sustain_secs))
        {
            if let Some(alert) = run.alert {
                signal = AnomalySignal::Ended { alert };
            }
            self.run = None;
        }
        self.last_ms = ts;
        if self.model.is_none() && !self.training.is_empty() {
            // Restored from storage: refit exactly what was fitted before.
            self.fit(template, cfg, model_seed(seed, agent, self.generation));
        }
        let due = match self.model {
            None => true,
            Some(_) => ts.saturating_sub(self.last_train_ms) >= secs_ms(cfg.retrain_secs),
        };
        if due && self.window.len() >= cfg.min_train && self.run.is_none() {
            self.training = self.window.iter().cloned().collect();
            self.generation += 1;
            self.last_train_ms = ts;
            self.fit(template, cfg, model_seed(seed, agent, self.generation));
        }
        let score = self.model.as_ref().and_then(|m| m.score(&x));
        self.last_score = score;
        let alerting = self.run.as_ref().is_some_and(|r| r.alert.is_some());
        let bar = if alerting { self.threshold - cfg.exit_margin } else { self.threshold };
        let above = score.is_some_and(|s| s >= bar);
        if let (true, Some(s)) = (above, score) {
            let run = self.run.get_or_insert(Run { start_ms: ts, last_ms: ts, peak: s, alert: None });
            run.last_ms = ts;
            run.peak = run.peak.max(s);
            let lasted = ts - run.start_ms;
            if run.alert.is_none() && lasted >= secs_ms(cfg.sustain_secs) && matches!(signal, AnomalySignal::None) {
                let raw = self.model.as_ref().map(|m| m.explain(&x)).unwrap_or_default();
                // Credit of a ranked feature goes to the metric holding that rank.
                let mut shares = vec![0.0; v.len()];
                for (j, c) in raw.iter().enumerate() {
                    if let Some(metric) = ranks.get(j).copied().flatten()
                        && let Some(s) = shares.get_mut(metric)
                    {
                        *s += c;
                    }
                }
                let mut top: Vec<FeatureContribution> = names
                    .iter()
                    .zip(v.iter())
                    .enumerate()
                    .map(|(i, (n, z))| FeatureContribution {
                        feature: n.clone(),
                        z: f64::from(*z),
                        share: shares.get(i).copied().unwrap_or(0.0),
                    })
                    .collect();
                top.sort_by(|a, b| b.share.total_cmp(&a.share));
                top.truncate(cfg.top_features);
                signal = AnomalySignal::Anomaly(AnomalyFacts {
                    score: s,
                    peak_score: run.peak,
                    threshold: self.threshold,
                    since_ms: run.start_ms,
                    sustained_secs: lasted as f64 / 1000.0,
                    top_features: top,
                    model: "isolation_forest",
                    generation: self.generation,
                });
            }
        } else if let Some(run) = &self.run {
            match run.alert {
                Some(alert) if ts - run.last_ms >= secs_ms(cfg.clear_secs) => {
                    self.run = None;
                    signal = AnomalySignal::Ended { alert };
                }
                Some(_) => {}
                None => self.run = None,
            }
        }
        if !above && self.run.is_none() && ts.saturating_sub(self.last_push_ms) >= secs_ms(cfg.train_every_secs) {
            if self.window.len() >= cfg.train_window {
                self.window.pop_front();
            }
            self.window.push_back(x);
            self.last_push_ms = ts;
        }
        signal
    }
}

/// The model's input for the per-metric vector `v`, and for each input dimension the metric
/// it stands for.
fn shape(v: &[f32], cfg: &AnomalyConfig) -> (Vec<f32>, Vec<Option<usize>>) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|a, b| v[*b].abs().total_cmp(&v[*a].abs()));
    order.truncate(cfg.ranked_features);
    let ranked = order.iter().map(|i| v[*i].abs());
    match cfg.feature_mode {
        FeatureMode::PerMetric => (v.to_vec(), (0..v.len()).map(Some).collect()),
        FeatureMode::Ranked => (ranked.collect(), order.iter().copied().map(Some).collect()),
        FeatureMode::Both => {
            let x = v.iter().copied().chain(ranked).collect();
            let who = (0..v.len()).map(Some).chain(order.iter().copied().map(Some)).collect();
            (x, who)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::SplitMix64;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    fn cfg() -> AnomalyConfig {
        AnomalyConfig {
            features: names(4),
            trees: 50,
            min_train: 256,
            train_every_secs: 30,
            train_window: 720,
            ranked_features: 3,
            ..AnomalyConfig::default()
        }
    }

    struct Feed {
        d: AgentDetector,
        rng: SplitMix64,
        t: i64,
        cfg: AnomalyConfig,
        template: IsolationForest,
        raised: Vec<AnomalyFacts>,
        ended: usize,
    }

    impl Feed {
        fn new() -> Self {
            let cfg = cfg();
            Self {
                d: AgentDetector::default(),
                rng: SplitMix64::new(5),
                t: 1_700_000_000_000,
                template: IsolationForest::new(cfg.trees, cfg.sample_size),
                cfg,
                raised: vec![],
                ended: 0,
            }
        }
        fn step(&mut self, shift: [f64; 4]) {
            let v: Vec<f32> = shift.iter().map(|s| (self.rng.normal() + s) as f32).collect();
            match self.d.observe(self.t, v, "agent-1", 1, &self.template, &self.cfg) {
                AnomalySignal::Anomaly(f) => {
                    self.d.mark_alerted(Uuid::from_u128(1));
                    self.raised.push(f);
                }
                AnomalySignal::Ended { .. } => self.ended += 1,
                AnomalySignal::None => {}
            }
            self.t += 10_000;
        }
    }

    #[test]
    fn trains_after_min_window_then_flags_joint_deviation() {
        let mut f = Feed::new();
        // 256 vectors at one per 30 s need 256 × 3 points at 10 s.
        for _ in 0..(256 * 3 - 3) {
            f.step([0.0; 4]);
        }
        assert_eq!(f.d.generation(), 0);
        for _ in 0..3 {
            f.step([0.0; 4]);
        }
        f.step([0.0; 4]);
        assert_eq!(f.d.generation(), 1);
        for _ in 0..2000 {
            f.step([0.0; 4]);
        }
        assert!(f.raised.is_empty(), "{:?}", f.raised);
        // Joint 4σ on three features for 5 minutes.
        for _ in 0..30 {
            f.step([4.0, 4.0, 4.0, 0.0]);
        }
        assert_eq!(f.raised.len(), 1);
        let top: Vec<&str> = f.raised[0].top_features.iter().map(|c| c.feature.as_str()).collect();
        assert!(!top.contains(&"f3"), "{top:?}");
        for _ in 0..20 {
            f.step([0.0; 4]);
        }
        assert_eq!(f.ended, 1);
    }

    #[test]
    fn shape_ranks_deviations_and_maps_them_back() {
        let mut c = cfg();
        c.ranked_features = 2;
        let v = [0.5, -3.0, 2.0, 0.1];
        let (x, who) = shape(&v, &c);
        assert_eq!((x, who), (vec![3.0, 2.0], vec![Some(1), Some(2)]));
        c.feature_mode = FeatureMode::PerMetric;
        assert_eq!(shape(&v, &c).0, v.to_vec());
        c.feature_mode = FeatureMode::Both;
        let (x, who) = shape(&v, &c);
        assert_eq!(x.len(), 6);
        assert_eq!(who[4..], [Some(1), Some(2)]);
    }

    #[test]
    fn restore_refits_the_same_model() {
        let mut f = Feed::new();
        for _ in 0..1000 {
            f.step([0.0; 4]);
        }
        let json = serde_json::to_string(&f.d).unwrap();
        let mut back: AgentDetector = serde_json::from_str(&json).unwrap();
        assert!(back.model.is_none());
        let v = vec![3.0f32, 0.0, 0.0, 3.0];
        let t = f.t;
        let a = f.d.observe(t, v.clone(), "agent-1", 1, &f.template, &f.cfg);
        let b = back.observe(t, v.clone(), "agent-1", 1, &f.template, &f.cfg);
        assert_eq!(a, b);
        assert_eq!(back.model.as_ref().unwrap().score(&v), f.d.model.as_ref().unwrap().score(&v));
    }
}
