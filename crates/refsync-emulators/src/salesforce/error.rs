//! Salesforce's error shapes (crm.md §2.6).
//!
//! A failed REST call answers a JSON **array** of `{message, errorCode, fields?}`;
//! per-record results inside sObject Collections use `statusCode` instead of
//! `errorCode` and always carry `fields` (crm.md §2.5). One [`SfError`] renders to
//! either, so an operation fails the same way whether it was called alone, in a
//! composite request or in a collection.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as JsonValue, json};

/// The error codes the emulator answers with (Salesforce's names).
pub mod code {
    /// Field is unknown, not settable here, or a filter value has the wrong type.
    pub const INVALID_FIELD: &str = "INVALID_FIELD";
    /// A read-only field was written.
    pub const INVALID_FIELD_FOR_INSERT_UPDATE: &str = "INVALID_FIELD_FOR_INSERT_UPDATE";
    /// A required field is absent or null.
    pub const REQUIRED_FIELD_MISSING: &str = "REQUIRED_FIELD_MISSING";
    /// A text value exceeds the field length.
    pub const STRING_TOO_LONG: &str = "STRING_TOO_LONG";
    /// A value is not in a restricted picklist.
    pub const INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: &str =
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST";
    /// An email field holds something else.
    pub const INVALID_EMAIL_ADDRESS: &str = "INVALID_EMAIL_ADDRESS";
    /// A number does not fit the field's precision, or OFFSET is too large.
    pub const NUMBER_OUTSIDE_VALID_RANGE: &str = "NUMBER_OUTSIDE_VALID_RANGE";
    /// The body is not JSON of the expected shape.
    pub const JSON_PARSER_ERROR: &str = "JSON_PARSER_ERROR";
    /// An id is not an id (or of the wrong object).
    pub const MALFORMED_ID: &str = "MALFORMED_ID";
    /// A converted lead was written to.
    pub const CANNOT_UPDATE_CONVERTED_LEAD: &str = "CANNOT_UPDATE_CONVERTED_LEAD";
    /// A lead conversion named a status that does not convert.
    pub const INVALID_STATUS: &str = "INVALID_STATUS";
    /// A lookup holds an id of the wrong object.
    pub const FIELD_INTEGRITY_EXCEPTION: &str = "FIELD_INTEGRITY_EXCEPTION";
    /// A lookup points at a record that does not exist.
    pub const INVALID_CROSS_REFERENCE_KEY: &str = "INVALID_CROSS_REFERENCE_KEY";
    /// A unique field would be duplicated.
    pub const DUPLICATE_VALUE: &str = "DUPLICATE_VALUE";
    /// Resource or record not found.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// The record is in the recycle bin.
    pub const ENTITY_IS_DELETED: &str = "ENTITY_IS_DELETED";
    /// The SOQL does not parse.
    pub const MALFORMED_QUERY: &str = "MALFORMED_QUERY";
    /// A filter value or operator does not suit the field.
    pub const INVALID_QUERY_FILTER_OPERATOR: &str = "INVALID_QUERY_FILTER_OPERATOR";
    /// The object named does not exist.
    pub const INVALID_TYPE: &str = "INVALID_TYPE";
    /// The object does not allow this operation.
    pub const INVALID_TYPE_FOR_OPERATION: &str = "INVALID_TYPE_FOR_OPERATION";
    /// The query locator is unknown or expired.
    pub const INVALID_QUERY_LOCATOR: &str = "INVALID_QUERY_LOCATOR";
    /// No or an expired session.
    pub const INVALID_SESSION_ID: &str = "INVALID_SESSION_ID";
    /// The API allocation is used up.
    pub const REQUEST_LIMIT_EXCEEDED: &str = "REQUEST_LIMIT_EXCEEDED";
    /// A required parameter is missing.
    pub const MISSING_ARGUMENT: &str = "MISSING_ARGUMENT";
    /// getUpdated/getDeleted window is invalid.
    pub const INVALID_REPLICATION_DATE: &str = "INVALID_REPLICATION_DATE";
    /// Several records match an external id in a collection upsert.
    pub const DUPLICATE_EXTERNAL_ID: &str = "DUPLICATE_EXTERNAL_ID";
    /// More subrequests than a composite request allows.
    pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";
    /// More records than allowed.
    pub const EXCEEDED_ID_LIMIT: &str = "EXCEEDED_ID_LIMIT";
    /// The whole collection was rolled back because of another record.
    pub const ALL_OR_NONE_OPERATION_ROLLED_BACK: &str = "ALL_OR_NONE_OPERATION_ROLLED_BACK";
    /// A composite subrequest did not run because of another one.
    pub const PROCESSING_HALTED: &str = "PROCESSING_HALTED";
    /// The HTTP method is not allowed on the resource.
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// The request is otherwise unusable.
    pub const INVALID_INPUT: &str = "INVALID_INPUT";
}

