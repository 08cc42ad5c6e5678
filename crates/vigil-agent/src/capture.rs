//! Live capture in the agent: capture threads feeding the detection engine, alerts to the
//! spool at once, network statistics for the collector.
//!
//! ```text
//!  capture thread 1 ─┐ (AF_PACKET ring,       bounded queue of       ┌→ spool (alerts, at once) + wake shipper
//!  capture thread N ─┤  fanout by flow hash)  packet batches ──→ detection thread
//!                    └── full queue: wait ≤ 4 ms, then drop, counted └→ interval counters (NetStats)
//! ```
//!
//! Capture threads only copy packets into batches (one copy, into a recycled buffer), so
//! the kernel ring drains as fast as possible; the detection thread runs one engine that
//! sees every packet of every worker (detectors count per source or destination across
//! flows, which a per-worker engine could not). When the queue is full, a capture thread
//! first waits a little ([`QUEUE_WAIT`], sleeping, so that on a busy host its CPU goes to
//! detection rather than to copying packets it would drop): a detection thread that was
//! only descheduled catches up and nothing is lost, while the kernel ring (tens of
//! milliseconds of traffic) absorbs the pause. A worker waits at most once per
//! [`QUEUE_WAIT_EVERY`] (so at most 4 % of its time): otherwise, and when the queue is still
//! full after the wait, it drops whole batches, counted (`queue_drops`). Sustained overload
//! thus ends as queue drops while the ring keeps draining, not as kernel drops. A capture
//! file (`vigil agent --pcap`) goes through the same path, except that its worker waits for
//! room as long as it takes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use vigil_capture::live::{self, Direction, FileSource, LiveConfig, Next, PacketSource, SourceStats};
use vigil_detect::{DetectConfig, Engine, Frame};
use vigil_model::{AgentId, Alert, CaptureCounters, Item, NetStats};

use crate::netstats::NetAccumulator;
use crate::spool::{Class, Spool};

/// Packets per batch handed from a capture thread to the detection thread.
const BATCH_PACKETS: usize = 256;
/// A batch is sent once its bytes reach this (a packet is at most 256 KiB + 16).
const BATCH_BYTES: usize = 256 * 1024;
/// How long a capture thread waits for packets before checking for shutdown.
const POLL: Duration = Duration::from_millis(100);
/// How long a capture thread waits for room in a full detection queue before it drops the
/// batch: a few per cent of what a default ring holds at a million packets a second
/// (32 MiB, about 50 ms of 600-byte packets).
const QUEUE_WAIT: Duration = Duration::from_millis(4);
/// A capture thread waits for room at most once in this long.
const QUEUE_WAIT_EVERY: Duration = Duration::from_millis(100);
/// The sleep between two tries while waiting for room.
const QUEUE_WAIT_STEP: Duration = Duration::from_micros(250);
/// How often a capture thread refreshes its kernel counters.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// Alert batches queued from detection to the alert writer.
const ALERT_QUEUE: usize = 1024;

/// What to capture from: live interfaces, or a capture file pushed through the same path.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureInput {
    /// Live capture.
    Live(LiveConfig),
    /// A pcap/pcapng(.gz) file, read once at full speed.
    File(PathBuf),
}

/// Counters of a running capture (shared by its threads).
#[derive(Debug, Default)]
pub struct CaptureCountersLive {
    /// Packets queued for detection.
    pub queued: AtomicU64,
    /// Packets dropped at the queue because detection fell behind.
    pub queue_drops: AtomicU64,
    /// Batches that found the queue full and waited for room (then queued or dropped).
    pub queue_waits: AtomicU64,
    /// Packets the engine examined.
    pub analyzed: AtomicU64,
    /// Alerts raised.
    pub alerts: AtomicU64,
    /// Alerts that could not be spooled, or were dropped because the alert writer
    /// fell behind (an alert storm faster than the disk).
    pub spool_errors: AtomicU64,
}

