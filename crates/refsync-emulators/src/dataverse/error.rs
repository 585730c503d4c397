//! Dataverse's error body `{"error":{"code":"0x…","message":"…"}}` (crm.md §1.11) and
//! the failures the emulator answers with.
//!
//! Codes and messages: the service-protection ones (§1.12), the key-URL message and
//! the conditional-operation messages (§1.6) are documented. `0x80040217` (not found)
//! and `0x80040237` (duplicate key) are third-party observations (§1.6, **unconfirmed**).
//! `0x80044331` (validation) is the documented `$batch` example's (§1.10). The others
//! (`0x80060888` for URL/query errors, `0x80048d19` for payload errors, `0x8004431a`
//! for choice values, `0x80060882` for version mismatch, `0x80040203` for invalid
//! arguments) follow the live service as commonly reported, and are **unconfirmed** too:
//! clients should key on the HTTP status, as the docs advise.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failed Web API request, answered in Dataverse's error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct DvError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error.code`, e.g. `0x80040217` (empty where Dataverse leaves it empty).
    pub code: &'static str,
    /// `error.message`.
    pub message: String,
    /// `Retry-After` seconds (429 only).
    pub retry_after_secs: Option<u64>,
    /// `WWW-Authenticate` challenge (401 only).
    pub challenge: Option<String>,
}

/// Object does not exist (third-party, crm.md §1.6).
pub const NOT_FOUND: &str = "0x80040217";
/// Duplicate record / key (third-party, crm.md §1.6).
pub const DUPLICATE: &str = "0x80040237";
/// Validation error (crm.md §1.10's example).
pub const VALIDATION: &str = "0x80044331";
/// A choice value outside the option set.
pub const CHOICE_OUT_OF_RANGE: &str = "0x8004431a";
/// URL, key or query option not valid.
pub const BAD_URL: &str = "0x80060888";
/// The request body could not be read as the entity.
pub const BAD_PAYLOAD: &str = "0x80048d19";
/// `If-Match` version mismatch.
pub const VERSION_MISMATCH: &str = "0x80060882";
/// Invalid argument (state, status, action parameters).
pub const INVALID_ARGUMENT: &str = "0x80040203";
/// Number of requests over the window (crm.md §1.12).
pub const LIMIT_REQUESTS: &str = "0x80072322";
/// Execution time over the window (crm.md §1.12).
pub const LIMIT_EXECUTION_TIME: &str = "0x80072321";
/// Concurrent requests (crm.md §1.12).
pub const LIMIT_CONCURRENCY: &str = "0x80072326";

impl DvError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            challenge: None,
        }
    }

    /// 404: no record with that id (`lead With Id = … Does Not Exist`, crm.md §1.6).
    pub fn not_found_id(table: &str, id: &uuid::Uuid) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            NOT_FOUND,
            format!("{table} With Id = {id} Does Not Exist"),
        )
    }

    /// 404: no record with those alternate-key values.
    pub fn not_found_key(table: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            NOT_FOUND,
            format!("A record with the specified key values does not exist in {table} entity"),
        )
    }

    /// 412 for `If-None-Match: *` on an existing record (crm.md §1.6).
    pub fn already_exists() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            DUPLICATE,
            "A record with matching key values already exists.",
        )
    }

    /// 412: another record already holds these alternate-key values.
    pub fn duplicate_key(values: &str, key_name: &str) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            DUPLICATE,
            format!(
                "A record that has the attribute values {values} already exists. The entity key {key_name} requires that this set of attributes contains unique values. Select unique values and try again."
            ),
        )
    }

    /// 412: a record with this primary key exists already (create with an explicit id).
    pub fn duplicate_id() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            DUPLICATE,
            "Cannot insert duplicate key.",
        )
    }

    /// 412 for a stale `If-Match` (crm.md §1.6).
    pub fn version_mismatch() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            VERSION_MISMATCH,
            "The version of the existing record doesn't match the RowVersion property provided.",
        )
    }

    /// 400: the key in the URL is not a declared key (crm.md §1.6's documented message).
    pub fn invalid_key(table: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            BAD_URL,
            format!(
                "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{table}'. Ensure that the names and number of key properties match the declared or alternate key properties for the resource 'Microsoft.Dynamics.CRM.{table}'."
            ),
        )
    }

    /// 400: a URL, key or query option that cannot be used.
    pub fn bad_url(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, BAD_URL, message)
    }

    /// 404: an unknown path segment (entity set, version, action).
    pub fn segment_not_found(segment: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            BAD_URL,
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    /// 400: an unknown property in `$select`, `$filter` or `$orderby`.
    pub fn unknown_property(name: &str, table: &str) -> Self {
        Self::bad_url(format!(
            "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table}'."
        ))
    }

    /// 400: the body is not a valid entity payload (`inner` says why).
    pub fn payload(entity_set: &str, inner: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            BAD_PAYLOAD,
            format!(
                "Error identified in Payload provided by the user for Entity :'{entity_set}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: {inner}"
            ),
        )
    }

    /// 400: a text value longer than the column allows.
    pub fn too_long(column: &str, table: &str, max: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            VALIDATION,
            format!(
                "A validation error occurred. The length of the '{column}' attribute of the '{table}' entity exceeded the maximum allowed length of '{max}'."
            ),
        )
    }

    /// 400: a number outside the column's range.
    pub fn out_of_range(value: &str, column: &str, table: &str, min: &str, max: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            VALIDATION,
            format!(
                "A validation error occurred. The value {value} of '{column}' on record of type '{table}' is outside the valid range. Accepted Range: {min} to {max}."
            ),
        )
    }

    /// 400: a choice value not in the option set.
    pub fn choice_out_of_range(value: &str, column: &str, table: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            CHOICE_OUT_OF_RANGE,
            format!(
                "A validation error occurred. The value {value} of '{column}' on record of type '{table}' is outside the valid range."
            ),
        )
    }

    /// 400: a required column is empty.
    pub fn required(column: &str, label: &str, table: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            VALIDATION,
            format!(
                "A validation error occurred. A value for the required column '{column}' ({label}) of the '{table}' entity was not provided."
            ),
        )
    }

    /// 400: an invalid argument (state/status, action parameters).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, INVALID_ARGUMENT, message)
    }

    /// 405: the operation is not allowed on this resource.
    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, INVALID_ARGUMENT, message)
    }

    /// 501: a Web API feature this emulator does not implement.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "0x80060889",
            format!("{what} is not implemented by the refsync Dataverse emulator."),
        )
    }

    /// 429 with `Retry-After` (crm.md §1.12).
    pub fn throttled(code: &'static str, message: String, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// 401 (or 403) for a refused bearer token, with the challenge. No hex code is
    /// published for authentication failures (§1.11 names only the error kinds), so
    /// `code` is empty, as the docs say it often is.
    pub fn unauthorized(bearer: &crate::entra::BearerError) -> Self {
        Self {
            challenge: Some(bearer.www_authenticate().to_owned()),
            ..Self::new(bearer.status(), "", bearer.description().to_owned())
        }
    }
}

impl IntoResponse for DvError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert("OData-Version", HeaderValue::from_static("4.0"));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
