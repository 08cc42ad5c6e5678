#![no_main]
//! Fuzz target `tls`: see `vigil_decode::fuzzing::tls`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_decode::fuzzing::tls(data));
