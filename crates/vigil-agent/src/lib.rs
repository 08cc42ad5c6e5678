//! The vigil agent: samples host metrics every interval, raises threshold alerts, writes
//! everything to a bounded on-disk spool first, and ships it to the server in sealed
//! batches over mutual TLS, retrying with exponential backoff and jitter.
//!
//! Two tasks on the tokio runtime: the collector (its blocking sysinfo and file work runs
//! on `spawn_blocking`) and the shipper. They meet only at the spool, so a slow or absent
//! server never stalls collection. Packet capture runs on dedicated threads (see
//! [`capture`]): capture workers feed one detection thread running the `vigil-detect`
//! engine, whose alerts go to the spool at once and wake the shipper; each interval the
//! collector adds the capture's network statistics. The crate must not open listening
//! sockets or hold detection logic (that is `vigil-detect`).

pub mod capture;
mod config;
mod epoch;
mod netstats;
mod spool;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::{Notify, watch};
use vigil_hostmon::{Collector, ThresholdEvaluator, ThresholdEvent};
use vigil_model::{AgentId, AgentInfo, Item};
use vigil_pki::AgentCredential;
use vigil_wire::{MessageKind, SealParams, SealingKey};

pub use capture::{CaptureHandle, CaptureInput, CaptureStartError};
pub use config::{AgentOverrides, AgentSettings, CaptureSettings, EXAMPLE, check_url};
pub use spool::{Class, Spool, Taken};

/// Largest batch body sent, bytes (well under the server's envelope limit).
const MAX_BATCH_BYTES: u64 = 4 * 1024 * 1024;
/// Pause between priming the CPU counters and the first sample (sysinfo needs ≥ 200 ms).
const CPU_PRIME: Duration = Duration::from_millis(250);
/// How long shutdown waits for a last flush before leaving data in the spool.
const FLUSH_ON_EXIT: Duration = Duration::from_secs(3);

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No credential file was given.
    #[error(
        "no credential file: pass --credentials FILE (made on the server with `vigil certs agent ID --out FILE`) or set `credentials` in the config file"
    )]
    NoCredentials,
    /// No server URL anywhere.
    #[error(
        "no server URL: pass --server https://HOST:8443, set `server_url` in the config file, or issue the credential with --server"
    )]
    NoServer,
    /// The server URL is unusable.
    #[error("server URL: {0}")]
    BadServer(String),
    /// The credential file could not be used.
    #[error(transparent)]
    Credential(#[from] vigil_pki::PkiError),
    /// A state file is wrong.
    #[error("{path}: {message}")]
    State {
        /// The file or dir.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// File I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or dir.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl AgentError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        AgentError::Io { path: path.to_owned(), source }
    }
}

/// Counters a running agent exposes (for logs and tests).
#[derive(Debug, Default)]
pub struct AgentCounters {
    /// Samples taken.
    pub samples: AtomicU64,
    /// Batches the server stored.
    pub batches_sent: AtomicU64,
    /// Send attempts that failed.
    pub send_failures: AtomicU64,
}

