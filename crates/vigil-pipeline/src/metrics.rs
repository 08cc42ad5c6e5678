//! Metric inputs: generic `(agent, metric, ts, value)` points grouped by time, and the
//! standard metric names (with a conversion from [`HostSample`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil_model::{AgentId, HostSample, NetStats};

/// CPU use, percent.
pub const CPU: &str = "cpu";
/// Memory use, percent.
pub const MEMORY: &str = "memory";
/// Disk I/O, bytes per second (read + write).
pub const DISK_IO: &str = "disk_io";
/// Bytes received per second, all interfaces.
pub const BYTES_IN: &str = "bytes_in";
/// Bytes sent per second, all interfaces.
pub const BYTES_OUT: &str = "bytes_out";
/// Packets per second, in and out, all interfaces.
pub const PACKETS: &str = "packets";
/// New connections per second.
pub const NEW_CONNS: &str = "new_conns";
/// Alerts per second raised by the agent. The pipeline fills it in from the alerts it sees
/// when a batch does not carry it.
pub const ALERT_RATE: &str = "alert_rate";

/// Packets per second seen by the agent's packet capture (in and out; in includes traffic
/// passing by in promiscuous mode).
pub const CAPTURE_PACKETS: &str = "capture_packets";
/// Bytes per second into the captured interface, as the capture saw them.
pub const CAPTURE_BYTES_IN: &str = "capture_bytes_in";
/// Bytes per second out of the captured interface, as the capture saw them.
pub const CAPTURE_BYTES_OUT: &str = "capture_bytes_out";

/// Longest metric name accepted; longer names are refused (counted), since names come
/// from the network.
pub const METRIC_NAME_MAX: usize = 64;

/// Metric values of one agent at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricBatch {
    /// The agent the values describe.
    pub agent: AgentId,
    /// When they were measured.
    pub timestamp: DateTime<Utc>,
    /// `(metric name, value)` pairs. Non-finite values are ignored.
    pub values: Vec<(String, f64)>,
}

impl MetricBatch {
    /// The standard metrics of a host sample: CPU and memory percent, bytes in and out and
    /// packets per second summed over interfaces (loopback excluded).
    pub fn from_host_sample(agent: AgentId, sample: &HostSample) -> Self {
        let (mut rx, mut tx, mut pk) = (0.0, 0.0, 0.0);
        for n in sample.networks.iter().filter(|n| n.name != "lo") {
            rx += n.rx_bytes_per_sec;
            tx += n.tx_bytes_per_sec;
            pk += n.rx_packets_per_sec + n.tx_packets_per_sec;
        }
        MetricBatch {
            agent,
            timestamp: sample.timestamp,
            values: vec![
                (CPU.to_string(), f64::from(sample.cpu_percent)),
                (MEMORY.to_string(), f64::from(sample.memory_percent)),
                (BYTES_IN.to_string(), rx),
                (BYTES_OUT.to_string(), tx),
                (PACKETS.to_string(), pk),
            ],
        }
    }

    /// The capture metrics of one network-statistics interval. They are series of their
    /// own (not `bytes_in`…), since the capture can see traffic the host's counters do not
    /// (promiscuous mode) and arrives on its own schedule.
    pub fn from_netstats(agent: AgentId, n: &NetStats) -> Self {
        MetricBatch {
            agent,
            timestamp: n.timestamp,
            values: vec![
                (CAPTURE_PACKETS.to_string(), n.packets_in_per_sec + n.packets_out_per_sec),
                (CAPTURE_BYTES_IN.to_string(), n.bytes_in_per_sec),
                (CAPTURE_BYTES_OUT.to_string(), n.bytes_out_per_sec),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::NetInterfaceRate;

    #[test]
    fn host_sample_maps_to_standard_metrics() {
        let net = |name: &str, v: f64| NetInterfaceRate {
            name: name.into(),
            rx_bytes_per_sec: v,
            tx_bytes_per_sec: v * 2.0,
            rx_packets_per_sec: 1.0,
            tx_packets_per_sec: 1.0,
        };
        let s = HostSample {
            id: uuid::Uuid::nil(),
            timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            boot_epoch: 1,
            index: 0,
            cpu_percent: 12.5,
            cpu_per_core: vec![],
            memory_used_bytes: 1,
            memory_total_bytes: 2,
            memory_percent: 50.0,
            swap_used_bytes: 0,
            swap_total_bytes: 0,
            load_average: [0.0; 3],
            disks: vec![],
            networks: vec![net("eth0", 100.0), net("lo", 1e9), net("eth1", 10.0)],
            process_count: 1,
            uptime_secs: 1,
        };
        let b = MetricBatch::from_host_sample(AgentId::new("a").unwrap(), &s);
        let get = |k: &str| b.values.iter().find(|(n, _)| n == k).unwrap().1;
        assert_eq!(get(CPU), 12.5);
        assert_eq!(get(BYTES_IN), 110.0);
        assert_eq!(get(BYTES_OUT), 220.0);
        assert_eq!(get(PACKETS), 4.0);
    }
}
