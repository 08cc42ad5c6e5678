//! The sealed envelope every agent message travels in (DESIGN.md §3).
//!
//! This crate owns the byte format of envelopes, AES-256-GCM sealing and opening, and the
//! replay window. It does no I/O and reads no clock: callers pass the time in. It must not
//! know about HTTP, MQTT or storage: relays and brokers carry these bytes untouched.

mod key;

pub use key::{KeyError, SealingKey};
