//! Live events: what the dashboard and other clients receive as Server-Sent Events on
//! `GET /api/v1/events` (new and changed alerts, incidents, agent status, metric samples,
//! blocks and silences).
//!
//! Every event gets an id that only grows, even across restarts: ids start at the start
//! time in milliseconds times 1000. The newest [`RING_CAPACITY`] events are kept in memory
//! so a client that reconnects with `Last-Event-ID` gets everything it missed; a client
//! whose id is older than the ring (or newer than the last event, after a clock change)
//! gets a `reset` event telling it to reload its state through the REST API.
//!
//! Publishing never blocks and never waits for a slow client: the broadcast channel drops
//! a lagging client's backlog and that client gets `reset` too.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast;
use vigil_model::{AgentId, Alert, Item};
use vigil_store::{AlertStatus, AlertView, MetricPoint, StoredAlert};

use crate::api::Params;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Events kept for clients that reconnect.
pub const RING_CAPACITY: usize = 10_000;
/// Events a live client may fall behind before it is told to reload.
const CHANNEL_CAPACITY: usize = 4096;
/// What a client is told to wait before reconnecting after a dropped stream (browsers
/// default to about 3 s).
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
/// Event streams open at once.
pub const MAX_STREAMS: usize = 1024;

/// What an event is about; the SSE `event:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new alert (data: the alert with its status).
    Alert,
    /// An alert changed status (data: the alert, or `{id, status, resolved_at}`).
    AlertUpdate,
    /// An incident opened or changed (data: the incident).
    Incident,
    /// An agent came online or went offline (data: `{id, status, last_seen}`).
    Agent,
    /// A new metric sample (data: `{agent, point}`).
    Metric,
    /// A block was added or removed.
    Block,
    /// A silence was added or removed.
    Silence,
    /// Network statistics from an agent's capture (data: `{agent, stats}`).
    NetStats,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 8] = [
        EventKind::Alert,
        EventKind::AlertUpdate,
        EventKind::Incident,
        EventKind::Agent,
        EventKind::Metric,
        EventKind::Block,
        EventKind::Silence,
        EventKind::NetStats,
    ];

    /// The SSE event name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Alert => "alert",
            EventKind::AlertUpdate => "alert_update",
            EventKind::Incident => "incident",
            EventKind::Agent => "agent",
            EventKind::Metric => "metric",
            EventKind::Block => "block",
            EventKind::Silence => "silence",
            EventKind::NetStats => "netstats",
        }
    }

    fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One published event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its id; ids only grow.
    pub id: u64,
    /// What it is about.
    pub kind: EventKind,
    /// Its data, JSON text.
    pub data: String,
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    /// The id the next event gets.
    next_id: u64,
}

/// What the ring holds after a client's last id.
#[derive(Debug)]
pub enum Backlog {
    /// These events, oldest first (possibly none).
    Events(Vec<Arc<Event>>),
    /// The client missed events the ring no longer holds: it must reload. Carries the id
    /// of the newest event, which the `reset` event takes as its own.
    Reset(u64),
}

/// The event hub: a bounded ring for resuming and a broadcast channel for live clients.
pub struct EventHub {
    ring: Mutex<Ring>,
    capacity: usize,
    tx: broadcast::Sender<Arc<Event>>,
    /// Events published since start.
    pub published: AtomicU64,
    /// Event streams open now.
    pub streams: AtomicUsize,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl EventHub {
    /// A hub keeping `capacity` events whose first id is `first_id` (at least 1).
    pub fn new(capacity: usize, first_id: u64) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        EventHub {
            ring: Mutex::new(Ring { events: VecDeque::new(), next_id: first_id.max(1) }),
            capacity: capacity.max(1),
            tx,
            published: AtomicU64::new(0),
            streams: AtomicUsize::new(0),
        }
    }

    /// A hub whose ids start above any id an earlier run of the server gave (start time
    /// in milliseconds, times 1000: a thousand events per millisecond of uptime before
    /// a restart could reuse an id; still below 2^53, so JavaScript reads ids exactly).
    pub fn starting_now(capacity: usize) -> Self {
        let ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(1);
        EventHub::new(capacity, ms.saturating_mul(1000))
    }

