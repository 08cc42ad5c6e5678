//! Host metrics collection with `sysinfo`: the I/O edge of this crate.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, ProcessRefreshKind, ProcessesToUpdate,
    RefreshKind, System,
};
use vigil_model::{DiskUsage, HostSample, NetInterfaceRate};

/// Most file systems reported in one sample. Hosts with more (container nodes with
/// hundreds of bind mounts) get the first ones by mount point; the rest are counted in
/// [`Collector::omitted_disks`].
pub const MAX_DISKS_PER_SAMPLE: usize = 256;

/// Most network interfaces reported in one sample. Hosts with more (container nodes with
/// one veth per pod) get the first ones by name; the rest are counted in
/// [`Collector::omitted_interfaces`].
pub const MAX_INTERFACES_PER_SAMPLE: usize = 256;

/// File system types that are never reported: pseudo and virtual file systems whose
/// "usage" says nothing about storage filling up, read-only images that are always full
/// (squashfs, iso9660), and memory-backed ones (tmpfs, ramfs), which the memory metric
/// already covers. `overlay` is the exception handled in [`keep_mount`]: it is kept when
/// mounted at `/`, because inside a container the root overlay's usage is the usage of the
/// host disk backing it, which is exactly what fills up.
const SKIPPED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.lxcfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// Collects [`HostSample`]s from the local machine.
///
/// Keeps the `sysinfo` handles and the previous network counters between calls, so CPU use
/// and network rates cover the interval since the previous call (or since [`Collector::new`]
/// for the first sample).
pub struct Collector {
    system: System,
    disks: Disks,
    networks: Networks,
    /// Network counters at the previous refresh, by interface name. Rebuilt from the
    /// current (capped) interface list on every sample, so it never outgrows it.
    prev_net: HashMap<String, NetCounters>,
    /// When `prev_net` was read.
    prev_net_at: Instant,
    omitted_disks: u64,
    omitted_interfaces: u64,
}

