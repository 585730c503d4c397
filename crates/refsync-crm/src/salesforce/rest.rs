//! The REST session: one [`ApiClient`] on the org's instance URL (learnt from the
//! first token response, crm.md §2.1), paced below the allocation, reading
//! `Sforce-Limit-Info` from every answer, and handing statuses back as [`Reply`]s for
//! each method to interpret. Also the two request shapes everything else is built
//! from: SOQL with bounded `nextRecordsUrl` paging (§2.4) and `/composite` (§2.5).

use super::auth::InstanceUrl;
use super::composite::{CompositeReply, CompositeRequest};
use super::errors::{Reply, failure, read_failure};
use super::limits::{Pacer, UsageChange, UsageTracker, parse_limit_info};
use crate::connector::{ApiUsage, CrmError};
use http::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use refsync_outbound::call::{
    ApiClient, ApiConfig, ApiRequest, CallError, Idempotency, RetryPolicy,
};
use refsync_outbound::token::TokenSource;
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use url::Url;

/// Everything but RFC 3986 unreserved characters is encoded in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A value as one URL path segment (a record id, an external ID value).
pub(crate) fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// A query-string value, form-encoded.
pub(crate) fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// How the session is set up.
#[derive(Debug, Clone)]
pub(crate) struct RestOptions {
    /// `v62.0`.
    pub(crate) version: String,
    /// Per attempt.
    pub(crate) timeout: Duration,
    /// In-process retries.
    pub(crate) retry: RetryPolicy,
    /// Requests per second, normally and once slowed down.
    pub(crate) rates: (f64, f64),
    /// Requests that may go at once at the normal rate.
    pub(crate) burst: u32,
    /// Share of the allocation past which the session slows down.
    pub(crate) threshold: f64,
}

/// The session.
pub(crate) struct Rest {
    http: reqwest::Client,
    tokens: Arc<dyn TokenSource>,
    instance: InstanceUrl,
    client: Mutex<Option<(Url, ApiClient)>>,
    options: RestOptions,
    usage: UsageTracker,
    pacer: Pacer,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("instance", &self.instance.get().map(|u| u.to_string()))
            .field("options", &self.options)
            .field("usage", &self.usage.latest())
            .finish_non_exhaustive()
    }
}

/// What a failed outbound call means to the engine. Token failures that a person must
/// fix (bad secret, unapproved user) are `Auth`; everything else is worth retrying.
fn call_failure(e: CallError) -> CrmError {
    match e {
        CallError::Token { source, .. } if !source.is_transient() => {
            CrmError::Auth(source.to_string())
        }
        CallError::Throttled { retry_after, .. } => CrmError::Throttled { retry_after },
        other => CrmError::Unavailable(other.to_string()),
    }
}

impl Rest {
    /// A session fetching tokens from `tokens`, which publishes the instance URL to `instance`.
    pub(crate) fn new(
        http: reqwest::Client,
        tokens: Arc<dyn TokenSource>,
        instance: InstanceUrl,
        options: RestOptions,
    ) -> Self {
        let (normal, slowed) = options.rates;
        Self {
            http,
            tokens,
            instance,
            client: Mutex::new(None),
            usage: UsageTracker::new(options.threshold),
            pacer: Pacer::new(normal, slowed, options.burst),
            options,
        }
    }

    /// The latest `Sforce-Limit-Info`.
    pub(crate) fn usage(&self) -> Option<ApiUsage> {
        self.usage.latest()
    }

    /// True while usage is past the threshold and requests go at the slowed rate.
    pub(crate) fn slowed_down(&self) -> bool {
        self.usage.is_slowed()
    }

    /// `/services/data/v62.0/<rest>`: the form `/composite` subrequests need too.
    pub(crate) fn data_path(&self, rest: &str) -> String {
        format!("/services/data/{}/{rest}", self.options.version)
    }

    /// The API client for the current instance, built once a token names it (and again
    /// if a later token names another one).
    async fn client(&self) -> Result<ApiClient, CrmError> {
        self.tokens.token().await.map_err(|e| {
            if e.is_transient() {
                CrmError::Unavailable(e.to_string())
            } else {
                CrmError::Auth(e.to_string())
            }
        })?;
        let instance = self
            .instance
            .get()
            .ok_or_else(|| CrmError::Auth("the token response named no instance_url".to_owned()))?;
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((url, client)) = slot.as_ref()
            && *url == instance
        {
            return Ok(client.clone());
        }
        let config = ApiConfig::new("salesforce", instance.clone())
            .with_timeout(self.options.timeout)
            .with_retry(self.options.retry.clone())
            .with_correlation_header(None);
        let client =
            ApiClient::with_http_client(self.http.clone(), config, Some(Arc::clone(&self.tokens)))
                .map_err(|e| CrmError::Mapping(e.to_string()))?;
        tracing::info!(instance = %instance, "Salesforce REST API at the instance the token names");
        *slot = Some((instance, client.clone()));
        Ok(client)
    }

    fn observe(&self, usage: ApiUsage) {
        match self.usage.observe(usage) {
            UsageChange::SlowedDown => tracing::warn!(
                used = usage.used,
                max = usage.max,
                threshold = self.options.threshold,
                requests_per_second = self.options.rates.1,
                "Salesforce API usage passed the slow-down threshold; pacing down so the daily allocation is not used up"
            ),
            UsageChange::Recovered => tracing::info!(
                used = usage.used,
                max = usage.max,
                requests_per_second = self.options.rates.0,
                "Salesforce API usage is below the slow-down threshold again; full speed"
            ),
            UsageChange::None => {}
        }
    }

