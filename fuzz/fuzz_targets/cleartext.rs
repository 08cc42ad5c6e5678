#![no_main]
//! Fuzz target `cleartext`: see `vigil_decode::fuzzing::cleartext`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_decode::fuzzing::cleartext(data));
