//! L2–L4 decoding tests over hand-built frames, one group per link type and protocol.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::*;

const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];

fn src6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}
fn dst6() -> Ipv6Addr {
    "2001:db8::2".parse().unwrap()
}

fn set_csum(buf: &mut [u8], at: usize, pseudo: u64) {
    buf[at] = 0;
    buf[at + 1] = 0;
    let c = checksum::finish(checksum::sum(buf, pseudo));
    buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn tcp_seg(sport: u16, dport: u16, flags: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let doff = (20 + options.len()) / 4;
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend(1000u32.to_be_bytes());
    t.extend(2000u32.to_be_bytes());
    t.push(((doff as u8) << 4) | ((flags >> 8) as u8 & 0x0f));
    t.push(flags as u8);
    t.extend(65535u16.to_be_bytes());
    t.extend([0, 0, 0, 0]);
    t.extend(options);
    t.extend(payload);
    t
}

fn udp_dgram(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(((8 + payload.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    u
}

fn l4_csum_offset(proto: u8) -> usize {
    match proto {
        6 => 16,
        17 => 6,
        _ => 2,
    }
}

/// IPv4 packet with valid header and L4 checksums.
fn ipv4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, mut l4: Vec<u8>) -> Vec<u8> {
    let pseudo = if proto == 1 { 0 } else { checksum::pseudo_v4(src, dst, proto, l4.len()) };
    if matches!(proto, 1 | 6 | 17) && l4.len() >= l4_csum_offset(proto) + 2 {
        set_csum(&mut l4, l4_csum_offset(proto), pseudo);
    }
    let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    h.extend(src.octets());
    h.extend(dst.octets());
    set_csum(&mut h, 10, 0);
    h.extend(l4);
    h
}

/// IPv6 packet (with optional raw extension headers) with a valid L4 checksum.
fn ipv6(first_nh: u8, ext: &[u8], proto: u8, mut l4: Vec<u8>) -> Vec<u8> {
    if matches!(proto, 6 | 17 | 58) && l4.len() >= l4_csum_offset(proto) + 2 {
        let pseudo = checksum::pseudo_v6(&src6(), &dst6(), proto, l4.len());
        set_csum(&mut l4, l4_csum_offset(proto), pseudo);
    }
    let mut h = vec![0x60, 0, 0, 0];
    h.extend(((ext.len() + l4.len()) as u16).to_be_bytes());
    h.push(first_nh);
    h.push(64);
    h.extend(src6().octets());
    h.extend(dst6().octets());
    h.extend(ext);
    h.extend(l4);
    h
}

fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = MAC_B.to_vec();
    f.extend(MAC_A);
    f.extend(ether_type.to_be_bytes());
    f.extend(payload);
    f
}

const SYN_OPTS: [u8; 20] = [
    2, 4, 0x05, 0xb4, // MSS 1460
    4, 2, // SACK permitted
    8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // timestamps 1/0
    1, // NOP
    3, 3, 7, // wscale 7
];

#[test]
fn ethernet_ipv4_tcp_syn() {
    let frame = eth(0x0800, &ipv4(6, SRC4, DST4, tcp_seg(40000, 80, TcpFlags::SYN, &SYN_OPTS, b"")));
    let mut p = decode(LinkType::ETHERNET, &frame).unwrap();
    assert_eq!(p.outcome(), Outcome::Complete);
    assert!(p.anomalies.is_empty(), "{:?}", p.anomalies);
    assert_eq!(p.link.src_mac, Some(MacAddr(MAC_A)));
    assert_eq!(p.link.dst_mac, Some(MacAddr(MAC_B)));
    assert_eq!(p.link.ether_type, Some(0x0800));
    assert_eq!(p.src_ip(), Some(IpAddr::V4(SRC4)));
    assert_eq!(p.dst_ip(), Some(IpAddr::V4(DST4)));
    assert_eq!(p.ip_protocol(), Some(6));
    assert_eq!(p.ttl(), Some(64));
    assert_eq!((p.src_port(), p.dst_port()), (Some(40000), Some(80)));
    let ip = p.ipv4().unwrap();
    assert!(ip.dont_fragment && !ip.is_fragment());
    assert_eq!(ip.id, 0x1234);
    assert_eq!(p.fragment(), None);
    let t = *p.tcp().unwrap();
    assert!(t.flags.is_syn_only());
    assert_eq!(t.flags.to_string(), "S");
    assert_eq!((t.seq, t.ack, t.window, t.data_offset), (1000, 2000, 65535, 10));
    let o = t.parsed_options();
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, Some(7));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps, Some((1, 0)));
    assert!(!o.malformed);
    assert_eq!(t.options().filter(|o| *o == TcpOption::Nop).count(), 1);
    assert_eq!(p.verify_l4_checksum(), Some(true));
    assert!(p.anomalies.is_empty());
}

