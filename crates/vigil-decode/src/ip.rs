//! Layer 3: ARP, IPv4 (checksum, fragments) and IPv6 (bounded extension-header walk).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::anomaly::Anomalies;
use crate::checksum;
use crate::link::{ETH_IPV4, ETH_IPV6, be16};
use crate::packet::{
    Arp, Ipv4, Ipv6, Ipv6Ext, Ipv6FragmentHeader, MAX_IPV6_EXT_HEADERS, MacAddr, Network, Packet, Transport,
};
use crate::transport;

const ETH_ARP: u16 = 0x0806;
const ETH_RARP: u16 = 0x8035;

/// Decodes the network layer named by `ether_type`.
pub(crate) fn network<'a>(ether_type: u16, data: &'a [u8], p: &mut Packet<'a>) {
    p.link.ether_type = Some(ether_type);
    match ether_type {
        ETH_IPV4 => ipv4(data, p),
        ETH_IPV6 => ipv6(data, p),
        ETH_ARP | ETH_RARP => arp(ether_type, data, p),
        _ => p.network = Network::Other { ether_type, data },
    }
}

fn truncated<'a>(ether_type: u16, data: &'a [u8], p: &mut Packet<'a>) {
    p.anomalies.insert(Anomalies::L3_TRUNCATED);
    p.network = Network::Truncated { ether_type, data };
}

fn malformed<'a>(ether_type: u16, data: &'a [u8], p: &mut Packet<'a>, why: Anomalies) {
    p.anomalies.insert(why);
    p.network = Network::Malformed { ether_type, data };
}

fn arp<'a>(ether_type: u16, data: &'a [u8], p: &mut Packet<'a>) {
    let Some(h) = data.first_chunk::<8>() else {
        return truncated(ether_type, data, p);
    };
    // Only IPv4-over-6-byte-hardware ARP is decoded; other hardware/protocol sizes are
    // legal but irrelevant to spoofing detection.
    if h[4] != 6 || h[5] != 4 || be16(h[2], h[3]) != ETH_IPV4 {
        p.network = Network::Other { ether_type, data };
        return;
    }
    let Some(b) = data.first_chunk::<28>() else {
        return truncated(ether_type, data, p);
    };
    let ip = |o: usize| Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]);
    let mac = |o: usize| MacAddr(b.get(o..).and_then(|s| s.first_chunk::<6>()).copied().unwrap_or_default());
    p.network = Network::Arp(Arp {
        ether_type,
        hw_type: be16(b[0], b[1]),
        op: be16(b[6], b[7]),
        sender_mac: mac(8),
        sender_ip: ip(14),
        target_mac: mac(18),
        target_ip: ip(24),
    });
}

fn ipv4<'a>(data: &'a [u8], p: &mut Packet<'a>) {
    let Some(h) = data.first_chunk::<20>() else {
        return truncated(ETH_IPV4, data, p);
    };
    if h[0] >> 4 != 4 {
        return malformed(ETH_IPV4, data, p, Anomalies::IP_BAD_VERSION);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total_len = be16(h[2], h[3]);
    if ihl < 20 {
        return malformed(ETH_IPV4, data, p, Anomalies::IPV4_BAD_IHL);
    }
    if total_len != 0 && usize::from(total_len) < ihl {
        let why = if total_len < 20 { Anomalies::IPV4_BAD_TOTAL_LEN } else { Anomalies::IPV4_BAD_IHL };
        return malformed(ETH_IPV4, data, p, why);
    }
    let Some((header, rest)) = data.split_at_checked(ihl) else {
        return truncated(ETH_IPV4, data, p);
    };
    // Total length 0 is what TCP segmentation offload leaves on locally sent packets:
    // trust the capture then.
    let declared = if total_len == 0 { rest.len() } else { usize::from(total_len) - ihl };
    let payload = match rest.get(..declared) {
        Some(p) => p,
        None => {
            p.anomalies.insert(Anomalies::CAPTURE_TRUNCATED);
            rest
        }
    };
    if checksum::finish(checksum::sum(header, 0)) != 0 {
        p.anomalies.insert(Anomalies::IPV4_BAD_CHECKSUM);
    }
    let frag = be16(h[6], h[7]);
    let more = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    if frag & 0x8000 != 0 {
        p.anomalies.insert(Anomalies::IPV4_RESERVED_FLAG);
    }
    if offset != 0 && usize::from(offset) * 8 + declared > 65_535 {
        p.anomalies.insert(Anomalies::IP_FRAGMENT_OVERSIZE);
    }
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    let protocol = h[9];
    p.network = Network::Ipv4(Ipv4 {
        src,
        dst,
        protocol,
        ttl: h[8],
        tos: h[1],
        id: be16(h[4], h[5]),
        dont_fragment: frag & 0x4000 != 0,
        more_fragments: more,
        frag_offset: offset,
        total_len,
        checksum: be16(h[10], h[11]),
        header,
        payload,
    });
    if offset != 0 {
        p.transport = Transport::Fragment { protocol, data: payload };
        return;
    }
    let complete = !more && payload.len() == declared;
    let declared = (!more).then_some(declared);
    transport::decode(protocol, payload, declared, complete, src == dst, p);
}

