//! The server's alert pipeline task: one [`vigil_pipeline::Pipeline`], owned by one tokio
//! task, fed from ingest through a bounded queue and ticked once a second with the server
//! clock. Its events become stored alerts, stored incidents, live events, agent status
//! changes and (for now) notification log lines. Operator actions taken through the API
//! (acknowledge or resolve a stored alert, add or remove a silence) come through the same
//! queue as [`Operator`] inputs, so the pipeline's own records and silences follow them.
//!
//! **Must not** block or slow ingest: inputs are offered with `try_send`, and when the queue
//! is full they are dropped from the pipeline only (everything is stored before it is
//! offered) and counted in [`PipelineCounters::dropped`]. Its state is saved to the
//! database every `pipeline.save_interval` and at shutdown, and restored at start; a saved
//! state that does not decode is reported and replaced, never fatal.
//!
//! **Threads**: one tokio task. Pipeline calls take microseconds; the awaits are the
//! database writes of the events, which the pipeline already rate-limits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use vigil_model::{AgentId, AgentInfo, Alert, AlertResolved, Item};
use vigil_pipeline::{
    Incident, IncidentKind, IpNet, MetricBatch, Pipeline, PipelineConfig, PipelineEvent, PipelineState, ResolveReason,
    SilenceMatcher, SilenceSpec, Subject,
};
use vigil_store::{IncidentRow, IncidentStatus, SilenceRow, Store};

use crate::events::{EventKind, new_alert_view};
use crate::state::AppState;

/// Who the pipeline's own actions are recorded as (e.g. `resolved_by` of a
/// `traffic_spike` that cleared).
pub const PIPELINE_ACTOR: &str = "pipeline";
/// Raw alert ids remembered to skip repeats (a batch resent after a lost reply carries the
/// same ids; the store counts them as duplicates and so must the pipeline).
const RECENT_IDS: usize = 65_536;
/// Records of alerts the pipeline raised, remembered to resolve the stored alert when the
/// record resolves. Oldest forgotten first.
const RAISED_RECORDS: usize = 65_536;
/// Inputs handled in one go before the task looks at its timers again.
const BURST: usize = 1024;

/// One input for the pipeline.
#[derive(Debug)]
pub enum Input {
    /// An alert as stored (its `agent` set to the sender).
    Alert(Box<Alert>),
    /// An agent says one of its alerts cleared.
    Resolved(AgentId, AlertResolved),
    /// An agent's heartbeat.
    Heartbeat(AgentId, Box<AgentInfo>),
    /// Metric values.
    Metrics(MetricBatch),
    /// Something people did through the API.
    Operator(Operator),
}

/// An operator action taken through the API on stored alerts or silences, passed on so the
/// pipeline's own records and silences follow (an acknowledged alert stays acknowledged
/// while it keeps counting; a silence mutes the pipeline's notifications and marks its
/// records and incidents as silenced).
#[derive(Debug)]
pub enum Operator {
    /// The stored alert with this id was acknowledged: so is the pipeline record whose
    /// first or latest occurrence it is (other occurrences are not indexed).
    Acknowledge(Uuid),
    /// The stored alert with this id was resolved: so is that record.
    Resolve(Uuid),
    /// A silence was stored: the pipeline keeps it under the same id.
    AddSilence(Box<SilenceRow>),
    /// The stored silence with this id was removed.
    RemoveSilence(Uuid),
}

/// How long an operator action may wait for room in a full queue before it is given up
/// (counted in [`PipelineCounters::dropped`] and logged).
const OPERATOR_WAIT: Duration = Duration::from_secs(5);

/// What the pipeline task did, for logs and `/metrics`.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    /// Inputs queued.
    pub queued: AtomicU64,
    /// Inputs dropped because the queue was full (they were stored, not analysed).
    pub dropped: AtomicU64,
    /// Alerts skipped because their id was seen moments before (resent batches).
    pub repeats: AtomicU64,
    /// Events the pipeline emitted.
    pub events: AtomicU64,
    /// Events whose storage failed (logged).
    pub event_failures: AtomicU64,
    /// State saves that succeeded.
    pub saves: AtomicU64,
    /// State saves that failed (logged; retried at the next interval).
    pub save_failures: AtomicU64,
}

/// The sending side of the pipeline queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PipelineFeed {
    tx: mpsc::Sender<Input>,
    /// Counters of the queue and the task.
    pub counters: Arc<PipelineCounters>,
}

