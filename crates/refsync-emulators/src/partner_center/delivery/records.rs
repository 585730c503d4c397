//! What a delivery is and what the delivery log, the offline queue and the
//! validation-event status report about it; and the exact event body.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where the signature goes (partner-center.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureHeader {
    /// `Authorization: Signature <base64>` (the default).
    Authorization,
    /// `x-ms-signature: Signature <base64>` (`SignatureTokenToMsSignatureHeader: true`).
    MsSignature,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Being attempted, or waiting between attempts or on a delay fault.
    Pending,
    /// Held by a `hold` fault until released.
    Held,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed; parked in the offline queue.
    Offline,
    /// Dropped by a fault: never sent, parked in the offline queue.
    Dropped,
}

/// One delivery of one event to the registered URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    /// Delivery id.
    pub id: u64,
    /// `EventName`.
    pub event_name: String,
    /// `ResourceUri`.
    pub resource_uri: String,
    /// Where it is sent.
    pub url: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far (a duplicate's second copy not counted).
    pub attempts: u32,
    /// The fault applied to it, if any (`duplicate`, `delay`, `hold`, `drop`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// When the event was raised.
    pub created_at: DateTime<Utc>,
    /// The exact body posted (and signed).
    pub body: String,
}

/// One HTTP attempt, as the delivery log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryAttempt {
    /// The delivery it belongs to.
    pub delivery_id: u64,
    /// `EventName`.
    pub event_name: String,
    /// `ResourceUri`.
    pub resource_uri: String,
    /// Where it was sent.
    pub url: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// True for the extra copy a `duplicate` fault sends.
    pub duplicate: bool,
    /// The HTTP status received, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why no status was received (timeout, connection refused, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the response body (at most 1 KiB).
    pub response: String,
    /// When the attempt started.
    pub at: DateTime<Utc>,
}

impl DeliveryAttempt {
    /// True for a 2xx answer.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// An event parked after its last attempt (or dropped by a fault).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfflineEntry {
    /// The delivery.
    pub delivery_id: u64,
    /// `EventName`.
    pub event_name: String,
    /// `ResourceUri`.
    pub resource_uri: String,
    /// Where it was to go.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure (`HTTP 500`, `timeout`, `dropped by fault`).
    pub last_error: String,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
}

/// The documented event body (§2.3): PascalCase, `AuditUri` null. Written
/// indented, as in the documentation's sample, so receivers that re-serialise
/// instead of checking the raw bytes fail their signature check here too.
pub(crate) fn event_body(
    event_name: &str,
    resource_uri: &str,
    resource_name: &str,
    changed_at: DateTime<Utc>,
) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Body<'a> {
        event_name: &'a str,
        resource_uri: &'a str,
        resource_name: &'a str,
        audit_uri: Option<&'a str>,
        resource_change_utc_date: String,
    }
    let body = Body {
        event_name,
        resource_uri,
        resource_name,
        audit_uri: None,
        resource_change_utc_date: change_date(changed_at),
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serialising a struct of strings into a Vec cannot fail.
    let _ = body.serialize(&mut serializer);
    out
}

/// `2018-02-17T00:05:39.5485487+00:00`: seven fractional digits and an offset, as documented.
fn change_date(at: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}+00:00",
        at.format("%Y-%m-%dT%H:%M:%S"),
        at.timestamp_subsec_nanos() / 100
    )
}

/// .NET's `HttpStatusCode` name for a status, as validation-event results show it
/// (`"OK"` in the documented sample); the number for codes without a name here.
pub(crate) fn status_name(status: u16) -> String {
    let name = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "NoContent",
        301 => "MovedPermanently",
        302 => "Redirect",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        408 => "RequestTimeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        501 => "NotImplemented",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        other => return other.to_string(),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_body_has_the_documented_shape() {
        let at = Utc.with_ymd_and_hms(2018, 2, 17, 0, 5, 39).unwrap()
            + chrono::Duration::nanoseconds(548_548_700);
        let body = event_body(
            "referral-updated",
            "https://x/engagements/v1/referrals/r1",
            "referral",
            at,
        );
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "{\n    \"EventName\": \"referral-updated\",\n    \"ResourceUri\": \"https://x/engagements/v1/referrals/r1\",\n    \"ResourceName\": \"referral\",\n    \"AuditUri\": null,\n    \"ResourceChangeUtcDate\": \"2018-02-17T00:05:39.5485487+00:00\"\n}"
        );
        let parsed = refsync_core::WebhookEvent::from_slice(text.as_bytes()).unwrap();
        assert_eq!(parsed.referral_id().unwrap().as_str(), "r1");
    }

    #[test]
    fn status_names_follow_dotnet() {
        assert_eq!(status_name(200), "OK");
        assert_eq!(status_name(503), "ServiceUnavailable");
        assert_eq!(status_name(418), "418");
    }
}
