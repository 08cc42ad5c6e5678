//! `vigil analyze`: run the detection engine over capture files and write the alerts.
//!
//! **Owns**: reading the inputs in order (pcap, pcapng, gzip; several files form one
//! packet stream), the detection configuration file (`--config`, TOML), blocklist files
//! (`--blocklist`, one IP, CIDR or domain per line), the output (one JSON object per alert
//! per line, or a table for people), the run [`Summary`] and the exit code rule
//! ([`exit_code`]). The CLI in `crates/vigil` only parses arguments and calls [`analyze`].
//!
//! **Must not**: detect anything itself (that is `vigil-detect`), decode packets
//! (`vigil-decode`) or parse capture formats (`vigil-capture`); hold memory that grows
//! with the input (packets are streamed, alerts written as they come).
//!
//! **Threads**: with `threads <= 1` everything runs on the caller's thread. With more, the
//! caller's thread reads the files and hands batches of packets to one worker per detector
//! group ([`vigil_detect::Group`], at most three); each worker runs an engine with its
//! groups over the whole stream, and the caller merges their alerts in (packet index,
//! [`vigil_detect::alert_order`]) order as workers progress. The groups have disjoint
//! state and fixed memory shares, so the output is byte-identical for any thread count.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;
use vigil_capture::{Ahead, CaptureError, CaptureFormat, CaptureReader};
use vigil_decode::LinkType;
use vigil_detect::{Blocklist, DetectConfig, Engine, EngineOptions, Frame, Group, Stats, alert_order, parse_line};
use vigil_model::{Alert, Category, Severity};

/// Largest blocklist file read (bytes).
pub const MAX_BLOCKLIST_LEN: u64 = 256 * 1024 * 1024;
/// Packets per batch handed to workers.
const BATCH_PACKETS: usize = 2048;
/// Batches in flight per worker.
const BATCHES_IN_FLIGHT: usize = 4;

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object per alert per line (the §4 fields).
    #[default]
    Json,
    /// An aligned table for people.
    Table,
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(OutputFormat::Json),
            "table" => Ok(OutputFormat::Table),
            other => Err(format!("unknown format {other:?}; expected json or table")),
        }
    }
}

/// What to analyze and how.
#[derive(Clone, Debug, Default)]
pub struct AnalyzeOptions {
    /// Capture files, read in this order as one packet stream.
    pub files: Vec<PathBuf>,
    /// A TOML file with the detection settings ([`DetectConfig`]); defaults otherwise.
    pub config: Option<PathBuf>,
    /// Settings to use when `config` is `None` (tests, embedding).
    pub detect: Option<DetectConfig>,
    /// Blocklist files: one IP, CIDR or domain per line, `#` comments.
    pub blocklists: Vec<PathBuf>,
    /// Detection threads (0 and 1 mean one; more than 3 act as 3). Output is identical
    /// for any value.
    pub threads: usize,
    /// Output format.
    pub format: OutputFormat,
    /// Severity at or above which the run "fails" ([`Summary::fail_on_triggered`], exit 1).
    pub fail_on: Option<Severity>,
}

