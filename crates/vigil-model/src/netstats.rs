use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an agent's packet capture saw over one interval: rates in and out, the busiest
/// addresses, the protocol mix and the health of the capture itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetStats {
    /// Unique id (UUIDv7). The server stores each id once.
    pub id: Uuid,
    /// End of the interval (UTC).
    pub timestamp: DateTime<Utc>,
    /// Length of the interval, milliseconds.
    pub interval_ms: u64,
    /// Packets per second received or seen passing (promiscuous mode).
    pub packets_in_per_sec: f64,
    /// Packets per second sent by this host.
    pub packets_out_per_sec: f64,
    /// Bytes per second in (wire lengths).
    pub bytes_in_per_sec: f64,
    /// Bytes per second out (wire lengths).
    pub bytes_out_per_sec: f64,
    /// The addresses with the most bytes (as source or destination) in the interval, most first.
    pub top_talkers: Vec<Talker>,
    /// Packets and bytes per protocol in the interval, most packets first.
    pub protocols: Vec<ProtocolCount>,
    /// Capture health: counters since the capture started.
    pub capture: CaptureCounters,
}

/// One of the busiest addresses of an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Talker {
    /// The address.
    pub ip: IpAddr,
    /// Packets it sent or received.
    pub packets: u64,
    /// Bytes it sent or received.
    pub bytes: u64,
}

/// Traffic of one protocol in an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolCount {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `arp`, `ipv4_other`, `ipv6_other` or `other`.
    pub protocol: String,
    /// Packets.
    pub packets: u64,
    /// Bytes (wire lengths).
    pub bytes: u64,
}

/// Counters of the capture since the agent started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CaptureCounters {
    /// Interfaces captured on (`any`, a name, or `file:PATH`).
    pub interfaces: Vec<String>,
    /// Packets the capture handed to the detection engine's queue.
    pub packets: u64,
    /// Packets the kernel saw for the capture sockets, including those it dropped.
    pub kernel_packets: u64,
    /// Packets the kernel dropped because a capture ring was full.
    pub kernel_drops: u64,
    /// Packets dropped between capture and detection because the engine fell behind.
    pub queue_drops: u64,
    /// Packets the engine examined.
    pub analyzed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentStats, Item};

    fn sample() -> NetStats {
        NetStats {
            id: Uuid::now_v7(),
            timestamp: Utc::now(),
            interval_ms: 5000,
            packets_in_per_sec: 120.5,
            packets_out_per_sec: 80.0,
            bytes_in_per_sec: 1.5e5,
            bytes_out_per_sec: 9.0e4,
            top_talkers: vec![Talker { ip: "10.0.0.5".parse().unwrap(), packets: 10, bytes: 1500 }],
            protocols: vec![ProtocolCount { protocol: "tcp".into(), packets: 9, bytes: 1400 }],
            capture: CaptureCounters {
                interfaces: vec!["eth0".into()],
                packets: 1000,
                kernel_packets: 1001,
                kernel_drops: 1,
                queue_drops: 0,
                analyzed: 1000,
            },
        }
    }

    #[test]
    fn postcard_and_json_round_trip() {
        let item = Item::NetStats(sample());
        let bytes = postcard::to_allocvec(&item).unwrap();
        assert_eq!(postcard::from_bytes::<Item>(&bytes).unwrap(), item);
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json["NetStats"]["top_talkers"][0]["ip"], "10.0.0.5");
        assert_eq!(serde_json::from_value::<Item>(json).unwrap(), item);
    }

    #[test]
    fn appending_the_variant_kept_older_encodings() {
        // Variant index = first postcard byte: Stats stays 4, NetStats is 5.
        let stats = postcard::to_allocvec(&Item::Stats(AgentStats::default())).unwrap();
        assert_eq!(stats, vec![4, 0, 0, 0, 0]);
        assert_eq!(postcard::to_allocvec(&Item::NetStats(sample())).unwrap()[0], 5);
    }
}
