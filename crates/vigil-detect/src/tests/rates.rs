//! port_scan, syn_flood, icmp_flood, brute_force.

use vigil_model::Category;

use super::*;
use crate::testutil::{TcpPacket, arp, flags, icmp_echo, icmp_echo_reply, udp};

fn syn(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    TcpPacket::new(src, sport, dst, dport).flags(flags::SYN).seq(77).build()
}

fn syn_ack(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    TcpPacket::new(src, sport, dst, dport).flags(flags::SYN_ACK).seq(5).ack(78).build()
}

fn scan(ports: u16, spacing: f64) -> Trace {
    (0..ports).map(|i| (100.0 + f64::from(i) * spacing, syn("10.0.0.66", 50000, "10.0.0.1", 1 + i))).collect()
}

#[test]
fn port_scan_fires_at_15_ports() {
    let a = run(&scan(15, 0.1));
    let s = one(&a, Category::PortScan, ip("10.0.0.66"), ip("10.0.0.1"));
    assert_eq!(s.evidence["distinct_ports"], 15);
    assert_eq!(s.evidence["scan_type"], "tcp");
    assert_eq!(s.src_mac.as_deref(), Some("02:00:00:00:00:01"));
    assert_eq!(a.len(), 1, "{a:#?}");
}

#[test]
fn a_host_scanning_itself_over_loopback_is_a_scan_but_forged_self_addressed_probes_are_not() {
    for lo in ["127.0.0.1", "::1"] {
        let t: Trace = (0..15).map(|i| (100.0 + f64::from(i) * 0.1, syn(lo, 50000, lo, 1 + i))).collect();
        let a = run(&t);
        let s = one(&a, Category::PortScan, ip(lo), ip(lo));
        assert_eq!(s.evidence["distinct_ports"], 15, "{lo}");
        // Ports that answer are taken back, as between two hosts: a local client
        // connecting to 20 local services that accept is not scanning.
        let t: Trace = (0..20)
            .flat_map(|i| {
                let at = 100.0 + f64::from(i) * 0.1;
                [(at, syn(lo, 50000, lo, 1 + i)), (at + 0.001, syn_ack(lo, 1 + i, lo, 50000))]
            })
            .collect();
        none(&run(&t), Category::PortScan);
    }
    // The same probes with a routable address as both ends: forged (LAND), not a scan.
    let t: Trace = (0..30).map(|i| (100.0 + f64::from(i) * 0.1, syn("10.0.0.5", 50000, "10.0.0.5", 1 + i))).collect();
    none(&run(&t), Category::PortScan);
}

#[test]
fn port_scan_quiet_at_14_ports_or_spread_out() {
    none(&run(&scan(14, 0.1)), Category::PortScan);
    // 15 ports over 14 s: never 15 inside one 10 s window.
    none(&run(&scan(15, 1.0)), Category::PortScan);
    // The same port 100 times is one port.
    let t: Trace =
        (0..100).map(|i| (f64::from(i) * 0.01, syn("10.0.0.66", 40000 + i as u16, "10.0.0.1", 22))).collect();
    none(&run(&t), Category::PortScan);
}

#[test]
fn ports_that_accept_are_not_scanned() {
    // An FTP client in passive mode: 20 data connections to 20 server ports in 4 s, each
    // accepted. Then the same with only 5 accepted: 15 unanswered ports are a scan.
    let passive = |accepted: u16| -> Trace {
        let mut t = Trace::new();
        for i in 0..20u16 {
            let ts = f64::from(i) * 0.2;
            t.push((ts, syn("10.0.0.7", 40000 + i, "10.0.0.21", 30000 + i)));
            if i < accepted {
                t.push((ts + 0.001, syn_ack("10.0.0.21", 30000 + i, "10.0.0.7", 40000 + i)));
            }
        }
        t
    };
    let a = run(&passive(20));
    assert!(a.is_empty(), "{a:#?}");
    none(&run(&passive(6)), Category::PortScan);
    let a = run(&passive(5));
    let s = one(&a, Category::PortScan, ip("10.0.0.7"), ip("10.0.0.21"));
    assert_eq!(s.evidence["distinct_ports"], 20);
    assert_eq!(s.evidence["answered_ports"], 5);
}

