//! The Partner Center webhook event payload (reference §2.3). Property names are
//! matched case-insensitively: the docs write PascalCase, the swagger camelCase.

use crate::ids::{IdError, ReferralId};
use crate::open_enum;
use crate::wire::parse_datetime;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

open_enum! {
    /// `EventName`: `{resource}-{action}`.
    pub enum EventName {
        /// A referral was created.
        ReferralCreated = "referral-created",
        /// A referral was updated.
        ReferralUpdated = "referral-updated",
        /// Another referral of the same engagement was created.
        RelatedReferralCreated = "related-referral-created",
        /// Another referral of the same engagement was updated.
        RelatedReferralUpdated = "related-referral-updated",
        /// A validation (test) event.
        TestCreated = "test-created",
    }
}

impl EventName {
    /// The four referral events refsync registers for by default.
    pub const REFERRAL_EVENTS: [EventName; 4] = [
        EventName::ReferralCreated,
        EventName::ReferralUpdated,
        EventName::RelatedReferralCreated,
        EventName::RelatedReferralUpdated,
    ];

    /// True for the four referral events.
    pub fn is_referral_event(&self) -> bool {
        Self::REFERRAL_EVENTS.contains(self)
    }

    /// True for the `related-referral-*` events, which name the other half of an engagement.
    pub fn is_related(&self) -> bool {
        matches!(
            self,
            EventName::RelatedReferralCreated | EventName::RelatedReferralUpdated
        )
    }
}

/// Why an event payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    /// Not a JSON object.
    #[error("event body is not a JSON object")]
    NotAnObject,
    /// A required property is missing or not a string.
    #[error("event property {0} is missing or not a string")]
    Missing(&'static str),
    /// `ResourceChangeUtcDate` is not a date-time.
    #[error("ResourceChangeUtcDate is not a date-time: {0:?}")]
    BadDate(String),
    /// A referral event whose `ResourceUri` names no referral.
    #[error("ResourceUri does not name a referral: {0:?}")]
    NotAReferralUri(String),
    /// The referral id in `ResourceUri` is not acceptable.
    #[error("ResourceUri holds a bad referral id: {0}")]
    BadReferralId(IdError),
}

/// A webhook event as Partner Center posts it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookEvent {
    /// What happened.
    pub event_name: EventName,
    /// The resource it happened to.
    pub resource_uri: String,
    /// The resource kind (`referral` for the referral events).
    pub resource_name: String,
    /// An audit record, when Partner Center provides one.
    pub audit_uri: Option<String>,
    /// When the change happened.
    pub resource_change_utc_date: DateTime<Utc>,
}

fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, EventError> {
    get_ci(obj, name)
        .and_then(Value::as_str)
        .ok_or(EventError::Missing(name))
}

impl WebhookEvent {
    /// Parses an event from a JSON value, matching property names case-insensitively.
    pub fn from_value(v: &Value) -> Result<Self, EventError> {
        let obj = v.as_object().ok_or(EventError::NotAnObject)?;
        let event_name = EventName::parse(required_str(obj, "EventName")?);
        let resource_uri = required_str(obj, "ResourceUri")?.to_owned();
        let resource_name = required_str(obj, "ResourceName")?.to_owned();
        let audit_uri = get_ci(obj, "AuditUri")
            .or_else(|| get_ci(obj, "AuditUrl"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let date = required_str(obj, "ResourceChangeUtcDate")?;
        let resource_change_utc_date =
            parse_datetime(date).ok_or_else(|| EventError::BadDate(date.to_owned()))?;
        Ok(Self {
            event_name,
            resource_uri,
            resource_name,
            audit_uri,
            resource_change_utc_date,
        })
    }

    /// Parses an event from the raw body bytes.
    pub fn from_slice(body: &[u8]) -> Result<Self, EventError> {
        let v: Value = serde_json::from_slice(body).map_err(|_| EventError::NotAnObject)?;
        Self::from_value(&v)
    }

    /// The referral the event is about, taken from `ResourceUri`. Both documented
    /// shapes are understood: `…/engagements/v1/referrals/{id}` (the webhook docs, on
    /// api.partnercenter.microsoft.com) and `…/v1.0/engagements/referrals/{id}` (the
    /// Referrals API on api.partner.microsoft.com). The host is not trusted for
    /// anything: refsync fetches the referral from its configured Referrals API.
    pub fn referral_id(&self) -> Result<ReferralId, EventError> {
        referral_id_from_uri(&self.resource_uri)
    }
}

impl<'de> Deserialize<'de> for WebhookEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_value(&v).map_err(serde::de::Error::custom)
    }
}

