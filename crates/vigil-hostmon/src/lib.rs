//! Host metrics for vigil: collecting one [`HostSample`](vigil_model::HostSample) at a time
//! with `sysinfo`, and turning a stream of samples into sustained-threshold alerts
//! (`host_cpu_high`, `host_memory_high`, `host_disk_high`) and their resolutions.
//!
//! Two halves with different rules:
//!
//! - [`Collector`] is the I/O edge. It reads `/proc` (or the platform's equivalent) through
//!   `sysinfo` and measures real elapsed time with [`std::time::Instant`] to turn network
//!   counters into rates. Its calls block briefly (a few milliseconds: one pass over
//!   `/proc/<pid>/stat`, `/proc/mounts`, `/sys/class/net`), so the agent runs it on its
//!   collection task through `spawn_blocking` or on a dedicated thread, never directly on
//!   an async worker.
//! - [`ThresholdEvaluator`] is pure and deterministic: no clock, no I/O. Time comes only
//!   from sample timestamps, so the same samples always give the same events (apart from
//!   the random bits of alert ids). It runs wherever the samples are: on the agent right
//!   after collection, or in tests and replays.
//!
//! This crate must not send, store or log anything, and must not know about transport:
//! it returns values, and the agent decides what to do with them.

mod collector;
mod threshold;

pub use collector::{Collector, MAX_DISKS_PER_SAMPLE, MAX_INTERFACES_PER_SAMPLE, host_name, os_version};
pub use threshold::{MAX_TRACKED_MOUNTS, ThresholdEvaluator, ThresholdEvent, Thresholds};
