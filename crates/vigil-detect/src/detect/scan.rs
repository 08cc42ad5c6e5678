//! port_scan: many destination ports probed from one source on one destination
//! (vertical), many hosts probed on one port by one source without answering (a host
//! sweep: masscan, zmap, `nmap -sn` or `-p22` over a subnet), and stealth flag scans
//! (NULL, FIN, XMAS, SYN+FIN).
//!
//! Probes are connection openings only: TCP SYN without ACK, the stealth flag
//! combinations, and UDP datagrams from a high source port (so servers answering from a
//! well-known port to many client ports are not scanners). A busy server's SYN-ACKs never
//! count, and clients opening many connections to one service touch one port. Traceroute's
//! UDP range (33434-33534) is ignored.
//!
//! Distinct ports are counted exactly: a (source, destination, port) table remembers in
//! which window each port was counted, so a port probed twice counts once. A TCP port that
//! answers the probe with a SYN-ACK is taken back out of the count: a scan mostly meets
//! closed (RST) or filtered (silent) ports, while a client opening connections to many
//! ports that accept them (FTP passive data connections, a monitoring system checking a
//! host's services) is not scanning.
//!
//! **Host sweeps** count, per (source, TCP port), per (source, ICMP echo) and per (source,
//! ARP request: `nmap -sn`, arp-scan and netdiscover on a LAN), the distinct destinations
//! probed in the window *minus those that answered* (a SYN-ACK, an echo reply, an ARP
//! reply), the rule Zeek's address-scan detection follows with failed connections: a
//! client that opens connections to many web servers gets answers and never adds up, a
//! sweep of a subnet mostly hits nothing or closed ports (a RST is a refusal, not an
//! answer). Like the SYN-flood answer ratio, this needs both directions in the capture.

use std::net::IpAddr;

use serde_json::json;
use vigil_decode::hint::{FlowTuple, IPPROTO_TCP};
use vigil_decode::{Arp, MacAddr, TcpFlags, Transport};
use vigil_model::{Alert, Category};

