//! Property tests: no input makes a capture reader panic or exceed its record limit.

use proptest::prelude::*;
use vigil_capture::{CaptureReader, fuzzing};

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_readers(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        for (_, run) in fuzzing::TARGETS {
            run(&data);
        }
    }

    #[test]
    fn records_with_random_lengths_are_bounded(lens in proptest::collection::vec(any::<u32>(), 1..6)) {
        // A valid pcap header followed by records whose length fields are random.
        let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        f.extend([0u8; 8]);
        f.extend(65535u32.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        for len in lens {
            f.extend([0u8; 8]);
            f.extend(len.to_le_bytes());
            f.extend(len.to_le_bytes());
            f.extend(vec![0xab; (len % 64) as usize]);
        }
        let mut r = CaptureReader::with_max_record_len(&f[..], "p", 1024).unwrap();
        while let Ok(Some(p)) = r.next_packet() {
            prop_assert!(p.data.len() <= 1024);
        }
    }
}