/// A running capture: its threads, counters and the interval statistics.
pub struct CaptureHandle {
    names: Vec<String>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Per-worker source counters, refreshed by each worker.
    sources: Arc<Mutex<Vec<SourceStats>>>,
    /// Live counters.
    pub counters: Arc<CaptureCountersLive>,
    acc: Arc<Mutex<NetAccumulator>>,
    last_take: Mutex<Instant>,
    top_talkers: usize,
    file_done: Arc<AtomicBool>,
}

impl std::fmt::Debug for CaptureHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureHandle").field("interfaces", &self.names).finish_non_exhaustive()
    }
}

/// Why capture did not start. Host metrics go on either way.
#[derive(Debug, thiserror::Error)]
pub enum CaptureStartError {
    /// The sources could not be opened (privileges, interface, settings).
    #[error(transparent)]
    Live(#[from] live::LiveError),
    /// The detection settings are invalid.
    #[error("detection settings: {0}")]
    Detect(String),
    /// A thread could not be started.
    #[error("cannot start a capture thread: {0}")]
    Thread(std::io::Error),
}

impl CaptureStartError {
    /// Whether capture was refused for lack of privilege.
    pub fn is_permission(&self) -> bool {
        matches!(self, CaptureStartError::Live(e) if e.is_permission())
    }
}

/// What the detection thread needs besides packets.
pub(crate) struct Sink {
    pub agent_id: AgentId,
    pub spool: Arc<Spool>,
    pub wake: Arc<tokio::sync::Notify>,
}

/// Opens the sources and starts the capture and detection threads.
pub(crate) fn start(
    input: &CaptureInput,
    detect: &DetectConfig,
    queue_batches: usize,
    top_talkers: usize,
    sink: Sink,
) -> Result<CaptureHandle, CaptureStartError> {
    // The engine first: a bad configuration should not leave sockets open.
    // The engine's table hash seed is random by default (`EngineOptions::hash_seed`).
    let engine = Engine::new(detect.clone()).map_err(|e| CaptureStartError::Detect(e.to_string()))?;
    let (sources, is_file): (Vec<Box<dyn PacketSource>>, bool) = match input {
        CaptureInput::Live(cfg) => (live::open(cfg)?, false),
        CaptureInput::File(path) => (vec![Box::new(FileSource::open(path)?)], true),
    };
    let names: Vec<String> = {
        let mut n: Vec<String> = Vec::new();
        for s in &sources {
            let name = if is_file { format!("file:{}", s.name()) } else { s.name().to_owned() };
            if !n.contains(&name) {
                n.push(name);
            }
        }
        n
    };
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(CaptureCountersLive::default());
    let acc = Arc::new(Mutex::new(NetAccumulator::default()));
    let stats = Arc::new(Mutex::new(vec![SourceStats::default(); sources.len()]));
    let file_done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = sync_channel::<Batch>(queue_batches.max(1));
    let mut threads = Vec::new();
    let mut free_txs = Vec::new();
    for (i, source) in sources.into_iter().enumerate() {
        let (free_tx, free_rx) = sync_channel::<Batch>(queue_batches.max(1) + 2);
        free_txs.push(free_tx);
        let worker = Worker {
            index: i,
            source,
            tx: tx.clone(),
            free: free_rx,
            stop: stop.clone(),
            counters: counters.clone(),
            stats: stats.clone(),
            block_when_full: is_file,
            next_wait: Instant::now(),
        };
        let name = format!("vigil-capture-{i}");
        threads.push(std::thread::Builder::new().name(name).spawn(move || worker.run()).map_err(|e| {
            stop.store(true, Ordering::Relaxed);
            CaptureStartError::Thread(e)
        })?);
    }
    drop(tx);
    let (alert_tx, alert_rx) = sync_channel::<Vec<Alert>>(ALERT_QUEUE);
    let writer = AlertWriter { rx: alert_rx, sink, counters: counters.clone(), done: file_done.clone() };
    threads.push(
        std::thread::Builder::new()
            .name("vigil-alerts".into())
            .spawn(move || writer.run())
            .map_err(CaptureStartError::Thread)?,
    );
    let detector = Detector {
        engine,
        rx,
        free: free_txs,
        alerts: alert_tx,
        counters: counters.clone(),
        acc: acc.clone(),
        live: !is_file,
        names: names.clone(),
    };
    threads.push(
        std::thread::Builder::new()
            .name("vigil-detect".into())
            .spawn(move || detector.run())
            .map_err(CaptureStartError::Thread)?,
    );
    tracing::info!(interfaces = ?names, workers = threads.len() - 2, "packet capture started");
    Ok(CaptureHandle {
        names,
        stop,
        threads: Mutex::new(threads),
        sources: stats,
        counters,
        acc,
        last_take: Mutex::new(Instant::now()),
        top_talkers,
        file_done,
    })
}

impl CaptureHandle {
    /// Interfaces captured on (`file:PATH` for a capture file).
    pub fn interfaces(&self) -> &[String] {
        &self.names
    }

