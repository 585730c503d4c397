//! Ready-made [`FaultResponder`]s that answer an injected status in each emulated
//! service's documented error shape.

use super::{FaultResponder, InjectedFault};
use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;

/// Partner Center's generic error body `{code, description, data, source}`
/// (partner-center.md §1.6). The numeric `code` for throttling and server errors
/// is not published, so the HTTP status is used (unconfirmed).
pub fn partner_center() -> FaultResponder {
    Arc::new(|fault: &InjectedFault| {
        let description = match fault.status.as_u16() {
            429 => {
                "Too many requests. Please retry after the time given in the Retry-After header."
            }
            503 => "The service is temporarily unavailable. Please try again later.",
            _ => fault
                .status
                .canonical_reason()
                .unwrap_or("An error occurred."),
        };
        (
            fault.status,
            Json(json!({
                "code": fault.status.as_u16(),
                "description": description,
                "data": [],
                "source": "PartnerCenter",
            })),
        )
            .into_response()
    })
}

/// Dataverse's `{"error":{"code","message"}}` (crm.md §1.11); a 429 carries the
/// documented request-count limit code `0x80072322` and message (§1.12).
pub fn dataverse() -> FaultResponder {
    Arc::new(|fault: &InjectedFault| {
        let (code, message) = match fault.status.as_u16() {
            429 => (
                "0x80072322",
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
                    .to_owned(),
            ),
            500 => ("0x80040216", "An unexpected error occurred.".to_owned()),
            _ => (
                "",
                fault
                    .status
                    .canonical_reason()
                    .unwrap_or("An error occurred.")
                    .to_owned(),
            ),
        };
        (
            fault.status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response()
    })
}

/// Salesforce's error array `[{"message","errorCode"}]` (crm.md §2). Salesforce
/// signals an exceeded API limit with **403** `REQUEST_LIMIT_EXCEEDED`, so a rule
/// asking for 429 is answered as that 403.
pub fn salesforce() -> FaultResponder {
    Arc::new(|fault: &InjectedFault| {
        let (status, code, message) = match fault.status.as_u16() {
            429 | 403 => (
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ),
            401 => (
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            ),
            503 => (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_UNAVAILABLE",
                "Server temporarily unavailable.",
            ),
            500 => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)",
            ),
            _ => (
                fault.status,
                "UNKNOWN_EXCEPTION",
                fault.status.canonical_reason().unwrap_or("Error"),
            ),
        };
        (
            status,
            Json(json!([{ "message": message, "errorCode": code }])),
        )
            .into_response()
    })
}

/// A plain-text body with the reason phrase (for the Entra endpoint and tests).
pub fn plain() -> FaultResponder {
    Arc::new(|fault: &InjectedFault| {
        (
            fault.status,
            fault
                .status
                .canonical_reason()
                .unwrap_or("error")
                .to_owned(),
        )
            .into_response()
    })
}