#[test]
fn udp_scan_counts_and_servers_replying_do_not() {
    let t: Trace = (0..15).map(|i| (f64::from(i) * 0.1, udp("10.0.0.66", 40000, "10.0.0.1", 100 + i, b"x"))).collect();
    let a = run(&t);
    assert_eq!(one(&a, Category::PortScan, ip("10.0.0.66"), ip("10.0.0.1")).evidence["scan_type"], "udp");
    // A DNS server answering one client on 20 ports (its queries' source ports).
    let t: Trace = (0..20).map(|i| (f64::from(i) * 0.1, udp("10.0.0.53", 53, "10.0.0.7", 40000 + i, b"x"))).collect();
    none(&run(&t), Category::PortScan);
    // Traceroute probes.
    let t: Trace =
        (0..30).map(|i| (f64::from(i) * 0.1, udp("10.0.0.66", 40000, "10.0.0.1", 33434 + i, b"x"))).collect();
    none(&run(&t), Category::PortScan);
}

#[test]
fn busy_web_server_is_not_a_scan_or_a_flood() {
    // 400 clients connect to :80 and :443 within 4 s; the server answers every SYN.
    let mut t = Trace::new();
    for i in 0..400u32 {
        let client = format!("10.1.{}.{}", i / 200, i % 200 + 1);
        let ts = f64::from(i) * 0.01;
        for (k, port) in [80u16, 443].into_iter().enumerate() {
            let sport = 40000 + k as u16;
            t.push((ts, syn(&client, sport, "10.0.0.80", port)));
            t.push((ts + 0.001, syn_ack("10.0.0.80", port, &client, sport)));
        }
    }
    let a = run(&t);
    none(&a, Category::PortScan);
    none(&a, Category::SynFlood);
    assert!(a.is_empty(), "{a:#?}");
}

/// `n` SYNs from 10.0.0.66 to `port` on distinct hosts 10.0.1.1.., `spacing` s apart.
fn sweep(n: u32, port: u16, spacing: f64) -> Trace {
    (0..n)
        .map(|i| {
            (f64::from(i) * spacing, syn("10.0.0.66", 41000, &format!("10.0.{}.{}", 1 + i / 250, 1 + i % 250), port))
        })
        .collect()
}

#[test]
fn host_sweep_fires_at_32_unanswered_hosts() {
    let a = run(&sweep(32, 22, 0.05));
    let s = one(&a, Category::PortScan, ip("10.0.0.66"), None);
    assert_eq!(s.evidence["scan_type"], "host_sweep");
    assert_eq!(s.evidence["distinct_hosts"], 32);
    assert_eq!(s.evidence["unanswered_hosts"], 32);
    assert_eq!(s.evidence["service"], "tcp/22");
    assert_eq!(
        s.evidence["sample_targets"],
        serde_json::json!(["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5"])
    );
    assert_eq!(s.dst_port, Some(22));
    assert_eq!(a.len(), 1, "{a:#?}");
    // Refused (RST) is not an answer: 40 closed hosts still make a sweep.
    let mut t = sweep(40, 445, 0.05);
    for i in 0..40u32 {
        let host = format!("10.0.1.{}", 1 + i);
        t.push((
            f64::from(i) * 0.05 + 0.001,
            TcpPacket::new(&host, 445, "10.0.0.66", 41000).flags(flags::RST | flags::ACK).ack(78).build(),
        ));
    }
    t.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(one(&run(&t), Category::PortScan, ip("10.0.0.66"), None).evidence["service"], "tcp/445");
}