/// Extracts the referral id from a referral resource URI (see [`WebhookEvent::referral_id`]).
pub fn referral_id_from_uri(uri: &str) -> Result<ReferralId, EventError> {
    let not_referral = || EventError::NotAReferralUri(uri.to_owned());
    let parsed = url::Url::parse(uri).map_err(|_| not_referral())?;
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(|s| s.filter(|seg| !seg.is_empty()).collect())
        .unwrap_or_default();
    let id = match segments.as_slice() {
        [.., "engagements", "v1", "referrals", id] => *id,
        [.., "v1.0", "engagements", "referrals", id] => *id,
        _ => return Err(not_referral()),
    };
    ReferralId::parse(id).map_err(EventError::BadReferralId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_payload_parses() {
        let ev = WebhookEvent::from_value(&json!({
          "EventName": "referral-updated",
          "ResourceUri": "https://api.partnercenter.microsoft.com/engagements/v1/referrals/c5fbb3b6-be74",
          "ResourceName": "referral",
          "AuditUri": null,
          "ResourceChangeUtcDate": "2018-02-17T00:05:39.5485487+00:00"
        }))
        .unwrap();
        assert_eq!(ev.event_name, EventName::ReferralUpdated);
        assert!(ev.event_name.is_referral_event());
        assert_eq!(ev.referral_id().unwrap().as_str(), "c5fbb3b6-be74");
        assert_eq!(ev.audit_uri, None);
    }

    #[test]
    fn property_names_are_case_insensitive() {
        let ev = WebhookEvent::from_value(&json!({
          "eventName": "related-referral-created",
          "resourceuri": "https://api.partner.microsoft.com/v1.0/engagements/referrals/r-1",
          "RESOURCENAME": "referral",
          "resourceChangeUtcDate": "2024-01-01T00:00:00Z"
        }))
        .unwrap();
        assert!(ev.event_name.is_related());
        assert_eq!(ev.referral_id().unwrap().as_str(), "r-1");
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        assert_eq!(
            WebhookEvent::from_value(&json!([])),
            Err(EventError::NotAnObject)
        );
        assert_eq!(
            WebhookEvent::from_value(&json!({"EventName": "referral-created"})),
            Err(EventError::Missing("ResourceUri"))
        );
        let bad_date = json!({"EventName": "x", "ResourceUri": "u", "ResourceName": "r",
            "ResourceChangeUtcDate": "soon"});
        assert!(matches!(
            WebhookEvent::from_value(&bad_date),
            Err(EventError::BadDate(_))
        ));
    }

    #[test]
    fn referral_uris_are_parsed_strictly() {
        assert!(referral_id_from_uri("https://x/engagements/v1/referrals/").is_err());
        assert!(referral_id_from_uri("https://x/subscriptions/abc").is_err());
        assert!(referral_id_from_uri("not a url").is_err());
        assert!(matches!(
            referral_id_from_uri("https://x/engagements/v1/referrals/a%27b"),
            Err(EventError::BadReferralId(_))
        ));
        assert_eq!(
            referral_id_from_uri("http://127.0.0.1:7070/v1.0/engagements/referrals/abc?x=1")
                .unwrap()
                .as_str(),
            "abc"
        );
    }

    #[test]
    fn unknown_events_are_kept() {
        let n = EventName::parse("invoice-ready");
        assert!(!n.is_referral_event());
        assert_eq!(n.as_str(), "invoice-ready");
    }
}
