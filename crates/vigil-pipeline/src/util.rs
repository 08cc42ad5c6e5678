//! Small building blocks: time conversion, a seeded RNG, deterministic ids, a bounded map.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

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

/// A hash map with a hard capacity and an order stamp per entry (usually a time in unix
/// ms). When full, inserting a new key evicts the entry with the smallest stamp and counts
/// the eviction. Every map the pipeline keys by data an attacker can choose (addresses,
/// metric names) is one of these.
#[derive(Debug, Clone)]
pub struct BoundedMap<K, V> {
    cap: usize,
    entries: HashMap<K, Slot<V>>,
    order: BTreeMap<(i64, u64), K>,
    seq: u64,
    evicted: u64,
}

#[derive(Debug, Clone)]
struct Slot<V> {
    value: V,
    stamp: i64,
    seq: u64,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// An empty map holding at most `cap` entries (at least 1).
    pub fn new(cap: usize) -> Self {
        Self { cap: cap.max(1), entries: HashMap::new(), order: BTreeMap::new(), seq: 0, evicted: 0 }
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
            self.order.remove(&(slot.stamp, slot.seq));
            self.seq += 1;
            slot.stamp = stamp;
            slot.seq = self.seq;
            self.order.insert((stamp, self.seq), k.clone());
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
        self.order.insert((stamp, self.seq), k.clone());
        self.entries.insert(k, Slot { value, stamp, seq: self.seq });
        evicted
    }

    /// Removes `k`.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        let slot = self.entries.remove(k)?;
        self.order.remove(&(slot.stamp, slot.seq));
        Some(slot.value)
    }

    /// The key with the smallest stamp, and that stamp.
    pub fn oldest(&self) -> Option<(&K, i64)> {
        self.order.iter().next().map(|((stamp, _), k)| (k, *stamp))
    }

    /// Removes and returns the entry with the smallest stamp (not counted as an eviction).
    pub fn pop_oldest(&mut self) -> Option<(K, V, i64)> {
        let ((stamp, _), k) = self.order.pop_first()?;
        let slot = self.entries.remove(&k)?;
        Some((k, slot.value, stamp))
    }

    /// Keys whose stamp is at most `stamp`, oldest first.
    pub fn keys_up_to(&self, stamp: i64) -> impl Iterator<Item = &K> {
        self.order.range(..=(stamp, u64::MAX)).map(|(_, k)| k)
    }

    /// Entries in stamp order, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.order.values().filter_map(|k| self.entries.get(k).map(|s| (k, &s.value)))
    }

    /// Values in no particular order, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.values_mut().map(|s| &mut s.value)
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
        let entries =
            self.order.values().filter_map(|k| self.entries.get(k).map(|slot| (k, &slot.value, slot.stamp))).collect();
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
