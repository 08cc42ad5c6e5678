//! The server-side alert pipeline of vigil: it turns the stream of alerts, metrics and
//! heartbeats from every agent into few, trustworthy alerts and incidents.
//!
//! **Owns**: dedup of identical alerts into records, grouping into incidents, escalation,
//! the open → acknowledged → resolved lifecycle with auto-resolve and silences
//! ([`lifecycle`]); `dos_suspected` correlation across agents ([`dos`]); attacks on the
//! monitor ([`monitor`]); robust per-metric baselines raising `traffic_spike`
//! ([`baseline`]); a seeded Isolation Forest behind the [`AnomalyModel`] trait raising
//! `metric_anomaly` ([`anomaly`], [`iforest`]); agent churn (`agent_offline`, spool
//! backfill) ([`churn`]). Everything it remembers is one serializable [`PipelineState`].
//!
//! **Must not** do I/O, read a clock, or hold globals: every call takes the current time
//! (`now`) and appends [`PipelineEvent`]s to a buffer the caller owns, so the same inputs
//! always give the same outputs (ids included: they derive from the seed). Storage, the
//! API, live pushes and notifiers belong to the server. Every map keyed by data an attacker
//! can choose is a [`BoundedMap`] with an eviction rule and a counter ([`Counters`]).
//!
//! **Threads**: none of its own. The server owns one [`Pipeline`] and calls it from one
//! task (it is `Send`, not shared); a call costs microseconds (see BENCHMARKS.md), except
//! the periodic model retraining inside `ingest_metrics` (milliseconds per agent per hour).
//!
//! A typical server loop:
//! ```
//! use vigil_pipeline::{Pipeline, PipelineConfig, PipelineEvent};
//! # use chrono::Utc;
//! let mut p = Pipeline::new(PipelineConfig::default()).unwrap();
//! let mut events = Vec::new();
//! let now = Utc::now(); // the server's clock; tests pass their own
//! # let alert = vigil_model::Alert::new(vigil_model::Category::PortScan, now, "scan");
//! let ingested = p.ingest_alert(&alert, now, &mut events); // and ingest_metrics, heartbeat…
//! p.tick(now, &mut events); // once a second
//! for e in events.drain(..) {
//!     match e {
//!         PipelineEvent::Notify(n) => { /* send */ }
//!         other => { /* store, push to the dashboard */ }
//!     }
//! }
//! let saved = serde_json::to_string(p.state()).unwrap(); // persist now and then
//! ```

pub mod anomaly;
pub mod baseline;
pub mod churn;
pub mod config;
pub mod dos;
mod error;
pub mod eval;
mod event;
pub mod iforest;
pub mod lifecycle;
pub mod metrics;
pub mod monitor;
mod pipeline;
mod util;

#[cfg(test)]
mod tests;

pub use config::{
    AnomalyConfig, BaselineConfig, ChurnConfig, ConfigError, Direction, DosConfig, FeatureMode, LifecycleConfig,
    Limits, MonitorConfig, PipelineConfig,
};
pub use error::PipelineError;
pub use event::{Notification, NotifyReason, PipelineEvent, ResolveReason, Subject};
pub use iforest::{AnomalyModel, IsolationForest, ModelError};
pub use lifecycle::{
    AlertRecord, DedupKey, Incident, IncidentKind, Ingested, IpNet, Silence, SilenceMatcher, SilenceSpec, State,
};
pub use metrics::MetricBatch;
pub use pipeline::{Counters, InputCounters, Pipeline, PipelineState, SeriesKey};
pub use util::{BoundedMap, IdGen, SplitMix64};
