//! Live packet sources, and the one interface every source (live or file) offers.
//!
//! **Owns**: the [`PacketSource`] trait, the Linux AF_PACKET source (a TPACKET_V3 ring per
//! worker, joined in a flow-hash fanout group; [`open`]), the libpcap source behind the
//! `libpcap` feature, choosing the default interface (the one of the default route), and
//! telling the operator which capability is missing when capture is refused.
//!
//! **Must not**: decode or judge packets, or block anywhere but in the source's own
//! bounded wait ([`PacketSource::next_packet`]'s `timeout`), so the thread that owns a
//! source notices shutdown within one timeout.
//!
//! **Thread**: each source belongs to one dedicated capture thread (never an async worker).
//! A source is `Send`, so it can be opened on one thread and moved to its capture thread.

#[cfg(target_os = "linux")]
mod afpacket;
mod iface;
#[cfg(feature = "libpcap")]
mod pcap;

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use crate::{CaptureError, CaptureReader, RawPacket};

#[cfg(target_os = "linux")]
pub use afpacket::AfPacketSource;
pub use iface::{
    Capability, default_route_interface, missing_capabilities, parse_ipv4_routes, parse_ipv6_routes, setcap_command,
};
#[cfg(feature = "libpcap")]
pub use pcap::PcapSource;

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_LINUX_SLL` (Linux "cooked" capture, used for the `any` device).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// Most interfaces one agent captures on.
pub const MAX_INTERFACES: usize = 64;
/// Most capture workers per interface.
pub const MAX_WORKERS: usize = 64;

/// Which way a packet went, as far as the source knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received by this host, or seen passing by (promiscuous mode).
    In,
    /// Sent by this host.
    Out,
    /// Not known (capture files).
    Unknown,
}

/// What [`PacketSource::next_packet`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'a> {
    /// A packet, valid until the next call.
    Packet {
        /// The packet: Unix-nanosecond timestamp, link type, lengths, bytes.
        packet: RawPacket<'a>,
        /// Its direction.
        direction: Direction,
    },
    /// Nothing arrived within the timeout (live sources); call again.
    Idle,
    /// The source is exhausted (end of a file); later calls return `End` again.
    End,
}

/// Counters of one source since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets handed out.
    pub packets: u64,
    /// Bytes handed out (captured lengths).
    pub bytes: u64,
    /// Packets the kernel saw for this socket, including those it dropped (0 for files).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because the ring was full.
    pub kernel_drops: u64,
    /// Times the kernel froze the ring for lack of a free block.
    pub kernel_freezes: u64,
}

impl SourceStats {
    /// Adds `o` into `self` (for totals across workers).
    pub fn add(&mut self, o: &SourceStats) {
        self.packets = self.packets.saturating_add(o.packets);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.kernel_packets = self.kernel_packets.saturating_add(o.kernel_packets);
        self.kernel_drops = self.kernel_drops.saturating_add(o.kernel_drops);
        self.kernel_freezes = self.kernel_freezes.saturating_add(o.kernel_freezes);
    }
}

/// A stream of packets: a live interface or a capture file, behind one interface so the
/// agent runs both through the same path.
pub trait PacketSource: Send {
    /// A short name for logs: the interface, `any`, or the file path.
    fn name(&self) -> &str;
    /// The next packet, waiting at most `timeout` for one (files never wait).
    fn next_packet(&mut self, timeout: Duration) -> Result<Next<'_>, LiveError>;
    /// Counters since the source was opened (reads the kernel's where there are some).
    fn stats(&mut self) -> SourceStats;
}

/// A capture file as a [`PacketSource`] (`vigil agent --pcap FILE`).
#[derive(Debug)]
pub struct FileSource<R> {
    reader: CaptureReader<R>,
    done: bool,
    bytes: u64,
}

impl FileSource<std::fs::File> {
    /// Opens a pcap, pcapng or gzip-compressed capture.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, LiveError> {
        Ok(FileSource { reader: CaptureReader::open(path)?, done: false, bytes: 0 })
    }
}

impl<R: Read> FileSource<R> {
    /// Wraps an open reader.
    pub fn new(reader: CaptureReader<R>) -> Self {
        FileSource { reader, done: false, bytes: 0 }
    }

    /// Whether the file ended inside a record (report it as a warning).
    pub fn truncated(&self) -> bool {
        self.reader.truncated()
    }
}

impl<R: Read + Send> PacketSource for FileSource<R> {
    fn name(&self) -> &str {
        self.reader.name()
    }

    fn next_packet(&mut self, _timeout: Duration) -> Result<Next<'_>, LiveError> {
        if self.done {
            return Ok(Next::End);
        }
        match self.reader.next_packet() {
            Ok(Some(packet)) => {
                self.bytes = self.bytes.saturating_add(packet.data.len() as u64);
                Ok(Next::Packet { packet, direction: Direction::Unknown })
            }
            Ok(None) => {
                self.done = true;
                Ok(Next::End)
            }
            Err(e) => {
                self.done = true;
                Err(e.into())
            }
        }
    }

    fn stats(&mut self) -> SourceStats {
        SourceStats { packets: self.reader.packets_read(), bytes: self.bytes, ..SourceStats::default() }
    }
}

/// An interface to capture on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSpec {
    /// Every interface (Linux cooked capture, link type `LINUX_SLL`; no promiscuous mode).
    Any,
    /// One interface by name.
    Named(String),
}

impl InterfaceSpec {
    /// `"any"` is [`InterfaceSpec::Any`]; anything else names an interface.
    pub fn parse(s: &str) -> InterfaceSpec {
        if s == "any" { InterfaceSpec::Any } else { InterfaceSpec::Named(s.to_owned()) }
    }

    /// The name as typed (`any` or the interface).
    pub fn name(&self) -> &str {
        match self {
            InterfaceSpec::Any => "any",
            InterfaceSpec::Named(n) => n,
        }
    }
}

/// Which capture implementation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Linux AF_PACKET TPACKET_V3 ring (the default; no library needed).
    #[default]
    AfPacket,
    /// libpcap (the `libpcap` cargo feature): other OSes, BPF filters.
    Libpcap,
}

/// How to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// Interfaces; empty means the interface of the default route.
    pub interfaces: Vec<InterfaceSpec>,
    /// Capture threads (sockets in one fanout group) per interface, 1 to [`MAX_WORKERS`].
    pub workers: usize,
    /// Ring block size, bytes (multiple of 4096, at most 4 MiB).
    pub block_size: u32,
    /// Ring blocks per worker.
    pub block_count: u32,
    /// Longest wait before the kernel hands over a partly filled block.
    pub block_timeout: Duration,
    /// Put named interfaces in promiscuous mode.
    pub promiscuous: bool,
    /// Implementation.
    pub backend: Backend,
    /// BPF filter expression (libpcap backend only).
    pub filter: Option<String>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            interfaces: Vec::new(),
            workers: 1,
            block_size: 1 << 20,
            block_count: 32,
            block_timeout: Duration::from_millis(20),
            promiscuous: true,
            backend: Backend::AfPacket,
            filter: None,
        }
    }
}

/// Why a live source could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The process lacks a capability capture needs.
    #[error(
        "cannot capture on {interface}: missing capability {capability} ({op} was refused); run the agent as root, or grant the capabilities once with: {fix}"
    )]
    Permission {
        /// Interface.
        interface: String,
        /// The missing capability, e.g. `CAP_NET_RAW`.
        capability: Capability,
        /// The refused call.
        op: &'static str,
        /// The `setcap` command that fixes it.
        fix: String,
    },
    /// The interface does not exist.
    #[error("cannot capture on {interface}: no such network interface; list them with `ip link` (or use `any`)")]
    NoSuchInterface {
        /// The name given.
        interface: String,
    },
    /// No interface given and no default route to pick one from.
    #[error(
        "no interface to capture on: there is no default route in /proc/net/route or /proc/net/ipv6_route; pass --interface IF (or `any`)"
    )]
    NoDefaultRoute,
    /// A system call failed.
    #[error("capture on {interface}: {op}: {source}")]
    Os {
        /// Interface.
        interface: String,
        /// The call.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("capture setting {field}: {message}")]
    Config {
        /// The setting, e.g. `capture.block_size`.
        field: &'static str,
        /// What is expected.
        message: String,
    },
    /// The chosen backend is not in this build or on this OS.
    #[error("{0}")]
    Unsupported(String),
    /// A capture file could not be read.
    #[error(transparent)]
    File(#[from] CaptureError),
    /// A capture file could not be opened (path shown).
    #[error("cannot open capture file {path}: {message}")]
    FileOpen {
        /// The path.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl LiveError {
    /// Whether this is a missing-privilege error (capture impossible until fixed; host
    /// metrics can go on).
    pub fn is_permission(&self) -> bool {
        matches!(self, LiveError::Permission { .. })
    }
}

impl LiveConfig {
    /// Checks ranges before any socket is opened.
    pub fn validate(&self) -> Result<(), LiveError> {
        let bad = |field, message: String| Err(LiveError::Config { field, message });
        if self.interfaces.len() > MAX_INTERFACES {
            return bad("capture.interfaces", format!("at most {MAX_INTERFACES} interfaces"));
        }
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return bad("capture.workers", format!("expected 1 to {MAX_WORKERS}"));
        }
        if self.block_size < 4096 || !self.block_size.is_multiple_of(4096) || self.block_size > 4 << 20 {
            return bad("capture.block_size", "expected a multiple of 4KiB between 4KiB and 4MiB".into());
        }
        if !(2..=4096).contains(&self.block_count) {
            return bad("capture.block_count", "expected 2 to 4096".into());
        }
        if self.block_timeout.is_zero() || self.block_timeout > Duration::from_secs(10) {
            return bad("capture.block_timeout", "expected between 1ms and 10s".into());
        }
        if self.filter.is_some() && self.backend != Backend::Libpcap {
            return bad("capture.filter", "BPF filters need the libpcap backend".into());
        }
        Ok(())
    }

    /// The interfaces to use: the configured ones, or the default route's.
    pub fn resolved_interfaces(&self) -> Result<Vec<InterfaceSpec>, LiveError> {
        if self.interfaces.is_empty() {
            Ok(vec![InterfaceSpec::Named(default_route_interface()?)])
        } else {
            Ok(self.interfaces.clone())
        }
    }
}

/// Opens every source `cfg` asks for: `workers` sources per interface (one per capture
/// thread, in one fanout group per interface). Fails as a whole: on error, the sources
/// already opened are closed.
pub fn open(cfg: &LiveConfig) -> Result<Vec<Box<dyn PacketSource>>, LiveError> {
    cfg.validate()?;
    let mut out: Vec<Box<dyn PacketSource>> = Vec::new();
    for iface in cfg.resolved_interfaces()? {
        match cfg.backend {
            Backend::AfPacket => open_afpacket(cfg, &iface, &mut out)?,
            Backend::Libpcap => open_libpcap(cfg, &iface, &mut out)?,
        }
    }
    Ok(out)
}

#[cfg(target_os = "linux")]
fn open_afpacket(
    cfg: &LiveConfig,
    iface: &InterfaceSpec,
    out: &mut Vec<Box<dyn PacketSource>>,
) -> Result<(), LiveError> {
    for s in AfPacketSource::open_group(iface, cfg)? {
        out.push(Box::new(s));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn open_afpacket(_: &LiveConfig, _: &InterfaceSpec, _: &mut Vec<Box<dyn PacketSource>>) -> Result<(), LiveError> {
    Err(LiveError::Unsupported(
        "AF_PACKET capture exists only on Linux; build with the `libpcap` feature and set capture.backend = \"libpcap\""
            .into(),
    ))
}

#[cfg(feature = "libpcap")]
fn open_libpcap(
    cfg: &LiveConfig,
    iface: &InterfaceSpec,
    out: &mut Vec<Box<dyn PacketSource>>,
) -> Result<(), LiveError> {
    if cfg.workers != 1 {
        return Err(LiveError::Config {
            field: "capture.workers",
            message: "the libpcap backend runs one worker per interface".into(),
        });
    }
    out.push(Box::new(PcapSource::open(iface, cfg)?));
    Ok(())
}

#[cfg(not(feature = "libpcap"))]
fn open_libpcap(_: &LiveConfig, _: &InterfaceSpec, _: &mut Vec<Box<dyn PacketSource>>) -> Result<(), LiveError> {
    Err(LiveError::Unsupported(
        "this vigil was built without libpcap: rebuild with `--features vigil-capture/libpcap` (needs libpcap-dev), or use the default AF_PACKET backend".into(),
    ))
}

#[cfg(test)]
mod tests;
