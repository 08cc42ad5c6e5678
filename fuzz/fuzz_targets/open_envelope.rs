//! Untrusted bytes through everything the server does with an agent envelope:
//! header parsing, AES-256-GCM opening, batch decoding, the replay window.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vigil_wire::fuzzing::open_envelope(data));