impl PipelineFeed {
    /// Offers `input` without waiting; counts and (now and then) logs a drop.
    pub fn offer(&self, input: Input) {
        match self.tx.try_send(input) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // First drop, then every power of two: a flood cannot flood the log.
                if n.is_power_of_two() {
                    tracing::warn!(
                        dropped_total = n,
                        capacity = self.tx.max_capacity(),
                        "alert pipeline queue full: input stored but not analysed (raise pipeline.queue if this persists)"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Passes an operator action to the pipeline. Unlike ingest it waits for room in the
    /// queue (people act rarely, and an action silently lost would leave the pipeline
    /// notifying what was silenced), but at most [`OPERATOR_WAIT`].
    pub async fn command(&self, op: Operator) {
        match tokio::time::timeout(OPERATOR_WAIT, self.tx.send(Input::Operator(op))).await {
            Ok(Ok(())) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("alert pipeline stopped: an operator action reached storage but not the pipeline");
            }
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    wait_secs = OPERATOR_WAIT.as_secs(),
                    "alert pipeline queue full: an operator action reached storage but not the pipeline (raise \
                     pipeline.queue if this persists)"
                );
            }
        }
    }

    /// Inputs waiting in the queue now.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }

    /// Size of the queue (`pipeline.queue`).
    pub fn queue_capacity(&self) -> usize {
        self.tx.max_capacity()
    }

    /// Offers the items of one stored batch of `agent`.
    pub fn offer_batch(&self, agent: &AgentId, items: &[Item]) {
        for item in items {
            match item {
                Item::Alert(a) => {
                    let mut a = a.clone();
                    a.agent = Some(agent.clone());
                    self.offer(Input::Alert(Box::new(a)));
                }
                Item::Resolved(r) => self.offer(Input::Resolved(agent.clone(), r.clone())),
                Item::Heartbeat(info) => self.offer(Input::Heartbeat(agent.clone(), Box::new(info.clone()))),
                Item::Sample(s) => self.offer(Input::Metrics(MetricBatch::from_host_sample(agent.clone(), s))),
                Item::NetStats(n) => self.offer(Input::Metrics(MetricBatch::from_netstats(agent.clone(), n))),
                Item::Stats(_) => {}
            }
        }
    }
}

/// A queue and its receiving end, made before the state so the state can hold the feed.
pub fn channel(capacity: usize) -> (PipelineFeed, mpsc::Receiver<Input>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (PipelineFeed { tx, counters: Arc::default() }, rx)
}

/// The pipeline continuing from the state saved in `store`, or a fresh one when none is
/// saved or the saved one does not decode (reported as a warning naming the problem); its
/// silences are then made to match the silences in force in `store` (see [`sync_silences`]).
pub async fn restore(store: &Store, cfg: PipelineConfig) -> Result<Pipeline, vigil_pipeline::ConfigError> {
    let mut p = restore_state(store, cfg).await?;
    sync_silences(&mut p, store, Utc::now()).await;
    Ok(p)
}

/// Makes the pipeline's silences those in force in the database: one removed while the
/// server was down, or one whose operator command was given up on a full queue, is
/// corrected at the next start. A database error leaves the pipeline's own copy in place.
async fn sync_silences(p: &mut Pipeline, store: &Store, now: DateTime<Utc>) {
    let stored = match store.silences(now, false, vigil_store::PAGE_LIMIT_MAX).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the stored silences; the pipeline keeps the silences it saved");
            return;
        }
    };
    let keep: HashSet<Uuid> = stored.iter().map(|r| r.id).collect();
    let gone: Vec<Uuid> = p.silences().iter().map(|s| s.id).filter(|id| !keep.contains(id)).collect();
    for id in gone {
        // Listed just above, so it is there.
        let _ = p.remove_silence(id);
    }
    for row in &stored {
        match silence_spec(row) {
            Some(spec) => {
                if let Err(e) = p.add_silence_with_id(row.id, spec, now) {
                    tracing::warn!(silence = %row.id, error = %e, "a stored silence is not applied to the alert pipeline");
                }
            }
            None => {
                tracing::warn!(silence = %row.id, "a stored silence does not read as a pipeline silence; not applied")
            }
        }
    }
}

