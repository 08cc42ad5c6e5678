//! The detectors, one module per family. Each keeps its state in bounded [`crate::table`]s
//! and reports through the group's [`crate::emit::Emitter`].

pub(crate) mod anomaly;
pub(crate) mod arp;
pub(crate) mod brute;
pub(crate) mod dns;
pub(crate) mod exfil;
pub(crate) mod flood;
pub(crate) mod flow;
pub(crate) mod intel;
pub(crate) mod ports;
pub(crate) mod scan;