#[test]
fn host_sweep_quiet_under_threshold_spread_out_or_answered() {
    none(&run(&sweep(31, 22, 0.05)), Category::PortScan);
    // 32 hosts over 15.5 s: never 32 inside one 10 s window.
    none(&run(&sweep(32, 22, 0.5)), Category::PortScan);
    // The same host 100 times is one host.
    let t: Trace =
        (0..100).map(|i| (f64::from(i) * 0.01, syn("10.0.0.66", 40000 + i as u16, "10.0.1.1", 443))).collect();
    none(&run(&t), Category::PortScan);
    // Turned off.
    let mut cfg = DetectConfig::default();
    cfg.port_scan.distinct_hosts = 0;
    none(&run_with(cfg, &sweep(200, 22, 0.01)), Category::PortScan);
}

#[test]
fn client_reaching_many_web_servers_is_not_a_sweep() {
    // A browser or crawler: 200 servers on :443 within 4 s, each answers; a few (5) do not.
    let mut t = Trace::new();
    for i in 0..200u32 {
        let server = format!("198.51.{}.{}", i / 100, i % 100 + 1);
        let ts = f64::from(i) * 0.02;
        t.push((ts, syn("10.0.0.7", 40000 + i as u16, &server, 443)));
        if i % 40 != 0 {
            t.push((ts + 0.015, syn_ack(&server, 443, "10.0.0.7", 40000 + i as u16)));
        }
    }
    let a = run(&t);
    none(&a, Category::PortScan);
    assert!(a.is_empty(), "{a:#?}");
}

#[test]
fn ping_sweep_fires_and_answered_pings_do_not() {
    let pings = |n: u32, replies: bool| -> Trace {
        let mut t = Trace::new();
        for i in 0..n {
            let host = format!("10.0.2.{}", 1 + i);
            let ts = f64::from(i) * 0.01;
            t.push((ts, icmp_echo("10.0.0.66", &host, 7, i as u16, &[0; 8])));
            if replies {
                t.push((ts + 0.002, icmp_echo_reply(&host, "10.0.0.66", 7, i as u16, &[0; 8])));
            }
        }
        t
    };
    let a = run(&pings(32, false));
    let s = one(&a, Category::PortScan, ip("10.0.0.66"), None);
    assert_eq!(s.evidence["service"], "icmp_echo");
    assert_eq!(s.dst_port, None);
    assert_eq!(a.len(), 1, "{a:#?}");
    none(&run(&pings(31, false)), Category::PortScan);
    // A monitoring host pinging 60 hosts that are up.
    let a = run(&pings(60, true));
    assert!(a.is_empty(), "{a:#?}");
}

#[test]
fn arp_sweep_fires_and_a_router_resolving_live_hosts_does_not() {
    let att = [2, 0, 0, 0, 0, 0x66];
    let requests = |n: u8, sender: &str, answered: bool| -> Trace {
        let mut t = Trace::new();
        for i in 0..n {
            let target = format!("10.0.0.{}", 100 + u16::from(i));
            let ts = f64::from(i) * 0.01;
            t.push((ts, arp(1, att, sender, [0; 6], &target)));
            if answered {
                t.push((ts + 0.001, arp(2, [2, 0, 0, 0, 1, i], &target, att, sender)));
            }
        }
        t
    };
    let a = run(&requests(32, "10.0.0.66", false));
    let s = one(&a, Category::PortScan, ip("10.0.0.66"), None);
    assert_eq!(s.evidence["service"], "arp");
    assert_eq!(s.evidence["unanswered_hosts"], 32);
    assert_eq!(s.src_mac.as_deref(), Some("02:00:00:00:00:66"));
    assert_eq!(a.len(), 1, "{a:#?}");
    none(&run(&requests(31, "10.0.0.66", false)), Category::PortScan);
    // A router resolving 100 hosts that are there.
    let a = run(&requests(100, "10.0.0.1", true));
    assert!(a.is_empty(), "{a:#?}");
    // Address-conflict probes (RFC 5227: sender 0.0.0.0) are not a sweep.
    none(&run(&requests(64, "0.0.0.0", false)), Category::PortScan);
}

