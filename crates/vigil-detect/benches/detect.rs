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

/// Every detector off.
fn nothing_on() -> DetectConfig {
    let mut c = DetectConfig::default();
    c.port_scan.enabled = false;
    c.syn_flood.enabled = false;
    c.icmp_flood.enabled = false;
    c.suspicious_port.enabled = false;
    c.arp_spoof.enabled = false;
    c.gateway.enabled = false;
    c.dns_tunnel.enabled = false;
    c.dns_spoof.enabled = false;
    c.data_exfiltration.enabled = false;
    c.brute_force.enabled = false;
    c.session_hijack.enabled = false;
    c.packet_anomaly.enabled = false;
    c.insecure_protocol.enabled = false;
    c.unencrypted_http.enabled = false;
    c.plaintext_credentials.enabled = false;
    c.tls.weak_versions = false;
    c.tls.certificate_change = false;
    c.threat_intel.enabled = false;
    c
}

/// One detector on, named by its alert category; `none` for none.
fn only(name: &str) -> DetectConfig {
    let mut c = nothing_on();
    match name {
        "none" => {}
        "port_scan" => c.port_scan.enabled = true,
        "syn_flood" => c.syn_flood.enabled = true,
        "icmp_flood" => c.icmp_flood.enabled = true,
        "brute_force" => c.brute_force.enabled = true,
        "session_hijack" => c.session_hijack.enabled = true,
        "insecure_protocol" => c.insecure_protocol.enabled = true,
        "unencrypted_http" => c.unencrypted_http.enabled = true,
        "plaintext_credentials" => c.plaintext_credentials.enabled = true,
        "weak_tls" => c.tls.weak_versions = true,
        "tls_certificate_change" => c.tls.certificate_change = true,
        "arp_spoof" => c.arp_spoof.enabled = true,
        "gateway_mac_change" => c.gateway.enabled = true,
        "dns_tunnel" => c.dns_tunnel.enabled = true,
        "dns_spoof" => c.dns_spoof.enabled = true,
        "data_exfiltration" => c.data_exfiltration.enabled = true,
        "suspicious_port" => c.suspicious_port.enabled = true,
        "packet_anomaly" => c.packet_anomaly.enabled = true,
        "threat_intel_match" => c.threat_intel.enabled = true,
        other => panic!("no detector {other}"),
    }
    c
}

/// Alone-detector cases, in DESIGN.md's order; `none` first.
const DETECTORS: [&str; 19] = [
    "none",
    "port_scan",
    "syn_flood",
    "icmp_flood",
    "suspicious_port",
    "arp_spoof",
    "gateway_mac_change",
    "dns_tunnel",
    "dns_spoof",
    "data_exfiltration",
    "brute_force",
    "session_hijack",
    "packet_anomaly",
    "insecure_protocol",
    "unencrypted_http",
    "plaintext_credentials",
    "weak_tls",
    "tls_certificate_change",
    "threat_intel_match",
];

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
    for name in DETECTORS {
        run(&mut g, name, &packets, &only(name), &options);
    }
    g.finish();
}

fn main() {
    vigil_bench::main(bench, bench);
}
