//! refsync-store: everything refsync keeps durably, on SQLite (the embedded default)
//! or PostgreSQL (several instances sharing the work).
//!
//! The design follows DESIGN.md's "one idea": every trigger only says *look at key K*,
//! and the store turns those into one durable, coalescing queue row per key.
//!
//! - [`store`]: the [`Store`] trait (and its four parts) callers use as `Arc<dyn Store>`.
//! - [`event`]: received webhook events, deduplicated, committed with their queue rows.
//! - [`queue`]: the per-key work queue with leases, retries and dead letters.
//! - [`link`]: referral ↔ CRM record links and the base snapshot for the three-way merge.
//! - [`audit`]: the append-only audit trail.
//! - [`state`]: watermarks and encrypted secrets; [`status`]: the operator summary.
//! - [`sqlite`] and [`postgres`]: the two backends; [`open_store`] picks one by URL.
//! - `group_commit`: the batching writer that makes durable intake fast.
//! - `test_harness` (feature `test-harness`): temp SQLite files and a throwaway PostgreSQL.
#![forbid(unsafe_code)]

pub mod audit;
mod codec;
pub mod error;
pub mod event;
mod group_commit;
mod intake_plan;
pub mod link;
pub mod postgres;
pub mod queue;
pub mod sqlite;
pub mod state;
pub mod status;
pub mod store;
#[cfg(feature = "test-harness")]
pub mod test_harness;

pub use audit::{AuditEntry, AuditKind, NewAuditEntry};
pub use error::{Result, StoreError, redact_url};
pub use event::{
    DedupeKey, EventFilter, EventId, EventOutcome, NewEvent, RecordOutcome, SignatureHeaders,
    StoredEvent,
};
pub use link::{BaseSnapshot, LinkId, SyncLink};
pub use queue::{
    Claim, CompleteOutcome, DeadLetterOutcome, Enqueue, LeaseOwner, QueueEntry, QueueState, Trigger,
};
pub use state::{
    StoredSecret, WATERMARK_POLLER_CRM, WATERMARK_RECONCILER_PARTNER_CENTER, Watermark,
};
pub use status::{QueueDepth, StatusSummary};
pub use store::{EventLog, LinkStore, StateStore, Store, WorkQueue};

use std::sync::Arc;
use std::time::Duration;

/// The store traits, for calling their methods on a `dyn Store`.
pub mod prelude {
    pub use crate::store::{EventLog, LinkStore, StateStore, Store, WorkQueue};
}

/// Tuning for [`open_store_with`]; the defaults suit one instance on a small machine.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most events written in one group-commit transaction.
    pub max_event_batch: usize,
    /// SQLite: read-only connections for lookups (writes always use one connection).
    pub read_connections: u32,
    /// PostgreSQL: pool size.
    pub max_connections: u32,
    /// How long to wait for a pooled connection before failing.
    pub acquire_timeout: Duration,
    /// SQLite: how long to wait on another process's write lock.
    pub busy_timeout: Duration,
    /// PostgreSQL: `statement_timeout` for every statement, so a stuck query cannot
    /// hold a worker (and its lease) forever.
    pub statement_timeout: Duration,
    /// SQLite: how often a background connection checkpoints the WAL, keeping
    /// checkpoints out of the commits that answer webhooks.
    pub checkpoint_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_event_batch: 256,
            read_connections: 4,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            checkpoint_interval: Duration::from_millis(500),
        }
    }
}

/// Opens the store named by `url` with default options: `sqlite://path` (created if
/// missing), `sqlite::memory:`, or `postgres://…`. Runs migrations.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    open_store_with(url, &StoreOptions::default()).await
}

/// Opens the store named by `url` (see [`open_store`]) with the given options.
pub async fn open_store_with(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    let store: Arc<dyn Store> = match scheme.as_deref() {
        Some("sqlite") => Arc::new(sqlite::SqliteStore::open(url, options).await?),
        Some("postgres" | "postgresql") => Arc::new(postgres::PgStore::open(url, options).await?),
        _ => {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        }
    };
    tracing::info!(backend = store.backend(), url = %redact_url(url), "store opened");
    Ok(store)
}