    /// Counters since the capture started.
    pub fn counters(&self) -> CaptureCounters {
        let mut total = SourceStats::default();
        for s in self.sources.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            total.add(s);
        }
        CaptureCounters {
            interfaces: self.names.clone(),
            packets: total.packets,
            kernel_packets: total.kernel_packets,
            kernel_drops: total.kernel_drops,
            queue_drops: self.counters.queue_drops.load(Ordering::Relaxed),
            analyzed: self.counters.analyzed.load(Ordering::Relaxed),
        }
    }

    /// Whether the capture has ended and all its alerts are spooled: a capture file read
    /// to its end and analysed (or a stopped capture).
    pub fn file_done(&self) -> bool {
        self.file_done.load(Ordering::Acquire)
    }

    /// The statistics since the last call (or the start), as one interval.
    pub fn take_netstats(&self) -> NetStats {
        let now = Instant::now();
        let elapsed = {
            let mut last = self.last_take.lock().unwrap_or_else(|p| p.into_inner());
            let e = now.duration_since(*last);
            *last = now;
            e
        };
        let interval_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX).max(1);
        let capture = self.counters();
        tracing::debug!(
            packets = capture.packets,
            kernel_packets = capture.kernel_packets,
            kernel_drops = capture.kernel_drops,
            queue_drops = capture.queue_drops,
            queue_waits = self.counters.queue_waits.load(Ordering::Relaxed),
            analyzed = capture.analyzed,
            "capture counters"
        );
        self.acc.lock().unwrap_or_else(|p| p.into_inner()).take(Utc::now(), interval_ms, self.top_talkers, capture)
    }

    /// Stops every thread and waits for them (at most one poll interval plus the batch
    /// being analysed).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for CaptureHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Packets copied out of a ring: their bytes back to back, and where each one is.
struct Batch {
    worker: usize,
    data: Vec<u8>,
    meta: Vec<Meta>,
}

#[derive(Clone, Copy)]
struct Meta {
    ts_nanos: i64,
    link_type: u32,
    orig_len: u32,
    start: usize,
    len: usize,
    direction: Direction,
}

impl Batch {
    fn new(worker: usize) -> Batch {
        Batch { worker, data: Vec::with_capacity(BATCH_BYTES), meta: Vec::with_capacity(BATCH_PACKETS) }
    }

    fn push(&mut self, ts_nanos: i64, link_type: u32, orig_len: u32, bytes: &[u8], direction: Direction) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.meta.push(Meta { ts_nanos, link_type, orig_len, start, len: bytes.len(), direction });
    }

    fn is_full(&self) -> bool {
        self.meta.len() >= BATCH_PACKETS || self.data.len() >= BATCH_BYTES
    }

    fn clear(&mut self) {
        self.data.clear();
        self.meta.clear();
    }
}

struct Worker {
    index: usize,
    source: Box<dyn PacketSource>,
    tx: SyncSender<Batch>,
    free: Receiver<Batch>,
    stop: Arc<AtomicBool>,
    counters: Arc<CaptureCountersLive>,
    stats: Arc<Mutex<Vec<SourceStats>>>,
    block_when_full: bool,
    /// When this worker may next wait for room in a full queue.
    next_wait: Instant,
}

