#![no_main]
//! Fuzz target `http`: see `vigil_decode::fuzzing::http`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_decode::fuzzing::http(data));
