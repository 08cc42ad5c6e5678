#![no_main]
//! Fuzz target `telnet`: see `vigil_decode::fuzzing::telnet`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_decode::fuzzing::telnet(data));
