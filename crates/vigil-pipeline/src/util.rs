//! Small building blocks: time conversion, a seeded RNG, deterministic ids, a bounded map.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Unix milliseconds of `t`.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant `ms` unix milliseconds; the epoch for values chrono cannot represent.
pub(crate) fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Seconds → milliseconds, saturating.
pub(crate) fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// SplitMix64: a tiny, well-mixed, seedable generator (Steele, Lea, Flood 2014). Good
/// enough for sampling and simulation, not for cryptography. Serializable, so a model's
/// randomness is part of its persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the tiny bias is irrelevant here.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A uniform float in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// A standard normal deviate (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The SplitMix64 finalizer: a bijective 64-bit mix.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over `bytes`: a stable hash (unlike `RandomState`) for deriving seeds.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Deterministic UUIDv7 ids: the time part is the injected clock, the rest comes from a
/// seeded counter. Two pipelines with the same seed and inputs produce the same ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdGen {
    seed: u64,
    counter: u64,
}

impl IdGen {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }

    /// The next id, stamped with `at_ms`.
    pub fn next(&mut self, at_ms: i64) -> Uuid {
        self.counter = self.counter.wrapping_add(1);
        let a = mix64(self.seed ^ self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = mix64(a ^ 0xD1B5_4A32_D192_ED03);
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&a.to_le_bytes());
        bytes[8..].copy_from_slice(&b.to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(u64::try_from(at_ms).unwrap_or(0), &bytes).into_uuid()
    }
}

/// The hasher of the pipeline's maps: aHash (several times cheaper than SipHash on these
/// short keys), keyed per map from the standard library's per-process random keys, so the
/// keys stay unknown to whoever chooses the addresses and names that go into the maps (no
/// HashDoS). `ahash::RandomState::default()` would not do: without its `runtime-rng`
/// feature its keys are fixed.
#[derive(Clone, Debug)]
pub(crate) struct Keyed(ahash::RandomState);

impl Default for Keyed {
    fn default() -> Self {
        let std = std::hash::RandomState::new();
        let k = |i: u64| std.hash_one(i);
        Self(ahash::RandomState::with_seeds(k(1), k(2), k(3), k(4)))
    }
}

impl BuildHasher for Keyed {
    type Hasher = ahash::AHasher;
    fn build_hasher(&self) -> ahash::AHasher {
        self.0.build_hasher()
    }
}

/// A `HashMap` with the [`Keyed`] hasher.
pub(crate) type FastMap<K, V> = HashMap<K, V, Keyed>;
/// A `HashSet` with the [`Keyed`] hasher.
pub(crate) type FastSet<K> = HashSet<K, Keyed>;

/// A hash map with a hard capacity and an order stamp per entry (usually a time in unix
/// ms). When full, inserting a new key evicts the entry with the smallest stamp and counts
/// the eviction. Every map the pipeline keys by data an attacker can choose (addresses,
/// metric names) is one of these.
///
/// Order is (stamp, then the sequence of the insert or stamp change), never hash values,
/// so eviction is deterministic. It is kept in a binary min-heap with lazy deletion: a
/// stamp change pushes a new heap element and leaves the old one stale (its sequence no
/// longer matches the entry's); stale elements are dropped when they reach the top, and
/// the heap is rebuilt from the entries when stale ones outnumber live ones, so it holds
/// at most `2 × len + 64` elements. Stamps mostly grow (alert time), so a push rarely
/// moves far: cheaper than the ordered tree this replaces, which was rebalanced on every
/// touch. The heap is written out here rather than taken from `std::collections::BinaryHeap`
/// because [`BoundedMap::keys_up_to`] walks the heap array and skips every subtree whose
/// root is past the stamp; `BinaryHeap` does not promise its slice is in heap layout.
#[derive(Debug, Clone)]
pub struct BoundedMap<K, V> {
    cap: usize,
    entries: FastMap<K, Slot<V>>,
    heap: Vec<Mark<K>>,
    seq: u64,
    evicted: u64,
}

#[derive(Debug, Clone)]
struct Slot<V> {
    value: V,
    stamp: i64,
    seq: u64,
}

/// A heap element: where `key` stood in the order when it was pushed.
#[derive(Debug, Clone)]
struct Mark<K> {
    stamp: i64,
    seq: u64,
    key: K,
}

impl<K> Mark<K> {
    fn before(&self, other: &Self) -> bool {
        (self.stamp, self.seq) < (other.stamp, other.seq)
    }
}

