//! `POST /composite` (crm.md §2.5): up to `composite_max_subrequests`
//! subrequests run in order through the ordinary [`dispatch`](super::dispatch),
//! later ones referring to earlier results with `@{refId.field}` (also
//! `@{refId.records[0].Id}`). The call always answers HTTP 200 with one
//! `compositeResponse` entry per subrequest and counts as one API call.
//!
//! With `allOrNone: true` the subrequests share one savepoint: the first failure
//! rolls back everything, the failing subrequest keeps its own error, and every
//! other one answers 400 `PROCESSING_HALTED`.

use super::super::error::{SfError, code};
use super::{ApiRequest, ApiResponse, Body, Ctx, dispatch, parse_version_number};
use axum::http::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Map, Value as JsonValue, json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompositeBody {
    #[serde(default)]
    all_or_none: bool,
    // `collateSubrequests` is accepted and ignored: subrequests always run in order here.
    composite_request: Vec<SubRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubRequest {
    method: String,
    url: String,
    reference_id: String,
    #[serde(default)]
    body: Option<JsonValue>,
}

const ROLLED_BACK: &str =
    "The transaction was rolled back since another operation in the same transaction failed.";

fn halted(message: String) -> ApiResponse {
    ApiResponse::from(SfError::bad_request(code::PROCESSING_HALTED, message))
}

/// Runs a composite request.
pub(crate) fn run(ctx: &mut Ctx<'_>, req: &ApiRequest) -> Result<ApiResponse, SfError> {
    let body: CompositeBody = serde_json::from_value(req.body.value()?.clone())
        .map_err(|e| SfError::json(e.to_string()))?;
    let max = ctx.shared.config.composite_max_subrequests;
    if body.composite_request.is_empty() {
        return Err(SfError::bad_request(
            code::INVALID_INPUT,
            "compositeRequest must contain at least one subrequest",
        ));
    }
    if body.composite_request.len() > max {
        // The 25-subrequest cap and this error's wording are unconfirmed (crm.md §2.5, §5).
        return Err(SfError::bad_request(
            code::LIMIT_EXCEEDED,
            format!("Limit Exceeded: a composite request can contain at most {max} subrequests"),
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for sub in &body.composite_request {
        let valid = sub
            .reference_id
            .starts_with(|c: char| c.is_ascii_alphabetic())
            && sub
                .reference_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || seen.contains(&sub.reference_id.as_str()) {
            return Err(SfError::bad_request(
                code::INVALID_INPUT,
                format!("Invalid or duplicate referenceId: {}", sub.reference_id),
            ));
        }
        seen.push(&sub.reference_id);
    }

    let savepoint = body.all_or_none.then(|| ctx.state.org.savepoint());
    let mut results: Vec<(String, ApiResponse)> = Vec::new();
    let mut failed = false;
    for sub in &body.composite_request {
        if failed && body.all_or_none {
            results.push((sub.reference_id.clone(), halted(ROLLED_BACK.to_owned())));
            continue;
        }
        let response = match run_one(ctx, sub, &results) {
            Ok(r) => r,
            Err(e) => ApiResponse::from(e),
        };
        failed |= response.status.as_u16() >= 400;
        results.push((sub.reference_id.clone(), response));
    }
    if let Some(sp) = savepoint {
        if failed {
            ctx.state.org.rollback_to(sp);
            let mut first_failure_kept = false;
            for (_, r) in &mut results {
                let is_failure = r.status.as_u16() >= 400;
                if is_failure && !first_failure_kept {
                    first_failure_kept = true;
                } else if !(is_failure && r.body.as_ref().is_some_and(is_halted)) {
                    *r = halted(ROLLED_BACK.to_owned());
                }
            }
        } else {
            ctx.state.org.release(sp);
        }
    }
    let entries: Vec<JsonValue> = results
        .into_iter()
        .map(|(reference_id, r)| {
            let headers: Map<String, JsonValue> = r
                .headers
                .iter()
                .map(|(k, v)| (header_case(k.as_str()), JsonValue::String(v.clone())))
                .collect();
            json!({
                "body": r.body.unwrap_or(JsonValue::Null),
                "httpHeaders": headers,
                "httpStatusCode": r.status.as_u16(),
                "referenceId": reference_id,
            })
        })
        .collect();
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({ "compositeResponse": entries }),
    ))
}

fn is_halted(body: &JsonValue) -> bool {
    body.get(0)
        .and_then(|e| e.get("errorCode"))
        .and_then(JsonValue::as_str)
        == Some(code::PROCESSING_HALTED)
}

fn header_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn run_one(
    ctx: &mut Ctx<'_>,
    sub: &SubRequest,
    done: &[(String, ApiResponse)],
) -> Result<ApiResponse, SfError> {
    let url = substitute_text(&sub.url, done, true)?;
    let body = match &sub.body {
        Some(b) => Body::Json(substitute_json(b, done)?),
        None => Body::None,
    };
    let method = Method::from_bytes(sub.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
        SfError::bad_request(
            code::INVALID_INPUT,
            format!("Invalid method: {}", sub.method),
        )
    })?;
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let rest = path
        .strip_prefix("/services/data/")
        .ok_or_else(SfError::not_found)?;
    let mut raw = rest.split('/');
    let version = raw
        .next()
        .and_then(|v| parse_version_number(ctx.shared, v))
        .ok_or_else(SfError::not_found)?;
    let mut segments: Vec<String> = raw
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    while segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    let request = ApiRequest {
        method,
        segments,
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        batch_size: None,
        body,
    };
    let mut nested = Ctx {
        shared: ctx.shared,
        state: &mut *ctx.state,
        user: ctx.user.clone(),
        now: ctx.now,
        version,
        nested: true,
    };
    Ok(dispatch(&mut nested, &request))
}

/// Looks up `refId.path` (`id`, `records[0].Id`, `Account.Name`) in earlier results.
fn lookup(expr: &str, done: &[(String, ApiResponse)]) -> Result<JsonValue, SfError> {
    let missing = |reference: &str| {
        SfError::bad_request(
            code::PROCESSING_HALTED,
            format!(
                "Invalid reference specified. No value for {expr} found in {reference}. Provided referenceId ({reference}) must be a valid referenceId of a previous subrequest that succeeded."
            ),
        )
    };
    let (reference, path) = expr.split_once('.').unwrap_or((expr, ""));
    let (reference, first_index) = match reference.split_once('[') {
        Some((r, idx)) => (r, Some(idx.trim_end_matches(']'))),
        None => (reference, None),
    };
    let (_, response) = done
        .iter()
        .find(|(id, r)| id == reference && r.status.as_u16() < 400)
        .ok_or_else(|| missing(reference))?;
    let mut at = response.body.clone().ok_or_else(|| missing(reference))?;
    let mut steps: Vec<String> = Vec::new();
    if let Some(i) = first_index {
        steps.push(format!("[{i}]"));
    }
    for part in path.split('.').filter(|p| !p.is_empty()) {
        match part.split_once('[') {
            Some((name, rest)) => {
                steps.push(name.to_owned());
                for idx in rest.split('[') {
                    steps.push(format!("[{}]", idx.trim_end_matches(']')));
                }
            }
            None => steps.push(part.to_owned()),
        }
    }
    for step in steps {
        let next = match step.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(index) => index.parse::<usize>().ok().and_then(|i| at.get(i).cloned()),
            None => at.get(&step).cloned(),
        };
        at = next.ok_or_else(|| missing(reference))?;
    }
    Ok(at)
}

