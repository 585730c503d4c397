//! The Web API session: one [`ApiClient`] on `<url>/api/data/v9.2/`, paced below the
//! service-protection limits and capped at their concurrency (crm.md §1.12), with the
//! standard headers (§1.3) on every request, and the answers handed back as
//! [`Reply`]s for each method to interpret. Also the bounded `@odata.nextLink` walk
//! (§1.8).

use super::errors::{Reply, failure};
use crate::connector::CrmError;
use http::{HeaderName, HeaderValue, Method};
use refsync_outbound::call::{ApiClient, ApiRequest, CallError, Idempotency};
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// `OData-MaxVersion` (crm.md §1.3).
const ODATA_MAX_VERSION: HeaderName = HeaderName::from_static("odata-maxversion");
/// `OData-Version`.
const ODATA_VERSION: HeaderName = HeaderName::from_static("odata-version");
/// `Prefer`.
const PREFER: HeaderName = HeaderName::from_static("prefer");

/// What a failed outbound call means to the engine. Token failures a person must fix
/// (bad secret, unknown app) are `Auth`; throttling that outlasted the in-process
/// budget is `Throttled`; everything else is worth retrying later.
pub(crate) fn call_failure(e: CallError) -> CrmError {
    match e {
        CallError::Token { source, .. } if !source.is_transient() => {
            CrmError::Auth(source.to_string())
        }
        CallError::Throttled { retry_after, .. } => CrmError::Throttled { retry_after },
        other => CrmError::Unavailable(other.to_string()),
    }
}

/// One request, before the standard headers are added.
#[derive(Debug)]
pub(crate) struct Call {
    request: ApiRequest,
    /// A create or an action: the HTTP client does not repeat it after it may have
    /// reached the server, so a 429 is waited out here (see [`Web::send`]).
    not_idempotent: bool,
}

impl Call {
    /// `GET path` with `If-None-Match: null`, which stops any cache between us and
    /// Dataverse from answering (crm.md §1.3).
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self {
            request: ApiRequest::get(path).header(
                http::header::IF_NONE_MATCH,
                HeaderValue::from_static("null"),
            ),
            not_idempotent: false,
        }
    }

    /// `GET` of a next-page link exactly as given (crm.md §1.8).
    pub(crate) fn get_url(url: Url) -> Self {
        Self {
            request: ApiRequest::to_url(Method::GET, url).header(
                http::header::IF_NONE_MATCH,
                HeaderValue::from_static("null"),
            ),
            not_idempotent: false,
        }
    }

    /// A write with a JSON body, marked with how safe a repeat is.
    pub(crate) fn write(
        method: Method,
        path: impl Into<String>,
        body: &Value,
        idempotency: Idempotency,
    ) -> Result<Self, CrmError> {
        let request = ApiRequest::new(method, path)
            .json(body)
            .map_err(|e| CrmError::Mapping(format!("cannot encode a record: {e}")))?
            .idempotency(idempotency);
        Ok(Self {
            request,
            not_idempotent: !idempotency.may_repeat(),
        })
    }

    /// Adds a query option (`$select`, `$filter`, …).
    pub(crate) fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.request = self.request.query(name, value);
        self
    }

    /// Adds a `Prefer` value (`return=representation`, `odata.maxpagesize=N`).
    pub(crate) fn prefer(mut self, value: &str) -> Result<Self, CrmError> {
        let value = HeaderValue::from_str(value)
            .map_err(|_| CrmError::Mapping(format!("bad Prefer value {value:?}")))?;
        self.request = self.request.header(PREFER, value);
        Ok(self)
    }

    /// `If-Match: *`: update only, never an accidental create (crm.md §1.5, §1.6).
    pub(crate) fn if_match_any(mut self) -> Self {
        self.request = self
            .request
            .header(http::header::IF_MATCH, HeaderValue::from_static("*"));
        self
    }

    /// `If-Match: W/"n"`: only if the record is still at this version (crm.md §1.6).
    pub(crate) fn if_match(mut self, etag: &str) -> Result<Self, CrmError> {
        let value = HeaderValue::from_str(etag)
            .map_err(|_| CrmError::Mapping(format!("{etag:?} cannot be sent as an ETag")))?;
        self.request = self.request.header(http::header::IF_MATCH, value);
        Ok(self)
    }
}

