//! A bounded map with approximately-least-recently-used eviction: the only kind of map
//! keyed by packet data in the engine.
//!
//! Entries live in one dense `Vec` linked into a list by `u32` indices, and a hash index
//! of bare slot numbers with a hash tag ([`SlotIndex`]; keys are compared in the slots)
//! points from key to slot: no allocation per entry, an honest size estimate, and a
//! deterministic eviction order (the list depends only on the packet sequence, never on
//! hash values, so the keyed hasher's random seed cannot change any output). Keeping the
//! keys out of the index makes it small (8 bytes a bucket). A lookup costs two likely
//! cache misses on a big table, the index bucket and the slot; a caller that knows a key
//! ahead of time hides both with [`Table::prefetch_key`] then [`Table::warm_key`].
//!
//! Eviction is "second chance" (CLOCK on a list): an access only sets the entry's
//! `referenced` bit (no relinking, so no extra cache misses on the hot path); a full table
//! looks at its oldest entry and, if it was referenced since it was linked, clears the bit
//! and moves it to the front instead of evicting it (at most [`MAX_SECOND_CHANCES`] times
//! per insertion). [`Table::expire`] walks from the back the same way and drops idle
//! entries in O(expired + hot entries passed).

use std::hash::Hash;
use std::mem::size_of;

use crate::index::SlotIndex;

/// The hasher of every table: keyed (HashDoS-resistant against attacker-chosen keys), with
/// the seed given to the engine.
pub(crate) type Hasher = ahash::RandomState;

const NIL: u32 = u32::MAX;

/// Slot bytes from which [`Table::worth_prefetching`] says yes: most of a typical 1–2 MiB
/// L2 cache once packet data streams through it. Unit tests prefetch always, so the
/// prefetch paths run in every engine test.
const PREFETCH_MIN_BYTES: usize = if cfg!(test) { 1 } else { 1 << 20 };

/// Referenced entries moved to the front per insertion into a full table before the
/// oldest entry is evicted regardless (bounds the work an insertion can do).
pub(crate) const MAX_SECOND_CHANCES: usize = 32;

struct Slot<K, V> {
    key: K,
    val: V,
    prev: u32,
    next: u32,
    referenced: bool,
}

/// Bytes one entry can cost at most, including the hash index at its lowest load (3/8,
/// just after it doubled).
pub(crate) fn entry_bytes<K, V>() -> usize {
    // 8-byte buckets at a load of 3/8: 8 / (3/8) bytes an entry.
    size_of::<Slot<K, V>>() + 64 / 3 + 1
}

/// A map with at most `cap` entries; inserting into a full map evicts the least recently
/// used entry.
pub(crate) struct Table<K, V> {
    /// Slot numbers, hashed by their slot's key.
    index: SlotIndex,
    hasher: Hasher,
    slots: Vec<Slot<K, V>>,
    head: u32,
    tail: u32,
    cap: usize,
    evictions: u64,
}

impl<K: Hash + Eq + Copy, V> Table<K, V> {
    /// A table holding at most as many entries as fit in `budget_bytes` (at least 16).
    pub(crate) fn with_budget(budget_bytes: u64, hasher: &Hasher) -> Self {
        let per = entry_bytes::<K, V>() as u64;
        let mut cap = (budget_bytes / per.max(1)).max(16);
        // The index rounds buckets up to a power of two: shrink until the worst case fits.
        while cap > 16 && Self::worst_bytes(cap as usize) > budget_bytes.max(16 * per) {
            cap = cap * 15 / 16;
        }
        Table {
            index: SlotIndex::default(),
            hasher: hasher.clone(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            cap: usize::try_from(cap).unwrap_or(usize::MAX).min(NIL as usize - 1),
            evictions: 0,
        }
    }

    fn worst_bytes(cap: usize) -> u64 {
        (cap * size_of::<Slot<K, V>>() + SlotIndex::buckets_for(cap) * size_of::<u64>()) as u64
    }

    /// Most entries.
    #[cfg(test)]
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Entries now.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Entries evicted to make room so far.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Bytes allocated now (hash index, slots), excluding heap data owned by values.
    pub(crate) fn mem_bytes(&self) -> u64 {
        (self.index.mem_bytes() + self.slots.capacity() * size_of::<Slot<K, V>>()) as u64
    }

    /// The slot holding `key`, given its hash.
    fn find(&self, hash: u64, key: &K) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(hash, |i| slots.get(i as usize).is_some_and(|s| s.key == *key))
    }

    /// Points the index entry for `key` (hash `hash`) that names slot `from` at slot `to`.
    fn renumber(&mut self, hash: u64, from: u32, to: u32) {
        self.index.renumber(hash, from, to);
    }

