//! Salesforce's answers as values ([`Reply`]) and what a failed one means for the sync
//! engine ([`failure`]): error arrays `[{message, errorCode, fields}]` (crm.md §2.6),
//! or `statusCode` inside composite and collection results (§2.5), become [`CrmError`]s.
//! A top-level response and a composite subresponse fail the same way.

use crate::connector::CrmError;
use http::StatusCode;
use serde_json::Value;

/// The exceeded-allocation code (crm.md §2.7).
pub(crate) const REQUEST_LIMIT_EXCEEDED: &str = "REQUEST_LIMIT_EXCEEDED";
/// A composite subrequest that did not run because of another (crm.md §2.5).
pub(crate) const PROCESSING_HALTED: &str = "PROCESSING_HALTED";

/// Longest error message kept (Salesforce quotes the offending value, which can be long).
const MESSAGE_CHARS: usize = 500;

/// One answer: a whole response or one composite subresponse.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// The HTTP status (`httpStatusCode` inside a composite).
    pub(crate) status: StatusCode,
    /// The JSON body; `Null` when there was none.
    pub(crate) body: Value,
}

impl Reply {
    /// True for 2xx.
    pub(crate) fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The first error's code, if the body is an error array.
    pub(crate) fn error_code(&self) -> Option<String> {
        salesforce_error(&self.body).0
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

/// The first error's code and every error's message from an error array.
pub(crate) fn salesforce_error(body: &Value) -> (Option<String>, String) {
    let Some(items) = body.as_array() else {
        return (None, String::new());
    };
    let code = items.iter().find_map(|e| {
        e.get("errorCode")
            .or_else(|| e.get("statusCode"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let messages: Vec<&str> = items
        .iter()
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .collect();
    (code, shorten(&messages.join("; ")))
}

/// The record ids in a 300 Multiple Choices body: a list of record URLs (or objects
/// carrying one), each ending in the id.
fn multiple_choice_ids(body: &Value) -> Vec<String> {
    body.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(url) => Some(url.as_str()),
                    other => other
                        .get("url")
                        .or_else(|| other.get("attributes").and_then(|a| a.get("url")))
                        .and_then(Value::as_str),
                })
                .filter_map(|url| url.rsplit('/').next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What a failed reply means. Callers handle the statuses their method turns into
/// an answer (404 → `None`) before asking.
pub(crate) fn failure(reply: &Reply) -> CrmError {
    let (code, message) = salesforce_error(&reply.body);
    let status = reply.status;
    match status.as_u16() {
        300 => {
            let ids = multiple_choice_ids(&reply.body);
            CrmError::Rejected {
                code: None,
                message: format!(
                    "{} records match the external ID (HTTP 300 Multiple Choices{}); Salesforce changed nothing — remove the duplicates",
                    if ids.is_empty() {
                        "several".to_owned()
                    } else {
                        ids.len().to_string()
                    },
                    if ids.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", ids.join(", "))
                    }
                ),
            }
        }
        401 => CrmError::Auth(format!(
            "Salesforce refused the session even after signing in again ({}{})",
            code.as_deref().unwrap_or("HTTP 401"),
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        )),
        403 if code.as_deref() == Some(REQUEST_LIMIT_EXCEEDED) => {
            // The same code reports too many concurrent long-running requests
            // (crm.md §2.7), which clears in seconds rather than over the day.
            if message.contains("Concurrent") {
                CrmError::Throttled { retry_after: None }
            } else {
                CrmError::AllocationExhausted
            }
        }
        429 => CrmError::Throttled { retry_after: None },
        s if s >= 500 => CrmError::Unavailable(format!(
            "HTTP {status}{}{}",
            code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        )),
        _ => CrmError::Rejected {
            code: code.or_else(|| Some(format!("HTTP_{}", status.as_u16()))),
            message: if message.is_empty() {
                format!("HTTP {status}")
            } else {
                message
            },
        },
    }
}

/// A failed read whose query or field list the mapping produced: `INVALID_FIELD` or
/// `MALFORMED_QUERY` mean the mapping names something the org does not have.
pub(crate) fn read_failure(reply: &Reply, object: &str) -> CrmError {
    let (code, message) = salesforce_error(&reply.body);
    match code.as_deref() {
        Some("INVALID_FIELD" | "MALFORMED_QUERY" | "INVALID_TYPE")
            if reply.status == StatusCode::BAD_REQUEST =>
        {
            CrmError::Mapping(format!(
                "reading {object}: Salesforce refused the query or a field the mapping names: {message}"
            ))
        }
        _ => failure(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body,
        }
    }

    #[test]
    fn error_arrays_become_rejections_with_the_salesforce_code() {
        let e = failure(&reply(
            400,
            json!([{"message":"Required fields are missing: [StageName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["StageName"]}]),
        ));
        match e {
            CrmError::Rejected { code, message } => {
                assert_eq!(code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
                assert_eq!(message, "Required fields are missing: [StageName]");
            }
            other => panic!("{other:?}"),
        }
        // Collection-style results say statusCode.
        let (code, _) = salesforce_error(&json!([{"statusCode":"STRING_TOO_LONG","message":"x"}]));
        assert_eq!(code.as_deref(), Some("STRING_TOO_LONG"));
    }

    #[test]
    fn statuses_that_are_not_about_the_data() {
        let limit = json!([{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]);
        assert!(matches!(
            failure(&reply(403, limit)),
            CrmError::AllocationExhausted
        ));
        let concurrent = json!([{"message":"ConcurrentRequests (Concurrent API Requests) Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]);
        assert!(matches!(
            failure(&reply(403, concurrent)),
            CrmError::Throttled { retry_after: None }
        ));
        assert!(matches!(
            failure(&reply(401, json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]))),
            CrmError::Auth(m) if m.contains("INVALID_SESSION_ID")
        ));
        assert!(matches!(
            failure(&reply(503, Value::Null)),
            CrmError::Unavailable(_)
        ));
        assert!(failure(&reply(503, Value::Null)).is_transient());
    }

    #[test]
    fn several_matches_name_the_records() {
        let e = failure(&reply(
            300,
            json!([
                "/services/data/v62.0/sobjects/Lead/00Q000000000001AAA",
                "/services/data/v62.0/sobjects/Lead/00Q000000000002AAA"
            ]),
        ));
        let text = e.to_string();
        assert!(text.contains("2 records match"), "{text}");
        assert!(text.contains("00Q000000000002AAA"), "{text}");
        assert!(!e.is_transient());
    }

    #[test]
    fn a_read_of_an_unknown_field_is_a_mapping_problem() {
        let r = reply(
            400,
            json!([{"message":"No such column 'Foo__c' on entity 'Lead'","errorCode":"INVALID_FIELD"}]),
        );
        assert!(matches!(read_failure(&r, "Lead"), CrmError::Mapping(m) if m.contains("Foo__c")));
    }
}
