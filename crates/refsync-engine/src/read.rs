//! Reading the current state of both sides: the referral, its engagement's other
//! referrals, the CRM record. Thin on purpose: every decision about what was read
//! is made in `decide` or by the merge.

use crate::engine::SyncEngine;
use crate::error::SyncError;
use refsync_core::mapping::EntityMapping;
use refsync_core::{CrmRecord, CrmRecordId, EngagementId, Referral, ReferralId};
use refsync_partner_center::ReferralQuery;

impl SyncEngine {
    /// The referral as Partner Center has it now; `None` once it is gone (404).
    pub(crate) async fn read_referral(
        &self,
        id: &ReferralId,
    ) -> Result<Option<Referral>, SyncError> {
        Ok(self.referrals.get(id).await?)
    }

    /// The referrals of one engagement (both halves of a co-sell, partner-center.md
    /// §1.5), walked to the end within the client's page bound.
    pub(crate) async fn read_engagement(
        &self,
        id: &EngagementId,
    ) -> Result<Vec<Referral>, SyncError> {
        Ok(self
            .referrals
            .list(&ReferralQuery::engagement(id))
            .collect_all()
            .await?)
    }

    /// The CRM record as it is now; `None` once it is gone.
    pub(crate) async fn read_record(
        &self,
        em: &EntityMapping,
        id: &CrmRecordId,
    ) -> Result<Option<CrmRecord>, SyncError> {
        Ok(self.crm.get(em, id).await?)
    }
}