    /// Drops the index entry naming slot `i` (whose key hashes to `hash`).
    fn unindex(&mut self, hash: u64, i: u32) {
        self.index.remove(hash, i);
    }

    /// Adds slot `i` (already holding its key) to the index.
    fn index_slot(&mut self, hash: u64, i: u32) {
        self.index.insert(hash, i);
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = match self.slots.get(i as usize) {
            Some(s) => (s.prev, s.next),
            None => return,
        };
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.prev = NIL;
            s.next = old;
        }
        match self.slots.get_mut(old as usize) {
            Some(h) => h.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }

    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    /// The hash of `key` in this table, for the prefetch calls.
    pub(crate) fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Whether prefetching pays: only once the slots outgrow what a core's cache keeps
    /// between two packets that touch one entry ([`PREFETCH_MIN_BYTES`]). Below that, a
    /// hint would cost its hashing for nothing.
    pub(crate) fn worth_prefetching(&self) -> bool {
        self.slots.len() * size_of::<Slot<K, V>>() >= PREFETCH_MIN_BYTES
    }

    /// First step of warming a lookup or insertion of `key` by the next packet: starts
    /// loading its index bucket and, when the table is full, the slot an insertion would
    /// evict. Returns the hash for [`Table::warm_key`].
    pub(crate) fn prefetch_key(&self, key: &K) -> u64 {
        let hash = self.hash(key);
        self.index.prefetch(hash);
        if let Some(victim) = self.victim() {
            crate::prefetch::read(victim);
        }
        hash
    }

    /// The slot an insertion would evict now (none while the table has room).
    fn victim(&self) -> Option<&Slot<K, V>> {
        self.slots.get(self.tail as usize).filter(|_| self.slots.len() >= self.cap)
    }

    /// Second step, some work after [`Table::prefetch_key`]: starts loading the key's slot
    /// when it is there, else (table full) the index bucket and the list neighbour of the
    /// entry an insertion would evict, so that neither the lookup nor the eviction waits
    /// on memory.
    pub(crate) fn warm_key(&self, hash: u64) {
        // The first entry with the hash's tag: comparing the key would wait on the slot.
        if let Some(i) = self.index.find(hash, |_| true) {
            if let Some(s) = self.slots.get(i as usize) {
                crate::prefetch::read(s);
            }
        } else if let Some(victim) = self.victim() {
            self.index.prefetch(self.hash(&victim.key));
            // Unlinking the victim rewrites its neighbour's link.
            if let Some(prev) = self.slots.get(victim.prev as usize) {
                crate::prefetch::read(prev);
            }
        }
    }

