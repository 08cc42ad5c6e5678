//! The AF_PACKET source: a `vigil_afpacket::Ring` per worker, with vigil's errors, link
//! types and timestamps.

use std::time::Duration;

use vigil_afpacket::{KernelStats, PACKET_OUTGOING, Ring, RingConfig, SocketKind};

use super::{
    Capability, Direction, InterfaceSpec, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LiveConfig, LiveError, Next,
    PacketSource, SourceStats, setcap_command,
};
use crate::RawPacket;

/// `ARPHRD_ETHER` and `ARPHRD_LOOPBACK`: interfaces whose frames start with an Ethernet header.
const ETHERNET_LIKE: [u16; 2] = [1, 772];
/// Nominal frame size given to the kernel (frames are variable-sized in TPACKET_V3).
const FRAME_SIZE: u32 = 2048;
/// `ENODEV` on Linux.
const ENODEV: i32 = 19;

/// One capture worker's socket and ring on one interface (or `any`).
#[derive(Debug)]
pub struct AfPacketSource {
    ring: Ring,
    name: String,
    cooked: bool,
    link_type: u32,
    /// Holds a packet when bytes must be added in front (cooked header, VLAN tag);
    /// bounded by the block size.
    scratch: Vec<u8>,
    packets: u64,
    bytes: u64,
    kernel: KernelStats,
}

impl AfPacketSource {
    /// Opens `cfg.workers` sockets on `iface`, joined in one flow-hash fanout group when
    /// there are several, with the interface in promiscuous mode if asked (named
    /// interfaces only).
    pub fn open_group(iface: &InterfaceSpec, cfg: &LiveConfig) -> Result<Vec<AfPacketSource>, LiveError> {
        cfg.validate()?;
        let name = iface.name().to_owned();
        let (ifindex, cooked) = match iface {
            InterfaceSpec::Any => (0, true),
            InterfaceSpec::Named(n) => {
                let idx = vigil_afpacket::interface_index(n).map_err(|e| match e.source.raw_os_error() {
                    Some(ENODEV) => LiveError::NoSuchInterface { interface: n.clone() },
                    _ => os(&name, e),
                })?;
                (idx, !ethernet_like(n))
            }
        };
        let ring_cfg = RingConfig {
            block_size: cfg.block_size,
            block_count: cfg.block_count,
            frame_size: FRAME_SIZE,
            block_timeout_ms: u32::try_from(cfg.block_timeout.as_millis()).unwrap_or(u32::MAX).max(1),
        };
        let kind = if cooked { SocketKind::Cooked } else { SocketKind::Raw };
        let mut rings = Vec::with_capacity(cfg.workers);
        for _ in 0..cfg.workers {
            let ring = Ring::open(ifindex, kind, &ring_cfg).map_err(|e| {
                if e.is_permission() {
                    permission(&name, Capability::NetRaw, e.op)
                } else if e.source.raw_os_error() == Some(ENODEV) {
                    LiveError::NoSuchInterface { interface: name.clone() }
                } else {
                    os(&name, e)
                }
            })?;
            rings.push(ring);
        }
        if cfg.promiscuous
            && ifindex != 0
            && let Some(first) = rings.first()
        {
            first.set_promiscuous(ifindex).map_err(|e| {
                if e.is_permission() { permission(&name, Capability::NetAdmin, e.op) } else { os(&name, e) }
            })?;
        }
        if rings.len() > 1 {
            let mut group = None;
            for r in &rings {
                group = Some(r.join_fanout(group).map_err(|e| os(&name, e))?);
            }
        }
        let link_type = if cooked { LINKTYPE_LINUX_SLL } else { LINKTYPE_ETHERNET };
        Ok(rings
            .into_iter()
            .map(|ring| AfPacketSource {
                ring,
                name: name.clone(),
                cooked,
                link_type,
                scratch: Vec::new(),
                packets: 0,
                bytes: 0,
                kernel: KernelStats::default(),
            })
            .collect())
    }

