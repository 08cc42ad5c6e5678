#![no_main]
//! Fuzz target `decode_frame`: see `vigil_decode::fuzzing::decode_frame`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_decode::fuzzing::decode_frame(data));
