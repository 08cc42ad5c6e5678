//! Packet builders for tests, benchmarks and capture generators: Ethernet frames carrying
//! ARP, IPv4/IPv6 with TCP, UDP or ICMP (correct checksums), DNS messages, TLS hellos and
//! certificates, and classic pcap framing. Pure functions returning bytes.
//!
//! Not used by the engine itself; public so `vigil-analyze`'s tests and the `gen_mixed`
//! example build the same packets.

use std::net::{IpAddr, Ipv4Addr};

use crate::Frame;

/// A MAC address from its last byte (`02:00:00:00:00:xx`, locally administered).
pub fn mac(last: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, last]
}

/// Parses an address literal; panics on a typo (test code only).
pub fn ip(s: &str) -> IpAddr {
    match s.parse() {
        Ok(ip) => ip,
        Err(_) => panic!("bad IP literal {s:?} in a test"),
    }
}

/// The Internet checksum (RFC 1071) of `data` with `initial` folded in.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut s = 0u32;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            add(&a.octets());
            add(&b.octets());
        }
        (a, b) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(x) => x.to_ipv6_mapped().octets(),
                IpAddr::V6(x) => x.octets(),
            };
            add(&v6(a));
            add(&v6(b));
        }
    }
    s + u32::from(proto) + len as u32
}

/// An Ethernet II frame around an IP packet with transport `proto` and segment `l4` (whose
/// checksum field, at `csum_at`, is filled in here; `None` for no L4 checksum).
#[allow(clippy::too_many_arguments)]
pub fn ip_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ttl: u8,
    ip_id: u16,
    mut l4: Vec<u8>,
    csum_at: Option<usize>,
) -> Vec<u8> {
    if let Some(at) = csum_at {
        let pseudo = if proto == 1 { 0 } else { pseudo_sum(src, dst, proto, l4.len()) };
        let c = checksum(&l4, pseudo);
        let c = if c == 0 && proto == 17 { 0xffff } else { c };
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = Vec::with_capacity(14 + 40 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + l4.len()) as u16;
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, proto, 0, 0];
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[4..6].copy_from_slice(&ip_id.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = checksum(&h, 0);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
        }
        _ => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(x) => x.to_ipv6_mapped(),
                IpAddr::V6(x) => x,
            };
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.push(if proto == 1 { 58 } else { proto });
            f.push(ttl);
            f.extend_from_slice(&v6(src).octets());
            f.extend_from_slice(&v6(dst).octets());
        }
    }
    f.extend_from_slice(&l4);
    f
}

/// TCP flag bits (as in `vigil_decode::TcpFlags`).
pub mod flags {
    /// FIN.
    pub const FIN: u16 = 0x01;
    /// SYN.
    pub const SYN: u16 = 0x02;
    /// RST.
    pub const RST: u16 = 0x04;
    /// PSH.
    pub const PSH: u16 = 0x08;
    /// ACK.
    pub const ACK: u16 = 0x10;
    /// URG.
    pub const URG: u16 = 0x20;
    /// SYN+ACK.
    pub const SYN_ACK: u16 = SYN | ACK;
    /// PSH+ACK (data).
    pub const PSH_ACK: u16 = PSH | ACK;
}