fn ipv6<'a>(data: &'a [u8], p: &mut Packet<'a>) {
    let Some((h, rest)) = data.split_first_chunk::<40>() else {
        return truncated(ETH_IPV6, data, p);
    };
    if h[0] >> 4 != 6 {
        return malformed(ETH_IPV6, data, p, Anomalies::IP_BAD_VERSION);
    }
    let payload_len = be16(h[4], h[5]);
    let avail = if payload_len == 0 {
        rest // jumbogram or offload: trust the capture
    } else {
        match rest.get(..usize::from(payload_len)) {
            Some(r) => r,
            None => {
                p.anomalies.insert(Anomalies::CAPTURE_TRUNCATED);
                rest
            }
        }
    };
    let declared_total = if payload_len == 0 { avail.len() } else { usize::from(payload_len) };

    enum Stop {
        Upper,
        Cut,
        TooMany,
        LaterFragment,
    }
    let mut ext = Ipv6Ext::default();
    let mut nh = h[6];
    let mut off = 0usize;
    let stop = loop {
        let hdr_len = match nh {
            // hop-by-hop, routing, destination options, mobility, HIP, shim6, experimental
            0 | 43 | 60 | 135 | 139 | 140 | 253 | 254 => avail.get(off + 1).map(|l| (usize::from(*l) + 1) * 8),
            51 => avail.get(off + 1).map(|l| (usize::from(*l) + 2) * 4), // AH
            44 => Some(8),                                               // fragment
            _ => break Stop::Upper,
        };
        if usize::from(ext.count) >= MAX_IPV6_EXT_HEADERS {
            p.anomalies.insert(Anomalies::IPV6_TOO_MANY_EXT_HEADERS);
            break Stop::TooMany;
        }
        let Some(e) = hdr_len.and_then(|l| avail.get(off..off + l)) else {
            p.anomalies.insert(Anomalies::L3_TRUNCATED);
            break Stop::Cut;
        };
        let (Some(&next), Some(&b2), Some(&b3)) = (e.first(), e.get(2), e.get(3)) else {
            p.anomalies.insert(Anomalies::L3_TRUNCATED);
            break Stop::Cut;
        };
        ext.count += 1;
        off += e.len();
        match nh {
            0 => ext.hop_by_hop = true,
            43 => ext.routing = Some((b2, b3)),
            60 => ext.dest_opts = ext.dest_opts.saturating_add(1),
            51 => ext.auth = true,
            44 => {
                let fo = be16(b2, b3);
                let id = e.get(4..8).and_then(|s| s.first_chunk::<4>()).map_or(0, |b| u32::from_be_bytes(*b));
                let frag = Ipv6FragmentHeader { id, offset: fo >> 3, more: fo & 1 != 0 };
                ext.fragment = Some(frag);
                if frag.offset != 0 {
                    nh = next;
                    break Stop::LaterFragment;
                }
            }
            _ => {}
        }
        nh = next;
    };
    let (ext_headers, payload) = avail.split_at_checked(off).unwrap_or((avail, &[]));
    let addr = |at: usize| {
        let octets = h.get(at..at + 16).and_then(|s| <[u8; 16]>::try_from(s).ok());
        Ipv6Addr::from(octets.unwrap_or([0; 16]))
    };
    let (src, dst) = (addr(8), addr(24));
    let declared = declared_total.saturating_sub(off);
    if let Some(f) = ext.fragment
        && f.offset != 0
        && usize::from(f.offset) * 8 + declared > 65_535
    {
        p.anomalies.insert(Anomalies::IP_FRAGMENT_OVERSIZE);
    }
    p.network = Network::Ipv6(Ipv6 {
        src,
        dst,
        next_header: h[6],
        protocol: nh,
        hop_limit: h[7],
        traffic_class: (h[0] << 4) | (h[1] >> 4),
        flow_label: (u32::from(h[1] & 0x0f) << 16) | u32::from(be16(h[2], h[3])),
        payload_len,
        ext,
        header: h,
        ext_headers,
        payload,
    });
    match stop {
        Stop::Cut => {}
        Stop::TooMany => p.transport = Transport::Other { protocol: nh, data: payload },
        Stop::LaterFragment => p.transport = Transport::Fragment { protocol: nh, data: payload },
        Stop::Upper => {
            let fragmented = ext.fragment.is_some_and(|f| f.more);
            let complete = !fragmented && payload.len() == declared;
            let declared = (!fragmented).then_some(declared);
            transport::decode(nh, payload, declared, complete, src == dst, p);
        }
    }
}
