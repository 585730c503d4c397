//! The audit trail: an append-only record of what every sync did and why, for
//! `refsync audit <referral-id>` and the admin UI.

use chrono::{DateTime, Utc};
use refsync_core::{CrmRecordRef, ReferralId, SyncKey};
use serde_json::Value;

refsync_core::open_enum! {
    /// What kind of thing happened. Unknown values (from a newer instance) are kept.
    pub enum AuditKind {
        /// A CRM lead was created from a referral.
        CreatedLead = "created_lead",
        /// A CRM opportunity was created (or a lead qualified into one).
        CreatedOpportunity = "created_opportunity",
        /// A referral was created from a CRM record.
        CreatedReferral = "created_referral",
        /// CRM fields were updated from the referral.
        UpdatedCrm = "updated_crm",
        /// Referral fields were written back to Partner Center.
        WroteBack = "wrote_back",
        /// Both sides changed a field differently; the owner won.
        Conflict = "conflict",
        /// A CRM change would have broken the status rules and was not sent.
        RefusedTransition = "refused_transition",
        /// A sync failed and will be retried.
        Retry = "retry",
        /// A sync was given up on.
        DeadLetter = "dead_letter",
        /// Nothing differed from the base.
        SkippedUnchanged = "skipped_unchanged",
        /// The referral no longer exists in Partner Center (its CRM record is kept).
        ReferralGone = "referral_gone",
    }
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The queue key whose sync produced it.
    pub key: SyncKey,
    /// The referral, when there is one.
    pub referral_id: Option<ReferralId>,
    /// The CRM record, when there is one.
    pub crm_record: Option<CrmRecordRef>,
    /// What happened.
    pub kind: AuditKind,
    /// One human-readable line.
    pub summary: String,
    /// Structured detail, e.g. `{"field": {"old": …, "new": …}}`.
    pub detail: Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Row id (increasing in append order).
    pub id: i64,
    /// The entry as appended.
    pub entry: NewAuditEntry,
}
