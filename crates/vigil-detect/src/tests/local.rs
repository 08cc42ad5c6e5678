//! arp_spoof, gateway_mac_change, dns_tunnel, dns_spoof, data_exfiltration,
//! suspicious_port, packet_anomaly, threat_intel_match.

use std::net::Ipv4Addr;
use std::sync::Arc;

use vigil_model::{Category, Severity};

use super::*;
use crate::testutil::{TcpPacket, arp, dns_query, dns_response, flags, mac, udp, udp_macs};
use crate::{Blocklist, EngineOptions, parse_line};

#[test]
fn suspicious_port_fires_on_live_traffic_only() {
    let data =
        TcpPacket::new("10.0.0.5", 49000, "10.234.2.116", 4444).flags(flags::PSH_ACK).payload(b"dir\r\n").build();
    let a = run(&vec![(0.0, data)]);
    let s = one(&a, Category::SuspiciousPort, ip("10.0.0.5"), ip("10.234.2.116"));
    assert_eq!(s.dst_port, Some(4444));
    // The server side speaking from 4444 is the same finding, keyed on the client.
    let reply = TcpPacket::new("10.234.2.116", 4444, "10.0.0.5", 49000).flags(flags::PSH_ACK).payload(b"C:\\>").build();
    one(&run(&vec![(0.0, reply)]), Category::SuspiciousPort, ip("10.0.0.5"), ip("10.234.2.116"));
    // An unanswered SYN (a scan passing by) is not.
    let s = TcpPacket::new("10.0.0.5", 49000, "10.0.0.7", 4444).flags(flags::SYN).build();
    none(&run(&vec![(0.0, s)]), Category::SuspiciousPort);
    // Ordinary ports are not.
    let web = TcpPacket::new("10.0.0.5", 49000, "10.0.0.7", 443).flags(flags::PSH_ACK).payload(b"x").build();
    none(&run(&vec![(0.0, web)]), Category::SuspiciousPort);
    // An FTP client whose ephemeral port happens to be 2745 (Bagle) is not a backdoor.
    let ftp = TcpPacket::new("10.121.70.151", 21, "10.234.125.254", 2745)
        .flags(flags::PSH_ACK)
        .payload(b"530 no\r\n")
        .build();
    none(&run(&vec![(0.0, ftp)]), Category::SuspiciousPort);
}

#[test]
fn arp_binding_change_fires() {
    let t: Trace = vec![
        (0.0, arp(2, mac(1), "10.0.0.1", mac(5), "10.0.0.5")),
        (10.0, arp(2, mac(66), "10.0.0.1", mac(5), "10.0.0.5")),
    ];
    let a = run(&t);
    let s = one(&a, Category::ArpSpoof, ip("10.0.0.1"), None);
    assert_eq!(s.evidence["reason"], "mac_changed");
    assert_eq!(s.evidence["old_mac"], "02:00:00:00:00:01");
    assert_eq!(s.src_mac.as_deref(), Some("02:00:00:00:00:42"));
    // An address that moved long after it was last seen (DHCP reuse) is fine.
    let t: Trace = vec![
        (0.0, arp(2, mac(1), "10.0.0.1", mac(5), "10.0.0.5")),
        (4000.0, arp(2, mac(66), "10.0.0.1", mac(5), "10.0.0.5")),
    ];
    none(&run(&t), Category::ArpSpoof);
}

#[test]
fn unsolicited_arp_replies_at_5() {
    let replies = |n: u32| -> Trace {
        (0..n).map(|i| (f64::from(i) * 10.0, arp(2, mac(66), "192.168.189.2", mac(5), "192.168.189.129"))).collect()
    };
    let a = run(&replies(5));
    let s = one(&a, Category::ArpSpoof, ip("192.168.189.2"), None);
    assert_eq!(s.evidence["reason"], "unsolicited_replies");
    assert_eq!(s.evidence["unsolicited_replies"], 5);
    none(&run(&replies(4)), Category::ArpSpoof);
    // Twenty request/reply pairs are ordinary ARP.
    let mut t = Trace::new();
    for i in 0..20 {
        t.push((f64::from(i) * 5.0, arp(1, mac(5), "10.0.0.5", [0; 6], "10.0.0.1")));
        t.push((f64::from(i) * 5.0 + 0.001, arp(2, mac(1), "10.0.0.1", mac(5), "10.0.0.5")));
    }
    let a = run(&t);
    none(&a, Category::ArpSpoof);
    none(&a, Category::GatewayMacChange);
}