/// Why an analysis could not run or finish. Every variant names its input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// No input file was given.
    #[error("no capture file given; pass one or more pcap or pcapng files")]
    NoInput,
    /// The config file could not be read or parsed.
    #[error(transparent)]
    Config(#[from] vigil_config::ConfigError),
    /// A config value is out of range.
    #[error("{}: {source}", path.as_ref().map_or_else(|| "detection settings".to_owned(), |p| p.display().to_string()))]
    InvalidConfig {
        /// The config file, if the settings came from one.
        path: Option<PathBuf>,
        /// The bad key and why.
        source: vigil_detect::ConfigError,
    },
    /// A blocklist file could not be read.
    #[error("cannot read blocklist {path}: {source}")]
    BlocklistRead {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A blocklist line is not an IP, CIDR or domain.
    #[error("{path}:{line}: {message}")]
    Blocklist {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A capture file could not be opened or read (the error names the file).
    #[error("{0}")]
    Capture(#[from] CaptureError),
    /// A capture file's link type is not decodable.
    #[error(
        "{path}: unsupported link type {link_type}; vigil decodes Ethernet, Linux SLL/SLL2, raw IP, BSD loopback and 802.11 radiotap (convert with editcap, or skip the file)"
    )]
    UnsupportedLinkType {
        /// The file.
        path: PathBuf,
        /// The `LINKTYPE_*` value.
        link_type: u32,
    },
    /// Writing the alerts failed (a closed pipe, a full disk).
    #[error("cannot write alerts: {0}")]
    Output(#[source] io::Error),
    /// A worker thread died (a bug).
    #[error("a detection thread failed: {0}")]
    Worker(String),
}

/// Per-file facts.
#[derive(Clone, Debug, Serialize)]
pub struct FileSummary {
    /// The file.
    pub path: PathBuf,
    /// Packets read.
    pub packets: u64,
    /// The file ends inside a packet record (what was read is analyzed).
    pub truncated: bool,
    /// Packets with an unsupported link type.
    pub unsupported: u64,
}

/// What a run did (printed to stderr by the CLI).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Per file.
    pub files: Vec<FileSummary>,
    /// Packets processed.
    pub packets: u64,
    /// Bytes on the wire.
    pub bytes: u64,
    /// Capture duration: highest minus lowest timestamp, seconds.
    pub capture_secs: f64,
    /// Wall-clock time of the run, seconds.
    pub elapsed_secs: f64,
    /// Packets per second of wall-clock time.
    pub packets_per_sec: f64,
    /// Alerts per category.
    pub alerts: BTreeMap<Category, u64>,
    /// All alerts.
    pub alerts_total: u64,
    /// Highest severity seen.
    pub max_severity: Option<Severity>,
    /// An alert at or above `fail_on` was found.
    pub fail_on_triggered: bool,
    /// Frames with an unsupported link type.
    pub decode_errors: u64,
    /// Frames with malformed headers.
    pub malformed: u64,
    /// Frames with headers cut short.
    pub truncated_packets: u64,
    /// Files that end inside a record.
    pub truncated_files: Vec<PathBuf>,
    /// Table evictions (memory budget pressure).
    pub evictions: u64,
    /// Engine memory estimate at the end, bytes.
    pub memory_bytes: u64,
    /// Detection threads used.
    pub threads: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "analyzed {} packets ({} bytes) from {} file(s): capture span {:.3} s, processed in {:.3} s ({:.0} packets/s, {} thread(s))",
            self.packets,
            self.bytes,
            self.files.len(),
            self.capture_secs,
            self.elapsed_secs,
            self.packets_per_sec,
            self.threads
        )?;
        if self.alerts.is_empty() {
            writeln!(f, "alerts: none")?;
        } else {
            let list: Vec<String> = self.alerts.iter().map(|(c, n)| format!("{c} {n}")).collect();
            writeln!(f, "alerts: {} ({})", self.alerts_total, list.join(", "))?;
        }
        write!(
            f,
            "decode errors: {}, malformed: {}, truncated packets: {}, evictions: {}, engine memory: {} KiB",
            self.decode_errors,
            self.malformed,
            self.truncated_packets,
            self.evictions,
            self.memory_bytes / 1024
        )?;
        for p in &self.truncated_files {
            write!(f, "\nwarning: {} ends in the middle of a packet; the rest of it is lost", p.display())?;
        }
        Ok(())
    }
}

/// The exit code of `vigil analyze`: 0 success, 1 when `--fail-on` was triggered, 2 on
/// an error (unreadable or unsupported input, bad config, output failure).
pub fn exit_code(result: &Result<Summary, AnalyzeError>) -> i32 {
    match result {
        Ok(s) if s.fail_on_triggered => 1,
        Ok(_) => 0,
        Err(_) => 2,
    }
}

