use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One snapshot of a host's resource use, taken by the agent every interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSample {
    /// Unique id (UUIDv7). The server stores each id once, so a resent sample is harmless.
    pub id: Uuid,
    /// When the sample was taken (UTC).
    pub timestamp: DateTime<Utc>,
    /// The agent's boot epoch when it took the sample.
    pub boot_epoch: u64,
    /// Index of the sample within its boot epoch, from 0 with no gaps: a missing index
    /// means a lost sample.
    pub index: u64,
    /// Total CPU use over the last interval, 0–100.
    pub cpu_percent: f32,
    /// CPU use per logical core over the last interval, 0–100 each.
    pub cpu_per_core: Vec<f32>,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Installed memory, bytes.
    pub memory_total_bytes: u64,
    /// Memory in use, 0–100.
    pub memory_percent: f32,
    /// Swap in use, bytes.
    pub swap_used_bytes: u64,
    /// Swap configured, bytes.
    pub swap_total_bytes: u64,
    /// Load average over 1, 5 and 15 minutes.
    pub load_average: [f64; 3],
    /// Usage of each mounted file system.
    pub disks: Vec<DiskUsage>,
    /// Traffic rates of each network interface over the last interval.
    pub networks: Vec<NetInterfaceRate>,
    /// Number of processes.
    pub process_count: u32,
    /// Seconds since the host booted.
    pub uptime_secs: u64,
}

/// Usage of one mounted file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Mount point, e.g. `/` or `/var`.
    pub mount: String,
    /// File system type, e.g. `ext4`.
    pub fs_type: String,
    /// Size, bytes.
    pub total_bytes: u64,
    /// Space in use, bytes.
    pub used_bytes: u64,
    /// Space in use, 0–100.
    pub used_percent: f32,
}

/// Traffic rates of one network interface over the last interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetInterfaceRate {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Bytes received per second.
    pub rx_bytes_per_sec: f64,
    /// Bytes sent per second.
    pub tx_bytes_per_sec: f64,
    /// Packets received per second.
    pub rx_packets_per_sec: f64,
    /// Packets sent per second.
    pub tx_packets_per_sec: f64,
}
