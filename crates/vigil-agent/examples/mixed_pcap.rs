//! Writes a deterministic mixed-traffic capture for the live-capture benchmark
//! (BENCHMARKS.md): `cargo run --release -p vigil-agent --example mixed_pcap -- OUT.pcap [PACKETS]`.
//!
//! The mix, per 100 packets: 40 TCP data segments of 1514 bytes, 30 TCP ACKs of 54 bytes
//! (bulk transfers), 10 DNS queries and 10 answers (80–160 bytes), 4 SYN/SYN-ACK pairs of
//! new connections, 2 ICMP echoes of 98 bytes; 256 internal hosts talk to 64 servers.
//! Average frame: about 650 bytes.

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

fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&[2, 0, dst[2], dst[3], 0, 1]);
    f.extend_from_slice(&[2, 0, src[2], src[3], 0, 2]);
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
    f.extend_from_slice(l4);
    f
}

fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: usize) -> Vec<u8> {
    let mut t = vec![0u8; 20 + payload];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&1u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
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
    let mut ts: u64 = 1_700_000_000_000_000_000;
    let mut bytes = 0u64;
    for i in 0..n {
        let host = rng.below(256) as u8;
        let server = rng.below(64) as u8;
        let c = [10, 1, 0, host];
        let s = [198, 51, 100, server];
        let sport = 32768 + (u16::from(host) << 6) + (server as u16 & 63);
        let seq = (i as u32).wrapping_mul(1460);
        let f = match i % 100 {
            0..40 => frame(s, c, 6, &tcp(443, sport, seq, 0x10, 1460)),
            40..70 => frame(c, s, 6, &tcp(sport, 443, seq, 0x10, 0)),
            70..80 => frame(c, [10, 1, 255, 53], 17, &udp(sport, 53, &dns(i as u16, names[(i % 4) as usize], false))),
            80..90 => frame([10, 1, 255, 53], c, 17, &udp(53, sport, &dns(i as u16, names[(i % 4) as usize], true))),
            90..94 => frame(c, s, 6, &tcp(sport.wrapping_add(i as u16), 443, seq, 0x02, 0)),
            94..98 => frame(s, c, 6, &tcp(443, sport.wrapping_add(i as u16), seq, 0x12, 0)),
            _ => {
                let mut icmp = vec![8u8, 0, 0, 0, 0, 1, 0, 1];
                icmp.extend_from_slice(&[0x5a; 56]);
                let ck = checksum(&icmp);
                icmp[2..4].copy_from_slice(&ck.to_be_bytes());
                frame(c, s, 1, &icmp)
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
    }
    w.flush().unwrap();
    eprintln!("{out}: {n} packets, {bytes} bytes, {} bytes per packet on average", bytes / n.max(1));
}