/// Progress reporting (a bar on a terminal).
pub trait Progress {
    /// A file is about to be read; `bytes` is its size when known.
    fn file_started(&mut self, path: &Path, bytes: Option<u64>);
    /// Bytes of the current file consumed so far, packets in total.
    fn advanced(&mut self, bytes_in_file: u64, packets: u64);
    /// The run is over.
    fn finished(&mut self);
}

/// No progress output.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn file_started(&mut self, _: &Path, _: Option<u64>) {}
    fn advanced(&mut self, _: u64, _: u64) {}
    fn finished(&mut self) {}
}

/// A progress bar on stderr (indicatif).
pub struct BarProgress {
    bar: indicatif::ProgressBar,
}

impl Progress for BarProgress {
    fn file_started(&mut self, path: &Path, bytes: Option<u64>) {
        self.bar.reset();
        self.bar.set_length(bytes.unwrap_or(0));
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        self.bar.set_message(name);
    }
    fn advanced(&mut self, bytes_in_file: u64, packets: u64) {
        self.bar.set_position(bytes_in_file.min(self.bar.length().unwrap_or(u64::MAX)));
        self.bar.set_prefix(format!("{packets} pkts"));
    }
    fn finished(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A progress bar when stderr is a terminal, nothing otherwise.
pub fn stderr_progress() -> Box<dyn Progress> {
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() {
        return Box::new(NoProgress);
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {prefix} {elapsed}")
    {
        bar.set_style(style);
    }
    Box::new(BarProgress { bar })
}

/// Reads the detection settings from a TOML file and validates them.
pub fn load_config(path: &Path) -> Result<DetectConfig, AnalyzeError> {
    let c: DetectConfig = vigil_config::load(path)?;
    c.validate().map_err(|source| AnalyzeError::InvalidConfig { path: Some(path.to_owned()), source })?;
    Ok(c)
}

/// Reads blocklist files into one [`Blocklist`]; errors name the file and line.
pub fn load_blocklists(paths: &[PathBuf]) -> Result<Blocklist, AnalyzeError> {
    let mut b = Blocklist::new();
    for path in paths {
        let read_err = |source| AnalyzeError::BlocklistRead { path: path.clone(), source };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.len() > MAX_BLOCKLIST_LEN {
            return Err(AnalyzeError::Blocklist {
                path: path.clone(),
                line: 0,
                message: format!("file is larger than {} MiB", MAX_BLOCKLIST_LEN >> 20),
            });
        }
        let text = std::fs::read(path).map_err(|source| AnalyzeError::BlocklistRead { path: path.clone(), source })?;
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            let Ok(line) = std::str::from_utf8(line) else {
                return Err(AnalyzeError::Blocklist {
                    path: path.clone(),
                    line: i + 1,
                    message: "not UTF-8 text".into(),
                });
            };
            match parse_line(line) {
                Ok(Some(e)) => b.insert(e),
                Ok(None) => {}
                Err(e) => {
                    return Err(AnalyzeError::Blocklist { path: path.clone(), line: i + 1, message: e.to_string() });
                }
            }
        }
    }
    Ok(b)
}

/// Writes alerts in the chosen format.
struct Sink<'a> {
    w: BufWriter<&'a mut dyn Write>,
    format: OutputFormat,
    header: bool,
    fail_on: Option<Severity>,
    triggered: bool,
    max: Option<Severity>,
    total: u64,
}

fn endpoint(ip: Option<std::net::IpAddr>, port: Option<u16>) -> String {
    match (ip, port) {
        (Some(std::net::IpAddr::V6(a)), Some(p)) => format!("[{a}]:{p}"),
        (Some(a), Some(p)) => format!("{a}:{p}"),
        (Some(a), None) => a.to_string(),
        (None, Some(p)) => format!("*:{p}"),
        (None, None) => "-".into(),
    }
}

impl Sink<'_> {
    fn write(&mut self, a: &Alert) -> Result<(), AnalyzeError> {
        self.total += 1;
        self.max = self.max.max(Some(a.severity));
        if self.fail_on.is_some_and(|f| a.severity >= f) {
            self.triggered = true;
        }
        match self.format {
            OutputFormat::Json => {
                serde_json::to_writer(&mut self.w, a).map_err(|e| AnalyzeError::Output(io::Error::other(e)))?;
                self.w.write_all(b"\n").map_err(AnalyzeError::Output)?;
            }
            OutputFormat::Table => {
                if !self.header {
                    self.header = true;
                    writeln!(
                        self.w,
                        "{:<24} {:<8} {:<22} {:<44} SUMMARY",
                        "TIME", "SEVERITY", "CATEGORY", "SOURCE -> TARGET"
                    )
                    .map_err(AnalyzeError::Output)?;
                }
                let flow = format!("{} -> {}", endpoint(a.src_ip, a.src_port), endpoint(a.dst_ip, a.dst_port));
                writeln!(
                    self.w,
                    "{:<24} {:<8} {:<22} {:<44} {}",
                    a.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    a.severity.as_str(),
                    a.category.as_str(),
                    flow,
                    a.summary
                )
                .map_err(AnalyzeError::Output)?;
            }
        }
        Ok(())
    }
}