impl Collector {
    /// A collector with CPU and network counters primed, so the first [`Collector::sample`]
    /// already measures an interval. For a meaningful first CPU figure, leave at least
    /// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] between `new` and the first sample.
    ///
    /// Side effect: sets `sysinfo`'s process-wide open-files limit to 0, so `sysinfo` does
    /// not keep one `/proc/<pid>/stat` descriptor open per process between samples (the
    /// agent needs its descriptors for sockets, the spool and capture). Re-opening those
    /// files each sample costs little.
    pub fn new() -> Collector {
        sysinfo::set_open_files_limit(0);
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::everything()),
        );
        let disks = Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage());
        let networks = Networks::new_with_refreshed_list();
        let prev_net_at = Instant::now();
        let (prev_net, _) = read_net_counters(&networks);
        Collector { system, disks, networks, prev_net, prev_net_at, omitted_disks: 0, omitted_interfaces: 0 }
    }

    /// Takes one sample. `boot_epoch` and `index` are copied into it; `timestamp` is the
    /// caller's clock, also used for the sample's UUIDv7 so ids sort by sample time.
    ///
    /// - CPU: total and per logical core over the interval since the previous call.
    /// - Memory and swap: bytes in use and configured; memory percent is used / total.
    /// - Disks: one entry per real file system. Pseudo and virtual file systems (proc,
    ///   sysfs, cgroup, devtmpfs, debugfs…), read-only images (squashfs, iso9660),
    ///   memory-backed ones (tmpfs, ramfs, covered by the memory metric), overlays other
    ///   than a container's `/`, anything under `/proc` or `/sys` and zero-sized mounts are
    ///   skipped. The rest is deduplicated: a mount point listed twice keeps the later (shadowing)
    ///   mount, and a device mounted at several places (bind mounts, btrfs subvolumes)
    ///   keeps its shortest mount point. "Used" is size minus the space available to
    ///   unprivileged users, so root-reserved blocks count as used and 100 % means ordinary
    ///   users can write no more. At most [`MAX_DISKS_PER_SAMPLE`], sorted by mount point.
    /// - Networks: bytes and packets per second per interface, from counter deltas over the
    ///   real elapsed time. An interface seen for the first time, a counter that went
    ///   backwards (interface re-created) or a zero elapsed time gives 0 for that
    ///   interval. At most [`MAX_INTERFACES_PER_SAMPLE`], sorted by name.
    ///
    /// Blocks for a few milliseconds; call it from `spawn_blocking` or a dedicated thread.
    pub fn sample(&mut self, timestamp: DateTime<Utc>, boot_epoch: u64, index: u64) -> HostSample {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        // Threads are not processes here: without tasks, `/proc/<pid>/task` is not walked.
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().without_tasks(),
        );
        self.disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        self.networks.refresh(true);
        let now = Instant::now();

        let cpu_percent = clamp_percent(self.system.global_cpu_usage());
        let cpu_per_core = self.system.cpus().iter().map(|c| clamp_percent(c.cpu_usage())).collect();

        let memory_total_bytes = self.system.total_memory();
        let memory_used_bytes = self.system.used_memory().min(memory_total_bytes);
        let load = System::load_average();

        let mounts = self.disks.list().iter().map(|d| MountEntry {
            device: d.name().to_string_lossy().into_owned(),
            mount: d.mount_point().to_string_lossy().into_owned(),
            fs_type: d.file_system().to_string_lossy().into_owned(),
            total_bytes: d.total_space(),
            available_bytes: d.available_space(),
        });
        let (disks, omitted) = select_disks(mounts);
        self.omitted_disks = self.omitted_disks.saturating_add(omitted as u64);

        let (counters, omitted) = read_net_counters(&self.networks);
        self.omitted_interfaces = self.omitted_interfaces.saturating_add(omitted as u64);
        let elapsed = now.saturating_duration_since(self.prev_net_at).as_secs_f64();
        let mut networks: Vec<NetInterfaceRate> =
            counters.iter().map(|(name, cur)| net_rate(name, self.prev_net.get(name), cur, elapsed)).collect();
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        self.prev_net = counters;
        self.prev_net_at = now;

        HostSample {
            id: uuid_at(timestamp),
            timestamp,
            boot_epoch,
            index,
            cpu_percent,
            cpu_per_core,
            memory_used_bytes,
            memory_total_bytes,
            memory_percent: percent_of(memory_used_bytes, memory_total_bytes),
            swap_used_bytes: self.system.used_swap(),
            swap_total_bytes: self.system.total_swap(),
            load_average: [finite_or_zero(load.one), finite_or_zero(load.five), finite_or_zero(load.fifteen)],
            disks,
            networks,
            process_count: u32::try_from(self.system.processes().len()).unwrap_or(u32::MAX),
            uptime_secs: System::uptime(),
        }
    }

    /// File systems left out of samples because a sample already held
    /// [`MAX_DISKS_PER_SAMPLE`], summed over all samples so far.
    pub fn omitted_disks(&self) -> u64 {
        self.omitted_disks
    }

    /// Interfaces left out of samples because a sample already held
    /// [`MAX_INTERFACES_PER_SAMPLE`], summed over all samples so far.
    pub fn omitted_interfaces(&self) -> u64 {
        self.omitted_interfaces
    }
}

impl Default for Collector {
    fn default() -> Self {
        Collector::new()
    }
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("interfaces", &self.prev_net.len())
            .field("omitted_disks", &self.omitted_disks)
            .field("omitted_interfaces", &self.omitted_interfaces)
            .finish_non_exhaustive()
    }
}

/// A UUIDv7 whose time part is `at` (clamped to the Unix epoch), so sample and alert ids
/// sort by the time they describe rather than by the wall clock of whoever built them.
pub(crate) fn uuid_at(at: DateTime<Utc>) -> uuid::Uuid {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    let nanos = at.timestamp_subsec_nanos().min(999_999_999);
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos))
}

/// One mounted file system as `sysinfo` lists it, before filtering.
#[derive(Debug, Clone)]
struct MountEntry {
    device: String,
    mount: String,
    fs_type: String,
    total_bytes: u64,
    available_bytes: u64,
}

/// Whether a mount is a real file system worth reporting: not a skipped type (except an
/// overlay at `/`), not under `/proc` or `/sys`, and not of size zero.
fn keep_mount(m: &MountEntry) -> bool {
    let skipped_type = SKIPPED_FS_TYPES.iter().any(|t| t.eq_ignore_ascii_case(&m.fs_type));
    let root_overlay = m.fs_type.eq_ignore_ascii_case("overlay") && m.mount == "/";
    let pseudo_path =
        ["/proc", "/sys"].iter().any(|p| m.mount == *p || m.mount.strip_prefix(p).is_some_and(|r| r.starts_with('/')));
    (!skipped_type || root_overlay) && !pseudo_path && m.total_bytes > 0
}

