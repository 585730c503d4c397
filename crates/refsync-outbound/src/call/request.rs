//! One logical call as a value ([`ApiRequest`]) that can be sent again on a retry,
//! and the buffered answer ([`ApiResponse`]).
//!
//! Bodies are kept as [`Bytes`] so every attempt sends the same bytes. `Debug`
//! shows neither header values nor the body: a token request's form carries the
//! client secret, and API requests carry bearer tokens.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use url::Url;
use uuid::Uuid;

/// Whether a request may be sent twice, which decides what may be retried.
///
/// The caller marks each request; the default follows the method (GET, HEAD, PUT,
/// DELETE, OPTIONS are idempotent; POST and PATCH are not until the caller says a
/// PATCH carries `If-Match` or is an upsert by key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Sending it twice has the effect of sending it once: retried after any
    /// transient failure.
    Idempotent,
    /// A plain create: never retried once the request may have reached the server
    /// (only a failure to connect is retried).
    NotIdempotent,
    /// A create carrying `MS-RequestId`, reused on every attempt, which Partner
    /// Center uses to recognise a repeat (partner-center.md §1.3): retried like an
    /// idempotent request.
    IdempotentWithRequestId,
}

impl Idempotency {
    /// The default for a method.
    pub fn for_method(method: &Method) -> Self {
        if method == Method::GET
            || method == Method::HEAD
            || method == Method::PUT
            || method == Method::DELETE
            || method == Method::OPTIONS
        {
            Idempotency::Idempotent
        } else {
            Idempotency::NotIdempotent
        }
    }

    /// True when a repeat after the server may have seen the request is harmless.
    pub fn may_repeat(self) -> bool {
        !matches!(self, Idempotency::NotIdempotent)
    }
}

/// Where a request goes: a path under the API's base URL, or an absolute URL the
/// server handed out (a next-page link) that must share the base URL's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Path(String),
    Url(Url),
}

/// One call, built once and sent on every attempt.
#[derive(Clone)]
pub struct ApiRequest {
    pub(crate) method: Method,
    pub(crate) target: Target,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) idempotency: Idempotency,
    pub(crate) request_id: Option<Uuid>,
    pub(crate) accept_any_status: bool,
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Path(p) => p.clone(),
            Target::Url(u) => u.path().to_owned(),
        };
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("target", &target)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_bytes", &self.body.as_ref().map(Bytes::len))
            .field("idempotency", &self.idempotency)
            .finish_non_exhaustive()
    }
}

impl ApiRequest {
    /// A request for `path`, relative to the API's base URL (a leading `/` is ignored).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotency = Idempotency::for_method(&method);
        Self {
            method,
            target: Target::Path(path.into()),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            idempotency,
            request_id: None,
            accept_any_status: false,
        }
    }

    /// A request for an absolute URL (e.g. `@odata.nextLink`), which must share the
    /// base URL's host; its scheme and port are taken from the base URL.
    pub fn to_url(method: Method, url: Url) -> Self {
        let mut request = Self::new(method, String::new());
        request.target = Target::Url(url);
        request
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// `POST path` (not idempotent unless marked).
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// `PUT path`.
    pub fn put(path: impl Into<String>) -> Self {
        Self::new(Method::PUT, path)
    }

    /// `PATCH path` (not idempotent unless marked).
    pub fn patch(path: impl Into<String>) -> Self {
        Self::new(Method::PATCH, path)
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// Adds a query parameter (encoded when sent).
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Sets a header, replacing any earlier value.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets a header whose value is a credential: marked sensitive so HTTP
    /// libraries never print it.
    pub fn sensitive_header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.insert(name, value);
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, serde_json::Error> {
        let bytes = serde_json::to_vec(body)?;
        self.body = Some(Bytes::from(bytes));
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(self)
    }

    /// A form body (`application/x-www-form-urlencoded`), as token endpoints take.
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.body = Some(Bytes::from(encoded));
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self
    }

    /// Marks how safe a repeat is.
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Marks the request [`Idempotency::IdempotentWithRequestId`] with this
    /// `MS-RequestId` (keep it across the durable queue's retries of one create).
    pub fn request_id(mut self, id: Uuid) -> Self {
        self.idempotency = Idempotency::IdempotentWithRequestId;
        self.request_id = Some(id);
        self
    }

    /// Returns the final response whatever its status (retryable statuses are still
    /// retried first); for endpoints whose error bodies the caller reads itself.
    pub fn accept_any_status(mut self) -> Self {
        self.accept_any_status = true;
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }
}

/// A buffered response.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// Attempts it took.
    pub attempts: u32,
    /// The `MS-CorrelationId` (or equivalent) sent with the call.
    pub correlation_id: Uuid,
    /// The `MS-RequestId` sent with every attempt, for requests that carried one.
    pub request_id: Option<Uuid>,
}

impl ApiResponse {
    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// A header as text, when present and valid.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_follows_the_method_until_marked() {
        assert_eq!(ApiRequest::get("x").idempotency, Idempotency::Idempotent);
        assert_eq!(
            ApiRequest::post("x").idempotency,
            Idempotency::NotIdempotent
        );
        assert_eq!(
            ApiRequest::patch("x").idempotency,
            Idempotency::NotIdempotent
        );
        let id = Uuid::new_v4();
        let r = ApiRequest::post("x").request_id(id);
        assert_eq!(r.idempotency, Idempotency::IdempotentWithRequestId);
        assert_eq!(r.request_id, Some(id));
    }

    #[test]
    fn debug_shows_neither_header_values_nor_body() {
        let r = ApiRequest::post("oauth2/token")
            .form(&[("client_secret", "s3cr3t-value")])
            .sensitive_header(
                header::AUTHORIZATION,
                HeaderValue::from_static("Bearer tok-value"),
            );
        let text = format!("{r:?}");
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(!text.contains("tok-value"), "{text}");
        assert!(text.contains("authorization"), "{text}");
    }
}
