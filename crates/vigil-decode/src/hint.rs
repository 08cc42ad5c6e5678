//! Cheap hints that tell a detector which L7 parser to try on a payload.
//!
//! Ports first ([`by_port`]), content second ([`sniff`]): HTTP on tcp/22 or TLS on
//! tcp/8080 is found by content, and both checks cost a few comparisons.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{LinkType, http};

/// An application protocol this crate can parse (or recognise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppProtocol {
    /// DNS (UDP, or TCP with a length prefix).
    Dns,
    /// HTTP/1.x.
    Http,
    /// TLS or SSL.
    Tls,
    /// FTP control.
    Ftp,
    /// Telnet.
    Telnet,
    /// POP3.
    Pop3,
    /// IMAP.
    Imap,
    /// SMTP.
    Smtp,
    /// SSH (recognised, not parsed).
    Ssh,
}

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

fn tcp_port(port: u16) -> Option<AppProtocol> {
    Some(match port {
        53 => AppProtocol::Dns,
        80 | 8000 | 8008 | 8080 | 3128 => AppProtocol::Http,
        443 | 465 | 636 | 853 | 993 | 995 | 8443 => AppProtocol::Tls,
        21 => AppProtocol::Ftp,
        23 => AppProtocol::Telnet,
        110 => AppProtocol::Pop3,
        143 => AppProtocol::Imap,
        25 | 587 => AppProtocol::Smtp,
        22 => AppProtocol::Ssh,
        _ => return None,
    })
}

fn udp_port(port: u16) -> Option<AppProtocol> {
    matches!(port, 53 | 5353 | 5355).then_some(AppProtocol::Dns)
}

/// The protocol suggested by the well-known port on either side (destination first).
pub fn by_port(ip_protocol: u8, src_port: u16, dst_port: u16) -> Option<AppProtocol> {
    let f = match ip_protocol {
        IPPROTO_TCP => tcp_port,
        IPPROTO_UDP => udp_port,
        _ => return None,
    };
    f(dst_port).or_else(|| f(src_port))
}

/// The protocol suggested by the first bytes of a TCP payload: a TLS record or SSLv2
/// hello, an HTTP request or response, an SSH banner.
pub fn sniff(payload: &[u8]) -> Option<AppProtocol> {
    match payload {
        [20..=24, 3, 0..=4, ..] => Some(AppProtocol::Tls),
        [b0, _, 1, 0 | 3, ..] if b0 & 0x80 != 0 => Some(AppProtocol::Tls), // SSLv2 client hello
        [b'S', b'S', b'H', b'-', ..] => Some(AppProtocol::Ssh),
        [b'H', b'T', b'T', b'P', b'/', b'1', ..] => Some(AppProtocol::Http),
        _ if http::looks_like_request(payload) => Some(AppProtocol::Http),
        _ => None,
    }
}

/// The addresses and ports of a TCP or UDP packet, read at fixed offsets without a full
/// decode: enough for a caller to warm its per-flow state for a packet it will decode
/// next (see `vigil_detect::Engine::prefetch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTuple {
    /// IP protocol number ([`IPPROTO_TCP`] or [`IPPROTO_UDP`]).
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// TCP flags (the 8 bits of byte 13 of the header; 0 for UDP or when cut off).
    pub tcp_flags: u8,
}

/// The [`FlowTuple`] of an Ethernet II (up to two VLAN tags) or raw-IP frame carrying an
/// unfragmented TCP or UDP packet over IPv4 or IPv6 (no extension headers); `None` for
/// anything else. A hint only: [`crate::decode`] is the authority, and a wrong or
/// missing hint costs a cache miss, never a wrong result.
pub fn flow_tuple(link: LinkType, frame: &[u8]) -> Option<FlowTuple> {
    let ip = match link {
        LinkType::ETHERNET => {
            let mut at = 12;
            let mut ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
            for _ in 0..2 {
                if ethertype != 0x8100 && ethertype != 0x88a8 {
                    break;
                }
                at += 4;
                ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
            }
            if ethertype != 0x0800 && ethertype != 0x86dd {
                return None;
            }
            frame.get(at + 2..)?
        }
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => frame,
        _ => return None,
    };
    let (protocol, src, dst, l4) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if ihl < 20 || frag & 0x1fff != 0 {
                return None;
            }
            let a: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let b: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (*ip.get(9)?, IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)), ip.get(ihl..)?)
        }
        6 => {
            let a: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (*ip.get(6)?, IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)), ip.get(40..)?)
        }
        _ => return None,
    };
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return None;
    }
    let port = |at: usize| Some(u16::from_be_bytes([*l4.get(at)?, *l4.get(at + 1)?]));
    let tcp_flags = if protocol == IPPROTO_TCP { l4.get(13).copied().unwrap_or(0) } else { 0 };
    Some(FlowTuple { protocol, src, src_port: port(0)?, dst, dst_port: port(2)?, tcp_flags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_content() {
        assert_eq!(by_port(IPPROTO_TCP, 51000, 443), Some(AppProtocol::Tls));
        assert_eq!(by_port(IPPROTO_TCP, 21, 51000), Some(AppProtocol::Ftp));
        assert_eq!(by_port(IPPROTO_UDP, 5353, 5353), Some(AppProtocol::Dns));
        assert_eq!(by_port(IPPROTO_UDP, 1, 443), None);
        assert_eq!(by_port(1, 53, 53), None);
        assert_eq!(sniff(b"\x16\x03\x01\x02\x00"), Some(AppProtocol::Tls));
        assert_eq!(sniff(b"\x80\x2e\x01\x00\x02"), Some(AppProtocol::Tls));
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Some(AppProtocol::Http));
        assert_eq!(sniff(b"HTTP/1.1 200 OK"), Some(AppProtocol::Http));
        assert_eq!(sniff(b"SSH-2.0-OpenSSH_8.7"), Some(AppProtocol::Ssh));
        assert_eq!(sniff(b"USER x"), None);
        assert_eq!(sniff(b""), None);
    }
}
