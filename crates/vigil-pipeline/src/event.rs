//! What the pipeline tells the server: typed events to store and push to the dashboard.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_model::{AgentId, Alert, Severity};

use crate::lifecycle::{AlertRecord, Incident};

/// An alert record or an incident, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    /// An [`AlertRecord`] (a deduplicated alert).
    Alert(Uuid),
    /// An [`Incident`].
    Incident(Uuid),
}

/// Why an alert record or incident was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolveReason {
    /// Nothing new arrived for the quiet period.
    Quiet,
    /// An operator resolved it.
    Operator,
    /// Its source said the condition cleared (an agent's `AlertResolved`, a baseline back
    /// to normal, an anomaly that ended).
    Cleared,
    /// A baseline adapted to a lasting change: the new level is normal.
    Adapted,
    /// The agent that was offline is back.
    AgentReturned,
    /// Resolved early to make room: the open-alert or open-incident cap was reached.
    Evicted,
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyReason {
    /// It just opened.
    Opened,
    /// Its severity rose.
    Escalated,
}

/// Something people should hear about now (not silenced, not backfill, severe enough).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// What it is about.
    pub subject: Subject,
    /// Its severity now.
    pub severity: Severity,
    /// One line for the message title.
    pub title: String,
    /// Why now.
    pub reason: NotifyReason,
    /// When (injected clock).
    pub at: DateTime<Utc>,
}

/// One thing that happened inside the pipeline. The server stores them in order and pushes
/// them to the dashboard; `Notify` goes to the notifiers.
///
/// Records and incidents come as `Arc`s: a snapshot of the item when the event was made,
/// shared with the pipeline rather than copied (the pipeline copies an item only if it
/// changes while an event still holds it). Serialized as the bare item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum PipelineEvent {
    /// The pipeline raised an alert of its own (`traffic_spike`, `metric_anomaly`,
    /// `dos_suspected`, `agent_offline`): store it like an agent's alert. Its record
    /// follows as `AlertOpened` or `AlertUpdated`.
    AlertRaised(Alert),
    /// A new alert record opened.
    #[serde(with = "shared")]
    AlertOpened(Arc<AlertRecord>),
    /// An open record changed (count, severity, state, incident link). Updates of one
    /// record are rate-limited; `tick` flushes the latest.
    #[serde(with = "shared")]
    AlertUpdated(Arc<AlertRecord>),
    /// An old alert (spool backfill, or older than `backfill_age_secs`): store it, but it
    /// opened nothing and notified no one.
    AlertBackfilled {
        /// The raw alert's id.
        alert_id: Uuid,
        /// The agent that sent it.
        agent: Option<AgentId>,
        /// The open record it was counted into, if one existed.
        merged_into: Option<Uuid>,
    },
    /// A new incident opened.
    #[serde(with = "shared")]
    IncidentOpened(Arc<Incident>),
    /// An open incident changed.
    #[serde(with = "shared")]
    IncidentUpdated(Arc<Incident>),
    /// An alert record or incident was resolved and left the pipeline's memory.
    Resolved {
        /// Which.
        subject: Subject,
        /// When (injected clock).
        at: DateTime<Utc>,
        /// Why.
        reason: ResolveReason,
    },
    /// Tell people.
    Notify(Notification),
    /// An agent went offline (missed heartbeats) or came back.
    AgentStatus {
        /// The agent.
        agent: AgentId,
        /// Whether it is online now.
        online: bool,
        /// When the change was noticed (injected clock).
        at: DateTime<Utc>,
    },
    /// A silence reached its expiry and was removed.
    SilenceExpired {
        /// Its id.
        id: Uuid,
    },
}

/// Serde for `Arc<T>` as a bare `T` (the `rc` feature of serde, without turning it on for
/// the whole workspace).
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<T: Serialize, S: Serializer>(v: &Arc<T>, s: S) -> Result<S::Ok, S::Error> {
        T::serialize(v, s)
    }

    pub(super) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Arc<T>, D::Error> {
        T::deserialize(d).map(Arc::new)
    }
}
