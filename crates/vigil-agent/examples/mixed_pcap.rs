//! Writes a deterministic mixed-traffic capture for the live-capture benchmark
//! (BENCHMARKS.md): `cargo run --release -p vigil-agent --example mixed_pcap -- OUT.pcap [PACKETS]`.
//!
//! The mix: 1024 long-lived HTTPS downloads between 256 internal hosts and 61 servers
//! (about 41 % data segments of 1514 bytes, 32 % ACKs of 54 bytes, sequence numbers
//! consistent), 17 % DNS queries and answers in pairs (80–110 bytes), 2 % ICMP echo
//! request/reply pairs (98 bytes). Valid IP and L4 checksums: benign traffic, so the
//! benchmark measures capture and detection rather than alert writing. Average frame
//! about 690 bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;

/// A tiny deterministic generator (xorshift), so the file is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet + IPv4 around an L4 segment whose checksum field is at `ck_at` (None: no
/// L4 checksum, e.g. ICMP handled by the caller).
fn frame(src_mac: [u8; 6], dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], proto: u8, mut l4: Vec<u8>) -> Vec<u8> {
    let ck_at = match proto {
        6 => Some(16),
        17 => Some(6),
        _ => None,
    };
    if let Some(at) = ck_at {
        let mut pseudo = Vec::with_capacity(12 + l4.len());
        pseudo.extend_from_slice(&src);
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&l4);
        let c = checksum(&pseudo);
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: usize) -> Vec<u8> {
    let mut t = vec![0u8; 20 + payload];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    for (i, b) in t[20..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(payload);
    u
}

fn dns(id: u16, name: &str, answer: bool) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&id.to_be_bytes());
    d.extend_from_slice(if answer { &[0x81, 0x80] } else { &[0x01, 0x00] });
    d.extend_from_slice(&[0, 1, 0, u8::from(answer), 0, 0, 0, 0]);
    for label in name.split('.') {
        d.push(label.len() as u8);
        d.extend_from_slice(label.as_bytes());
    }
    d.extend_from_slice(&[0, 0, 1, 0, 1]);
    if answer {
        d.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34]);
    }
    d
}

fn icmp_echo(reply: bool, seq: u16) -> Vec<u8> {
    let mut icmp = vec![if reply { 0 } else { 8 }, 0, 0, 0, 0, 1];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(&[0x5a; 56]);
    let ck = checksum(&icmp);
    icmp[2..4].copy_from_slice(&ck.to_be_bytes());
    icmp
}

/// One long-lived TCP download: server port 443 to a client port, sequence numbers kept.
struct Flow {
    host: u8,
    server: u8,
    port: u16,
    srv_seq: u32,
    cli_seq: u32,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("usage: mixed_pcap OUT.pcap [PACKETS]");
    let n: u64 = args.next().map_or(200_000, |s| s.parse().expect("PACKETS is a number"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out).expect("create OUT"));
    w.write_all(&0xa1b2_3c4du32.to_le_bytes()).unwrap();
    w.write_all(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    w.write_all(&65535u32.to_le_bytes()).unwrap();
    w.write_all(&1u32.to_le_bytes()).unwrap();
    let names = ["www.example.com", "mail.example.org", "cdn.example.net", "api.example.com"];
    let router = [2, 0, 0, 0, 0, 1];
    let mac = |host: u8| [2, 0, 0, 0, 1, host];
    let mut flows: Vec<Flow> = (0..1024u32)
        .map(|i| Flow {
            host: (i % 256) as u8,
            server: (i % 61) as u8,
            port: 40000 + i as u16,
            srv_seq: i.wrapping_mul(7919),
            cli_seq: i.wrapping_mul(104_729),
        })
        .collect();
    let mut ts: u64 = 1_700_000_000_000_000_000;
    let mut bytes = 0u64;
    let mut pending: Option<Vec<u8>> = None;
    let mut i = 0u64;
    while i < n {
        // The second half of a query/answer or request/reply pair, right after the first.
        let f = if let Some(p) = pending.take() {
            p
        } else {
            let r = rng.below(1000);
            let fl = &mut flows[rng.below(1024) as usize];
            let c = [10, 1, 0, fl.host];
            let sv = [198, 51, 100, fl.server];
            match r {
                0..450 => {
                    let f =
                        frame(router, mac(fl.host), sv, c, 6, tcp(443, fl.port, fl.srv_seq, fl.cli_seq, 0x10, 1460));
                    fl.srv_seq = fl.srv_seq.wrapping_add(1460);
                    f
                }
                450..800 => frame(mac(fl.host), router, c, sv, 6, tcp(fl.port, 443, fl.cli_seq, fl.srv_seq, 0x10, 0)),
                800..990 => {
                    let id = rng.next() as u16;
                    let name = names[(id % 4) as usize];
                    let dns_srv = [10, 1, 255, 53];
                    let sport = 50000 + (id % 10000);
                    pending = Some(frame(
                        [2, 0, 0, 0, 0, 53],
                        mac(fl.host),
                        dns_srv,
                        c,
                        17,
                        udp(53, sport, &dns(id, name, true)),
                    ));
                    frame(mac(fl.host), [2, 0, 0, 0, 0, 53], c, dns_srv, 17, udp(sport, 53, &dns(id, name, false)))
                }
                _ => {
                    let seq = rng.next() as u16;
                    pending = Some(frame(router, mac(fl.host), sv, c, 1, icmp_echo(true, seq)));
                    frame(mac(fl.host), router, c, sv, 1, icmp_echo(false, seq))
                }
            }
        };
        ts += 1000 + rng.below(2000);
        let (sec, nsec) = ((ts / 1_000_000_000) as u32, (ts % 1_000_000_000) as u32);
        w.write_all(&sec.to_le_bytes()).unwrap();
        w.write_all(&nsec.to_le_bytes()).unwrap();
        w.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
        w.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
        w.write_all(&f).unwrap();
        bytes += f.len() as u64;
        i += 1;
    }
    w.flush().unwrap();
    eprintln!("{out}: {n} packets, {bytes} bytes, {} bytes per packet on average", bytes / n.max(1));
}