/// One packet copied out of the reader (for the threaded path).
#[derive(Clone, Copy)]
struct Meta {
    ts: i64,
    link: u32,
    orig: u32,
    off: u32,
    len: u32,
}

struct Batch {
    first_seq: u64,
    data: Vec<u8>,
    meta: Vec<Meta>,
}

struct Done {
    worker: usize,
    upto: u64,
    alerts: Vec<(u64, Alert)>,
}

/// Reads every file in order, calling `each` per packet with a look at the next one when
/// the reader has it; fills the per-file summaries.
fn read_all(
    files: &[PathBuf],
    progress: &mut dyn Progress,
    summaries: &mut Vec<FileSummary>,
    mut each: impl FnMut(Frame<'_>, Option<Ahead<'_>>) -> Result<(), AnalyzeError>,
) -> Result<(), AnalyzeError> {
    let mut total = 0u64;
    for path in files {
        let mut r = CaptureReader::open(path)?;
        if let CaptureFormat::Pcap { link_type, .. } = r.format()
            && !LinkType(link_type).is_supported()
        {
            return Err(AnalyzeError::UnsupportedLinkType { path: path.clone(), link_type });
        }
        progress.file_started(path, std::fs::metadata(path).ok().map(|m| m.len()));
        let mut fs = FileSummary { path: path.clone(), packets: 0, truncated: false, unsupported: 0 };
        let mut last_link = 0;
        while let Some((p, next)) = r.next_packet_and_peek()? {
            fs.packets += 1;
            total += 1;
            if !LinkType(p.link_type).is_supported() {
                fs.unsupported += 1;
                last_link = p.link_type;
            }
            each(Frame { ts_nanos: p.ts_nanos, link_type: p.link_type, orig_len: p.orig_len, data: p.data }, next)?;
            if total.is_multiple_of(65_536) {
                progress.advanced(r.bytes_read(), total);
            }
        }
        progress.advanced(r.bytes_read(), total);
        fs.truncated = r.truncated();
        if fs.packets > 0 && fs.unsupported == fs.packets {
            return Err(AnalyzeError::UnsupportedLinkType { path: path.clone(), link_type: last_link });
        }
        summaries.push(fs);
    }
    Ok(())
}

