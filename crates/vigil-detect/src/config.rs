//! Detection settings: what the user writes (TOML, serde, `deny_unknown_fields`), with the
//! defaults of DESIGN.md §4, and [`DetectConfig::validate`], which names the bad key.
//!
//! Durations are seconds (fractions allowed), volumes are bytes. Every table of the
//! engine gets a fixed share of [`DetectConfig::memory_budget_bytes`] (see
//! [`crate::Engine`]), so the budget is the only memory knob.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use vigil_decode::MacAddr;

/// A setting is out of range. `key` is the dotted TOML key (`port_scan.distinct_ports`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("detect config key `{key}`: {message}")]
pub struct ConfigError {
    /// Dotted key of the bad value.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.to_owned(), message: message.into() }
}

fn positive_secs(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(())
    } else {
        Err(err(key, format!("{v} is not a duration in seconds; expected a number above 0 and at most 86400")))
    }
}

fn at_least(key: &str, v: u64, min: u64) -> Result<(), ConfigError> {
    if v >= min { Ok(()) } else { Err(err(key, format!("{v} is too small; expected at least {min}"))) }
}

/// Seconds to nanoseconds, saturating.
pub(crate) fn nanos(secs: f64) -> i64 {
    let n = secs * 1e9;
    if n >= i64::MAX as f64 {
        i64::MAX
    } else if n <= 0.0 {
        0
    } else {
        n as i64
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or `-` separated).
pub fn parse_mac(s: &str) -> Option<MacAddr> {
    let mut out = [0u8; 6];
    let mut parts = s.trim().split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(MacAddr(out))
}

/// Everything the engine can be told. `DetectConfig::default()` is DESIGN.md §4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Total memory the engine's tables may use, in bytes (default 256 MiB). Each table
    /// gets a fixed share; when a table is full an old, unused entry is evicted (second-chance
    /// LRU) and counted in [`crate::Stats::evictions`].
    pub memory_budget_bytes: u64,
    /// One alert per (category, source, target) per this many seconds (default 60). The
    /// next alert after the cooldown carries how many were suppressed meanwhile.
    pub cooldown_secs: f64,
    /// The networks considered internal (default RFC 1918, RFC 6598 shared space, IPv6 ULA,
    /// loopback and link-local). Used by data_exfiltration and gateway learning.
    pub internal_networks: Vec<IpNet>,
    /// port_scan.
    pub port_scan: PortScanConfig,
    /// syn_flood.
    pub syn_flood: SynFloodConfig,
    /// icmp_flood.
    pub icmp_flood: IcmpFloodConfig,
    /// suspicious_port.
    pub suspicious_port: SuspiciousPortConfig,
    /// arp_spoof.
    pub arp_spoof: ArpSpoofConfig,
    /// gateway_mac_change.
    pub gateway: GatewayConfig,
    /// dns_tunnel.
    pub dns_tunnel: DnsTunnelConfig,
    /// dns_spoof.
    pub dns_spoof: DnsSpoofConfig,
    /// data_exfiltration.
    pub data_exfiltration: ExfilConfig,
    /// brute_force.
    pub brute_force: BruteForceConfig,
    /// session_hijack.
    pub session_hijack: SessionHijackConfig,
    /// packet_anomaly.
    pub packet_anomaly: PacketAnomalyConfig,
    /// insecure_protocol.
    pub insecure_protocol: Toggle,
    /// unencrypted_http.
    pub unencrypted_http: Toggle,
    /// plaintext_credentials.
    pub plaintext_credentials: Toggle,
    /// tls_certificate_change and weak_tls.
    pub tls: TlsConfig,
    /// threat_intel_match (the lists themselves are given to [`crate::Engine`] parsed).
    pub threat_intel: Toggle,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            memory_budget_bytes: 256 * 1024 * 1024,
            cooldown_secs: 60.0,
            internal_networks: default_internal_networks(),
            port_scan: PortScanConfig::default(),
            syn_flood: SynFloodConfig::default(),
            icmp_flood: IcmpFloodConfig::default(),
            suspicious_port: SuspiciousPortConfig::default(),
            arp_spoof: ArpSpoofConfig::default(),
            gateway: GatewayConfig::default(),
            dns_tunnel: DnsTunnelConfig::default(),
            dns_spoof: DnsSpoofConfig::default(),
            data_exfiltration: ExfilConfig::default(),
            brute_force: BruteForceConfig::default(),
            session_hijack: SessionHijackConfig::default(),
            packet_anomaly: PacketAnomalyConfig::default(),
            insecure_protocol: Toggle::default(),
            unencrypted_http: Toggle::default(),
            plaintext_credentials: Toggle::default(),
            tls: TlsConfig::default(),
            threat_intel: Toggle::default(),
        }
    }
}

