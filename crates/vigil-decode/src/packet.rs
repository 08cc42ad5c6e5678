//! The decoded view of one frame: link, network and transport layers, all borrowed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::anomaly::Anomalies;
use crate::checksum;

/// Most VLAN tags decoded from one frame (802.1Q, 802.1ad QinQ and the old 0x9100 tag);
/// a deeper stack raises [`Anomalies::VLAN_TOO_DEEP`].
pub const MAX_VLAN_TAGS: usize = 8;

/// Most IPv6 extension headers walked in one packet; a longer chain raises
/// [`Anomalies::IPV6_TOO_MANY_EXT_HEADERS`].
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// A pcap/pcapng link-layer header type (`LINKTYPE_*` in the tcpdump registry).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II (with 802.1Q/QinQ tags and 802.3 LLC/SNAP).
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP, as written by OpenBSD (`DLT_RAW` is 12 there).
    pub const RAW_OPENBSD: LinkType = LinkType(12);
    /// Raw IP, as written by some BSDs (`DLT_RAW` is 14 there).
    pub const RAW_BSDOS: LinkType = LinkType(14);
    /// Raw IP: version 4 or 6 from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    /// Bare IEEE 802.11 frames.
    pub const IEEE802_11: LinkType = LinkType(105);
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1 (the "any" device).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// IEEE 802.11 with a radiotap header in front.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// True when [`crate::decode`] understands this link type.
    pub const fn is_supported(self) -> bool {
        matches!(self.0, 0 | 1 | 12 | 14 | 101 | 105 | 108 | 113 | 127 | 228 | 229 | 276)
    }

    /// A short name (`"ethernet"`, `"linux_sll2"`…), or `"unknown"`.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "null",
            1 => "ethernet",
            12 | 14 | 101 => "raw",
            105 => "ieee802_11",
            108 => "loop",
            113 => "linux_sll",
            127 => "ieee802_11_radiotap",
            228 => "ipv4",
            229 => "ipv6",
            276 => "linux_sll2",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkType({}:{})", self.0, self.name())
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00` (ARP requests put it in the target hardware address).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// True for group addresses (the I/G bit; includes broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
    /// True for all zeros.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The VLAN ids of the stacked tags, outermost first (at most [`MAX_VLAN_TAGS`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTags {
    ids: [u16; MAX_VLAN_TAGS],
    len: u8,
}

impl VlanTags {
    /// The VLAN ids (12 bits each), outermost first.
    pub fn ids(&self) -> &[u16] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }
    /// Number of tags.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    /// True when the frame was untagged.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The outermost VLAN id.
    pub fn outer(&self) -> Option<u16> {
        self.ids().first().copied()
    }
    /// The innermost VLAN id.
    pub fn inner(&self) -> Option<u16> {
        self.ids().last().copied()
    }
    /// Appends a tag; false when full.
    pub(crate) fn push(&mut self, id: u16) -> bool {
        match self.ids.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = id;
                self.len += 1;
                true
            }
            None => false,
        }
    }
}

impl fmt::Debug for VlanTags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

/// What the link layer said about the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// The link type the frame was decoded with.
    pub link_type: LinkType,
    /// Source MAC (Ethernet, 802.11, and SLL/SLL2 when the address is a MAC).
    pub src_mac: Option<MacAddr>,
    /// Destination MAC (Ethernet, 802.11).
    pub dst_mac: Option<MacAddr>,
    /// Stacked VLAN tags.
    pub vlans: VlanTags,
    /// The EtherType of the network layer (synthesised as 0x0800/0x86DD for raw-IP and
    /// loopback link types); `None` when the link layer carried none (truncated, 802.11
    /// management/control, encrypted).
    pub ether_type: Option<u16>,
    /// Linux cooked capture packet type: 0 to us, 1 broadcast, 2 multicast, 3 to another
    /// host, 4 sent by us.
    pub sll_packet_type: Option<u16>,
}

/// An ARP (or RARP) packet for IPv4 over Ethernet-sized hardware addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Arp {
    /// EtherType it came in: 0x0806 ARP or 0x8035 RARP.
    pub ether_type: u16,
    /// Hardware type (1 = Ethernet).
    pub hw_type: u16,
    /// Operation: 1 request, 2 reply, 3/4 RARP request/reply.
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// ARP request.
    pub const OP_REQUEST: u16 = 1;
    /// ARP reply.
    pub const OP_REPLY: u16 = 2;

    /// A gratuitous ARP: the sender announces its own address (sender IP == target IP).
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// An IPv4 header and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ipv4<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number of the payload (6 TCP, 17 UDP, 1 ICMP…).
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Type of service / DSCP+ECN byte.
    pub tos: u8,
    /// Identification (the fragment id).
    pub id: u16,
    /// DF flag.
    pub dont_fragment: bool,
    /// MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Total length as written in the header (0 with TCP segmentation offload).
    pub total_len: u16,
    /// Header checksum as written.
    pub checksum: u16,
    /// The whole header, options included.
    pub header: &'a [u8],
    /// The payload: bounded by the total length and by what was captured (Ethernet
    /// padding is not included).
    pub payload: &'a [u8],
}

impl<'a> Ipv4<'a> {
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        self.header.len()
    }
    /// IPv4 options (empty for a 20-byte header).
    pub fn options(&self) -> &'a [u8] {
        self.header.get(20..).unwrap_or(&[])
    }
    /// True when this packet is a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }
    /// Payload length announced by the header (total length minus header length), which
    /// can exceed the captured payload.
    pub fn declared_payload_len(&self) -> usize {
        if self.total_len == 0 {
            self.payload.len()
        } else {
            usize::from(self.total_len).saturating_sub(self.header.len())
        }
    }
}

/// The IPv6 fragment extension header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6FragmentHeader {
    /// Identification.
    pub id: u32,
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    /// M flag (more fragments follow).
    pub more: bool,
}

/// A summary of the IPv6 extension header chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Ipv6Ext {
    /// Number of extension headers walked.
    pub count: u8,
    /// A hop-by-hop options header was present.
    pub hop_by_hop: bool,
    /// Routing header type and segments left, when present.
    pub routing: Option<(u8, u8)>,
    /// Number of destination options headers.
    pub dest_opts: u8,
    /// The fragment header, when present.
    pub fragment: Option<Ipv6FragmentHeader>,
    /// An authentication header was present.
    pub auth: bool,
}

/// An IPv6 header, its extension chain and the upper-layer payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ipv6<'a> {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header of the fixed header (the first extension header, or the upper layer).
    pub next_header: u8,
    /// The upper-layer protocol after the extension chain (6 TCP, 17 UDP, 58 ICMPv6…;
    /// 44 when a non-first fragment stops the walk, 50 for ESP, 59 for no next header).
    pub protocol: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload length as written (0 for jumbograms).
    pub payload_len: u16,
    /// The extension chain summary.
    pub ext: Ipv6Ext,
    /// The fixed 40-byte header.
    pub header: &'a [u8],
    /// The extension headers, as captured.
    pub ext_headers: &'a [u8],
    /// The upper-layer payload (bounded by the payload length and by what was captured).
    pub payload: &'a [u8],
}

impl Ipv6<'_> {
    /// Upper-layer payload length announced by the header (which can exceed the capture).
    pub fn declared_payload_len(&self) -> usize {
        if self.payload_len == 0 {
            self.payload.len()
        } else {
            usize::from(self.payload_len).saturating_sub(self.ext_headers.len())
        }
    }
}

/// The network layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network<'a> {
    /// No network layer (truncated link header, 802.11 management, null data…).
    None,
    /// ARP or RARP.
    Arp(Arp),
    /// IPv4.
    Ipv4(Ipv4<'a>),
    /// IPv6.
    Ipv6(Ipv6<'a>),
    /// A known network protocol whose header is cut short (see the anomaly flags).
    Truncated {
        /// EtherType (0x0800, 0x86DD, 0x0806…).
        ether_type: u16,
        /// The bytes that were there.
        data: &'a [u8],
    },
    /// A known network protocol with an impossible header (see the anomaly flags).
    Malformed {
        /// EtherType.
        ether_type: u16,
        /// The header bytes.
        data: &'a [u8],
    },
    /// A network protocol this crate does not decode (an EtherType ≤ 0x05DC is an 802.3
    /// length: an LLC frame without SNAP; 0 for encrypted 802.11).
    Other {
        /// EtherType.
        ether_type: u16,
        /// The bytes after the link header.
        data: &'a [u8],
    },
}

/// TCP flags, including the NS/AE bit and the three reserved bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS (now AE, accurate ECN).
    pub const NS: u16 = 0x100;
    /// The three reserved bits.
    pub const RESERVED: u16 = 0xe00;
    /// The six classic flags (FIN SYN RST PSH ACK URG).
    pub const CLASSIC: u16 = 0x03f;

    /// True when every bit of `mask` is set.
    pub const fn has(self, mask: u16) -> bool {
        self.0 & mask == mask
    }
    /// True when the classic flags are exactly SYN (ECN bits allowed): a connection open.
    pub const fn is_syn_only(self) -> bool {
        self.0 & Self::CLASSIC == Self::SYN
    }
    /// True when the classic flags are exactly SYN+ACK.
    pub const fn is_syn_ack(self) -> bool {
        self.0 & Self::CLASSIC == Self::SYN | Self::ACK
    }
    /// SYN set.
    pub const fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    /// ACK set.
    pub const fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    /// FIN set.
    pub const fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// RST set.
    pub const fn rst(self) -> bool {
        self.has(Self::RST)
    }
    /// PSH set.
    pub const fn psh(self) -> bool {
        self.has(Self::PSH)
    }
    /// URG set.
    pub const fn urg(self) -> bool {
        self.has(Self::URG)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump-like letters: `S`, `S.`, `FPU`, `[none]`; `N`, `E`, `W`, `R!` for NS, ECE,
    /// CWR and reserved bits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(u16, &str); 10] = [
            (TcpFlags::FIN, "F"),
            (TcpFlags::SYN, "S"),
            (TcpFlags::RST, "R"),
            (TcpFlags::PSH, "P"),
            (TcpFlags::URG, "U"),
            (TcpFlags::ECE, "E"),
            (TcpFlags::CWR, "W"),
            (TcpFlags::NS, "N"),
            (TcpFlags::RESERVED, "R!"),
            (TcpFlags::ACK, "."),
        ];
        if self.0 == 0 {
            return f.write_str("[none]");
        }
        for (bit, letter) in LETTERS {
            if self.0 & bit != 0 {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

/// A TCP header (options parsed lazily) and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tcp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window (unscaled).
    pub window: u16,
    /// Checksum as written.
    pub checksum: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Data offset in 32-bit words as written (may be < 5 on malformed packets).
    pub data_offset: u8,
    /// The raw option bytes (see [`Tcp::options`] and [`Tcp::parsed_options`]).
    pub options: &'a [u8],
    /// The segment payload as captured.
    pub payload: &'a [u8],
}

impl<'a> Tcp<'a> {
    /// Iterates the options (stops at End of Option List or at the first malformed one).
    pub fn options(&self) -> TcpOptionIter<'a> {
        TcpOptionIter { rest: self.options }
    }

    /// Parses the options a detector usually wants in one pass.
    pub fn parsed_options(&self) -> TcpOptions {
        let mut out = TcpOptions::default();
        let mut it = self.options();
        for opt in &mut it {
            match opt {
                TcpOption::Mss(v) => out.mss = Some(v),
                TcpOption::WindowScale(v) => out.window_scale = Some(v),
                TcpOption::SackPermitted => out.sack_permitted = true,
                TcpOption::Timestamps { value, echo } => out.timestamps = Some((value, echo)),
                TcpOption::Sack(_) | TcpOption::Nop | TcpOption::Other { .. } => {}
            }
        }
        out.malformed = it.malformed();
        out
    }
}

/// One TCP option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// No-operation (padding).
    Nop,
    /// Maximum segment size.
    Mss(u16),
    /// Window scale shift.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks (pairs of 32-bit edges).
    Sack(&'a [u8]),
    /// Timestamps: value and echo reply.
    Timestamps {
        /// TSval.
        value: u32,
        /// TSecr.
        echo: u32,
    },
    /// Any other option.
    Other {
        /// Option kind.
        kind: u8,
        /// Option data (without kind and length).
        data: &'a [u8],
    },
}

/// The TCP options detectors care about, parsed in one pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TcpOptions {
    /// MSS.
    pub mss: Option<u16>,
    /// Window scale.
    pub window_scale: Option<u8>,
    /// SACK permitted.
    pub sack_permitted: bool,
    /// Timestamps (value, echo).
    pub timestamps: Option<(u32, u32)>,
    /// The option list was malformed (bad length, or runs past the header).
    pub malformed: bool,
}

/// Iterator over TCP options; see [`Tcp::options`].
#[derive(Clone, Debug)]
pub struct TcpOptionIter<'a> {
    rest: &'a [u8],
}

impl TcpOptionIter<'_> {
    /// True when iteration stopped on a malformed option (call after exhausting it).
    pub fn malformed(&self) -> bool {
        !self.rest.is_empty() && self.rest.first() != Some(&0)
    }
}

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = TcpOption<'a>;

    fn next(&mut self) -> Option<TcpOption<'a>> {
        let (&kind, after) = self.rest.split_first()?;
        match kind {
            0 => None, // End of option list: `rest` keeps the 0 so `malformed()` is false.
            1 => {
                self.rest = after;
                Some(TcpOption::Nop)
            }
            _ => {
                let len = usize::from(*after.first()?);
                if len < 2 || len > self.rest.len() {
                    return None; // malformed: `rest` is left non-empty
                }
                let data = self.rest.get(2..len)?;
                let opt = match (kind, data) {
                    (2, &[a, b]) => TcpOption::Mss(u16::from_be_bytes([a, b])),
                    (3, &[s]) => TcpOption::WindowScale(s),
                    (4, &[]) => TcpOption::SackPermitted,
                    (5, d) => TcpOption::Sack(d),
                    (8, &[a, b, c, d, e, f, g, h]) => TcpOption::Timestamps {
                        value: u32::from_be_bytes([a, b, c, d]),
                        echo: u32::from_be_bytes([e, f, g, h]),
                    },
                    (2..=4 | 8, _) => return None, // wrong length for a known option
                    (kind, data) => TcpOption::Other { kind, data },
                };
                self.rest = self.rest.get(len..).unwrap_or(&[]);
                Some(opt)
            }
        }
    }
}

/// A UDP header and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length field (header + payload).
    pub length: u16,
    /// Checksum as written (0 = none, IPv4 only).
    pub checksum: u16,
    /// Payload as captured, bounded by the length field when it is sane.
    pub payload: &'a [u8],
}

/// An ICMP or ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Icmp<'a> {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Checksum as written.
    pub checksum: u16,
    /// The 4 bytes after the checksum (id and sequence for echoes).
    pub rest: [u8; 4],
    /// The data after the 8-byte header.
    pub payload: &'a [u8],
    /// True for ICMPv6.
    pub v6: bool,
}

/// The id and sequence of an echo request or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo {
    /// True for a request, false for a reply.
    pub request: bool,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
}

impl Icmp<'_> {
    /// True for an echo request (type 8, or 128 for ICMPv6).
    pub fn is_echo_request(&self) -> bool {
        self.icmp_type == if self.v6 { 128 } else { 8 }
    }
    /// True for an echo reply (type 0, or 129 for ICMPv6).
    pub fn is_echo_reply(&self) -> bool {
        self.icmp_type == if self.v6 { 129 } else { 0 }
    }
    /// The echo id and sequence, for echo requests and replies.
    pub fn echo(&self) -> Option<Echo> {
        let request = self.is_echo_request();
        if !request && !self.is_echo_reply() {
            return None;
        }
        let [a, b, c, d] = self.rest;
        Some(Echo { request, id: u16::from_be_bytes([a, b]), seq: u16::from_be_bytes([c, d]) })
    }
}

/// The transport layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    /// No transport layer (no IP, or the IP header was unusable).
    None,
    /// TCP (also produced for malformed data offsets, with the anomaly flagged).
    Tcp(Tcp<'a>),
    /// UDP.
    Udp(Udp<'a>),
    /// ICMP.
    Icmpv4(Icmp<'a>),
    /// ICMPv6.
    Icmpv6(Icmp<'a>),
    /// A non-first IP fragment: no transport header in it.
    Fragment {
        /// The protocol of the fragmented payload.
        protocol: u8,
        /// The fragment data.
        data: &'a [u8],
    },
    /// A TCP/UDP/ICMP header cut short ([`Anomalies::L4_TRUNCATED`]).
    Truncated {
        /// IP protocol number.
        protocol: u8,
        /// The bytes that were there.
        data: &'a [u8],
    },
    /// A protocol this crate does not decode (GRE, ESP, SCTP…).
    Other {
        /// IP protocol number.
        protocol: u8,
        /// The IP payload.
        data: &'a [u8],
    },
}

/// One IP fragment, as the detection layer needs it to spot overlaps and oversize
/// reassemblies: key on (src, dst, protocol, id) and compare `offset..offset+len` ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment id (IPv4: 16 bits widened; IPv6: 32 bits).
    pub id: u32,
    /// Offset of this fragment's data in the reassembled payload, in bytes.
    pub offset: u32,
    /// Length of this fragment's data as announced by the headers (not the capture).
    pub len: u32,
    /// More fragments follow.
    pub more: bool,
    /// The protocol of the fragmented payload.
    pub protocol: u8,
}

/// How far decoding went, derived from the anomaly flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every header present was decoded; there may still be suspicious flags.
    Complete,
    /// A header was cut short (L2, L3 or L4); the layers before it are decoded.
    Truncated,
    /// A header had impossible values; the layers before it are decoded.
    Malformed,
}

/// Why a frame could not be decoded at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The link type is not one [`crate::decode`] understands.
    #[error(
        "unsupported link type {0}: vigil decodes Ethernet, Linux SLL/SLL2, raw IP, BSD loopback and 802.11 radiotap; convert the capture (e.g. with editcap) or skip it"
    )]
    UnsupportedLinkType(LinkType),
}

/// A decoded frame: a borrowed, allocation-free view of layers 2 to 4.
///
/// Built by [`crate::decode`]. Higher layers are not parsed here: call the L7 parsers
/// ([`crate::dns`], [`crate::tls`], [`crate::http`], [`crate::cleartext`]) on
/// [`Packet::l4_payload`] when a port or content hint ([`crate::hint`]) says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Packet<'a> {
    /// Link layer.
    pub link: Link,
    /// Network layer.
    pub network: Network<'a>,
    /// Transport layer.
    pub transport: Transport<'a>,
    /// Anomalies found while decoding.
    pub anomalies: Anomalies,
    /// The whole transport segment (header + payload), as captured and bounded by the IP
    /// length; used to verify checksums.
    pub(crate) l4_segment: &'a [u8],
    /// The transport segment is complete (not a fragment, not cut by the snaplen).
    pub(crate) l4_complete: bool,
}

impl<'a> Packet<'a> {
    pub(crate) fn new(link_type: LinkType) -> Packet<'a> {
        Packet {
            link: Link {
                link_type,
                src_mac: None,
                dst_mac: None,
                vlans: VlanTags::default(),
                ether_type: None,
                sll_packet_type: None,
            },
            network: Network::None,
            transport: Transport::None,
            anomalies: Anomalies::NONE,
            l4_segment: &[],
            l4_complete: false,
        }
    }

    /// How far decoding went.
    pub fn outcome(&self) -> Outcome {
        if self.anomalies.intersects(Anomalies::MALFORMED_MASK) {
            Outcome::Malformed
        } else if self.anomalies.intersects(Anomalies::TRUNCATED_MASK) {
            Outcome::Truncated
        } else {
            Outcome::Complete
        }
    }

    /// Source IP address (IPv4 or IPv6).
    pub fn src_ip(&self) -> Option<IpAddr> {
        match &self.network {
            Network::Ipv4(ip) => Some(IpAddr::V4(ip.src)),
            Network::Ipv6(ip) => Some(IpAddr::V6(ip.src)),
            _ => None,
        }
    }

    /// Destination IP address (IPv4 or IPv6).
    pub fn dst_ip(&self) -> Option<IpAddr> {
        match &self.network {
            Network::Ipv4(ip) => Some(IpAddr::V4(ip.dst)),
            Network::Ipv6(ip) => Some(IpAddr::V6(ip.dst)),
            _ => None,
        }
    }

    /// The upper-layer protocol number (after IPv6 extension headers).
    pub fn ip_protocol(&self) -> Option<u8> {
        match &self.network {
            Network::Ipv4(ip) => Some(ip.protocol),
            Network::Ipv6(ip) => Some(ip.protocol),
            _ => None,
        }
    }

    /// TTL or hop limit.
    pub fn ttl(&self) -> Option<u8> {
        match &self.network {
            Network::Ipv4(ip) => Some(ip.ttl),
            Network::Ipv6(ip) => Some(ip.hop_limit),
            _ => None,
        }
    }

    /// The IPv4 header, if any.
    pub fn ipv4(&self) -> Option<&Ipv4<'a>> {
        match &self.network {
            Network::Ipv4(ip) => Some(ip),
            _ => None,
        }
    }

    /// The IPv6 header, if any.
    pub fn ipv6(&self) -> Option<&Ipv6<'a>> {
        match &self.network {
            Network::Ipv6(ip) => Some(ip),
            _ => None,
        }
    }

    /// The ARP packet, if any.
    pub fn arp(&self) -> Option<&Arp> {
        match &self.network {
            Network::Arp(arp) => Some(arp),
            _ => None,
        }
    }

    /// The TCP header, if any.
    pub fn tcp(&self) -> Option<&Tcp<'a>> {
        match &self.transport {
            Transport::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// The UDP header, if any.
    pub fn udp(&self) -> Option<&Udp<'a>> {
        match &self.transport {
            Transport::Udp(u) => Some(u),
            _ => None,
        }
    }

    /// The ICMP or ICMPv6 message, if any.
    pub fn icmp(&self) -> Option<&Icmp<'a>> {
        match &self.transport {
            Transport::Icmpv4(i) | Transport::Icmpv6(i) => Some(i),
            _ => None,
        }
    }

    /// Source port (TCP or UDP).
    pub fn src_port(&self) -> Option<u16> {
        match &self.transport {
            Transport::Tcp(t) => Some(t.src_port),
            Transport::Udp(u) => Some(u.src_port),
            _ => None,
        }
    }

    /// Destination port (TCP or UDP).
    pub fn dst_port(&self) -> Option<u16> {
        match &self.transport {
            Transport::Tcp(t) => Some(t.dst_port),
            Transport::Udp(u) => Some(u.dst_port),
            _ => None,
        }
    }

    /// The application payload: TCP/UDP payload, ICMP data after the 8-byte header, or the
    /// raw data of fragments and undecoded protocols. Empty when there is none.
    pub fn l4_payload(&self) -> &'a [u8] {
        match self.transport {
            Transport::Tcp(t) => t.payload,
            Transport::Udp(u) => u.payload,
            Transport::Icmpv4(i) | Transport::Icmpv6(i) => i.payload,
            Transport::Fragment { data, .. } | Transport::Truncated { data, .. } | Transport::Other { data, .. } => {
                data
            }
            Transport::None => &[],
        }
    }

    /// The IP fragment this packet carries, if it is one (IPv4 MF/offset, or an IPv6
    /// fragment header).
    pub fn fragment(&self) -> Option<Fragment> {
        match &self.network {
            Network::Ipv4(ip) if ip.is_fragment() => Some(Fragment {
                id: u32::from(ip.id),
                offset: u32::from(ip.frag_offset) * 8,
                len: u32::try_from(ip.declared_payload_len()).unwrap_or(u32::MAX),
                more: ip.more_fragments,
                protocol: ip.protocol,
            }),
            Network::Ipv6(ip) => {
                let f = ip.ext.fragment?;
                Some(Fragment {
                    id: f.id,
                    offset: u32::from(f.offset) * 8,
                    len: u32::try_from(ip.declared_payload_len()).unwrap_or(u32::MAX),
                    more: f.more,
                    protocol: ip.protocol,
                })
            }
            _ => None,
        }
    }

    /// Verifies the TCP, UDP, ICMP or ICMPv6 checksum (costly: reads the whole segment,
    /// so it is never done by [`crate::decode`]). Sets [`Anomalies::L4_CHECKSUM_BAD`]
    /// when it fails. `None` when it cannot be checked: fragment, segment cut by the
    /// snaplen, no transport header, or a UDP/IPv4 datagram without a checksum.
    pub fn verify_l4_checksum(&mut self) -> Option<bool> {
        let ok = self.l4_checksum_ok()?;
        if !ok {
            self.anomalies.insert(Anomalies::L4_CHECKSUM_BAD);
        }
        Some(ok)
    }

    /// The result of [`Packet::verify_l4_checksum`] without recording it in
    /// [`Packet::anomalies`] (so a caller holding a shared reference need not copy the
    /// packet to check it).
    pub fn l4_checksum_ok(&self) -> Option<bool> {
        if !self.l4_complete {
            return None;
        }
        let pseudo = match (&self.network, &self.transport) {
            (Network::Ipv4(_), Transport::Udp(u)) if u.checksum == 0 => {
                return None; // "no checksum" is legal for UDP over IPv4
            }
            (Network::Ipv4(ip), Transport::Tcp(_) | Transport::Udp(_)) => {
                checksum::pseudo_v4(ip.src, ip.dst, ip.protocol, self.l4_segment.len())
            }
            (Network::Ipv4(_), Transport::Icmpv4(_)) => 0, // ICMPv4 has no pseudo-header
            (Network::Ipv6(ip), Transport::Tcp(_) | Transport::Udp(_) | Transport::Icmpv6(_)) => {
                checksum::pseudo_v6(&ip.src, &ip.dst, ip.protocol, self.l4_segment.len())
            }
            _ => return None,
        };
        Some(checksum::finish(checksum::sum(self.l4_segment, pseudo)) == 0)
    }
}
