//! Token-endpoint errors in Entra ID's exact shape (partner-center.md §1.2, crm.md §1.2):
//! HTTP 400 (401 for bad client credentials) with
//! `{"error","error_description":"AADSTSnnnn: …","error_codes":[n],"timestamp","trace_id","correlation_id"}`.
//!
//! Descriptions never contain a secret, a password or a token: only identifiers the
//! caller already sent in the clear (client id, username, scope).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use refsync_core::wire::format_datetime;
use serde_json::json;
use uuid::Uuid;

/// One token-endpoint failure: OAuth error name, AADSTS code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AadError {
    /// HTTP status (400, or 401 for `invalid_client`).
    pub status: StatusCode,
    /// The OAuth 2.0 `error` value, e.g. `invalid_grant`.
    pub error: &'static str,
    /// The AADSTS number, e.g. `50126`.
    pub code: u32,
    /// The message after `AADSTSnnnn: `.
    pub message: String,
}

impl AadError {
    fn new(status: StatusCode, error: &'static str, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    /// AADSTS900144: a required form parameter is missing.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// AADSTS90002: the tenant in the path is unknown.
    pub fn tenant_not_found(tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        )
    }

    /// AADSTS70003: the grant type is not supported.
    pub fn unsupported_grant_type(grant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        )
    }

    /// AADSTS700016: no application with that client id.
    pub fn unknown_client(client_id: &str, tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// AADSTS7000215: wrong client secret (HTTP 401).
    pub fn invalid_client_secret(client_id: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    /// AADSTS7000218: a confidential client sent no credentials (HTTP 401).
    pub fn missing_client_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    /// AADSTS50034: no such user.
    pub fn unknown_user(username: &str, tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50034,
            format!(
                "The user account {username} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory."
            ),
        )
    }

    /// AADSTS50126: wrong password.
    pub fn bad_password() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        )
    }

    /// AADSTS70011: the scope is malformed or mixes resources.
    pub fn invalid_scope(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", 70011, detail)
    }

    /// AADSTS1002012: client credentials need a `/.default` scope.
    pub fn client_credentials_need_default(scope: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }

    /// AADSTS500011: the resource is not known in the tenant.
    pub fn unknown_resource(resource: &str, tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// AADSTS9002313: the refresh token is not one this authority issued.
    pub fn malformed_grant() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    }

    /// AADSTS700082: the refresh token expired.
    pub fn refresh_token_expired(issued: DateTime<Utc>, expired: DateTime<Utc>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            700082,
            format!(
                "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {} days.",
                format_datetime(&issued),
                (expired - issued).num_days()
            ),
        )
    }

    /// AADSTS50173: the grant was revoked (by an administrator, or rotated away).
    pub fn grant_revoked(revoked_at: DateTime<Utc>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50173,
            format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                format_datetime(&revoked_at),
                format_datetime(&revoked_at)
            ),
        )
    }

    /// AADSTS70000: the grant belongs to another client.
    pub fn grant_for_other_client() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed.",
        )
    }

    /// AADSTS70016: the device code is not approved yet.
    pub fn authorization_pending() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    /// `slow_down` (RFC 8628 §3.5): polled faster than `interval`. The AADSTS number
    /// Entra uses here is unconfirmed; 70016's sibling message is used.
    pub fn slow_down() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. Polling too frequently; increase the interval by 5 seconds.",
        )
    }

    /// AADSTS70020: the device code expired.
    pub fn expired_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            70020,
            "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        )
    }

    /// `authorization_declined`: the user declined. The AADSTS number is unconfirmed (70000 used).
    pub fn authorization_declined() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "authorization_declined",
            70000,
            "The end user denied the authorization request.",
        )
    }

    /// `bad_verification_code`: the device code is unknown. The AADSTS number is unconfirmed (70000 used).
    pub fn bad_verification_code() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_verification_code",
            70000,
            "The device_code sent to the /token endpoint was not recognized.",
        )
    }

    /// A failure inside the emulator itself (e.g. signing); never expected.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            90033,
            "A transient error has occurred. Please try again.",
        )
    }

    /// The JSON body Entra sends, stamped with `now` and a fresh trace id.
    pub fn body(&self, now: DateTime<Utc>, correlation_id: &str) -> serde_json::Value {
        let trace_id = Uuid::new_v4();
        let timestamp = now.format("%Y-%m-%d %H:%M:%SZ");
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": timestamp.to_string(),
            "trace_id": trace_id.to_string(),
            "correlation_id": correlation_id,
        })
    }

    /// The full HTTP response.
    pub fn into_response_at(self, now: DateTime<Utc>, correlation_id: &str) -> Response {
        let body = self.body(now, correlation_id);
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 from the token endpoint names the auth scheme it wanted.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"login.microsoftonline.com\""),
            );
        }
        response
    }
}

impl std::fmt::Display for AadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} AADSTS{}: {}", self.error, self.code, self.message)
    }
}

impl std::error::Error for AadError {}