fn from_internet(n: u32, t0: f64, router: [u8; 6]) -> Trace {
    (0..n)
        .map(|i| (t0 + f64::from(i) * 0.1, udp_macs(router, mac(5), "8.8.8.8", 53, "10.0.0.5", 40000, b"x")))
        .collect()
}

#[test]
fn gateway_mac_change_learned_from_next_hop() {
    let mut t = from_internet(20, 0.0, mac(1));
    t.extend(from_internet(20, 10.0, mac(66)));
    let a = run(&t);
    let g = one(&a, Category::GatewayMacChange, None, None);
    assert_eq!(g.evidence["old_mac"], "02:00:00:00:00:01");
    assert_eq!(g.evidence["new_mac"], "02:00:00:00:00:42");
    let mut t = from_internet(20, 0.0, mac(1));
    t.extend(from_internet(19, 10.0, mac(66)));
    none(&run(&t), Category::GatewayMacChange);
    // Internal hosts talking through other MACs are not next hops.
    let mut t = from_internet(30, 0.0, mac(1));
    t.extend(
        (0..50).map(|i| (5.0 + f64::from(i) * 0.01, udp_macs(mac(7), mac(5), "10.0.0.7", 53, "10.0.0.5", 40000, b"x"))),
    );
    none(&run(&t), Category::GatewayMacChange);
    // Two routers taking turns are not a change.
    let mut t = from_internet(20, 0.0, mac(1));
    for i in 0..200u32 {
        let router = if i % 5 == 0 { mac(1) } else { mac(66) };
        t.extend(from_internet(1, 10.0 + f64::from(i) * 0.1, router));
    }
    none(&run(&t), Category::GatewayMacChange);
    // A LAN of public addresses: traffic between "external" hosts teaches nothing.
    let mut t: Trace = Trace::new();
    for i in 0..100u32 {
        let m = if i < 50 { mac(1) } else { mac(66) };
        t.push((f64::from(i) * 0.1, udp_macs(m, mac(5), "192.150.187.1", 53, "192.150.187.164", 40000, b"x")));
    }
    none(&run(&t), Category::GatewayMacChange);
}

#[test]
fn gateway_mac_change_configured_via_arp() {
    let mut cfg = DetectConfig::default();
    cfg.gateway.ip = ip("10.0.0.1");
    cfg.gateway.mac = Some("02:00:00:00:00:01".into());
    let t: Trace = vec![(0.0, arp(2, mac(66), "10.0.0.1", mac(5), "10.0.0.5"))];
    let a = run_with(cfg.clone(), &t);
    let g = one(&a, Category::GatewayMacChange, ip("10.0.0.1"), None);
    assert_eq!(g.evidence["seen_in"], "arp");
    let ok: Trace = vec![(0.0, arp(2, mac(1), "10.0.0.1", mac(5), "10.0.0.5"))];
    none(&run_with(cfg, &ok), Category::GatewayMacChange);
}

fn dns_q(t: f64, id: u16, name: &str) -> (f64, Vec<u8>) {
    (t, udp("10.0.0.5", 40000 + id % 1000, "10.0.0.53", 53, &dns_query(id, name, 1)))
}

fn dns_r(t: f64, id: u16, name: &str, a: &[Ipv4Addr]) -> (f64, Vec<u8>) {
    (t, udp("10.0.0.53", 53, "10.0.0.5", 40000 + id % 1000, &dns_response(id, name, a)))
}

#[test]
fn dns_tunnel_at_5_high_entropy_queries() {
    let labels = [
        "laczi1dwmfbaywb0fm5xhkrgz0heotzq",
        "k3vbq0x9zt2wq7lmp4hd8rs5ynf6ce1a",
        "p0o9i8u7y6t5r4e3w2q1azsxdcfvgbhn",
        "mn4bv5cx6z7lk8jh9gf0ds1ap2oi3uy4",
        "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6",
    ];
    let t: Trace =
        labels.iter().enumerate().map(|(i, l)| dns_q(i as f64, i as u16, &format!("{l}.t1.tunnel.test"))).collect();
    let a = run(&t);
    let d = one(&a, Category::DnsTunnel, ip("10.0.0.5"), ip("10.0.0.53"));
    assert_eq!(d.evidence["base_domain"], "tunnel.test");
    assert_eq!(d.evidence["suspicious_queries"], 5);
    let four: Trace = t[..4].to_vec();
    none(&run(&four), Category::DnsTunnel);
}

