//! HTTP handlers of the Referrals API (partner-center.md §1): authenticate, honour
//! `MS-RequestId` on writes, read the body, call the operation, shape the answer.

use super::PartnerCenterEmulator;
use super::access::{Caller, Refusal, referrals_caller};
use super::error::ApiError;
use super::idempotency::RecordedResponse;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

impl PartnerCenterEmulator {
    fn referrals_auth(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        referrals_caller(
            self.authority(),
            headers,
            &self.config().referrals_audience,
            self.config().enforce_referral_roles,
        )
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))
}

fn recorded_into_response(recorded: RecordedResponse) -> Response {
    match recorded.body {
        Some(body) => (recorded.status, Json(body)).into_response(),
        None => recorded.status.into_response(),
    }
}

/// Runs a write once per `MS-RequestId` (see the `idempotency` module).
fn idempotent_write(
    pc: &PartnerCenterEmulator,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    write: impl FnOnce() -> Result<RecordedResponse, ApiError>,
) -> Response {
    let request_id = header_str(headers, "ms-requestid");
    if let Some(request_id) = request_id
        && let Some(recorded) =
            pc.state()
                .idempotency
                .replay(method, uri.path(), request_id, pc.now())
    {
        return recorded_into_response(recorded);
    }
    match write() {
        Ok(recorded) => {
            if let Some(request_id) = request_id {
                pc.state().idempotency.record(
                    method,
                    uri.path(),
                    request_id,
                    recorded.clone(),
                    pc.now(),
                );
            }
            recorded_into_response(recorded)
        }
        Err(e) => e.into_response(),
    }
}

fn wants_representation(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("return=representation"))
        })
    })
}

pub(crate) async fn list(
    State(pc): State<PartnerCenterEmulator>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = match pc.referrals_auth(&headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    match pc.list_referrals(&caller, query.as_deref()) {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn get_one(
    State(pc): State<PartnerCenterEmulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match pc.referrals_auth(&headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    match pc.get_referral(&caller, &id) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn create(
    State(pc): State<PartnerCenterEmulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match pc.referrals_auth(&headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    idempotent_write(&pc, &method, &uri, &headers, || {
        let created = pc.create_referral(&caller, json_body(&body)?)?;
        Ok(RecordedResponse {
            status: StatusCode::CREATED,
            body: Some(created),
        })
    })
}

pub(crate) async fn patch(
    State(pc): State<PartnerCenterEmulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let caller = match pc.referrals_auth(&headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let if_match = header_str(&headers, header::IF_MATCH.as_str());
    idempotent_write(&pc, &method, &uri, &headers, || {
        let patched = pc.patch_referral(&caller, &id, &json_body(&body)?, if_match)?;
        // `Prefer: return=representation` returns the referral; otherwise 204 (§1.1).
        Ok(if wants_representation(&headers) {
            RecordedResponse {
                status: StatusCode::OK,
                body: Some(patched),
            }
        } else {
            RecordedResponse {
                status: StatusCode::NO_CONTENT,
                body: None,
            }
        })
    })
}

pub(crate) async fn put(
    State(pc): State<PartnerCenterEmulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let caller = match pc.referrals_auth(&headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let if_match = header_str(&headers, header::IF_MATCH.as_str());
    idempotent_write(&pc, &method, &uri, &headers, || {
        let updated = pc.put_referral(&caller, &id, json_body(&body)?, if_match)?;
        Ok(RecordedResponse {
            status: StatusCode::OK,
            body: Some(updated),
        })
    })
}
