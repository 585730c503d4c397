//! `POST {webhook.path}`: read the raw body (bounded), hand it to intake, map the
//! outcome to a status. The body's bytes are passed on untouched: the signature is
//! over exactly those bytes.

use super::AppState;
use crate::intake::{IntakeError, IntakeOutcome};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use refsync_partner_center::callback::UnverifiedCallback;
use serde_json::json;

pub(super) async fn receive_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.intake.max_body_bytes();
    // One byte over the limit is enough for the verifier to refuse with 413; a body
    // that keeps streaming past it is cut off here without buffering the rest.
    let body = match axum::body::to_bytes(body, limit.saturating_add(1)).await {
        Ok(bytes) => bytes,
        Err(_) => {
            metrics::counter!("refsync_webhook_rejected_total", "reason" => "body_too_large")
                .increment(1);
            tracing::warn!(reason = "body_too_large", "webhook refused");
            return refusal(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        }
    };
    let callback = UnverifiedCallback::new(&headers, body);
    match state
        .intake
        .accept_callback(callback, chrono::Utc::now())
        .await
    {
        Ok(IntakeOutcome::Enqueued(key)) => {
            tracing::debug!(%key, "webhook accepted");
            (StatusCode::OK, Json(json!({ "status": "accepted" }))).into_response()
        }
        Ok(IntakeOutcome::Acknowledged) => {
            (StatusCode::OK, Json(json!({ "status": "acknowledged" }))).into_response()
        }
        Ok(IntakeOutcome::Duplicate) => {
            (StatusCode::OK, Json(json!({ "status": "duplicate" }))).into_response()
        }
        // The verifier has logged and counted its reason already.
        Err(IntakeError::Rejected(rejection)) => refusal(rejection.status(), rejection.reason()),
        Err(IntakeError::BadResourceUri(e)) => {
            metrics::counter!("refsync_webhook_rejected_total", "reason" => "bad_resource_uri")
                .increment(1);
            tracing::warn!(reason = "bad_resource_uri", error = %e, "webhook refused");
            refusal(StatusCode::BAD_REQUEST, "bad_resource_uri")
        }
        Err(IntakeError::Store(e)) => {
            // Not acknowledged: Partner Center retries, so nothing is lost.
            tracing::error!(error = %e, "webhook not stored");
            refusal(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
        }
    }
}

fn refusal(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
}
