//! Anomaly flags raised while decoding one frame.

use std::fmt;

/// A set of anomalies found in one frame, as a bit set (cheap to copy, test and merge).
///
/// Flags come in three kinds: **truncation** (the capture or the packet ends inside a
/// header), **malformed** (a header field is impossible or inconsistent) and **suspicious**
/// (legal encoding, but a combination no honest stack sends: SYN+FIN, XMAS, NULL, land).
/// [`Anomalies::CAPTURE_TRUNCATED`] is informational: the snap length cut the payload, which
/// is normal for captures taken with a small snaplen.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Anomalies(u32);

macro_rules! flags {
    ($( $(#[$doc:meta])* $name:ident = $bit:expr, $text:literal; )*) => {
        impl Anomalies {
            $( $(#[$doc])* pub const $name: Anomalies = Anomalies(1 << $bit); )*

            /// Every flag with its stable snake_case name, in bit order.
            pub const ALL: &'static [(Anomalies, &'static str)] = &[ $( (Anomalies::$name, $text), )* ];
        }
    };
}

flags! {
    /// The frame ends inside the link-layer header.
    L2_TRUNCATED = 0, "l2_truncated";
    /// A link-layer header is inconsistent (radiotap length, 802.11 header, …).
    L2_MALFORMED = 1, "l2_malformed";
    /// More stacked VLAN tags than [`crate::MAX_VLAN_TAGS`]; decoding stopped there.
    VLAN_TOO_DEEP = 2, "vlan_too_deep";
    /// The frame ends inside the network-layer (ARP, IPv4, IPv6 or extension) header.
    L3_TRUNCATED = 3, "l3_truncated";
    /// The IP version nibble does not match the link type or EtherType.
    IP_BAD_VERSION = 4, "ip_bad_version";
    /// IPv4 IHL below 5 words or beyond the total length.
    IPV4_BAD_IHL = 5, "ipv4_bad_ihl";
    /// IPv4 total length smaller than the header (a zero total length, written by TCP
    /// segmentation offload on the capturing host, is tolerated and not flagged).
    IPV4_BAD_TOTAL_LEN = 6, "ipv4_bad_total_len";
    /// The IPv4 header checksum does not verify (beware: checksum offload on the capturing
    /// host produces this on locally sent packets).
    IPV4_BAD_CHECKSUM = 7, "ipv4_bad_checksum";
    /// The reserved ("evil") bit of the IPv4 flags is set.
    IPV4_RESERVED_FLAG = 8, "ipv4_reserved_flag";
    /// Fragment offset plus length exceeds 65 535 bytes (ping of death).
    IP_FRAGMENT_OVERSIZE = 9, "ip_fragment_oversize";
    /// More IPv6 extension headers than [`crate::MAX_IPV6_EXT_HEADERS`]; decoding stopped.
    IPV6_TOO_MANY_EXT_HEADERS = 10, "ipv6_too_many_ext_headers";
    /// The frame ends inside the transport (TCP, UDP, ICMP) header.
    L4_TRUNCATED = 11, "l4_truncated";
    /// TCP data offset below 5 words or beyond the segment.
    TCP_BAD_DATA_OFFSET = 12, "tcp_bad_data_offset";
    /// TCP SYN and FIN together.
    TCP_SYN_FIN = 13, "tcp_syn_fin";
    /// TCP SYN and RST together.
    TCP_SYN_RST = 14, "tcp_syn_rst";
    /// TCP FIN+PSH+URG (the "XMAS" scan).
    TCP_XMAS = 15, "tcp_xmas";
    /// TCP with none of FIN, SYN, RST, PSH, ACK, URG (the "NULL" scan).
    TCP_NULL = 16, "tcp_null";
    /// One of the three reserved TCP header bits is set.
    TCP_RESERVED_BITS = 17, "tcp_reserved_bits";
    /// UDP length field below 8 or beyond the IP payload.
    UDP_BAD_LENGTH = 18, "udp_bad_length";
    /// Same source and destination address and port (land attack).
    LAND = 19, "land";
    /// The TCP/UDP/ICMP checksum does not verify. Only set by
    /// [`crate::Packet::verify_l4_checksum`], never by [`crate::decode`].
    L4_CHECKSUM_BAD = 20, "l4_checksum_bad";
    /// Informational: the capture holds fewer bytes than the IP header announces (snaplen).
    CAPTURE_TRUNCATED = 21, "capture_truncated";
}

impl Anomalies {
    /// No anomaly.
    pub const NONE: Anomalies = Anomalies(0);

    /// The flags that mean "a header was cut short".
    pub const TRUNCATED_MASK: Anomalies = Anomalies(Self::L2_TRUNCATED.0 | Self::L3_TRUNCATED.0 | Self::L4_TRUNCATED.0);

    /// The flags that mean "a header field is impossible or inconsistent".
    pub const MALFORMED_MASK: Anomalies = Anomalies(
        Self::L2_MALFORMED.0
            | Self::VLAN_TOO_DEEP.0
            | Self::IP_BAD_VERSION.0
            | Self::IPV4_BAD_IHL.0
            | Self::IPV4_BAD_TOTAL_LEN.0
            | Self::IPV6_TOO_MANY_EXT_HEADERS.0
            | Self::TCP_BAD_DATA_OFFSET.0
            | Self::UDP_BAD_LENGTH.0,
    );

    /// The flags a detector would report as suspicious: impossible TCP flag combinations,
    /// reserved bits, land, oversize fragments and bad checksums.
    pub const SUSPICIOUS_MASK: Anomalies = Anomalies(
        Self::TCP_SYN_FIN.0
            | Self::TCP_SYN_RST.0
            | Self::TCP_XMAS.0
            | Self::TCP_NULL.0
            | Self::TCP_RESERVED_BITS.0
            | Self::IPV4_RESERVED_FLAG.0
            | Self::IP_FRAGMENT_OVERSIZE.0
            | Self::LAND.0
            | Self::IPV4_BAD_CHECKSUM.0
            | Self::L4_CHECKSUM_BAD.0,
    );

    /// The raw bits (stable: bit positions never change meaning).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: Anomalies) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when at least one flag of `other` is set in `self`.
    pub const fn intersects(self, other: Anomalies) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Anomalies) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: Anomalies) {
        self.0 &= !other.0;
    }

    /// The names of the flags that are set, in bit order (for evidence and logs).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL.iter().filter(move |(flag, _)| self.contains(*flag)).map(|(_, name)| *name)
    }
}

