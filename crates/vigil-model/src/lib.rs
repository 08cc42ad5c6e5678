//! Domain types shared by every vigil component: agent identities, alert categories and
//! severities, alerts, host metric samples, capture network statistics and the items an agent ships to the server.
//!
//! This crate owns the *meaning* of the data. It does no I/O, holds no clocks and knows
//! nothing about transport or storage. Every type serializes with serde in two shapes:
//! human-readable formats (JSON, TOML) get the shapes documented in `docs/`, and compact
//! binary formats (postcard, inside the sealed wire envelope) get an equivalent encoding.

mod agent;
mod alert;
mod category;
mod item;
mod netstats;
mod sample;

pub use agent::{AgentId, AgentIdError, AgentInfo, AgentStats};
pub use alert::{Alert, Severity, SeverityParseError};
pub use category::{Category, CategoryParseError};
pub use item::{AlertResolved, Item};
pub use netstats::{CaptureCounters, NetStats, ProtocolCount, Talker};
pub use sample::{DiskUsage, HostSample, NetInterfaceRate};