/// RFC 1918, RFC 6598, loopback, link-local, IPv6 ULA, loopback and link-local.
pub fn default_internal_networks() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "::1/128",
        "fe80::/10",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

/// A detector with nothing to tune but an on/off switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Toggle {
    /// Run this detector (default true).
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

/// port_scan: distinct destination ports probed from one source to one destination, and
/// host sweeps (many destinations probed on one port without answering).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortScanConfig {
    /// Run this detector.
    pub enabled: bool,
    /// Distinct destination ports (TCP SYN or stealth probes, UDP from a high source port)
    /// from one source to one destination that make a scan (default 15). TCP ports that
    /// accept the connection (a SYN-ACK seen) are not counted.
    pub distinct_ports: u32,
    /// Window in seconds, starting at the first probe (default 10).
    pub window_secs: f64,
    /// Stealth probes (NULL, FIN without ACK, XMAS, SYN+FIN) from one source to one
    /// destination in the window that make a stealth scan (default 5; honest stacks send none).
    pub stealth_probes: u32,
    /// Distinct destinations probed by one source on one TCP port (SYN), with ICMP echo or
    /// with ARP requests, in the window, that did not answer (no SYN-ACK, echo reply or ARP
    /// reply) and make a host sweep
    /// (default 32; 0 turns sweep detection off). Needs both directions in the capture.
    pub distinct_hosts: u32,
}

impl Default for PortScanConfig {
    fn default() -> Self {
        PortScanConfig { enabled: true, distinct_ports: 15, window_secs: 10.0, stealth_probes: 5, distinct_hosts: 32 }
    }
}

/// syn_flood: SYN-only packets at a flood rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynFloodConfig {
    /// Run this detector.
    pub enabled: bool,
    /// SYN-only packets in the window, from one source to one service (per source), or to
    /// one destination address from many sources (per destination) (default 200).
    pub threshold: u32,
    /// Window in seconds (default 5).
    pub window_secs: f64,
    /// Distinct sources (estimated) needed for the per-destination alert (default 10).
    pub min_sources: u32,
    /// The SYNs must be mostly unanswered: SYN-ACKs seen in the window must stay below
    /// this fraction of the SYNs (default 0.5). Captures of one direction see no SYN-ACK.
    pub max_answered_ratio: f64,
}

impl Default for SynFloodConfig {
    fn default() -> Self {
        SynFloodConfig { enabled: true, threshold: 200, window_secs: 5.0, min_sources: 10, max_answered_ratio: 0.5 }
    }
}

/// icmp_flood: echo requests from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcmpFloodConfig {
    /// Run this detector.
    pub enabled: bool,
    /// Echo requests (ICMP and ICMPv6) from one source in the window (default 100).
    pub threshold: u32,
    /// Window in seconds (default 5).
    pub window_secs: f64,
}

impl Default for IcmpFloodConfig {
    fn default() -> Self {
        IcmpFloodConfig { enabled: true, threshold: 100, window_secs: 5.0 }
    }
}

/// suspicious_port: traffic to or from known backdoor / C2 ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuspiciousPortConfig {
    /// Run this detector.
    pub enabled: bool,
    /// The ports (TCP and UDP). A TCP port counts once it answers (SYN-ACK) or carries
    /// data, so a scan sweeping past it is not reported here.
    pub ports: Vec<u16>,
}