use crate::config::{PortScanConfig, nanos};
use crate::ctx::{Pkt, roll, sample_push, secs};
use crate::emit::{Draft, Emitter, Key};
use crate::net::is_group;
use crate::table::{Hasher, Table};

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PairKey {
    src: IpAddr,
    dst: IpAddr,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PortKey {
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    proto: u8,
}

/// What one (source, destination, port, protocol) probe was counted for.
#[derive(Clone, Copy)]
struct ProbeMark {
    /// The pair window it counted in as a distinct port (`i64::MIN`: none).
    pair_win: i64,
    /// The sweep window it counted in as a distinct host (`i64::MIN`: none).
    sweep_win: i64,
    /// The port answered (SYN-ACK) within that pair window.
    pair_answered: bool,
    /// The destination answered within that sweep window.
    sweep_answered: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SweepKey {
    src: IpAddr,
    /// The TCP port, or 0 for ICMP echo and ARP.
    port: u16,
    /// 6 TCP, 1 ICMP echo, [`PROTO_ARP`].
    proto: u8,
}

/// The `proto` of ARP probes in the probe and sweep tables (not an IP protocol number
/// vigil counts otherwise).
const PROTO_ARP: u8 = 0;

/// Targets kept as examples in a sweep alert.
const SWEEP_SAMPLE: usize = 5;

#[derive(Clone, Copy)]
struct SweepState {
    win_start: i64,
    hosts: u32,
    answered: u32,
    fired: bool,
    nsample: u8,
    sample: [Option<IpAddr>; SWEEP_SAMPLE],
    mac: Option<MacAddr>,
}

#[derive(Clone, Copy)]
struct ScanState {
    win_start: i64,
    ports: u32,
    /// Of `ports`, TCP ports that answered with a SYN-ACK.
    answered: u32,
    tcp: u32,
    udp: u32,
    stealth: u32,
    kinds: u8,
    fired_ports: bool,
    fired_stealth: bool,
    nsample: u8,
    sample: [u16; 10],
    mac: Option<MacAddr>,
}

const NULL: u8 = 1;
const FIN: u8 = 2;
const XMAS: u8 = 4;
const SYN_FIN: u8 = 8;

fn kind_names(kinds: u8) -> Vec<&'static str> {
    [(NULL, "null"), (FIN, "fin"), (XMAS, "xmas"), (SYN_FIN, "syn_fin")]
        .iter()
        .filter(|(b, _)| kinds & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

pub(crate) struct PortScan {
    distinct: u32,
    stealth: u32,
    /// Unanswered distinct hosts that make a sweep (0: off).
    hosts: u32,
    window: i64,
    pairs: Table<PairKey, ScanState>,
    ports: Table<PortKey, ProbeMark>,
    sweeps: Table<SweepKey, SweepState>,
    /// Hashes of the next packet's entries ([`PortScan::prefetch`]).
    ahead: Option<[u64; 3]>,
}

impl PortScan {
    pub(crate) fn new(c: &PortScanConfig, pair_budget: u64, port_budget: u64, sweep_budget: u64, h: &Hasher) -> Self {
        PortScan {
            distinct: c.distinct_ports,
            stealth: c.stealth_probes,
            hosts: c.distinct_hosts,
            window: nanos(c.window_secs),
            pairs: Table::with_budget(pair_budget, h),
            ports: Table::with_budget(port_budget, h),
            sweeps: Table::with_budget(sweep_budget, h),
            ahead: None,
        }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.pairs.mem_bytes() + self.ports.mem_bytes() + self.sweeps.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.pairs.evictions() + self.ports.evictions() + self.sweeps.evictions()
    }

    /// Starts warming what a TCP SYN coming next will touch (its pair, probe and sweep
    /// entries, or the entries an insertion would evict), when the tables outgrew the
    /// cache: under a flood of spoofed SYNs every one of them is a miss.
    pub(crate) fn prefetch(&mut self, t: &FlowTuple) {
        self.ahead = None;
        if t.protocol != IPPROTO_TCP || !TcpFlags(u16::from(t.tcp_flags)).is_syn_only() {
            return;
        }
        let (src, dst, port) = (t.src, t.dst, t.dst_port);
        self.ahead = Some([
            self.pairs.prefetch_key(&PairKey { src, dst }),
            self.ports.prefetch_key(&PortKey { src, dst, port, proto: 6 }),
            self.sweeps.prefetch_key(&SweepKey { src, port, proto: 6 }),
        ]);
    }

    /// Whether [`PortScan::prefetch`] pays (the tables outgrew the cache).
    pub(crate) fn wants_prefetch(&self) -> bool {
        self.pairs.worth_prefetching() || self.ports.worth_prefetching()
    }

    /// Second step of [`PortScan::prefetch`].
    pub(crate) fn warm(&mut self) {
        if let Some([pair, probe, sweep]) = self.ahead.take() {
            self.pairs.warm_key(pair);
            self.ports.warm_key(probe);
            self.sweeps.warm_key(sweep);
        }
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        if self.hosts > 0
            && let Some(arp) = k.p.arp()
        {
            return self.on_arp(k, arp, em, out);
        }
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        let (port, proto, stealth) = match &k.p.transport {
            Transport::Tcp(t) if t.flags.is_syn_ack() => {
                return self.answered(dst, src, t.src_port, 6);
            }
            Transport::Icmpv4(i) | Transport::Icmpv6(i) if self.hosts > 0 => {
                if i.is_echo_reply() {
                    self.answered(dst, src, 0, 1);
                } else if i.is_echo_request() && !is_group(dst) && src != dst {
                    let (mark, _) =
                        self.ports.get_or_insert_with(PortKey { src, dst, port: 0, proto: 1 }, ProbeMark::new);
                    let hit = sweep_count(&mut self.sweeps, mark, k, src, dst, 0, 1, self.window, self.hosts);
                    if let Some((sw, unanswered)) = hit {
                        self.fire_sweep(k, src, 0, 1, sw, unanswered, em, out);
                    }
                }
                return;
            }
            Transport::Tcp(t) => {
                let c = t.flags.0 & TcpFlags::CLASSIC;
                let kind = if c == TcpFlags::SYN {
                    0
                } else if c == 0 {
                    NULL
                } else if c == TcpFlags::FIN {
                    FIN
                } else if c & (TcpFlags::SYN | TcpFlags::FIN) == TcpFlags::SYN | TcpFlags::FIN {
                    SYN_FIN
                } else if c & (TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG)
                    == TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG
                    && c & (TcpFlags::ACK | TcpFlags::RST) == 0
                {
                    XMAS
                } else {
                    return;
                };
                (t.dst_port, 6u8, kind)
            }
            Transport::Udp(u) if u.src_port >= 1024 && !(33434..=33534).contains(&u.dst_port) => (u.dst_port, 17, 0),
            _ => return,
        };
        // A packet from an address to itself on a wire is forged (a LAND attack, which
        // packet_anomaly reports); on the loopback interface it is a process on the host
        // probing the host's own services (`nmap 127.0.0.1`, malware enumerating local
        // ports), which is a scan like any other.
        if is_group(dst) || (src == dst && !src.is_loopback()) {
            return;
        }
        let now = k.now();
        let window = self.window;
        let (st, _) = self.pairs.get_or_insert_with(PairKey { src, dst }, || ScanState {
            win_start: now,
            ports: 0,
            answered: 0,
            tcp: 0,
            udp: 0,
            stealth: 0,
            kinds: 0,
            fired_ports: false,
            fired_stealth: false,
            nsample: 0,
            sample: [0; 10],
            mac: None,
        });
        if roll(&mut st.win_start, now, window) {
            st.ports = 0;
            st.answered = 0;
            st.tcp = 0;
            st.udp = 0;
            st.stealth = 0;
            st.kinds = 0;
            st.fired_ports = false;
            st.fired_stealth = false;
            st.nsample = 0;
        }
        st.mac = k.src_mac.or(st.mac);
        let win_start = st.win_start;
        let (mark, _) = self.ports.get_or_insert_with(PortKey { src, dst, port, proto }, ProbeMark::new);
        // A TCP SYN is also a probe for the (source, port) host sweep, counted on the same mark.
        let swept = if proto == 6 && stealth == 0 && self.hosts > 0 {
            sweep_count(&mut self.sweeps, mark, k, src, dst, port, proto, window, self.hosts)
        } else {
            None
        };
        if mark.pair_win != win_start {
            mark.pair_win = win_start;
            mark.pair_answered = false;
            st.ports += 1;
            if proto == 6 {
                st.tcp += 1;
            } else {
                st.udp += 1;
            }
            sample_push(&mut st.sample, &mut st.nsample, port);
        }
        if stealth != 0 {
            st.stealth += 1;
            st.kinds |= stealth;
        }
        let st = *st;
        let unanswered = st.ports - st.answered;
        if !st.fired_ports && unanswered >= self.distinct {
            if let Some(s) = self.pairs.get_mut(&PairKey { src, dst }) {
                s.fired_ports = true;
            }
            let scan_type = match (st.tcp > 0, st.udp > 0) {
                (true, false) => "tcp",
                (false, true) => "udp",
                _ => "tcp+udp",
            };
            em.fire(k.at, Key::new(Category::PortScan, Some(src), Some(dst), 0), out, || {
                Draft::new(format!(
                    "{src} probed {} distinct ports on {dst} within {} s ({scan_type} scan)",
                    st.ports,
                    secs(window)
                ))
                .mac(st.mac)
                .ev("distinct_ports", st.ports)
                .ev("answered_ports", st.answered)
                .ev("threshold", self.distinct)
                .ev("window_secs", secs(window))
                .ev("scan_type", scan_type)
                .ev("sample_ports", json!(st.sample[..usize::from(st.nsample)]))
            });
        }
        if !st.fired_stealth && st.stealth >= self.stealth {
            if let Some(s) = self.pairs.get_mut(&PairKey { src, dst }) {
                s.fired_stealth = true;
            }
            let kinds = kind_names(st.kinds);
            em.fire(k.at, Key::new(Category::PortScan, Some(src), Some(dst), 1), out, || {
                Draft::new(format!(
                    "{src} sent {} stealth-scan probes ({}) to {dst} within {} s",
                    st.stealth,
                    kinds.join(", "),
                    secs(window)
                ))
                .mac(st.mac)
                .ev("stealth_probes", st.stealth)
                .ev("threshold", self.stealth)
                .ev("window_secs", secs(window))
                .ev("scan_type", "stealth")
                .ev("flag_patterns", json!(kinds))
                .ev("sample_ports", json!(st.sample[..usize::from(st.nsample)]))
            });
        }
        if let Some((sw, unanswered)) = swept {
            self.fire_sweep(k, src, port, proto, sw, unanswered, em, out);
        }
    }

    /// ARP requests are sweep probes of their target address, replies answer them.
    /// Address-conflict probes (sender 0.0.0.0) and announcements (gratuitous) are neither.
    fn on_arp(&mut self, k: &Pkt, arp: &Arp, em: &mut Emitter, out: &mut Vec<Alert>) {
        if arp.ether_type != 0x0806 || arp.sender_ip.is_unspecified() || arp.is_gratuitous() {
            return;
        }
        let (src, dst) = (IpAddr::V4(arp.sender_ip), IpAddr::V4(arp.target_ip));
        match arp.op {
            Arp::OP_REQUEST if !is_group(dst) => {
                let key = PortKey { src, dst, port: 0, proto: PROTO_ARP };
                let (mark, _) = self.ports.get_or_insert_with(key, ProbeMark::new);
                let hit = sweep_count(&mut self.sweeps, mark, k, src, dst, 0, PROTO_ARP, self.window, self.hosts);
                if let Some((sw, unanswered)) = hit {
                    self.fire_sweep(k, src, 0, PROTO_ARP, sw, unanswered, em, out);
                }
            }
            Arp::OP_REPLY => self.answered(dst, src, 0, PROTO_ARP),
            _ => {}
        }
    }

    /// Emits the host-sweep alert for `src` on `port` (0 and protocol 1: ICMP echo).
    #[allow(clippy::too_many_arguments)]
    fn fire_sweep(
        &self,
        k: &Pkt,
        src: IpAddr,
        port: u16,
        proto: u8,
        sw: SweepState,
        unanswered: u32,
        em: &mut Emitter,
        out: &mut Vec<Alert>,
    ) {
        let window = self.window;
        let (what, service) = match proto {
            1 => ("ICMP echo".to_owned(), "icmp_echo".to_owned()),
            PROTO_ARP => ("ARP".to_owned(), "arp".to_owned()),
            _ => (format!("TCP port {port}"), format!("tcp/{port}")),
        };
        let key = Key::new(Category::PortScan, Some(src), None, 1 << 32 | u64::from(proto) << 16 | u64::from(port));
        em.fire(k.at, key, out, || {
            let targets: Vec<String> = sw.sample.iter().flatten().map(|a| a.to_string()).collect();
            Draft::new(format!(
                "{src} swept {} hosts on {what} within {} s, {unanswered} without an answer (host sweep)",
                sw.hosts,
                secs(window)
            ))
            .ports(None, (proto == 6).then_some(port))
            .mac(sw.mac)
            .ev("distinct_hosts", sw.hosts)
            .ev("unanswered_hosts", unanswered)
            .ev("threshold", self.hosts)
            .ev("window_secs", secs(window))
            .ev("scan_type", "host_sweep")
            .ev("service", service)
            .ev("sample_targets", json!(targets))
        });
    }

    /// A SYN-ACK or echo reply from `from` to `to`: `from` answered `to`'s probe on `port`
    /// (0 with protocol 1: an echo), in the windows the probe was counted in.
    fn answered(&mut self, to: IpAddr, from: IpAddr, port: u16, proto: u8) {
        let Some(mark) = self.ports.get_mut(&PortKey { src: to, dst: from, port, proto }) else { return };
        if proto == 6
            && !mark.pair_answered
            && let Some(st) = self.pairs.get_mut(&PairKey { src: to, dst: from })
            && st.win_start == mark.pair_win
        {
            mark.pair_answered = true;
            st.answered += 1;
        }
        if !mark.sweep_answered
            && let Some(sw) = self.sweeps.get_mut(&SweepKey { src: to, port, proto })
            && sw.win_start == mark.sweep_win
        {
            mark.sweep_answered = true;
            sw.answered += 1;
        }
    }
}

impl ProbeMark {
    fn new() -> Self {
        ProbeMark { pair_win: i64::MIN, sweep_win: i64::MIN, pair_answered: false, sweep_answered: false }
    }
}

/// Counts a probe of `dst` (its mark in the port table) for the (source, port, protocol)
/// sweep; returns the sweep and its unanswered count when it just crossed `threshold`.
#[allow(clippy::too_many_arguments)]
fn sweep_count(
    sweeps: &mut Table<SweepKey, SweepState>,
    mark: &mut ProbeMark,
    k: &Pkt,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    proto: u8,
    window: i64,
    threshold: u32,
) -> Option<(SweepState, u32)> {
    let now = k.now();
    let fresh = || SweepState {
        win_start: now,
        hosts: 0,
        answered: 0,
        fired: false,
        nsample: 0,
        sample: [None; SWEEP_SAMPLE],
        mac: None,
    };
    let (sw, _) = sweeps.get_or_insert_with(SweepKey { src, port, proto }, fresh);
    if roll(&mut sw.win_start, now, window) {
        *sw = fresh();
    }
    sw.mac = k.src_mac.or(sw.mac);
    if mark.sweep_win == sw.win_start {
        return None;
    }
    mark.sweep_win = sw.win_start;
    mark.sweep_answered = false;
    sw.hosts += 1;
    if let Some(slot) = sw.sample.get_mut(usize::from(sw.nsample)) {
        *slot = Some(dst);
        sw.nsample += 1;
    }
    let unanswered = sw.hosts - sw.answered;
    if sw.fired || unanswered < threshold {
        return None;
    }
    sw.fired = true;
    Some((*sw, unanswered))
}
