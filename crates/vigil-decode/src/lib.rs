//! Packet and protocol decoding for vigil, from link layer to application layer.
//!
//! **Owns**: turning the bytes of one captured frame into a borrowed view of its headers
//! ([`decode`] → [`Packet`]), the anomaly flags found on the way ([`Anomalies`]), and
//! the application-layer parsers the detectors call on a payload: [`dns`], [`tls`],
//! [`http`], [`cleartext`] (FTP/POP3/IMAP/SMTP logins) and [`telnet`], with cheap
//! [`hint`]s that say which one to try.
//!
//! **Must not**: do I/O, read clocks, keep state between frames (the only stateful types,
//! [`tls::TlsStream`] and [`telnet::IacStripper`], are owned by the caller), allocate on
//! the L2–L4 path, or panic on any input. Every bound on untrusted input is a named
//! constant ([`MAX_VLAN_TAGS`], [`MAX_IPV6_EXT_HEADERS`], [`dns::MAX_POINTER_JUMPS`]…).
//! Passwords never leave the parsers: they report that one was sent, and the user name.
//!
//! **Thread**: whatever thread runs the detection engine; everything here is a pure
//! function of its input (and `Send + Sync`).
//!
//! # Cost model
//! [`decode`] parses L2–L4 eagerly (fixed-size header reads, the IPv4 header checksum,
//! flag anomalies) and nothing else: TCP options are parsed when asked
//! ([`Tcp::parsed_options`]), L4 checksums when asked ([`Packet::verify_l4_checksum`]),
//! and application payloads only when a detector calls an L7 parser.
//!
//! ```
//! use vigil_decode::{decode, LinkType, Transport};
//! # let frame: &[u8] = &[0u8; 14];
//! let pkt = decode(LinkType::ETHERNET, frame).expect("supported link type");
//! if let Transport::Tcp(tcp) = pkt.transport {
//!     if tcp.flags.is_syn_only() { /* count a connection attempt */ }
//! }
//! if !pkt.anomalies.is_empty() { /* packet_anomaly evidence: pkt.anomalies.names() */ }
//! ```

mod anomaly;
mod b64;
mod checksum;
mod ip;
mod link;
mod packet;
mod transport;

pub mod cleartext;
pub mod dns;
pub mod fuzzing;
pub mod hint;
pub mod http;
pub mod telnet;
pub mod tls;

pub use anomaly::Anomalies;
pub use packet::{
    Arp, DecodeError, Echo, Fragment, Icmp, Ipv4, Ipv6, Ipv6Ext, Ipv6FragmentHeader, Link, LinkType,
    MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS, MacAddr, Network, Outcome, Packet, Tcp, TcpFlags, TcpOption, TcpOptionIter,
    TcpOptions, Transport, Udp, VlanTags,
};

/// Decodes one frame captured with `link_type` into a borrowed view of layers 2–4.
///
/// Never panics and never allocates. Truncated or malformed headers do not fail: the
/// layers before them are decoded, the rest is left as raw bytes, and
/// [`Packet::anomalies`] / [`Packet::outcome`] say what went wrong. The only error is an
/// unsupported link type.
pub fn decode(link_type: LinkType, frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    link::decode(link_type, frame)
}

#[cfg(test)]
mod tests;
