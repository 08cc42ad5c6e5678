//! Integration tests of vigil-decode: the public corpus, fuzz-corpus replay and property
//! tests (one test binary, so a 2-core machine links once).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod corpus;
mod props;
mod replay;