async fn restore_state(store: &Store, cfg: PipelineConfig) -> Result<Pipeline, vigil_pipeline::ConfigError> {
    let saved = match store.load_pipeline_state().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the saved pipeline state; starting with an empty pipeline");
            None
        }
    };
    let Some(saved) = saved else { return Pipeline::new(cfg) };
    match serde_json::from_str::<PipelineState>(&saved.state) {
        Ok(state) => {
            let p = Pipeline::restore(cfg, state)?;
            let c = p.counters();
            tracing::info!(
                saved_at = %saved.saved_at,
                open_alerts = c.open_alerts,
                open_incidents = c.open_incidents,
                "alert pipeline restored"
            );
            Ok(p)
        }
        Err(e) => {
            tracing::warn!(
                saved_at = %saved.saved_at,
                bytes = saved.state.len(),
                error = %e,
                "the saved pipeline state cannot be decoded (written by another version, or damaged); starting with \
                 an empty pipeline. Stored alerts and incidents are untouched; the saved state is replaced at the \
                 next save"
            );
            Pipeline::new(cfg)
        }
    }
}

/// Runs the pipeline until `stop` fires (or its sender is dropped), then handles what is
/// still queued and saves the state.
pub async fn run(
    mut p: Pipeline,
    state: AppState,
    mut rx: mpsc::Receiver<Input>,
    mut stop: oneshot::Receiver<()>,
    save_every: Duration,
) {
    let counters = state.pipeline.counters.clone();
    let mut task = Task { state, recent: RecentIds::default(), raised: RaisedRecords::default() };
    let mut events = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut save = tokio::time::interval_at(tokio::time::Instant::now() + save_every, save_every);
    save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut inputs = Vec::with_capacity(BURST);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            n = rx.recv_many(&mut inputs, BURST) => {
                if n == 0 {
                    break;
                }
                for input in inputs.drain(..) {
                    task.apply(&mut p, input, Utc::now(), &mut events);
                    task.handle(&p, &mut events).await;
                }
            }
            _ = tick.tick() => {
                p.tick(Utc::now(), &mut events);
                task.handle(&p, &mut events).await;
            }
            _ = save.tick() => task.save(&p).await,
        }
    }
    // Whatever ingest stored before the listener stopped is still queued: analyse it.
    rx.close();
    while let Some(input) = rx.recv().await {
        task.apply(&mut p, input, Utc::now(), &mut events);
        task.handle(&p, &mut events).await;
    }
    task.save(&p).await;
    tracing::info!(
        queued = counters.queued.load(Ordering::Relaxed),
        dropped = counters.dropped.load(Ordering::Relaxed),
        "alert pipeline stopped; state saved"
    );
}

struct Task {
    state: AppState,
    recent: RecentIds,
    raised: RaisedRecords,
}

impl Task {
    fn apply(&mut self, p: &mut Pipeline, input: Input, now: DateTime<Utc>, out: &mut Vec<PipelineEvent>) {
        match input {
            Input::Alert(a) => {
                if self.recent.seen(a.id) {
                    self.state.pipeline.counters.repeats.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                // The pipeline windows on the alert's own timestamp and treats alerts
                // older than `lifecycle.backfill_age_secs`, or from an agent's offline
                // spell, as backfill: stored, never raised anew.
                p.ingest_alert(&a, now, out);
            }
            Input::Resolved(agent, r) => {
                p.ingest_resolved(&agent, &r, now, out);
            }
            Input::Heartbeat(agent, info) => p.heartbeat(&agent, Some(&info), now, out),
            Input::Metrics(batch) => p.ingest_metrics(&batch, now, out),
            Input::Operator(op) => operate(p, op, now, out),
        }
    }

    async fn handle(&mut self, p: &Pipeline, events: &mut Vec<PipelineEvent>) {
        let counters = self.state.pipeline.counters.clone();
        for e in events.drain(..) {
            counters.events.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.handle_one(p, e).await {
                counters.event_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "cannot store a pipeline event");
            }
        }
    }

