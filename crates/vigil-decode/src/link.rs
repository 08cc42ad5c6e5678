//! Layer 2: link-layer headers down to an EtherType (or an IP version).
//!
//! Hand-written rather than etherparse: we need link types etherparse does not slice
//! (SLL2, BSD null in both byte orders, radiotap/802.11), an unbounded-depth VLAN walk
//! with our own bound, and to keep going on malformed headers with an anomaly flag where
//! etherparse's lax slicer returns an error. Every read goes through `first_chunk` /
//! `split_first_chunk`, so the fixed-size header fields are bounds-checked once and
//! indexing them cannot panic.

use crate::anomaly::Anomalies;
use crate::ip;
use crate::packet::{DecodeError, LinkType, MacAddr, Network, Packet};

pub(crate) const ETH_IPV4: u16 = 0x0800;
pub(crate) const ETH_IPV6: u16 = 0x86dd;

#[inline]
pub(crate) fn be16(a: u8, b: u8) -> u16 {
    u16::from_be_bytes([a, b])
}

#[inline]
fn mac(b: &[u8]) -> MacAddr {
    MacAddr(b.first_chunk::<6>().copied().unwrap_or_default())
}

/// Decodes one frame of `link_type` into a borrowed view; see [`crate::decode`].
pub(crate) fn decode(link_type: LinkType, frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    if !link_type.is_supported() {
        return Err(DecodeError::UnsupportedLinkType(link_type));
    }
    // Built in the return value itself: a `Packet` is 248 bytes, and decoding into a
    // local then wrapping it in `Ok` cost a copy per packet.
    let mut out = Ok(Packet::new(link_type));
    let Ok(p) = &mut out else { return out };
    match link_type.0 {
        1 => ethernet(frame, p),
        113 => sll(frame, p),
        276 => sll2(frame, p),
        0 => null(frame, p, false),
        108 => null(frame, p, true),
        12 | 14 | 101 => raw(frame, p),
        228 => ip::network(ETH_IPV4, frame, p),
        229 => ip::network(ETH_IPV6, frame, p),
        127 => radiotap(frame, p),
        105 => ieee80211(frame, p),
        _ => {}
    }
    out
}

fn ethernet<'a>(frame: &'a [u8], p: &mut Packet<'a>) {
    let Some((h, rest)) = frame.split_first_chunk::<14>() else {
        p.anomalies.insert(Anomalies::L2_TRUNCATED);
        return;
    };
    p.link.dst_mac = Some(mac(&h[0..6]));
    p.link.src_mac = Some(mac(&h[6..12]));
    after_ethertype(be16(h[12], h[13]), rest, p);
}

/// Walks VLAN tags and 802.3 LLC/SNAP, then hands the payload to the network layer.
fn after_ethertype<'a>(mut et: u16, mut rest: &'a [u8], p: &mut Packet<'a>) {
    loop {
        match et {
            0x8100 | 0x88a8 | 0x9100 | 0x9200 => {
                let Some((tag, r)) = rest.split_first_chunk::<4>() else {
                    p.anomalies.insert(Anomalies::L2_TRUNCATED);
                    return;
                };
                if !p.link.vlans.push(be16(tag[0], tag[1]) & 0x0fff) {
                    p.anomalies.insert(Anomalies::VLAN_TOO_DEEP);
                    p.link.ether_type = Some(et);
                    p.network = Network::Malformed { ether_type: et, data: rest };
                    return;
                }
                et = be16(tag[2], tag[3]);
                rest = r;
            }
            // An 802.3 length (or an SLL pseudo-protocol): LLC follows. Only SNAP with the
            // zero OUI carries an EtherType.
            0..=0x05ff => match rest.split_first_chunk::<8>() {
                Some((llc, r)) if llc[..6] == [0xaa, 0xaa, 0x03, 0, 0, 0] => {
                    et = be16(llc[6], llc[7]);
                    rest = r;
                }
                _ => {
                    p.network = Network::Other { ether_type: et, data: rest };
                    return;
                }
            },
            _ => return ip::network(et, rest, p),
        }
    }
}

fn sll<'a>(frame: &'a [u8], p: &mut Packet<'a>) {
    let Some((h, rest)) = frame.split_first_chunk::<16>() else {
        p.anomalies.insert(Anomalies::L2_TRUNCATED);
        return;
    };
    p.link.sll_packet_type = Some(be16(h[0], h[1]));
    let arphrd = be16(h[2], h[3]);
    if be16(h[4], h[5]) == 6 && matches!(arphrd, 1 | 772) {
        p.link.src_mac = Some(mac(&h[6..12]));
    }
    sll_payload(arphrd, be16(h[14], h[15]), rest, p);
}

fn sll2<'a>(frame: &'a [u8], p: &mut Packet<'a>) {
    let Some((h, rest)) = frame.split_first_chunk::<20>() else {
        p.anomalies.insert(Anomalies::L2_TRUNCATED);
        return;
    };
    let arphrd = be16(h[8], h[9]);
    p.link.sll_packet_type = Some(u16::from(h[10]));
    if h[11] == 6 && matches!(arphrd, 1 | 772) {
        p.link.src_mac = Some(mac(&h[12..18]));
    }
    sll_payload(arphrd, be16(h[0], h[1]), rest, p);
}

fn sll_payload<'a>(arphrd: u16, proto: u16, rest: &'a [u8], p: &mut Packet<'a>) {
    if arphrd == 824 {
        // Netlink: the protocol field is a netlink family, not an EtherType.
        p.network = Network::Other { ether_type: proto, data: rest };
        return;
    }
    after_ethertype(proto, rest, p);
}

