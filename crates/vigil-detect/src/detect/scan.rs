//! port_scan: many destination ports probed from one source on one destination, and
//! stealth flag scans (NULL, FIN, XMAS, SYN+FIN).
//!
//! Probes are connection openings only: TCP SYN without ACK, the stealth flag
//! combinations, and UDP datagrams from a high source port (so servers answering from a
//! well-known port to many client ports are not scanners). A busy server's SYN-ACKs never
//! count, and clients opening many connections to one service touch one port. Traceroute's
//! UDP range (33434-33534) is ignored.
//!
//! Distinct ports are counted exactly: a (source, destination, port) table remembers in
//! which window each port was counted, so a port probed twice counts once.

use std::net::IpAddr;

use serde_json::json;
use vigil_decode::{MacAddr, TcpFlags, Transport};
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

#[derive(Clone, Copy)]
struct ScanState {
    win_start: i64,
    ports: u32,
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
    window: i64,
    pairs: Table<PairKey, ScanState>,
    ports: Table<PortKey, i64>,
}

impl PortScan {
    pub(crate) fn new(c: &PortScanConfig, pair_budget: u64, port_budget: u64, h: &Hasher) -> Self {
        PortScan {
            distinct: c.distinct_ports,
            stealth: c.stealth_probes,
            window: nanos(c.window_secs),
            pairs: Table::with_budget(pair_budget, h),
            ports: Table::with_budget(port_budget, h),
        }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.pairs.mem_bytes() + self.ports.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.pairs.evictions() + self.ports.evictions()
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        let (port, proto, stealth) = match &k.p.transport {
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
        if is_group(dst) || src == dst {
            return;
        }
        let now = k.now();
        let window = self.window;
        let (st, _) = self.pairs.get_or_insert_with(PairKey { src, dst }, || ScanState {
            win_start: now,
            ports: 0,
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
        let (counted, _) = self.ports.get_or_insert_with(PortKey { src, dst, port, proto }, || i64::MIN);
        if *counted != win_start {
            *counted = win_start;
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
        if !st.fired_ports && st.ports >= self.distinct {
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
    }
}