fn as_text(v: &JsonValue) -> String {
    match v {
        JsonValue::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn substitute_text(
    text: &str,
    done: &[(String, ApiResponse)],
    encode: bool,
) -> Result<String, SfError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let value = as_text(&lookup(&rest[start + 2..start + len], done)?);
        if encode {
            out.extend(percent_encoding::utf8_percent_encode(
                &value,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        } else {
            out.push_str(&value);
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute_json(v: &JsonValue, done: &[(String, ApiResponse)]) -> Result<JsonValue, SfError> {
    Ok(match v {
        JsonValue::String(s) => {
            // A string that is exactly one reference takes the referenced JSON value.
            if let Some(expr) = s.strip_prefix("@{").and_then(|r| r.strip_suffix('}'))
                && !expr.contains('}')
            {
                lookup(expr, done)?
            } else {
                JsonValue::String(substitute_text(s, done, false)?)
            }
        }
        JsonValue::Array(items) => JsonValue::Array(
            items
                .iter()
                .map(|i| substitute_json(i, done))
                .collect::<Result<_, _>>()?,
        ),
        JsonValue::Object(map) => JsonValue::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute_json(v, done)?)))
                .collect::<Result<_, SfError>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> Vec<(String, ApiResponse)> {
        vec![
            (
                "acc".to_owned(),
                ApiResponse::json(
                    StatusCode::CREATED,
                    json!({"id":"001x","success":true,"errors":[]}),
                ),
            ),
            (
                "q".to_owned(),
                ApiResponse::json(
                    StatusCode::OK,
                    json!({"totalSize":1,"records":[{"Id":"00Qy","Amount":5}]}),
                ),
            ),
        ]
    }

    #[test]
    fn references_resolve_in_urls_and_bodies() {
        let d = done();
        assert_eq!(
            substitute_text("/services/data/v59.0/sobjects/Account/@{acc.id}", &d, true).unwrap(),
            "/services/data/v59.0/sobjects/Account/001x"
        );
        assert_eq!(
            substitute_json(&json!({"AccountId":"@{acc.id}","N":"@{q.records[0].Amount}","T":"x-@{q.records[0].Id}"}), &d).unwrap(),
            json!({"AccountId":"001x","N":5,"T":"x-00Qy"})
        );
        let e = substitute_text("@{nope.id}", &d, true).unwrap_err();
        assert_eq!(e.errors[0].code, code::PROCESSING_HALTED);
    }

    #[test]
    fn header_names_are_title_cased() {
        assert_eq!(header_case("location"), "Location");
        assert_eq!(header_case("sforce-limit-info"), "Sforce-Limit-Info");
    }
}
