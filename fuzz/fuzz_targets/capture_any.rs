#![no_main]
//! Fuzz target `capture_any`: see `vigil_capture::fuzzing::capture_any`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_capture::fuzzing::capture_any(data));
