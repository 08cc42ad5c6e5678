//! Property tests: no input makes a decoder panic.

use proptest::prelude::*;
use vigil_decode::fuzzing;
use vigil_decode::{LinkType, decode};

/// A valid Ethernet/IPv4/TCP frame with options and payload, to mutate.
fn seed_frame() -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend([0x45, 0, 0, 60, 0, 1, 0x20, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend([0, 80, 1, 187, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_frame_decoder(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        for sel in 0..fuzzing::FUZZ_LINK_TYPES.len() {
            let mut input = vec![sel as u8];
            input.extend(&data);
            fuzzing::decode_frame(&input);
        }
        for lt in fuzzing::FUZZ_LINK_TYPES {
            if let Ok(mut p) = decode(lt, &data) {
                let _ = (p.outcome(), p.fragment(), p.l4_payload(), p.verify_l4_checksum());
            }
        }
    }

    #[test]
    fn mutated_frames_never_panic(flips in proptest::collection::vec((0usize..74, any::<u8>()), 1..8), cut in 0usize..80) {
        let mut f = seed_frame();
        for (i, b) in flips {
            f[i % 74] = b;
        }
        f.truncate(cut);
        for lt in [LinkType::ETHERNET, LinkType::LINUX_SLL, LinkType::RAW, LinkType::IEEE802_11_RADIOTAP] {
            if let Ok(mut p) = decode(lt, &f) {
                let _ = (p.verify_l4_checksum(), p.tcp().map(|t| t.parsed_options()));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_l7_parsers(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for (_, run) in fuzzing::TARGETS {
            run(&data);
        }
    }

    #[test]
    fn textish_lines_never_panic_line_parsers(line in "[ -~\r\n\"{}\\\\]{0,200}") {
        fuzzing::cleartext(line.as_bytes());
        fuzzing::http(line.as_bytes());
        fuzzing::http(format!("GET {line} HTTP/1.1\r\nAuthorization: Basic {line}\r\n\r\n").as_bytes());
        fuzzing::cleartext(format!("a1 LOGIN {line}").as_bytes());
    }
}
