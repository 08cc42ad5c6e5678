//! The synthetic attack captures `vigil demo` replays through its agents, so the dashboard
//! has alerts and incidents to show within seconds of the start.
//!
//! Three watchers see one small, scripted attack on a made-up network:
//!
//! - `demo-agent` (a workstation, 10.0.0.5): an FTP login in clear text, a plain HTTP
//!   request, a DNS tunnel, a shell on a backdoor port, a TLS 1.0 session, then the
//!   workstation itself sweeping its subnet for SMB (lateral movement);
//! - `demo-web` (in front of the web server 10.0.0.10): a port scan and a SYN flood from
//!   203.0.113.66, a second scanner, and an HTTP Basic login;
//! - `demo-db` (next to the database host 10.0.0.20, same segment as 10.0.0.10): an ICMP
//!   flood from 203.0.113.66 at the web server, a third attacker scanning and flooding it,
//!   and 203.0.113.66 brute-forcing SSH on the database host.
//!
//! Each attack is just over its detector's default threshold (a few hundred packets in
//! all). The six flood and scan alerts against 10.0.0.10 from two agents within three
//! seconds are what the server's correlation calls `dos_suspected`; the alerts sharing
//! an attacker group into an incident. Packets are stamped from `t0`, so detection (which
//! takes its time from packet timestamps) sees a fresh attack at every replay; apart from
//! `t0` the captures are always the same bytes.

use std::path::Path;

use vigil_detect::testutil::{
    TcpPacket, dns_query, flags, icmp_echo, mac, pcap_bytes, tls_client_hello, tls_server_hello, udp,
};

/// The demo's watchers, in start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoHost {
    /// The local agent (also reports this machine's real metrics).
    Local,
    /// The web server's watcher.
    Web,
    /// The database server's watcher.
    Db,
}

impl DemoHost {
    /// Every watcher.
    pub const ALL: [DemoHost; 3] = [DemoHost::Local, DemoHost::Web, DemoHost::Db];

    /// Its agent id.
    pub fn agent_id(self) -> &'static str {
        match self {
            DemoHost::Local => "demo-agent",
            DemoHost::Web => "demo-web",
            DemoHost::Db => "demo-db",
        }
    }

    /// One line on what it sees, for the banner.
    pub fn story(self) -> &'static str {
        match self {
            DemoHost::Local => "clear-text FTP login, plain HTTP, DNS tunnel, backdoor port, TLS 1.0, SMB sweep",
            DemoHost::Web => "port scans and a SYN flood against 10.0.0.10, an HTTP Basic login",
            DemoHost::Db => "ICMP and SYN floods against 10.0.0.10, an SSH brute force on 10.0.0.20",
        }
    }

    /// Its capture: (timestamp in ns since the epoch, Ethernet frame), in time order, all
    /// within six seconds after `t0_nanos`.
    pub fn packets(self, t0_nanos: i64) -> Vec<(i64, Vec<u8>)> {
        let mut t = Trace { t0: t0_nanos, out: Vec::new() };
        match self {
            DemoHost::Local => local(&mut t),
            DemoHost::Web => web(&mut t),
            DemoHost::Db => db(&mut t),
        }
        t.out.sort_by_key(|(ts, _)| *ts);
        t.out
    }

    /// Writes its capture as a classic pcap file (Ethernet).
    pub fn write_pcap(self, path: &Path, t0_nanos: i64) -> std::io::Result<()> {
        let packets = self.packets(t0_nanos);
        std::fs::write(path, pcap_bytes(1, packets.iter().map(|(ts, f)| (*ts, f.as_slice()))))
    }
}

/// The attacker every watcher sees (scan, SYN flood, ICMP flood, SSH brute force).
const ATTACKER: &str = "203.0.113.66";
/// The web server under attack.
const WEB: &str = "10.0.0.10";

struct Trace {
    t0: i64,
    out: Vec<(i64, Vec<u8>)>,
}

impl Trace {
    fn at(&mut self, secs: f64, frame: Vec<u8>) {
        self.out.push((self.t0 + (secs * 1e9) as i64, frame));
    }

    /// SYNs from `src` to `ports` of `dst`, `spacing` seconds apart from `start`.
    fn syns(&mut self, start: f64, spacing: f64, src: &str, sport: u16, dst: &str, ports: impl Iterator<Item = u16>) {
        for (i, port) in ports.enumerate() {
            let syn = TcpPacket::new(src, sport, dst, port).flags(flags::SYN).seq(0x1000 + i as u32).build();
            self.at(start + i as f64 * spacing, syn);
        }
    }

