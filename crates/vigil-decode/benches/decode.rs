//! Criterion benches, one per decoder: `cargo bench -p vigil-decode --bench decode`.
//!
//! Timed by default with the benchmark thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`),
//! which is the per-core cost we budget and stays honest on a shared, loaded machine where
//! wall time also counts time spent waiting for a core. `VIGIL_BENCH_CLOCK=wall` switches
//! to criterion's wall clock.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};
use vigil_decode::{LinkType, cleartext, decode, dns, http, telnet, tls};

/// Ethernet + IPv4 + TCP (ACK|PSH with timestamps) + 100 bytes of payload.
fn eth_ipv4_tcp() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa, 0x08, 0x00];
    let tcp_len = 32 + 100;
    let total = (20 + tcp_len) as u16;
    f.extend([0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f.extend([192, 0, 2, 1, 198, 51, 100, 7]);
    // header checksum
    let mut sum = 0u32;
    for c in f[14..34].chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend([0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 2, 0x80, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    f.extend([0x61u8; 100]);
    f
}

/// Ethernet + IPv6 with a hop-by-hop extension header + UDP (DNS port) + 40 bytes.
fn eth_ipv6_udp() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa, 0x86, 0xdd];
    let udp_len: u16 = 8 + 40;
    let payload_len = 8 + udp_len; // hop-by-hop header + UDP
    f.extend([0x60, 0, 0, 0]);
    f.extend(payload_len.to_be_bytes());
    f.extend([0, 64]); // next header: hop-by-hop; hop limit
    f.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    f.extend([17, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop: next UDP, PadN
    f.extend([0xc3, 0x50, 0, 53]);
    f.extend(udp_len.to_be_bytes());
    f.extend([0, 0]); // no checksum here: decoding does not verify it
    f.extend([0x42u8; 40]);
    f
}

/// Ethernet + ARP request.
fn eth_arp() -> Vec<u8> {
    let mut f = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0xaa, 0x08, 0x06];
    f.extend([0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend([0x02, 0, 0, 0, 0, 0xaa, 192, 168, 1, 10]);
    f.extend([0, 0, 0, 0, 0, 0, 192, 168, 1, 1]);
    f.extend([0u8; 18]); // Ethernet padding
    f
}

fn dns_response() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    for l in ["www", "example", "com"] {
        m.push(l.len() as u8);
        m.extend(l.as_bytes());
    }
    m.extend([0, 0, 1, 0, 1]);
    m.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 8, 5, b'a', b'l', b'i', b'a', b's', 0xc0, 16]);
    m.extend([0xc0, 45, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    m
}

fn client_hello() -> Vec<u8> {
    let sni = b"www.example.com";
    let mut ext = Vec::new();
    ext.extend([0, 0]);
    ext.extend(((sni.len() + 5) as u16).to_be_bytes());
    ext.extend(((sni.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend((sni.len() as u16).to_be_bytes());
    ext.extend(sni);
    ext.extend([0, 43, 0, 7, 6, 0x1a, 0x1a, 3, 4, 3, 3]);
    ext.extend([0, 16, 0, 14, 0, 12, 2, b'h', b'2', 8]);
    ext.extend(b"http/1.1");
    ext.extend([0, 10, 0, 8, 0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]);
    ext.extend([0, 51, 0, 38, 0, 36, 0, 0x1d, 0, 32]);
    ext.extend([0x42; 32]);
    let mut body = vec![3, 3];
    body.extend([7u8; 32]);
    body.push(32);
    body.extend([9u8; 32]);
    let suites: [u16; 16] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f,
        0x0035, 0x000a,
    ];
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend(s.to_be_bytes());
    }
    body.extend([1, 0]);
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut rec = vec![22, 3, 1];
    rec.extend(((body.len() + 4) as u16).to_be_bytes());
    rec.extend([1, 0]);
    rec.extend((body.len() as u16).to_be_bytes());
    rec.extend(body);
    rec
}

/// An FTP client's login, as one segment would carry it.
const FTP_LOGIN: &[u8] = b"USER alice\r\n";
/// An IMAP client's capability query and login in one segment.
const IMAP_LOGIN: &[u8] = b"a001 CAPABILITY\r\na002 LOGIN alice \"secret pass\"\r\n";
/// A Telnet segment: option negotiation around a typed user name.
const TELNET: &[u8] = b"\xff\xfd\x18\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0alice\r\n";
const HTTP_REQUEST: &[u8] = b"GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\nAuthorization: Basic dGVzdDp0ZXN0\r\nConnection: keep-alive\r\n\r\n";

fn benches<M: Measurement>(c: &mut Criterion<M>) {
    let frame = eth_ipv4_tcp();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("eth_ipv4_tcp", |b| {
        b.iter(|| {
            let p = decode(LinkType::ETHERNET, black_box(&frame)).ok();
            black_box(p.map(|p| (p.src_port(), p.anomalies)))
        })
    });
    g.bench_function("eth_ipv4_tcp+options", |b| {
        b.iter(|| {
            let p = decode(LinkType::ETHERNET, black_box(&frame)).ok();
            black_box(p.and_then(|p| p.tcp().map(|t| t.parsed_options())))
        })
    });
    g.bench_function("eth_ipv4_tcp+l4_checksum", |b| {
        b.iter(|| {
            let p = decode(LinkType::ETHERNET, black_box(&frame)).ok();
            black_box(p.map(|mut p| p.verify_l4_checksum()))
        })
    });
    let v6 = eth_ipv6_udp();
    // Each input must take the decoder's full path, not an early error: checked once here.
    assert_eq!(decode(LinkType::ETHERNET, &v6).ok().and_then(|p| p.src_port()), Some(50000));
    g.bench_function("eth_ipv6_hbh_udp", |b| {
        b.iter(|| {
            let p = decode(LinkType::ETHERNET, black_box(&v6)).ok();
            black_box(p.map(|p| (p.src_port(), p.anomalies)))
        })
    });
    let arp = eth_arp();
    assert_eq!(decode(LinkType::ETHERNET, &arp).ok().and_then(|p| p.arp().map(|a| a.op)), Some(1));
    g.bench_function("eth_arp", |b| {
        b.iter(|| black_box(decode(LinkType::ETHERNET, black_box(&arp)).ok().and_then(|p| p.arp().map(|a| a.op))))
    });
    let msg = dns_response();
    g.bench_function("dns_response", |b| b.iter(|| black_box(dns::parse(black_box(&msg)).map(|m| m.answers.len()))));
    g.bench_function("dns_header_only", |b| b.iter(|| black_box(dns::DnsHeader::parse(black_box(&msg)))));
    let ch = client_hello();
    g.bench_function("tls_client_hello", |b| {
        b.iter(|| black_box(tls::client_hello(black_box(&ch)).map(|h| (h.sni(), h.max_version()))))
    });
    // A self-signed certificate like a server's leaf (rcgen: ECDSA P-256, one SAN).
    let der = rcgen::generate_simple_self_signed(vec!["www.example.com".to_owned()]).unwrap().cert.der().to_vec();
    assert_eq!(tls::cert_info(&der).unwrap().subject_cn.as_deref(), Some("rcgen self signed cert"));
    assert_eq!(cleartext::commands(cleartext::Protocol::Ftp, FTP_LOGIN).count(), 1);
    assert_eq!(cleartext::commands(cleartext::Protocol::Imap, IMAP_LOGIN).count(), 1);
    assert_eq!(telnet::strip_iac(TELNET), b"alice\r\n");
    g.bench_function("tls_certificate", |b| {
        b.iter(|| black_box(tls::cert_info(black_box(&der)).map(|c| (c.sha256[0], c.not_after))))
    });
    g.bench_function("cleartext_ftp_user", |b| {
        b.iter(|| black_box(cleartext::commands(cleartext::Protocol::Ftp, black_box(FTP_LOGIN)).count()))
    });
    g.bench_function("cleartext_imap_login", |b| {
        b.iter(|| black_box(cleartext::commands(cleartext::Protocol::Imap, black_box(IMAP_LOGIN)).count()))
    });
    g.bench_function("telnet_strip_iac", |b| b.iter(|| black_box(telnet::strip_iac(black_box(TELNET)).len())));
    g.bench_function("http_request", |b| {
        b.iter(|| {
            black_box(
                http::parse_request(black_box(HTTP_REQUEST)).map(|r| (r.host, r.authorization().map(|a| a.is_basic()))),
            )
        })
    });
    g.bench_function("http_request+basic_user", |b| {
        b.iter(|| {
            black_box(
                http::parse_request(black_box(HTTP_REQUEST))
                    .ok()
                    .and_then(|r| r.authorization())
                    .and_then(|a| a.basic_user()),
            )
        })
    });
    g.finish();
}

fn main() {
    vigil_bench::main(benches, benches);
}
