//! The work queue's values: one row per sync key, coalescing every trigger for that
//! key until a worker has looked at it (DESIGN.md, "the one idea").
//!
//! A row's `generation` goes up on every trigger. A worker remembers the generation
//! it claimed; when it completes, an unchanged generation means nothing new arrived
//! during the sync and the row can go, while a changed one means the key must be
//! looked at again (the row stays, due now).

use chrono::{DateTime, Utc};
use refsync_core::SyncKey;
use std::fmt;

refsync_core::open_enum! {
    /// Why a key was enqueued. Unknown values (written by a newer instance) are kept.
    pub enum Trigger {
        /// A Partner Center webhook event.
        Webhook = "webhook",
        /// A reconciliation pass found the referral changed.
        Reconciler = "reconciler",
        /// The CRM poller saw the record change.
        CrmPoller = "crm_poller",
        /// An operator asked (`refsync sync`, admin UI).
        Operator = "operator",
        /// Another key's sync asked for this one (e.g. a lead qualified into an opportunity).
        Follow = "follow",
    }
}

refsync_core::open_enum! {
    /// The persistent state of a queue row. Being leased is not a state: it is a
    /// pending row whose lease has not expired.
    pub enum QueueState {
        /// Waiting to be worked (possibly leased by a worker right now).
        Pending = "pending",
        /// Given up on; stays until an operator or a new trigger revives it.
        Dead = "dead",
    }
}

/// One key to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueue {
    /// The key.
    pub key: SyncKey,
    /// Why.
    pub trigger: Trigger,
    /// Not to be worked before this time (the row's due time becomes the earliest asked for).
    pub not_before: DateTime<Utc>,
}

impl Enqueue {
    /// A key due immediately.
    pub fn now(key: SyncKey, trigger: Trigger, now: DateTime<Utc>) -> Self {
        Self {
            key,
            trigger,
            not_before: now,
        }
    }
}

/// Who holds leases: an instance-and-worker name, shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseOwner(String);

impl LeaseOwner {
    /// Names a lease holder (e.g. `host-a/worker-3`).
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeaseOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A claimed key: the worker's ticket for `complete`, `retry_later`, `dead_letter`,
/// `release` and `extend_lease`. Those succeed only while the lease is still this claim's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The key to sync.
    pub key: SyncKey,
    /// The row's generation when claimed.
    pub generation: i64,
    /// Failed attempts so far (0 on the first try).
    pub attempts: i32,
    /// When the row was first enqueued (how long the key has waited, for metrics).
    pub first_enqueued_at: DateTime<Utc>,
    /// The most recent trigger.
    pub last_trigger: Trigger,
    /// Every distinct trigger since the row was created, oldest first.
    pub triggers: Vec<Trigger>,
    /// The last failure, when this is a retry.
    pub last_error: Option<String>,
    /// Who holds the lease.
    pub owner: LeaseOwner,
    /// Unique per claim call: a lease is ours only while the row still carries this token,
    /// so two workers sharing an owner name can never act on each other's claims.
    pub lease_token: String,
    /// When the lease runs out unless extended.
    pub lease_until: DateTime<Utc>,
}

/// What `complete` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// Nothing arrived during the sync: the row is gone.
    Removed,
    /// The key was triggered again during the sync: it stays pending, due now, unleased.
    Retriggered,
}

/// What `dead_letter` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterOutcome {
    /// The key is a dead letter now.
    DeadLettered,
    /// The key was triggered again during the sync, so it stays pending, due now.
    Retriggered,
}

/// A queue row as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The key.
    pub key: SyncKey,
    /// Pending or dead.
    pub state: QueueState,
    /// When it may next be worked.
    pub due_at: DateTime<Utc>,
    /// Bumped on every trigger.
    pub generation: i64,
    /// Failed attempts since the last success or revival.
    pub attempts: i32,
    /// When the row was created.
    pub first_enqueued_at: DateTime<Utc>,
    /// When it was last triggered.
    pub last_enqueued_at: DateTime<Utc>,
    /// The most recent trigger.
    pub last_trigger: Trigger,
    /// Every distinct trigger since the row was created.
    pub triggers: Vec<Trigger>,
    /// The lease holder, if a worker has (or had) it.
    pub leased_by: Option<LeaseOwner>,
    /// When that lease runs out.
    pub lease_until: Option<DateTime<Utc>>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Why it was dead-lettered.
    pub dead_reason: Option<String>,
    /// When it was dead-lettered.
    pub dead_at: Option<DateTime<Utc>>,
}

impl QueueEntry {
    /// True while a worker holds an unexpired lease.
    pub fn is_leased(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }
}

/// Joins triggers the way the queue's SQL stores them: a comma-separated set, oldest first.
#[cfg(test)]
fn join_triggers(triggers: &[Trigger]) -> String {
    triggers
        .iter()
        .map(Trigger::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits the stored trigger set.
pub(crate) fn split_triggers(s: &str) -> Vec<Trigger> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(Trigger::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_sets_round_trip_and_keep_unknown_values() {
        let ts = vec![
            Trigger::Webhook,
            Trigger::Other("future".into()),
            Trigger::Operator,
        ];
        assert_eq!(split_triggers(&join_triggers(&ts)), ts);
        assert!(split_triggers("").is_empty());
    }
}
