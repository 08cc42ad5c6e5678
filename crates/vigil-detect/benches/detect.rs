//! Criterion benchmarks of the engine per detector group and all together (`engine/*`), and
//! per detector alone (`detector/*`, with `detector/none` for the engine with every detector
//! off: decoding, the clock and the counters), over a mixed packet set (web flows with TLS
//! and HTTP, DNS, a scan, ICMP, ARP). Throughput is in packets.
//! `cargo bench -p vigil-detect --bench detect`.
//!
//! Timed like `vigil-decode`'s benches: the benchmark thread's CPU time by default (the
//! machine is shared and loaded; wall time counts waiting for a core),
//! `VIGIL_BENCH_CLOCK=wall` for criterion's wall clock.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};
use vigil_detect::testutil::{
    TcpPacket, arp, dns_query, flags, icmp_echo, mac, tls_client_hello, tls_server_hello, udp,
};
use vigil_detect::{Blocklist, DetectConfig, Engine, EngineOptions, Frame, Group, parse_line};
use vigil_model::Category;

fn mixed() -> Vec<(i64, Vec<u8>)> {
    let mut v = Vec::new();
    let mut ts = 1_700_000_000_000_000_000i64;
    let mut push = |v: &mut Vec<(i64, Vec<u8>)>, p: Vec<u8>| {
        ts += 20_000;
        v.push((ts, p));
    };
    for c in 0..200u32 {
        let client = format!("10.0.{}.{}", c / 250, c % 250 + 1);
        let server = format!("93.184.{}.{}", c % 7, c % 200 + 1);
        let sport = 40000 + c as u16;
        let https = c % 3 != 0;
        let dport = if https { 443 } else { 80 };
        push(&mut v, TcpPacket::new(&client, sport, &server, dport).flags(flags::SYN).seq(0).build());
        push(
            &mut v,
            TcpPacket::new(&server, dport, &client, sport)
                .macs(mac(2), mac(1))
                .flags(flags::SYN_ACK)
                .seq(0)
                .ack(1)
                .build(),
        );
        let hello = if https {
            tls_client_hello("www.example.com")
        } else {
            b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n\r\n".to_vec()
        };
        push(
            &mut v,
            TcpPacket::new(&client, sport, &server, dport).flags(flags::PSH_ACK).seq(1).ack(1).payload(&hello).build(),
        );
        if https {
            push(
                &mut v,
                TcpPacket::new(&server, dport, &client, sport)
                    .macs(mac(2), mac(1))
                    .flags(flags::PSH_ACK)
                    .seq(1)
                    .ack(1 + hello.len() as u32)
                    .payload(&tls_server_hello(0x0303, 0xc02f))
                    .build(),
            );
        }
        let chunk = vec![0x5au8; 1400];
        for k in 0..20u32 {
            push(
                &mut v,
                TcpPacket::new(&server, dport, &client, sport)
                    .macs(mac(2), mac(1))
                    .flags(flags::ACK)
                    .seq(200 + k * 1400)
                    .ack(1 + hello.len() as u32)
                    .payload(&chunk)
                    .build(),
            );
            if k % 2 == 1 {
                push(
                    &mut v,
                    TcpPacket::new(&client, sport, &server, dport)
                        .flags(flags::ACK)
                        .seq(1 + hello.len() as u32)
                        .ack(200 + (k + 1) * 1400)
                        .build(),
                );
            }
        }
        push(
            &mut v,
            udp(&client, 50000 + c as u16, "10.0.0.53", 53, &dns_query(c as u16, &format!("host{c}.example.com"), 1)),
        );
    }
    for i in 0..100u16 {
        push(&mut v, TcpPacket::new("10.0.9.66", 55555, "10.0.0.1", 1 + i).flags(flags::SYN).build());
        push(&mut v, icmp_echo("10.0.9.70", "10.0.0.1", 1, i, &[0; 56]));
    }
    for i in 0..20u8 {
        push(&mut v, arp(1, mac(i + 10), &format!("10.0.0.{}", i + 10), [0; 6], "10.0.0.1"));
    }
    v
}

