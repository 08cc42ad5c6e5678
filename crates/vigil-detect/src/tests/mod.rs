//! Detector tests: for every category a positive case just over the threshold, a negative
//! just under, and benign look-alikes, with the exact alerts asserted. Packets are built
//! with [`crate::testutil`].

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::field_reassign_with_default, clippy::type_complexity)]

mod engine;
mod flows;
mod local;
mod props;
mod rates;

use std::net::IpAddr;

use vigil_model::{Alert, Category};

use crate::testutil::frame;
use crate::{DetectConfig, Engine};

/// A timed frame list.
pub(crate) type Trace = Vec<(f64, Vec<u8>)>;

pub(crate) fn run_with(cfg: DetectConfig, trace: &Trace) -> Vec<Alert> {
    let mut e = Engine::new(cfg).unwrap();
    let mut out = Vec::new();
    for (t, f) in trace {
        e.process(&frame(*t, f), &mut out);
    }
    out
}

pub(crate) fn run(trace: &Trace) -> Vec<Alert> {
    run_with(DetectConfig::default(), trace)
}

pub(crate) fn of(alerts: &[Alert], cat: Category) -> Vec<&Alert> {
    alerts.iter().filter(|a| a.category == cat).collect()
}

pub(crate) fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// Asserts exactly one alert of `cat` with these addresses; returns it.
#[track_caller]
pub(crate) fn one(alerts: &[Alert], cat: Category, src: Option<IpAddr>, dst: Option<IpAddr>) -> &Alert {
    let hits = of(alerts, cat);
    assert_eq!(hits.len(), 1, "expected one {cat} alert, got {:#?}", hits);
    let a = hits[0];
    assert_eq!((a.src_ip, a.dst_ip), (src, dst), "{a:#?}");
    assert_eq!(a.mitre.as_deref(), cat.mitre());
    a
}

#[track_caller]
pub(crate) fn none(alerts: &[Alert], cat: Category) {
    let hits = of(alerts, cat);
    assert!(hits.is_empty(), "expected no {cat} alert, got {hits:#?}");
}