    /// The value for `key`, marking it used.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(self.hasher.hash_one(key), key)?;
        let s = self.slots.get_mut(i as usize)?;
        s.referenced = true;
        Some(&mut s.val)
    }

    /// The value for `key` without changing its recency.
    pub(crate) fn peek(&self, key: &K) -> Option<&V> {
        let i = self.find(self.hasher.hash_one(key), key)?;
        self.slots.get(i as usize).map(|s| &s.val)
    }

    /// The value for `key`, inserted with `make` if absent (evicting the least recently
    /// used entry when full); the flag is true when it was inserted.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let hash = self.hasher.hash_one(key);
        if let Some(i) = self.find(hash, &key) {
            // Indices in the map always name a live slot.
            let s = &mut self.slots[i as usize];
            s.referenced = true;
            return (&mut s.val, false);
        }
        let i = if self.slots.len() >= self.cap && self.tail != NIL {
            // Second chances for referenced entries, then reuse the oldest slot.
            for _ in 0..MAX_SECOND_CHANCES {
                let t = self.tail;
                match self.slots.get_mut(t as usize) {
                    Some(s) if s.referenced => s.referenced = false,
                    _ => break,
                }
                self.touch(t);
            }
            let i = self.tail;
            self.unlink(i);
            self.evictions += 1;
            if let Some(old) = self.slots.get(i as usize).map(|s| self.hasher.hash_one(s.key)) {
                self.unindex(old, i);
            }
            if let Some(s) = self.slots.get_mut(i as usize) {
                s.key = key;
                s.val = make();
                s.referenced = false;
            }
            i
        } else {
            if self.slots.len() == self.slots.capacity() {
                // Grow by doubling, but never past the cap (Vec's own doubling could).
                let want = (self.slots.capacity() * 2).max(16).min(self.cap);
                self.slots.reserve_exact(want.saturating_sub(self.slots.len()));
            }
            let i = self.slots.len() as u32;
            self.slots.push(Slot { key, val: make(), prev: NIL, next: NIL, referenced: false });
            i
        };
        self.index_slot(hash, i);
        self.push_front(i);
        // `i` is a slot index written just above.
        (&mut self.slots[i as usize].val, true)
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let i = self.find(hash, key)?;
        self.unindex(hash, i);
        self.unlink(i);
        let last = self.slots.len().checked_sub(1)? as u32;
        let removed = self.slots.swap_remove(i as usize);
        if i != last {
            // The last slot moved into the hole: point its neighbours and the index at it.
            let (prev, next, k) = {
                let s = &self.slots[i as usize];
                (s.prev, s.next, s.key)
            };
            match self.slots.get_mut(prev as usize) {
                Some(p) => p.next = i,
                None => self.head = i,
            }
            match self.slots.get_mut(next as usize) {
                Some(n) => n.prev = i,
                None => self.tail = i,
            }
            self.renumber(self.hasher.hash_one(k), last, i);
        }
        Some(removed.val)
    }

    /// The entry at the back (next to be evicted or given a second chance).
    #[cfg(test)]
    pub(crate) fn oldest(&self) -> Option<(&K, &V)> {
        self.slots.get(self.tail as usize).map(|s| (&s.key, &s.val))
    }

    /// Removes idle entries from the back (`idle(value)`), giving referenced ones a second
    /// chance; stops at the first entry neither idle nor referenced (everything linked
    /// after it was used after it). Returns how many were removed.
    pub(crate) fn expire(&mut self, mut idle: impl FnMut(&V) -> bool) -> usize {
        let mut n = 0;
        let mut budget = self.slots.len();
        while budget > 0 {
            budget -= 1;
            let t = self.tail;
            let Some(s) = self.slots.get_mut(t as usize) else { break };
            if idle(&s.val) {
                let k = s.key;
                self.remove(&k);
                n += 1;
            } else if s.referenced {
                s.referenced = false;
                self.touch(t);
            } else {
                break;
            }
        }
        n
    }

    /// Iterates the entries from front (newest) to back (a deterministic order).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let mut i = self.head;
        std::iter::from_fn(move || {
            let s = self.slots.get(i as usize)?;
            i = s.next;
            Some((&s.key, &s.val))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cap_entries: usize) -> Table<u32, u64> {
        let h = Hasher::with_seeds(1, 2, 3, 4);
        let mut t = Table::with_budget(0, &h);
        t.cap = cap_entries;
        t
    }

    #[test]
    fn evicts_least_recently_used_and_counts() {
        let mut t = table(3);
        for k in 0..3 {
            t.get_or_insert_with(k, || u64::from(k) * 10);
        }
        assert!(t.get_mut(&0).is_some()); // 0 is now the most recent; 1 the oldest
        let (_, inserted) = t.get_or_insert_with(3, || 30);
        assert!(inserted);
        assert_eq!(t.evictions(), 1);
        assert!(t.peek(&1).is_none());
        assert_eq!(t.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [3, 0, 2]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn remove_and_expire_keep_links_consistent() {
        let mut t = table(100);
        for k in 0..10 {
            t.get_or_insert_with(k, || u64::from(k));
        }
        assert_eq!(t.remove(&3), Some(3));
        assert_eq!(t.remove(&9), Some(9));
        assert_eq!(t.remove(&42), None);
        assert_eq!(t.len(), 8);
        for k in [0, 1, 2, 4, 5, 6, 7, 8] {
            assert_eq!(t.peek(&k), Some(&u64::from(k)), "key {k}");
        }
        assert_eq!(t.iter().count(), 8);
        // Expire the oldest while their value is below 5.
        let n = t.expire(|v| *v < 5);
        assert!(n >= 1);
        assert!(t.iter().all(|(_, v)| *v >= 5 || t.oldest().map(|(_, o)| *o >= 5).unwrap_or(true)));
        assert_eq!(t.iter().count(), t.len());
    }

    #[test]
    fn budget_bounds_the_cap_and_the_estimate() {
        let h = Hasher::with_seeds(1, 2, 3, 4);
        let budget = 1 << 20;
        let mut t: Table<u64, [u8; 40]> = Table::with_budget(budget, &h);
        assert!(t.cap() > 1000);
        for k in 0..(t.cap() as u64 * 3) {
            t.get_or_insert_with(k, || [0; 40]);
        }
        assert_eq!(t.len(), t.cap());
        assert!(t.mem_bytes() <= budget, "{} > {budget}", t.mem_bytes());
        assert_eq!(t.evictions(), t.cap() as u64 * 2);
    }
}