#[test]
fn stealth_scan_at_5_probes() {
    let probe =
        |i: u16, f: u16| (f64::from(i) * 0.1, TcpPacket::new("10.0.0.66", 40000, "10.0.0.1", 20 + i).flags(f).build());
    let five: Trace = (0..5).map(|i| probe(i, 0)).collect();
    let a = run(&five);
    let s = of(&a, Category::PortScan);
    assert_eq!(s.len(), 1, "{a:#?}");
    assert_eq!(s[0].evidence["scan_type"], "stealth");
    assert_eq!(s[0].evidence["flag_patterns"], serde_json::json!(["null"]));
    // Each NULL packet is also a packet anomaly (one alert per pair and flag set).
    assert_eq!(of(&a, Category::PacketAnomaly).len(), 1);
    let four: Trace = (0..4).map(|i| probe(i, flags::FIN | flags::PSH | flags::URG)).collect();
    none(&run(&four), Category::PortScan);
}

#[test]
fn syn_flood_per_source_at_200() {
    let flood = |n: u32| -> Trace {
        (0..n).map(|i| (f64::from(i) * 0.001, syn("192.0.2.10", 1024 + i as u16, "198.51.100.5", 443))).collect()
    };
    let a = run(&flood(200));
    let s = one(&a, Category::SynFlood, ip("192.0.2.10"), ip("198.51.100.5"));
    assert_eq!(s.dst_port, Some(443));
    assert_eq!(s.evidence["syn_packets"], 200);
    assert_eq!(s.evidence["scope"], "per_source");
    assert_eq!(s.severity, vigil_model::Severity::High);
    none(&run(&flood(199)), Category::SynFlood);
}

#[test]
fn syn_flood_per_destination_from_spoofed_sources() {
    let flood = |n: u32| -> Trace {
        (0..n)
            .map(|i| {
                let src = format!("{}.{}.{}.{}", 11 + i % 200, (i / 200) % 250, i % 251, 1 + i % 7);
                (f64::from(i) * 0.005, syn(&src, 1024 + (i % 60000) as u16, "10.10.10.10", 25565))
            })
            .collect()
    };
    let a = run(&flood(200));
    let s = one(&a, Category::SynFlood, None, ip("10.10.10.10"));
    assert_eq!(s.dst_port, Some(25565));
    assert_eq!(s.evidence["scope"], "per_destination");
    assert!(s.evidence["distinct_sources_estimate"].as_u64().unwrap() > 150);
    none(&run(&flood(199)), Category::SynFlood);
}

#[test]
fn syn_scan_is_not_a_syn_flood() {
    // Like cs-synscan: one source, 1000 ports, two SYNs each, fast.
    let mut t = Trace::new();
    for i in 0..1000u16 {
        for r in 0..2 {
            t.push((f64::from(i) * 0.004 + f64::from(r) * 0.001, syn("172.16.0.8", 60000, "64.13.134.52", 1 + i)));
        }
    }
    let a = run(&t);
    none(&a, Category::SynFlood);
    one(&a, Category::PortScan, ip("172.16.0.8"), ip("64.13.134.52"));
}

#[test]
fn icmp_flood_at_100_echo_requests() {
    let flood = |n: u16, spacing: f64| -> Trace {
        (0..n).map(|i| (f64::from(i) * spacing, icmp_echo("192.168.189.128", "10.2.1.212", 1, i, &[0; 56]))).collect()
    };
    let a = run(&flood(100, 0.01));
    let s = one(&a, Category::IcmpFlood, ip("192.168.189.128"), ip("10.2.1.212"));
    assert_eq!(s.evidence["echo_requests"], 100);
    none(&run(&flood(99, 0.01)), Category::IcmpFlood);
    // An ordinary ping: one per second for 300 s.
    none(&run(&flood(300, 1.0)), Category::IcmpFlood);
    // IPv6 counts too.
    let t: Trace =
        (0..100).map(|i| (f64::from(i) * 0.01, icmp_echo("2001:db8::1", "2001:db8::2", 1, i, b""))).collect();
    one(&run(&t), Category::IcmpFlood, ip("2001:db8::1"), ip("2001:db8::2"));
}