    async fn handle_one(&mut self, p: &Pipeline, e: PipelineEvent) -> Result<(), vigil_store::StoreError> {
        let state = &self.state;
        match e {
            PipelineEvent::AlertRaised(a) => {
                let now = Utc::now();
                if state.store.insert_alert(&a, None, now).await? {
                    state.counters.alerts.fetch_add(1, Ordering::Relaxed);
                    state.events.publish(EventKind::Alert, &new_alert_view(&a, now, None));
                }
                self.raised.expect(a.id);
            }
            PipelineEvent::AlertOpened(r) | PipelineEvent::AlertUpdated(r) => {
                self.raised.link(r.id, r.first_alert_id);
            }
            PipelineEvent::AlertBackfilled { .. } => {}
            PipelineEvent::IncidentOpened(i) | PipelineEvent::IncidentUpdated(i) => {
                state.record_incident(&incident_row(&i, p, Utc::now())).await?;
            }
            PipelineEvent::Resolved { subject: Subject::Incident(id), at, reason } => {
                if let Some(mut row) = state.store.incident(id).await?
                    && row.status != IncidentStatus::Resolved
                {
                    row.status = IncidentStatus::Resolved;
                    row.updated_at = at;
                    if let Some(obj) = row.evidence.as_object_mut() {
                        obj.insert("resolved_reason".into(), serde_json::json!(reason));
                    }
                    state.record_incident(&row).await?;
                }
            }
            PipelineEvent::Resolved { subject: Subject::Alert(record), at, reason } => {
                // Only the pipeline's own alerts: an agent's alert is resolved by its agent
                // or by people, not by the pipeline forgetting it.
                if let Some(alert) = self.raised.take(record)
                    && reason != ResolveReason::Operator
                    && state.store.resolve_alert_by(alert, PIPELINE_ACTOR, at).await? == vigil_store::Change::Done
                {
                    state.events.publish(
                        EventKind::AlertUpdate,
                        &serde_json::json!({"id": alert, "status": "resolved", "resolved_at": at}),
                    );
                }
            }
            PipelineEvent::Notify(n) => {
                // Notifiers are not built yet; until then a structured line per
                // notification. Titles hold categories and addresses, never secrets.
                let subject = match n.subject {
                    Subject::Alert(id) => format!("alert record {id}"),
                    Subject::Incident(id) => format!("incident {id}"),
                };
                tracing::info!(
                    target: "vigil::notify",
                    %subject,
                    severity = %n.severity,
                    reason = ?n.reason,
                    at = %n.at,
                    title = %n.title,
                    "notification"
                );
            }
            PipelineEvent::AgentStatus { agent, online, at } => state.note_agent_status(&agent, online, at),
            PipelineEvent::SilenceExpired { id } => tracing::debug!(%id, "pipeline silence expired"),
        }
        Ok(())
    }

    async fn save(&self, p: &Pipeline) {
        let counters = &self.state.pipeline.counters;
        let json = match serde_json::to_string(p.state()) {
            Ok(j) => j,
            Err(e) => {
                counters.save_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "cannot encode the pipeline state; not saved");
                return;
            }
        };
        match self.state.store.save_pipeline_state(&json, Utc::now()).await {
            Ok(()) => {
                counters.saves.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(bytes = json.len(), "pipeline state saved");
            }
            Err(e) => {
                counters.save_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "cannot save the pipeline state; will retry");
            }
        }
    }
}

/// Applies an operator action to the pipeline. What it does not hold (a record already
/// resolved or forgotten, a silence already gone) is not an error: storage has the action.
fn operate(p: &mut Pipeline, op: Operator, now: DateTime<Utc>, out: &mut Vec<PipelineEvent>) {
    let outcome = match op {
        Operator::Acknowledge(alert) => match p.record_of_alert(alert) {
            Some(r) => p.acknowledge(Subject::Alert(r), now, out),
            None => Ok(()),
        },
        Operator::Resolve(alert) => match p.record_of_alert(alert) {
            Some(r) => p.resolve(Subject::Alert(r), now, out),
            None => Ok(()),
        },
        Operator::AddSilence(row) => match silence_spec(&row) {
            Some(spec) => p.add_silence_with_id(row.id, spec, now).map(|_| ()),
            None => {
                tracing::warn!(silence = %row.id, "a stored silence does not read as a pipeline silence; not applied");
                Ok(())
            }
        },
        Operator::RemoveSilence(id) => match p.remove_silence(id) {
            Ok(_) | Err(vigil_pipeline::PipelineError::NoSuchSilence(_)) => Ok(()),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "operator action not applied to the alert pipeline");
    }
}