#[test]
fn l4_checksum_failure_is_flagged_only_when_asked() {
    let mut frame = eth(0x0800, &ipv4(6, SRC4, DST4, tcp_seg(1, 2, TcpFlags::ACK, &[], b"hello")));
    let last = frame.len() - 1;
    frame[last] ^= 0xff;
    let mut p = decode(LinkType::ETHERNET, &frame).unwrap();
    assert!(!p.anomalies.contains(Anomalies::L4_CHECKSUM_BAD));
    assert_eq!(p.verify_l4_checksum(), Some(false));
    assert!(p.anomalies.contains(Anomalies::L4_CHECKSUM_BAD));
    assert_eq!(p.l4_payload(), b"hell\x90" as &[u8]);
}

#[test]
fn ipv4_header_anomalies() {
    let good = ipv4(6, SRC4, DST4, tcp_seg(1, 2, TcpFlags::ACK, &[], b""));
    // Bad header checksum.
    let mut bad = good.clone();
    bad[10] ^= 1;
    let p = decode(LinkType::IPV4, &bad).unwrap();
    assert!(p.anomalies.contains(Anomalies::IPV4_BAD_CHECKSUM));
    assert!(p.tcp().is_some());
    // IHL 4.
    let mut bad = good.clone();
    bad[0] = 0x44;
    let p = decode(LinkType::IPV4, &bad).unwrap();
    assert!(p.anomalies.contains(Anomalies::IPV4_BAD_IHL));
    assert_eq!(p.outcome(), Outcome::Malformed);
    assert!(matches!(p.network, Network::Malformed { ether_type: 0x0800, .. }));
    // Total length below the header.
    let mut bad = good.clone();
    bad[2..4].copy_from_slice(&10u16.to_be_bytes());
    let p = decode(LinkType::IPV4, &bad).unwrap();
    assert!(p.anomalies.contains(Anomalies::IPV4_BAD_TOTAL_LEN));
    // Wrong version for the link type.
    let mut bad = good.clone();
    bad[0] = 0x65;
    let p = decode(LinkType::IPV4, &bad).unwrap();
    assert!(p.anomalies.contains(Anomalies::IP_BAD_VERSION));
    // Evil bit.
    let mut bad = good.clone();
    bad[6] |= 0x80;
    let p = decode(LinkType::IPV4, &bad).unwrap();
    assert!(p.anomalies.contains(Anomalies::IPV4_RESERVED_FLAG));
    // Total length 0 (segmentation offload) is trusted silently, payload from capture.
    let mut tso = good.clone();
    tso[2] = 0;
    tso[3] = 0;
    let p = decode(LinkType::IPV4, &tso).unwrap();
    assert!(!p.anomalies.contains(Anomalies::IPV4_BAD_TOTAL_LEN));
    assert!(p.tcp().is_some());
    // Ethernet padding is not payload.
    let mut padded = eth(0x0800, &good);
    padded.extend([0u8; 6]);
    let mut p = decode(LinkType::ETHERNET, &padded).unwrap();
    assert_eq!(p.l4_payload(), b"");
    assert_eq!(p.verify_l4_checksum(), Some(true));
}