impl Default for SuspiciousPortConfig {
    fn default() -> Self {
        SuspiciousPortConfig {
            enabled: true,
            // Metasploit, leet/elite, NetBus, IRC C2, SubSeven, Sasser, Bagle, MyDoom,
            // Back Orifice 2000, common reverse-shell choices.
            ports: vec![
                1337, 2745, 3127, 4444, 5554, 6666, 6667, 6668, 6669, 9996, 12345, 12346, 20034, 27374, 31337, 54320,
                54321,
            ],
        }
    }
}

/// arp_spoof: an IP's MAC changes, several MACs claim one IP, repeated unsolicited replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArpSpoofConfig {
    /// Run this detector.
    pub enabled: bool,
    /// A binding younger than this (seconds) that changes MAC is a spoof (default 3600);
    /// older bindings may legitimately move (DHCP reuse).
    pub binding_ttl_secs: f64,
    /// Unsolicited or gratuitous replies claiming one IP with one MAC in the window that
    /// make a poisoning campaign (default 5; arpspoof and ettercap repeat every 2-10 s, a
    /// booting host announces 1-3 times).
    pub unsolicited_replies: u32,
    /// Window for unsolicited replies, seconds (default 60).
    pub window_secs: f64,
    /// A reply within this many seconds of a matching request is solicited (default 5).
    pub request_timeout_secs: f64,
}

impl Default for ArpSpoofConfig {
    fn default() -> Self {
        ArpSpoofConfig {
            enabled: true,
            binding_ttl_secs: 3600.0,
            unsolicited_replies: 5,
            window_secs: 60.0,
            request_timeout_secs: 5.0,
        }
    }
}

/// gateway_mac_change: the default gateway's MAC changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Run this detector.
    pub enabled: bool,
    /// The gateway's IPv4 address; ARP claiming it with another MAC fires at once. When
    /// unset, it is learned: the IP the learned gateway MAC announces in ARP.
    pub ip: Option<IpAddr>,
    /// The gateway's MAC (`aa:bb:cc:dd:ee:ff`). When unset it is learned.
    pub mac: Option<String>,
    /// Learn the gateway MAC as the link-layer source of packets from external addresses
    /// (the next hop) (default true). Networks with several routers should set `mac`.
    pub learn: bool,
    /// Packets from external sources through one MAC needed to learn it (default 20).
    pub learn_packets: u32,
    /// Packets from external sources through one other MAC in the window that make a
    /// change (default 20).
    pub change_packets: u32,
    /// Window for `change_packets`, seconds (default 60).
    pub window_secs: f64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            enabled: true,
            ip: None,
            mac: None,
            learn: true,
            learn_packets: 20,
            change_packets: 20,
            window_secs: 60.0,
        }
    }
}

/// dns_tunnel: long or high-entropy query names at a rate, per client and base domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsTunnelConfig {
    /// Run this detector.
    pub enabled: bool,
    /// Query names longer than this many characters are suspicious (default 50).
    pub max_name_len: u32,
    /// Labels at least this long are checked for entropy (default 16).
    pub min_label_len: u32,
    /// Shannon entropy (bits per character) at or above which such a label is suspicious
    /// (default 3.5; random hex scores about 3.7, base32 about 4.3, English words about 3).
    pub entropy_bits: f64,
    /// Suspicious queries from one client under one base domain in the window that make a
    /// tunnel (default 5).
    pub min_queries: u32,
    /// Window in seconds (default 60).
    pub window_secs: f64,
}

impl Default for DnsTunnelConfig {
    fn default() -> Self {
        DnsTunnelConfig {
            enabled: true,
            max_name_len: 50,
            min_label_len: 16,
            entropy_bits: 3.5,
            min_queries: 5,
            window_secs: 60.0,
        }
    }
}

/// dns_spoof: conflicting answers for one query, or answers matching no outstanding query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSpoofConfig {
    /// Run this detector.
    pub enabled: bool,
    /// A query is outstanding (answers match it) for this many seconds (default 10).
    pub query_timeout_secs: f64,
    /// Report a second, identical answer to a query sent once, at severity low (default
    /// true): a weaker signal (a race won by a forger who got the answer right, or a
    /// middlebox duplicating packets).
    pub report_identical_duplicates: bool,
    /// Report answers matching no outstanding query from a client seen querying within the
    /// timeout (default true).
    pub report_unmatched: bool,
}