#[test]
fn dns_tunnel_long_names() {
    let long = |i: u32| format!("{:0>20}.{:0>20}.data.exfil.test", i, i * 7); // 53 chars
    assert!(long(1).len() > 50);
    let t: Trace = (0..5).map(|i| dns_q(f64::from(i), i as u16, &long(i))).collect();
    one(&run(&t), Category::DnsTunnel, ip("10.0.0.5"), ip("10.0.0.53"));
}

#[test]
fn resolver_with_many_ordinary_queries_is_not_a_tunnel() {
    let words = ["www", "mail", "api", "cdn", "static", "login", "images", "accounts"];
    let mut t = Trace::new();
    for i in 0..2000u32 {
        let name = format!("{}.example{}.com", words[i as usize % words.len()], i % 300);
        t.push(dns_q(f64::from(i) * 0.01, (i % 60000) as u16, &name));
    }
    // Reverse lookups are long but not tunnels.
    for i in 0..10u32 {
        t.push(dns_q(
            30.0 + f64::from(i),
            9000 + i as u16,
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        ));
    }
    let a = run(&t);
    none(&a, Category::DnsTunnel);
    none(&a, Category::DataExfiltration);
}

#[test]
fn dns_exfiltration_by_volume_of_encoded_names() {
    // 10 queries of 215 encoded bytes each: 2150 bytes, over 2048; 9 are 1935.
    let label = "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5oQ7sU9wY1aC3eG5iK7mO9q";
    let name = format!("{label}.{label}.{label}.{}.x.exfil.test", &label[..40]);
    let t: Trace = (0..10).map(|i| dns_q(f64::from(i), i as u16, &name)).collect();
    let a = run(&t);
    let e = one(&a, Category::DataExfiltration, ip("10.0.0.5"), ip("10.0.0.53"));
    assert_eq!(e.evidence["channel"], "dns");
    assert_eq!(e.evidence["bytes"], 2150);
    let t9: Trace = t[..9].to_vec();
    none(&run(&t9), Category::DataExfiltration);
}

#[test]
fn dns_spoof_conflicting_duplicate_and_unmatched() {
    let good = [Ipv4Addr::new(93, 184, 216, 34)];
    let evil = [Ipv4Addr::new(6, 6, 6, 6)];
    // Conflicting answers.
    let t: Trace = vec![
        dns_q(0.0, 7, "bank.example"),
        dns_r(0.01, 7, "bank.example", &evil),
        dns_r(0.02, 7, "bank.example", &good),
    ];
    let a = run(&t);
    let s = one(&a, Category::DnsSpoof, ip("10.0.0.53"), ip("10.0.0.5"));
    assert_eq!(s.evidence["kind"], "conflicting_answers");
    assert_eq!(s.severity, Severity::High);
    // Identical duplicate to a query sent once: low.
    let t: Trace = vec![
        dns_q(0.0, 7, "bank.example"),
        dns_r(0.01, 7, "bank.example", &good),
        dns_r(0.02, 7, "bank.example", &good),
    ];
    let s = run(&t);
    let s = one(&s, Category::DnsSpoof, ip("10.0.0.53"), ip("10.0.0.5"));
    assert_eq!(s.evidence["kind"], "identical_duplicate");
    assert_eq!(s.severity, Severity::Low);
    // A retransmitted query explains two identical answers.
    let t: Trace = vec![
        dns_q(0.0, 7, "bank.example"),
        dns_q(1.0, 7, "bank.example"),
        dns_r(1.01, 7, "bank.example", &good),
        dns_r(1.02, 7, "bank.example", &good),
    ];
    none(&run(&t), Category::DnsSpoof);
    // An answer with an id nobody asked for, to a client that is querying.
    let t: Trace = vec![dns_q(0.0, 7, "bank.example"), dns_r(0.01, 8, "bank.example", &evil)];
    let s = run(&t);
    assert_eq!(one(&s, Category::DnsSpoof, ip("10.0.0.53"), ip("10.0.0.5")).evidence["kind"], "unmatched_answer");
    // A hundred ordinary exchanges.
    let mut t = Trace::new();
    for i in 0..100u16 {
        t.push(dns_q(f64::from(i), i, &format!("host{i}.example")));
        t.push(dns_r(f64::from(i) + 0.01, i, &format!("host{i}.example"), &good));
    }
    assert!(run(&t).is_empty());
}

