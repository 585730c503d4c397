//! The one way refsync calls a remote API: [`ApiClient::send`].
//!
//! Every call gets, from one place:
//! - a timeout per attempt ([`ApiConfig::timeout`]);
//! - retries of transient failures with exponential backoff and jitter (backon),
//!   bounded by attempts and total time, honouring `Retry-After` on 429/503 — and
//!   only where a repeat is harmless ([`Idempotency`]);
//! - a bearer token from a [`TokenSource`], dropped and fetched again once on a 401;
//! - pacing (governor) and a concurrency cap, so a backfill stays under the
//!   server's limits instead of meeting them;
//! - `MS-CorrelationId` per call and `MS-RequestId` reused across attempts;
//! - a tracing span (api, method, host, path, status, attempts, elapsed) and metrics:
//!   `refsync_outbound_requests_total{api,status}`,
//!   `refsync_outbound_request_duration_seconds{api}`,
//!   `refsync_outbound_retries_total{api,reason}`,
//!   `refsync_outbound_throttled_total{api,status}`.

mod config;
mod error;
mod request;
mod retry;
mod send;

pub use config::{
    ApiConfig, CLIENT_REQUEST_ID, MS_CORRELATION_ID, MS_REQUEST_ID, Pacing, RetryPolicy,
};
pub use error::{CallContext, CallError, EXCERPT_CHARS, excerpt, parse_error_body};
pub use request::{ApiRequest, ApiResponse, Idempotency};

use crate::token::TokenSource;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use request::Target;
use send::Call;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::Instrument;
use url::Url;
use uuid::Uuid;

/// Metric: attempts sent, by API and status (`200`, … or `timeout`/`transport`).
pub const REQUESTS_TOTAL: &str = "refsync_outbound_requests_total";
/// Metric: attempt latency in seconds, by API.
pub const REQUEST_DURATION: &str = "refsync_outbound_request_duration_seconds";
/// Metric: retries, by API and reason (`throttled`, `server_error`, `timeout`, …).
pub const RETRIES_TOTAL: &str = "refsync_outbound_retries_total";
/// Metric: 429 and 503 answers, by API and status.
pub const THROTTLED_TOTAL: &str = "refsync_outbound_throttled_total";

/// Why an [`ApiClient`] could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiConfigError {
    /// The pacing allows no request at all (a zero window).
    #[error("{api}: pacing must allow at least one request per non-zero period")]
    Pacing {
        /// The API's name.
        api: String,
    },
    /// The base URL cannot have paths joined to it.
    #[error("{api}: base URL {url} cannot be a base")]
    BaseUrl {
        /// The API's name.
        api: String,
        /// The URL.
        url: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("{api}: HTTP client: {detail}")]
    Http {
        /// The API's name.
        api: String,
        /// What failed.
        detail: String,
    },
}

/// A client for one API; cheap to clone (clones share pacing, the concurrency cap
/// and connections).
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ApiConfig,
    base: Url,
    auth: Option<Arc<dyn TokenSource>>,
    pacer: Option<DefaultDirectRateLimiter>,
    slots: Option<Semaphore>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("api", &self.inner.config.name)
            .field("base_url", &self.inner.base.as_str())
            .field("authenticated", &self.inner.auth.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds the HTTP client refsync uses: rustls, no redirects (an API that redirects
/// is misconfigured, and a redirect must never carry a bearer token elsewhere).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("refsync/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

impl ApiClient {
    /// A client with its own connection pool. `auth` supplies bearer tokens; `None`
    /// for unauthenticated endpoints such as Entra's token endpoint.
    pub fn new(
        config: ApiConfig,
        auth: Option<Arc<dyn TokenSource>>,
    ) -> Result<Self, ApiConfigError> {
        let http = http_client().map_err(|e| ApiConfigError::Http {
            api: config.name.clone(),
            detail: e.without_url().to_string(),
        })?;
        Self::with_http_client(http, config, auth)
    }

    /// A client sharing `http`'s connection pool.
    pub fn with_http_client(
        http: reqwest::Client,
        config: ApiConfig,
        auth: Option<Arc<dyn TokenSource>>,
    ) -> Result<Self, ApiConfigError> {
        let mut base = config.base_url.clone();
        if base.cannot_be_a_base() {
            return Err(ApiConfigError::BaseUrl {
                api: config.name.clone(),
                url: base.to_string(),
            });
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let pacer = match config.pacing {
            Some(p) => {
                let quota = Quota::with_period(p.interval())
                    .ok_or_else(|| ApiConfigError::Pacing {
                        api: config.name.clone(),
                    })?
                    .allow_burst(p.burst);
                Some(RateLimiter::direct(quota))
            }
            None => None,
        };
        let slots = config.max_concurrency.map(|n| Semaphore::new(n.max(1)));
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                base,
                auth,
                pacer,
                slots,
            }),
        })
    }

    /// The API's configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The base URL (always ending in `/`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// Sends `request`, retrying as its [`Idempotency`] and the [`RetryPolicy`]
    /// allow. A 2xx (or 304) answer is `Ok`; so is any answer when the request
    /// [accepts any status](ApiRequest::accept_any_status).
    pub async fn send(&self, request: ApiRequest) -> Result<ApiResponse, CallError> {
        let url = self.resolve(&request);
        let context = CallContext {
            api: self.inner.config.name.clone(),
            method: request.method.clone(),
            path: match &url {
                Ok(u) => u.path().to_owned(),
                Err(_) => "(invalid)".to_owned(),
            },
        };
        let url = url.map_err(|detail| CallError::InvalidRequest {
            context: Box::new(context.clone()),
            detail,
        })?;
        let correlation_id = Uuid::new_v4();
        let request_id = match request.idempotency {
            Idempotency::IdempotentWithRequestId => {
                Some(request.request_id.unwrap_or_else(Uuid::new_v4))
            }
            _ => request.request_id,
        };
        let span = tracing::info_span!(
            "outbound_call",
            api = %context.api,
            method = %context.method,
            host = url.host_str().unwrap_or_default(),
            path = %context.path,
            %correlation_id,
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let call = Call {
            client: self,
            request: &request,
            url: &url,
            context: &context,
            correlation_id,
            request_id,
        };
        call.run().instrument(span).await
    }

    /// Resolves the request's target against the base URL. Absolute URLs must be on
    /// the base URL's host; they take its scheme and port, so a next-page link the
    /// server wrote with `http://` (as Partner Center's sample does, §1.4) never
    /// downgrades the connection or sends the token anywhere else.
    fn resolve(&self, request: &ApiRequest) -> Result<Url, String> {
        let base = &self.inner.base;
        let mut url = match &request.target {
            Target::Path(path) => base
                .join(path.trim_start_matches('/'))
                .map_err(|e| format!("bad path: {e}"))?,
            Target::Url(given) => {
                let same_host = given
                    .host_str()
                    .zip(base.host_str())
                    .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b));
                if !same_host {
                    return Err(format!(
                        "refusing to call host {:?}: not the API's host {:?}",
                        given.host_str().unwrap_or_default(),
                        base.host_str().unwrap_or_default()
                    ));
                }
                let mut url = base.clone();
                url.set_path(given.path());
                url.set_query(given.query());
                url
            }
        };
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        Ok(url)
    }

    async fn pace(&self) {
        let Some(pacer) = &self.inner.pacer else {
            return;
        };
        loop {
            match pacer.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(pacer.clock().now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