/// Filters, deduplicates, sorts and caps the mount list (rules on [`Collector::sample`]).
/// Returns the disks and how many were left out by the cap.
fn select_disks(mounts: impl IntoIterator<Item = MountEntry>) -> (Vec<DiskUsage>, usize) {
    // Same mount point twice: the later mount shadows the earlier one.
    let mut by_mount: HashMap<String, MountEntry> = HashMap::new();
    for m in mounts.into_iter().filter(keep_mount) {
        by_mount.insert(m.mount.clone(), m);
    }
    // Same device at several mount points: keep the shortest path (ties: smallest string).
    // Devices without a usable name ("", "none") are never merged.
    let mut entries: Vec<MountEntry> = by_mount.into_values().collect();
    entries.sort_by(|a, b| a.mount.len().cmp(&b.mount.len()).then_with(|| a.mount.cmp(&b.mount)));
    let mut seen_devices: HashSet<(String, String)> = HashSet::new();
    entries.retain(|m| {
        if m.device.is_empty() || m.device == "none" {
            return true;
        }
        seen_devices.insert((m.device.clone(), m.fs_type.clone()))
    });
    entries.sort_by(|a, b| a.mount.cmp(&b.mount));
    let omitted = entries.len().saturating_sub(MAX_DISKS_PER_SAMPLE);
    entries.truncate(MAX_DISKS_PER_SAMPLE);
    let disks = entries
        .into_iter()
        .map(|m| {
            let used = m.total_bytes.saturating_sub(m.available_bytes);
            DiskUsage {
                used_percent: percent_of(used, m.total_bytes),
                mount: m.mount,
                fs_type: m.fs_type,
                total_bytes: m.total_bytes,
                used_bytes: used,
            }
        })
        .collect();
    (disks, omitted)
}

/// Cumulative counters of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct NetCounters {
    rx_bytes: u64,
    tx_bytes: u64,
    rx_packets: u64,
    tx_packets: u64,
}

/// The cumulative counters of the first [`MAX_INTERFACES_PER_SAMPLE`] interfaces by name,
/// and how many were left out.
fn read_net_counters(networks: &Networks) -> (HashMap<String, NetCounters>, usize) {
    let mut names: Vec<&String> = networks.list().keys().collect();
    names.sort();
    let omitted = names.len().saturating_sub(MAX_INTERFACES_PER_SAMPLE);
    let map = names
        .into_iter()
        .take(MAX_INTERFACES_PER_SAMPLE)
        .filter_map(|name| {
            let d = networks.list().get(name)?;
            Some((
                name.clone(),
                NetCounters {
                    rx_bytes: d.total_received(),
                    tx_bytes: d.total_transmitted(),
                    rx_packets: d.total_packets_received(),
                    tx_packets: d.total_packets_transmitted(),
                },
            ))
        })
        .collect();
    (map, omitted)
}

/// Per-second rates from two counter readings `elapsed_secs` apart. No previous reading,
/// a non-positive or non-finite elapsed time, or a counter that went backwards gives 0.
fn net_rate(name: &str, prev: Option<&NetCounters>, cur: &NetCounters, elapsed_secs: f64) -> NetInterfaceRate {
    let rate = |old: u64, new: u64| -> f64 {
        if !(elapsed_secs.is_finite() && elapsed_secs > 0.0) {
            return 0.0;
        }
        new.saturating_sub(old) as f64 / elapsed_secs
    };
    let p = prev.copied().unwrap_or(*cur);
    NetInterfaceRate {
        name: name.to_owned(),
        rx_bytes_per_sec: rate(p.rx_bytes, cur.rx_bytes),
        tx_bytes_per_sec: rate(p.tx_bytes, cur.tx_bytes),
        rx_packets_per_sec: rate(p.rx_packets, cur.rx_packets),
        tx_packets_per_sec: rate(p.tx_packets, cur.tx_packets),
    }
}