/// A TCP segment in an Ethernet frame, built field by field.
#[derive(Clone, Debug)]
pub struct TcpPacket {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Flags ([`flags`]).
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Window.
    pub window: u16,
    /// Raw options (padded to 4 bytes here).
    pub options: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl TcpPacket {
    /// An ACK segment `src:sport -> dst:dport` with MACs 02:..:01 → 02:..:02.
    pub fn new(src: &str, sport: u16, dst: &str, dport: u16) -> Self {
        TcpPacket {
            src_mac: mac(1),
            dst_mac: mac(2),
            src: ip(src),
            dst: ip(dst),
            sport,
            dport,
            flags: flags::ACK,
            seq: 1000,
            ack: 1,
            window: 65535,
            options: Vec::new(),
            payload: Vec::new(),
        }
    }
    /// Sets the flags.
    pub fn flags(mut self, f: u16) -> Self {
        self.flags = f;
        self
    }
    /// Sets the sequence number.
    pub fn seq(mut self, s: u32) -> Self {
        self.seq = s;
        self
    }
    /// Sets the acknowledgement number.
    pub fn ack(mut self, a: u32) -> Self {
        self.ack = a;
        self
    }
    /// Sets the payload.
    pub fn payload(mut self, p: &[u8]) -> Self {
        self.payload = p.to_vec();
        self
    }
    /// Sets the MACs.
    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Self {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }
    /// Sets the window.
    pub fn window(mut self, w: u16) -> Self {
        self.window = w;
        self
    }
    /// The frame bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut opts = self.options.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let off = ((20 + opts.len()) / 4) as u16;
        let mut t = Vec::with_capacity(20 + opts.len() + self.payload.len());
        t.extend_from_slice(&self.sport.to_be_bytes());
        t.extend_from_slice(&self.dport.to_be_bytes());
        t.extend_from_slice(&self.seq.to_be_bytes());
        t.extend_from_slice(&self.ack.to_be_bytes());
        let word = (off << 12) | (self.flags & 0x0fff);
        t.extend_from_slice(&word.to_be_bytes());
        t.extend_from_slice(&self.window.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(&opts);
        t.extend_from_slice(&self.payload);
        ip_frame(self.src_mac, self.dst_mac, self.src, self.dst, 6, 64, 1, t, Some(16))
    }
}

/// A UDP datagram in an Ethernet frame.
pub fn udp(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    udp_macs(mac(1), mac(2), src, sport, dst, dport, payload)
}

/// A UDP datagram with explicit MACs.
pub fn udp_macs(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    ip_frame(src_mac, dst_mac, ip(src), ip(dst), 17, 64, 1, u, Some(6))
}

/// An ICMP (or ICMPv6 for IPv6 addresses) echo request.
pub fn icmp_echo(src: &str, dst: &str, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    echo(src, dst, id, seq, payload, false)
}

/// An ICMP (or ICMPv6 for IPv6 addresses) echo reply.
pub fn icmp_echo_reply(src: &str, dst: &str, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    echo(src, dst, id, seq, payload, true)
}

fn echo(src: &str, dst: &str, id: u16, seq: u16, payload: &[u8], reply: bool) -> Vec<u8> {
    let (s, d) = (ip(src), ip(dst));
    let v6 = s.is_ipv6();
    let kind = match (v6, reply) {
        (false, false) => 8,
        (false, true) => 0,
        (true, false) => 128,
        (true, true) => 129,
    };
    let mut m = vec![kind, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    if v6 {
        ip_frame(mac(1), mac(2), s, d, 58, 64, 1, m, Some(2))
    } else {
        ip_frame(mac(1), mac(2), s, d, 1, 64, 1, m, Some(2))
    }
}

/// An ARP packet (op 1 request, 2 reply) in an Ethernet frame sent from `sender_mac`.
pub fn arp(op: u16, sender_mac: [u8; 6], sender_ip: &str, target_mac: [u8; 6], target_ip: &str) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(t)) = (ip(sender_ip), ip(target_ip)) else {
        panic!("ARP needs IPv4 addresses");
    };
    let dst = if op == 1 { [0xff; 6] } else { target_mac };
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&s.octets());
    f.extend_from_slice(&target_mac);
    f.extend_from_slice(&t.octets());
    f
}

fn dns_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// A DNS query for `name` (type `qtype`) with transaction `id`.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend(dns_name(name));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// A DNS response to an A query for `name` with the given addresses.
pub fn dns_response(id: u16, name: &str, answers: &[Ipv4Addr]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80, 0, 1]);
    m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend(dns_name(name));
    m.extend_from_slice(&[0, 1, 0, 1]);
    for a in answers {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend_from_slice(&a.octets());
    }
    m
}

fn handshake_record(version: u16, msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut hs = vec![msg_type];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(body);
    let mut r = vec![22];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    r.extend(hs);
    r
}

/// A TLS 1.2 ClientHello record with an SNI extension.
pub fn tls_client_hello(sni: &str) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend_from_slice(&[7; 32]);
    b.push(0);
    b.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f]);
    b.extend_from_slice(&[1, 0]);
    let name = sni.as_bytes();
    let mut ext = Vec::new();
    ext.extend_from_slice(&[0, 0]);
    let list_len = 3 + name.len();
    ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(list_len as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend(ext);
    handshake_record(0x0301, 1, &b)
}

