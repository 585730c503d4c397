//! [`SyncOutcome`]: what one successful sync of one key did, for the worker's
//! metrics and logs, the operator's `refsync sync`, and tests.

use refsync_core::{CrmRecordRef, ReferralId};
use std::fmt;

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The referral's eTag is the one stored at the last sync and nothing pointed at
    /// the CRM: nothing was read beyond the referral, nothing written.
    Unchanged,
    /// Both sides were read and merged; they already agree (the link may have been
    /// saved with new version tags, but neither side was written).
    InSync {
        /// The linked record.
        record: CrmRecordRef,
    },
    /// A CRM record was created from the referral (or found by its referral id).
    Created {
        /// The record.
        record: CrmRecordRef,
    },
    /// The lead was qualified into an opportunity.
    Qualified {
        /// The retired lead.
        lead: CrmRecordRef,
        /// The opportunity now linked.
        opportunity: CrmRecordRef,
    },
    /// Changes were written to one side or both.
    Updated {
        /// The linked record.
        record: CrmRecordRef,
        /// Fields written to the CRM.
        crm_fields: usize,
        /// Fields written to Partner Center.
        pc_fields: usize,
    },
    /// The referral no longer exists in Partner Center; the CRM record is kept.
    ReferralGone,
    /// The referral is another organization's half of an engagement: the partner's
    /// own referrals of that engagement were enqueued.
    FollowedEngagement {
        /// The referrals enqueued.
        enqueued: Vec<ReferralId>,
    },
    /// A referral was created in Partner Center from a CRM record.
    Shared {
        /// The new referral.
        referral: ReferralId,
        /// The record.
        record: CrmRecordRef,
    },
    /// The key needs no work (a CRM record not flagged for sharing, one that is gone,
    /// one already linked); the reason says which.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl SyncOutcome {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            SyncOutcome::Unchanged => "unchanged",
            SyncOutcome::InSync { .. } => "in_sync",
            SyncOutcome::Created { .. } => "created",
            SyncOutcome::Qualified { .. } => "qualified",
            SyncOutcome::Updated { .. } => "updated",
            SyncOutcome::ReferralGone => "referral_gone",
            SyncOutcome::FollowedEngagement { .. } => "followed",
            SyncOutcome::Shared { .. } => "shared",
            SyncOutcome::Skipped { .. } => "skipped",
        }
    }
}

impl fmt::Display for SyncOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncOutcome::Unchanged => f.write_str("unchanged since the last sync"),
            SyncOutcome::InSync { record } => write!(f, "in sync with {record}"),
            SyncOutcome::Created { record } => write!(f, "created {record}"),
            SyncOutcome::Qualified { lead, opportunity } => {
                write!(f, "qualified {lead} into {opportunity}")
            }
            SyncOutcome::Updated {
                record,
                crm_fields,
                pc_fields,
            } => write!(
                f,
                "{record}: {crm_fields} field(s) written to the CRM, {pc_fields} to Partner Center"
            ),
            SyncOutcome::ReferralGone => f.write_str("the referral no longer exists"),
            SyncOutcome::FollowedEngagement { enqueued } => {
                write!(
                    f,
                    "followed the engagement: {} referral(s) enqueued",
                    enqueued.len()
                )
            }
            SyncOutcome::Shared { referral, record } => {
                write!(f, "shared {record} as referral {referral}")
            }
            SyncOutcome::Skipped { reason } => write!(f, "skipped: {reason}"),
        }
    }
}