/// The setting that turns on the detector raising `cat`.
fn switch(c: &mut DetectConfig, cat: Category) -> &mut bool {
    match cat {
        Category::PortScan => &mut c.port_scan.enabled,
        Category::SynFlood => &mut c.syn_flood.enabled,
        Category::IcmpFlood => &mut c.icmp_flood.enabled,
        Category::SuspiciousPort => &mut c.suspicious_port.enabled,
        Category::ArpSpoof => &mut c.arp_spoof.enabled,
        Category::GatewayMacChange => &mut c.gateway.enabled,
        Category::DnsTunnel => &mut c.dns_tunnel.enabled,
        Category::DnsSpoof => &mut c.dns_spoof.enabled,
        Category::DataExfiltration => &mut c.data_exfiltration.enabled,
        Category::BruteForce => &mut c.brute_force.enabled,
        Category::SessionHijack => &mut c.session_hijack.enabled,
        Category::PacketAnomaly => &mut c.packet_anomaly.enabled,
        Category::InsecureProtocol => &mut c.insecure_protocol.enabled,
        Category::UnencryptedHttp => &mut c.unencrypted_http.enabled,
        Category::PlaintextCredentials => &mut c.plaintext_credentials.enabled,
        Category::WeakTls => &mut c.tls.weak_versions,
        Category::TlsCertificateChange => &mut c.tls.certificate_change,
        Category::ThreatIntelMatch => &mut c.threat_intel.enabled,
        other => panic!("{} is not raised by a packet detector", other.as_str()),
    }
}

/// The engine's categories (one detector each), in DESIGN.md's order.
fn detectors() -> impl Iterator<Item = Category> {
    Category::ALL.iter().copied().filter(|c| Group::ALL.iter().any(|g| g.categories().contains(c)))
}

/// Only the detector raising `cat` on; every detector off for `None`.
fn only(cat: Option<Category>) -> DetectConfig {
    let mut c = DetectConfig::default();
    for d in detectors() {
        *switch(&mut c, d) = false;
    }
    if let Some(cat) = cat {
        *switch(&mut c, cat) = true;
    }
    c
}

/// A small blocklist (networks and domains the mixed set does not touch), so that
/// threat_intel_match runs its lookups; with an empty one it is off.
fn blocklist() -> Arc<Blocklist> {
    let mut b = Blocklist::new();
    for line in ["203.0.113.0/24", "198.51.100.7", "2001:db8:bad::/48", "evil.example.net", "c2.example.org"] {
        b.insert(parse_line(line).unwrap().unwrap());
    }
    Arc::new(b)
}

/// Times a fresh engine (built outside the timing) over every packet, hinting each next
/// frame as `vigil analyze` and the agent do.
fn run<M: Measurement>(
    g: &mut criterion::BenchmarkGroup<'_, M>,
    name: &str,
    packets: &[(i64, Vec<u8>)],
    config: &DetectConfig,
    options: &EngineOptions,
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || Engine::with_options(config.clone(), options.clone()).unwrap(),
            |mut e| {
                let mut out = Vec::new();
                for (i, (ts, p)) in packets.iter().enumerate() {
                    if let Some((_, next)) = packets.get(i + 1) {
                        e.prefetch(1, next);
                    }
                    e.process(&Frame { ts_nanos: *ts, link_type: 1, orig_len: p.len() as u32, data: p }, &mut out);
                }
                black_box(out.len())
            },
            criterion::BatchSize::LargeInput,
        )
    });
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let packets = mixed();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(packets.len() as u64));
    let cases: [(&str, Vec<Group>); 4] = [
        ("all_groups", Group::ALL.to_vec()),
        ("rates", vec![Group::Rates]),
        ("flows", vec![Group::Flows]),
        ("local", vec![Group::Local]),
    ];
    for (name, groups) in cases {
        let options = EngineOptions { groups, ..EngineOptions::default() };
        run(&mut g, name, &packets, &DetectConfig::default(), &options);
    }
    g.finish();

    let mut g = c.benchmark_group("detector");
    g.throughput(Throughput::Elements(packets.len() as u64));
    let options = EngineOptions { blocklist: blocklist(), ..EngineOptions::default() };
    run(&mut g, "none", &packets, &only(None), &options);
    for cat in detectors() {
        run(&mut g, cat.as_str(), &packets, &only(Some(cat)), &options);
    }
    g.finish();
}

fn main() {
    vigil_bench::main(bench, bench);
}