/// One entry of an error array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorItem {
    /// Salesforce's error code, e.g. `INVALID_FIELD`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Fields the error concerns.
    pub fields: Vec<String>,
}

/// A failed operation: an HTTP status and one or more errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfError {
    /// The HTTP status the REST API answers with.
    pub status: StatusCode,
    /// The errors, in the order Salesforce would list them.
    pub errors: Vec<ErrorItem>,
}

impl SfError {
    /// One error with no fields.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![ErrorItem {
                code,
                message: message.into(),
                fields: Vec::new(),
            }],
        }
    }

    /// A 400 with one error.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 400 naming the fields concerned.
    pub fn field(code: &'static str, message: impl Into<String>, fields: &[&str]) -> Self {
        Self::bad_request(code, message).with_fields(fields.iter().map(|f| (*f).to_owned()))
    }

    /// 404 `NOT_FOUND` "The requested resource does not exist".
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            "The requested resource does not exist",
        )
    }

    /// 400 `MALFORMED_QUERY`.
    pub fn malformed_query(message: impl Into<String>) -> Self {
        Self::bad_request(code::MALFORMED_QUERY, message)
    }

    /// 400 `JSON_PARSER_ERROR`.
    pub fn json(message: impl Into<String>) -> Self {
        Self::bad_request(code::JSON_PARSER_ERROR, message)
    }

    /// 401 `INVALID_SESSION_ID` "Session expired or invalid".
    pub fn invalid_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            code::INVALID_SESSION_ID,
            "Session expired or invalid",
        )
    }

    /// 403 `REQUEST_LIMIT_EXCEEDED` "TotalRequests Limit exceeded." (crm.md §2.7).
    pub fn limit_exceeded() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            code::REQUEST_LIMIT_EXCEEDED,
            "TotalRequests Limit exceeded.",
        )
    }

    /// Replaces the fields of every error.
    pub fn with_fields(mut self, fields: impl IntoIterator<Item = String>) -> Self {
        let fields: Vec<String> = fields.into_iter().collect();
        for e in &mut self.errors {
            e.fields.clone_from(&fields);
        }
        self
    }

    /// Appends the errors of `other` (keeping this status).
    pub fn merge(&mut self, other: SfError) {
        self.errors.extend(other.errors);
    }

    /// The top-level REST body: `[{"message","errorCode","fields"?}]`.
    pub fn body(&self) -> JsonValue {
        JsonValue::Array(
            self.errors
                .iter()
                .map(|e| {
                    let mut item = json!({ "message": e.message, "errorCode": e.code });
                    if !e.fields.is_empty()
                        && let Some(obj) = item.as_object_mut()
                    {
                        obj.insert("fields".to_owned(), json!(e.fields));
                    }
                    item
                })
                .collect(),
        )
    }

    /// The per-record form used by sObject Collections: `[{"statusCode","message","fields"}]`.
    pub fn record_errors(&self) -> JsonValue {
        JsonValue::Array(
            self.errors
                .iter()
                .map(|e| json!({ "statusCode": e.code, "message": e.message, "fields": e.fields }))
                .collect(),
        )
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_and_record_shapes_differ_as_documented() {
        let e = SfError::field(
            code::INVALID_FIELD,
            "No such column 'Foo__c' on sobject of type Lead",
            &["Foo__c"],
        );
        assert_eq!(
            e.body(),
            json!([{"message":"No such column 'Foo__c' on sobject of type Lead","errorCode":"INVALID_FIELD","fields":["Foo__c"]}])
        );
        assert_eq!(
            e.record_errors(),
            json!([{"statusCode":"INVALID_FIELD","message":"No such column 'Foo__c' on sobject of type Lead","fields":["Foo__c"]}])
        );
        assert_eq!(
            SfError::not_found().body(),
            json!([{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}])
        );
    }
}