    /// A TCP connection (handshake, then `msgs`: from the client?, payload) with
    /// consistent sequence numbers, 10 ms between segments.
    fn conversation(&mut self, start: f64, client: &str, cport: u16, server: &str, sport: u16, msgs: &[(bool, &[u8])]) {
        let (mut cseq, mut sseq) = (1000u32, 5000u32);
        let to_server = || TcpPacket::new(client, cport, server, sport);
        let to_client = || TcpPacket::new(server, sport, client, cport).macs(mac(2), mac(1));
        self.at(start, to_server().flags(flags::SYN).seq(cseq - 1).build());
        self.at(start + 0.001, to_client().flags(flags::SYN_ACK).seq(sseq - 1).ack(cseq).build());
        let mut ts = start + 0.002;
        for (from_client, payload) in msgs {
            let p = if *from_client {
                let p = to_server().flags(flags::PSH_ACK).seq(cseq).ack(sseq).payload(payload);
                cseq = cseq.wrapping_add(payload.len() as u32);
                p
            } else {
                let p = to_client().flags(flags::PSH_ACK).seq(sseq).ack(cseq).payload(payload);
                sseq = sseq.wrapping_add(payload.len() as u32);
                p
            };
            self.at(ts, p.build());
            ts += 0.01;
        }
    }
}

fn local(t: &mut Trace) {
    let me = "10.0.0.5";
    t.conversation(
        0.0,
        me,
        40100,
        "10.0.0.21",
        21,
        &[
            (false, b"220 FTP ready\r\n"),
            (true, b"USER backup\r\n"),
            (false, b"331 Password required\r\n"),
            (true, b"PASS demo-only-password\r\n"),
            (false, b"230 Logged in\r\n"),
        ],
    );
    t.conversation(
        0.5,
        me,
        40101,
        "93.184.216.34",
        80,
        &[(true, b"GET /download/setup.exe HTTP/1.1\r\nHost: downloads.example.com\r\n\r\n")],
    );
    // Six queries with long, high-entropy names under one domain (threshold: 5).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..6u16 {
        let label: String = (0..40)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize] as char
            })
            .collect();
        let name = format!("{label}.c2.exfil-demo.example");
        t.at(1.0 + f64::from(i) * 0.2, udp(me, 41000 + i, "10.0.0.53", 53, &dns_query(0x4000 + i, &name, 16)));
    }
    t.conversation(
        2.5,
        me,
        40102,
        "198.51.100.44",
        4444,
        &[(false, b"Microsoft Windows\r\nC:\\>"), (true, b"whoami\r\n")],
    );
    let hello = tls_server_hello(0x0301, 0x0005);
    t.conversation(
        3.0,
        me,
        40103,
        "198.51.100.80",
        443,
        &[(true, &tls_client_hello("legacy.example.net")), (false, &hello)],
    );
    // The workstation sweeps its subnet for SMB: 40 hosts, none answering, in 0.8 s
    // (threshold: 32 unanswered hosts in 10 s).
    for i in 0..40u16 {
        let host = format!("10.0.0.{}", 100 + i);
        let syn = TcpPacket::new(me, 49000 + i, &host, 445).flags(flags::SYN).seq(u32::from(i) * 7919).build();
        t.at(3.5 + f64::from(i) * 0.02, syn);
    }
}

fn web(t: &mut Trace) {
    // Port scan: 20 ports in 1 s (threshold: 15 in 10 s).
    let ports = [21u16, 22, 23, 25, 53, 80, 110, 135, 139, 143, 443, 445, 993, 995, 1433, 1723, 3306, 3389, 5900, 8080];
    t.syns(0.0, 0.05, ATTACKER, 61000, WEB, ports.into_iter());
    // SYN flood: 240 SYNs to :80 in 0.5 s from changing source ports (threshold: 200 in 5 s).
    for i in 0..240u16 {
        let syn = TcpPacket::new(ATTACKER, 20000 + i, WEB, 80).flags(flags::SYN).seq(u32::from(i) * 7919).build();
        t.at(1.1 + f64::from(i) * 0.002, syn);
    }
    // A second scanner.
    t.syns(1.8, 0.04, "198.51.100.23", 52000, WEB, (8000..8020).chain(std::iter::once(9200)));
    t.conversation(
        2.8,
        "10.0.0.7",
        43000,
        WEB,
        80,
        &[(true, b"GET /admin/ HTTP/1.1\r\nHost: intranet.example\r\nAuthorization: Basic YWRtaW46ZGVtbw==\r\n\r\n")],
    );
}

