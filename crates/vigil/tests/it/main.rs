//! End-to-end tests: real servers and agents over TLS on loopback, and the CLI.
//! One test binary, so a 2-core machine links once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod browser;
mod cli;
mod correlation;
mod demo_shots;
mod events;
mod lab;
mod pipeline;
mod security;
