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

impl QueueDepth {
    /// Keys still to be synced or being synced (everything but the dead letters):
    /// zero once the queue has drained.
    pub fn pending(&self) -> u64 {
        self.due + self.scheduled + self.retrying + self.leased
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_counts_every_live_key_and_no_dead_letter() {
        let q = QueueDepth {
            due: 1,
            scheduled: 2,
            retrying: 4,
            leased: 8,
            dead: 16,
        };
        assert_eq!(q.pending(), 15);
        assert_eq!(QueueDepth::default().pending(), 0);
    }
}