fn db(t: &mut Trace) {
    // ICMP flood: 120 echo requests in 0.6 s (threshold: 100 in 5 s).
    for i in 0..120u16 {
        t.at(0.2 + f64::from(i) * 0.005, icmp_echo(ATTACKER, WEB, 0x77, i, &[0x42; 56]));
    }
    let third = "203.0.113.77";
    t.syns(1.0, 0.03, third, 62000, WEB, (1..=20).map(|p| p * 100));
    for i in 0..220u16 {
        let syn = TcpPacket::new(third, 30000 + i, WEB, 443).flags(flags::SYN).seq(u32::from(i) * 104_729).build();
        t.at(1.7 + f64::from(i) * 0.002, syn);
    }
    // SSH brute force on the database host: 36 connections in 3.5 s (threshold: 30 in 30 s).
    for i in 0..36u16 {
        let syn = TcpPacket::new(ATTACKER, 45000 + i, "10.0.0.20", 22).flags(flags::SYN).seq(u32::from(i)).build();
        t.at(2.3 + f64::from(i) * 0.1, syn);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use vigil_detect::{DetectConfig, Engine, Frame};
    use vigil_model::{Alert, Category};

    use super::*;

    fn detect(host: DemoHost, t0: i64) -> Vec<Alert> {
        let mut engine = Engine::new(DetectConfig::default()).unwrap();
        let mut alerts = Vec::new();
        for (ts, data) in host.packets(t0) {
            let f = Frame { ts_nanos: ts, link_type: 1, orig_len: data.len() as u32, data: &data };
            engine.process(&f, &mut alerts);
        }
        alerts
    }

    fn categories(alerts: &[Alert]) -> BTreeSet<Category> {
        alerts.iter().map(|a| a.category).collect()
    }

    #[test]
    fn each_watcher_raises_its_story() {
        use Category::*;
        let t0 = 1_790_000_000_000_000_000;
        let local = detect(DemoHost::Local, t0);
        let want =
            [PlaintextCredentials, InsecureProtocol, UnencryptedHttp, DnsTunnel, SuspiciousPort, WeakTls, PortScan];
        assert_eq!(categories(&local), want.into_iter().collect(), "{local:#?}");
        let sweep = local.iter().find(|a| a.category == PortScan).unwrap();
        assert_eq!((sweep.src_ip, sweep.dst_ip), (Some("10.0.0.5".parse().unwrap()), None));
        assert_eq!(sweep.evidence["scan_type"], "host_sweep");
        let web = detect(DemoHost::Web, t0);
        let want = [PortScan, SynFlood, PlaintextCredentials, UnencryptedHttp];
        assert_eq!(categories(&web), want.into_iter().collect(), "{web:#?}");
        let db = detect(DemoHost::Db, t0);
        assert_eq!(categories(&db), [PortScan, SynFlood, IcmpFlood, BruteForce].into_iter().collect(), "{db:#?}");
    }

    #[test]
    fn floods_and_scans_against_the_web_server_make_a_dos_across_two_agents() {
        let t0 = 1_790_000_000_000_000_000;
        let flood = [Category::SynFlood, Category::IcmpFlood, Category::PortScan];
        let mut hits = Vec::new();
        for host in [DemoHost::Web, DemoHost::Db] {
            for a in detect(host, t0) {
                if flood.contains(&a.category) && a.dst_ip == Some(WEB.parse().unwrap()) {
                    hits.push(a.timestamp.timestamp_nanos_opt().unwrap());
                }
            }
        }
        // The server's default dos rule: 5 such alerts from 2 agents within 10 s.
        assert!(hits.len() >= 5, "{hits:?}");
        let span = hits.iter().max().unwrap() - hits.iter().min().unwrap();
        assert!(span < 10_000_000_000, "{span} ns");
        // Alert times come from the packets: fresh `t0`, fresh alerts, all within 6 s.
        assert!(hits.iter().all(|&ts| ts >= t0 && ts <= t0 + 6_000_000_000), "{hits:?}");
    }

    #[test]
    fn captures_are_deterministic_apart_from_t0_and_stay_small() {
        for host in DemoHost::ALL {
            let (a, b) = (host.packets(0), host.packets(5_000_000_000));
            assert_eq!(a.len(), b.len());
            assert!(a.iter().zip(&b).all(|(x, y)| x.1 == y.1 && y.0 - x.0 == 5_000_000_000));
            assert!(a.len() < 1000, "{host:?}: {} packets", a.len());
            let last = a.last().unwrap().0;
            assert!(last <= 6_000_000_000, "{host:?} ends at {last} ns");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.pcap");
        DemoHost::Web.write_pcap(&path, 0).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
    }
}
