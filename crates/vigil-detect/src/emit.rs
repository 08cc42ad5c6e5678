//! Turning detector findings into alerts: the cooldown that keeps one alert per
//! (category, source, target) per period, deterministic ids, and the §4 fields.
//!
//! **Dedup rule.** The first finding for a key is emitted at once. Findings for the same key
//! within `cooldown_secs` of the last emitted alert are counted, not emitted. The first
//! finding after the cooldown is emitted again and its evidence carries
//! `suppressed_since_last` (findings swallowed in between) and `occurrences` (all findings
//! for the key so far). Nothing is emitted at the end of a capture for suppressed findings:
//! an alert always describes a moment when the condition held.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vigil_decode::MacAddr;
use vigil_model::{Alert, Category, Severity};

use crate::table::{Hasher, Table};

/// When a finding happened: the engine clock (monotonic), the packet's own timestamp and
/// its index in the stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    /// Engine clock, nanoseconds (never goes backwards by less than the resync limit).
    pub now: i64,
    /// The packet's own timestamp, nanoseconds since the epoch (becomes the alert time).
    pub ts: i64,
    /// Index of the packet in the stream (0-based).
    pub seq: u64,
}

/// The dedup key: category, source, target and a detector-chosen discriminator (a port,
/// a protocol, a name hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub cat: Category,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub extra: u64,
}

impl Key {
    pub(crate) fn new(cat: Category, src: Option<IpAddr>, dst: Option<IpAddr>, extra: u64) -> Self {
        Key { cat, src, dst, extra }
    }
}

/// What a detector says about a finding; built only when an alert is actually emitted.
pub(crate) struct Draft {
    pub severity: Option<Severity>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub src_mac: Option<MacAddr>,
    pub summary: String,
    pub evidence: Map<String, Value>,
}

impl Draft {
    pub(crate) fn new(summary: String) -> Self {
        Draft { severity: None, src_port: None, dst_port: None, src_mac: None, summary, evidence: Map::new() }
    }
    pub(crate) fn ports(mut self, src: Option<u16>, dst: Option<u16>) -> Self {
        self.src_port = src;
        self.dst_port = dst;
        self
    }
    pub(crate) fn mac(mut self, mac: Option<MacAddr>) -> Self {
        self.src_mac = mac.filter(|m| !m.is_zero());
        self
    }
    pub(crate) fn severity(mut self, s: Severity) -> Self {
        self.severity = Some(s);
        self
    }
    pub(crate) fn ev(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.evidence.insert(k.to_owned(), v.into());
        self
    }
}

#[derive(Clone, Copy)]
struct Dedup {
    last_emit: i64,
    suppressed: u64,
    occurrences: u64,
}

/// Applies the cooldown and builds alerts.
pub(crate) struct Emitter {
    cooldown: i64,
    table: Table<Key, Dedup>,
}

