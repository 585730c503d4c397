//! Received webhook events: what intake hands the store, and what operators read back.
//!
//! The store keeps the raw body and the signature headers exactly as received so an
//! operator can re-verify or replay an event later; it never interprets them.

use chrono::{DateTime, Utc};
use refsync_core::{EventName, ReferralId, SyncKey};
use std::fmt;

/// The identity of a delivery for deduplication: Partner Center retries a delivery
/// (reference §2.4), and a retry carries the same event name, resource and
/// `ResourceChangeUtcDate` (§2.3), so those three together name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupeKey(String);

impl DedupeKey {
    /// Builds the key from the three fields that identify a delivery. The date is
    /// written with full precision so two changes in the same second stay distinct.
    pub fn for_event(
        event_name: &EventName,
        referral_id: Option<&ReferralId>,
        resource_change_utc: DateTime<Utc>,
    ) -> Self {
        let referral = referral_id.map_or("-", ReferralId::as_str);
        Self(format!(
            "{}|{}|{}",
            event_name.as_str(),
            referral,
            resource_change_utc.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        ))
    }

    /// Wraps a key read back from the store (or built some other way by the caller).
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

refsync_core::open_enum! {
    /// What intake did with an event.
    pub enum EventOutcome {
        /// A referral event: its sync keys were enqueued in the same transaction.
        Enqueued = "enqueued",
        /// Any other event (e.g. `test-created`): stored and answered, nothing to sync.
        Acknowledged = "acknowledged",
    }
}

/// The signature-related headers of a callback, as received (reference §2.5). Kept
/// for audit and re-verification; none of them is a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Authorization` or `x-ms-signature`, whichever carried the signature.
    pub signature: Option<String>,
    /// `x-ms-certificate-url`.
    pub certificate_url: Option<String>,
    /// `x-ms-signature-algorithm`.
    pub algorithm: Option<String>,
}

/// A verified event, ready to be committed together with the sync keys it triggers.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Deduplication key; an event whose key is already stored is a duplicate.
    pub dedupe_key: DedupeKey,
    /// `EventName`.
    pub event_name: EventName,
    /// The referral named by `ResourceUri`, for referral events.
    pub referral_id: Option<ReferralId>,
    /// `ResourceChangeUtcDate`.
    pub resource_change_utc: DateTime<Utc>,
    /// When intake received the request.
    pub received_at: DateTime<Utc>,
    /// The raw body bytes, exactly as signed.
    pub body: Vec<u8>,
    /// The signature headers as received.
    pub signature: SignatureHeaders,
    /// What intake decided to do with the event.
    pub outcome: EventOutcome,
    /// Keys to enqueue (trigger `webhook`, due at `received_at`) in the same transaction.
    pub enqueue: Vec<SyncKey>,
}

/// A stored event's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub i64);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What `record_event` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Stored (and its keys enqueued); committed to disk before this was returned.
    Recorded {
        /// The new row.
        id: EventId,
    },
    /// An event with the same dedupe key was already stored; nothing new was written.
    Duplicate,
}

/// A received event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Row id (increasing in commit order within one store).
    pub id: EventId,
    /// Deduplication key.
    pub dedupe_key: DedupeKey,
    /// `EventName`.
    pub event_name: EventName,
    /// The referral, for referral events.
    pub referral_id: Option<ReferralId>,
    /// `ResourceChangeUtcDate`.
    pub resource_change_utc: DateTime<Utc>,
    /// When intake received it.
    pub received_at: DateTime<Utc>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The signature headers as received.
    pub signature: SignatureHeaders,
    /// What intake did with it.
    pub outcome: EventOutcome,
}

/// Which events `list_events` returns; every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Only events about this referral.
    pub referral_id: Option<ReferralId>,
    /// Only events with this name.
    pub event_name: Option<EventName>,
    /// Only events with this outcome.
    pub outcome: Option<EventOutcome>,
    /// Only events older than this id (paging backwards through the log).
    pub before: Option<EventId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dedupe_keys_keep_sub_second_precision() {
        let id = ReferralId::parse("r-1").unwrap();
        let t = Utc.timestamp_opt(1_700_000_000, 548_548_700).unwrap();
        let a = DedupeKey::for_event(&EventName::ReferralUpdated, Some(&id), t);
        let b = DedupeKey::for_event(
            &EventName::ReferralUpdated,
            Some(&id),
            t + chrono::Duration::nanoseconds(100),
        );
        assert_ne!(a, b);
        assert_eq!(
            a.as_str(),
            "referral-updated|r-1|2023-11-14T22:13:20.548548700Z"
        );
        let none = DedupeKey::for_event(&EventName::TestCreated, None, t);
        assert!(none.as_str().starts_with("test-created|-|"));
    }
}