fn null<'a>(frame: &'a [u8], p: &mut Packet<'a>, network_order: bool) {
    let Some((h, rest)) = frame.split_first_chunk::<4>() else {
        p.anomalies.insert(Anomalies::L2_TRUNCATED);
        return;
    };
    // The family is in the capturing host's byte order: a little-endian read that gives
    // a value above 16 bits means the writer was big-endian.
    let family = if network_order {
        u32::from_be_bytes(*h)
    } else {
        match u32::from_le_bytes(*h) {
            v if v > 0xffff => u32::from_be_bytes(*h),
            v => v,
        }
    };
    match family {
        2 => ip::network(ETH_IPV4, rest, p),
        // AF_INET6: Linux 10, Windows 23, OpenBSD/NetBSD 24, FreeBSD 28, macOS 30.
        10 | 23 | 24 | 28 | 30 => ip::network(ETH_IPV6, rest, p),
        _ => p.network = Network::Other { ether_type: 0, data: rest },
    }
}

fn raw<'a>(frame: &'a [u8], p: &mut Packet<'a>) {
    match frame.first().map(|b| b >> 4) {
        Some(4) => ip::network(ETH_IPV4, frame, p),
        Some(6) => ip::network(ETH_IPV6, frame, p),
        Some(_) => {
            p.anomalies.insert(Anomalies::IP_BAD_VERSION);
            p.network = Network::Malformed { ether_type: 0, data: frame };
        }
        None => p.anomalies.insert(Anomalies::L3_TRUNCATED),
    }
}

fn radiotap<'a>(frame: &'a [u8], p: &mut Packet<'a>) {
    let Some(h) = frame.first_chunk::<8>() else {
        p.anomalies.insert(Anomalies::L2_TRUNCATED);
        return;
    };
    let it_len = usize::from(u16::from_le_bytes([h[2], h[3]]));
    if h[0] != 0 || it_len < 8 {
        p.anomalies.insert(Anomalies::L2_MALFORMED);
        return;
    }
    let Some((rt, body)) = frame.split_at_checked(it_len) else {
        p.anomalies.insert(Anomalies::L2_TRUNCATED);
        return;
    };
    // Walk the chain of "present" words (bit 31 = another word follows) to find where the
    // fields start; only TSFT (bit 0) and Flags (bit 1) matter: Flags says whether a
    // 4-byte FCS ends the frame. Field offsets are aligned from the header start.
    let mut off = 4;
    let mut first = None;
    loop {
        let Some(w) = rt.get(off..).and_then(|r| r.first_chunk::<4>()) else {
            p.anomalies.insert(Anomalies::L2_MALFORMED);
            return;
        };
        let w = u32::from_le_bytes(*w);
        first.get_or_insert(w);
        off += 4;
        if w & 0x8000_0000 == 0 {
            break;
        }
    }
    let present = first.unwrap_or(0);
    let mut has_fcs = false;
    if present & 0b10 != 0 {
        if present & 0b01 != 0 {
            off = ((off + 7) & !7) + 8;
        }
        has_fcs = rt.get(off).is_some_and(|flags| flags & 0x10 != 0);
    }
    let body = if has_fcs { body.get(..body.len().saturating_sub(4)).unwrap_or(&[]) } else { body };
    ieee80211(body, p);
}

fn ieee80211<'a>(frame: &'a [u8], p: &mut Packet<'a>) {
    let Some(fc) = frame.first_chunk::<2>() else {
        p.anomalies.insert(Anomalies::L2_TRUNCATED);
        return;
    };
    let fc = u16::from_le_bytes(*fc);
    let ftype = (fc >> 2) & 0b11;
    let subtype = (fc >> 4) & 0xf;
    let [_, flags] = fc.to_le_bytes();
    if ftype != 2 {
        return; // management or control: no network layer, and nothing wrong
    }
    let to_ds = flags & 0x01 != 0;
    let from_ds = flags & 0x02 != 0;
    let qos = subtype & 0x8 != 0;
    let mut hlen = 24;
    if to_ds && from_ds {
        hlen += 6;
    }
    if qos {
        hlen += 2;
        if flags & 0x80 != 0 {
            hlen += 4; // HT control
        }
    }
    let Some((hdr, body)) = frame.split_at_checked(hlen) else {
        p.anomalies.insert(Anomalies::L2_TRUNCATED);
        return;
    };
    let a1 = mac(hdr.get(4..).unwrap_or(&[]));
    let a2 = mac(hdr.get(10..).unwrap_or(&[]));
    let a3 = mac(hdr.get(16..).unwrap_or(&[]));
    let (dst, src) = match (to_ds, from_ds) {
        (false, false) => (a1, a2),
        (false, true) => (a1, a3),
        (true, false) => (a3, a2),
        (true, true) => (a3, mac(hdr.get(24..).unwrap_or(&[]))),
    };
    p.link.dst_mac = Some(dst);
    p.link.src_mac = Some(src);
    if subtype & 0x4 != 0 {
        return; // (QoS) null data: no body
    }
    if flags & 0x40 != 0 {
        p.network = Network::Other { ether_type: 0, data: body }; // protected (encrypted) frame
        return;
    }
    match body.split_first_chunk::<8>() {
        Some((llc, rest)) if llc[..6] == [0xaa, 0xaa, 0x03, 0, 0, 0] => after_ethertype(be16(llc[6], llc[7]), rest, p),
        Some(_) => p.network = Network::Other { ether_type: 0, data: body },
        None => p.anomalies.insert(Anomalies::L2_TRUNCATED),
    }
}
