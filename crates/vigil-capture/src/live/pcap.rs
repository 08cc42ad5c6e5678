//! The libpcap source (`libpcap` feature): the same [`PacketSource`] through the `pcap`
//! crate, for other OSes and for BPF filters.

use std::time::Duration;

use super::{
    Capability, Direction, InterfaceSpec, LiveConfig, LiveError, Next, PacketSource, SourceStats, setcap_command,
};
use crate::RawPacket;

/// A libpcap capture handle on one interface (or `any`).
pub struct PcapSource {
    cap: pcap::Capture<pcap::Active>,
    name: String,
    link_type: u32,
    packets: u64,
    bytes: u64,
    last: SourceStats,
}

impl std::fmt::Debug for PcapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSource").field("name", &self.name).field("link_type", &self.link_type).finish()
    }
}

impl PcapSource {
    /// Opens `iface` with libpcap in immediate mode, with the ring size of `cfg` as its
    /// buffer and `cfg.filter` applied.
    pub fn open(iface: &InterfaceSpec, cfg: &LiveConfig) -> Result<PcapSource, LiveError> {
        let name = iface.name().to_owned();
        let err = |op: &'static str, e: pcap::Error| map_err(&name, op, e);
        let buffer = u64::from(cfg.block_size).saturating_mul(u64::from(cfg.block_count));
        let timeout_ms = i32::try_from(cfg.block_timeout.as_millis()).unwrap_or(i32::MAX).max(1);
        let mut cap = pcap::Capture::from_device(name.as_str())
            .map_err(|e| err("pcap_create", e))?
            .promisc(cfg.promiscuous && *iface != InterfaceSpec::Any)
            .snaplen(262_144)
            .immediate_mode(true)
            .timeout(timeout_ms)
            .buffer_size(i32::try_from(buffer).unwrap_or(i32::MAX))
            .open()
            .map_err(|e| err("pcap_activate", e))?;
        if let Some(f) = &cfg.filter {
            cap.filter(f, true).map_err(|e| LiveError::Config { field: "capture.filter", message: e.to_string() })?;
        }
        let link_type = u32::try_from(cap.get_datalink().0).unwrap_or(0);
        Ok(PcapSource { cap, name, link_type, packets: 0, bytes: 0, last: SourceStats::default() })
    }
}

fn map_err(interface: &str, op: &'static str, e: pcap::Error) -> LiveError {
    let text = e.to_string();
    if text.contains("permission") || text.contains("Operation not permitted") {
        return LiveError::Permission {
            interface: interface.to_owned(),
            capability: Capability::NetRaw,
            op,
            fix: setcap_command(),
        };
    }
    if text.contains("No such device") || text.contains("doesn't exist") {
        return LiveError::NoSuchInterface { interface: interface.to_owned() };
    }
    LiveError::Os { interface: interface.to_owned(), op, source: std::io::Error::other(text) }
}

impl PacketSource for PcapSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// libpcap's own read timeout (`capture.block_timeout`) bounds the wait; `timeout` is
    /// not used.
    fn next_packet(&mut self, _timeout: Duration) -> Result<Next<'_>, LiveError> {
        let PcapSource { cap, name, link_type, packets, bytes, .. } = self;
        match cap.next_packet() {
            Ok(p) => {
                let ts = &p.header.ts;
                // time_t and suseconds_t are i32 on some targets.
                #[allow(clippy::useless_conversion)]
                let ts_nanos = i64::from(ts.tv_sec).saturating_mul(1_000_000_000) + i64::from(ts.tv_usec) * 1000;
                *packets += 1;
                *bytes += p.data.len() as u64;
                let packet =
                    RawPacket { ts_nanos, link_type: *link_type, orig_len: p.header.len, interface: 0, data: p.data };
                Ok(Next::Packet { packet, direction: Direction::Unknown })
            }
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle),
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(e) => Err(map_err(name, "pcap_next_ex", e)),
        }
    }

    fn stats(&mut self) -> SourceStats {
        if let Ok(s) = self.cap.stats() {
            self.last.kernel_packets = u64::from(s.received).saturating_add(u64::from(s.dropped));
            self.last.kernel_drops = u64::from(s.dropped).saturating_add(u64::from(s.if_dropped));
        }
        SourceStats { packets: self.packets, bytes: self.bytes, ..self.last }
    }
}
