//! The REST API under `/services/data/`.
//!
//! One axum handler ([`entry`]) checks the version, the session and the API
//! allocation, then hands the request to [`dispatch`], which routes on the
//! path segments itself. Composite subrequests go through the same
//! [`dispatch`], so a call behaves identically alone or inside `/composite`.
//! Paths are split before percent-decoding, so an external id containing `/`
//! (sent as `%2F`) stays one segment.

pub mod collections;
pub mod composite;
pub mod query;
pub mod sobjects;

use super::error::{SfError, code};
use super::ids::SfId;
use super::{Shared, State as OrgState, auth};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value as JsonValue, json};
use std::sync::Arc;

/// The request body, parsed once.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    None,
    /// A JSON document.
    Json(JsonValue),
    /// Bytes that are not JSON (the parser's complaint).
    Invalid(String),
}

impl Body {
    fn from_bytes(bytes: &[u8]) -> Self {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Self::None;
        }
        match serde_json::from_slice(bytes) {
            Ok(v) => Self::Json(v),
            Err(e) => Self::Invalid(e.to_string()),
        }
    }

    /// The body as a JSON object, or `JSON_PARSER_ERROR`.
    pub fn object(&self) -> Result<&Map<String, JsonValue>, SfError> {
        match self {
            Self::Json(JsonValue::Object(m)) => Ok(m),
            Self::Json(_) => Err(SfError::json(
                "Cannot deserialize instance of sObject from a value that is not a JSON object",
            )),
            Self::Invalid(e) => Err(SfError::json(format!("Unexpected character: {e}"))),
            Self::None => Err(SfError::json("No content to map due to end-of-input")),
        }
    }

    /// The body as any JSON value, or `JSON_PARSER_ERROR`.
    pub fn value(&self) -> Result<&JsonValue, SfError> {
        match self {
            Self::Json(v) => Ok(v),
            Self::Invalid(e) => Err(SfError::json(format!("Unexpected character: {e}"))),
            Self::None => Err(SfError::json("No content to map due to end-of-input")),
        }
    }
}

/// One API request after authentication.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: Method,
    /// Decoded path segments after `/services/data/vNN.0/`.
    pub segments: Vec<String>,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    /// `batchSize` from `Sforce-Query-Options`.
    pub batch_size: Option<usize>,
    /// The body.
    pub body: Body,
}

impl ApiRequest {
    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The outcome of one API call, before it becomes an HTTP response (or a composite entry).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// Status.
    pub status: StatusCode,
    /// Extra headers (`Location`, …).
    pub headers: Vec<(HeaderName, String)>,
    /// JSON body, if any.
    pub body: Option<JsonValue>,
}

impl ApiResponse {
    /// A response with a JSON body.
    pub fn json(status: StatusCode, body: JsonValue) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    /// 204 No Content.
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: None,
        }
    }
}

impl From<SfError> for ApiResponse {
    fn from(e: SfError) -> Self {
        Self::json(e.status, e.body())
    }
}

/// What one call runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) state: &'a mut OrgState,
    pub(crate) user: SfId,
    pub(crate) now: DateTime<Utc>,
    pub(crate) version: u16,
    /// Inside `/composite` (which cannot nest).
    pub(crate) nested: bool,
}

impl Ctx<'_> {
    /// `vNN.0`.
    pub(crate) fn version_path(&self) -> String {
        format!("v{}.0", self.version)
    }

    /// The write context for the org.
    pub(crate) fn write(&self) -> super::org::WriteCtx {
        super::org::WriteCtx {
            user: self.user.clone(),
            now: self.now,
        }
    }

    /// The object index for a name, or `NOT_FOUND` as the REST API answers an unknown sObject.
    pub(crate) fn object(&self, name: &str) -> Result<usize, SfError> {
        self.shared
            .schema
            .object_index(name)
            .ok_or_else(SfError::not_found)
    }
}

fn release_label(version: u16) -> String {
    // v50.0 was Winter '21; three releases a year since.
    let n = version.saturating_sub(50);
    let season = ["Winter", "Spring", "Summer"][usize::from(n % 3)];
    format!("{season} '{:02}", 21 + n / 3)
}

/// `GET /services/data/`: the versions list (exempt from limits, crm.md §2.1/§2.7).
pub(crate) async fn versions(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<JsonValue> = (shared.config.min_api_version..=shared.config.max_api_version)
        .map(|v| {
            json!({
                "label": release_label(v),
                "url": format!("/services/data/v{v}.0"),
                "version": format!("{v}.0"),
            })
        })
        .collect();
    Json(JsonValue::Array(list)).into_response()
}

/// The major version in `vNN.0`, if served.
pub(crate) fn parse_version_number(shared: &Shared, text: &str) -> Option<u16> {
    let major = text.strip_prefix('v')?.strip_suffix(".0")?;
    if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u16 = major.parse().ok()?;
    (shared.config.min_api_version..=shared.config.max_api_version)
        .contains(&v)
        .then_some(v)
}

/// `…/services/data/vNN.0` and `…/vNN.0/`: the resource root.
pub(crate) async fn entry_root(
    state: State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entry(state, method, uri, headers, body).await
}

