//! The per-agent replay window (DESIGN.md §3).
//!
//! An agent numbers its messages with a boot epoch that grows at every start (persisted on
//! the agent) and a sequence number that grows per message from 1. The server keeps, per
//! agent, the newest `(epoch, seq)` seen and a bitmap of the [`WINDOW`] sequence numbers
//! below it, so messages that arrive late (retries racing each other, a relay draining its
//! spool) are still accepted exactly once, while anything older or already seen is refused.

use serde::{Deserialize, Serialize};

/// How many sequence numbers below the newest are remembered.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// What to do with a message, by its `(epoch, seq)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// Never seen: accept (and [`ReplayWindow::commit`] once stored).
    Accept,
    /// Seen before: a replay.
    Duplicate,
    /// From an older boot epoch, or too far below the newest sequence number to tell.
    Stale,
    /// Epoch or sequence number 0, which no agent sends.
    Invalid,
}

/// Replay state for one agent. Serializable so the server can persist it with the data it
/// guards (in the same transaction), which keeps replays refused across server restarts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplayWindow {
    epoch: u64,
    highest: u64,
    /// Bit `d` set means `highest - d` was seen.
    seen: [u64; WORDS],
}

impl ReplayWindow {
    /// A window that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The newest `(epoch, seq)` accepted so far.
    pub fn newest(&self) -> (u64, u64) {
        (self.epoch, self.highest)
    }

    fn bit(&self, d: u64) -> bool {
        self.seen[(d / 64) as usize] & (1 << (d % 64)) != 0
    }

    fn set_bit(&mut self, d: u64) {
        self.seen[(d / 64) as usize] |= 1 << (d % 64);
    }

    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        for i in (0..WORDS).rev() {
            let mut v = if i >= words { self.seen[i - words] << bits } else { 0 };
            if bits > 0 && i > words {
                v |= self.seen[i - words - 1] >> (64 - bits);
            }
            self.seen[i] = v;
        }
    }

    /// Judges `(epoch, seq)` without changing the window.
    pub fn check(&self, epoch: u64, seq: u64) -> ReplayVerdict {
        if epoch == 0 || seq == 0 {
            return ReplayVerdict::Invalid;
        }
        if epoch > self.epoch {
            return ReplayVerdict::Accept;
        }
        if epoch < self.epoch {
            return ReplayVerdict::Stale;
        }
        if seq > self.highest {
            return ReplayVerdict::Accept;
        }
        let d = self.highest - seq;
        if d >= WINDOW {
            ReplayVerdict::Stale
        } else if self.bit(d) {
            ReplayVerdict::Duplicate
        } else {
            ReplayVerdict::Accept
        }
    }

    /// Records `(epoch, seq)` as seen. Call only after [`check`](Self::check) said
    /// `Accept` and the message was stored; otherwise does nothing.
    pub fn commit(&mut self, epoch: u64, seq: u64) {
        if self.check(epoch, seq) != ReplayVerdict::Accept {
            return;
        }
        if epoch > self.epoch {
            *self = ReplayWindow { epoch, highest: seq, seen: [0; WORDS] };
            self.set_bit(0);
        } else if seq > self.highest {
            self.shift(seq - self.highest);
            self.highest = seq;
            self.set_bit(0);
        } else {
            self.set_bit(self.highest - seq);
        }
    }

    /// The window as bytes, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// A window read back from storage; `None` if the bytes are not a window.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

/// Whether a message stamped `timestamp_ms` is within `skew_ms` of `now_ms`, either way.
pub fn within_clock_skew(timestamp_ms: i64, now_ms: i64, skew_ms: i64) -> bool {
    timestamp_ms.abs_diff(now_ms) <= skew_ms.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn in_order_then_duplicate() {
        let mut w = ReplayWindow::new();
        for s in 1..=5 {
            assert_eq!(w.check(1, s), ReplayVerdict::Accept);
            w.commit(1, s);
        }
        assert_eq!(w.check(1, 3), ReplayVerdict::Duplicate);
        assert_eq!(w.check(1, 5), ReplayVerdict::Duplicate);
        assert_eq!(w.check(1, 6), ReplayVerdict::Accept);
    }

    #[test]
    fn late_message_accepted_once() {
        let mut w = ReplayWindow::new();
        w.commit(1, 1);
        w.commit(1, 3);
        assert_eq!(w.check(1, 2), ReplayVerdict::Accept);
        w.commit(1, 2);
        assert_eq!(w.check(1, 2), ReplayVerdict::Duplicate);
    }

    #[test]
    fn edges_of_the_window() {
        let mut w = ReplayWindow::new();
        w.commit(1, WINDOW + 10);
        assert_eq!(w.check(1, 11), ReplayVerdict::Accept, "newest - (WINDOW-1) is inside");
        assert_eq!(w.check(1, 10), ReplayVerdict::Stale, "newest - WINDOW is outside");
    }

    #[test]
    fn epochs() {
        let mut w = ReplayWindow::new();
        w.commit(2, 100);
        assert_eq!(w.check(1, 500), ReplayVerdict::Stale);
        assert_eq!(w.check(3, 1), ReplayVerdict::Accept);
        w.commit(3, 1);
        assert_eq!(w.check(2, 101), ReplayVerdict::Stale);
        assert_eq!(w.check(0, 1), ReplayVerdict::Invalid);
        assert_eq!(w.check(3, 0), ReplayVerdict::Invalid);
    }

    #[test]
    fn bytes_round_trip() {
        let mut w = ReplayWindow::new();
        w.commit(4, 77);
        w.commit(4, 70);
        assert_eq!(ReplayWindow::from_bytes(&w.to_bytes()), Some(w));
        assert_eq!(ReplayWindow::from_bytes(b"\xff"), None);
    }

    #[test]
    fn skew() {
        assert!(within_clock_skew(1000, 1300, 300));
        assert!(!within_clock_skew(1000, 1301, 300));
        assert!(within_clock_skew(1300, 1000, 300));
        assert!(!within_clock_skew(i64::MIN, i64::MAX, 300));
    }

    proptest! {
        /// Whatever order and repetition messages arrive in, no (epoch, seq) is accepted twice.
        #[test]
        fn never_accepts_a_duplicate(msgs in proptest::collection::vec((1u64..4, 1u64..3000), 1..600)) {
            let mut w = ReplayWindow::new();
            let mut accepted = HashSet::new();
            for (e, s) in msgs {
                if w.check(e, s) == ReplayVerdict::Accept {
                    prop_assert!(accepted.insert((e, s)), "accepted ({e},{s}) twice");
                    w.commit(e, s);
                }
            }
        }

        /// A message delayed by less than the window is accepted exactly once, however
        /// often it is repeated.
        #[test]
        fn in_window_late_message_accepted_exactly_once(
            n in 2u64..2000,
            late_by in 1u64..WINDOW,
            repeats in 1usize..5,
        ) {
            let late = n.saturating_sub(late_by).max(1);
            let mut w = ReplayWindow::new();
            for s in 1..=n {
                if s != late {
                    prop_assert_eq!(w.check(1, s), ReplayVerdict::Accept);
                    w.commit(1, s);
                }
            }
            let mut accepted = 0;
            for _ in 0..repeats {
                if w.check(1, late) == ReplayVerdict::Accept {
                    accepted += 1;
                    w.commit(1, late);
                }
            }
            prop_assert_eq!(accepted, 1);
        }
    }
}
