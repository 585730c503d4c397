//! The `Store` trait: everything durable refsync keeps, behind one object-safe
//! interface with a SQLite and a PostgreSQL implementation.
//!
//! `Store` is the union of four narrower traits, one per area, so each backend
//! implements them in separate files and a component can be handed only the part it
//! uses (`Arc<dyn Store>` upcasts to `Arc<dyn WorkQueue>`). Import
//! [`crate::prelude`] to call them all on a `dyn Store`.
//!
//! Every method that needs the time takes `now`, so tests (and the worker's clock)
//! control it; the store never reads the clock for state it keeps.

use crate::audit::{AuditEntry, NewAuditEntry};
use crate::error::Result;
use crate::event::{EventFilter, EventOutcome, NewEvent, RecordOutcome, StoredEvent};
use crate::link::{LinkId, SyncLink};
use crate::queue::{Claim, CompleteOutcome, DeadLetterOutcome, Enqueue, LeaseOwner, QueueEntry};
use crate::state::{StoredSecret, Watermark};
use crate::status::StatusSummary;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use refsync_core::{CrmRecordRef, EngagementId, ReferralId, SyncKey};
use std::collections::BTreeMap;

/// Durable state: received events, the work queue, links with their base snapshots,
/// the audit trail, watermarks and secrets. Shared as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: EventLog + WorkQueue + LinkStore + StateStore {
    /// Which backend this is (`sqlite` or `postgres`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Stops the event writer after it has drained and closes the connections.
    async fn close(&self);
}

/// Received webhook events (intake's side of the store).
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Stores a verified event and enqueues its keys in one transaction, durably
    /// committed before this returns. Concurrent calls are group-committed.
    async fn record_event(&self, event: NewEvent) -> Result<RecordOutcome>;

    /// Stored events matching the filter, newest first, at most `limit`.
    async fn list_events(&self, filter: &EventFilter, limit: u32) -> Result<Vec<StoredEvent>>;

    /// How many events were stored with each outcome.
    async fn count_events_by_outcome(&self) -> Result<BTreeMap<EventOutcome, u64>>;
}

/// The per-key work queue.
#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Enqueues one key (see [`Store::enqueue_many`]).
    async fn enqueue(&self, item: Enqueue, now: DateTime<Utc>) -> Result<()> {
        self.enqueue_many(std::slice::from_ref(&item), now).await
    }

    /// Enqueues keys in one transaction. An existing pending row is coalesced (due
    /// becomes the earliest, generation goes up, the trigger is noted); a dead row
    /// comes back to pending with its attempts reset.
    async fn enqueue_many(&self, items: &[Enqueue], now: DateTime<Utc>) -> Result<()>;

    /// Leases up to `limit` due keys (pending, unleased or lease expired), earliest due first.
    async fn claim_due_keys(
        &self,
        owner: &LeaseOwner,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Claim>>;

    /// Finishes a successful sync: removes the row unless the key was triggered again
    /// meanwhile, in which case it stays pending, due now, with attempts reset.
    /// `LeaseLost` if the lease is no longer this claim's.
    async fn complete(&self, claim: &Claim, now: DateTime<Utc>) -> Result<CompleteOutcome>;

    /// Schedules another attempt: attempts + 1, due at `due`, lease cleared, error kept.
    async fn retry_later(&self, claim: &Claim, due: DateTime<Utc>, error: &str) -> Result<()>;

    /// Gives up on a key: it stays as a dead letter with the reason, until revived.
    /// If the key was triggered again during the sync, it stays pending instead (due
    /// now, attempts reset), exactly as that trigger would have revived the dead letter.
    async fn dead_letter(
        &self,
        claim: &Claim,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<DeadLetterOutcome>;

    /// Hands a key back unworked (shutdown): lease cleared, due now, attempts unchanged.
    async fn release(&self, claim: &Claim, now: DateTime<Utc>) -> Result<()>;

    /// Pushes the lease out to `until` for a long sync; updates the claim.
    async fn extend_lease(&self, claim: &mut Claim, until: DateTime<Utc>) -> Result<()>;

    /// One key's queue row, if it has one (none once a sync completed).
    async fn queue_entry(&self, key: &SyncKey) -> Result<Option<QueueEntry>>;

    /// Dead letters, most recently dead first.
    async fn list_dead_letters(&self, limit: u32) -> Result<Vec<QueueEntry>>;

    /// Brings one dead letter back to pending (due now, attempts reset). False if the
    /// key is not dead-lettered.
    async fn retry_dead_letter(&self, key: &SyncKey, now: DateTime<Utc>) -> Result<bool>;

    /// Brings every dead letter back; returns how many.
    async fn retry_all_dead_letters(&self, now: DateTime<Utc>) -> Result<u64>;
}

/// Links with their base snapshots, and the audit trail (saved together atomically).
#[async_trait]
pub trait LinkStore: Send + Sync + 'static {
    /// Saves a link if nobody saved it since it was loaded (`link.version`), returning
    /// it with its new id, version and timestamps. `VersionConflict` if someone did,
    /// `LinkKeyTaken` if another link holds its referral or CRM record.
    async fn save_link(&self, link: &SyncLink, now: DateTime<Utc>) -> Result<SyncLink> {
        self.save_link_with_audit(link, &[], now).await
    }

    /// [`Store::save_link`] and [`Store::append_audit`] in one transaction: both or neither.
    async fn save_link_with_audit(
        &self,
        link: &SyncLink,
        audit: &[NewAuditEntry],
        now: DateTime<Utc>,
    ) -> Result<SyncLink>;

    /// A link by its id.
    async fn link(&self, id: LinkId) -> Result<Option<SyncLink>>;

    /// The link for a referral.
    async fn link_by_referral(&self, referral_id: &ReferralId) -> Result<Option<SyncLink>>;

    /// The link holding a CRM record.
    async fn link_by_crm_record(&self, record: &CrmRecordRef) -> Result<Option<SyncLink>>;

    /// Every link of an engagement (a co-sell's referrals share it).
    async fn links_by_engagement(&self, engagement_id: &EngagementId) -> Result<Vec<SyncLink>>;

    /// Appends entries in one transaction.
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<()>;

    /// A referral's entries, newest first.
    async fn audit_for_referral(
        &self,
        referral_id: &ReferralId,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;

    /// A queue key's entries, newest first.
    async fn audit_for_key(&self, key: &SyncKey, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// Watermarks, secrets and the status summary.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// A named watermark.
    async fn get_watermark(&self, name: &str) -> Result<Option<Watermark>>;

    /// Sets a named watermark.
    async fn set_watermark(
        &self,
        name: &str,
        value: DateTime<Utc>,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Stores (replaces) a secret's ciphertext.
    async fn put_secret(&self, name: &str, ciphertext: Vec<u8>, now: DateTime<Utc>) -> Result<()>;

    /// A secret's ciphertext.
    async fn get_secret(&self, name: &str) -> Result<Option<StoredSecret>>;

    /// Events by outcome, queue depth by state, oldest pending age, dead letters.
    async fn status_summary(&self, now: DateTime<Utc>) -> Result<StatusSummary>;
}