    /// Publishes an event; returns its id. Never blocks on clients.
    pub fn publish(&self, kind: EventKind, data: &impl Serialize) -> u64 {
        let data = match serde_json::to_string(data) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, kind = kind.as_str(), "cannot encode event");
                return 0;
            }
        };
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let id = ring.next_id;
        ring.next_id += 1;
        let ev = Arc::new(Event { id, kind, data });
        if ring.events.len() >= self.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(ev.clone());
        // Sent under the lock so live clients see events in id order.
        let _ = self.tx.send(ev);
        drop(ring);
        self.published.fetch_add(1, Ordering::Relaxed);
        id
    }

    /// A receiver of the events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// The events after `last` still in the ring, or [`Backlog::Reset`] when some of
    /// them are gone (or `last` is in the future).
    pub fn since(&self, last: u64) -> Backlog {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let head = ring.next_id - 1;
        if last > head {
            return Backlog::Reset(head);
        }
        let oldest = ring.events.front().map_or(ring.next_id, |e| e.id);
        if last + 1 < oldest {
            return Backlog::Reset(head);
        }
        Backlog::Events(ring.events.iter().filter(|e| e.id > last).cloned().collect())
    }

    /// The id of the newest event (the first id minus one before any).
    pub fn head(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).next_id - 1
    }

    /// Events held for resuming.
    pub fn len(&self) -> usize {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).events.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---- what ingest and the routes publish ---------------------------------------------

/// An alert as the API shows it, right after it was stored.
pub fn new_alert_view(alert: &Alert, received_at: DateTime<Utc>, peer: Option<&str>) -> AlertView {
    AlertView {
        stored: StoredAlert {
            alert: alert.clone(),
            received_at,
            resolved_at: None,
            peer_addr: peer.map(str::to_owned),
        },
        status: AlertStatus::Open,
        acked_at: None,
        acked_by: None,
        resolved_by: None,
    }
}

/// Publishes what a stored batch brought: alerts, resolutions, samples, and the agent's
/// status when it changes. Called by ingest after the batch is committed.
pub fn publish_batch(state: &AppState, agent: &AgentId, peer: &str, received_at: DateTime<Utc>, items: &[Item]) {
    let hub = &state.events;
    state.set_agent_online(agent, received_at);
    for item in items {
        match item {
            Item::Alert(a) => {
                let mut a = a.clone();
                a.agent = Some(agent.clone());
                hub.publish(EventKind::Alert, &new_alert_view(&a, received_at, Some(peer)));
            }
            Item::Resolved(r) => {
                hub.publish(
                    EventKind::AlertUpdate,
                    &serde_json::json!({"id": r.alert_id, "status": "resolved", "resolved_at": r.at}),
                );
            }
            Item::Sample(s) => {
                state.latest.note_sample(agent, s);
                hub.publish(
                    EventKind::Metric,
                    &serde_json::json!({"agent": agent, "point": MetricPoint::from_sample(s)}),
                );
            }
            Item::NetStats(n) => {
                state.latest.note_netstats(agent, n);
                hub.publish(EventKind::NetStats, &serde_json::json!({"agent": agent, "stats": n}));
            }
            Item::Heartbeat(_) | Item::Stats(_) => {}
        }
    }
}

// ---- the route ---------------------------------------------------------------------