impl Default for DnsSpoofConfig {
    fn default() -> Self {
        DnsSpoofConfig {
            enabled: true,
            query_timeout_secs: 10.0,
            report_identical_duplicates: true,
            report_unmatched: true,
        }
    }
}

/// data_exfiltration: outbound volume from one internal host to external destinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExfilConfig {
    /// Run this detector.
    pub enabled: bool,
    /// Application payload bytes sent by one internal host, as the client side of its
    /// connections, to external addresses in the window (default 5 MB = 5 000 000).
    pub bytes: u64,
    /// Window in seconds (default 60).
    pub window_secs: f64,
    /// Bytes of query-name data sent by one client to one base domain in suspicious (long or
    /// high-entropy) DNS queries in the dns_tunnel window that count as exfiltration over
    /// DNS (default 2048: about eight maximal queries).
    pub dns_bytes: u64,
}

impl Default for ExfilConfig {
    fn default() -> Self {
        ExfilConfig { enabled: true, bytes: 5_000_000, window_secs: 60.0, dns_bytes: 2048 }
    }
}

/// brute_force: connection attempts or failed logins against authentication services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BruteForceConfig {
    /// Run this detector.
    pub enabled: bool,
    /// Attempts from one source to one service in the window (default 30). Attempts are
    /// the larger of new connections (SYN) and failed-login replies (FTP 530, SMTP 535,
    /// POP3 -ERR, IMAP NO, Telnet "Login incorrect", MySQL, PostgreSQL and Redis refusals,
    /// and, on any port, HTTP 401 replies to credentials that changed since the last try).
    pub attempts: u32,
    /// Window in seconds (default 30).
    pub window_secs: f64,
    /// Service ports watched (default SSH, Telnet, FTP, SMTP submission, POP3, IMAP, LDAP,
    /// SMB, MSSQL, MySQL, RDP, PostgreSQL, VNC, Redis, WinRM).
    pub ports: Vec<u16>,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        BruteForceConfig {
            enabled: true,
            attempts: 30,
            window_secs: 30.0,
            ports: vec![
                21, 22, 23, 110, 139, 143, 389, 445, 465, 587, 993, 995, 1433, 3306, 3389, 5432, 5900, 5985, 5986, 6379,
            ],
        }
    }
}

/// session_hijack: one TCP connection seen from two MACs, or desynchronised sequence numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionHijackConfig {
    /// Run this detector.
    pub enabled: bool,
    /// A data segment whose sequence number is more than this many bytes (or twice the
    /// peer's advertised window, if larger) from the expected one is desynchronised
    /// (default 1 MiB).
    pub min_seq_gap: u32,
    /// Desynchronised segments in one connection that make an alert (default 3).
    pub desync_segments: u32,
}

impl Default for SessionHijackConfig {
    fn default() -> Self {
        SessionHijackConfig { enabled: true, min_seq_gap: 1 << 20, desync_segments: 3 }
    }
}

/// packet_anomaly: malformed headers, impossible flags, land, overlapping fragments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PacketAnomalyConfig {
    /// Run this detector.
    pub enabled: bool,
    /// Verify TCP/UDP/ICMP checksums (default true). Captures taken on a host with
    /// checksum offload show its own outgoing packets with bad checksums: turn this off
    /// there.
    pub verify_checksums: bool,
    /// Verify checksums of segments up to this many bytes (default 512): control packets,
    /// probes, DNS, pings and crafted packets are small; bulk data is where checksumming
    /// costs most and where a bad sum almost always means offload or corruption.
    pub verify_checksums_max_bytes: u32,
    /// Report headers cut by the capture's snap length (default false: the capture's
    /// fault, not the packet's).
    pub report_snaplen_truncation: bool,
}

impl Default for PacketAnomalyConfig {
    fn default() -> Self {
        PacketAnomalyConfig {
            enabled: true,
            verify_checksums: true,
            verify_checksums_max_bytes: 512,
            report_snaplen_truncation: false,
        }
    }
}

