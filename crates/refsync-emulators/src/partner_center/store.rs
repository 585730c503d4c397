//! The emulator's referrals: each kept as a typed [`Referral`] (which keeps every
//! field it does not model) plus its JSON form, indexed by engagement, with a
//! creation sequence number that gives list paging a total order.

use chrono::{DateTime, Utc};
use refsync_core::Referral;
use refsync_core::ids::Etag;
use serde_json::Value;
use std::collections::HashMap;

/// One stored referral.
#[derive(Debug, Clone)]
pub(crate) struct StoredReferral {
    /// Creation order; ties in `$orderby` are broken by it.
    pub seq: u64,
    /// The referral as served.
    pub value: Value,
    /// The same, typed.
    pub referral: Referral,
}

impl StoredReferral {
    pub(crate) fn id(&self) -> &str {
        self.referral.id.as_ref().map(|i| i.as_str()).unwrap_or("")
    }

    pub(crate) fn engagement_id(&self) -> Option<&str> {
        self.referral.engagement_id.as_ref().map(|e| e.as_str())
    }

    pub(crate) fn organization_id(&self) -> Option<&str> {
        self.referral.organization_id.as_deref()
    }
}

/// All referrals of the emulated service.
#[derive(Debug, Default)]
pub(crate) struct ReferralStore {
    records: HashMap<String, StoredReferral>,
    engagements: HashMap<String, Vec<String>>,
    next_seq: u64,
    versions: u64,
}

impl ReferralStore {
    pub(crate) fn get(&self, id: &str) -> Option<&StoredReferral> {
        self.records.get(id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &StoredReferral> {
        self.records.values()
    }

    /// Ids of the referrals of an engagement, in creation order.
    pub(crate) fn engagement(&self, engagement_id: &str) -> &[String] {
        self.engagements
            .get(engagement_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// A fresh eTag shaped like the documented ones
    /// (`"2500ec5a-0000-0000-0000-5bf4967d0000"`, quotes included, §1.5).
    pub(crate) fn next_etag(&mut self, now: DateTime<Utc>) -> Etag {
        self.versions += 1;
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
        Etag::new(format!(
            "\"{:08x}-0000-0000-0000-{millis:012x}\"",
            self.versions & 0xffff_ffff
        ))
    }

    /// Stores a new referral (its id and engagement id already set).
    pub(crate) fn insert(&mut self, referral: Referral) -> &StoredReferral {
        let id = referral
            .id
            .as_ref()
            .map(|i| i.as_str().to_owned())
            .unwrap_or_default();
        if let Some(eid) = &referral.engagement_id {
            self.engagements
                .entry(eid.as_str().to_owned())
                .or_default()
                .push(id.clone());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let stored = StoredReferral {
            seq,
            value: referral.to_value(),
            referral,
        };
        self.records.entry(id).insert_entry(stored).into_mut()
    }

    /// Replaces a stored referral (same id and engagement, which are read-only).
    pub(crate) fn replace(&mut self, referral: Referral) -> Option<&StoredReferral> {
        let id = referral.id.as_ref()?.as_str().to_owned();
        let slot = self.records.get_mut(&id)?;
        slot.value = referral.to_value();
        slot.referral = referral;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refsync_core::ids::{EngagementId, ReferralId};

    fn referral(id: &str, eid: &str) -> Referral {
        Referral {
            id: Some(ReferralId::parse(id).unwrap()),
            engagement_id: Some(EngagementId::parse(eid).unwrap()),
            ..Referral::default()
        }
    }

    #[test]
    fn engagements_are_indexed_in_creation_order() {
        let mut store = ReferralStore::default();
        store.insert(referral("a", "e1"));
        store.insert(referral("b", "e2"));
        store.insert(referral("c", "e1"));
        assert_eq!(store.engagement("e1"), ["a", "c"]);
        assert!(store.engagement("nope").is_empty());
        assert!(store.get("c").unwrap().seq > store.get("a").unwrap().seq);
        assert_eq!(store.iter().count(), 3);
    }

    #[test]
    fn etags_are_quoted_and_change_every_time() {
        let mut store = ReferralStore::default();
        let now = Utc::now();
        let a = store.next_etag(now);
        let b = store.next_etag(now);
        assert_ne!(a, b);
        assert!(a.as_str().starts_with('"') && a.as_str().ends_with('"'));
        assert_eq!(a.as_str().len(), 38);
    }
}