/// Stale heap elements tolerated beyond the live ones before a rebuild.
const HEAP_SLACK: usize = 64;

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// An empty map holding at most `cap` entries (at least 1).
    pub fn new(cap: usize) -> Self {
        Self { cap: cap.max(1), entries: FastMap::default(), heap: Vec::new(), seq: 0, evicted: 0 }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries were evicted to make room since the map was created.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Changes the capacity; entries over it are evicted, oldest first.
    pub fn set_cap(&mut self, cap: usize) -> Vec<(K, V)> {
        self.cap = cap.max(1);
        let mut out = Vec::new();
        while self.entries.len() > self.cap {
            if let Some((k, v, _)) = self.pop_oldest() {
                self.evicted += 1;
                out.push((k, v));
            }
        }
        out
    }

    /// The value for `k`.
    pub fn get(&self, k: &K) -> Option<&V> {
        self.entries.get(k).map(|s| &s.value)
    }

    /// The value for `k`, mutably. Does not change its stamp.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.entries.get_mut(k).map(|s| &mut s.value)
    }

    /// The stamp of `k`.
    pub fn stamp(&self, k: &K) -> Option<i64> {
        self.entries.get(k).map(|s| s.stamp)
    }

    /// Sets the stamp of `k` (no-op when absent or unchanged).
    pub fn touch(&mut self, k: &K, stamp: i64) {
        if let Some(slot) = self.entries.get_mut(k) {
            if slot.stamp == stamp {
                return;
            }
            let old = (slot.stamp, slot.seq);
            self.seq += 1;
            slot.stamp = stamp;
            slot.seq = self.seq;
            self.push(Mark { stamp, seq: self.seq, key: k.clone() });
            self.left_behind(old);
        }
    }

    /// Inserts or replaces `k`. When a new key finds the map full, the entry with the
    /// smallest stamp is evicted, counted and returned.
    pub fn insert(&mut self, k: K, value: V, stamp: i64) -> Option<(K, V)> {
        if let Some(slot) = self.entries.get_mut(&k) {
            slot.value = value;
            self.touch(&k, stamp);
            return None;
        }
        let evicted = if self.entries.len() >= self.cap {
            self.pop_oldest().map(|(k, v, _)| {
                self.evicted += 1;
                (k, v)
            })
        } else {
            None
        };
        self.seq += 1;
        self.push(Mark { stamp, seq: self.seq, key: k.clone() });
        self.entries.insert(k, Slot { value, stamp, seq: self.seq });
        evicted
    }

    /// Removes `k`.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        let slot = self.entries.remove(k)?;
        self.left_behind((slot.stamp, slot.seq));
        Some(slot.value)
    }

    /// The key with the smallest stamp, and that stamp.
    pub fn oldest(&self) -> Option<(&K, i64)> {
        // `settle` keeps the top live.
        self.heap.first().map(|m| (&m.key, m.stamp))
    }

    /// Removes and returns the entry with the smallest stamp (not counted as an eviction).
    pub fn pop_oldest(&mut self) -> Option<(K, V, i64)> {
        let top = self.pop_top()?;
        let slot = self.entries.remove(&top.key)?;
        self.settle();
        Some((top.key, slot.value, top.stamp))
    }

    /// Keys whose stamp is at most `stamp`, oldest first.
    pub fn keys_up_to(&self, stamp: i64) -> impl Iterator<Item = &K> {
        // Every element below a heap element is later in the order, so only the subtrees
        // whose root is at most `stamp` are visited.
        let mut found: Vec<&Mark<K>> = Vec::new();
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            let Some(m) = self.heap.get(i) else { continue };
            if m.stamp > stamp {
                continue;
            }
            if self.live(m) {
                found.push(m);
            }
            stack.extend([2 * i + 1, 2 * i + 2]);
        }
        found.sort_unstable_by_key(|m| (m.stamp, m.seq));
        found.into_iter().map(|m| &m.key)
    }

    /// Entries in stamp order, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.ordered().into_iter().map(|(k, s)| (k, &s.value))
    }

    /// Values in no particular order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.values_mut().map(|s| &mut s.value)
    }

    /// Entries in (stamp, sequence) order.
    fn ordered(&self) -> Vec<(&K, &Slot<V>)> {
        let mut v: Vec<(&K, &Slot<V>)> = self.entries.iter().collect();
        v.sort_unstable_by_key(|(_, s)| (s.stamp, s.seq));
        v
    }

    /// Whether heap element `m` is the current position of its key.
    fn live(&self, m: &Mark<K>) -> bool {
        self.entries.get(&m.key).is_some_and(|s| s.seq == m.seq)
    }

    /// The heap element at `old` (stamp, sequence) just went stale: rebuilds the heap when
    /// stale elements pile up, else drops stale ones from the top if it was the top (the
    /// top was live before, so otherwise it still is: no lookup needed).
    fn left_behind(&mut self, old: (i64, u64)) {
        if self.heap.len() > 2 * self.entries.len() + HEAP_SLACK {
            self.heap = self.entries.iter().map(|(k, s)| Mark { stamp: s.stamp, seq: s.seq, key: k.clone() }).collect();
            for i in (0..self.heap.len() / 2).rev() {
                self.sift_down(i);
            }
        } else if self.heap.first().is_some_and(|m| (m.stamp, m.seq) == old) {
            self.pop_top();
            self.settle();
        }
    }

    /// Drops stale elements from the top.
    fn settle(&mut self) {
        while self.heap.first().is_some_and(|m| !self.live(m)) {
            self.pop_top();
        }
    }

    fn push(&mut self, m: Mark<K>) {
        self.heap.push(m);
        let mut i = self.heap.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.heap[i].before(&self.heap[parent]) {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    fn pop_top(&mut self) -> Option<Mark<K>> {
        if self.heap.is_empty() {
            return None;
        }
        let top = self.heap.swap_remove(0);
        self.sift_down(0);
        Some(top)
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < n && self.heap[l].before(&self.heap[least]) {
                least = l;
            }
            if r < n && self.heap[r].before(&self.heap[least]) {
                least = r;
            }
            if least == i {
                return;
            }
            self.heap.swap(i, least);
            i = least;
        }
    }
}