impl std::ops::BitOr for Anomalies {
    type Output = Anomalies;
    fn bitor(self, rhs: Anomalies) -> Anomalies {
        Anomalies(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Anomalies {
    fn bitor_assign(&mut self, rhs: Anomalies) {
        self.0 |= rhs.0;
    }
}

impl std::ops::BitAnd for Anomalies {
    type Output = Anomalies;
    fn bitand(self, rhs: Anomalies) -> Anomalies {
        Anomalies(self.0 & rhs.0)
    }
}

impl fmt::Debug for Anomalies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl fmt::Display for Anomalies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for name in self.names() {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_bits_and_masks_are_disjoint() {
        let a = Anomalies::TCP_XMAS | Anomalies::LAND;
        assert_eq!(a.names().collect::<Vec<_>>(), ["tcp_xmas", "land"]);
        assert_eq!(a.to_string(), "tcp_xmas,land");
        assert!(a.contains(Anomalies::LAND));
        assert!(!a.contains(Anomalies::TCP_NULL));
        assert!(a.intersects(Anomalies::SUSPICIOUS_MASK));
        assert!(!Anomalies::TRUNCATED_MASK.intersects(Anomalies::MALFORMED_MASK));
        assert!(!Anomalies::MALFORMED_MASK.intersects(Anomalies::SUSPICIOUS_MASK));
        // Every flag has a distinct bit.
        let mut all = 0u32;
        for (flag, _) in Anomalies::ALL {
            assert_eq!(all & flag.bits(), 0);
            all |= flag.bits();
        }
        let mut b = a;
        b.remove(Anomalies::LAND);
        assert_eq!(b, Anomalies::TCP_XMAS);
        assert!(Anomalies::NONE.is_empty());
    }
}