#[test]
fn tcp_flag_anomalies_and_land() {
    let cases = [
        (TcpFlags::SYN | TcpFlags::FIN, Anomalies::TCP_SYN_FIN),
        (TcpFlags::SYN | TcpFlags::RST, Anomalies::TCP_SYN_RST),
        (TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG, Anomalies::TCP_XMAS),
        (0, Anomalies::TCP_NULL),
        (TcpFlags::SYN | 0x800, Anomalies::TCP_RESERVED_BITS),
    ];
    for (flags, want) in cases {
        let f = ipv4(6, SRC4, DST4, tcp_seg(1, 2, flags, &[], b""));
        let p = decode(LinkType::IPV4, &f).unwrap();
        assert_eq!(p.anomalies, want, "flags {flags:#x}");
        assert!(p.anomalies.intersects(Anomalies::SUSPICIOUS_MASK));
        assert_eq!(p.outcome(), Outcome::Complete);
    }
    // nmap's SYN+FIN+PSH+URG is both.
    let f = ipv4(6, SRC4, DST4, tcp_seg(1, 2, TcpFlags::SYN | TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG, &[], b""));
    let p = decode(LinkType::IPV4, &f).unwrap();
    assert_eq!(p.anomalies, Anomalies::TCP_SYN_FIN | Anomalies::TCP_XMAS);
    // Land: same address and port.
    let f = ipv4(6, SRC4, SRC4, tcp_seg(139, 139, TcpFlags::SYN, &[], b""));
    assert!(decode(LinkType::IPV4, &f).unwrap().anomalies.contains(Anomalies::LAND));
    let f = ipv4(17, SRC4, SRC4, udp_dgram(53, 53, b""));
    assert!(decode(LinkType::IPV4, &f).unwrap().anomalies.contains(Anomalies::LAND));
    let f = ipv4(17, SRC4, SRC4, udp_dgram(53, 54, b""));
    assert!(decode(LinkType::IPV4, &f).unwrap().anomalies.is_empty());
}

#[test]
fn tcp_data_offset_anomalies() {
    let mut seg = tcp_seg(1, 2, TcpFlags::ACK, &[], b"abcd");
    seg[12] = 0x40; // data offset 4
    let buf = ipv4(6, SRC4, DST4, seg);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert!(p.anomalies.contains(Anomalies::TCP_BAD_DATA_OFFSET));
    assert_eq!(p.outcome(), Outcome::Malformed);
    let t = p.tcp().unwrap();
    assert_eq!((t.data_offset, t.payload), (4, b"abcd" as &[u8]));
    let mut seg = tcp_seg(1, 2, TcpFlags::ACK, &[], b"abcd");
    seg[12] = 0xf0; // 60 bytes, beyond the 24-byte segment
    let buf = ipv4(6, SRC4, DST4, seg);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert!(p.anomalies.contains(Anomalies::TCP_BAD_DATA_OFFSET));
    assert!(p.tcp().unwrap().parsed_options().malformed || p.tcp().unwrap().payload.is_empty());
}

#[test]
fn every_truncation_point_is_clean() {
    let frame = eth(
        0x8100,
        &[&[0x00, 0x05, 0x08, 0x00][..], &ipv4(6, SRC4, DST4, tcp_seg(40000, 80, TcpFlags::SYN, &SYN_OPTS, b"data"))]
            .concat(),
    );
    for cut in 0..frame.len() {
        let p = decode(LinkType::ETHERNET, &frame[..cut]).unwrap();
        let expect_truncated = cut < 14 + 4 + 20 + 40;
        assert_eq!(p.outcome() == Outcome::Truncated, expect_truncated, "cut at {cut}: {:?}", p.anomalies);
        if cut >= 18 + 20 {
            assert!(p.ipv4().is_some());
            assert!(p.anomalies.contains(Anomalies::CAPTURE_TRUNCATED));
        }
        if cut >= 18 + 20 + 20 {
            assert!(p.tcp().is_some());
        }
    }
    let p = decode(LinkType::ETHERNET, &frame).unwrap();
    assert_eq!(p.link.vlans.ids(), &[5]);
    assert_eq!(p.outcome(), Outcome::Complete);
}

#[test]
fn snaplen_cut_payload_is_not_checksummed() {
    let frame = eth(0x0800, &ipv4(17, SRC4, DST4, udp_dgram(5000, 53, &[7u8; 100])));
    let mut p = decode(LinkType::ETHERNET, &frame[..frame.len() - 10]).unwrap();
    assert!(p.anomalies.contains(Anomalies::CAPTURE_TRUNCATED));
    assert_eq!(p.outcome(), Outcome::Complete);
    assert_eq!(p.udp().unwrap().payload.len(), 90);
    assert_eq!(p.verify_l4_checksum(), None);
}

