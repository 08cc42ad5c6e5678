//! Network statistics of the captured traffic, accumulated per interval: packets and
//! bytes in and out, the busiest addresses and the protocol mix.
//!
//! Fed by the detection thread one packet at a time, drained by the collector once per
//! interval. The address table is bounded ([`MAX_TALKER_KEYS`]): once full, new addresses
//! of the interval are counted in the totals but not ranked.
//!
//! The detection engine decodes every packet already: the statistics read the packet it
//! decoded ([`vigil_detect::Engine::process_and_decode`]) instead of decoding it again.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use vigil_capture::live::Direction;
use vigil_decode::{Network, Packet};
use vigil_model::{CaptureCounters, NetStats, ProtocolCount, Talker};

/// Most distinct addresses tracked per interval.
pub const MAX_TALKER_KEYS: usize = 4096;
/// Most talkers reported per interval.
pub const MAX_TOP_TALKERS: usize = 100;

const PROTOCOLS: [&str; 8] = ["tcp", "udp", "icmp", "icmpv6", "arp", "ipv4_other", "ipv6_other", "other"];
const TCP: usize = 0;
const UDP: usize = 1;
const ICMP: usize = 2;
const ICMPV6: usize = 3;
const ARP: usize = 4;
const IPV4_OTHER: usize = 5;
const IPV6_OTHER: usize = 6;
const OTHER: usize = 7;

/// The talker table's hasher: keyed at random per agent, since addresses are chosen by
/// whoever sends packets (aHash rather than SipHash: this map is hit twice per packet).
type Hasher = ahash::RandomState;

/// One interval's counts.
#[derive(Debug)]
pub(crate) struct NetAccumulator {
    packets_in: u64,
    packets_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    talkers: HashMap<IpAddr, (u64, u64), Hasher>,
    /// Addresses not tracked because the table was full.
    untracked: u64,
    protocols: [(u64, u64); PROTOCOLS.len()],
}

impl Default for NetAccumulator {
    fn default() -> NetAccumulator {
        let k: [u64; 4] = rand::random();
        NetAccumulator::with_hasher(Hasher::with_seeds(k[0], k[1], k[2], k[3]))
    }
}

/// What the statistics need of one packet: its protocol class (an index into
/// `PROTOCOLS`) and its IP addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Summary {
    protocol: usize,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
}

impl Summary {
    const OTHER: Summary = Summary { protocol: OTHER, src: None, dst: None };
}

/// What the statistics count of a decoded packet (`None`: its link type is unsupported).
fn summary(p: Option<&Packet<'_>>) -> Summary {
    let Some(p) = p else { return Summary::OTHER };
    let protocol = match &p.network {
        Network::Arp(_) => ARP,
        Network::Ipv4(ip) => match ip.protocol {
            6 => TCP,
            17 => UDP,
            1 => ICMP,
            _ => IPV4_OTHER,
        },
        Network::Ipv6(ip) => match ip.protocol {
            6 => TCP,
            17 => UDP,
            58 => ICMPV6,
            _ => IPV6_OTHER,
        },
        _ => OTHER,
    };
    Summary { protocol, src: p.src_ip(), dst: p.dst_ip() }
}

impl NetAccumulator {
    fn with_hasher(hasher: Hasher) -> NetAccumulator {
        NetAccumulator {
            packets_in: 0,
            packets_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            talkers: HashMap::with_hasher(hasher),
            untracked: 0,
            protocols: [(0, 0); PROTOCOLS.len()],
        }
    }

    /// Counts one packet as the engine decoded it (`len` = its length on the wire).
    pub(crate) fn observe(&mut self, packet: Option<&Packet<'_>>, len: u32, direction: Direction) {
        let len = u64::from(len);
        if direction == Direction::Out {
            self.packets_out += 1;
            self.bytes_out += len;
        } else {
            self.packets_in += 1;
            self.bytes_in += len;
        }
        let s = summary(packet);
        self.count_protocol(s.protocol, len);
        for ip in [s.src, s.dst].into_iter().flatten() {
            self.talk(ip, len);
        }
    }

    fn count_protocol(&mut self, i: usize, len: u64) {
        if let Some(c) = self.protocols.get_mut(i) {
            c.0 += 1;
            c.1 += len;
        }
    }

    fn talk(&mut self, ip: IpAddr, len: u64) {
        let full = self.talkers.len() >= MAX_TALKER_KEYS;
        match self.talkers.get_mut(&ip) {
            Some(t) => {
                t.0 += 1;
                t.1 += len;
            }
            None if full => self.untracked += 1,
            None => {
                self.talkers.insert(ip, (1, len));
            }
        }
    }

