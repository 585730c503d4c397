//! The operator's one-glance summary (`refsync status`, `/readyz`, the admin page).

use crate::event::EventOutcome;
use chrono::Duration;
use std::collections::BTreeMap;

/// Queue depth by state at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Pending, due, not leased: waiting for a worker.
    pub due: u64,
    /// Pending, due later, never failed (scheduled with a delay).
    pub scheduled: u64,
    /// Pending, due later, failed before (backing off).
    pub retrying: u64,
    /// Pending and leased by a worker right now.
    pub leased: u64,
    /// Dead-lettered.
    pub dead: u64,
}

/// What `status_summary` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusSummary {
    /// Received events by outcome.
    pub events_by_outcome: BTreeMap<EventOutcome, u64>,
    /// The queue.
    pub queue: QueueDepth,
    /// How long the oldest pending key has waited since it was first enqueued.
    pub oldest_pending_age: Option<Duration>,
    /// Dead letters (same as `queue.dead`, for the dashboard's headline).
    pub dead_letters: u64,
}
