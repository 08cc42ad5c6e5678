//! Property tests: no input panics the engine.

use proptest::prelude::*;

use crate::testutil::{TcpPacket, udp};
use crate::{DetectConfig, Engine, Frame};

const LINK_TYPES: [u32; 8] = [0, 1, 101, 113, 127, 228, 229, 276];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_frames_never_panic(frames in proptest::collection::vec(
        (any::<i64>(), 0usize..8, proptest::collection::vec(any::<u8>(), 0..200), any::<u32>()), 1..40)) {
        let mut e = Engine::new(DetectConfig::default()).unwrap();
        let mut out = Vec::new();
        for (ts, lt, data, orig) in &frames {
            e.process(&Frame { ts_nanos: *ts, link_type: LINK_TYPES[*lt], orig_len: *orig, data }, &mut out);
        }
        prop_assert_eq!(e.packets(), frames.len() as u64);
        let _ = e.stats();
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        flags in any::<u16>(), sport in any::<u16>(), dport in prop::sample::select(vec![21u16, 22, 23, 25, 53, 80, 110, 143, 443, 445, 4444, 6379]),
        payload in proptest::collection::vec(any::<u8>(), 0..300), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        seq in any::<u32>(), ts in any::<i64>()) {
        let mut e = Engine::new(DetectConfig::default()).unwrap();
        let mut out = Vec::new();
        let mut pkts = vec![
            TcpPacket::new("10.0.0.5", sport, "10.0.0.9", dport).flags(flags).seq(seq).payload(&payload).build(),
            TcpPacket::new("10.0.0.9", dport, "10.0.0.5", sport).flags(flags).seq(seq).payload(&payload).build(),
            udp("10.0.0.5", sport, "10.0.0.9", dport, &payload),
            udp("10.0.0.9", dport, "10.0.0.5", sport, &payload),
        ];
        for p in &mut pkts {
            for (at, x) in &flips {
                if !p.is_empty() {
                    let n = p.len();
                    p[at % n] ^= x;
                }
            }
        }
        for (i, p) in pkts.iter().enumerate() {
            e.process(&Frame { ts_nanos: ts.saturating_add(i as i64), link_type: 1, orig_len: p.len() as u32, data: p }, &mut out);
        }
        prop_assert_eq!(e.packets(), 4);
    }
}