/// Runs the analysis: alerts to `out`, the summary returned.
pub fn analyze(
    opts: &AnalyzeOptions,
    out: &mut dyn Write,
    progress: &mut dyn Progress,
) -> Result<Summary, AnalyzeError> {
    if opts.files.is_empty() {
        return Err(AnalyzeError::NoInput);
    }
    let config = match &opts.config {
        Some(p) => load_config(p)?,
        None => {
            let c = opts.detect.clone().unwrap_or_default();
            c.validate().map_err(|source| AnalyzeError::InvalidConfig { path: None, source })?;
            c
        }
    };
    let blocklist = Arc::new(load_blocklists(&opts.blocklists)?);
    let threads = opts.threads.clamp(1, Group::ALL.len());
    let started = Instant::now();
    let mut sink = Sink {
        w: BufWriter::with_capacity(64 * 1024, out),
        format: opts.format,
        header: false,
        fail_on: opts.fail_on,
        triggered: false,
        max: None,
        total: 0,
    };
    let mut files = Vec::new();
    let stats = if threads == 1 {
        let mut engine = Engine::with_options(config, EngineOptions { blocklist, ..EngineOptions::default() })
            .map_err(|source| AnalyzeError::InvalidConfig { path: opts.config.clone(), source })?;
        let mut alerts = Vec::new();
        read_all(&opts.files, progress, &mut files, |f, next| {
            // Warm the next packet's flow while this one is processed.
            if let Some(next) = next {
                engine.prefetch(next.link_type, next.data);
            }
            engine.process(&f, &mut alerts);
            for a in alerts.drain(..) {
                sink.write(&a)?;
            }
            Ok(())
        })?;
        if let Some(ts) = engine.stats().max_ts {
            engine.flush(ts);
        }
        engine.stats()
    } else {
        run_threaded(&opts.files, config, blocklist, threads, progress, &mut files, &mut sink)?
    };
    progress.finished();
    sink.w.flush().map_err(AnalyzeError::Output)?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Summary {
        truncated_files: files.iter().filter(|f| f.truncated).map(|f| f.path.clone()).collect(),
        files,
        packets: stats.packets,
        bytes: stats.bytes,
        capture_secs: stats.duration_nanos() as f64 / 1e9,
        elapsed_secs: elapsed,
        packets_per_sec: if elapsed > 0.0 { stats.packets as f64 / elapsed } else { 0.0 },
        alerts_total: sink.total,
        alerts: stats.alerts.clone(),
        max_severity: sink.max,
        fail_on_triggered: sink.triggered,
        decode_errors: stats.decode_errors,
        malformed: stats.malformed,
        truncated_packets: stats.truncated,
        evictions: stats.evictions,
        memory_bytes: stats.memory_bytes,
        threads,
    })
}