fn upload(n: u32, src_port: u16, dst_port: u16, src: &str, dst: &str) -> Trace {
    let payload = vec![0x41u8; 1400];
    (0..n)
        .map(|i| {
            let p = TcpPacket::new(src, src_port, dst, dst_port)
                .flags(flags::PSH_ACK)
                .seq(1 + i * 1400)
                .payload(&payload)
                .build();
            (f64::from(i) * 0.014, p)
        })
        .collect()
}

#[test]
fn data_exfiltration_at_5_mb_outbound() {
    // 3572 × 1400 = 5 000 800 bytes in 50 s.
    let a = run(&upload(3572, 50000, 443, "10.0.0.5", "203.0.113.9"));
    let e = one(&a, Category::DataExfiltration, ip("10.0.0.5"), ip("203.0.113.9"));
    assert_eq!(e.evidence["bytes"], 5_000_800);
    assert_eq!(e.evidence["channel"], "volume");
    none(&run(&upload(3571, 50000, 443, "10.0.0.5", "203.0.113.9")), Category::DataExfiltration);
}

#[test]
fn downloads_and_serving_are_not_exfiltration() {
    // A 10 MB download: the internal host only sends ACKs.
    let mut t = upload(7200, 443, 50000, "203.0.113.9", "10.0.0.5");
    t.extend((0..3600u32).map(|i| {
        (f64::from(i) * 0.028, TcpPacket::new("10.0.0.5", 50000, "203.0.113.9", 443).ack(1 + i * 2800).build())
    }));
    none(&run(&t), Category::DataExfiltration);
    // An internal web server sending 10 MB to an external client.
    none(&run(&upload(7200, 443, 50000, "10.0.0.80", "198.51.100.7")), Category::DataExfiltration);
    // Internal to internal backups.
    none(&run(&upload(7200, 50000, 873, "10.0.0.5", "10.0.0.6")), Category::DataExfiltration);
}

