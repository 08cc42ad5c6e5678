//! The body of the `open_envelope` fuzz target, here so the saved fuzz corpus is replayed
//! by ordinary tests on stable Rust (see `tests` below) with exactly the same code.

use crate::{ReplayWindow, SealingKey, decode_batch, open, peek};

/// The fixed key the fuzz target opens with; seeds sealed under it reach the payload
/// decoder, everything else exercises framing and authentication failures.
pub const FUZZ_KEY: [u8; 32] = [7u8; 32];

/// Feeds arbitrary bytes through everything the server does with an untrusted envelope.
/// Must never panic.
pub fn open_envelope(data: &[u8]) {
    let _ = peek(data);
    let key = SealingKey::from_bytes(FUZZ_KEY);
    if let Ok(opened) = open(&key, data) {
        let _ = decode_batch(&opened);
        let mut w = ReplayWindow::new();
        if w.check(opened.header.boot_epoch, opened.header.seq) == crate::ReplayVerdict::Accept {
            w.commit(opened.header.boot_epoch, opened.header.seq);
        }
    }
    let _ = ReplayWindow::from_bytes(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Replays the saved fuzz corpus (`fuzz/corpus/open_envelope`).
    #[test]
    fn fuzz_corpus_replays_without_panic() {
        let dir = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../fuzz/corpus/open_envelope");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            open_envelope(&data);
            n += 1;
        }
        assert!(n >= 4, "fuzz corpus at {} has only {n} seeds", dir.display());
    }

    /// At least one seed is a valid envelope under the fuzz key, so the fuzzer starts
    /// past authentication.
    #[test]
    fn corpus_holds_a_valid_envelope() {
        let dir = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../fuzz/corpus/open_envelope");
        let key = SealingKey::from_bytes(FUZZ_KEY);
        let valid = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .filter(|d| open(&key, d).is_ok())
            .count();
        assert!(valid >= 1);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            open_envelope(&data);
        }

        #[test]
        fn mutated_valid_envelopes_never_open_or_panic(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let key = SealingKey::from_bytes(FUZZ_KEY);
            let params = crate::SealParams {
                agent_id: vigil_model::AgentId::new("fuzz").unwrap(),
                boot_epoch: 1, seq: 1, timestamp_ms: 0, kind: crate::MessageKind::Batch,
            };
            let mut env = crate::seal_batch(&key, &params, &[]).unwrap();
            let i = pos.index(env.len());
            env[i] ^= 1 << bit;
            open_envelope(&env);
            prop_assert!(open(&key, &env).is_err());
        }
    }
}
