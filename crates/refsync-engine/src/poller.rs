//! The CRM poller: every `interval`, ask the CRM for leads and opportunities
//! modified since the watermark (less an overlap) and enqueue what a seller changed:
//!
//! - a record with a referral id → that referral (trigger `crm_poller`), unless the
//!   change is our own write or was already synced: its modified time is not after
//!   the one stored on the link at the last sync;
//! - a record flagged "Sync with Partner Center" without one → the record itself
//!   (a CRM-originated co-sell to share).
//!
//! One watermark per record type, moved to the newest modified time seen. The loop
//! over batches is bounded per pass; what is left is read on the next pass.

use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::metrics as m;
use crate::settings::PollerSettings;
use chrono::{DateTime, Utc};
use refsync_core::mapping::{EntityMapping, FieldValues};
use refsync_core::merge::{CrmSide, crm_changed_since_base};
use refsync_core::{CrmEntity, CrmRecord, ReferralId, SyncKey};
use refsync_store::{Enqueue, Trigger, WATERMARK_POLLER_CRM};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Records read.
    pub read: usize,
    /// Keys enqueued.
    pub enqueued: usize,
    /// Records skipped as our own writes (or changes already synced).
    pub own_writes: usize,
}

/// The watermark of one record type.
fn watermark_name(entity: &CrmEntity) -> String {
    format!("{WATERMARK_POLLER_CRM}.{entity}")
}

impl SyncEngine {
    /// One poll of leads and opportunities.
    pub async fn poll_crm_once(&self, settings: &PollerSettings) -> Result<PollReport, SyncError> {
        let mut report = PollReport::default();
        for entity in [CrmEntity::Lead, CrmEntity::Opportunity] {
            let em = self.entity(&entity)?;
            self.poll_entity(em, settings, &mut report).await?;
        }
        m::poller_enqueued(report.enqueued);
        Ok(report)
    }

    async fn poll_entity(
        &self,
        em: &EntityMapping,
        settings: &PollerSettings,
        report: &mut PollReport,
    ) -> Result<(), SyncError> {
        let name = watermark_name(&em.entity);
        let overlap = chrono::Duration::from_std(settings.overlap).unwrap_or_default();
        let stored = self.store.get_watermark(&name).await?.map(|w| w.value);
        let mut since = stored.map_or(DateTime::<Utc>::UNIX_EPOCH, |w| w - overlap);
        let mut newest = stored;
        for _ in 0..settings.max_batches.max(1) {
            let batch = self
                .crm
                .modified_since(em, since, settings.batch_size.max(1))
                .await?;
            report.read += batch.len();
            let full = batch.len() >= settings.batch_size.max(1);
            let mut items = Vec::new();
            let now = self.now();
            let mut batch_newest = None;
            for record in &batch {
                batch_newest = batch_newest.max(record.modified_at);
                match self.key_for(em, record).await? {
                    Some(key) => items.push(Enqueue::now(key, Trigger::CrmPoller, now)),
                    None => report.own_writes += 1,
                }
            }
            if !items.is_empty() {
                self.store.enqueue_many(&items, now).await?;
                report.enqueued += items.len();
                self.wakeup.notify();
            }
            newest = newest.max(batch_newest);
            match batch_newest {
                // A full batch whose records all share one time would be read again
                // forever from that time: stop here, the next pass moves on.
                Some(t) if full && t > since => since = t,
                _ => break,
            }
        }
        if let Some(newest) = newest
            && stored.is_none_or(|s| newest > s)
        {
            self.store
                .set_watermark(&name, newest, None, self.now())
                .await?;
        }
        Ok(())
    }

    /// The key a changed record stands for, or `None` when there is nothing new in it.
    async fn key_for(
        &self,
        em: &EntityMapping,
        record: &CrmRecord,
    ) -> Result<Option<SyncKey>, SyncError> {
        let Some(record_ref) = record.record_ref() else {
            return Ok(None);
        };
        let referral = em
            .referral_id_field
            .as_deref()
            .and_then(|c| record.field(c).as_str())
            .and_then(|s| ReferralId::parse(s.trim()).ok());
        let link = match &referral {
            Some(id) => self.store.link_by_referral(id).await?,
            None => self.store.link_by_crm_record(&record_ref).await?,
        };
        // Older than what the last sync saw: nothing new. Anything else is enqueued
        // once per (record, modified time): the overlap re-reads records every poll,
        // and re-enqueueing one whose sync keeps failing would revive its dead letter
        // on every poll. A tie is not skipped on its time alone because Dataverse
        // returns `modifiedon` to the second, so a seller's edit in the same second
        // as our own write has that write's time; the base comparison above told
        // them apart.
        // The record this link syncs, agreeing with the base on every field that
        // flows to Partner Center: our own write coming back, or an edit of columns
        // the mapping does not sync. Nothing to do, whatever its modified time.
        if let Some(link) = &link
            && link.crm_record.as_ref() == Some(&record_ref)
        {
            let base: FieldValues = link.base.clone().into_iter().collect();
            if !crm_changed_since_base(em, &CrmSide::read(em, record), &base) {
                return Ok(None);
            }
        }
        let seen = link.as_ref().and_then(|l| l.crm_modified_at);
        if let Some(modified) = record.modified_at {
            if seen.is_some_and(|seen| modified < seen) {
                return Ok(None);
            }
            if !self.poll_seen.first_look(&record_ref, modified) {
                return Ok(None);
            }
        }
        Ok(match referral {
            Some(id) => Some(SyncKey::Referral(id)),
            // Only opportunities are shared from the CRM (crm.md §3.4): a seller's
            // own flagged lead stays in the CRM.
            None if em.entity == CrmEntity::Opportunity
                && em.sync_enabled(record)
                && em.sync_flag_field.is_some() =>
            {
                Some(SyncKey::Crm(record_ref))
            }
            None => None,
        })
    }
}

/// Polls now and then every `settings.interval`, until `shutdown`. A failed poll is
/// logged and tried again at the next interval.
pub async fn run_poller(
    engine: Arc<SyncEngine>,
    settings: PollerSettings,
    shutdown: CancellationToken,
) {
    crate::periodic::run_periodically("CRM poll", settings.interval, shutdown, || {
        engine.poll_crm_once(&settings)
    })
    .await;
}

/// The modified time each record was last enqueued for by this process's poller.
#[derive(Debug, Default)]
pub(crate) struct PollSeen(
    std::sync::Mutex<std::collections::HashMap<refsync_core::CrmRecordRef, DateTime<Utc>>>,
);

impl PollSeen {
    /// True the first time `record` is seen modified at `at`.
    pub(crate) fn first_look(
        &self,
        record: &refsync_core::CrmRecordRef,
        at: DateTime<Utc>,
    ) -> bool {
        let mut ties = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded; forgetting only costs one more look at a record.
        if ties.len() > 10_000 {
            ties.clear();
        }
        ties.insert(record.clone(), at) != Some(at)
    }
}
