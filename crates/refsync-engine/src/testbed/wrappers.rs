//! Fault-injecting wrappers for the test bed: a store that fails the link save (a
//! crash between the CRM write and the link commit), and a CRM connector that runs
//! a hook before a write (to change the referral "as Microsoft" between our read and
//! our write) or holds writes until released (a sync in flight at shutdown).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use refsync_core::mapping::EntityMapping;
use refsync_core::{CrmRecord, CrmRecordId, CrmRecordRef, EngagementId, ReferralId, SyncKey};
use refsync_crm::{
    CrmConnector, CrmError, CrmKind, Customer, CustomerUpsert, RecordWrite, UpsertOutcome,
};
use refsync_store::prelude::*;
use refsync_store::{
    AuditEntry, Claim, CompleteOutcome, DeadLetterOutcome, Enqueue, EventFilter, EventOutcome,
    LeaseOwner, LinkId, NewAuditEntry, NewEvent, QueueEntry, RecordOutcome, StatusSummary,
    StoreError, StoredEvent, StoredSecret, SyncLink, Watermark,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

type StoreResult<T> = Result<T, StoreError>;

/// A store that fails the next `n` link saves (`save_link_with_audit`) as if the
/// process died right before committing, and otherwise passes everything through.
pub struct FlakyStore {
    inner: Arc<dyn Store>,
    failures_left: AtomicUsize,
    failed: AtomicUsize,
}

impl FlakyStore {
    /// Wraps `inner`, failing its next `n` link saves.
    pub fn new(inner: Arc<dyn Store>, n: usize) -> Self {
        Self {
            inner,
            failures_left: AtomicUsize::new(n),
            failed: AtomicUsize::new(0),
        }
    }

    /// How many link saves were failed so far.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for FlakyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

#[async_trait]
impl EventLog for FlakyStore {
    async fn record_event(&self, event: NewEvent) -> StoreResult<RecordOutcome> {
        self.inner.record_event(event).await
    }
    async fn list_events(&self, filter: &EventFilter, limit: u32) -> StoreResult<Vec<StoredEvent>> {
        self.inner.list_events(filter, limit).await
    }
    async fn count_events_by_outcome(&self) -> StoreResult<BTreeMap<EventOutcome, u64>> {
        self.inner.count_events_by_outcome().await
    }
}

#[async_trait]
impl WorkQueue for FlakyStore {
    async fn enqueue_many(&self, items: &[Enqueue], now: DateTime<Utc>) -> StoreResult<()> {
        self.inner.enqueue_many(items, now).await
    }
    async fn claim_due_keys(
        &self,
        owner: &LeaseOwner,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<Claim>> {
        self.inner.claim_due_keys(owner, now, lease, limit).await
    }
    async fn complete(&self, claim: &Claim, now: DateTime<Utc>) -> StoreResult<CompleteOutcome> {
        self.inner.complete(claim, now).await
    }
    async fn retry_later(&self, claim: &Claim, due: DateTime<Utc>, error: &str) -> StoreResult<()> {
        self.inner.retry_later(claim, due, error).await
    }
    async fn dead_letter(
        &self,
        claim: &Claim,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<DeadLetterOutcome> {
        self.inner.dead_letter(claim, reason, now).await
    }
    async fn release(&self, claim: &Claim, now: DateTime<Utc>) -> StoreResult<()> {
        self.inner.release(claim, now).await
    }
    async fn extend_lease(&self, claim: &mut Claim, until: DateTime<Utc>) -> StoreResult<()> {
        self.inner.extend_lease(claim, until).await
    }
    async fn queue_entry(&self, key: &SyncKey) -> StoreResult<Option<QueueEntry>> {
        self.inner.queue_entry(key).await
    }
    async fn list_dead_letters(&self, limit: u32) -> StoreResult<Vec<QueueEntry>> {
        self.inner.list_dead_letters(limit).await
    }
    async fn retry_dead_letter(&self, key: &SyncKey, now: DateTime<Utc>) -> StoreResult<bool> {
        self.inner.retry_dead_letter(key, now).await
    }
    async fn retry_all_dead_letters(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.retry_all_dead_letters(now).await
    }
}

#[async_trait]
impl LinkStore for FlakyStore {
    async fn save_link_with_audit(
        &self,
        link: &SyncLink,
        audit: &[NewAuditEntry],
        now: DateTime<Utc>,
    ) -> StoreResult<SyncLink> {
        let fail = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::WriterStopped);
        }
        self.inner.save_link_with_audit(link, audit, now).await
    }
    async fn link(&self, id: LinkId) -> StoreResult<Option<SyncLink>> {
        self.inner.link(id).await
    }
    async fn link_by_referral(&self, referral_id: &ReferralId) -> StoreResult<Option<SyncLink>> {
        self.inner.link_by_referral(referral_id).await
    }
    async fn link_by_crm_record(&self, record: &CrmRecordRef) -> StoreResult<Option<SyncLink>> {
        self.inner.link_by_crm_record(record).await
    }
    async fn links_by_engagement(
        &self,
        engagement_id: &EngagementId,
    ) -> StoreResult<Vec<SyncLink>> {
        self.inner.links_by_engagement(engagement_id).await
    }
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> StoreResult<()> {
        self.inner.append_audit(entries).await
    }
    async fn audit_for_referral(
        &self,
        referral_id: &ReferralId,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        self.inner.audit_for_referral(referral_id, limit).await
    }
    async fn audit_for_key(&self, key: &SyncKey, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        self.inner.audit_for_key(key, limit).await
    }
}

#[async_trait]
impl StateStore for FlakyStore {
    async fn get_watermark(&self, name: &str) -> StoreResult<Option<Watermark>> {
        self.inner.get_watermark(name).await
    }
    async fn set_watermark(
        &self,
        name: &str,
        value: DateTime<Utc>,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.set_watermark(name, value, cursor, now).await
    }
    async fn put_secret(
        &self,
        name: &str,
        ciphertext: Vec<u8>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.put_secret(name, ciphertext, now).await
    }
    async fn get_secret(&self, name: &str) -> StoreResult<Option<StoredSecret>> {
        self.inner.get_secret(name).await
    }
    async fn status_summary(&self, now: DateTime<Utc>) -> StoreResult<StatusSummary> {
        self.inner.status_summary(now).await
    }
}

/// A hook run once, before a CRM write.
pub type WriteHook = Box<dyn FnOnce() + Send>;

/// A CRM connector that passes everything through, except that it can run a hook
/// once before the next write (upsert or update), and can hold every write until
/// [`HookedCrm::release`] (or forever).
pub struct HookedCrm {
    inner: Arc<dyn CrmConnector>,
    before_write: Mutex<Option<WriteHook>>,
    hold: Mutex<bool>,
    released: Notify,
    writes_started: AtomicUsize,
}

impl HookedCrm {
    /// Wraps `inner` with no hook and no hold.
    pub fn new(inner: Arc<dyn CrmConnector>) -> Self {
        Self {
            inner,
            before_write: Mutex::new(None),
            hold: Mutex::new(false),
            released: Notify::new(),
            writes_started: AtomicUsize::new(0),
        }
    }

    /// Runs `hook` once, right before the next write reaches the CRM.
    pub fn before_next_write(&self, hook: impl FnOnce() + Send + 'static) {
        *self.before_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    /// Holds every write from now on until [`HookedCrm::release`].
    pub fn hold_writes(&self) {
        *self.hold.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    /// Lets held writes (and later ones) through.
    pub fn release(&self) {
        *self.hold.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.released.notify_waiters();
    }

    /// Writes that reached this wrapper (held ones included).
    pub fn writes_started(&self) -> usize {
        self.writes_started.load(Ordering::SeqCst)
    }

    async fn before_write(&self) {
        self.writes_started.fetch_add(1, Ordering::SeqCst);
        let hook = self
            .before_write
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(hook) = hook {
            hook();
        }
        loop {
            let released = self.released.notified();
            if !*self.hold.lock().unwrap_or_else(|p| p.into_inner()) {
                return;
            }
            released.await;
        }
    }
}

#[async_trait]
impl CrmConnector for HookedCrm {
    fn kind(&self) -> CrmKind {
        self.inner.kind()
    }
    async fn get(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        self.inner.get(entity, id).await
    }
    async fn get_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
    ) -> Result<Option<CrmRecord>, CrmError> {
        self.inner.get_by_referral(entity, referral).await
    }
    async fn upsert_by_referral(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
    ) -> Result<UpsertOutcome, CrmError> {
        self.before_write().await;
        self.inner.upsert_by_referral(entity, referral, write).await
    }
    async fn update(
        &self,
        entity: &EntityMapping,
        id: &CrmRecordId,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        self.before_write().await;
        self.inner.update(entity, id, write).await
    }
    async fn retire_lead(
        &self,
        lead: &EntityMapping,
        id: &CrmRecordId,
        opportunity: &CrmRecordId,
    ) -> Result<(), CrmError> {
        self.inner.retire_lead(lead, id, opportunity).await
    }
    async fn find_by_columns(
        &self,
        entity: &EntityMapping,
        criteria: &[(&str, &Value)],
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        self.inner.find_by_columns(entity, criteria, limit).await
    }
    async fn create(
        &self,
        entity: &EntityMapping,
        write: &RecordWrite,
    ) -> Result<CrmRecord, CrmError> {
        self.inner.create(entity, write).await
    }
    async fn upsert_with_customer(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
        customer: Customer<'_>,
    ) -> Result<CustomerUpsert, CrmError> {
        self.before_write().await;
        self.inner
            .upsert_with_customer(entity, referral, write, customer)
            .await
    }
    async fn modified_since(
        &self,
        entity: &EntityMapping,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CrmRecord>, CrmError> {
        self.inner.modified_since(entity, since, limit).await
    }
    fn usage(&self) -> Option<refsync_crm::ApiUsage> {
        self.inner.usage()
    }
}
