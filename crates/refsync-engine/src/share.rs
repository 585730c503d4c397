//! Sharing a CRM record with Partner Center: creating the referral a seller asked
//! for by flagging the record "Sync with Partner Center" (crm.md §3.4).

use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::outcome::SyncOutcome;
use refsync_core::mapping::EntityMapping;
use refsync_core::{CrmRecord, CrmRecordRef};

impl SyncEngine {
    /// Creates the referral for a flagged record and links the two.
    pub(crate) async fn share_record(
        &self,
        _em: &EntityMapping,
        _record_ref: &CrmRecordRef,
        _record: CrmRecord,
    ) -> Result<SyncOutcome, SyncError> {
        Err(SyncError::Unsyncable(
            "creating referrals from CRM records is not implemented yet".to_owned(),
        ))
    }
}
