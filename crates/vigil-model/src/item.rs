use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AgentInfo, AgentStats, Alert, Category, HostSample, NetStats};

/// One thing an agent reports. A sealed batch carries a list of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Item {
    /// A host metrics sample.
    Sample(HostSample),
    /// An alert raised on the agent.
    Alert(Alert),
    /// A condition behind an earlier alert has cleared.
    Resolved(AlertResolved),
    /// The agent is alive; what it says about itself.
    Heartbeat(AgentInfo),
    /// The agent's own counters (spool use and drops).
    Stats(AgentStats),
    /// Network statistics from the agent's packet capture for one interval. Appended
    /// last: postcard numbers variants by position, so older items keep their encoding.
    NetStats(NetStats),
}

/// The condition behind alert `alert_id` is back to normal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertResolved {
    /// Id of the alert that fired.
    pub alert_id: Uuid,
    /// Its category, for readers that do not have the alert at hand.
    pub category: Category,
    /// When the condition cleared.
    pub at: DateTime<Utc>,
}
