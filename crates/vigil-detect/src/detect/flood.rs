//! syn_flood and icmp_flood.
//!
//! **syn_flood** is counted twice, independently:
//! - per source, on (source, destination, destination port): one host hammering one
//!   service. Keyed on the service so a SYN *scan* (one SYN per port) is not a flood.
//! - per destination address, whoever sends: the victim of a flood from spoofed sources.
//!   This table is keyed by the victim only, so it holds one entry however many sources
//!   there are; the number of distinct sources is estimated in 64 bytes (a linear counter)
//!   and must reach `min_sources`. Under a flood from millions of spoofed sources the
//!   per-source table churns (and counts evictions) while the victim's entry stays hot at
//!   the front of its table.
//!
//! Both need the SYNs to be mostly unanswered: SYN-ACKs coming back are counted against
//! the same entries, and a busy server that answers its clients is not flooded.
//!
//! **icmp_flood**: echo requests from one source in the window.

use std::net::IpAddr;

use serde_json::json;
use vigil_decode::hint::{FlowTuple, IPPROTO_TCP};
use vigil_decode::{MacAddr, TcpFlags, Transport};
use vigil_model::{Alert, Category};

use crate::config::{IcmpFloodConfig, SynFloodConfig, nanos};
use crate::ctx::{Pkt, roll, secs};
use crate::emit::{Draft, Emitter, Key};
use crate::net::{LinearCounter, ip_hash, is_group};
use crate::table::{Hasher, Table};

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SrcKey {
    src: IpAddr,
    dst: IpAddr,
    port: u16,
}

#[derive(Clone, Copy)]
struct SrcFlood {
    win_start: i64,
    syns: u32,
    answered: u32,
    fired: bool,
    mac: Option<MacAddr>,
}

#[derive(Clone, Copy)]
struct DstFlood {
    win_start: i64,
    syns: u32,
    answered: u32,
    fired: bool,
    port: u16,
    multi_port: bool,
    sources: LinearCounter,
}

pub(crate) struct SynFlood {
    c: SynFloodConfig,
    window: i64,
    by_src: Table<SrcKey, SrcFlood>,
    by_dst: Table<IpAddr, DstFlood>,
    /// Hash of the next SYN's per-source entry ([`SynFlood::prefetch`]).
    ahead: Option<u64>,
}

fn mostly_unanswered(syns: u32, answered: u32, ratio: f64) -> bool {
    f64::from(answered) < ratio * f64::from(syns)
}

impl SynFlood {
    pub(crate) fn new(c: &SynFloodConfig, src_budget: u64, dst_budget: u64, h: &Hasher) -> Self {
        SynFlood {
            c: c.clone(),
            window: nanos(c.window_secs),
            by_src: Table::with_budget(src_budget, h),
            by_dst: Table::with_budget(dst_budget, h),
            ahead: None,
        }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.by_src.mem_bytes() + self.by_dst.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.by_src.evictions() + self.by_dst.evictions()
    }

    /// Starts warming the per-source entry of a TCP SYN coming next, when the table
    /// outgrew the cache (see [`crate::detect::scan::PortScan::prefetch`]).
    pub(crate) fn prefetch(&mut self, t: &FlowTuple) {
        let syn_only = TcpFlags(u16::from(t.tcp_flags)).is_syn_only();
        self.ahead = (t.protocol == IPPROTO_TCP && syn_only)
            .then(|| self.by_src.prefetch_key(&SrcKey { src: t.src, dst: t.dst, port: t.dst_port }));
    }

    /// Whether [`SynFlood::prefetch`] pays (the per-source table outgrew the cache).
    pub(crate) fn wants_prefetch(&self) -> bool {
        self.by_src.worth_prefetching()
    }

