//! Entry points shared by the fuzz targets in `fuzz/` and the corpus replay tests, so
//! both exercise exactly the same code. Each takes arbitrary bytes and must not panic.

use crate::packet::LinkType;
use crate::{cleartext, dns, http, telnet, tls};

/// Link types the frame target picks from (selected by the first input byte).
pub const FUZZ_LINK_TYPES: [LinkType; 13] = [
    LinkType::ETHERNET,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::RAW,
    LinkType::RAW_OPENBSD,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::IEEE802_11_RADIOTAP,
    LinkType::IEEE802_11,
    LinkType(147), // unsupported: must be a clean error
    LinkType::RAW_BSDOS,
];

/// Target `decode_frame`: byte 0 picks a link type, the rest is the frame; every accessor
/// is exercised.
pub fn decode_frame(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let lt = FUZZ_LINK_TYPES[usize::from(sel) % FUZZ_LINK_TYPES.len()];
    let _ = crate::hint::flow_tuple(lt, frame);
    let Ok(mut p) = crate::decode(lt, frame) else {
        return;
    };
    let _ = (p.outcome(), p.src_ip(), p.dst_ip(), p.src_port(), p.dst_port());
    let _ = (p.fragment(), p.l4_payload().len(), p.ttl(), p.ip_protocol());
    let _ = (p.arp(), p.icmp().and_then(|i| i.echo()));
    if let Some(t) = p.tcp() {
        let _ = (t.parsed_options(), t.options().count(), t.flags.to_string());
    }
    let _ = p.verify_l4_checksum();
    let _ = (p.anomalies.to_string(), format!("{p:?}"));
}

/// Target `dns`: the payload as a UDP message and as a TCP segment.
pub fn dns(data: &[u8]) {
    for m in [dns::parse(data), dns::parse_tcp(data)].into_iter().flatten() {
        for q in &m.questions {
            let _ = (q.name.to_string(), q.name.to_lowercase_string(), q.name.label_count());
        }
        let _ = format!("{m:?}");
    }
}

/// Target `tls`: one-segment helpers, and the stream fed in uneven pieces.
pub fn tls(data: &[u8]) {
    if let Some(ch) = tls::client_hello(data) {
        let _ = (ch.sni(), ch.max_version(), ch.cipher_suites().count(), ch.alpn().count());
    }
    if let Some(sh) = tls::server_hello(data) {
        let _ = sh.selected_version();
    }
    if let Ok((h, _)) = tls::parse_sslv2(data) {
        let _ = h.cipher_specs().count();
    }
    let _ = tls::records(data).count();
    let mut stream = tls::TlsStream::new(16 * 1024);
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for chunk in data.chunks(step) {
        stream.push(chunk);
        while let Some(m) = stream.next_message() {
            if let Ok(tls::TlsMessage::Handshake(tls::Handshake::Certificate(c))) = m {
                for der in c.certs() {
                    let _ = tls::cert_info(der);
                }
            }
        }
    }
    let _ = tls::cert_info(data);
}

/// Target `http`: request head, headers, Basic user.
pub fn http(data: &[u8]) {
    if let Ok(r) = http::parse_request(data) {
        let _ = (r.path(), r.headers().count(), format!("{r:?}"));
        if let Some(a) = r.authorization() {
            let _ = a.basic_user();
        }
    }
}

/// Target `cleartext`: every protocol's command parser over every line.
pub fn cleartext(data: &[u8]) {
    for p in [cleartext::Protocol::Ftp, cleartext::Protocol::Pop3, cleartext::Protocol::Imap, cleartext::Protocol::Smtp]
    {
        for c in cleartext::commands(p, data) {
            let _ = (c.user(), c.carries_password());
        }
    }
    let _ = cleartext::sasl_plain_user(data);
    let _ = cleartext::decode_base64_user(data);
}

/// Target `telnet`: one-shot and split stripping must agree.
pub fn telnet(data: &[u8]) {
    let whole = telnet::strip_iac(data);
    let mut s = telnet::IacStripper::new();
    let mut out = Vec::new();
    let mid = data.len() / 2;
    s.feed(data.get(..mid).unwrap_or(&[]), &mut out);
    s.feed(data.get(mid..).unwrap_or(&[]), &mut out);
    assert_eq!(whole, out, "split feeding changed the telnet output");
    assert!(whole.len() <= data.len());
}

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every target by name, for replay tests: `(name, function)`.
pub const TARGETS: [(&str, Target); 6] = [
    ("decode_frame", decode_frame),
    ("dns", dns),
    ("tls", tls),
    ("http", http),
    ("cleartext", cleartext),
    ("telnet", telnet),
];
