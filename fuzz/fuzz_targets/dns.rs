#![no_main]
//! Fuzz target `dns`: see `vigil_decode::fuzzing::dns`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_decode::fuzzing::dns(data));
