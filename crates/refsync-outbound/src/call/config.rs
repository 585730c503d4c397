//! How one API is called: its timeout, retry budget, pacing and concurrency cap.
//! One [`ApiConfig`] per remote API, because their limits differ (Dataverse counts
//! 6000 requests per 300 s per user and 52 concurrent requests, crm.md §1.12;
//! Partner Center publishes no limit but throttles test events at 2 per minute,
//! partner-center.md §2.1).

use http::HeaderName;
use std::num::NonZeroU32;
use std::time::Duration;
use url::Url;

/// The header Partner Center reads a per-call tracing id from (partner-center.md §1.3).
pub const MS_CORRELATION_ID: HeaderName = HeaderName::from_static("ms-correlationid");
/// The header Partner Center reads an idempotency key from (partner-center.md §1.3).
pub const MS_REQUEST_ID: HeaderName = HeaderName::from_static("ms-requestid");
/// The header Entra ID echoes as `correlation_id` in its error bodies.
pub const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

/// Everything that shapes the calls to one API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Short name for metrics and logs (`api` label), e.g. `partner-center-referrals`.
    pub name: String,
    /// Base URL; relative request paths are resolved against it, and absolute URLs
    /// (such as `@odata.nextLink`) must share its origin so a bearer token never
    /// leaves for another host.
    pub base_url: Url,
    /// Limit for one attempt, from connecting to the last byte of the body.
    pub timeout: Duration,
    /// When and how often failed attempts are repeated.
    pub retry: RetryPolicy,
    /// Steady request rate kept by this client (all callers sharing it together).
    pub pacing: Option<Pacing>,
    /// Most requests in flight at once (Dataverse: 52).
    pub max_concurrency: Option<usize>,
    /// Header carrying a fresh UUID per call (`MS-CorrelationId` by default;
    /// `client-request-id` for Entra), or none.
    pub correlation_header: Option<HeaderName>,
    /// Responses larger than this are refused rather than buffered.
    pub max_response_bytes: usize,
}

impl ApiConfig {
    /// Defaults: 30 s timeout, [`RetryPolicy::default`], no pacing or concurrency cap,
    /// `MS-CorrelationId`, responses up to 32 MiB.
    pub fn new(name: impl Into<String>, base_url: Url) -> Self {
        Self {
            name: name.into(),
            base_url,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            pacing: None,
            max_concurrency: None,
            correlation_header: Some(MS_CORRELATION_ID),
            max_response_bytes: 32 * 1024 * 1024,
        }
    }

    /// Sets the per-attempt timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the pacing.
    pub fn with_pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = Some(pacing);
        self
    }

    /// Caps the requests in flight at once.
    pub fn with_max_concurrency(mut self, max: usize) -> Self {
        self.max_concurrency = Some(max);
        self
    }

    /// Sets (or with `None` removes) the per-call correlation header.
    pub fn with_correlation_header(mut self, header: Option<HeaderName>) -> Self {
        self.correlation_header = header;
        self
    }
}

/// When failed attempts are repeated: exponential backoff with jitter between
/// `min_backoff` and `max_backoff`, at most `max_attempts` attempts in all and no
/// retry that would end after `max_elapsed`. A `Retry-After` the server sends
/// replaces the backoff delay; one longer than `max_retry_after` is not waited out
/// in-process — the call fails with [`CallError::Throttled`](super::CallError::Throttled)
/// so the durable queue can come back later instead of pinning a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// No retry starts if it would begin after this much time since the first attempt.
    pub max_elapsed: Duration,
    /// First backoff delay.
    pub min_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
    /// Longest `Retry-After` waited in-process.
    pub max_retry_after: Duration,
    /// Randomise backoff delays so many clients do not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 5 attempts within 60 s, backoff 200 ms … 10 s with jitter, `Retry-After` up to 60 s.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// A steady outbound rate: `requests` per `per`, with bursts of at most `burst`.
///
/// Pacing below the server's limit means a backfill never meets a 429 at all
/// (Dataverse's 6000 per 300 s becomes one request every 50 ms). Every attempt,
/// retries included, waits its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Requests allowed per `per`.
    pub requests: NonZeroU32,
    /// The window `requests` is counted over.
    pub per: Duration,
    /// Requests that may go out back to back after an idle spell.
    pub burst: NonZeroU32,
}

impl Pacing {
    /// `requests` per `per`, evenly spaced (burst 1).
    pub fn new(requests: NonZeroU32, per: Duration) -> Self {
        Self {
            requests,
            per,
            burst: NonZeroU32::MIN,
        }
    }

    /// `requests` per second, evenly spaced.
    pub fn per_second(requests: NonZeroU32) -> Self {
        Self::new(requests, Duration::from_secs(1))
    }

    /// Dataverse's service-protection limit (6000 requests / 300 s per user,
    /// crm.md §1.12) as a steady 20 requests per second.
    pub fn dataverse() -> Self {
        Self::new(
            NonZeroU32::new(6000).unwrap_or(NonZeroU32::MIN),
            Duration::from_secs(300),
        )
    }

    /// Allows bursts of `burst` requests.
    pub fn with_burst(mut self, burst: NonZeroU32) -> Self {
        self.burst = burst;
        self
    }

    /// The spacing between requests at the steady rate.
    pub fn interval(&self) -> Duration {
        self.per / self.requests.get()
    }
}