fn run_threaded(
    paths: &[PathBuf],
    config: DetectConfig,
    blocklist: Arc<Blocklist>,
    threads: usize,
    progress: &mut dyn Progress,
    files: &mut Vec<FileSummary>,
    sink: &mut Sink<'_>,
) -> Result<Stats, AnalyzeError> {
    // Engines are built up front so a config error surfaces before any thread starts.
    let mut engines = Vec::with_capacity(threads);
    for i in 0..threads {
        let groups: Vec<Group> =
            Group::ALL.iter().copied().enumerate().filter(|(j, _)| j % threads == i).map(|(_, g)| g).collect();
        let e = Engine::with_options(
            config.clone(),
            EngineOptions { blocklist: blocklist.clone(), groups, ..EngineOptions::default() },
        )
        .map_err(|source| AnalyzeError::InvalidConfig { path: None, source })?;
        engines.push(e);
    }
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let mut senders = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for (worker, mut engine) in engines.into_iter().enumerate() {
            let (tx, rx) = mpsc::sync_channel::<Arc<Batch>>(BATCHES_IN_FLIGHT);
            senders.push(tx);
            let done_tx = done_tx.clone();
            handles.push(scope.spawn(move || {
                let mut out = Vec::new();
                for batch in rx {
                    let mut alerts = Vec::new();
                    for (i, m) in batch.meta.iter().enumerate() {
                        let data = batch.data.get(m.off as usize..(m.off + m.len) as usize).unwrap_or(&[]);
                        if let Some(n) = batch.meta.get(i + 1)
                            && let Some(next) = batch.data.get(n.off as usize..(n.off + n.len) as usize)
                        {
                            engine.prefetch(n.link, next);
                        }
                        engine.process(&Frame { ts_nanos: m.ts, link_type: m.link, orig_len: m.orig, data }, &mut out);
                        let seq = batch.first_seq + i as u64;
                        alerts.extend(out.drain(..).map(|a| (seq, a)));
                    }
                    let upto = batch.first_seq + batch.meta.len() as u64;
                    if done_tx.send(Done { worker, upto, alerts }).is_err() {
                        break;
                    }
                }
                if let Some(ts) = engine.stats().max_ts {
                    engine.flush(ts);
                }
                engine.stats()
            }));
        }
        drop(done_tx);

        let mut marks = vec![0u64; threads];
        let mut pending: Vec<(u64, Alert)> = Vec::new();
        let emit = |marks: &[u64], pending: &mut Vec<(u64, Alert)>, all: bool, sink: &mut Sink<'_>| {
            let mark = if all { u64::MAX } else { marks.iter().copied().min().unwrap_or(0) };
            if pending.iter().all(|(s, _)| *s >= mark) {
                return Ok(());
            }
            pending.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| alert_order(&a.1, &b.1)));
            let n = pending.partition_point(|(s, _)| *s < mark);
            for (_, a) in pending.drain(..n) {
                sink.write(&a)?;
            }
            Ok::<(), AnalyzeError>(())
        };
        let absorb = |d: Done, marks: &mut [u64], pending: &mut Vec<(u64, Alert)>| {
            if let Some(m) = marks.get_mut(d.worker) {
                *m = d.upto;
            }
            pending.extend(d.alerts);
        };

        let mut batch = Batch {
            first_seq: 0,
            data: Vec::with_capacity(BATCH_PACKETS * 256),
            meta: Vec::with_capacity(BATCH_PACKETS),
        };
        let mut seq = 0u64;
        let send = |batch: Batch, marks: &mut Vec<u64>, pending: &mut Vec<(u64, Alert)>, sink: &mut Sink<'_>| {
            let b = Arc::new(batch);
            for tx in &senders {
                if tx.send(b.clone()).is_err() {
                    return Err(AnalyzeError::Worker("a worker stopped early".into()));
                }
            }
            while let Ok(d) = done_rx.try_recv() {
                absorb(d, marks, pending);
            }
            emit(marks, pending, false, sink)
        };
        let read = read_all(paths, progress, files, |f, _next| {
            let off = u32::try_from(batch.data.len()).unwrap_or(u32::MAX);
            batch.data.extend_from_slice(f.data);
            batch.meta.push(Meta {
                ts: f.ts_nanos,
                link: f.link_type,
                orig: f.orig_len,
                off,
                len: u32::try_from(f.data.len()).unwrap_or(0),
            });
            seq += 1;
            if batch.meta.len() >= BATCH_PACKETS {
                let next = Batch {
                    first_seq: seq,
                    data: Vec::with_capacity(batch.data.capacity()),
                    meta: Vec::with_capacity(BATCH_PACKETS),
                };
                send(std::mem::replace(&mut batch, next), &mut marks, &mut pending, sink)?;
            }
            Ok(())
        });
        let last =
            if read.is_ok() && !batch.meta.is_empty() { send(batch, &mut marks, &mut pending, sink) } else { Ok(()) };
        drop(senders);
        let mut stats: Option<Stats> = None;
        let mut failure = None;
        for h in handles {
            match h.join() {
                Ok(s) => match &mut stats {
                    None => stats = Some(s),
                    Some(acc) => acc.merge_partition(&s),
                },
                Err(_) => failure = Some(AnalyzeError::Worker("a detection thread panicked".into())),
            }
        }
        read?;
        last?;
        if let Some(f) = failure {
            return Err(f);
        }
        for d in done_rx.try_iter() {
            absorb(d, &mut marks, &mut pending);
        }
        emit(&marks, &mut pending, true, sink)?;
        Ok(stats.unwrap_or_default())
    })
}

#[cfg(test)]
mod tests;