impl Worker {
    fn run(mut self) {
        let mut batch = Batch::new(self.index);
        let mut last_stats = Instant::now();
        let mut errors = 0u32;
        while !self.stop.load(Ordering::Relaxed) {
            match self.source.next_packet(POLL) {
                Ok(Next::Packet { packet, direction }) => {
                    errors = 0;
                    batch.push(packet.ts_nanos, packet.link_type, packet.orig_len, packet.data, direction);
                    if !batch.is_full() {
                        // The clock is read once per batch, not per packet: at a million
                        // packets a second a clock read each would cost more than the copy.
                        continue;
                    }
                    batch = self.send(batch);
                }
                Ok(Next::Idle) => {
                    if !batch.meta.is_empty() {
                        batch = self.send(batch);
                    }
                }
                Ok(Next::End) => break,
                Err(e) => {
                    errors += 1;
                    tracing::error!(source = self.source.name(), error = %e, "capture error");
                    if errors >= 10 || matches!(e, live::LiveError::File(_)) {
                        tracing::error!(source = self.source.name(), "capture stopped after repeated errors");
                        break;
                    }
                    std::thread::sleep(POLL);
                }
            }
            if last_stats.elapsed() >= STATS_EVERY {
                self.publish_stats();
                last_stats = Instant::now();
            }
        }
        if !batch.meta.is_empty() {
            self.send(batch);
        }
        self.publish_stats();
    }

    /// Hands `batch` to detection; returns an empty batch to fill next.
    fn send(&mut self, batch: Batch) -> Batch {
        let n = batch.meta.len() as u64;
        let result = if self.block_when_full {
            self.tx.send(batch).map_err(|e| TrySendError::Disconnected(e.0))
        } else {
            try_send_or_wait(&self.tx, batch, &mut self.next_wait, &self.counters)
        };
        match result {
            Ok(()) => {
                self.counters.queued.fetch_add(n, Ordering::Relaxed);
                self.free.try_recv().unwrap_or_else(|_| Batch::new(self.index))
            }
            Err(TrySendError::Full(mut b)) | Err(TrySendError::Disconnected(mut b)) => {
                self.counters.queue_drops.fetch_add(n, Ordering::Relaxed);
                b.clear();
                b
            }
        }
    }

    fn publish_stats(&mut self) {
        let s = self.source.stats();
        if let Some(slot) = self.stats.lock().unwrap_or_else(|p| p.into_inner()).get_mut(self.index) {
            *slot = s;
        }
    }
}

/// Queues `batch`; when the queue is full and `next_wait` has come, waits at most
/// [`QUEUE_WAIT`] for room and sets `next_wait` [`QUEUE_WAIT_EVERY`] later.
fn try_send_or_wait(
    tx: &SyncSender<Batch>,
    batch: Batch,
    next_wait: &mut Instant,
    counters: &CaptureCountersLive,
) -> Result<(), TrySendError<Batch>> {
    let mut batch = match tx.try_send(batch) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Full(b)) => b,
        Err(e) => return Err(e),
    };
    let start = Instant::now();
    if start < *next_wait {
        return Err(TrySendError::Full(batch));
    }
    *next_wait = start + QUEUE_WAIT_EVERY;
    counters.queue_waits.fetch_add(1, Ordering::Relaxed);
    loop {
        std::thread::sleep(QUEUE_WAIT_STEP);
        batch = match tx.try_send(batch) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(b)) => b,
            Err(e) => return Err(e),
        };
        if start.elapsed() >= QUEUE_WAIT {
            return Err(TrySendError::Full(batch));
        }
    }
}

struct Detector {
    engine: Engine,
    rx: Receiver<Batch>,
    free: Vec<SyncSender<Batch>>,
    alerts: SyncSender<Vec<Alert>>,
    counters: Arc<CaptureCountersLive>,
    acc: Arc<Mutex<NetAccumulator>>,
    live: bool,
    names: Vec<String>,
}

