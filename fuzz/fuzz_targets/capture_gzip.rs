#![no_main]
//! Fuzz target `capture_gzip`: see `vigil_capture::fuzzing::capture_gzip`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_capture::fuzzing::capture_gzip(data));