/// The pipeline's form of a stored silence (the API validated its fields when storing it).
fn silence_spec(row: &SilenceRow) -> Option<SilenceSpec> {
    let matcher = SilenceMatcher {
        category: row.category.as_deref().map(str::parse).transpose().ok()?,
        agent: row.agent.as_deref().map(|a| AgentId::new(a.to_owned())).transpose().ok()?,
        source: row.source.as_deref().map(str::parse::<IpNet>).transpose().ok()?,
    };
    Some(SilenceSpec { matcher, expires_at: row.expires_at, comment: row.comment.clone() })
}

/// The stored form of a pipeline incident (`updated_at` = `now`, the server clock).
pub fn incident_row(i: &Incident, p: &Pipeline, now: DateTime<Utc>) -> IncidentRow {
    // Raw alert ids: those the incident lists (DoS, monitor) and, for grouped incidents,
    // the first and latest occurrence of each of its records still in memory.
    let mut seen = HashSet::new();
    let mut alert_ids = Vec::new();
    let records = i.records.iter().filter_map(|r| p.alert_record(*r));
    for id in i.alert_ids.iter().copied().chain(records.flat_map(|r| [r.first_alert_id, r.last_alert_id])) {
        if seen.insert(id) {
            alert_ids.push(id);
        }
    }
    let kind = serde_json::to_value(i.kind).unwrap_or_default();
    let category = match i.kind {
        IncidentKind::DosSuspected => vigil_model::Category::DosSuspected.to_string(),
        _ => i.categories.first().map_or_else(|| kind.as_str().unwrap_or("incident").to_owned(), |c| c.to_string()),
    };
    let target = i.target.or(i.source).map(|a| a.to_string()).or_else(|| i.peer.clone());
    let mut evidence = serde_json::json!({
        "kind": kind,
        "agents": i.agents,
        "categories": i.categories,
        "count": i.count,
        "source": i.source,
        "target": i.target,
        "peer": i.peer,
        "records": i.records,
        "silenced": i.silenced,
        "last_seen": i.last_seen,
    });
    if let (Some(obj), Some(rule)) = (evidence.as_object_mut(), i.evidence.as_object()) {
        for (k, v) in rule {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    IncidentRow {
        id: i.id,
        opened_at: i.first_seen,
        updated_at: now,
        status: match i.state {
            vigil_pipeline::State::Open => IncidentStatus::Open,
            vigil_pipeline::State::Acknowledged => IncidentStatus::Acknowledged,
            vigil_pipeline::State::Resolved => IncidentStatus::Resolved,
        },
        severity: i.severity,
        title: i.title.clone(),
        category,
        target,
        alert_ids,
        evidence,
    }
}

/// The last [`RECENT_IDS`] alert ids, oldest forgotten first.
#[derive(Default)]
struct RecentIds {
    order: VecDeque<Uuid>,
    set: HashSet<Uuid>,
}

impl RecentIds {
    /// Whether `id` was seen; remembers it.
    fn seen(&mut self, id: Uuid) -> bool {
        if !self.set.insert(id) {
            return true;
        }
        self.order.push_back(id);
        if self.order.len() > RECENT_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        false
    }
}

/// Record id → the stored alert the pipeline raised for it, for at most
/// [`RAISED_RECORDS`] records (oldest forgotten first: such an alert then stays open in
/// storage until people resolve it).
#[derive(Default)]
struct RaisedRecords {
    pending: Option<Uuid>,
    by_record: HashMap<Uuid, Uuid>,
    order: VecDeque<Uuid>,
}

impl RaisedRecords {
    /// The pipeline just raised `alert`; its record follows.
    fn expect(&mut self, alert: Uuid) {
        self.pending = Some(alert);
    }

    fn link(&mut self, record: Uuid, first_alert: Uuid) {
        if self.pending != Some(first_alert) {
            return;
        }
        self.pending = None;
        if self.by_record.insert(record, first_alert).is_none() {
            self.order.push_back(record);
        }
        while self.by_record.len() > RAISED_RECORDS {
            match self.order.pop_front() {
                Some(old) => {
                    self.by_record.remove(&old);
                }
                None => break,
            }
        }
    }

    fn take(&mut self, record: Uuid) -> Option<Uuid> {
        let alert = self.by_record.remove(&record)?;
        self.order.retain(|r| *r != record);
        Some(alert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_are_bounded_and_forget_oldest_first() {
        let mut r = RecentIds::default();
        let ids: Vec<Uuid> = (0..RECENT_IDS as u128 + 10).map(Uuid::from_u128).collect();
        for id in &ids {
            assert!(!r.seen(*id));
        }
        assert!(r.set.len() <= RECENT_IDS && r.order.len() <= RECENT_IDS);
        assert!(r.seen(ids[ids.len() - 1]), "a recent id is a repeat");
        assert!(!r.seen(ids[0]), "the oldest was forgotten");
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v.db")).await.unwrap();
        (dir, store)
    }

    fn scan(now: DateTime<Utc>) -> Alert {
        let mut a = Alert::new(vigil_model::Category::PortScan, now, "scan");
        a.agent = AgentId::new("a1").ok();
        a.src_ip = "192.0.2.1".parse().ok();
        a
    }

    #[tokio::test]
    async fn restore_makes_the_pipeline_silences_those_in_force_in_the_database() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        let row = |id: Uuid, source: &str| SilenceRow {
            id,
            category: Some("port_scan".into()),
            agent: None,
            source: Some(source.into()),
            comment: "maintenance".into(),
            created_at: now,
            created_by: "ops".into(),
            expires_at: now + chrono::Duration::hours(1),
            removed_at: None,
            removed_by: None,
        };
        let (kept, removed, missed) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        // The pipeline saved two silences; one of them was removed while the server was down,
        // and a third was stored but its command never reached the pipeline.
        let mut p = Pipeline::new(PipelineConfig::default()).unwrap();
        for id in [kept, removed] {
            p.add_silence_with_id(id, silence_spec(&row(id, "10.0.0.0/8")).unwrap(), now).unwrap();
        }
        store.save_pipeline_state(&serde_json::to_string(p.state()).unwrap(), now).await.unwrap();
        for id in [kept, removed, missed] {
            store.insert_silence(&row(id, "192.0.2.0/24")).await.unwrap();
        }
        store.remove_silence(removed, "ops", now).await.unwrap();
        let back = restore(&store, PipelineConfig::default()).await.unwrap();
        let mut ids: Vec<Uuid> = back.silences().iter().map(|s| s.id).collect();
        ids.sort();
        let mut want = vec![kept, missed];
        want.sort();
        assert_eq!(ids, want);
        // The stored form wins: the kept silence now matches what the database says.
        let k = back.silences().iter().find(|s| s.id == kept).unwrap();
        assert_eq!(k.matcher.source.map(|n| n.to_string()).as_deref(), Some("192.0.2.0/24"));
    }

    #[tokio::test]
    async fn a_saved_state_is_restored() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        let mut p = Pipeline::new(PipelineConfig::default()).unwrap();
        p.ingest_alert(&scan(now), now, &mut Vec::new());
        store.save_pipeline_state(&serde_json::to_string(p.state()).unwrap(), now).await.unwrap();
        let back = restore(&store, PipelineConfig::default()).await.unwrap();
        assert_eq!(back.counters().open_alerts, 1);
        assert_eq!(back.open_alerts().next().map(|r| r.id), p.open_alerts().next().map(|r| r.id));
    }

    #[tokio::test]
    async fn a_state_that_does_not_decode_starts_fresh_and_touches_nothing_else() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        let kept = scan(now);
        assert!(store.insert_alert(&kept, None, now).await.unwrap());
        let mut p = Pipeline::new(PipelineConfig::default()).unwrap();
        p.ingest_alert(&scan(now), now, &mut Vec::new());
        let good = serde_json::to_string(p.state()).unwrap();
        for bad in [&good[..good.len() / 2], "{\"lifecycle\": 42}", "not json", ""] {
            store.save_pipeline_state(bad, now).await.unwrap();
            let fresh = restore(&store, PipelineConfig::default()).await.unwrap();
            assert_eq!(fresh.counters().open_alerts, 0, "{bad:?}");
            assert!(store.alert_view(kept.id).await.unwrap().is_some(), "other data is untouched");
            assert_eq!(store.load_pipeline_state().await.unwrap().unwrap().state, bad, "kept until the next save");
        }
    }

    #[test]
    fn raised_records_link_only_the_alert_just_raised() {
        let mut r = RaisedRecords::default();
        let (a, rec, other) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        r.link(other, Uuid::from_u128(9));
        assert!(r.by_record.is_empty(), "an agent's record is not linked");
        r.expect(a);
        r.link(rec, a);
        assert_eq!(r.take(rec), Some(a));
        assert_eq!(r.take(rec), None);
    }
}
