#![no_main]
//! Fuzz target `capture_pcap`: see `vigil_capture::fuzzing::capture_pcap`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_capture::fuzzing::capture_pcap(data));