/// `part / whole` in percent, 0 when `whole` is 0, never above 100.
fn percent_of(part: u64, whole: u64) -> f32 {
    if whole == 0 {
        return 0.0;
    }
    clamp_percent((part as f64 / whole as f64 * 100.0) as f32)
}

/// A percentage forced into 0–100; NaN (sysinfo divides by a zero interval on the first
/// refresh) becomes 0.
fn clamp_percent(v: f32) -> f32 {
    if v.is_nan() { 0.0 } else { v.clamp(0.0, 100.0) }
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() && v >= 0.0 { v } else { 0.0 }
}

/// This host's name, or `"unknown"` when the system does not say.
pub fn host_name() -> String {
    sysinfo::System::host_name().unwrap_or_else(|| "unknown".into())
}

/// Operating system name and version, e.g. `Linux 12 Debian GNU/Linux`, or `"unknown"`.
pub fn os_version() -> String {
    sysinfo::System::long_os_version().unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(device: &str, mount: &str, fs: &str, total: u64, avail: u64) -> MountEntry {
        MountEntry {
            device: device.into(),
            mount: mount.into(),
            fs_type: fs.into(),
            total_bytes: total,
            available_bytes: avail,
        }
    }

    fn assert_plausible(s: &HostSample) {
        assert!(!s.cpu_per_core.is_empty(), "no CPU cores reported");
        assert!((0.0..=100.0).contains(&s.cpu_percent), "cpu {}", s.cpu_percent);
        for c in &s.cpu_per_core {
            assert!((0.0..=100.0).contains(c), "core {c}");
        }
        assert!(s.memory_total_bytes > 0);
        assert!(s.memory_used_bytes <= s.memory_total_bytes);
        assert!((0.0..=100.0).contains(&s.memory_percent), "mem {}", s.memory_percent);
        assert!(s.swap_used_bytes <= s.swap_total_bytes || s.swap_total_bytes == 0);
        assert!(s.load_average.iter().all(|l| l.is_finite() && *l >= 0.0));
        assert!(s.process_count >= 1, "this test process at least");
        for d in &s.disks {
            assert!(d.total_bytes > 0 && d.used_bytes <= d.total_bytes, "{d:?}");
            assert!((0.0..=100.0).contains(&d.used_percent), "{d:?}");
            assert!(!SKIPPED_FS_TYPES.contains(&d.fs_type.as_str()) || d.mount == "/", "{d:?}");
        }
        for n in &s.networks {
            for r in [n.rx_bytes_per_sec, n.tx_bytes_per_sec, n.rx_packets_per_sec, n.tx_packets_per_sec] {
                assert!(r.is_finite() && r >= 0.0, "{n:?}");
            }
        }
    }

    #[test]
    fn real_samples_are_plausible() {
        let mut c = Collector::new();
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let t = Utc::now();
        let s1 = c.sample(t, 3, 0);
        assert_eq!((s1.boot_epoch, s1.index, s1.timestamp), (3, 0, t));
        assert_plausible(&s1);
        // Every Linux host the agent supports has a real root file system; a machine whose
        // only file systems are pseudo ones (a bare initramfs) would legitimately report
        // none, and then this explains why the test fails.
        assert!(
            !s1.disks.is_empty(),
            "no disk reported; mounts seen by sysinfo: {:?}",
            c.disks.list().iter().map(|d| (d.mount_point().to_owned(), d.file_system().to_owned())).collect::<Vec<_>>()
        );
        let s2 = c.sample(t + chrono::TimeDelta::seconds(1), 3, 1);
        assert_plausible(&s2);
        assert_eq!(s2.index, 1);
        assert_ne!(s1.id, s2.id);
        // Same machine, same interfaces (barring one appearing between the two calls).
        assert!(!s2.networks.is_empty() || s1.networks.is_empty());
    }

    #[test]
    fn pseudo_file_systems_are_skipped_and_root_overlay_kept() {
        let (disks, omitted) = select_disks(vec![
            mount("proc", "/proc", "proc", 0, 0),
            mount("sysfs", "/sys", "sysfs", 0, 0),
            mount("tmpfs", "/dev/shm", "tmpfs", 100, 100),
            mount("cgroup", "/sys/fs/cgroup/cpu", "cgroup", 10, 0),
            mount("overlay", "/", "overlay", 1000, 250),
            mount("overlay", "/var/lib/docker/overlay2/x/merged", "overlay", 1000, 250),
            mount("/dev/loop0", "/snap/core/1", "squashfs", 100, 0),
            mount("/dev/sdb1", "/proc/weird", "ext4", 100, 0),
            mount("/dev/sdc1", "/empty", "ext4", 0, 0),
            mount("/dev/sda1", "/data", "ext4", 200, 50),
        ]);
        assert_eq!(omitted, 0);
        let got: Vec<(&str, f32)> = disks.iter().map(|d| (d.mount.as_str(), d.used_percent)).collect();
        assert_eq!(got, vec![("/", 75.0), ("/data", 75.0)]);
        assert_eq!(disks[1].used_bytes, 150);
    }

    #[test]
    fn mounts_are_deduplicated() {
        let (disks, _) = select_disks(vec![
            // Bind mounts of the root device, as a container sees /etc/hosts.
            mount("/dev/sda1", "/etc/hosts", "ext4", 100, 10),
            mount("/dev/sda1", "/", "ext4", 100, 10),
            // A mount point mounted over: the later one shadows.
            mount("/dev/sdb1", "/srv", "xfs", 100, 90),
            mount("/dev/sdc1", "/srv", "xfs", 100, 20),
            // Unnamed devices are never merged.
            mount("none", "/a", "zfs", 100, 50),
            mount("none", "/b", "zfs", 100, 50),
        ]);
        let got: Vec<(&str, u64)> = disks.iter().map(|d| (d.mount.as_str(), d.used_bytes)).collect();
        assert_eq!(got, vec![("/", 90), ("/a", 50), ("/b", 50), ("/srv", 80)]);
    }

    #[test]
    fn disk_list_is_capped() {
        let mounts =
            (0..MAX_DISKS_PER_SAMPLE + 7).map(|i| mount(&format!("/dev/d{i}"), &format!("/m{i:04}"), "ext4", 10, 5));
        let (disks, omitted) = select_disks(mounts);
        assert_eq!(disks.len(), MAX_DISKS_PER_SAMPLE);
        assert_eq!(omitted, 7);
        assert_eq!(disks[0].mount, "/m0000");
    }

    #[test]
    fn rates_come_from_deltas_and_guard_edge_cases() {
        let prev = NetCounters { rx_bytes: 1000, tx_bytes: 500, rx_packets: 10, tx_packets: 4 };
        let cur = NetCounters { rx_bytes: 3000, tx_bytes: 400, rx_packets: 30, tx_packets: 8 };
        let r = net_rate("eth0", Some(&prev), &cur, 2.0);
        assert_eq!(r.name, "eth0");
        assert_eq!(r.rx_bytes_per_sec, 1000.0);
        assert_eq!(r.tx_bytes_per_sec, 0.0, "counter went backwards");
        assert_eq!(r.rx_packets_per_sec, 10.0);
        assert_eq!(r.tx_packets_per_sec, 2.0);
        for elapsed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let r = net_rate("eth0", Some(&prev), &cur, elapsed);
            assert_eq!(r.rx_bytes_per_sec, 0.0, "elapsed {elapsed}");
        }
        let r = net_rate("new0", None, &cur, 2.0);
        assert_eq!(r.rx_bytes_per_sec, 0.0, "first sight of an interface");
    }

    #[test]
    fn percentages_are_clamped() {
        assert_eq!(percent_of(5, 0), 0.0);
        assert_eq!(percent_of(50, 200), 25.0);
        assert_eq!(percent_of(300, 200), 100.0);
        assert_eq!(clamp_percent(f32::NAN), 0.0);
        assert_eq!(clamp_percent(-3.0), 0.0);
    }

    #[test]
    fn sample_ids_carry_the_sample_time() {
        let at = DateTime::from_timestamp(1_735_689_600, 0).unwrap_or_default();
        let id = uuid_at(at);
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().map(|t| t.to_unix()).unwrap_or((0, 0));
        assert_eq!(secs, 1_735_689_600);
        let before_epoch = DateTime::from_timestamp(-5, 0).unwrap_or_default();
        assert_eq!(uuid_at(before_epoch).get_version_num(), 7);
    }
}