#[test]
fn vlan_qinq_and_depth_bound() {
    let inner = ipv4(17, SRC4, DST4, udp_dgram(1, 2, b"x"));
    let mut qinq = vec![0x00, 0x0d, 0x81, 0x00, 0x20, 0x0a, 0x08, 0x00];
    qinq.extend(&inner);
    let f = eth(0x88a8, &qinq);
    let p = decode(LinkType::ETHERNET, &f).unwrap();
    assert_eq!(p.link.vlans.ids(), &[13, 10]);
    assert_eq!((p.link.vlans.outer(), p.link.vlans.inner()), (Some(13), Some(10)));
    assert!(p.udp().is_some());
    // MAX_VLAN_TAGS + 1 tags.
    let mut deep = Vec::new();
    for i in 0..=MAX_VLAN_TAGS {
        deep.extend([0, i as u8, 0x81, 0x00]);
    }
    deep.extend(&inner);
    let buf = eth(0x8100, &deep);
    let p = decode(LinkType::ETHERNET, &buf).unwrap();
    assert!(p.anomalies.contains(Anomalies::VLAN_TOO_DEEP));
    assert_eq!(p.link.vlans.len(), MAX_VLAN_TAGS);
    assert_eq!(p.outcome(), Outcome::Malformed);
}

#[test]
fn llc_snap_and_plain_llc() {
    let inner = ipv4(17, SRC4, DST4, udp_dgram(1, 2, b"x"));
    let mut snap = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    snap.extend(&inner);
    let len = snap.len() as u16;
    let buf = eth(len, &snap);
    let p = decode(LinkType::ETHERNET, &buf).unwrap();
    assert!(p.udp().is_some());
    let buf = eth(3, &[0x42, 0x42, 0x03]);
    let p = decode(LinkType::ETHERNET, &buf).unwrap();
    assert!(matches!(p.network, Network::Other { ether_type: 3, .. }));
    assert!(p.anomalies.is_empty());
}

#[test]
fn arp_requests_replies_and_truncation() {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 2];
    arp.extend(MAC_A);
    arp.extend([10, 0, 0, 1]);
    arp.extend(MAC_B);
    arp.extend([10, 0, 0, 2]);
    let buf = eth(0x0806, &arp);
    let p = decode(LinkType::ETHERNET, &buf).unwrap();
    let a = p.arp().unwrap();
    assert_eq!(a.op, Arp::OP_REPLY);
    assert_eq!(a.sender_mac, MacAddr(MAC_A));
    assert_eq!(a.sender_ip, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(a.target_mac, MacAddr(MAC_B));
    assert_eq!(a.target_ip, Ipv4Addr::new(10, 0, 0, 2));
    assert!(!a.is_gratuitous());
    assert_eq!(a.sender_mac.to_string(), "02:00:00:00:00:aa");
    let buf = eth(0x0806, &arp[..20]);
    let p = decode(LinkType::ETHERNET, &buf).unwrap();
    assert!(matches!(p.network, Network::Truncated { ether_type: 0x0806, .. }));
    assert_eq!(p.outcome(), Outcome::Truncated);
    // RARP decodes the same way.
    let buf = eth(0x8035, &arp);
    let p = decode(LinkType::ETHERNET, &buf).unwrap();
    assert_eq!(p.arp().unwrap().ether_type, 0x8035);
}

