//! Partner Center's error body `{ "code", "description", "data":[…], "source" }`
//! (partner-center.md §1.6) and the errors the emulated APIs answer with.
//!
//! Referral-specific error codes are not published, so `code` is the HTTP status
//! except where a documented generic code fits (2055 "Etag is no longer valid").

use crate::entra::BearerError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The `source` of every error body the emulator writes.
const SOURCE: &str = "PartnerCenter";

/// The documented generic code for a stale eTag (§1.6, `error-codes.md`).
pub const ETAG_NO_LONGER_VALID: u32 = 2055;

/// An error answered in Partner Center's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `code`.
    pub code: u32,
    /// `description`.
    pub description: String,
    /// `data`: the names or details of what was wrong.
    pub data: Vec<Value>,
    /// `Retry-After` seconds, for 429.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error whose code is the HTTP status.
    pub fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            status,
            code: u32::from(status.as_u16()),
            description: description.into(),
            data: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }

    /// 404 Not Found for a referral.
    pub fn referral_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("Referral with id '{id}' was not found."),
        )
        .with_data([Value::String(id.to_owned())])
    }

    /// 403 Forbidden.
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, description)
    }

    /// 412 Precondition Failed: `If-Match` names an older version.
    pub fn etag_mismatch(sent: &str, current: &str) -> Self {
        Self {
            code: ETAG_NO_LONGER_VALID,
            ..Self::new(
                StatusCode::PRECONDITION_FAILED,
                "Etag is no longer valid: the If-Match header does not match the referral's current eTag.",
            )
        }
        .with_data([json!({ "ifMatch": sent, "eTag": current })])
    }

    /// 429 Too Many Requests with `Retry-After`.
    pub fn throttled(description: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, description)
        }
    }

    /// Adds `data` entries.
    pub fn with_data(mut self, data: impl IntoIterator<Item = Value>) -> Self {
        self.data.extend(data);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({
            "code": self.code,
            "description": self.description,
            "data": self.data,
            "source": SOURCE,
        })
    }

    /// The response for a refused bearer token: 401/403 with `WWW-Authenticate`
    /// and this error shape as the body.
    pub fn from_bearer(e: BearerError) -> Response {
        let body = Self::new(e.status(), e.description().to_owned()).body();
        e.into_response_with(Json(body))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<crate::odata::ODataError> for ApiError {
    fn from(e: crate::odata::ODataError) -> Self {
        let option = e.option;
        Self::bad_request(e.to_string()).with_data([Value::String(option.to_owned())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_documented_shape() {
        let e = ApiError::bad_request("nope").with_data([json!("type")]);
        assert_eq!(
            e.body(),
            json!({"code": 400, "description": "nope", "data": ["type"], "source": "PartnerCenter"})
        );
        let stale = ApiError::etag_mismatch("\"a\"", "\"b\"");
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(stale.body()["code"], 2055);
    }
}
