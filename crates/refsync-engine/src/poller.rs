//! The CRM poller: every `interval`, ask the CRM for leads and opportunities
//! modified since the watermark (less an overlap) and enqueue what a seller changed:
//!
//! - a record with a referral id → that referral (trigger `crm_poller`), unless the
//!   change is our own write or was already synced: its modified time is not after
//!   the one stored on the link at the last sync;
//! - a record flagged "Sync with Partner Center" without one → the record itself
//!   (a CRM-originated co-sell to share).
//!
//! A CRM that tracks changes (Dataverse change tracking) is read from a cursor
//! instead, kept in the same watermark: each change comes once, with no overlap.
//! Otherwise one watermark per record type, moved to the newest modified time seen.
//! The loop over batches (pages) is bounded per pass; what is left is read on the
//! next pass.
//!
//! The overlap makes every pass read again the records of the last `overlap`
//! seconds. A record read again exactly as it was (same modified time, same
//! values) was already looked at, so it costs no store read and is skipped
//! ([`PollSeen`]): under a burst of writes that is most of what a pass reads.

use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::metrics as m;
use crate::settings::PollerSettings;
use chrono::{DateTime, Utc};
use refsync_core::mapping::{EntityMapping, FieldValues};
use refsync_core::merge::{CrmSide, crm_changed_since_base};
use refsync_core::{CrmEntity, CrmRecord, CrmRecordRef, ReferralId, SyncKey};
use refsync_store::{Enqueue, Trigger, WATERMARK_POLLER_CRM, Watermark};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// Records read again unchanged since an earlier pass looked at them.
    pub seen_before: usize,
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
        let stored = self.store.get_watermark(&name).await?;
        if self
            .poll_tracked(em, settings, &name, stored.as_ref(), report)
            .await?
        {
            return Ok(());
        }
        let stored = stored.map(|w| w.value);
        let overlap = chrono::Duration::from_std(settings.overlap).unwrap_or_default();
        let mut since = stored.map_or(DateTime::<Utc>::UNIX_EPOCH, |w| w - overlap);
        let mut newest = stored;
        for _ in 0..settings.max_batches.max(1) {
            let batch = self
                .crm
                .modified_since(em, since, settings.batch_size.max(1))
                .await?;
            let full = batch.len() >= settings.batch_size.max(1);
            self.look_at(em, &batch, report).await?;
            let batch_newest = batch.iter().filter_map(|r| r.modified_at).max();
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

    /// Reads the CRM's tracked changes from the stored cursor, page by page until
    /// caught up (or `max_batches` pages), saving the cursor after each page. False
    /// when the CRM does not track changes of this type.
    async fn poll_tracked(
        &self,
        em: &EntityMapping,
        settings: &PollerSettings,
        name: &str,
        stored: Option<&Watermark>,
        report: &mut PollReport,
    ) -> Result<bool, SyncError> {
        let mut cursor = stored.and_then(|w| w.cursor.clone());
        // Kept beside the cursor for a fallback to modified time; the epoch, when
        // nothing was seen yet, makes such a fallback read everything.
        let mut newest = stored.map_or(DateTime::<Utc>::UNIX_EPOCH, |w| w.value);
        for _ in 0..settings.max_batches.max(1) {
            let Some(changes) = self.crm.tracked_changes(em, cursor.as_deref()).await? else {
                return Ok(false);
            };
            self.look_at(em, &changes.records, report).await?;
            newest = changes
                .records
                .iter()
                .filter_map(|r| r.modified_at)
                .fold(newest, DateTime::max);
            self.store
                .set_watermark(name, newest, Some(&changes.cursor), self.now())
                .await?;
            cursor = Some(changes.cursor);
            if changes.caught_up {
                break;
            }
        }
        Ok(true)
    }

    /// Looks at records read from the CRM and enqueues the keys of those with news.
    async fn look_at(
        &self,
        em: &EntityMapping,
        records: &[CrmRecord],
        report: &mut PollReport,
    ) -> Result<(), SyncError> {
        report.read += records.len();
        let mut items = Vec::new();
        let mut looked = Vec::new();
        let now = self.now();
        for record in records {
            let Some(record_ref) = record.record_ref() else {
                continue;
            };
            let version = RecordVersion::of(record);
            if self.poll_seen.seen(&record_ref, version) {
                report.seen_before += 1;
                continue;
            }
            match self.key_for(em, &record_ref, record).await? {
                Some(key) => items.push(Enqueue::now(key, Trigger::CrmPoller, now)),
                None => report.own_writes += 1,
            }
            looked.push((record_ref, version));
        }
        if !items.is_empty() {
            self.store.enqueue_many(&items, now).await?;
            report.enqueued += items.len();
            self.wakeup.notify();
        }
        // Only once what the looks decided is stored: a failed pass looks again.
        self.poll_seen.remember(looked);
        Ok(())
    }

    /// The key a changed record stands for, or `None` when there is nothing new in it.
    async fn key_for(
        &self,
        em: &EntityMapping,
        record_ref: &CrmRecordRef,
        record: &CrmRecord,
    ) -> Result<Option<SyncKey>, SyncError> {
        let referral = em
            .referral_id_field
            .as_deref()
            .and_then(|c| record.field(c).as_str())
            .and_then(|s| ReferralId::parse(s.trim()).ok());
        let link = match &referral {
            Some(id) => self.store.link_by_referral(id).await?,
            None => self.store.link_by_crm_record(record_ref).await?,
        };
        // The record this link syncs, agreeing with the base on every field that
        // flows to Partner Center: our own write coming back, or an edit of columns
        // the mapping does not sync. Nothing to do, whatever its modified time. A
        // tie is not decided on time alone because Dataverse returns `modifiedon` to
        // the second, so a seller's edit in the same second as our own write has
        // that write's time.
        if let Some(link) = &link
            && link.crm_record.as_ref() == Some(record_ref)
        {
            let base: FieldValues = link.base.clone().into_iter().collect();
            if !crm_changed_since_base(em, &CrmSide::read(em, record), &base) {
                return Ok(None);
            }
        }
        // Older than what the last sync saw: nothing new.
        let seen = link.as_ref().and_then(|l| l.crm_modified_at);
        if let (Some(modified), Some(seen)) = (record.modified_at, seen)
            && modified < seen
        {
            return Ok(None);
        }
        Ok(match referral {
            Some(id) => Some(SyncKey::Referral(id)),
            // Only opportunities are shared from the CRM (crm.md §3.4): a seller's
            // own flagged lead stays in the CRM.
            None if em.entity == CrmEntity::Opportunity
                && em.sync_enabled(record)
                && em.sync_flag_field.is_some() =>
            {
                Some(SyncKey::Crm(record_ref.clone()))
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

/// One version of a CRM record as the poller read it: its modified time and a
/// fingerprint of everything else it carries (values and concurrency tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordVersion {
    modified_at: Option<DateTime<Utc>>,
    fingerprint: u64,
}

impl RecordVersion {
    /// The version `record` is. Values are part of it because a seller's edit can
    /// carry the very modified time of our own write (Dataverse keeps seconds).
    pub(crate) fn of(record: &CrmRecord) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        record.etag.as_ref().map(|e| e.as_str()).hash(&mut hasher);
        for (name, value) in &record.fields {
            name.hash(&mut hasher);
            // A value's JSON text is one canonical form of it, streamed into the
            // hash rather than built as a string for every field of every re-read.
            let _ = serde_json::to_writer(HashWriter(&mut hasher), value);
            hasher.write_u8(0xff);
        }
        Self {
            modified_at: record.modified_at,
            fingerprint: hasher.finish(),
        }
    }
}

/// Feeds written bytes to a hasher.
struct HashWriter<'a, H>(&'a mut H);

impl<H: Hasher> std::io::Write for HashWriter<'_, H> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The version of each record this process's poller last looked at. A look
/// decides from the record and its link; a link changes only when a sync runs,
/// and a sync that changes what flows to Partner Center writes the record too
/// (a new version), so the same version looked at again decides the same.
/// Remembering it also keeps a record whose sync keeps failing from being
/// enqueued on every pass, which would revive its dead letter each time.
#[derive(Debug, Default)]
pub(crate) struct PollSeen(Mutex<HashMap<CrmRecordRef, RecordVersion>>);

/// How many records [`PollSeen`] remembers; forgetting costs one more look.
const POLL_SEEN_CAPACITY: usize = 100_000;

impl PollSeen {
    /// True when `record` was already looked at in this version.
    pub(crate) fn seen(&self, record: &CrmRecordRef, version: RecordVersion) -> bool {
        self.looks().get(record) == Some(&version)
    }

    /// Remembers the versions just looked at.
    pub(crate) fn remember(&self, looked: Vec<(CrmRecordRef, RecordVersion)>) {
        let mut looks = self.looks();
        if looks.len() + looked.len() > POLL_SEEN_CAPACITY {
            looks.clear();
        }
        looks.extend(looked);
    }

    fn looks(&self) -> std::sync::MutexGuard<'_, HashMap<CrmRecordRef, RecordVersion>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use refsync_core::{CrmRecordId, Etag};
    use serde_json::json;

    fn record(notes: &str, etag: &str) -> CrmRecord {
        let mut record = CrmRecord::new(CrmEntity::Lead);
        record.id = Some(CrmRecordId::parse("00000000-0000-0000-0000-000000000001").unwrap());
        record.fields.insert("description".into(), json!(notes));
        record.modified_at = Some(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap());
        record.etag = Some(Etag::new(etag));
        record
    }

    #[test]
    fn a_version_is_its_time_its_values_and_its_tag() {
        let ours = RecordVersion::of(&record("ours", "W/\"1\""));
        assert_eq!(ours, RecordVersion::of(&record("ours", "W/\"1\"")));
        assert_ne!(ours, RecordVersion::of(&record("seller's", "W/\"1\"")));
        assert_ne!(ours, RecordVersion::of(&record("ours", "W/\"2\"")));
        let mut later = record("ours", "W/\"1\"");
        later.modified_at = later.modified_at.map(|t| t + chrono::Duration::seconds(1));
        assert_ne!(ours, RecordVersion::of(&later));
    }

    #[test]
    fn only_remembered_versions_are_seen() {
        let seen = PollSeen::default();
        let first = record("ours", "W/\"1\"");
        let at = first.record_ref().unwrap();
        let version = RecordVersion::of(&first);
        assert!(!seen.seen(&at, version));
        seen.remember(vec![(at.clone(), version)]);
        assert!(seen.seen(&at, version));
        let edited = RecordVersion::of(&record("seller's", "W/\"1\""));
        assert!(!seen.seen(&at, edited));
        seen.remember(vec![(at.clone(), edited)]);
        assert!(seen.seen(&at, edited) && !seen.seen(&at, version));
    }
}