    /// The link type of the packets handed out (`ETHERNET`, or `LINUX_SLL` for `any` and
    /// interfaces without an Ethernet header).
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// Bytes of ring memory this worker maps.
    pub fn ring_bytes(&self) -> usize {
        self.ring.ring_bytes()
    }
}

impl PacketSource for AfPacketSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_packet(&mut self, timeout: Duration) -> Result<Next<'_>, LiveError> {
        let AfPacketSource { ring, name, cooked, link_type, scratch, packets, bytes, .. } = self;
        let frame = match ring.next_frame(timeout) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Next::Idle),
            Err(e) => return Err(os(name, e)),
        };
        let ts_nanos = i64::from(frame.sec) * 1_000_000_000 + i64::from(frame.nsec);
        let direction = if frame.pkttype == PACKET_OUTGOING { Direction::Out } else { Direction::In };
        let (data, orig_len): (&[u8], u32) = if *cooked {
            scratch.clear();
            scratch.extend_from_slice(&sll_header(
                frame.pkttype,
                frame.hatype,
                &frame.addr[..usize::from(frame.halen)],
                frame.protocol,
            ));
            scratch.extend_from_slice(frame.data);
            (scratch.as_slice(), frame.wire_len.saturating_add(16))
        } else if let (Some(tci), Some((macs, rest))) = (frame.vlan_tci, frame.data.split_at_checked(12)) {
            // The driver stripped the 802.1Q tag into the frame header: put it back, as
            // libpcap does, so the decoder sees the VLAN.
            scratch.clear();
            scratch.extend_from_slice(macs);
            scratch.extend_from_slice(&frame.vlan_tpid.to_be_bytes());
            scratch.extend_from_slice(&tci.to_be_bytes());
            scratch.extend_from_slice(rest);
            (scratch.as_slice(), frame.wire_len.saturating_add(4))
        } else {
            (frame.data, frame.wire_len)
        };
        *packets += 1;
        *bytes += data.len() as u64;
        let packet =
            RawPacket { ts_nanos, link_type: *link_type, orig_len, interface: ifindex_u32(frame.ifindex), data };
        Ok(Next::Packet { packet, direction })
    }

    fn stats(&mut self) -> SourceStats {
        if let Ok(k) = self.ring.stats() {
            self.kernel = k;
        }
        SourceStats {
            packets: self.packets,
            bytes: self.bytes,
            kernel_packets: self.kernel.packets,
            kernel_drops: self.kernel.drops,
            kernel_freezes: self.kernel.freeze_q,
        }
    }
}

fn ifindex_u32(i: i32) -> u32 {
    u32::try_from(i).unwrap_or(0)
}

/// Whether `/sys/class/net/NAME/type` says the interface's frames start with an Ethernet
/// header. Unknown means no: cooked capture works on every interface.
fn ethernet_like(name: &str) -> bool {
    if name.contains('/') || name.starts_with('.') {
        return false;
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/type"))
        .ok()
        .and_then(|t| t.trim().parse::<u16>().ok())
        .is_some_and(|t| ETHERNET_LIKE.contains(&t))
}

/// The 16-byte `LINKTYPE_LINUX_SLL` header: packet type, ARPHRD type, address length,
/// address (8 bytes, zero-padded), protocol; all big-endian.
pub(crate) fn sll_header(pkttype: u8, hatype: u16, addr: &[u8], protocol: u16) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..2].copy_from_slice(&u16::from(pkttype).to_be_bytes());
    h[2..4].copy_from_slice(&hatype.to_be_bytes());
    let n = addr.len().min(8);
    h[4..6].copy_from_slice(&(n as u16).to_be_bytes());
    h[6..6 + n].copy_from_slice(&addr[..n]);
    h[14..16].copy_from_slice(&protocol.to_be_bytes());
    h
}

fn os(interface: &str, e: vigil_afpacket::Error) -> LiveError {
    LiveError::Os { interface: interface.to_owned(), op: e.op, source: e.source }
}

fn permission(interface: &str, capability: Capability, op: &'static str) -> LiveError {
    LiveError::Permission { interface: interface.to_owned(), capability, op, fix: setcap_command() }
}