    /// The interval's statistics (rates over `interval_ms`), and a fresh start.
    pub(crate) fn take(
        &mut self,
        now: DateTime<Utc>,
        interval_ms: u64,
        top: usize,
        capture: CaptureCounters,
    ) -> NetStats {
        // The next interval keeps the hasher's keys (the table is emptied, not its keys).
        let fresh = NetAccumulator::with_hasher(self.talkers.hasher().clone());
        let acc = std::mem::replace(self, fresh);
        let secs = (interval_ms.max(1) as f64) / 1000.0;
        let mut talkers: Vec<Talker> =
            acc.talkers.into_iter().map(|(ip, (packets, bytes))| Talker { ip, packets, bytes }).collect();
        // Most bytes first; ties by address so the order is stable.
        talkers.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.ip.cmp(&b.ip)));
        talkers.truncate(top.min(MAX_TOP_TALKERS));
        let mut protocols: Vec<ProtocolCount> = PROTOCOLS
            .iter()
            .zip(acc.protocols)
            .filter(|(_, (p, _))| *p > 0)
            .map(|(name, (packets, bytes))| ProtocolCount { protocol: (*name).into(), packets, bytes })
            .collect();
        protocols.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.protocol.cmp(&b.protocol)));
        NetStats {
            id: uuid::Uuid::now_v7(),
            timestamp: now,
            interval_ms,
            packets_in_per_sec: acc.packets_in as f64 / secs,
            packets_out_per_sec: acc.packets_out as f64 / secs,
            bytes_in_per_sec: acc.bytes_in as f64 / secs,
            bytes_out_per_sec: acc.bytes_out as f64 / secs,
            top_talkers: talkers,
            protocols,
            capture,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth_ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + payload];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        f
    }

    /// Decodes `frame` (Ethernet) as the engine would and counts it.
    fn observe(acc: &mut NetAccumulator, frame: &[u8], len: u32, direction: Direction) {
        acc.observe(vigil_decode::decode(vigil_decode::LinkType(1), frame).ok().as_ref(), len, direction);
    }

    #[test]
    fn rates_talkers_and_protocols() {
        let mut acc = NetAccumulator::default();
        let udp = eth_ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, 8);
        let icmp = eth_ipv4([10, 0, 0, 3], [10, 0, 0, 2], 1, 8);
        for _ in 0..10 {
            observe(&mut acc, &udp, 1000, Direction::In);
        }
        observe(&mut acc, &icmp, 100, Direction::Out);
        observe(&mut acc, &[0u8; 3], 3, Direction::Unknown);
        let n = acc.take(Utc::now(), 2000, 2, CaptureCounters::default());
        assert_eq!(n.packets_in_per_sec, 5.5);
        assert_eq!(n.packets_out_per_sec, 0.5);
        assert_eq!(n.bytes_in_per_sec, 5001.5);
        assert_eq!(n.top_talkers.len(), 2);
        assert_eq!(n.top_talkers[0].ip, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(n.top_talkers[0].bytes, 10_100);
        assert_eq!(n.top_talkers[1].ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        let names: Vec<&str> = n.protocols.iter().map(|p| p.protocol.as_str()).collect();
        assert_eq!(names, ["udp", "icmp", "other"]);
        // The next interval starts from zero.
        let m = acc.take(Utc::now(), 1000, 10, CaptureCounters::default());
        assert_eq!(m.packets_in_per_sec, 0.0);
        assert!(m.top_talkers.is_empty() && m.protocols.is_empty());
    }

    #[test]
    fn the_address_table_is_bounded() {
        let mut acc = NetAccumulator::default();
        for i in 0..(MAX_TALKER_KEYS as u32 + 100) {
            let b = i.to_be_bytes();
            let f = eth_ipv4([10, b[1], b[2], b[3]], [10, 255, 255, 255], 6, 20);
            observe(&mut acc, &f, 60, Direction::In);
        }
        assert_eq!(acc.talkers.len(), MAX_TALKER_KEYS);
        assert!(acc.untracked >= 100);
        let n = acc.take(Utc::now(), 1000, 1000, CaptureCounters::default());
        assert_eq!(n.top_talkers.len(), MAX_TOP_TALKERS);
        assert_eq!(n.packets_in_per_sec, MAX_TALKER_KEYS as f64 + 100.0);
    }
}