/// A ServerHello record negotiating `version` (legacy version field; 0x0304 adds the
/// supported_versions extension as TLS 1.3 does) and `cipher`.
pub fn tls_server_hello(version: u16, cipher: u16) -> Vec<u8> {
    let legacy = version.min(0x0303);
    let mut b = legacy.to_be_bytes().to_vec();
    b.extend_from_slice(&[9; 32]);
    b.push(0);
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    if version >= 0x0304 {
        b.extend_from_slice(&[0, 6, 0, 43, 0, 2]);
        b.extend_from_slice(&version.to_be_bytes());
    }
    handshake_record(legacy, 2, &b)
}

/// A Certificate handshake record carrying DER certificates.
pub fn tls_certificate(ders: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for d in ders {
        list.extend_from_slice(&(d.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(d);
    }
    let mut b = (list.len() as u32).to_be_bytes()[1..].to_vec();
    b.extend(list);
    handshake_record(0x0303, 11, &b)
}

/// A frame at `secs` seconds after the epoch, on Ethernet, captured whole.
pub fn frame(secs: f64, data: &[u8]) -> Frame<'_> {
    Frame { ts_nanos: (secs * 1e9) as i64, link_type: 1, orig_len: data.len() as u32, data }
}

/// A classic pcap file header (microsecond timestamps, little-endian) for `link_type`.
pub fn pcap_header(link_type: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&262_144u32.to_le_bytes());
    h[20..24].copy_from_slice(&link_type.to_le_bytes());
    h
}

/// A pcap record header for a packet captured at `ts_nanos` (write `data` after it).
pub fn pcap_record_header(ts_nanos: i64, caplen: usize, orig_len: usize) -> [u8; 16] {
    let mut h = [0u8; 16];
    let secs = ts_nanos.div_euclid(1_000_000_000);
    let usecs = ts_nanos.rem_euclid(1_000_000_000) / 1000;
    h[0..4].copy_from_slice(&(secs as u32).to_le_bytes());
    h[4..8].copy_from_slice(&(usecs as u32).to_le_bytes());
    h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
    h[12..16].copy_from_slice(&(orig_len as u32).to_le_bytes());
    h
}

/// A whole pcap file in memory from (timestamp nanos, frame) pairs.
pub fn pcap_bytes<'a>(link_type: u32, packets: impl IntoIterator<Item = (i64, &'a [u8])>) -> Vec<u8> {
    let mut out = pcap_header(link_type).to_vec();
    for (ts, data) in packets {
        out.extend_from_slice(&pcap_record_header(ts, data.len(), data.len()));
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_decode::{LinkType, decode};

    #[test]
    fn built_packets_decode_cleanly_with_good_checksums() {
        let t = TcpPacket::new("10.0.0.1", 40000, "10.0.0.2", 80)
            .flags(flags::PSH_ACK)
            .payload(b"GET / HTTP/1.1\r\n\r\n")
            .build();
        let mut p = decode(LinkType::ETHERNET, &t).unwrap();
        assert!(p.anomalies.is_empty(), "{:?}", p.anomalies);
        assert_eq!(p.verify_l4_checksum(), Some(true));
        assert_eq!(p.tcp().unwrap().payload, b"GET / HTTP/1.1\r\n\r\n");
        let u = udp("2001:db8::1", 5000, "2001:db8::2", 53, &dns_query(1, "a.example", 1));
        let mut p = decode(LinkType::ETHERNET, &u).unwrap();
        assert_eq!(p.verify_l4_checksum(), Some(true));
        let i = icmp_echo("10.0.0.1", "10.0.0.2", 1, 1, b"abcd");
        let mut p = decode(LinkType::ETHERNET, &i).unwrap();
        assert!(p.icmp().unwrap().is_echo_request());
        assert_eq!(p.verify_l4_checksum(), Some(true));
        let a = arp(2, mac(9), "10.0.0.1", mac(8), "10.0.0.2");
        let p = decode(LinkType::ETHERNET, &a).unwrap();
        assert_eq!(p.arp().unwrap().op, 2);
    }

    #[test]
    fn tls_builders_parse() {
        let ch = tls_client_hello("example.org");
        assert_eq!(vigil_decode::tls::client_hello(&ch).unwrap().sni(), Some("example.org"));
        let sh = tls_server_hello(0x0301, 0x0005);
        assert_eq!(vigil_decode::tls::server_hello(&sh).unwrap().selected_version().0, 0x0301);
        let sh = tls_server_hello(0x0304, 0x1301);
        assert_eq!(vigil_decode::tls::server_hello(&sh).unwrap().selected_version().0, 0x0304);
    }
}