#[test]
fn packet_anomalies() {
    let synfin = TcpPacket::new("10.0.0.66", 40000, "10.0.0.1", 80).flags(flags::SYN | flags::FIN).build();
    let a = run(&vec![(0.0, synfin.clone()), (1.0, synfin)]);
    let p = one(&a, Category::PacketAnomaly, ip("10.0.0.66"), ip("10.0.0.1"));
    assert_eq!(p.evidence["anomalies"], serde_json::json!(["tcp_syn_fin"]));
    assert_eq!(p.severity, Severity::Medium);
    // Land.
    let land = TcpPacket::new("10.0.0.1", 80, "10.0.0.1", 80).flags(flags::SYN).build();
    let a = run(&vec![(0.0, land)]);
    assert!(
        one(&a, Category::PacketAnomaly, ip("10.0.0.1"), ip("10.0.0.1")).evidence["anomalies"]
            .to_string()
            .contains("land")
    );
    // A bad TCP checksum.
    let mut bad = TcpPacket::new("10.0.0.2", 40000, "10.0.0.1", 80).flags(flags::SYN).build();
    bad[14 + 20 + 16] ^= 0xff; // the TCP checksum field
    let a = run(&vec![(0.0, bad)]);
    assert_eq!(
        one(&a, Category::PacketAnomaly, ip("10.0.0.2"), ip("10.0.0.1")).evidence["anomalies"],
        serde_json::json!(["l4_checksum_bad"])
    );
    // Ordinary traffic is clean, and a packet cut by the snap length is the capture's fault.
    let ok = TcpPacket::new("10.0.0.2", 40000, "10.0.0.1", 80).flags(flags::PSH_ACK).payload(&[1; 200]).build();
    let mut e = Engine::new(DetectConfig::default()).unwrap();
    let mut out = Vec::new();
    e.process(&crate::testutil::frame(0.0, &ok), &mut out);
    let cut = &ok[..40];
    e.process(&crate::Frame { ts_nanos: 1, link_type: 1, orig_len: ok.len() as u32, data: cut }, &mut out);
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn overlapping_fragments() {
    // Two IPv4 fragments of datagram 99: bytes 0..24 and 16..40.
    let frag = |offset_units: u16, more: bool, len: usize| {
        let mut f = crate::testutil::ip_frame(
            mac(1),
            mac(2),
            crate::testutil::ip("10.0.0.66"),
            crate::testutil::ip("10.0.0.1"),
            1,
            64,
            99,
            vec![0u8; len],
            None,
        );
        let fl = (if more { 0x2000u16 } else { 0 }) | offset_units;
        f[20..22].copy_from_slice(&fl.to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let c = crate::testutil::checksum(&f[14..34], 0);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    };
    let t: Trace = vec![(0.0, frag(0, true, 24)), (0.1, frag(2, false, 24))];
    let a = run(&t);
    let p = one(&a, Category::PacketAnomaly, ip("10.0.0.66"), ip("10.0.0.1"));
    assert!(p.evidence["anomalies"].to_string().contains("ip_fragment_overlap"), "{p:#?}");
    let ok: Trace = vec![(0.0, frag(0, true, 24)), (0.1, frag(3, false, 24))];
    none(&run(&ok), Category::PacketAnomaly);
}

fn intel_engine(lines: &[&str]) -> Engine {
    let mut b = Blocklist::new();
    for l in lines {
        b.insert(parse_line(l).unwrap().unwrap());
    }
    Engine::with_options(DetectConfig::default(), EngineOptions { blocklist: Arc::new(b), ..EngineOptions::default() })
        .unwrap()
}

#[test]
fn threat_intel_ips_cidrs_and_domains() {
    let mut e = intel_engine(&["203.0.113.7", "198.51.100.0/24", "evil.example"]);
    let mut out = Vec::new();
    let pkts = [
        TcpPacket::new("10.0.0.5", 40000, "203.0.113.7", 443).flags(flags::SYN).build(),
        TcpPacket::new("198.51.100.77", 443, "10.0.0.5", 40001).flags(flags::SYN_ACK).build(),
        udp("10.0.0.5", 5353, "10.0.0.53", 53, &dns_query(1, "cdn.EVIL.example", 1)),
        TcpPacket::new("10.0.0.5", 40002, "192.0.2.80", 80)
            .flags(flags::PSH_ACK)
            .payload(b"GET / HTTP/1.1\r\nHost: a.evil.example:8080\r\n\r\n")
            .build(),
        TcpPacket::new("10.0.0.5", 40003, "192.0.2.81", 443)
            .flags(flags::PSH_ACK)
            .payload(&crate::testutil::tls_client_hello("x.evil.example"))
            .build(),
        // Not listed:
        TcpPacket::new("10.0.0.5", 40004, "203.0.113.8", 443).flags(flags::SYN).build(),
        udp("10.0.0.5", 5354, "10.0.0.53", 53, &dns_query(2, "notevil.example", 1)),
    ];
    for (i, p) in pkts.iter().enumerate() {
        e.process(&crate::testutil::frame(i as f64, p), &mut out);
    }
    let hits = of(&out, Category::ThreatIntelMatch);
    let kinds: Vec<(String, String)> = hits
        .iter()
        .map(|a| {
            (a.evidence["list_entry"].as_str().unwrap().to_owned(), a.evidence["matched"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("203.0.113.7/32".to_owned(), "destination".to_owned()),
            ("198.51.100.0/24".into(), "source".into()),
            ("evil.example".into(), "dns_query".into()),
            ("evil.example".into(), "http_host".into()),
            ("evil.example".into(), "tls_sni".into()),
        ]
    );
    // Without a blocklist nothing matches.
    let a = run(&pkts.iter().enumerate().map(|(i, p)| (i as f64, p.clone())).collect());
    none(&a, Category::ThreatIntelMatch);
}
