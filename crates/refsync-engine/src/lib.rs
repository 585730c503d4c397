//! refsync-engine: the sync engine that keeps Partner Center referrals and CRM
//! records in agreement (DESIGN.md "The one idea").
//!
//! Every trigger only says *look at key K*. A worker claims K, reads the **current**
//! state of both sides and merges it against the base (the values both last agreed
//! on); it never replays events, so duplicate, late, lost and out-of-order events
//! are harmless and our own writes coming back produce no further writes.
//!
//! - [`engine`]: [`SyncEngine`] and [`SyncEngine::sync_key`], the one entry point.
//!   The flows behind it: `sync_referral` (a referral key: create, qualify, merge,
//!   follow, gone), `sync_crm_record` (a CRM record with no referral yet),
//!   `converge` (merge → write CRM → write Partner Center with `If-Match`, re-read
//!   on 412), over the I/O in `read`, `write_crm`, `write_pc`.
//! - [`decide`]: the pure decisions (fast path, lead or opportunity, new-record
//!   body, customer matching, which refusals are news).
//! - [`audit`]: the Audit column line and the store's audit entries of a sync.
//! - [`workers`]: claim, run, extend leases, complete / retry with backoff /
//!   dead-letter, wake-ups, graceful shutdown ([`run_workers`]).
//! - [`reconciler`]: Partner Center listing since a watermark ([`run_reconciler`]).
//! - [`poller`]: CRM changes since a watermark ([`run_poller`]).
//! - [`operator`]: [`SyncEngine::sync_now`] for `refsync sync`.
//! - [`settings`], [`clock`], [`error`], [`outcome`]; `metrics` names the metrics.
//! - `memory_crm` (tests and feature `test-harness`): an in-memory [`CrmConnector`](refsync_crm::CrmConnector).
//! - `testbed` (feature `test-harness`): emulators + store + engine wired together.
//!
//! ## Wiring (what `refsync serve` does)
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn serve(
//! #     store: Arc<dyn refsync_store::Store>,
//! #     referrals: refsync_partner_center::ReferralsClient,
//! #     crm: Arc<dyn refsync_crm::CrmConnector>,
//! #     mapping: refsync_core::Mapping,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use refsync_engine::{EngineSettings, PollerSettings, ReconcilerSettings, SyncEngine,
//!     SystemClock, WorkerSettings, run_poller, run_reconciler, run_workers};
//! use tokio_util::sync::CancellationToken;
//!
//! // store: refsync_store::open_store(url); referrals: ReferralsClient::connect(url,
//! // token source); crm: SalesforceConnector::new / DataverseConnector::new behind an Arc.
//! let engine = Arc::new(SyncEngine::new(
//!     store, referrals, crm, Arc::new(mapping),
//!     EngineSettings::default(), Arc::new(SystemClock),
//! )?);
//! let shutdown = CancellationToken::new(); // cancel on SIGTERM
//! // The webhook intake enqueues keys, then pokes `engine.wakeup().notify()`.
//! let workers = tokio::spawn(run_workers(Arc::clone(&engine), WorkerSettings::default(), shutdown.clone()));
//! tokio::spawn(run_reconciler(Arc::clone(&engine), ReconcilerSettings::default(), shutdown.clone()));
//! tokio::spawn(run_poller(Arc::clone(&engine), PollerSettings::default(), shutdown.clone()));
//! // `refsync sync KEY`: engine.sync_now(&key, timeout); `refsync reconcile --since T`:
//! // engine.reconcile_since(Some(t)); one poll: engine.poll_crm_once(&settings).
//! shutdown.cancel();
//! workers.await?; // in-flight keys finish within the grace period, the rest are released
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
mod converge;
mod customer_lock;
pub mod decide;
pub mod engine;
pub mod error;
#[cfg(any(test, feature = "test-harness"))]
pub mod memory_crm;
mod metrics;
pub mod operator;
pub mod outcome;
mod periodic;
pub mod poller;
mod read;
pub mod reconciler;
pub mod settings;
mod share;
mod sync_crm_record;
mod sync_referral;
#[cfg(feature = "test-harness")]
pub mod testbed;
pub mod workers;
mod write_crm;
mod write_pc;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::SyncEngine;
pub use error::SyncError;
pub use operator::{OperatorOutcome, OperatorState};
pub use outcome::SyncOutcome;
pub use poller::{PollReport, run_poller};
pub use reconciler::{ReconcileReport, run_reconciler};
pub use settings::{EngineSettings, PollerSettings, ReconcilerSettings, WorkerSettings};
pub use workers::{Wakeup, run_workers};
