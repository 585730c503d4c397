//! Links between a referral and its CRM record, with the base snapshot the three-way
//! merge compares against (DESIGN.md, "three-way merge").
//!
//! A link has a stable surrogate id; the referral id and the CRM record are nullable
//! unique columns. A CRM-originated record starts as a link with no referral; when the
//! worker creates the referral it saves the same link with the referral id filled in,
//! which re-keys it in one update. Likewise when a lead is qualified and the link
//! moves to the opportunity.

use chrono::{DateTime, Utc};
use refsync_core::{CrmRecordRef, EngagementId, Etag, ReferralId};
use serde_json::{Map, Value};
use std::fmt;

/// A link's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub i64);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The field values both sides agreed on at the last successful sync: mapped field
/// name → JSON value.
pub type BaseSnapshot = Map<String, Value>;

/// One referral ↔ CRM record link.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncLink {
    /// Row id; `None` for a link not yet saved.
    pub id: Option<LinkId>,
    /// The referral; `None` while a CRM-originated record has no referral yet.
    pub referral_id: Option<ReferralId>,
    /// The referral's engagement (shared with the other referrals of a co-sell).
    pub engagement_id: Option<EngagementId>,
    /// The linked CRM record (lead, later opportunity).
    pub crm_record: Option<CrmRecordRef>,
    /// The last agreed field values.
    pub base: BaseSnapshot,
    /// The referral `eTag` last seen.
    pub referral_etag: Option<Etag>,
    /// The referral `updatedDateTime` last seen.
    pub referral_updated_at: Option<DateTime<Utc>>,
    /// The CRM record's modified time last seen.
    pub crm_modified_at: Option<DateTime<Utc>>,
    /// When the link was first saved (set by the store).
    pub created_at: DateTime<Utc>,
    /// When the link was last saved (set by the store).
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version: the version this copy was loaded at (0 for a
    /// new link). Saving succeeds only if the stored version still equals it.
    pub version: i64,
}

impl SyncLink {
    /// A new, unsaved link for a referral.
    pub fn for_referral(referral_id: ReferralId, now: DateTime<Utc>) -> Self {
        Self::empty(Some(referral_id), None, now)
    }

    /// A new, unsaved link for a CRM record that has no referral yet.
    pub fn for_crm_record(record: CrmRecordRef, now: DateTime<Utc>) -> Self {
        Self::empty(None, Some(record), now)
    }

    fn empty(
        referral_id: Option<ReferralId>,
        crm_record: Option<CrmRecordRef>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: None,
            referral_id,
            engagement_id: None,
            crm_record,
            base: Map::new(),
            referral_etag: None,
            referral_updated_at: None,
            crm_modified_at: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}
