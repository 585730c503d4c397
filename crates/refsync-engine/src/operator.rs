//! What the operator's CLI calls: `refsync sync <key>` enqueues the key (trigger
//! `operator`, which also rules out the fast path) and waits for its outcome —
//! done, retrying with the error, or dead-lettered with the reason — with the audit
//! entries the sync produced.
//!
//! It watches the store rather than the in-process workers, so it works the same
//! from a separate CLI process while `refsync serve` (any instance) does the work.

use crate::engine::SyncEngine;
use crate::error::SyncError;
use chrono::{DateTime, Utc};
use refsync_core::SyncKey;
use refsync_store::{AuditEntry, Enqueue, QueueState, Trigger};
use std::time::Duration;

/// How often the store is looked at while waiting.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// Audit entries read back at most.
const AUDIT_LIMIT: u32 = 100;

/// How an operator-requested sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorState {
    /// Synced: the key left the queue.
    Done,
    /// It failed and will be tried again at `due_at`.
    Retrying {
        /// The failure.
        error: String,
        /// When it will be tried again.
        due_at: DateTime<Utc>,
    },
    /// It was given up on.
    DeadLettered {
        /// Why.
        reason: String,
    },
    /// No worker finished it within the timeout (is `refsync serve` running?).
    TimedOut,
}

/// The outcome of [`SyncEngine::sync_now`].
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorOutcome {
    /// How it ended.
    pub state: OperatorState,
    /// The audit entries written meanwhile, oldest first.
    pub audit: Vec<AuditEntry>,
}

impl SyncEngine {
    /// Enqueues `key` for an immediate sync and waits up to `timeout` for a worker
    /// (of this or another instance) to finish with it.
    pub async fn sync_now(
        &self,
        key: &SyncKey,
        timeout: Duration,
    ) -> Result<OperatorOutcome, SyncError> {
        let last_seen = self
            .store
            .audit_for_key(key, 1)
            .await?
            .first()
            .map_or(0, |e| e.id);
        // A key already backing off keeps its attempt count when enqueued again (a
        // dead one starts over): only a failure beyond that count is this sync's.
        let baseline = match self.store.queue_entry(key).await? {
            Some(e) if e.state == QueueState::Pending => e.attempts,
            _ => 0,
        };
        let now = self.now();
        self.store
            .enqueue(Enqueue::now(key.clone(), Trigger::Operator, now), now)
            .await?;
        self.wakeup.notify();
        let state = tokio::time::timeout(timeout, self.watch(key, baseline))
            .await
            .unwrap_or(Ok(OperatorState::TimedOut))?;
        let mut audit: Vec<AuditEntry> = self
            .store
            .audit_for_key(key, AUDIT_LIMIT)
            .await?
            .into_iter()
            .filter(|e| e.id > last_seen)
            .collect();
        audit.reverse();
        Ok(OperatorOutcome { state, audit })
    }

    /// Waits until the key is done, backing off after a failure, or dead.
    async fn watch(&self, key: &SyncKey, baseline: i32) -> Result<OperatorState, SyncError> {
        loop {
            match self.store.queue_entry(key).await? {
                None => return Ok(OperatorState::Done),
                Some(entry) if entry.state == QueueState::Dead => {
                    return Ok(OperatorState::DeadLettered {
                        reason: entry.dead_reason.or(entry.last_error).unwrap_or_default(),
                    });
                }
                Some(entry) if entry.attempts > baseline && !entry.is_leased(self.now()) => {
                    return Ok(OperatorState::Retrying {
                        error: entry.last_error.unwrap_or_default(),
                        due_at: entry.due_at,
                    });
                }
                Some(_) => tokio::time::sleep(WATCH_INTERVAL).await,
            }
        }
    }
}
