//! The hash index of a [`crate::table::Table`]: from a key's hash to its slot number.
//!
//! Hand-written rather than a `hashbrown::HashTable<u32>` for one reason: the engine
//! prefetches the index entry of the *next* packet's flow before it needs it
//! ([`SlotIndex::prefetch`]), which needs the entry's address from the hash alone.
//! hashbrown keeps that address private. Linear probing over one `Vec<u64>`: each entry
//! packs the upper 32 bits of the hash (the tag, which also picks the home bucket) with
//! the slot number, so a probe compares tags in one cache line and touches a slot only
//! on a tag match. Deletion shifts the following entries back (no tombstones, so lookups
//! stay short under churn). The load stays at or under 3/4; probing ends at an empty
//! bucket, which always exists.

use crate::prefetch;

/// Buckets of a new index.
const MIN_BUCKETS: usize = 16;

/// Open-addressed map from a 64-bit hash to a `u32` slot number.
#[derive(Default)]
pub(crate) struct SlotIndex {
    /// 0: empty; else `tag << 32 | (slot + 1)`.
    buckets: Vec<u64>,
    len: usize,
}

fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

fn pack(tag: u32, slot: u32) -> u64 {
    (u64::from(tag) << 32) | (u64::from(slot) + 1)
}

fn slot_of(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

impl SlotIndex {
    /// Buckets needed to hold `len` entries at a load of at most 3/4.
    pub(crate) fn buckets_for(len: usize) -> usize {
        (len.saturating_mul(4).div_ceil(3) + 1).next_power_of_two().max(MIN_BUCKETS)
    }

    /// Bytes allocated now.
    pub(crate) fn mem_bytes(&self) -> usize {
        self.buckets.capacity() * size_of::<u64>()
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask()
    }

    /// Starts loading the buckets where a lookup of `hash` begins: its home bucket's cache
    /// line and the next one, where probing, insertion and back-shifting run on to when
    /// the home line is crowded.
    pub(crate) fn prefetch(&self, hash: u64) {
        let home = self.home(tag(hash));
        for i in [home, (home + 8) & self.mask()] {
            if let Some(b) = self.buckets.get(i) {
                prefetch::read(b);
            }
        }
    }

    /// The slot whose entry has this hash and for which `eq` holds.
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mask = self.mask();
        let mut i = self.home(t);
        loop {
            let e = *self.buckets.get(i)?;
            if e == 0 {
                return None;
            }
            if tag_of(e) == t && eq(slot_of(e)) {
                return Some(slot_of(e));
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `slot` under `hash` (the caller knows it is not there yet).
    pub(crate) fn insert(&mut self, hash: u64, slot: u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        let t = tag(hash);
        let mask = self.mask();
        let mut i = self.home(t);
        while let Some(b) = self.buckets.get_mut(i) {
            if *b == 0 {
                *b = pack(t, slot);
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let n = Self::buckets_for(self.len + 1).max(self.buckets.len() * 2);
        let old = std::mem::replace(&mut self.buckets, vec![0; n]);
        let mask = n - 1;
        for e in old.into_iter().filter(|&e| e != 0) {
            let mut i = tag_of(e) as usize & mask;
            while let Some(b) = self.buckets.get_mut(i) {
                if *b == 0 {
                    *b = e;
                    break;
                }
                i = (i + 1) & mask;
            }
        }
    }

    /// The bucket holding `slot` under `hash`.
    fn position(&self, hash: u64, slot: u32) -> Option<usize> {
        let want = pack(tag(hash), slot);
        let mask = self.mask();
        let mut i = self.home(tag(hash));
        loop {
            let e = *self.buckets.get(i)?;
            if e == 0 {
                return None;
            }
            if e == want {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Points the entry of `from` (under `hash`) at `to`.
    pub(crate) fn renumber(&mut self, hash: u64, from: u32, to: u32) {
        if let Some(i) = self.position(hash, from)
            && let Some(b) = self.buckets.get_mut(i)
        {
            *b = pack(tag(hash), to);
        }
    }

    /// Removes the entry of `slot` (under `hash`), shifting the entries after it back so
    /// that every entry stays reachable from its home bucket.
    pub(crate) fn remove(&mut self, hash: u64, slot: u32) {
        let Some(mut hole) = self.position(hash, slot) else { return };
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.buckets.get(j).copied().unwrap_or(0);
            if e == 0 {
                break;
            }
            // `e` may fill the hole when its home is not cyclically after the hole.
            let home = tag_of(e) as usize & mask;
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                if let Some(b) = self.buckets.get_mut(hole) {
                    *b = e;
                }
                hole = j;
            }
        }
        if let Some(b) = self.buckets.get_mut(hole) {
            *b = 0;
        }
        self.len -= 1;
    }
}

fn tag_of(e: u64) -> u32 {
    (e >> 32) as u32
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Hashes that collide on their home bucket and tag often (small range), to exercise
    /// probing, wrap-around and back-shifting.
    fn hash_of(k: u32) -> u64 {
        (u64::from(k % 7) << 32) | u64::from(k)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(u32),
        Renumber(u32),
    }

    proptest! {
        /// The index agrees with a `HashMap` model after any sequence of operations, and
        /// its load stays at or under 3/4.
        #[test]
        fn matches_a_map(ops in proptest::collection::vec(
            prop_oneof![
                (0u32..200).prop_map(Op::Insert),
                (0u32..200).prop_map(Op::Remove),
                (0u32..200).prop_map(Op::Renumber),
            ],
            1..400,
        )) {
            let mut idx = SlotIndex::default();
            let mut model: HashMap<u32, u32> = HashMap::new();
            let mut next_slot = 0u32;
            for op in ops {
                match op {
                    Op::Insert(k) if !model.contains_key(&k) => {
                        idx.insert(hash_of(k), next_slot);
                        model.insert(k, next_slot);
                        next_slot += 1;
                    }
                    Op::Remove(k) => {
                        if let Some(s) = model.remove(&k) {
                            idx.remove(hash_of(k), s);
                        }
                    }
                    Op::Renumber(k) => {
                        if let Some(s) = model.get_mut(&k) {
                            idx.renumber(hash_of(k), *s, next_slot);
                            *s = next_slot;
                            next_slot += 1;
                        }
                    }
                    Op::Insert(_) => {}
                }
                prop_assert!(idx.len * 4 <= idx.buckets.len() * 3);
                prop_assert_eq!(idx.len, model.len());
            }
            let by_slot: HashMap<u32, u32> = model.iter().map(|(k, s)| (*s, *k)).collect();
            for k in 0u32..200 {
                let found = idx.find(hash_of(k), |s| by_slot.get(&s) == Some(&k));
                prop_assert_eq!(found, model.get(&k).copied(), "key {}", k);
            }
        }
    }

    #[test]
    fn empty_index_finds_nothing_and_ignores_removals() {
        let mut idx = SlotIndex::default();
        assert_eq!(idx.find(42, |_| true), None);
        idx.remove(42, 0);
        idx.renumber(42, 0, 1);
        idx.prefetch(42);
        assert_eq!(idx.len, 0);
        assert_eq!(idx.mem_bytes(), 0);
    }

    #[test]
    fn wraps_around_the_end() {
        let mut idx = SlotIndex::default();
        // All home to the last bucket of 16: they wrap to buckets 0, 1, ...
        let h = |k: u64| (15u64 | k << 8) << 32;
        for k in 0..6 {
            idx.insert(h(k), k as u32);
        }
        idx.remove(h(0), 0);
        for k in 1..6 {
            assert_eq!(idx.find(h(k), |s| s == k as u32), Some(k as u32));
        }
        assert_eq!(idx.find(h(0), |s| s == 0), None);
    }
}