#[derive(Serialize)]
struct MapOut<'a, K, V> {
    cap: usize,
    evicted: u64,
    entries: Vec<(&'a K, &'a V, i64)>,
}

#[derive(Deserialize)]
struct MapIn<K, V> {
    cap: usize,
    evicted: u64,
    entries: Vec<(K, V, i64)>,
}

impl<K: Serialize + Hash + Eq + Clone, V: Serialize> Serialize for BoundedMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = self.ordered().into_iter().map(|(k, slot)| (k, &slot.value, slot.stamp)).collect();
        MapOut { cap: self.cap, evicted: self.evicted, entries }.serialize(s)
    }
}

impl<'de, K: DeserializeOwned + Hash + Eq + Clone, V: DeserializeOwned> Deserialize<'de> for BoundedMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = MapIn::<K, V>::deserialize(d)?;
        let mut map = BoundedMap::new(m.cap);
        map.evicted = m.evicted;
        for (k, v, stamp) in m.entries {
            // A persisted map larger than its cap loses its oldest entries, counted.
            map.insert(k, v, stamp);
        }
        Ok(map)
    }
}

/// Pushes `item` onto `v` unless present; when `v` holds `cap` items already, counts a drop.
pub(crate) fn push_capped<T: PartialEq>(v: &mut Vec<T>, item: T, cap: usize, dropped: &mut u64) -> bool {
    if v.contains(&item) {
        return false;
    }
    if v.len() >= cap {
        *dropped += 1;
        return false;
    }
    v.push(item);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_evicts_smallest_stamp_and_counts() {
        let mut m = BoundedMap::new(2);
        assert!(m.insert("a", 1, 10).is_none());
        assert!(m.insert("b", 2, 5).is_none());
        m.touch(&"b", 20);
        let ev = m.insert("c", 3, 30);
        assert_eq!(ev, Some(("a", 1)));
        assert_eq!(m.evicted(), 1);
        assert_eq!(m.len(), 2);
        assert_eq!(m.oldest(), Some((&"b", 20)));
        // Replacing an existing key never evicts.
        assert!(m.insert("b", 9, 40).is_none());
        assert_eq!(m.get(&"b"), Some(&9));
        assert_eq!(m.keys_up_to(30).collect::<Vec<_>>(), vec![&"c"]);
    }

    #[test]
    fn bounded_map_round_trips_through_json_in_order() {
        let mut m = BoundedMap::new(3);
        m.insert("x".to_string(), 1u32, 3);
        m.insert("y".to_string(), 2u32, 1);
        let json = serde_json::to_string(&m).unwrap();
        let back: BoundedMap<String, u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>(),
            vec![("y".to_string(), 2), ("x".to_string(), 1)]
        );
    }

    /// The heap with lazy deletion against the obvious model (a list kept in (stamp,
    /// insertion-or-touch sequence) order): same order, same evictions, same answers, over
    /// random inserts, touches (stamps up and down), removals, pops and cap changes; and
    /// the heap stays within its bound.
    #[test]
    fn bounded_map_matches_a_sorted_model_and_stays_bounded() {
        for seed in 0..20u64 {
            let mut r = SplitMix64::new(seed);
            let cap = 1 + r.below(12);
            let mut m: BoundedMap<u32, u64> = BoundedMap::new(cap);
            // (key, value, stamp, seq)
            let mut model: Vec<(u32, u64, i64, u64)> = Vec::new();
            let mut model_cap = cap;
            let (mut seq, mut evicted) = (0u64, 0u64);
            let sort = |v: &mut Vec<(u32, u64, i64, u64)>| v.sort_by_key(|e| (e.2, e.3));
            for step in 0..3000u64 {
                let k = r.below(24) as u32;
                let stamp = r.below(60) as i64;
                match r.below(10) {
                    0..=3 => {
                        let got = m.insert(k, step, stamp);
                        let want = if let Some(e) = model.iter_mut().find(|e| e.0 == k) {
                            e.1 = step;
                            if e.2 != stamp {
                                seq += 1;
                                e.2 = stamp;
                                e.3 = seq;
                            }
                            None
                        } else {
                            let ev = (model.len() >= model_cap).then(|| {
                                evicted += 1;
                                let (k, v, ..) = model.remove(0);
                                (k, v)
                            });
                            seq += 1;
                            model.push((k, step, stamp, seq));
                            ev
                        };
                        assert_eq!(got, want, "seed {seed} step {step}");
                    }
                    4..=6 => {
                        m.touch(&k, stamp);
                        if let Some(e) = model.iter_mut().find(|e| e.0 == k)
                            && e.2 != stamp
                        {
                            seq += 1;
                            e.2 = stamp;
                            e.3 = seq;
                        }
                    }
                    7 => {
                        let want = model.iter().position(|e| e.0 == k).map(|i| model.remove(i).1);
                        assert_eq!(m.remove(&k), want);
                    }
                    8 => {
                        let want = (!model.is_empty()).then(|| model.remove(0)).map(|(k, v, s, _)| (k, v, s));
                        assert_eq!(m.pop_oldest(), want);
                    }
                    _ => {
                        if step % 97 == 0 {
                            model_cap = 1 + r.below(12);
                            let got = m.set_cap(model_cap);
                            let mut want = Vec::new();
                            while model.len() > model_cap {
                                evicted += 1;
                                let (k, v, ..) = model.remove(0);
                                want.push((k, v));
                            }
                            assert_eq!(got, want);
                        }
                    }
                }
                sort(&mut model);
                assert_eq!(m.len(), model.len());
                assert_eq!(m.evicted(), evicted);
                assert_eq!(m.oldest(), model.first().map(|e| (&e.0, e.2)));
                assert_eq!(
                    m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
                    model.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>()
                );
                let up_to = r.below(60) as i64;
                assert_eq!(
                    m.keys_up_to(up_to).copied().collect::<Vec<_>>(),
                    model.iter().filter(|e| e.2 <= up_to).map(|e| e.0).collect::<Vec<_>>()
                );
                assert!(m.heap.len() <= 2 * m.len() + HEAP_SLACK + 1, "heap {} for {}", m.heap.len(), m.len());
            }
        }
    }

    #[test]
    fn keyed_hashers_differ_between_maps() {
        // Keys come from the process's random keys, fresh per map: no fixed, guessable
        // order that crafted keys could collide in.
        let (a, b) = (Keyed::default(), Keyed::default());
        assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
        assert_eq!(a.hash_one(42u64), a.hash_one(42u64));
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let mut a = IdGen::new(7);
        let mut b = IdGen::new(7);
        let (x, y) = (a.next(1_700_000_000_000), a.next(1_700_000_000_000));
        assert_ne!(x, y);
        assert_eq!(x, b.next(1_700_000_000_000));
        assert_eq!(x.get_version_num(), 7);
    }

    #[test]
    fn rng_is_seeded_and_uniformish() {
        let mut r = SplitMix64::new(1);
        let mean = (0..10_000).map(|_| r.next_f64()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert!((0..1000).all(|_| r.below(7) < 7));
        assert_eq!(SplitMix64::new(3).next_u64(), SplitMix64::new(3).next_u64());
    }
}
