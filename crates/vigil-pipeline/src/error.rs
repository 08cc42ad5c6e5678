//! Errors of the pipeline's operator-facing calls (acknowledge, resolve, silences).

use uuid::Uuid;

use crate::event::Subject;

/// An operator request the pipeline could not carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// No open alert record or incident has this id (it may be resolved already).
    #[error("no open {} with id {}; it may be resolved already (resolved items live in storage only)", subject_kind(.0), subject_id(.0))]
    NotFound(Subject),
    /// A silence must match on at least one field.
    #[error("a silence needs at least one of category, agent or source; an empty one would silence everything")]
    SilenceMatchesEverything,
    /// A silence must expire after it is created.
    #[error("silence expiry {expires_at} is not after now ({now}); give a time in the future")]
    SilenceExpiry {
        /// The expiry given (RFC 3339).
        expires_at: String,
        /// The injected clock (RFC 3339).
        now: String,
    },
    /// Too many silences.
    #[error("silence limit of {0} reached; remove expired or unused silences first")]
    TooManySilences(usize),
    /// No silence has this id.
    #[error("no silence with id {0}")]
    NoSuchSilence(Uuid),
    /// A source network did not parse.
    #[error("source {input:?} is not an address or CIDR network (e.g. 10.0.0.0/8 or 2001:db8::/32)")]
    BadNetwork {
        /// The input, cut to 64 characters.
        input: String,
    },
}

fn subject_kind(s: &Subject) -> &'static str {
    match s {
        Subject::Alert(_) => "alert",
        Subject::Incident(_) => "incident",
    }
}

fn subject_id(s: &Subject) -> Uuid {
    match s {
        Subject::Alert(id) | Subject::Incident(id) => *id,
    }
}
