#![no_main]
//! Fuzz target `capture_pcapng`: see `vigil_capture::fuzzing::capture_pcapng`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_capture::fuzzing::capture_pcapng(data));