/// A started agent.
pub struct RunningAgent {
    /// The agent's id (from its credential).
    pub agent_id: AgentId,
    /// This run's boot epoch.
    pub boot_epoch: u64,
    /// The state dir in use.
    pub state_dir: PathBuf,
    /// Live counters.
    pub counters: Arc<AgentCounters>,
    /// The packet capture, when it runs.
    pub capture: Option<Arc<CaptureHandle>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningAgent {
    /// Stops collecting, tries a last flush (up to 3 s), and leaves anything unsent in
    /// the spool for the next start.
    pub async fn shutdown(self) {
        if let Some(c) = self.capture.clone() {
            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
        }
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Stops at once without a last flush, as a crash or `kill -9` would (for tests of
    /// the spool; data already spooled is kept).
    pub fn abort(self) {
        if let Some(c) = &self.capture {
            c.stop();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts an agent with `settings`; returns once its tasks run.
pub async fn start(settings: AgentSettings) -> Result<RunningAgent, AgentError> {
    let cred_path = settings.credentials.clone().ok_or(AgentError::NoCredentials)?;
    let cred = AgentCredential::load(&cred_path)?;
    let server = settings.server_url.clone().or_else(|| cred.server_url.clone()).ok_or(AgentError::NoServer)?;
    check_url(&server).map_err(AgentError::BadServer)?;
    let state_dir = settings
        .state_dir
        .clone()
        .unwrap_or_else(|| cred_path.parent().unwrap_or(Path::new(".")).join(format!("{}.state", cred.agent_id)));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&state_dir)
            .map_err(|e| AgentError::io(&state_dir, e))?;
    }
    let boot_epoch = epoch::next_epoch(&state_dir)?;
    let spool = Arc::new(Spool::open(&state_dir.join("spool"), settings.spool_max_bytes)?);
    let tls = cred.client_tls_config()?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(settings.request_timeout)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("vigil-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AgentError::Client(e.to_string()))?;
    let url = format!("{}/agent/v1/ingest", server.trim_end_matches('/'));

    let (shutdown, rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let counters = Arc::new(AgentCounters::default());
    let agent_id = cred.agent_id.clone();
    tracing::info!(agent = %agent_id, boot_epoch, server = %server, state_dir = %state_dir.display(), "agent starting");

    let capture = start_capture(&settings, &agent_id, &spool, &wake);
    let collector = tokio::spawn(collect_loop(
        settings.clone(),
        agent_id.clone(),
        boot_epoch,
        (spool.clone(), wake.clone()),
        counters.clone(),
        capture.clone(),
        rx.clone(),
    ));
    let shipper = Shipper {
        client,
        url,
        key: cred.sealing_key.clone(),
        agent_id: agent_id.clone(),
        boot_epoch,
        seq: AtomicU64::new(0),
        spool,
        settings: settings.clone(),
        counters: counters.clone(),
    };
    let shipper = tokio::spawn(shipper.run(wake, rx));
    Ok(RunningAgent { agent_id, boot_epoch, state_dir, counters, capture, shutdown, tasks: vec![collector, shipper] })
}

/// Starts packet capture and detection if enabled. Failure is logged (with the missing
/// capability and the `setcap` line when that is the cause) and the agent goes on
/// without capture: host metrics keep flowing.
fn start_capture(
    settings: &AgentSettings,
    agent_id: &AgentId,
    spool: &Arc<Spool>,
    wake: &Arc<Notify>,
) -> Option<Arc<CaptureHandle>> {
    let c = &settings.capture;
    if !c.enabled {
        return None;
    }
    let input = match &c.pcap {
        Some(p) => CaptureInput::File(p.clone()),
        None => CaptureInput::Live(c.live.clone()),
    };
    let sink = capture::Sink { agent_id: agent_id.clone(), spool: spool.clone(), wake: wake.clone() };
    match capture::start(&input, &settings.detect, c.queue_batches, c.top_talkers, sink) {
        Ok(h) => Some(Arc::new(h)),
        Err(e) if e.is_permission() => {
            tracing::error!("{e}. Packet capture is off; host metrics go on.");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "packet capture could not start; host metrics go on");
            None
        }
    }
}

/// Runs an agent until `signal` completes, then shuts it down cleanly.
pub async fn run(settings: AgentSettings, signal: impl Future<Output = ()>) -> Result<(), AgentError> {
    let agent = start(settings).await?;
    signal.await;
    tracing::info!("agent shutting down");
    agent.shutdown().await;
    Ok(())
}

async fn collect_loop(
    settings: AgentSettings,
    agent_id: AgentId,
    boot_epoch: u64,
    (spool, wake): (Arc<Spool>, Arc<Notify>),
    counters: Arc<AgentCounters>,
    capture: Option<Arc<CaptureHandle>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let interval_ms = u64::try_from(settings.interval.as_millis()).unwrap_or(u64::MAX);
    let state = Arc::new(std::sync::Mutex::new((
        Collector::new(),
        ThresholdEvaluator::new(settings.thresholds.clone(), Some(agent_id.clone())),
    )));
    let info = Arc::new(AgentInfo {
        hostname: vigil_hostmon::host_name(),
        os: vigil_hostmon::os_version(),
        version: env!("CARGO_PKG_VERSION").into(),
        interval_ms,
    });
    // CPU use is a difference between two readings: give the first one time to mean something.
    tokio::time::sleep(CPU_PRIME).await;
    let mut ticker = tokio::time::interval(settings.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut index = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (state, spool, info, capture) = (state.clone(), spool.clone(), info.clone(), capture.clone());
        let this_index = index;
        let res = tokio::task::spawn_blocking(move || -> Result<(), AgentError> {
            let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
            let (collector, evaluator) = &mut *guard;
            let sample = collector.sample(Utc::now(), boot_epoch, this_index);
            let alerts: Vec<Item> = evaluator
                .observe(&sample)
                .into_iter()
                .map(|ev| match ev {
                    ThresholdEvent::Fire(a) => Item::Alert(a),
                    ThresholdEvent::Resolve(r) => Item::Resolved(r),
                })
                .collect();
            // Alerts first: if the disk fills, they are the last to go.
            spool.put(Class::Alerts, &alerts)?;
            let stats = spool.stats();
            let mut items = vec![Item::Sample(sample), Item::Heartbeat((*info).clone()), Item::Stats(stats)];
            if let Some(c) = &capture {
                items.push(Item::NetStats(c.take_netstats()));
            }
            spool.put(Class::Metrics, &items)
        })
        .await;
        match res {
            Ok(Ok(())) => {
                index += 1;
                counters.samples.fetch_add(1, Ordering::Relaxed);
                wake.notify_one();
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cannot spool this sample; will try again next interval"),
            Err(e) => tracing::error!(error = %e, "collector task failed"),
        }
    }
}

struct Shipper {
    client: reqwest::Client,
    url: String,
    key: SealingKey,
    agent_id: AgentId,
    boot_epoch: u64,
    seq: AtomicU64,
    spool: Arc<Spool>,
    settings: AgentSettings,
    counters: Arc<AgentCounters>,
}

enum SendError {
    /// Worth retrying as is (network, 5xx, 429).
    Retry(String),
    /// The server refused the message itself; retrying the same data will not help until
    /// something changes (revoked, wrong CA, clock), so back off to the maximum.
    Refused(String),
}

impl Shipper {
    async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = self.settings.backoff_initial;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let spool = self.spool.clone();
            let max_items = self.settings.batch_max_items;
            let taken = tokio::task::spawn_blocking(move || spool.take(max_items, MAX_BATCH_BYTES)).await;
            let taken = match taken {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "spool read task failed");
                    Taken::default()
                }
            };
            if taken.is_empty() {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            match self.send(&taken.items).await {
                Ok(()) => {
                    self.ack(taken).await;
                    backoff = self.settings.backoff_initial;
                }
                Err(err) => {
                    self.counters.send_failures.fetch_add(1, Ordering::Relaxed);
                    let delay = match &err {
                        SendError::Retry(why) => {
                            tracing::warn!(why, retry_in = ?backoff, "cannot reach the server; data stays spooled");
                            jitter(backoff)
                        }
                        SendError::Refused(why) => {
                            tracing::error!(why, "the server refused the batch; data stays spooled");
                            jitter(self.settings.backoff_max)
                        }
                    };
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        self.final_flush().await;
    }

    async fn ack(&self, taken: Taken) {
        let spool = self.spool.clone();
        let _ = tokio::task::spawn_blocking(move || spool.ack(taken)).await;
        self.counters.batches_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// One quick pass over what is left; whatever does not go stays in the spool.
    async fn final_flush(&self) {
        let deadline = tokio::time::Instant::now() + FLUSH_ON_EXIT;
        while !self.spool.is_empty() && tokio::time::Instant::now() < deadline {
            let taken = self.spool.take(self.settings.batch_max_items, MAX_BATCH_BYTES);
            match tokio::time::timeout_at(deadline, self.send(&taken.items)).await {
                Ok(Ok(())) => self.ack(taken).await,
                _ => break,
            }
        }
        let left = self.spool.stats();
        if left.spool_batches > 0 {
            tracing::info!(
                batches = left.spool_batches,
                bytes = left.spool_bytes,
                "unsent data kept in the spool for the next start"
            );
        }
    }

    async fn send(&self, items: &[Item]) -> Result<(), SendError> {
        // A fresh sequence number per attempt: a retry is a new message to the replay
        // window, and the server stores each item id once, so nothing is duplicated.
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let params = SealParams {
            agent_id: self.agent_id.clone(),
            boot_epoch: self.boot_epoch,
            seq,
            timestamp_ms: Utc::now().timestamp_millis(),
            kind: MessageKind::Batch,
        };
        let body = vigil_wire::seal_batch(&self.key, &params, items)
            .map_err(|e| SendError::Refused(format!("cannot seal batch: {e}")))?;
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Retry(error_chain(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
        let why = format!("HTTP {status}: {text}");
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(SendError::Retry(why))
        } else {
            Err(SendError::Refused(why))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A delay between half and all of `d`, so agents that lost the server together do not
/// come back in lockstep.
fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::rng().random_range(0.5..=1.0);
    d.mul_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(2));
            assert!(j >= Duration::from_secs(1) && j <= Duration::from_secs(2));
        }
    }
}
