//! Integration tests of `vigil_analyze::analyze` (one test binary: links once).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod corpus;
mod determinism;
