//! The webhook registration API under `/webhooks/v1/registration`
//! (partner-center.md §2.1, §2.2): one registration per tenant (one URL and a list
//! of events), the supported event names, and validation (test) events with their
//! per-attempt delivery status, throttled to 2 requests a minute.
//!
//! Unconfirmed behaviour, chosen here: POST when a registration exists is 409
//! (the connector's "overwrite" option suggests a create does not replace), PUT
//! without one is 404, and there is no DELETE (none is documented; the control
//! API can remove it). Every documented answer is 200.

use super::PartnerCenterEmulator;
use super::access::{Refusal, registration_caller};
use super::delivery::{DeliveryState, SignatureHeader, status_name};
use super::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

/// Every event name Partner Center documents (§2.2), as `GET …/events` lists them.
pub const SUPPORTED_EVENTS: [&str; 25] = [
    "referral-created",
    "referral-updated",
    "related-referral-created",
    "related-referral-updated",
    "test-created",
    "subscription-updated",
    "usagerecords-thresholdExceeded",
    "invoice-ready",
    "azure-fraud-event-detected",
    "dap-admin-relationship-approved",
    "dap-admin-relationship-terminated",
    "dap-admin-relationship-terminated-by-microsoft",
    "reseller-relationship-accepted-by-customer",
    "granular-admin-access-assignment-activated",
    "granular-admin-access-assignment-created",
    "granular-admin-access-assignment-deleted",
    "granular-admin-access-assignment-updated",
    "granular-admin-relationship-activated",
    "granular-admin-relationship-approved",
    "granular-admin-relationship-expired",
    "granular-admin-relationship-terminated",
    "new-commerce-migration-completed",
    "new-commerce-migration-created",
    "new-commerce-migration-failed",
    "new-commerce-migration-schedule-failed",
];

/// The registration API's documented base, used in `test-created` events' `ResourceUri`.
const REGISTRATION_API_BASE: &str = "https://api.partnercenter.microsoft.com";

/// Validation events and their results are purged after 7 days (§2.1).
const VALIDATION_RETENTION_DAYS: i64 = 7;

/// A webhook registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookRegistration {
    /// Server-assigned subscriber id.
    pub subscriber_id: Uuid,
    /// Where events are posted.
    pub webhook_url: String,
    /// The events subscribed to (canonical spelling).
    pub webhook_events: Vec<String>,
    /// Signature in `x-ms-signature` instead of `Authorization`.
    pub signature_token_to_ms_signature_header: bool,
    /// When it was created or last updated.
    pub last_modified_timestamp: DateTime<Utc>,
}

impl WebhookRegistration {
    /// True when the registration subscribes to `event` (names compared ignoring case).
    pub fn subscribes_to(&self, event: &str) -> bool {
        self.webhook_events
            .iter()
            .any(|e| e.eq_ignore_ascii_case(event))
    }

    /// Where the signature goes.
    pub fn signature_header(&self) -> SignatureHeader {
        if self.signature_token_to_ms_signature_header {
            SignatureHeader::MsSignature
        } else {
            SignatureHeader::Authorization
        }
    }
}

#[derive(Debug, Clone)]
struct ValidationEvent {
    delivery_id: Option<u64>,
    callback_url: String,
    created_at: DateTime<Utc>,
}

/// Registration, throttle and validation events of the tenant.
#[derive(Debug, Default)]
pub(crate) struct RegistrationState {
    pub registration: Option<WebhookRegistration>,
    validation_requests: VecDeque<DateTime<Utc>>,
    validation_events: HashMap<Uuid, ValidationEvent>,
}

/// A registration request body, keys matched ignoring case (§2.1: the docs write
/// PascalCase, the swagger camelCase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistrationRequest {
    pub url: String,
    pub events: Vec<String>,
    pub ms_signature_header: bool,
}

fn get_ci<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Reads and checks a create or update body.
pub(crate) fn parse_registration(body: &[u8]) -> Result<RegistrationRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not JSON: {e}.")))?;
    let object = value
        .as_object()
        .ok_or_else(|| ApiError::bad_request("The request body must be a JSON object."))?;
    let url = get_ci(object, "WebhookUrl")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request("WebhookUrl is required.").with_data([json!("WebhookUrl")])
        })?;
    let parsed = url::Url::parse(url).map_err(|e| {
        ApiError::bad_request(format!("WebhookUrl '{url}' is not an absolute URL: {e}."))
            .with_data([json!("WebhookUrl")])
    })?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(
            ApiError::bad_request(format!("WebhookUrl '{url}' must be an http(s) URL."))
                .with_data([json!("WebhookUrl")]),
        );
    }
    let names = get_ci(object, "WebhookEvents")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("WebhookEvents must be a non-empty array of event names.")
                .with_data([json!("WebhookEvents")])
        })?;
    let mut events = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        let text = name.as_str().unwrap_or_default();
        match SUPPORTED_EVENTS
            .iter()
            .find(|e| e.eq_ignore_ascii_case(text))
        {
            Some(known) if !events.contains(&(*known).to_owned()) => {
                events.push((*known).to_owned());
            }
            Some(_) => {}
            None => unknown.push(name.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Unsupported webhook events: {}. GET /webhooks/v1/registration/events lists the supported ones.",
            unknown
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_data(unknown));
    }
    let ms_signature_header = match get_ci(object, "SignatureTokenToMsSignatureHeader") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "SignatureTokenToMsSignatureHeader must be true or false, not {other}."
            ))
            .with_data([json!("SignatureTokenToMsSignatureHeader")]));
        }
    };
    Ok(RegistrationRequest {
        url: url.to_owned(),
        events,
        ms_signature_header,
    })
}

