//! The vigil detection engine: packets in, alerts out.
//!
//! **Owns**: every packet-level category of DESIGN.md §4 (port_scan, syn_flood,
//! icmp_flood, suspicious_port, arp_spoof, gateway_mac_change, dns_tunnel, dns_spoof,
//! data_exfiltration, brute_force, session_hijack, packet_anomaly, insecure_protocol,
//! unencrypted_http, plaintext_credentials, tls_certificate_change, weak_tls,
//! threat_intel_match), their thresholds ([`DetectConfig`]), the cooldown that keeps one
//! alert per (category, source, target) per period, blocklist matching ([`Blocklist`]) and
//! the memory budget.
//!
//! **Must not**: do I/O, read a clock, start threads, or keep globals. Time comes only
//! from packet timestamps ([`Frame::ts_nanos`]); timestamps that go backwards are absorbed
//! (small steps) or resynchronise the engine clock (more than [`CLOCK_RESYNC_NANOS`]), and
//! never underflow. The same frames give the same alerts, byte for byte: alert ids are
//! derived from the finding (category, addresses, packet index, time), tables evict in
//! recency order (never hash order), and the alerts of one packet are sorted
//! ([`alert_order`]).
//!
//! **Thread**: whoever owns the [`Engine`] (the capture thread of the agent, or the
//! `vigil analyze` workers). An engine is `Send`; detector [`Group`]s have disjoint state,
//! so several engines with different groups can share the work of one packet stream.
//!
//! # Bounded state
//! Every map keyed by packet data is a bounded table with a fixed share of
//! [`DetectConfig::memory_budget_bytes`]; full tables evict an old entry not used since it
//! was last given a second chance (CLOCK-style approximate LRU, deterministic) and count
//! it ([`Stats::evictions`]). Counters that must survive floods are keyed
//! so that a flood touches few entries: the per-destination SYN counter holds one entry
//! per victim however many spoofed sources there are. [`Stats::memory_bytes`] adds up the
//! tables' allocated sizes (hash index at its real bucket count, entry slots at their
//! capacity).
//!
//! # Hashing
//! Tables use `ahash` keyed with [`EngineOptions::hash_seed`] (random per engine unless
//! set): keys are attacker-chosen (addresses, ports), so an unkeyed or publicly seeded
//! hasher would invite HashDoS. Nothing ever iterates a table in hash order, so the seed
//! cannot change any output.
//!
//! ```
//! use vigil_detect::{DetectConfig, Engine, testutil};
//! let mut engine = Engine::new(DetectConfig::default()).expect("defaults are valid");
//! let syn = testutil::TcpPacket::new("10.0.0.9", 40000, "10.0.0.1", 22).flags(testutil::flags::SYN).build();
//! let mut alerts = Vec::new();
//! engine.process(&testutil::frame(1.0, &syn), &mut alerts);
//! assert!(alerts.is_empty());
//! assert_eq!(engine.stats().packets, 1);
//! ```

mod blocklist;
mod config;
mod ctx;
mod detect;
mod emit;
mod engine;
mod index;
mod net;
mod prefetch;
pub(crate) mod table;
pub mod testutil;

pub use blocklist::{Blocklist, BlocklistEntry, BlocklistParseError, MAX_DOMAIN_LEN, parse_line};
pub use config::{
    ArpSpoofConfig, BruteForceConfig, ConfigError, DetectConfig, DnsSpoofConfig, DnsTunnelConfig, ExfilConfig,
    GatewayConfig, IcmpFloodConfig, PacketAnomalyConfig, PortScanConfig, SessionHijackConfig, SuspiciousPortConfig,
    SynFloodConfig, TlsConfig, Toggle, default_internal_networks, parse_mac,
};
pub use emit::alert_order;
pub use engine::{CLOCK_RESYNC_NANOS, Engine, EngineOptions, Frame, Group, Stats};

#[cfg(test)]
mod tests;