/// Every `/services/data/vNN.0/…` request.
pub(crate) async fn entry(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/services/data/").unwrap_or("");
    let mut raw = path.split('/');
    let Some(version) = raw.next().and_then(|v| parse_version_number(&shared, v)) else {
        return SfError::not_found().into_response();
    };
    let segments: Vec<String> = raw
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments = trim_trailing_empty(segments);
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let request = ApiRequest {
        method,
        segments,
        query,
        batch_size: batch_size(&headers),
        body: Body::from_bytes(&body),
    };
    let Some(token) = auth::bearer(&headers) else {
        return unauthorized();
    };
    let now = shared.clock.now();
    let timeout = auth::session_timeout(&shared);
    let mut state = shared.lock();
    let Some(user) = state.sessions.touch(token, now, timeout) else {
        return unauthorized();
    };
    let Some(used) = state.usage.try_count(now) else {
        let used = state.usage.used(now);
        let header = state.usage.header(used);
        drop(state);
        let mut response = SfError::limit_exceeded().into_response();
        insert_header(&mut response, "sforce-limit-info", &header);
        return response;
    };
    let limit_info = state.usage.header(used);
    let mut ctx = Ctx {
        shared: &shared,
        state: &mut state,
        user,
        now,
        version,
        nested: false,
    };
    let outcome = dispatch(&mut ctx, &request);
    drop(state);
    let mut response = into_http(outcome);
    insert_header(&mut response, "sforce-limit-info", &limit_info);
    response
}

fn trim_trailing_empty(mut segments: Vec<String>) -> Vec<String> {
    while segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    segments
}

fn unauthorized() -> Response {
    let mut response = SfError::invalid_session().into_response();
    insert_header(&mut response, "www-authenticate", "Token");
    response
}

fn insert_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), v);
    }
}

/// `Sforce-Query-Options: batchSize=N` (crm.md §2.4).
fn batch_size(headers: &HeaderMap) -> Option<usize> {
    let value = headers.get("sforce-query-options")?.to_str().ok()?;
    value.split([',', ';']).find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("batchSize")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

fn into_http(outcome: ApiResponse) -> Response {
    let mut response = match outcome.body {
        Some(body) => (outcome.status, Json(body)).into_response(),
        None => outcome.status.into_response(),
    };
    for (name, value) in outcome.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

fn method_not_allowed(method: &Method, allowed: &str) -> SfError {
    SfError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    )
}

/// Routes one request; every error becomes Salesforce's error array.
pub(crate) fn dispatch(ctx: &mut Ctx<'_>, req: &ApiRequest) -> ApiResponse {
    route(ctx, req).unwrap_or_else(ApiResponse::from)
}

fn route(ctx: &mut Ctx<'_>, req: &ApiRequest) -> Result<ApiResponse, SfError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = &req.method;
    match segs.as_slice() {
        [] => match *m {
            Method::GET => Ok(resources(ctx)),
            _ => Err(method_not_allowed(m, "HEAD,GET")),
        },
        ["limits"] => match *m {
            Method::GET => Ok(limits(ctx)),
            _ => Err(method_not_allowed(m, "HEAD,GET")),
        },
        [resource @ ("query" | "queryAll")] => match *m {
            Method::GET => query::run_query(ctx, req, *resource == "queryAll"),
            _ => Err(method_not_allowed(m, "HEAD,GET")),
        },
        [resource @ ("query" | "queryAll"), locator] => match *m {
            Method::GET => query::next_page(ctx, req, resource, locator),
            _ => Err(method_not_allowed(m, "HEAD,GET")),
        },
        ["sobjects", rest @ ..] => sobjects::route(ctx, req, rest),
        ["composite"] => match *m {
            Method::POST if !ctx.nested => composite::run(ctx, req),
            Method::POST => Err(SfError::bad_request(
                code::INVALID_INPUT,
                "Composite requests cannot be nested",
            )),
            _ => Err(method_not_allowed(m, "POST")),
        },
        ["composite", "sobjects", rest @ ..] => collections::route(ctx, req, rest),
        _ => Err(SfError::not_found()),
    }
}

fn resources(ctx: &Ctx<'_>) -> ApiResponse {
    let base = format!("/services/data/{}", ctx.version_path());
    ApiResponse::json(
        StatusCode::OK,
        json!({
            "sobjects": format!("{base}/sobjects"),
            "query": format!("{base}/query"),
            "queryAll": format!("{base}/queryAll"),
            "limits": format!("{base}/limits"),
            "composite": format!("{base}/composite"),
        }),
    )
}

/// `GET /limits`: only `DailyApiRequests` is modelled (crm.md §2.7; the full shape is unconfirmed).
fn limits(ctx: &mut Ctx<'_>) -> ApiResponse {
    let used = ctx.state.usage.used(ctx.now);
    let max = ctx.state.usage.max();
    ApiResponse::json(
        StatusCode::OK,
        json!({ "DailyApiRequests": { "Max": max, "Remaining": max.saturating_sub(used) } }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_labels_follow_the_release_train() {
        assert_eq!(release_label(50), "Winter '21");
        assert_eq!(release_label(59), "Winter '24");
        assert_eq!(release_label(66), "Spring '26");
    }

    #[test]
    fn batch_size_header_is_read_case_insensitively() {
        let mut h = HeaderMap::new();
        h.insert("Sforce-Query-Options", "batchsize=500".parse().unwrap());
        assert_eq!(batch_size(&h), Some(500));
    }
}