    /// Sends one request (paced) and returns whatever Salesforce finally answered:
    /// retryable failures have been retried, a 401 has been met with a fresh token once.
    /// The pacer spaces logical calls; the few in-process retries of a 503 follow the
    /// retry policy's backoff instead.
    pub(crate) async fn send(&self, request: ApiRequest) -> Result<Reply, CrmError> {
        let client = self.client().await?;
        self.pacer.wait_turn(self.usage.is_slowed()).await;
        let response = client
            .send(request.accept_any_status())
            .await
            .map_err(call_failure)?;
        if let Some(usage) = response
            .header_str("sforce-limit-info")
            .and_then(parse_limit_info)
        {
            self.observe(usage);
        }
        let body = if response.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&response.body) {
                Ok(v) => v,
                Err(_) if !response.status.is_success() => Value::Null,
                Err(e) => {
                    return Err(CrmError::Unavailable(format!(
                        "Salesforce answered HTTP {} with a body that is not JSON: {e}",
                        response.status
                    )));
                }
            }
        };
        Ok(Reply {
            status: response.status,
            body,
        })
    }

    /// Runs a composite request (one API call).
    pub(crate) async fn composite(
        &self,
        request: &CompositeRequest,
        idempotency: Idempotency,
    ) -> Result<CompositeReply, CrmError> {
        let http = ApiRequest::post(self.data_path("composite"))
            .json(&request.to_json())
            .map_err(|e| CrmError::Mapping(format!("cannot encode a composite request: {e}")))?
            .idempotency(idempotency);
        let reply = self.send(http).await?;
        if !reply.ok() {
            return Err(failure(&reply));
        }
        CompositeReply::parse(&reply.body)
    }

    /// Runs a SOQL query and follows `nextRecordsUrl` until `limit` records or the end.
    /// Each page but the last holds at least one record, so at most `limit + 1` pages
    /// are read (a server that sends empty unfinished pages is refused).
    pub(crate) async fn query(
        &self,
        soql: &str,
        limit: usize,
        object: &str,
    ) -> Result<Vec<Value>, CrmError> {
        let mut records = Vec::new();
        let mut request = ApiRequest::get(self.data_path("query")).query("q", soql);
        for _page in 0..=limit {
            let reply = self.send(request).await?;
            if !reply.ok() {
                return Err(read_failure(&reply, object));
            }
            let page = reply.body.get("records").and_then(Value::as_array);
            let page_len = page.map_or(0, Vec::len);
            records.extend(page.into_iter().flatten().cloned());
            let done = reply
                .body
                .get("done")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if records.len() >= limit || done {
                records.truncate(limit);
                return Ok(records);
            }
            let next = reply
                .body
                .get("nextRecordsUrl")
                .and_then(Value::as_str)
                .filter(|n| n.starts_with("/services/data/"));
            let (Some(next), true) = (next, page_len > 0) else {
                return Err(CrmError::Unavailable(format!(
                    "Salesforce's {object} query result is not done but gives no next page"
                )));
            };
            request = ApiRequest::get(next.to_owned());
        }
        Err(CrmError::Unavailable(format!(
            "Salesforce's {object} query did not end within {} pages",
            limit.saturating_add(1)
        )))
    }

    /// `GET` with query parameters.
    pub(crate) async fn get(
        &self,
        path: String,
        query: &[(&str, String)],
    ) -> Result<Reply, CrmError> {
        let mut request = ApiRequest::get(path);
        for (k, v) in query {
            request = request.query(*k, v.clone());
        }
        self.send(request).await
    }

    /// `PATCH` or `POST` with a JSON body.
    pub(crate) async fn write(
        &self,
        method: http::Method,
        path: String,
        body: &Value,
        idempotency: Idempotency,
    ) -> Result<Reply, CrmError> {
        let request = ApiRequest::new(method, path)
            .json(body)
            .map_err(|e| CrmError::Mapping(format!("cannot encode a record: {e}")))?
            .idempotency(idempotency);
        self.send(request).await
    }
}

/// True for the statuses a single-record read turns into "no such record".
pub(crate) fn is_absent(reply: &Reply) -> bool {
    reply.status == StatusCode::NOT_FOUND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_query_values_are_encoded() {
        assert_eq!(segment("c5fb-3b6_x.y~z"), "c5fb-3b6_x.y~z");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(
            query_value("SELECT Id FROM Account WHERE Name = 'A&B+C'"),
            "SELECT+Id+FROM+Account+WHERE+Name+%3D+%27A%26B%2BC%27"
        );
    }

    #[test]
    fn only_token_problems_a_person_must_fix_are_auth() {
        use refsync_outbound::call::CallContext;
        use refsync_outbound::token::TokenError;
        let context = Box::new(CallContext {
            api: "salesforce".into(),
            method: http::Method::GET,
            path: "/x".into(),
        });
        let refused = CallError::Token {
            context: context.clone(),
            source: TokenError::Refused {
                audience: "salesforce".into(),
                error: "invalid_client".into(),
                aadsts: None,
                description: None,
            },
        };
        assert!(matches!(call_failure(refused), CrmError::Auth(_)));
        let timeout = CallError::Timeout {
            context,
            attempts: 3,
        };
        assert!(matches!(call_failure(timeout), CrmError::Unavailable(_)));
    }
}