impl Emitter {
    pub(crate) fn new(cooldown: i64, budget: u64, hasher: &Hasher) -> Self {
        Emitter { cooldown, table: Table::with_budget(budget, hasher) }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.table.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    /// True when a finding for `key` would be emitted now.
    #[cfg(test)]
    pub(crate) fn due(&self, key: &Key, now: i64) -> bool {
        match self.table.peek(key) {
            None => true,
            Some(d) => now < d.last_emit || now.saturating_sub(d.last_emit) >= self.cooldown,
        }
    }

    /// Records a finding; emits an alert into `out` unless the key is in cooldown. Returns
    /// true when an alert was emitted.
    pub(crate) fn fire(&mut self, at: At, key: Key, out: &mut Vec<Alert>, build: impl FnOnce() -> Draft) -> bool {
        let cooldown = self.cooldown;
        let (d, new) =
            self.table.get_or_insert_with(key, || Dedup { last_emit: i64::MIN, suppressed: 0, occurrences: 0 });
        d.occurrences += 1;
        // `now < last_emit` only after the clock was resynchronised backwards: emit then.
        let due = new || at.now < d.last_emit || at.now.saturating_sub(d.last_emit) >= cooldown;
        if !due {
            d.suppressed += 1;
            return false;
        }
        let suppressed = std::mem::take(&mut d.suppressed);
        d.last_emit = at.now;
        let occurrences = d.occurrences;
        let mut draft = build();
        draft.evidence.insert("occurrences".into(), occurrences.into());
        draft.evidence.insert("suppressed_since_last".into(), suppressed.into());
        out.push(make_alert(at, key, draft));
        true
    }
}

/// A UUIDv7-shaped id: the millisecond time of the packet, then 74 bits of SHA-256 over
/// (category, source, target, discriminator, ports, packet index). Same input, same id.
fn alert_id(at: At, key: &Key, src_port: Option<u16>, dst_port: Option<u16>) -> Uuid {
    let mut h = Sha256::new();
    h.update(key.cat.as_str().as_bytes());
    for ip in [key.src, key.dst] {
        match ip {
            Some(IpAddr::V4(a)) => h.update(a.octets()),
            Some(IpAddr::V6(a)) => h.update(a.octets()),
            None => h.update([0xff]),
        }
    }
    h.update(key.extra.to_be_bytes());
    h.update(src_port.map_or(-1, i32::from).to_be_bytes());
    h.update(dst_port.map_or(-1, i32::from).to_be_bytes());
    h.update(at.seq.to_be_bytes());
    h.update(at.ts.to_be_bytes());
    let digest = h.finalize();
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(at.ts.div_euclid(1_000_000)).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid()
}

fn make_alert(at: At, key: Key, d: Draft) -> Alert {
    Alert {
        id: alert_id(at, &key, d.src_port, d.dst_port),
        timestamp: DateTime::<Utc>::from_timestamp_nanos(at.ts),
        category: key.cat,
        severity: d.severity.unwrap_or_else(|| key.cat.default_severity()),
        agent: None,
        src_ip: key.src,
        dst_ip: key.dst,
        src_port: d.src_port,
        dst_port: d.dst_port,
        src_mac: d.src_mac.map(|m| m.to_string()),
        summary: d.summary,
        evidence: Value::Object(d.evidence),
        mitre: key.cat.mitre().map(str::to_owned),
    }
}

/// The canonical order of alerts raised by one packet (and the tie-break of the merge in
/// `vigil analyze`): category, then addresses, ports and id.
pub fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    (a.category, a.src_ip, a.dst_ip, a.src_port, a.dst_port, a.id)
        .cmp(&(b.category, b.src_ip, b.dst_ip, b.src_port, b.dst_port, b.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, seq: u64) -> At {
        At { now: secs * 1_000_000_000, ts: secs * 1_000_000_000, seq }
    }

    #[test]
    fn cooldown_suppresses_then_reports_the_count() {
        let h = Hasher::with_seeds(1, 2, 3, 4);
        let mut em = Emitter::new(60_000_000_000, 1 << 20, &h);
        let key = Key::new(Category::PortScan, "10.0.0.1".parse().ok(), "10.0.0.2".parse().ok(), 0);
        let mut out = Vec::new();
        assert!(em.fire(at(0, 1), key, &mut out, || Draft::new("x".into())));
        for s in 1..10 {
            assert!(!em.fire(at(s, s as u64 + 1), key, &mut out, || Draft::new("x".into())));
        }
        assert!(!em.due(&key, 59_000_000_000));
        assert!(em.fire(at(61, 100), key, &mut out, || Draft::new("y".into())));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].evidence["suppressed_since_last"], 9);
        assert_eq!(out[1].evidence["occurrences"], 11);
        assert_eq!(out[0].evidence["occurrences"], 1);
        assert_eq!(out[0].mitre.as_deref(), Some("T1046"));
        // A different target is a different key.
        let other = Key { dst: "10.0.0.3".parse().ok(), ..key };
        assert!(em.fire(at(62, 101), other, &mut out, || Draft::new("z".into())));
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let key = Key::new(Category::SynFlood, None, "10.0.0.2".parse().ok(), 0);
        let a = alert_id(at(5, 7), &key, None, Some(80));
        assert_eq!(a, alert_id(at(5, 7), &key, None, Some(80)));
        assert_ne!(a, alert_id(at(5, 8), &key, None, Some(80)));
        assert_eq!(a.get_version_num(), 7);
        // Pre-epoch timestamps do not panic.
        let _ = alert_id(At { now: -5, ts: -5_000_000_000, seq: 0 }, &key, None, None);
    }
}