#[test]
fn brute_force_at_30_connections() {
    let conns = |n: u16, spacing: f64, port: u16| -> Trace {
        (0..n).map(|i| (f64::from(i) * spacing, syn("203.0.113.50", 40000 + i, "10.0.0.22", port))).collect()
    };
    let a = run(&conns(30, 0.9, 22));
    let b = one(&a, Category::BruteForce, ip("203.0.113.50"), ip("10.0.0.22"));
    assert_eq!(b.dst_port, Some(22));
    assert_eq!(b.evidence["attempts"], 30);
    assert_eq!(b.evidence["service"], "ssh");
    none(&run(&conns(29, 0.9, 22)), Category::BruteForce);
    // Thirty connections to a web server are not a brute force.
    none(&run(&conns(30, 0.5, 443)), Category::BruteForce);
    // Thirty SSH connections over a minute: at most 15 per 30 s window.
    none(&run(&conns(30, 2.0, 22)), Category::BruteForce);
}

#[test]
fn brute_force_counts_ftp_530_replies_on_one_connection() {
    let replies = |n: u32| -> Trace {
        let mut t = vec![(0.0, syn("10.0.0.9", 40000, "10.0.0.21", 21))];
        for i in 0..n {
            let p = TcpPacket::new("10.0.0.21", 21, "10.0.0.9", 40000)
                .flags(flags::PSH_ACK)
                .seq(100 + i * 22)
                .payload(b"530 Login incorrect.\r\n")
                .build();
            t.push((0.5 + f64::from(i) * 0.5, p));
        }
        t
    };
    let a = run(&replies(30));
    let b = one(&a, Category::BruteForce, ip("10.0.0.9"), ip("10.0.0.21"));
    assert_eq!(b.evidence["failed_logins"], 30);
    assert_eq!(b.evidence["connections"], 1);
    none(&run(&replies(29)), Category::BruteForce);
}

/// `n` HTTP requests to 10.0.0.80:8080, each answered `401`: with a new password each time
/// (a guessing tool), or the same credentials every time (a client polling with a stale
/// token).
fn http_401s(n: u32, new_password_each_time: bool) -> Trace {
    let mut t = Trace::new();
    for i in 0..n {
        let pass = if new_password_each_time { format!("guess{i}") } else { "stale".to_owned() };
        let cred = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("admin:{pass}"));
        let req = format!("GET /admin HTTP/1.1\r\nHost: 10.0.0.80\r\nAuthorization: Basic {cred}\r\n\r\n");
        let sport = 40000 + i as u16;
        let ts = f64::from(i) * 0.5;
        t.push((
            ts,
            TcpPacket::new("10.0.0.9", sport, "10.0.0.80", 8080).flags(flags::PSH_ACK).payload(req.as_bytes()).build(),
        ));
        let resp = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n";
        t.push((
            ts + 0.01,
            TcpPacket::new("10.0.0.80", 8080, "10.0.0.9", sport).flags(flags::PSH_ACK).payload(resp).build(),
        ));
    }
    t
}

#[test]
fn http_basic_auth_guessing_is_brute_force() {
    let a = run(&http_401s(30, true));
    let b = one(&a, Category::BruteForce, ip("10.0.0.9"), ip("10.0.0.80"));
    assert_eq!(b.evidence["failed_logins"], 30);
    assert_eq!(b.evidence["service"], "http");
    assert_eq!(b.dst_port, Some(8080));
    // The evidence holds counts, never the credentials.
    let text = serde_json::to_string(b).unwrap();
    assert!(!text.contains("guess") && !text.contains("YWRtaW46"), "{text}");
    none(&run(&http_401s(29, true)), Category::BruteForce);
}

#[test]
fn a_client_repeating_one_rejected_token_is_not_brute_force() {
    none(&run(&http_401s(100, false)), Category::BruteForce);
}