/// The create/update answer: `{SubscriberId, WebhookUrl, WebhookEvents}` as documented.
fn created_body(r: &WebhookRegistration) -> Value {
    json!({
        "SubscriberId": r.subscriber_id,
        "WebhookUrl": r.webhook_url,
        "WebhookEvents": r.webhook_events,
    })
}

fn no_registration() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "No webhook registration exists for this tenant.",
    )
}

impl PartnerCenterEmulator {
    fn registration_auth(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        registration_caller(
            self.authority(),
            headers,
            &self.config().registration_audience,
        )
    }

    /// Creates, or with `replace` updates, the registration.
    pub(crate) fn register(
        &self,
        request: RegistrationRequest,
        replace: bool,
    ) -> Result<WebhookRegistration, ApiError> {
        let now = self.now();
        let mut state = self.state();
        let slot = &mut state.registration.registration;
        let subscriber_id = match (slot.as_ref(), replace) {
            (Some(_), false) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "A webhook registration already exists for this tenant; update it with PUT.",
                ));
            }
            (None, true) => return Err(no_registration()),
            (Some(existing), true) => existing.subscriber_id,
            (None, false) => Uuid::new_v4(),
        };
        let registration = WebhookRegistration {
            subscriber_id,
            webhook_url: request.url,
            webhook_events: request.events,
            signature_token_to_ms_signature_header: request.ms_signature_header,
            last_modified_timestamp: now,
        };
        *slot = Some(registration.clone());
        Ok(registration)
    }

    /// Sends a validation (`test-created`) event; returns its correlation id.
    pub(crate) fn send_validation_event(&self) -> Result<Uuid, ApiError> {
        let now = self.now();
        let per_minute = self.config().validation_events_per_minute;
        let mut state = self.state();
        let reg_state = &mut state.registration;
        let registration = reg_state.registration.clone().ok_or_else(no_registration)?;
        if !registration.subscribes_to("test-created") {
            return Err(ApiError::bad_request(
                "The registration must include the test-created event to send a validation event.",
            )
            .with_data([json!("test-created")]));
        }
        let minute = chrono::Duration::seconds(60);
        while reg_state
            .validation_requests
            .front()
            .is_some_and(|t| now - *t >= minute)
        {
            reg_state.validation_requests.pop_front();
        }
        if reg_state.validation_requests.len() >= per_minute.max(1) {
            let oldest = reg_state
                .validation_requests
                .front()
                .copied()
                .unwrap_or(now);
            let wait = (oldest + minute - now).num_milliseconds();
            let retry_after = u64::try_from((wait + 999) / 1000).unwrap_or(1).max(1);
            return Err(ApiError::throttled(
                format!(
                    "Validation events are limited to {per_minute} per minute; retry after {retry_after} seconds."
                ),
                retry_after,
            ));
        }
        reg_state.validation_requests.push_back(now);
        let retention = chrono::Duration::days(VALIDATION_RETENTION_DAYS);
        reg_state
            .validation_events
            .retain(|_, v| now - v.created_at < retention);
        let correlation_id = Uuid::new_v4();
        let resource_uri = format!(
            "{REGISTRATION_API_BASE}/webhooks/v1/registration/validationEvents/{correlation_id}"
        );
        let delivery_id =
            self.send_event(&registration, "test-created", &resource_uri, "test", now);
        reg_state.validation_events.insert(
            correlation_id,
            ValidationEvent {
                delivery_id,
                callback_url: registration.webhook_url.clone(),
                created_at: now,
            },
        );
        Ok(correlation_id)
    }

    /// The status of a validation event, in the documented shape.
    pub(crate) fn validation_event_status(&self, correlation_id: Uuid) -> Result<Value, ApiError> {
        let now = self.now();
        let event = {
            let state = self.state();
            state
                .registration
                .validation_events
                .get(&correlation_id)
                .filter(|v| now - v.created_at < chrono::Duration::days(VALIDATION_RETENTION_DAYS))
                .cloned()
        }
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("No validation event with correlation id {correlation_id}."),
            )
        })?;
        let (status, results) = match event.delivery_id {
            None => ("completed", Vec::new()),
            Some(id) => {
                let finished = self.delivery().delivery(id).is_none_or(|d| {
                    matches!(
                        d.state,
                        DeliveryState::Delivered | DeliveryState::Offline | DeliveryState::Dropped
                    )
                });
                let results = self
                    .delivery()
                    .attempts_of(id)
                    .into_iter()
                    .filter(|a| !a.duplicate)
                    .map(|a| {
                        json!({
                            "responseCode": a.status.map(status_name).unwrap_or_default(),
                            "responseMessage": a.error.clone().unwrap_or(a.response.clone()),
                            "systemError": a.status.is_none(),
                            "dateTimeUtc": result_time(a.at),
                        })
                    })
                    .collect();
                (if finished { "completed" } else { "inProgress" }, results)
            }
        };
        Ok(json!({
            "correlationId": correlation_id,
            "partnerId": self.config().partner.organization_id,
            "status": status,
            "callbackUrl": event.callback_url,
            "results": results,
        }))
    }
}

