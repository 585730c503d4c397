//! Writing Partner Center: JSON Patch with `If-Match` (partner-center.md §1.1,
//! §1.5), asking for the updated referral back so its new eTag is stored and the
//! webhook our own write causes takes the fast path.

use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::metrics as m;
use refsync_core::mapping::PatchOp;
use refsync_core::{Referral, ReferralId};

impl SyncEngine {
    /// Patches the referral at the version it was read at. A stale eTag fails with
    /// `ReferralsError::PreconditionFailed` (412): re-read both sides and merge again.
    pub(crate) async fn patch_referral(
        &self,
        id: &ReferralId,
        read: &Referral,
        ops: &[PatchOp],
    ) -> Result<Referral, SyncError> {
        let updated = self
            .referrals
            .update(id, ops, read.e_tag.as_ref(), true)
            .await?;
        m::pc_write("patch");
        Ok(updated.unwrap_or_else(|| {
            // The service ignored `Prefer: return=representation`: the new eTag is
            // unknown, so the next sync takes the full path once instead of the fast one.
            let mut stale = read.clone();
            stale.e_tag = None;
            stale
        }))
    }
}
