//! data_exfiltration (volume): application bytes an internal host sends to external
//! addresses, as the client of the exchange, in the window.
//!
//! Only payload bytes count (a download's ACKs carry none), only internal → external, and
//! only when the internal side is the client: its port is higher than the remote one (an
//! ephemeral port talking to a service port). An internal web server answering external
//! clients is serving, not leaking. The busiest destination of the window is tracked with
//! a four-slot heavy-hitter summary and named as the target.

use std::net::IpAddr;

use serde_json::json;
use vigil_decode::{MacAddr, Network, Transport};
use vigil_model::{Alert, Category};

use crate::config::{ExfilConfig, nanos};
use crate::ctx::{Pkt, roll, secs};
use crate::emit::{Draft, Emitter, Key};
use crate::net::{Networks, is_group};
use crate::table::{Hasher, Table};

#[derive(Clone, Copy)]
struct ExState {
    win_start: i64,
    bytes: u64,
    packets: u32,
    fired: bool,
    top: [(IpAddr, u64); 4],
    mac: Option<MacAddr>,
}

const NONE_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl ExState {
    fn fresh(now: i64) -> Self {
        ExState { win_start: now, bytes: 0, packets: 0, fired: false, top: [(NONE_IP, 0); 4], mac: None }
    }

    /// Misra-Gries with four counters.
    fn count(&mut self, dst: IpAddr, n: u64) {
        if let Some(slot) = self.top.iter_mut().find(|(ip, c)| *ip == dst && *c > 0) {
            slot.1 += n;
            return;
        }
        if let Some(slot) = self.top.iter_mut().find(|(_, c)| *c == 0) {
            *slot = (dst, n);
            return;
        }
        let min = self.top.iter().map(|(_, c)| *c).min().unwrap_or(0).min(n);
        for slot in &mut self.top {
            slot.1 -= min;
        }
        if n > min
            && let Some(slot) = self.top.iter_mut().find(|(_, c)| *c == 0)
        {
            *slot = (dst, n - min);
        }
    }

    fn heaviest(&self) -> Option<IpAddr> {
        // Ties resolve to the lowest slot index: deterministic.
        let mut best: Option<(IpAddr, u64)> = None;
        for &(ip, c) in &self.top {
            if c > 0 && best.is_none_or(|(_, b)| c > b) {
                best = Some((ip, c));
            }
        }
        best.map(|(ip, _)| ip)
    }
}

pub(crate) struct Exfil {
    bytes: u64,
    window: i64,
    internal: Networks,
    table: Table<IpAddr, ExState>,
}

/// Payload bytes as the headers announce them (the capture may be cut by the snap length).
fn payload_len(k: &Pkt) -> (u64, u16, u16) {
    let ip_payload = match &k.p.network {
        Network::Ipv4(ip) => ip.declared_payload_len(),
        Network::Ipv6(ip) => ip.declared_payload_len(),
        _ => return (0, 0, 0),
    };
    match &k.p.transport {
        Transport::Tcp(t) => {
            let hl = usize::from(t.data_offset) * 4;
            (ip_payload.saturating_sub(hl) as u64, t.src_port, t.dst_port)
        }
        Transport::Udp(u) => (ip_payload.saturating_sub(8) as u64, u.src_port, u.dst_port),
        _ => (0, 0, 0),
    }
}

impl Exfil {
    pub(crate) fn new(c: &ExfilConfig, internal: Networks, budget: u64, h: &Hasher) -> Self {
        Exfil { bytes: c.bytes, window: nanos(c.window_secs), internal, table: Table::with_budget(budget, h) }
    }

    pub(crate) fn mem_bytes(&self) -> u64 {
        self.table.mem_bytes()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.table.evictions()
    }

    pub(crate) fn on_packet(&mut self, k: &Pkt, em: &mut Emitter, out: &mut Vec<Alert>) {
        let (n, sport, dport) = payload_len(k);
        if n == 0 || sport <= dport {
            return;
        }
        let (Some(src), Some(dst)) = (k.src, k.dst) else { return };
        if is_group(dst) || !self.internal.contains(src) || self.internal.contains(dst) {
            return;
        }
        let now = k.now();
        let window = self.window;
        let (st, _) = self.table.get_or_insert_with(src, || ExState::fresh(now));
        if roll(&mut st.win_start, now, window) {
            *st = ExState::fresh(now);
        }
        st.bytes += n;
        st.packets += 1;
        st.count(dst, n);
        st.mac = k.src_mac.or(st.mac);
        if !st.fired && st.bytes >= self.bytes {
            st.fired = true;
            let st = *st;
            let target = st.heaviest();
            let limit = self.bytes;
            em.fire(k.at, Key::new(Category::DataExfiltration, Some(src), target, 0), out, || {
                let to = target.map_or_else(|| "external hosts".to_owned(), |t| format!("external hosts (mostly {t})"));
                let top: Vec<String> = st.top.iter().filter(|(_, c)| *c > 0).map(|(ip, _)| ip.to_string()).collect();
                Draft::new(format!("{src} sent {} bytes to {to} within {} s", st.bytes, secs(window)))
                    .mac(st.mac)
                    .ev("channel", "volume")
                    .ev("bytes", st.bytes)
                    .ev("packets", st.packets)
                    .ev("threshold_bytes", limit)
                    .ev("window_secs", secs(window))
                    .ev("top_destinations", json!(top))
            });
        }
    }
}