/// `2017-12-08T21:39:48.2386997`: seven fractional digits, no offset, as in the
/// documented validation-event status.
fn result_time(at: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}",
        at.format("%Y-%m-%dT%H:%M:%S"),
        at.timestamp_subsec_nanos() / 100
    )
}

fn respond(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn get_registration(
    State(pc): State<PartnerCenterEmulator>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = pc.registration_auth(&headers) {
        return r.into_response();
    }
    respond(
        pc.registration()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .ok_or_else(no_registration),
    )
}

async fn write_registration(
    pc: PartnerCenterEmulator,
    headers: HeaderMap,
    body: Bytes,
    replace: bool,
) -> Response {
    if let Err(r) = pc.registration_auth(&headers) {
        return r.into_response();
    }
    respond(
        parse_registration(&body)
            .and_then(|request| pc.register(request, replace))
            .map(|r| created_body(&r)),
    )
}

pub(crate) async fn create_registration(
    State(pc): State<PartnerCenterEmulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_registration(pc, headers, body, false).await
}

pub(crate) async fn update_registration(
    State(pc): State<PartnerCenterEmulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write_registration(pc, headers, body, true).await
}

pub(crate) async fn list_events(
    State(pc): State<PartnerCenterEmulator>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = pc.registration_auth(&headers) {
        return r.into_response();
    }
    Json(SUPPORTED_EVENTS).into_response()
}

pub(crate) async fn post_validation_event(
    State(pc): State<PartnerCenterEmulator>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = pc.registration_auth(&headers) {
        return r.into_response();
    }
    respond(
        pc.send_validation_event()
            .map(|id| json!({ "correlationId": id })),
    )
}

pub(crate) async fn get_validation_event(
    State(pc): State<PartnerCenterEmulator>,
    headers: HeaderMap,
    Path(correlation_id): Path<String>,
) -> Response {
    if let Err(r) = pc.registration_auth(&headers) {
        return r.into_response();
    }
    let Ok(id) = Uuid::parse_str(&correlation_id) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("No validation event with correlation id {correlation_id}."),
        )
        .into_response();
    };
    respond(pc.validation_event_status(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_times_have_seven_digits_and_no_offset() {
        let at = chrono::DateTime::parse_from_rfc3339("2017-12-08T21:39:48.2386997Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(result_time(at), "2017-12-08T21:39:48.2386997");
    }

    #[test]
    fn bodies_are_read_ignoring_key_case() {
        let r = parse_registration(
            br#"{"webhookurl":"https://x.example/hook","WEBHOOKEVENTS":["Referral-Created","referral-created","test-created"],"signatureTokenToMsSignatureHeader":true}"#,
        )
        .unwrap();
        assert_eq!(r.url, "https://x.example/hook");
        assert_eq!(r.events, ["referral-created", "test-created"]);
        assert!(r.ms_signature_header);
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        let e = |b: &str| parse_registration(b.as_bytes()).unwrap_err().description;
        assert!(e(r#"{"WebhookEvents":["test-created"]}"#).contains("WebhookUrl"));
        assert!(
            e(r#"{"WebhookUrl":"/relative","WebhookEvents":["test-created"]}"#)
                .contains("absolute")
        );
        assert!(
            e(r#"{"WebhookUrl":"ftp://x/","WebhookEvents":["test-created"]}"#).contains("http")
        );
        assert!(e(r#"{"WebhookUrl":"https://x/","WebhookEvents":[]}"#).contains("non-empty"));
        assert!(
            e(r#"{"WebhookUrl":"https://x/","WebhookEvents":["referral-deleted"]}"#)
                .contains("referral-deleted")
        );
        assert!(e(r#"{"WebhookUrl":"https://x/","WebhookEvents":["test-created"],"SignatureTokenToMsSignatureHeader":"yes"}"#).contains("true or false"));
        assert!(e("not json").contains("not JSON"));
    }
}
