//! Layer 4: TCP, UDP, ICMP and ICMPv6 headers, and the flag anomalies.

use crate::anomaly::Anomalies;
use crate::link::be16;
use crate::packet::{Icmp, Packet, Tcp, TcpFlags, Transport, Udp};

/// Decodes the transport header of `protocol`.
///
/// `declared` is the transport length the IP header announces (`None` for a first
/// fragment, whose transport header describes more than this packet holds); `complete`
/// says the whole segment was captured and is not fragmented (so its checksum can be
/// verified); `same_ip` is source address == destination address (for land).
pub(crate) fn decode<'a>(
    protocol: u8,
    data: &'a [u8],
    declared: Option<usize>,
    complete: bool,
    same_ip: bool,
    p: &mut Packet<'a>,
) {
    match protocol {
        6 => tcp(data, declared, complete, same_ip, p),
        17 => udp(data, declared, complete, same_ip, p),
        1 => icmp(protocol, data, complete, false, p),
        58 => icmp(protocol, data, complete, true, p),
        _ => p.transport = Transport::Other { protocol, data },
    }
}

fn cut<'a>(protocol: u8, data: &'a [u8], p: &mut Packet<'a>) {
    p.anomalies.insert(Anomalies::L4_TRUNCATED);
    p.transport = Transport::Truncated { protocol, data };
}

fn tcp<'a>(data: &'a [u8], declared: Option<usize>, complete: bool, same_ip: bool, p: &mut Packet<'a>) {
    let Some((h, after)) = data.split_first_chunk::<20>() else {
        return cut(6, data, p);
    };
    let data_offset = h[12] >> 4;
    let flags = TcpFlags((u16::from(h[12] & 0x0f) << 8) | u16::from(h[13]));
    let hlen = usize::from(data_offset) * 4;
    let (options, payload) = if data_offset < 5 {
        p.anomalies.insert(Anomalies::TCP_BAD_DATA_OFFSET);
        (&[][..], after)
    } else {
        match data.split_at_checked(hlen) {
            Some((hdr, payload)) => (hdr.get(20..).unwrap_or(&[]), payload),
            None => {
                // Beyond what the IP header announces: malformed; beyond only what was
                // captured: truncated.
                if declared.is_some_and(|d| hlen > d) {
                    p.anomalies.insert(Anomalies::TCP_BAD_DATA_OFFSET);
                } else {
                    p.anomalies.insert(Anomalies::L4_TRUNCATED);
                }
                (after, &[][..])
            }
        }
    };
    let f = flags.0;
    const SYN_FIN: u16 = TcpFlags::SYN | TcpFlags::FIN;
    const SYN_RST: u16 = TcpFlags::SYN | TcpFlags::RST;
    const XMAS: u16 = TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG;
    if f & SYN_FIN == SYN_FIN {
        p.anomalies.insert(Anomalies::TCP_SYN_FIN);
    }
    if f & SYN_RST == SYN_RST {
        p.anomalies.insert(Anomalies::TCP_SYN_RST);
    }
    if f & XMAS == XMAS {
        p.anomalies.insert(Anomalies::TCP_XMAS);
    }
    if f & TcpFlags::CLASSIC == 0 {
        p.anomalies.insert(Anomalies::TCP_NULL);
    }
    if f & TcpFlags::RESERVED != 0 {
        p.anomalies.insert(Anomalies::TCP_RESERVED_BITS);
    }
    let src_port = be16(h[0], h[1]);
    let dst_port = be16(h[2], h[3]);
    if same_ip && src_port == dst_port {
        p.anomalies.insert(Anomalies::LAND);
    }
    p.transport = Transport::Tcp(Tcp {
        src_port,
        dst_port,
        seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        flags,
        window: be16(h[14], h[15]),
        checksum: be16(h[16], h[17]),
        urgent: be16(h[18], h[19]),
        data_offset,
        options,
        payload,
    });
    p.l4_segment = data;
    p.l4_complete = complete;
}

fn udp<'a>(data: &'a [u8], declared: Option<usize>, complete: bool, same_ip: bool, p: &mut Packet<'a>) {
    let Some((h, after)) = data.split_first_chunk::<8>() else {
        return cut(17, data, p);
    };
    let length = be16(h[4], h[5]);
    let len = usize::from(length);
    let sane = len >= 8 && declared.is_none_or(|d| len <= d);
    let (segment, payload, complete) = if sane {
        match data.get(..len) {
            Some(seg) => (seg, seg.get(8..).unwrap_or(&[]), complete),
            None => (data, after, false), // cut by the snaplen (or a first fragment)
        }
    } else {
        p.anomalies.insert(Anomalies::UDP_BAD_LENGTH);
        (data, after, false)
    };
    let src_port = be16(h[0], h[1]);
    let dst_port = be16(h[2], h[3]);
    if same_ip && src_port == dst_port {
        p.anomalies.insert(Anomalies::LAND);
    }
    p.transport = Transport::Udp(Udp { src_port, dst_port, length, checksum: be16(h[6], h[7]), payload });
    p.l4_segment = segment;
    p.l4_complete = complete;
}

fn icmp<'a>(protocol: u8, data: &'a [u8], complete: bool, v6: bool, p: &mut Packet<'a>) {
    let Some((h, payload)) = data.split_first_chunk::<8>() else {
        return cut(protocol, data, p);
    };
    let icmp =
        Icmp { icmp_type: h[0], code: h[1], checksum: be16(h[2], h[3]), rest: [h[4], h[5], h[6], h[7]], payload, v6 };
    p.transport = if v6 { Transport::Icmpv6(icmp) } else { Transport::Icmpv4(icmp) };
    p.l4_segment = data;
    p.l4_complete = complete;
}
