//! Integration tests of vigil-capture: the public corpus, fuzz-corpus replay and property
//! tests (one test binary).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod corpus;
mod props;
mod replay;