/// tls_certificate_change and weak_tls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Run tls_certificate_change.
    pub certificate_change: bool,
    /// Run weak_tls.
    pub weak_versions: bool,
    /// Lowest acceptable negotiated version: `"1.0"`, `"1.1"`, `"1.2"` (default) or `"1.3"`.
    pub min_version: String,
    /// Bytes of a server's handshake reassembled per connection to find its certificate
    /// (default 32768).
    pub stream_bytes: u32,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { certificate_change: true, weak_versions: true, min_version: "1.2".into(), stream_bytes: 32 * 1024 }
    }
}

impl TlsConfig {
    /// The minimum version as its wire value.
    pub(crate) fn min_version_wire(&self) -> Option<u16> {
        match self.min_version.trim() {
            "1.0" => Some(0x0301),
            "1.1" => Some(0x0302),
            "1.2" => Some(0x0303),
            "1.3" => Some(0x0304),
            _ => None,
        }
    }
}

impl DetectConfig {
    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.memory_budget_bytes < 1024 * 1024 {
            return Err(err(
                "memory_budget_bytes",
                format!("{} bytes is too small; expected at least 1048576 (1 MiB)", self.memory_budget_bytes),
            ));
        }
        if self.memory_budget_bytes > 1 << 40 {
            return Err(err("memory_budget_bytes", "more than 1 TiB; is the unit right?"));
        }
        positive_secs("cooldown_secs", self.cooldown_secs)?;
        let p = &self.port_scan;
        at_least("port_scan.distinct_ports", p.distinct_ports.into(), 2)?;
        at_least("port_scan.stealth_probes", p.stealth_probes.into(), 1)?;
        if p.distinct_hosts == 1 {
            return Err(err("port_scan.distinct_hosts", "1 is too small; expected 0 (off) or at least 2"));
        }
        positive_secs("port_scan.window_secs", p.window_secs)?;
        let s = &self.syn_flood;
        at_least("syn_flood.threshold", s.threshold.into(), 2)?;
        at_least("syn_flood.min_sources", s.min_sources.into(), 2)?;
        positive_secs("syn_flood.window_secs", s.window_secs)?;
        if !(s.max_answered_ratio.is_finite() && (0.0..=1.0).contains(&s.max_answered_ratio)) {
            return Err(err("syn_flood.max_answered_ratio", "expected a fraction between 0 and 1"));
        }
        at_least("icmp_flood.threshold", self.icmp_flood.threshold.into(), 2)?;
        positive_secs("icmp_flood.window_secs", self.icmp_flood.window_secs)?;
        if self.suspicious_port.ports.contains(&0) {
            return Err(err("suspicious_port.ports", "port 0 is not a port"));
        }
        let a = &self.arp_spoof;
        positive_secs("arp_spoof.binding_ttl_secs", a.binding_ttl_secs)?;
        positive_secs("arp_spoof.window_secs", a.window_secs)?;
        positive_secs("arp_spoof.request_timeout_secs", a.request_timeout_secs)?;
        at_least("arp_spoof.unsolicited_replies", a.unsolicited_replies.into(), 1)?;
        let g = &self.gateway;
        if let Some(mac) = &g.mac
            && parse_mac(mac).is_none()
        {
            return Err(err("gateway.mac", format!("{mac:?} is not a MAC address; expected aa:bb:cc:dd:ee:ff")));
        }
        if matches!(g.ip, Some(IpAddr::V6(_))) {
            return Err(err("gateway.ip", "expected an IPv4 address (the gateway is matched against ARP)"));
        }
        at_least("gateway.learn_packets", g.learn_packets.into(), 1)?;
        at_least("gateway.change_packets", g.change_packets.into(), 1)?;
        positive_secs("gateway.window_secs", g.window_secs)?;
        let d = &self.dns_tunnel;
        at_least("dns_tunnel.max_name_len", d.max_name_len.into(), 8)?;
        at_least("dns_tunnel.min_label_len", d.min_label_len.into(), 4)?;
        at_least("dns_tunnel.min_queries", d.min_queries.into(), 1)?;
        positive_secs("dns_tunnel.window_secs", d.window_secs)?;
        if !(d.entropy_bits.is_finite() && d.entropy_bits > 0.0 && d.entropy_bits <= 8.0) {
            return Err(err("dns_tunnel.entropy_bits", "expected bits per character above 0 and at most 8"));
        }
        positive_secs("dns_spoof.query_timeout_secs", self.dns_spoof.query_timeout_secs)?;
        let e = &self.data_exfiltration;
        at_least("data_exfiltration.bytes", e.bytes, 1024)?;
        at_least("data_exfiltration.dns_bytes", e.dns_bytes, 64)?;
        positive_secs("data_exfiltration.window_secs", e.window_secs)?;
        let b = &self.brute_force;
        at_least("brute_force.attempts", b.attempts.into(), 2)?;
        positive_secs("brute_force.window_secs", b.window_secs)?;
        if b.ports.contains(&0) {
            return Err(err("brute_force.ports", "port 0 is not a port"));
        }
        at_least("session_hijack.min_seq_gap", self.session_hijack.min_seq_gap.into(), 1024)?;
        at_least("session_hijack.desync_segments", self.session_hijack.desync_segments.into(), 1)?;
        if self.tls.min_version_wire().is_none() {
            return Err(err(
                "tls.min_version",
                format!(
                    "{:?} is not a TLS version; expected \"1.0\", \"1.1\", \"1.2\" or \"1.3\"",
                    self.tls.min_version
                ),
            ));
        }
        at_least("tls.stream_bytes", self.tls.stream_bytes.into(), 4096)?;
        if self.tls.stream_bytes > 1 << 20 {
            return Err(err("tls.stream_bytes", "more than 1 MiB per connection; expected at most 1048576"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_design_values_and_valid() {
        let c = DetectConfig::default();
        c.validate().unwrap();
        assert_eq!(c.port_scan.distinct_ports, 15);
        assert_eq!(c.port_scan.window_secs, 10.0);
        assert_eq!(c.syn_flood.threshold, 200);
        assert_eq!(c.icmp_flood.threshold, 100);
        assert_eq!(c.data_exfiltration.bytes, 5_000_000);
        assert_eq!(c.brute_force.attempts, 30);
        assert_eq!(c.dns_tunnel.max_name_len, 50);
        assert_eq!(c.cooldown_secs, 60.0);
        assert_eq!(c.memory_budget_bytes, 256 << 20);
    }

    #[test]
    fn validate_names_the_key() {
        let mut c = DetectConfig::default();
        c.port_scan.distinct_ports = 0;
        assert_eq!(c.validate().unwrap_err().key, "port_scan.distinct_ports");
        let mut c = DetectConfig::default();
        c.gateway.mac = Some("zz".into());
        assert_eq!(c.validate().unwrap_err().key, "gateway.mac");
        let mut c = DetectConfig::default();
        c.tls.min_version = "2".into();
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "tls.min_version");
        assert!(e.to_string().contains("tls.min_version"), "{e}");
        let mut c = DetectConfig::default();
        c.cooldown_secs = f64::NAN;
        assert_eq!(c.validate().unwrap_err().key, "cooldown_secs");
    }

    #[test]
    fn toml_round_trip_and_unknown_keys() {
        let c: DetectConfig = toml::from_str("cooldown_secs = 30\n[port_scan]\ndistinct_ports = 20\n").unwrap();
        assert_eq!(c.cooldown_secs, 30.0);
        assert_eq!(c.port_scan.distinct_ports, 20);
        assert_eq!(c.port_scan.window_secs, 10.0);
        assert!(toml::from_str::<DetectConfig>("[port_scan]\ndistinct_port = 20\n").is_err());
        assert!(toml::from_str::<DetectConfig>("bogus = 1\n").is_err());
        let text = toml::to_string(&DetectConfig::default()).unwrap();
        assert_eq!(toml::from_str::<DetectConfig>(&text).unwrap(), DetectConfig::default());
    }

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("00:0c:29:F6:50:67"), Some(MacAddr([0, 0x0c, 0x29, 0xf6, 0x50, 0x67])));
        assert_eq!(parse_mac("00-0c-29-f6-50-67"), Some(MacAddr([0, 0x0c, 0x29, 0xf6, 0x50, 0x67])));
        assert_eq!(parse_mac("00:0c:29:f6:50"), None);
        assert_eq!(parse_mac("00:0c:29:f6:50:67:00"), None);
    }
}
