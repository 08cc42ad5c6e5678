//! Writes a mixed capture for the end-to-end benchmark:
//! `cargo run --release -p vigil-analyze --example gen_mixed -- OUT.pcap 5000000 [FLOWS]`.
//!
//! 20 000 (or FLOWS) concurrent TCP connections from internal clients to external servers (HTTPS with
//! hellos, plain HTTP, bulk downloads with ACKs), DNS queries and answers, NTP-like UDP,
//! pings, ARP, and a few attacks sprinkled in (a port scan, a short SYN flood, a DNS
//! tunnel), at about 200 000 packets per second of capture time. Deterministic.

use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

use vigil_detect::testutil::{
    TcpPacket, arp, dns_query, dns_response, flags, icmp_echo, mac, pcap_header, pcap_record_header, tls_client_hello,
    tls_server_hello, udp,
};

/// Concurrent TCP connections unless the third argument says otherwise.
const FLOWS: u32 = 20_000;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "mixed.pcap".into());
    let n: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(5_000_000);
    let flows: u32 = args.next().and_then(|v| v.parse().ok()).filter(|f| *f > 0).unwrap_or(FLOWS);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    w.write_all(&pcap_header(1))?;
    let mut seq_c = vec![1u32; flows as usize];
    let mut seq_s = vec![1u32; flows as usize];
    let mut state = vec![0u8; flows as usize];
    let chunk = vec![0x5au8; 1400];
    let small = vec![0x17u8; 120];
    let mut ts: i64 = 1_700_000_000_000_000_000;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut last_query = String::from("10.0.0.9");
    for i in 0..n {
        ts += 5_000; // 200 000 packets per second
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = (x % u64::from(flows)) as u32;
        let fi = f as usize;
        let client = format!("10.{}.{}.{}", f / 62500, (f / 250) % 250, f % 250 + 1);
        let server = format!("93.184.{}.{}", f % 100, f % 250 + 1);
        let sport = 20000 + (f % 40000) as u16;
        let https = !f.is_multiple_of(4);
        let dport = if https { 443 } else { 80 };
        let kind = i % 100;
        let frame = if kind == 0 {
            last_query = client.clone();
            udp(
                &client,
                30000 + (i % 30000) as u16,
                "10.0.0.53",
                53,
                &dns_query((i % 65536) as u16, &format!("host{}.example{}.com", i % 977, i % 31), 1),
            )
        } else if kind == 1 {
            udp(
                "10.0.0.53",
                53,
                &last_query,
                30000 + ((i - 1) % 30000) as u16,
                &dns_response(
                    ((i - 1) % 65536) as u16,
                    &format!("host{}.example{}.com", (i - 1) % 977, (i - 1) % 31),
                    &[Ipv4Addr::new(93, 184, 216, 34)],
                ),
            )
        } else if kind == 2 {
            icmp_echo(&client, "10.0.0.1", 7, (i % 65536) as u16, &[0; 56])
        } else if kind == 3 {
            udp(&client, 123, "162.159.200.1", 123, &[0x23; 48])
        } else if kind == 4 && i % 1000 == 4 {
            arp(1, mac((f % 200) as u8 + 20), &client, [0; 6], "10.0.0.1")
        } else if kind == 5 && (i / 100) % 5000 == 17 {
            // A port scan burst.
            TcpPacket::new("10.0.66.66", 55555, "10.0.0.80", (i % 1000) as u16 + 1).flags(flags::SYN).build()
        } else if kind == 6 && (i / 100) % 7000 == 23 {
            udp(
                "10.0.77.77",
                40000,
                "10.0.0.53",
                53,
                &dns_query((i % 65536) as u16, &format!("{:x}{:x}.t.tunnel.example", x, x.rotate_left(17)), 16),
            )
        } else {
            // The flow's next packet.
            let st = state[fi];
            state[fi] = st.saturating_add(1);
            let c2s = |p: TcpPacket| p;
            let s2c = |p: TcpPacket| p.macs(mac(2), mac(1));
            match st {
                0 => c2s(TcpPacket::new(&client, sport, &server, dport).flags(flags::SYN).seq(0)).build(),
                1 => s2c(TcpPacket::new(&server, dport, &client, sport).flags(flags::SYN_ACK).seq(0).ack(1)).build(),
                2 => {
                    let hello = if https {
                        tls_client_hello("www.example.com")
                    } else {
                        b"GET /file.bin HTTP/1.1\r\nHost: www.example.com\r\n\r\n".to_vec()
                    };
                    let p = c2s(TcpPacket::new(&client, sport, &server, dport)
                        .flags(flags::PSH_ACK)
                        .seq(seq_c[fi])
                        .ack(1)
                        .payload(&hello));
                    seq_c[fi] = seq_c[fi].wrapping_add(hello.len() as u32);
                    p.build()
                }
                3 if https => {
                    let sh = tls_server_hello(0x0303, 0xc02f);
                    let p = s2c(TcpPacket::new(&server, dport, &client, sport)
                        .flags(flags::PSH_ACK)
                        .seq(seq_s[fi])
                        .ack(seq_c[fi])
                        .payload(&sh));
                    seq_s[fi] = seq_s[fi].wrapping_add(sh.len() as u32);
                    p.build()
                }
                _ if x.is_multiple_of(3) => {
                    c2s(TcpPacket::new(&client, sport, &server, dport).flags(flags::ACK).seq(seq_c[fi]).ack(seq_s[fi]))
                        .build()
                }
                _ => {
                    let data: &[u8] = if x.is_multiple_of(5) { &small } else { &chunk };
                    let p = s2c(TcpPacket::new(&server, dport, &client, sport)
                        .flags(flags::ACK)
                        .seq(seq_s[fi])
                        .ack(seq_c[fi])
                        .payload(data));
                    seq_s[fi] = seq_s[fi].wrapping_add(data.len() as u32);
                    p.build()
                }
            }
        };
        w.write_all(&pcap_record_header(ts, frame.len(), frame.len()))?;
        w.write_all(&frame)?;
    }
    w.flush()?;
    eprintln!("wrote {n} packets to {out}");
    Ok(())
}
