//! Syncing a CRM-record key: a record flagged "Sync with Partner Center" that has no
//! referral yet (a co-sell the seller started in the CRM, crm.md §3.4). Only
//! opportunities are shared, as the Microsoft connectors do.
//!
//! A record that turns out to be linked, or to carry a referral id already, is
//! handed over to that referral's key (trigger `follow`); one that is gone or not
//! flagged needs nothing.

use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::outcome::SyncOutcome;
use refsync_core::{CrmEntity, CrmRecordRef, ReferralId, SyncKey};
use refsync_store::{Enqueue, Trigger};

impl SyncEngine {
    /// Syncs the CRM record `record_ref`.
    pub(crate) async fn sync_crm_record(
        &self,
        record_ref: &CrmRecordRef,
    ) -> Result<SyncOutcome, SyncError> {
        if let Some(referral) = self
            .store
            .link_by_crm_record(record_ref)
            .await?
            .and_then(|l| l.referral_id)
        {
            return self.hand_over(referral).await;
        }
        let em = self.entity(&record_ref.entity)?;
        let Some(record) = self.read_record(em, &record_ref.id).await? else {
            return Ok(SyncOutcome::Skipped {
                reason: "the record no longer exists".to_owned(),
            });
        };
        if let Some(referral) = em
            .referral_id_field
            .as_deref()
            .and_then(|c| record.field(c).as_str())
            .and_then(|s| ReferralId::parse(s.trim()).ok())
        {
            return self.hand_over(referral).await;
        }
        if em.entity != CrmEntity::Opportunity {
            // crm.md §3.4: "Only opportunities with Sync with Partner Center = Yes are synced."
            return Ok(SyncOutcome::Skipped {
                reason: format!(
                    "only opportunities are shared to Partner Center, not a {}",
                    em.entity
                ),
            });
        }
        if em.sync_flag_field.is_none() || !em.sync_enabled(&record) {
            return Ok(SyncOutcome::Skipped {
                reason: "the record is not flagged \"Sync with Partner Center\"".to_owned(),
            });
        }
        self.share_record(em, record_ref, record).await
    }

    /// The record belongs to a referral: that key does the work.
    async fn hand_over(&self, referral: ReferralId) -> Result<SyncOutcome, SyncError> {
        let now = self.now();
        self.store
            .enqueue(
                Enqueue::now(SyncKey::Referral(referral.clone()), Trigger::Follow, now),
                now,
            )
            .await?;
        self.wakeup.notify();
        Ok(SyncOutcome::Skipped {
            reason: format!("linked to referral {referral}, enqueued"),
        })
    }
}