struct StreamGuard(Arc<EventHub>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

struct StreamState {
    backlog: VecDeque<SseEvent>,
    rx: broadcast::Receiver<Arc<Event>>,
    last_sent: u64,
    kinds: Option<Vec<EventKind>>,
    hub: Arc<EventHub>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    _guard: StreamGuard,
}

fn sse_of(e: &Event) -> SseEvent {
    SseEvent::default().id(e.id.to_string()).event(e.kind.as_str()).data(&e.data)
}

fn reset_event(head: u64) -> SseEvent {
    SseEvent::default()
        .id(head.to_string())
        .event("reset")
        .data(r#"{"reason":"events were missed; reload state through the REST API"}"#)
}

fn wanted(kinds: &Option<Vec<EventKind>>, k: EventKind) -> bool {
    kinds.as_ref().is_none_or(|ks| ks.contains(&k))
}

/// `GET /api/v1/events`: Server-Sent Events, resumable with `Last-Event-ID`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "Id of the last event received; the stream resumes after it"),
        ("last_event_id" = Option<String>, Query, description = "Same as the Last-Event-ID header, for clients that cannot set headers"),
        ("types" = Option<String>, Query, description = "Comma-separated event types to receive: alert, alert_update, incident, agent, metric, netstats, block, silence (default: all)"),
    ),
    responses(
        (status = 200, description = "An endless text/event-stream. Each event has an id, a type and JSON data; a `reset` event means events were missed and the client should reload.", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad parameter", body = crate::api::ErrorBody),
        (status = 401, description = "Not authenticated", body = crate::api::ErrorBody),
        (status = 503, description = "Too many event streams open", body = crate::api::ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(raw): Query<std::collections::BTreeMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    caller.require(crate::apikey::Role::Viewer)?;
    let p = Params::new(raw, &["last_event_id", "types"])?;
    let last =
        match headers.get("last-event-id") {
            Some(v) => {
                Some(v.to_str().ok().map(str::trim).and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| {
                    ApiError::bad_request("header `Last-Event-ID`: expected the numeric id of an event")
                })?)
            }
            None => p.u64("last_event_id")?,
        };
    let kinds = match p.get("types") {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|t| {
                    EventKind::parse(t.trim()).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "query parameter `types`: unknown event type {:?}; expected some of: {}",
                            t.chars().take(40).collect::<String>(),
                            EventKind::ALL.map(EventKind::as_str).join(", ")
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let hub = state.events.clone();
    if hub.streams.fetch_add(1, Ordering::Relaxed) >= MAX_STREAMS {
        hub.streams.fetch_sub(1, Ordering::Relaxed);
        let mut e = ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many event streams are open; try again later",
        );
        e.retry_after = Some(5);
        return Err(e);
    }
    let guard = StreamGuard(hub.clone());
    // Subscribe before reading the ring: nothing published in between is lost, and
    // events seen twice are skipped by id.
    let rx = hub.subscribe();
    let mut backlog = VecDeque::new();
    let mut last_sent = hub.head();
    if last.is_none() {
        // A position from the first moment, so a reconnect resumes from here.
        backlog.push_back(
            SseEvent::default()
                .id(last_sent.to_string())
                .event("ready")
                .retry(RECONNECT_AFTER)
                .data(format!(r#"{{"head":{last_sent}}}"#)),
        );
    }
    if let Some(last) = last {
        match hub.since(last) {
            Backlog::Events(evs) => {
                last_sent = last;
                for e in evs {
                    last_sent = e.id;
                    if wanted(&kinds, e.kind) {
                        backlog.push_back(sse_of(&e));
                    }
                }
            }
            Backlog::Reset(head) => {
                last_sent = head;
                backlog.push_back(reset_event(head));
            }
        }
    }
    let st = StreamState { backlog, rx, last_sent, kinds, hub, shutdown: state.shutdown.clone(), _guard: guard };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(ev) = st.backlog.pop_front() {
                return Some((Ok(ev), st));
            }
            let got = tokio::select! {
                r = st.rx.recv() => r,
                _ = st.shutdown.changed() => return None,
            };
            match got {
                Ok(e) if e.id <= st.last_sent => {}
                Ok(e) => {
                    st.last_sent = e.id;
                    if wanted(&st.kinds, e.kind) {
                        return Some((Ok(sse_of(&e)), st));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow: what was dropped cannot be replayed in order; reload.
                    let head = st.hub.head();
                    st.last_sent = head;
                    st.rx = st.rx.resubscribe();
                    return Some((Ok(reset_event(head)), st));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_and_ring_is_bounded() {
        let hub = EventHub::new(3, 10);
        let ids: Vec<u64> = (0..5).map(|i| hub.publish(EventKind::Metric, &i)).collect();
        assert_eq!(ids, [10, 11, 12, 13, 14]);
        assert_eq!(hub.len(), 3);
        assert_eq!(hub.head(), 14);
        match hub.since(12) {
            Backlog::Events(e) => assert_eq!(e.iter().map(|e| e.id).collect::<Vec<_>>(), [13, 14]),
            Backlog::Reset(_) => panic!("12 is still covered"),
        }
        match hub.since(11) {
            Backlog::Events(e) => assert_eq!(e.len(), 3),
            Backlog::Reset(_) => panic!("11 is the one just before the oldest"),
        }
        assert!(matches!(hub.since(10), Backlog::Reset(14)), "event 11 is gone");
        assert!(matches!(hub.since(99), Backlog::Reset(14)), "from the future");
        match hub.since(14) {
            Backlog::Events(e) => assert!(e.is_empty()),
            Backlog::Reset(_) => panic!("up to date"),
        }
    }

    #[test]
    fn empty_hub_resumes_from_its_start() {
        let hub = EventHub::new(3, 100);
        assert!(matches!(hub.since(99), Backlog::Events(ref e) if e.is_empty()));
        assert!(matches!(hub.since(5), Backlog::Reset(99)));
    }

    #[tokio::test]
    async fn live_subscribers_get_events_in_order() {
        let hub = EventHub::new(10, 1);
        let mut rx = hub.subscribe();
        hub.publish(EventKind::Alert, &"a");
        hub.publish(EventKind::Block, &"b");
        let a = rx.recv().await.unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!((a.id, a.kind, a.data.as_str()), (1, EventKind::Alert, "\"a\""));
        assert_eq!((b.id, b.kind), (2, EventKind::Block));
    }
}