/// The session.
#[derive(Debug, Clone)]
pub(crate) struct Web {
    client: ApiClient,
    /// How often, and how long at most, a throttled create is waited out.
    throttle: (u32, Duration),
}

impl Web {
    /// A session over `client` (its base URL is the Web API root); a create or action
    /// refused with 429 is tried up to `attempts` times in all, waiting out a
    /// `Retry-After` of at most `max_wait`.
    pub(crate) fn new(client: ApiClient, attempts: u32, max_wait: Duration) -> Self {
        Self {
            client,
            throttle: (attempts.max(1), max_wait),
        }
    }

    /// Sends one call (paced, retried as its idempotency allows, a 401 met with a fresh
    /// token once) and returns whatever Dataverse finally answered.
    ///
    /// Service protection refuses a request before running it (crm.md §1.12), so a 429
    /// means nothing happened and even a create may be sent again: the HTTP client
    /// repeats only requests that are safe after *any* failure, so the throttled create
    /// is waited out here, within the same bounds.
    pub(crate) async fn send(&self, call: Call) -> Result<Reply, CrmError> {
        let (attempts, max_wait) = self.throttle;
        let mut attempt = 1;
        loop {
            let reply = self.send_once(call.request.clone()).await?;
            if !(call.not_idempotent && reply.status == http::StatusCode::TOO_MANY_REQUESTS) {
                return Ok(reply);
            }
            let wait = reply.retry_after();
            match wait {
                Some(wait) if attempt < attempts && wait <= max_wait => {
                    tracing::warn!(
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "Dataverse throttled a create; waiting out Retry-After"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return Ok(reply),
            }
        }
    }

    async fn send_once(&self, request: ApiRequest) -> Result<Reply, CrmError> {
        let request = request
            .header(ODATA_MAX_VERSION, HeaderValue::from_static("4.0"))
            .header(ODATA_VERSION, HeaderValue::from_static("4.0"))
            .header(
                http::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            )
            .accept_any_status();
        let response = self.client.send(request).await.map_err(call_failure)?;
        let body = if response.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&response.body) {
                Ok(v) => v,
                Err(_) if !response.status.is_success() => Value::Null,
                Err(e) => {
                    return Err(CrmError::Unavailable(format!(
                        "Dataverse answered HTTP {} with a body that is not JSON: {e}",
                        response.status
                    )));
                }
            }
        };
        Ok(Reply {
            status: response.status,
            headers: response.headers,
            body,
        })
    }

    /// Sends a query and follows `@odata.nextLink` until `limit` rows or the last page.
    /// Every page but the last holds at least one row, so at most `limit + 1` pages are
    /// read (a server sending empty unfinished pages is refused).
    /// `page_size` goes out as `Prefer: odata.maxpagesize` on every page, as §1.8 asks.
    pub(crate) async fn collect(
        &self,
        first: Call,
        limit: usize,
        page_size: Option<usize>,
    ) -> Result<Vec<Value>, CrmError> {
        let paged = |call: Call| match page_size {
            Some(n) => call.prefer(&format!("odata.maxpagesize={n}")),
            None => Ok(call),
        };
        let mut rows = Vec::new();
        let mut call = paged(first)?;
        for _page in 0..=limit {
            let reply = self.send(call).await?;
            if !reply.ok() {
                return Err(failure(&reply));
            }
            let page = reply.body.get("value").and_then(Value::as_array);
            let page_len = page.map_or(0, Vec::len);
            rows.extend(page.into_iter().flatten().cloned());
            let next = reply.body.get("@odata.nextLink").and_then(Value::as_str);
            if rows.len() >= limit || next.is_none() {
                rows.truncate(limit);
                return Ok(rows);
            }
            let next = next
                .filter(|_| page_len > 0)
                .and_then(|n| Url::parse(n).ok())
                .ok_or_else(|| {
                    CrmError::Unavailable(
                        "Dataverse sent an unusable or empty-page @odata.nextLink".to_owned(),
                    )
                })?;
            call = paged(Call::get_url(next))?;
        }
        Err(CrmError::Unavailable(format!(
            "a Dataverse query did not end within {} pages",
            limit.saturating_add(1)
        )))
    }
}
