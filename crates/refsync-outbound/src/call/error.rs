//! [`CallError`]: how an outbound call failed, in a form callers match on
//! (timeout, transport, a status with the API's own error code, throttling, token).
//!
//! Messages name the API, method and path (never the query, which may carry
//! filters on customer data, and never headers or request bodies, which carry
//! credentials). A response body appears only as a short, single-line excerpt.

use crate::token::TokenError;
use http::{Method, StatusCode};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Longest response-body excerpt kept in an error.
pub const EXCERPT_CHARS: usize = 300;

/// Which call failed: API name, method and path (no query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The API's configured name.
    pub api: String,
    /// The method.
    pub method: Method,
    /// The URL path, without the query.
    pub path: String,
}

impl fmt::Display for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.api, self.method, self.path)
    }
}

/// Why an outbound call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Every attempt ran out of time.
    #[error("{context}: timed out ({attempts} attempt(s))")]
    Timeout {
        /// The call.
        context: Box<CallContext>,
        /// Attempts made.
        attempts: u32,
    },
    /// The connection failed or broke.
    #[error("{context}: transport error after {attempts} attempt(s): {detail}")]
    Transport {
        /// The call.
        context: Box<CallContext>,
        /// Attempts made.
        attempts: u32,
        /// What the HTTP stack reported (without the URL).
        detail: String,
        /// True when the request never left (a failed connect): safe to repeat.
        before_send: bool,
    },
    /// The server answered with a non-success status that was not retried (or no longer).
    #[error("{context}: HTTP {status}{}: {excerpt}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        /// The call.
        context: Box<CallContext>,
        /// The status.
        status: StatusCode,
        /// The API's error code, when its error body has one (Partner Center
        /// `code`, Dataverse `error.code`, Salesforce `errorCode`, Entra `error`).
        code: Option<String>,
        /// The API's error message, when its error body has one (shortened).
        message: Option<String>,
        /// A short single-line excerpt of the body.
        excerpt: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// Attempts made.
        attempts: u32,
    },
    /// Still throttled (429, or 503 with `Retry-After`) when the retry budget ran out,
    /// or asked to wait longer than the policy waits in-process.
    #[error("{context}: throttled (HTTP {status}) after {attempts} attempt(s){}", retry_after.map(|d| format!("; retry after {}s", d.as_secs())).unwrap_or_default())]
    Throttled {
        /// The call.
        context: Box<CallContext>,
        /// 429 or 503.
        status: StatusCode,
        /// The server's last `Retry-After`.
        retry_after: Option<Duration>,
        /// Attempts made.
        attempts: u32,
    },
    /// No access token could be obtained for the call.
    #[error("{context}: no access token: {source}")]
    Token {
        /// The call.
        context: Box<CallContext>,
        /// Why.
        source: TokenError,
    },
    /// The request could not be built (bad path, a URL on another origin).
    #[error("{context}: invalid request: {detail}")]
    InvalidRequest {
        /// The call.
        context: Box<CallContext>,
        /// What was wrong.
        detail: String,
    },
    /// The response was larger than the configured limit.
    #[error("{context}: response body larger than {limit} bytes")]
    ResponseTooLarge {
        /// The call.
        context: Box<CallContext>,
        /// The limit.
        limit: usize,
    },
}

impl CallError {
    /// The call that failed.
    pub fn context(&self) -> &CallContext {
        match self {
            CallError::Timeout { context, .. }
            | CallError::Transport { context, .. }
            | CallError::Status { context, .. }
            | CallError::Throttled { context, .. }
            | CallError::Token { context, .. }
            | CallError::InvalidRequest { context, .. }
            | CallError::ResponseTooLarge { context, .. } => context,
        }
    }

    /// The HTTP status, for errors that carry one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            CallError::Status { status, .. } | CallError::Throttled { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Status { retry_after, .. } | CallError::Throttled { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// True when trying the same call later may succeed (timeouts, transport
    /// errors, throttling, 5xx, and token failures that are not a revoked sign-in).
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Timeout { .. } | CallError::Transport { .. } => true,
            CallError::Throttled { .. } => true,
            CallError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            CallError::Token { source, .. } => source.is_transient(),
            CallError::InvalidRequest { .. } | CallError::ResponseTooLarge { .. } => false,
        }
    }
}

/// The error code and message from a JSON error body in any of the shapes the
/// APIs refsync calls use.
pub fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(shorten(s)),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    match &value {
        // Dataverse: {"error":{"code","message"}}
        Value::Object(o) if o.get("error").is_some_and(Value::is_object) => {
            let e = o.get("error");
            (
                text(e.and_then(|e| e.get("code"))),
                text(e.and_then(|e| e.get("message"))),
            )
        }
        // Entra: {"error":"invalid_grant","error_description":"AADSTS…"}
        Value::Object(o) if o.get("error").is_some_and(Value::is_string) => (
            text(o.get("error")),
            o.get("error_description")
                .and_then(Value::as_str)
                .map(|d| shorten(&first_line(d))),
        ),
        // Partner Center: {"code","description","data","source"}
        Value::Object(o) => (
            text(o.get("code")),
            text(o.get("description").or_else(|| o.get("message"))),
        ),
        // Salesforce: [{"message","errorCode"}]
        Value::Array(items) => {
            let first = items.first();
            (
                text(first.and_then(|e| e.get("errorCode"))),
                text(first.and_then(|e| e.get("message"))),
            )
        }
        _ => (None, None),
    }
}

/// A short single-line excerpt of a body for an error message.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    shorten(&text)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_owned()
}

fn shorten(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS)
        .collect();
    if s.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_in_every_shape() {
        let (c, m) = parse_error_body(
            br#"{"error":{"code":"0x80072322","message":"Number of requests exceeded"}}"#,
        );
        assert_eq!(c.as_deref(), Some("0x80072322"));
        assert_eq!(m.as_deref(), Some("Number of requests exceeded"));
        let (c, m) = parse_error_body(
            br#"{"error":"invalid_grant","error_description":"AADSTS50173: revoked\r\nTrace ID: x"}"#,
        );
        assert_eq!(c.as_deref(), Some("invalid_grant"));
        assert_eq!(m.as_deref(), Some("AADSTS50173: revoked"));
        let (c, m) = parse_error_body(br#"{"code":2055,"description":"Etag is no longer valid","data":[],"source":"PartnerCenter"}"#);
        assert_eq!(c.as_deref(), Some("2055"));
        assert_eq!(m.as_deref(), Some("Etag is no longer valid"));
        let (c, _) = parse_error_body(br#"[{"message":"x","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#);
        assert_eq!(c.as_deref(), Some("REQUEST_LIMIT_EXCEEDED"));
        assert_eq!(parse_error_body(b"<html>"), (None, None));
    }

    #[test]
    fn excerpts_are_short_and_single_line() {
        let long = format!("line one\r\nline two {}", "x".repeat(1000));
        let e = excerpt(long.as_bytes());
        assert!(!e.contains('\n') && !e.contains('\r'));
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }
}
