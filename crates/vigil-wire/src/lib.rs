//! The sealed envelope every agent message travels in (DESIGN.md §3).
//!
//! This crate owns the byte format of envelopes, AES-256-GCM sealing and opening, and the
//! replay window. It does no I/O and reads no clock: callers pass the time in, so it runs
//! on whatever thread calls it and stays fuzzable. It must not know about HTTP, MQTT or
//! storage: relays and brokers carry these bytes untouched and cannot read or forge them.

mod envelope;
#[doc(hidden)]
pub mod fuzzing;
mod key;
mod replay;

pub use envelope::{
    Batch, Header, MAX_BATCH_ITEMS, MAX_ENVELOPE_LEN, MessageKind, Opened, SealParams, WIRE_VERSION, WireError,
    decode_batch, open, peek, seal, seal_batch,
};
pub use key::{KeyError, SealingKey};
pub use replay::{ReplayVerdict, ReplayWindow, WINDOW, within_clock_skew};