    /// Second step of [`SynFlood::prefetch`].
    pub(crate) fn warm(&mut self) {
        if let Some(hash) = self.ahead.take() {
            self.by_src.warm_key(hash);
        }
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        let Transport::Tcp(t) = &k.p.transport else { return };
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        let now = k.now();
        let window = self.window;
        if t.flags.is_syn_ack() {
            // An answer: count it against the flood entries of the SYNs it answers.
            if let Some(e) = self.by_src.get_mut(&SrcKey { src: dst, dst: src, port: t.src_port })
                && now >= e.win_start
                && now - e.win_start < window
            {
                e.answered += 1;
            }
            if let Some(e) = self.by_dst.get_mut(&src)
                && now >= e.win_start
                && now - e.win_start < window
            {
                e.answered += 1;
            }
            return;
        }
        if !t.flags.is_syn_only() || is_group(dst) {
            return;
        }
        let port = t.dst_port;
        // Per source.
        let (e, _) = self.by_src.get_or_insert_with(SrcKey { src, dst, port }, || SrcFlood {
            win_start: now,
            syns: 0,
            answered: 0,
            fired: false,
            mac: None,
        });
        if roll(&mut e.win_start, now, window) {
            *e = SrcFlood { win_start: now, syns: 0, answered: 0, fired: false, mac: None };
        }
        e.syns += 1;
        e.mac = k.src_mac.or(e.mac);
        if !e.fired && e.syns >= self.c.threshold && mostly_unanswered(e.syns, e.answered, self.c.max_answered_ratio) {
            e.fired = true;
            let e = *e;
            em.fire(k.at, Key::new(Category::SynFlood, Some(src), Some(dst), u64::from(port)), out, || {
                Draft::new(format!(
                    "{src} sent {} SYN packets to {dst} port {port} within {} s ({} answered)",
                    e.syns,
                    secs(window),
                    e.answered
                ))
                .ports(None, Some(port))
                .mac(e.mac)
                .ev("syn_packets", e.syns)
                .ev("answered", e.answered)
                .ev("threshold", self.c.threshold)
                .ev("window_secs", secs(window))
                .ev("scope", "per_source")
            });
        }
        // Per destination, whoever the sources are.
        let (d, _) = self.by_dst.get_or_insert_with(dst, || DstFlood {
            win_start: now,
            syns: 0,
            answered: 0,
            fired: false,
            port,
            multi_port: false,
            sources: LinearCounter::default(),
        });
        if roll(&mut d.win_start, now, window) {
            *d = DstFlood {
                win_start: now,
                syns: 0,
                answered: 0,
                fired: false,
                port,
                multi_port: false,
                sources: LinearCounter::default(),
            };
        }
        d.syns += 1;
        d.multi_port |= d.port != port;
        d.sources.insert(ip_hash(src));
        if !d.fired && d.syns >= self.c.threshold && mostly_unanswered(d.syns, d.answered, self.c.max_answered_ratio) {
            let sources = d.sources.estimate();
            if sources >= self.c.min_sources {
                d.fired = true;
                let d = *d;
                let dport = (!d.multi_port).then_some(d.port);
                em.fire(k.at, Key::new(Category::SynFlood, None, Some(dst), 0), out, || {
                    let target = match dport {
                        Some(p) => format!("{dst} port {p}"),
                        None => format!("{dst} (several ports)"),
                    };
                    Draft::new(format!(
                        "{target} received {} SYN packets from about {sources} sources within {} s ({} answered)",
                        d.syns,
                        secs(window),
                        d.answered
                    ))
                    .ports(None, dport)
                    .ev("syn_packets", d.syns)
                    .ev("answered", d.answered)
                    .ev("distinct_sources_estimate", sources)
                    .ev("threshold", self.c.threshold)
                    .ev("window_secs", secs(window))
                    .ev("scope", "per_destination")
                    .ev("sample_source", src.to_string())
                });
            }
        }
    }
}

#[derive(Clone, Copy)]
struct IcmpState {
    win_start: i64,
    count: u32,
    fired: bool,
    dst: IpAddr,
    multi_dst: bool,
    mac: Option<MacAddr>,
}

pub(crate) struct IcmpFlood {
    threshold: u32,
    window: i64,
    by_src: Table<IpAddr, IcmpState>,
}

impl IcmpFlood {
    pub(crate) fn new(c: &IcmpFloodConfig, budget: u64, h: &Hasher) -> Self {
        IcmpFlood { threshold: c.threshold, window: nanos(c.window_secs), by_src: Table::with_budget(budget, h) }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.by_src.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.by_src.evictions()
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        let (Transport::Icmpv4(i) | Transport::Icmpv6(i)) = &k.p.transport else { return };
        if !i.is_echo_request() {
            return;
        }
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        let now = k.now();
        let window = self.window;
        let (e, _) = self.by_src.get_or_insert_with(src, || IcmpState {
            win_start: now,
            count: 0,
            fired: false,
            dst,
            multi_dst: false,
            mac: None,
        });
        if roll(&mut e.win_start, now, window) {
            *e = IcmpState { win_start: now, count: 0, fired: false, dst, multi_dst: false, mac: None };
        }
        e.count += 1;
        e.multi_dst |= e.dst != dst;
        e.mac = k.src_mac.or(e.mac);
        if !e.fired && e.count >= self.threshold {
            e.fired = true;
            let e = *e;
            let target = (!e.multi_dst).then_some(e.dst);
            em.fire(k.at, Key::new(Category::IcmpFlood, Some(src), target, 0), out, || {
                let to = match target {
                    Some(t) => t.to_string(),
                    None => "several destinations".into(),
                };
                Draft::new(format!("{src} sent {} ICMP echo requests to {to} within {} s", e.count, secs(window)))
                    .mac(e.mac)
                    .ev("echo_requests", e.count)
                    .ev("threshold", self.threshold)
                    .ev("window_secs", secs(window))
                    .ev("payload_bytes", json!(i.payload.len()))
            });
        }
    }
}