#[test]
fn linux_sll_and_sll2() {
    let inner = ipv4(17, SRC4, DST4, udp_dgram(5353, 53, b"q"));
    let mut sll = vec![0, 4, 0, 1, 0, 6];
    sll.extend(MAC_A);
    sll.extend([0, 0, 0x08, 0x00]);
    sll.extend(&inner);
    let p = decode(LinkType::LINUX_SLL, &sll).unwrap();
    assert_eq!(p.link.sll_packet_type, Some(4));
    assert_eq!(p.link.src_mac, Some(MacAddr(MAC_A)));
    assert_eq!(p.dst_port(), Some(53));

    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend(MAC_A);
    arp.extend([10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1]);
    let mut sll2 = vec![0x08, 0x06, 0, 0, 0, 0, 0, 2, 0, 1, 1, 6];
    sll2.extend(MAC_A);
    sll2.extend([0, 0]);
    sll2.extend(&arp);
    let p = decode(LinkType::LINUX_SLL2, &sll2).unwrap();
    assert_eq!(p.link.sll_packet_type, Some(1));
    assert!(p.arp().unwrap().is_gratuitous());
    assert_eq!(decode(LinkType::LINUX_SLL2, &sll2[..19]).unwrap().anomalies, Anomalies::L2_TRUNCATED);
    // Netlink over SLL is not an EtherType.
    let mut nl = vec![0, 4, 0x03, 0x38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    nl.extend(&inner);
    assert!(matches!(decode(LinkType::LINUX_SLL, &nl).unwrap().network, Network::Other { .. }));
}

#[test]
fn null_loop_and_raw_link_types() {
    let v4 = ipv4(17, SRC4, DST4, udp_dgram(1, 2, b""));
    let v6 = ipv6(17, &[], 17, udp_dgram(1, 2, b""));
    for (lt, hdr, body) in [
        (LinkType::NULL, 2u32.to_le_bytes(), &v4),
        (LinkType::NULL, 2u32.to_be_bytes(), &v4),
        (LinkType::NULL, 30u32.to_le_bytes(), &v6),
        (LinkType::NULL, 24u32.to_be_bytes(), &v6),
        (LinkType::LOOP, 2u32.to_be_bytes(), &v4),
    ] {
        let f = [&hdr[..], body].concat();
        let p = decode(lt, &f).unwrap();
        assert!(p.udp().is_some(), "{lt:?} {hdr:?}");
    }
    let buf = [&99u32.to_le_bytes()[..], &v4].concat();
    let p = decode(LinkType::NULL, &buf).unwrap();
    assert!(matches!(p.network, Network::Other { .. }));
    for lt in [LinkType::RAW, LinkType::RAW_OPENBSD, LinkType::RAW_BSDOS] {
        assert!(decode(lt, &v4).unwrap().ipv4().is_some());
        assert!(decode(lt, &v6).unwrap().ipv6().is_some());
        let p = decode(lt, &[0x50, 0, 0]).unwrap();
        assert!(p.anomalies.contains(Anomalies::IP_BAD_VERSION));
        assert_eq!(decode(lt, &[]).unwrap().outcome(), Outcome::Truncated);
    }
    assert!(decode(LinkType::IPV4, &v4).unwrap().ipv4().is_some());
    let p = decode(LinkType::IPV6, &v6).unwrap();
    assert_eq!(p.link.ether_type, Some(0x86dd));
    assert_eq!(p.src_ip(), Some(IpAddr::V6(src6())));
}

#[test]
fn unsupported_link_type_is_an_error() {
    let e = decode(LinkType(147), &[1, 2, 3]).unwrap_err();
    assert_eq!(e, DecodeError::UnsupportedLinkType(LinkType(147)));
    assert!(e.to_string().contains("147"));
    assert!(!LinkType(147).is_supported());
    assert!(LinkType::LINUX_SLL2.is_supported());
}

fn wifi_data(fcs: bool) -> Vec<u8> {
    let payload = ipv4(17, SRC4, DST4, udp_dgram(5353, 5353, b"mdns"));
    // Radiotap: version 0, length 18, present = TSFT | Flags | Rate; TSFT (8 bytes,
    // 8-aligned at offset 8), then flags at 16 and rate at 17.
    let mut f = vec![0, 0, 18, 0, 0b111, 0, 0, 0];
    f.extend([1, 2, 3, 4, 5, 6, 7, 8]);
    f.push(if fcs { 0x10 } else { 0 });
    f.push(2);
    // 802.11 data, FromDS: addr1 = DA, addr2 = BSSID, addr3 = SA; QoS data subtype 8.
    f.extend([0x88, 0x02, 0, 0]);
    f.extend(MAC_B);
    f.extend([0x02, 0, 0, 0, 0, 0xcc]);
    f.extend(MAC_A);
    f.extend([0, 0, 0, 0]); // seq ctl + QoS ctl
    f.extend([0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    f.extend(payload);
    if fcs {
        f.extend([0xde, 0xad, 0xbe, 0xef]);
    }
    f
}

#[test]
fn radiotap_80211() {
    for fcs in [false, true] {
        let f = wifi_data(fcs);
        let mut p = decode(LinkType::IEEE802_11_RADIOTAP, &f).unwrap();
        assert_eq!(p.link.src_mac, Some(MacAddr(MAC_A)));
        assert_eq!(p.link.dst_mac, Some(MacAddr(MAC_B)));
        assert_eq!(p.dst_port(), Some(5353));
        assert_eq!(p.l4_payload(), b"mdns" as &[u8]);
        assert!(p.anomalies.is_empty(), "{:?}", p.anomalies);
        assert_eq!(p.verify_l4_checksum(), Some(true));
    }
    // A beacon: no network layer, no anomaly.
    let mut beacon = vec![0, 0, 8, 0, 0, 0, 0, 0, 0x80, 0];
    beacon.extend([0u8; 30]);
    let p = decode(LinkType::IEEE802_11_RADIOTAP, &beacon).unwrap();
    assert_eq!(p.network, Network::None);
    assert!(p.anomalies.is_empty());
    // Bogus radiotap length.
    let buf = [0, 0, 4, 0, 0, 0, 0, 0];
    let p = decode(LinkType::IEEE802_11_RADIOTAP, &buf).unwrap();
    assert!(p.anomalies.contains(Anomalies::L2_MALFORMED));
    let buf = [0, 0, 200, 0, 0, 0, 0, 0];
    let p = decode(LinkType::IEEE802_11_RADIOTAP, &buf).unwrap();
    assert!(p.anomalies.contains(Anomalies::L2_TRUNCATED));
}

#[test]
fn ipv4_fragments() {
    let seg = udp_dgram(1234, 53, &[9u8; 40]);
    let mut first = ipv4(17, SRC4, DST4, seg[..24].to_vec());
    first[6] = 0x20; // MF, offset 0
    first[10] = 0;
    first[11] = 0;
    set_csum(&mut first[..20], 10, 0);
    let mut p = decode(LinkType::IPV4, &first).unwrap();
    assert!(p.anomalies.is_empty(), "{:?}", p.anomalies);
    let u = p.udp().unwrap();
    assert_eq!((u.dst_port, u.length, u.payload.len()), (53, 48, 16));
    assert_eq!(p.fragment(), Some(Fragment { id: 0x1234, offset: 0, len: 24, more: true, protocol: 17 }));
    assert_eq!(p.verify_l4_checksum(), None);

    let mut later = ipv4(17, SRC4, DST4, seg[24..].to_vec());
    later[6] = 0x00;
    later[7] = 3; // offset 24 bytes, last fragment
    set_csum(&mut later[..20], 10, 0);
    let p = decode(LinkType::IPV4, &later).unwrap();
    assert!(matches!(p.transport, Transport::Fragment { protocol: 17, .. }));
    assert_eq!(p.src_port(), None);
    assert_eq!(p.fragment().map(|f| (f.offset, f.len, f.more)), Some((24, 24, false)));

    let mut pod = ipv4(1, SRC4, DST4, vec![0u8; 100]);
    pod[6] = 0x1f;
    pod[7] = 0xff; // offset 65528
    set_csum(&mut pod[..20], 10, 0);
    let p = decode(LinkType::IPV4, &pod).unwrap();
    assert!(p.anomalies.contains(Anomalies::IP_FRAGMENT_OVERSIZE));
}

#[test]
fn ipv6_extension_chain_and_fragments() {
    // hop-by-hop (8 bytes) -> dest opts (8) -> TCP
    let ext = [60, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0];
    let f = ipv6(0, &ext, 6, tcp_seg(5, 443, TcpFlags::SYN, &[], b""));
    let buf = eth(0x86dd, &f);
    let mut p = decode(LinkType::ETHERNET, &buf).unwrap();
    let ip = p.ipv6().unwrap();
    assert_eq!((ip.next_header, ip.protocol, ip.ext.count), (0, 6, 2));
    assert!(ip.ext.hop_by_hop);
    assert_eq!(ip.ext.dest_opts, 1);
    assert_eq!(ip.ext_headers.len(), 16);
    assert_eq!(p.dst_port(), Some(443));
    assert_eq!(p.verify_l4_checksum(), Some(true));

    // Routing header type 4 (SRH), segments left 1.
    let f = ipv6(43, &[17, 0, 4, 1, 0, 0, 0, 0], 17, udp_dgram(1, 2, b""));
    let p = decode(LinkType::IPV6, &f).unwrap();
    assert_eq!(p.ipv6().unwrap().ext.routing, Some((4, 1)));
    assert!(p.udp().is_some());

    // First fragment: decoded into ICMPv6; later fragment: not.
    let echo = vec![128, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3, 4];
    let frag_first = [58, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]; // offset 0, M=1
    let f = ipv6(44, &frag_first, 58, echo.clone());
    let mut p = decode(LinkType::IPV6, &f).unwrap();
    let e = p.icmp().unwrap().echo().unwrap();
    assert_eq!((e.request, e.id, e.seq), (true, 7, 1));
    let frag = p.fragment().unwrap();
    assert_eq!((frag.id, frag.offset, frag.more, frag.protocol), (0xdeadbeef, 0, true, 58));
    assert_eq!(p.verify_l4_checksum(), None);
    let frag_later = [58, 0, 0x00, 0xa0, 0xde, 0xad, 0xbe, 0xef]; // offset 20 units = 160 bytes
    let f = ipv6(44, &frag_later, 58, vec![1, 2, 3, 4]);
    let p = decode(LinkType::IPV6, &f).unwrap();
    assert!(matches!(p.transport, Transport::Fragment { protocol: 58, .. }));
    assert_eq!(p.fragment().map(|f| (f.offset, f.len)), Some((160, 4)));

    // Too many extension headers.
    let mut chain = Vec::new();
    for _ in 0..=MAX_IPV6_EXT_HEADERS {
        chain.extend([60, 0, 1, 4, 0, 0, 0, 0]);
    }
    let f = ipv6(60, &chain, 60, vec![]);
    let p = decode(LinkType::IPV6, &f).unwrap();
    assert!(p.anomalies.contains(Anomalies::IPV6_TOO_MANY_EXT_HEADERS));
    assert_eq!(p.outcome(), Outcome::Malformed);

    // Extension header cut short.
    let f = ipv6(0, &[6, 3, 0, 0], 6, vec![]);
    let p = decode(LinkType::IPV6, &f).unwrap();
    assert!(p.anomalies.contains(Anomalies::L3_TRUNCATED));
    assert!(p.ipv6().is_some());
    assert_eq!(p.transport, Transport::None);
}

#[test]
fn icmp_v4_and_v6() {
    let echo = vec![8, 0, 0, 0, 0x12, 0x34, 0, 9, b'p', b'i', b'n', b'g'];
    let mut p_bytes = ipv4(1, SRC4, DST4, echo);
    let mut p = decode(LinkType::IPV4, &p_bytes).unwrap();
    let i = *p.icmp().unwrap();
    assert!(i.is_echo_request() && !i.v6);
    assert_eq!(i.echo().map(|e| (e.id, e.seq)), Some((0x1234, 9)));
    assert_eq!(i.payload, b"ping");
    assert_eq!(p.verify_l4_checksum(), Some(true));
    let last = p_bytes.len() - 1;
    p_bytes[last] = b'G';
    let mut p = decode(LinkType::IPV4, &p_bytes).unwrap();
    assert_eq!(p.verify_l4_checksum(), Some(false));

    let reply = vec![129, 0, 0, 0, 0, 1, 0, 2];
    let buf = ipv6(58, &[], 58, reply);
    let mut p = decode(LinkType::IPV6, &buf).unwrap();
    assert!(matches!(p.transport, Transport::Icmpv6(_)));
    assert!(p.icmp().unwrap().is_echo_reply());
    assert_eq!(p.verify_l4_checksum(), Some(true));
    // Destination unreachable: no echo.
    let buf = ipv4(1, SRC4, DST4, vec![3, 3, 0, 0, 0, 0, 0, 0]);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert_eq!(p.icmp().unwrap().echo(), None);
    // Truncated ICMP header.
    let buf = ipv4(1, SRC4, DST4, vec![8, 0, 0]);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert!(matches!(p.transport, Transport::Truncated { protocol: 1, .. }));
    assert_eq!(p.outcome(), Outcome::Truncated);
}

#[test]
fn udp_length_and_zero_checksum() {
    let mut d = udp_dgram(1, 2, b"abc");
    d[4..6].copy_from_slice(&4u16.to_be_bytes());
    let buf = ipv4(17, SRC4, DST4, d);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert!(p.anomalies.contains(Anomalies::UDP_BAD_LENGTH));
    assert_eq!(p.udp().unwrap().payload, b"abc");
    let mut d = udp_dgram(1, 2, b"abc");
    d[4..6].copy_from_slice(&200u16.to_be_bytes());
    let buf = ipv4(17, SRC4, DST4, d);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert!(p.anomalies.contains(Anomalies::UDP_BAD_LENGTH));
    // A zero checksum means "none" over IPv4.
    let mut f = ipv4(17, SRC4, DST4, udp_dgram(1, 2, b"abc"));
    f[26] = 0;
    f[27] = 0;
    let mut p = decode(LinkType::IPV4, &f).unwrap();
    assert_eq!(p.verify_l4_checksum(), None);
    let buf = ipv4(17, SRC4, DST4, vec![0, 1, 0]);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert!(matches!(p.transport, Transport::Truncated { protocol: 17, .. }));
}

#[test]
fn other_protocols_pass_through() {
    let buf = ipv4(47, SRC4, DST4, vec![0, 0, 0x08, 0x00]);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert!(matches!(p.transport, Transport::Other { protocol: 47, data } if data.len() == 4));
    let buf = eth(0x88cc, b"lldp");
    let p = decode(LinkType::ETHERNET, &buf).unwrap();
    assert!(matches!(p.network, Network::Other { ether_type: 0x88cc, .. }));
    assert_eq!(p.l4_payload(), b"");
}

#[test]
fn tcp_option_iteration_stops_on_malformed() {
    let seg = tcp_seg(1, 2, TcpFlags::SYN, &[2, 4, 5, 0xb4, 8, 1, 0, 0], b"");
    let buf = ipv4(6, SRC4, DST4, seg);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    let o = p.tcp().unwrap().parsed_options();
    assert_eq!(o.mss, Some(0x05b4));
    assert!(o.malformed);
    // End of option list stops cleanly.
    let seg = tcp_seg(1, 2, TcpFlags::SYN, &[1, 0, 9, 9], b"");
    let buf = ipv4(6, SRC4, DST4, seg);
    let p = decode(LinkType::IPV4, &buf).unwrap();
    assert!(!p.tcp().unwrap().parsed_options().malformed);
}

#[test]
fn flow_tuple_agrees_with_decode_and_declines_the_rest() {
    use crate::hint::{FlowTuple, IPPROTO_TCP, IPPROTO_UDP, flow_tuple};
    let tcp4 = ipv4(6, SRC4, DST4, tcp_seg(51000, 443, 0x18, &[], b"data"));
    let udp6 = ipv6(17, &[], 17, udp_dgram(5353, 53, b"q"));
    let mut qinq = vec![0x00, 0x0d, 0x81, 0x00, 0x20, 0x0a, 0x08, 0x00];
    qinq.extend(&tcp4);
    // (link type, frame, (protocol, source port, destination port))
    let cases = [
        (LinkType::ETHERNET, eth(0x0800, &tcp4), (IPPROTO_TCP, 51000, 443)),
        (LinkType::ETHERNET, eth(0x86dd, &udp6), (IPPROTO_UDP, 5353, 53)),
        (LinkType::ETHERNET, eth(0x88a8, &qinq), (IPPROTO_TCP, 51000, 443)),
        (LinkType::RAW, tcp4.clone(), (IPPROTO_TCP, 51000, 443)),
    ];
    for (lt, frame, want) in &cases {
        let t = flow_tuple(*lt, frame);
        assert_eq!(t.map(|t| (t.protocol, t.src_port, t.dst_port)), Some(*want));
        let p = decode(*lt, frame).unwrap();
        let t: FlowTuple = t.unwrap();
        assert_eq!((Some(t.src), Some(t.dst)), (p.src_ip(), p.dst_ip()));
        assert_eq!((Some(t.src_port), Some(t.dst_port)), (p.src_port(), p.dst_port()));
        assert_eq!(t.tcp_flags, p.tcp().map_or(0, |t| t.flags.0 as u8));
        // Every prefix: no panic, and a tuple only when the ports are there.
        for n in 0..frame.len() {
            if let Some(t) = flow_tuple(*lt, &frame[..n]) {
                assert_eq!(Some(t.dst_port), p.dst_port());
            }
        }
    }
    // Declined: ICMP, ARP, a later IPv4 fragment, IPv6 with an extension header, an
    // unsupported link type.
    let icmp = ipv4(1, SRC4, DST4, vec![8, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(flow_tuple(LinkType::ETHERNET, &eth(0x0800, &icmp)), None);
    assert_eq!(flow_tuple(LinkType::ETHERNET, &eth(0x0806, &[0; 28])), None);
    let mut frag = tcp4.clone();
    frag[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
    assert_eq!(flow_tuple(LinkType::RAW, &frag), None);
    let hop_by_hop = [17, 0, 1, 4, 0, 0, 0, 0];
    let ext6 = ipv6(0, &hop_by_hop, 17, udp_dgram(1, 2, b"x"));
    assert_eq!(flow_tuple(LinkType::RAW, &ext6), None);
    assert_eq!(flow_tuple(LinkType::LINUX_SLL, &eth(0x0800, &tcp4)), None);
}
