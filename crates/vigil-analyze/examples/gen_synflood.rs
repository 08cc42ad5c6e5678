//! Writes a spoofed SYN flood for the engine's worst-case benchmark:
//! `cargo run --release -p vigil-analyze --example gen_synflood -- OUT.pcap 2000000`.
//!
//! N SYNs (valid checksums, 2 µs apart) from random spoofed IPv4 sources and ports to
//! 10.0.0.80 port 80: every packet creates fresh state in several tables of the engine.
//! Deterministic (fixed xorshift seed).

use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

use vigil_detect::testutil::{TcpPacket, flags, pcap_header, pcap_record_header};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "synflood.pcap".into());
    let n: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(2_000_000);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    w.write_all(&pcap_header(1))?;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut ts: i64 = 1_700_000_000_000_000_000;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Any unicast source outside 0/8, 10/8 and the multicast and reserved ranges.
        let src = Ipv4Addr::from(((x as u32) % 0xdf00_0000).max(0x0100_0000) | 0x0100_0000);
        let src = if src.octets()[0] == 10 { Ipv4Addr::from(u32::from(src) ^ 0x0100_0000) } else { src };
        let sport = 1024 + ((x >> 32) as u16 % 60000);
        let frame =
            TcpPacket::new(&src.to_string(), sport, "10.0.0.80", 80).flags(flags::SYN).seq((x >> 16) as u32).build();
        w.write_all(&pcap_record_header(ts, frame.len(), frame.len()))?;
        w.write_all(&frame)?;
        ts += 2_000;
    }
    w.flush()?;
    eprintln!("wrote {n} packets to {out}");
    Ok(())
}