impl Detector {
    fn run(mut self) {
        let mut alerts: Vec<Alert> = Vec::new();
        // Counted here: the writer thread's own counter may still be behind at the end.
        let mut raised = 0u64;
        loop {
            match self.rx.recv_timeout(Duration::from_millis(500)) {
                Ok(mut batch) => {
                    self.analyze(&batch, &mut alerts);
                    if !alerts.is_empty() {
                        raised += alerts.len() as u64;
                        self.ship(&mut alerts);
                    }
                    batch.clear();
                    if let Some(tx) = self.free.get(batch.worker) {
                        let _ = tx.try_send(batch);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.live {
                        // Quiet link: let idle state age out on the wall clock.
                        self.engine.flush(Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if !self.live {
            let st = self.engine.stats();
            tracing::info!(
                file = ?self.names,
                packets = st.packets,
                alerts = raised,
                "capture file analysed; the agent goes on sending host metrics"
            );
        }
    }

    fn analyze(&mut self, batch: &Batch, alerts: &mut Vec<Alert>) {
        let mut acc = self.acc.lock().unwrap_or_else(|p| p.into_inner());
        for (i, m) in batch.meta.iter().enumerate() {
            let Some(data) = batch.data.get(m.start..m.start + m.len) else { continue };
            // Warm the next frame's flow while this one is processed.
            if let Some(n) = batch.meta.get(i + 1)
                && let Some(next) = batch.data.get(n.start..n.start + n.len)
            {
                self.engine.prefetch(n.link_type, next);
            }
            let frame = Frame { ts_nanos: m.ts_nanos, link_type: m.link_type, orig_len: m.orig_len, data };
            let packet = self.engine.process_and_decode(&frame, alerts);
            acc.observe(packet.as_ref(), m.orig_len, m.direction);
        }
        self.counters.analyzed.fetch_add(batch.meta.len() as u64, Ordering::Relaxed);
    }

    /// Hands the alerts to the writer thread: detection never waits for the disk.
    fn ship(&mut self, alerts: &mut Vec<Alert>) {
        let n = alerts.len() as u64;
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.alerts.try_send(std::mem::take(alerts))
        {
            self.counters.spool_errors.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Writes alerts to the spool as soon as they come, in one write (one fsync) for every
/// batch waiting, and wakes the shipper: alerts do not wait for the metrics tick, and an
/// alert storm costs one disk write per drain rather than one per alert.
struct AlertWriter {
    rx: Receiver<Vec<Alert>>,
    sink: Sink,
    counters: Arc<CaptureCountersLive>,
    /// Set once detection has ended and every alert is spooled.
    done: Arc<AtomicBool>,
}

impl AlertWriter {
    fn run(self) {
        while let Ok(first) = self.rx.recv() {
            let mut all = first;
            while let Ok(more) = self.rx.try_recv() {
                all.extend(more);
                if all.len() >= 10_000 {
                    break;
                }
            }
            let items: Vec<Item> = all
                .into_iter()
                .map(|mut a| {
                    tracing::info!(category = %a.category, severity = %a.severity, src = ?a.src_ip, summary = %a.summary, "alert");
                    a.agent = Some(self.sink.agent_id.clone());
                    Item::Alert(a)
                })
                .collect();
            let n = items.len() as u64;
            match self.sink.spool.put(Class::Alerts, &items) {
                Ok(()) => {
                    self.counters.alerts.fetch_add(n, Ordering::Relaxed);
                    self.sink.wake.notify_one();
                }
                Err(e) => {
                    self.counters.spool_errors.fetch_add(n, Ordering::Relaxed);
                    tracing::error!(error = %e, alerts = n, "cannot spool alerts");
                }
            }
        }
        self.done.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// An Ethernet/IPv4/TCP SYN from `src:40000` to `dst:port`.
    fn syn(src: [u8; 4], dst: [u8; 4], port: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 10]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 66]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let sum = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        ip[10..12].copy_from_slice(&(!((sum & 0xffff) + (sum >> 16)) as u16).to_be_bytes());
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&port.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        tcp[14..16].copy_from_slice(&1024u16.to_be_bytes());
        f
    }

    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        for (i, f) in frames.iter().enumerate() {
            v.extend_from_slice(&1_700_000_000u32.to_le_bytes());
            v.extend_from_slice(&(i as u32 * 1000).to_le_bytes());
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(f);
        }
        v
    }

    #[test]
    fn a_capture_file_goes_through_detection_to_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let frames: Vec<Vec<u8>> = (1..=100).map(|p| syn([10, 9, 0, 66], [10, 9, 0, 10], p)).collect();
        let file = dir.path().join("scan.pcap");
        std::fs::write(&file, pcap(&frames)).unwrap();
        let spool = Arc::new(Spool::open(&dir.path().join("spool"), 1 << 20).unwrap());
        let wake = Arc::new(tokio::sync::Notify::new());
        let sink = Sink { agent_id: AgentId::new("cap-test").unwrap(), spool: spool.clone(), wake };
        let h = start(&CaptureInput::File(file.clone()), &DetectConfig::default(), 4, 5, sink).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !h.file_done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(h.file_done());
        let c = h.counters();
        assert_eq!((c.packets, c.analyzed, c.queue_drops), (100, 100, 0), "{c:?}");
        assert_eq!(c.interfaces, vec![format!("file:{}", file.display())]);
        let taken = spool.take(100, 1 << 20);
        let alerts: Vec<&Alert> =
            taken.items.iter().filter_map(|i| if let Item::Alert(a) = i { Some(a) } else { None }).collect();
        let scan = alerts
            .iter()
            .find(|a| a.category == vigil_model::Category::PortScan)
            .unwrap_or_else(|| panic!("no port_scan in {alerts:?}"));
        assert_eq!(scan.src_ip, Some("10.9.0.66".parse().unwrap()));
        assert_eq!(scan.agent.as_ref().map(AgentId::as_str), Some("cap-test"));
        let n = h.take_netstats();
        assert_eq!(n.top_talkers.len(), 2);
        assert_eq!(n.protocols[0].protocol, "tcp");
        assert_eq!(n.protocols[0].packets, 100);
        assert_eq!(n.capture.analyzed, 100);
        h.stop();
    }

    #[test]
    fn a_full_queue_is_waited_for_briefly_and_not_often() {
        let counters = CaptureCountersLive::default();
        let waits = || counters.queue_waits.load(Ordering::Relaxed);
        let (tx, rx) = sync_channel::<Batch>(1);
        let mut next_wait = Instant::now();
        assert!(try_send_or_wait(&tx, Batch::new(0), &mut next_wait, &counters).is_ok());
        assert_eq!(waits(), 0);
        // Full, and nobody reads: one bounded wait, then the batch comes back to be dropped.
        let t = Instant::now();
        assert!(matches!(try_send_or_wait(&tx, Batch::new(0), &mut next_wait, &counters), Err(TrySendError::Full(_))));
        assert!(t.elapsed() >= QUEUE_WAIT);
        assert_eq!(waits(), 1);
        assert!(next_wait >= t + QUEUE_WAIT_EVERY);
        // Within the window: dropped at once, even after the queue had room for a moment.
        assert!(try_send_or_wait(&tx, Batch::new(0), &mut next_wait, &counters).is_err());
        rx.recv().unwrap();
        assert!(try_send_or_wait(&tx, Batch::new(0), &mut next_wait, &counters).is_ok());
        assert!(try_send_or_wait(&tx, Batch::new(0), &mut next_wait, &counters).is_err());
        assert_eq!(waits(), 1);
        // Once the window has passed, a full queue is waited for again.
        next_wait = Instant::now();
        assert!(try_send_or_wait(&tx, Batch::new(0), &mut next_wait, &counters).is_err());
        assert_eq!(waits(), 2);
        drop(rx);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let spool = Arc::new(Spool::open(&tempfile::tempdir().unwrap().path().join("s"), 1 << 20).unwrap());
        let sink = Sink { agent_id: AgentId::new("x").unwrap(), spool, wake: Arc::new(tokio::sync::Notify::new()) };
        let e =
            start(&CaptureInput::File("/nonexistent/x.pcap".into()), &DetectConfig::default(), 4, 5, sink).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.pcap"), "{e}");
        assert!(!e.is_permission());
    }
}
