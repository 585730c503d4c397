//! Dataverse's answers as values ([`Reply`]) and what a failed one means for the sync
//! engine ([`failure`]): the error body `{"error":{"code","message"}}` (crm.md §1.11)
//! becomes a [`CrmError`] the engine can act on — refused data, a lost race, throttling,
//! an outage, a sign-in problem, or a mapping that names something the table lacks.

use crate::connector::CrmError;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Longest error message kept (Dataverse quotes values and trace text, which can be long).
const MESSAGE_CHARS: usize = 500;

/// `ConcurrencyVersionMismatch`: a stale `If-Match` ETag (crm.md §1.6, §1.11).
pub(crate) const VERSION_MISMATCH: &str = "0x80060882";

/// One answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The headers (`ETag`, `Retry-After`, `OData-EntityId`).
    pub(crate) headers: HeaderMap,
    /// The JSON body; `Null` when there was none.
    pub(crate) body: Value,
}

impl Reply {
    /// True for 2xx.
    pub(crate) fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The error body's code and message.
    pub(crate) fn error(&self) -> (Option<String>, String) {
        dataverse_error(&self.body)
    }

    /// `Retry-After` in seconds (the form Dataverse sends, crm.md §1.12).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_CHARS)
        .collect();
    if s.chars().count() > MESSAGE_CHARS {
        out.push('…');
    }
    out.trim().to_owned()
}

/// The code (empty codes are common, crm.md §1.11, and read as none) and message.
pub(crate) fn dataverse_error(body: &Value) -> (Option<String>, String) {
    let error = body.get("error");
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(shorten)
        .unwrap_or_default();
    (code, message)
}

/// True when Dataverse says the request named a column, key or table it does not
/// have: the mapping (or the alternate key's set-up) is wrong, not the data.
fn names_something_missing(message: &str) -> bool {
    message.contains("Could not find a property named")
        || message.contains("The key in the request URI is not valid")
        || message.contains("Resource not found for the segment")
        || message.contains("does not have a property named")
}

/// What a failed reply means. Callers handle the statuses their method turns into an
/// answer (404 → `None` on reads) before asking.
pub(crate) fn failure(reply: &Reply) -> CrmError {
    let (code, message) = reply.error();
    let status = reply.status;
    let described = || {
        if message.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {message}")
        }
    };
    match status.as_u16() {
        400 | 404 if names_something_missing(&message) => CrmError::Mapping(format!(
            "Dataverse does not know a name the mapping uses: {message}"
        )),
        401 => CrmError::Auth(format!(
            "Dataverse refused the token even after a fresh one was fetched ({})",
            described()
        )),
        412 if code.as_deref() == Some(VERSION_MISMATCH)
            || message.contains("doesn't match the RowVersion") =>
        {
            CrmError::PreconditionFailed
        }
        429 => CrmError::Throttled {
            retry_after: reply.retry_after(),
        },
        500..=599 => CrmError::Unavailable(described()),
        _ => CrmError::Rejected {
            code,
            message: if message.is_empty() {
                format!("HTTP {status}")
            } else {
                message
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body,
        }
    }

    fn err(code: &str, message: &str) -> Value {
        json!({"error": {"code": code, "message": message}})
    }

    #[test]
    fn refused_data_keeps_dataverse_code_and_message() {
        let e = failure(&reply(
            400,
            err(
                "0x80044331",
                "A validation error occurred. The length of the 'subject' attribute of the 'lead' entity exceeded the maximum allowed length of '300'.",
            ),
        ));
        match e {
            CrmError::Rejected { code, message } => {
                assert_eq!(code.as_deref(), Some("0x80044331"));
                assert!(message.contains("'subject'"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Duplicates on a create are refused data, not a lost race.
        let dup = failure(&reply(
            412,
            err(
                "0x80040237",
                "A record with matching key values already exists.",
            ),
        ));
        assert!(matches!(dup, CrmError::Rejected { code: Some(c), .. } if c == "0x80040237"));
        // The documented samples carry an empty code.
        let empty = failure(&reply(404, err("", "lead With Id = x Does Not Exist")));
        assert!(matches!(empty, CrmError::Rejected { code: None, .. }));
    }

    #[test]
    fn a_stale_etag_is_a_lost_race() {
        let e = failure(&reply(
            412,
            err(
                VERSION_MISMATCH,
                "The version of the existing record doesn't match the RowVersion property provided.",
            ),
        ));
        assert!(matches!(e, CrmError::PreconditionFailed));
        assert!(e.is_transient());
    }

    #[test]
    fn statuses_that_are_not_about_the_data() {
        let mut throttled = reply(
            429,
            err(
                "0x80072322",
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            ),
        );
        throttled
            .headers
            .insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert!(matches!(
            failure(&throttled),
            CrmError::Throttled { retry_after: Some(d) } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            failure(&reply(503, Value::Null)),
            CrmError::Unavailable(_)
        ));
        assert!(matches!(
            failure(&reply(401, Value::Null)),
            CrmError::Auth(_)
        ));
        let unknown = failure(&reply(
            400,
            err(
                "0x80060888",
                "Could not find a property named 'new_x' on type 'Microsoft.Dynamics.CRM.lead'.",
            ),
        ));
        assert!(matches!(unknown, CrmError::Mapping(m) if m.contains("new_x")));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(2000);
        let (_, message) = dataverse_error(&err("", &long));
        assert!(message.chars().count() <= MESSAGE_CHARS + 1);
    }
}
