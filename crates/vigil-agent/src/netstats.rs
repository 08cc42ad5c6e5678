//! Network statistics of the captured traffic, accumulated per interval: packets and
//! bytes in and out, the busiest addresses and the protocol mix.
//!
//! Fed by the detection thread one packet at a time, drained by the collector once per
//! interval. The address table is bounded ([`MAX_TALKER_KEYS`]): once full, new addresses
//! of the interval are counted in the totals but not ranked.
//!
//! The detection engine decodes every packet already, so the statistics do not decode it
//! a second time: [`peek`] reads only the link header, an IPv4/IPv6/ARP header and the
//! addresses, which is all they need. Anything it is not sure of (IPv6 extension headers,
//! LLC/SNAP, deep VLAN stacks, Wi-Fi, BSD loopback) goes to the full decoder, so the
//! counts are those the decoder would give (a test checks this on mutated frames).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};
use vigil_capture::live::Direction;
use vigil_decode::{LinkType, Network};
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

    fn of(protocol: usize) -> Summary {
        Summary { protocol, src: None, dst: None }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The summary of the common frames, read from the headers alone; `None` when the frame
/// needs the full decoder to say (see the module comment).
fn peek(link_type: u32, frame: &[u8]) -> Option<Summary> {
    const NETLINK: u16 = 824;
    let (mut ether_type, mut rest) = match link_type {
        1 => (be16(frame, 12)?, frame.get(14..)?),
        113 if frame.len() >= 16 && be16(frame, 2)? != NETLINK => (be16(frame, 14)?, frame.get(16..)?),
        276 if frame.len() >= 20 && be16(frame, 8)? != NETLINK => (be16(frame, 0)?, frame.get(20..)?),
        12 | 14 | 101 => match frame.first()? >> 4 {
            4 => (0x0800, frame),
            6 => (0x86dd, frame),
            _ => return None,
        },
        228 => (0x0800, frame),
        229 => (0x86dd, frame),
        _ => return None,
    };
    // Up to two VLAN tags (802.1Q, QinQ); deeper stacks are left to the decoder.
    for _ in 0..2 {
        if !matches!(ether_type, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
            break;
        }
        ether_type = be16(rest, 2)?;
        rest = rest.get(4..)?;
    }
    match ether_type {
        0x0800 => Some(ipv4(rest)),
        0x86dd => ipv6(rest),
        0x0806 | 0x8035 => Some(arp(rest)),
        // More tags, or an 802.3 length (LLC/SNAP may carry an EtherType).
        0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0..=0x05ff => None,
        _ => Some(Summary::OTHER),
    }
}

/// An IPv4 header as the decoder accepts it; anything it would call truncated or
/// malformed counts as `other`, without addresses.
fn ipv4(d: &[u8]) -> Summary {
    let Some(h) = d.first_chunk::<20>() else { return Summary::OTHER };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if h[0] >> 4 != 4 || ihl < 20 || (total_len != 0 && total_len < ihl) || d.len() < ihl {
        return Summary::OTHER;
    }
    let protocol = match h[9] {
        6 => TCP,
        17 => UDP,
        1 => ICMP,
        _ => IPV4_OTHER,
    };
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    Summary { protocol, src: Some(src.into()), dst: Some(dst.into()) }
}

/// An IPv6 header without extension headers (with them, the upper protocol is found by
/// the decoder's bounded walk).
fn ipv6(d: &[u8]) -> Option<Summary> {
    let Some(h) = d.first_chunk::<40>() else { return Some(Summary::OTHER) };
    if h[0] >> 4 != 6 {
        return Some(Summary::OTHER);
    }
    let protocol = match h[6] {
        0 | 43 | 44 | 51 | 60 | 135 | 139 | 140 | 253 | 254 => return None,
        6 => TCP,
        17 => UDP,
        58 => ICMPV6,
        _ => IPV6_OTHER,
    };
    let addr = |at: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&h[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Some(Summary { protocol, src: Some(addr(8)), dst: Some(addr(24)) })
}

/// ARP: counted as `arp` when it is IPv4 over Ethernet-sized addresses, as the decoder
/// reads it; its addresses are not talkers.
fn arp(d: &[u8]) -> Summary {
    match d.first_chunk::<8>() {
        Some(h) if h[4] == 6 && h[5] == 4 && u16::from_be_bytes([h[2], h[3]]) == 0x0800 && d.len() >= 28 => {
            Summary::of(ARP)
        }
        _ => Summary::OTHER,
    }
}

/// The summary through the full decoder: the reference [`peek`] agrees with.
fn decoded(link_type: u32, frame: &[u8]) -> Summary {
    let Ok(p) = vigil_decode::decode(LinkType(link_type), frame) else { return Summary::OTHER };
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

    /// Counts one packet (`len` = its length on the wire).
    pub(crate) fn observe(&mut self, link_type: u32, data: &[u8], len: u32, direction: Direction) {
        let len = u64::from(len);
        if direction == Direction::Out {
            self.packets_out += 1;
            self.bytes_out += len;
        } else {
            self.packets_in += 1;
            self.bytes_in += len;
        }
        let s = peek(link_type, data).unwrap_or_else(|| decoded(link_type, data));
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

    #[test]
    fn rates_talkers_and_protocols() {
        let mut acc = NetAccumulator::default();
        let udp = eth_ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, 8);
        let icmp = eth_ipv4([10, 0, 0, 3], [10, 0, 0, 2], 1, 8);
        for _ in 0..10 {
            acc.observe(1, &udp, 1000, Direction::In);
        }
        acc.observe(1, &icmp, 100, Direction::Out);
        acc.observe(1, &[0u8; 3], 3, Direction::Unknown);
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

    /// Frames of every shape `peek` reads, and some it leaves to the decoder: (link type, frame).
    fn corpus() -> Vec<(u32, Vec<u8>)> {
        let ip4 = |proto: u8| eth_ipv4([192, 0, 2, 1], [198, 51, 100, 7], proto, 28)[14..].to_vec();
        let ip6 = |nh: u8| {
            let mut v = vec![0u8; 40 + 16];
            v[0] = 0x60;
            v[4..6].copy_from_slice(&16u16.to_be_bytes());
            v[6] = nh;
            v[7] = 64;
            v[8] = 0x20;
            v[9] = 0x01;
            v[23] = 1;
            v[24] = 0xfe;
            v[25] = 0x80;
            v[39] = 2;
            v[40] = 17; // an extension header's next header, if nh is one
            v
        };
        let arp = {
            let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
            a.extend_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
            a
        };
        let eth = |et: u16, payload: &[u8]| {
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(payload);
            f
        };
        let vlan = |outer: u16, inner_et: u16, payload: &[u8]| {
            let mut v = vec![0, 5];
            v.extend_from_slice(&inner_et.to_be_bytes());
            v.extend_from_slice(payload);
            eth(outer, &v)
        };
        let sll = |proto: u16, arphrd: u16, payload: &[u8]| {
            let mut f = vec![0, 0];
            f.extend_from_slice(&arphrd.to_be_bytes());
            f.extend_from_slice(&[0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(&proto.to_be_bytes());
            f.extend_from_slice(payload);
            f
        };
        let sll2 = |proto: u16, arphrd: u16, payload: &[u8]| {
            let mut f = proto.to_be_bytes().to_vec();
            f.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            f.extend_from_slice(&arphrd.to_be_bytes());
            f.extend_from_slice(&[0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(payload);
            f
        };
        let mut c = Vec::new();
        for proto in [6, 17, 1, 47] {
            c.push((1, eth(0x0800, &ip4(proto))));
            c.push((1, vlan(0x8100, 0x0800, &ip4(proto))));
            c.push((1, vlan(0x88a8, 0x8100, &vlan(0x8100, 0x0800, &ip4(proto))[12..])));
            c.push((113, sll(0x0800, 1, &ip4(proto))));
            c.push((276, sll2(0x0800, 1, &ip4(proto))));
            c.push((101, ip4(proto)));
            c.push((228, ip4(proto)));
            c.push((0, [2u8, 0, 0, 0].into_iter().chain(ip4(proto)).collect()));
        }
        for nh in [6, 17, 58, 59, 0, 60, 44] {
            c.push((1, eth(0x86dd, &ip6(nh))));
            c.push((12, ip6(nh)));
            c.push((229, ip6(nh)));
            c.push((276, sll2(0x86dd, 1, &ip6(nh))));
        }
        c.push((1, eth(0x0806, &arp)));
        c.push((113, sll(0x0806, 824, &arp)));
        c.push((1, eth(0x88cc, &[0; 40])));
        c.push((1, eth(40, &[0xaa, 0xaa, 3, 0, 0, 0, 8, 0].into_iter().chain(ip4(6)).collect::<Vec<u8>>())));
        c.push((127, vec![0; 40]));
        c.push((9999, eth(0x0800, &ip4(6))));
        c
    }

    #[test]
    fn the_header_peek_agrees_with_the_decoder() {
        let corpus = corpus();
        // The fast path is taken for the common frames, and right on them.
        let common =
            [(1, eth_ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, 20)), (1, eth_ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, 8))];
        for (lt, f) in &common {
            assert_eq!(peek(*lt, f), Some(decoded(*lt, f)));
        }
        assert_eq!(peek(1, &common[0].1).map(|s| s.protocol), Some(TCP));
        // Mutated and cut frames: whenever peek answers, it answers as the decoder does.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut answered, mut deferred) = (0u32, 0u32);
        for _ in 0..200_000 {
            let (lt, base) = &corpus[(next() % corpus.len() as u64) as usize];
            let mut f = base.clone();
            for _ in 0..(next() % 4) {
                let at = (next() % f.len().min(64) as u64) as usize;
                f[at] = match next() % 4 {
                    0 => 0,
                    1 => 0xff,
                    2 => f[at] ^ (1 << (next() % 8)),
                    _ => next() as u8,
                };
            }
            if next() % 3 == 0 {
                f.truncate((next() % (f.len() as u64 + 1)) as usize);
            }
            match peek(*lt, &f) {
                Some(s) => {
                    assert_eq!(s, decoded(*lt, &f), "link type {lt}, frame {f:02x?}");
                    answered += 1;
                }
                None => deferred += 1,
            }
        }
        assert!(answered > 100_000 && deferred > 10_000, "answered {answered}, deferred {deferred}");
    }

    #[test]
    fn the_address_table_is_bounded() {
        let mut acc = NetAccumulator::default();
        for i in 0..(MAX_TALKER_KEYS as u32 + 100) {
            let b = i.to_be_bytes();
            let f = eth_ipv4([10, b[1], b[2], b[3]], [10, 255, 255, 255], 6, 20);
            acc.observe(1, &f, 60, Direction::In);
        }
        assert_eq!(acc.talkers.len(), MAX_TALKER_KEYS);
        assert!(acc.untracked >= 100);
        let n = acc.take(Utc::now(), 1000, 1000, CaptureCounters::default());
        assert_eq!(n.top_talkers.len(), MAX_TOP_TALKERS);
        assert_eq!(n.packets_in_per_sec, MAX_TALKER_KEYS as f64 + 100.0);
    }
}
