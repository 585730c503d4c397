//! The sending loop of one call: attempts, the retry decision after each, waits,
//! token refresh on 401, and what the last attempt is reported as.

use super::error::{excerpt, parse_error_body};
use super::request::{ApiRequest, ApiResponse};
use super::retry::{self, GiveUp, Next, Outcome};
use super::{
    ApiClient, CallContext, CallError, MS_REQUEST_ID, REQUEST_DURATION, REQUESTS_TOTAL,
    RETRIES_TOTAL, THROTTLED_TOTAL,
};
use crate::token::AccessToken;
use backon::BackoffBuilder;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tokio::time::Instant;
use url::Url;
use uuid::Uuid;

/// One logical call in progress.
pub(super) struct Call<'a> {
    pub(super) client: &'a ApiClient,
    pub(super) request: &'a ApiRequest,
    pub(super) url: &'a Url,
    pub(super) context: &'a CallContext,
    pub(super) correlation_id: Uuid,
    pub(super) request_id: Option<Uuid>,
}

/// A buffered answer from one attempt.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Why one attempt produced no answer.
struct NoAnswer {
    outcome: Outcome,
    detail: String,
}

enum AttemptResult {
    Answer(Answer),
    Failed(NoAnswer),
    TooLarge,
}

impl Call<'_> {
    pub(super) async fn run(self) -> Result<ApiResponse, CallError> {
        let inner = &self.client.inner;
        let policy = &inner.config.retry;
        let mut backoff = {
            let mut builder = backon::ExponentialBuilder::default()
                .with_min_delay(policy.min_backoff)
                .with_max_delay(policy.max_backoff)
                .with_max_times(policy.max_attempts.saturating_sub(1) as usize);
            if policy.jitter {
                builder = builder.with_jitter();
            }
            builder.build()
        };
        let started = Instant::now();
        let mut attempts: u32 = 0;
        let mut reauthenticated = false;
        loop {
            attempts += 1;
            let token = match &inner.auth {
                Some(source) => Some(source.token().await.map_err(|source| {
                    self.finish(attempts, started, "token");
                    CallError::Token {
                        context: Box::new(self.context.clone()),
                        source,
                    }
                })?),
                None => None,
            };
            self.client.pace().await;
            let result = {
                let _slot = match &inner.slots {
                    Some(s) => s.acquire().await.ok(),
                    None => None,
                };
                self.attempt(token.as_ref()).await
            };
            let outcome = match &result {
                AttemptResult::Answer(a) => Outcome::Answered {
                    status: a.status,
                    retry_after: a
                        .headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry::parse_retry_after(v, chrono::Utc::now())),
                },
                AttemptResult::Failed(f) => f.outcome,
                AttemptResult::TooLarge => {
                    self.finish(attempts, started, "too_large");
                    return Err(CallError::ResponseTooLarge {
                        context: Box::new(self.context.clone()),
                        limit: inner.config.max_response_bytes,
                    });
                }
            };
            let done_ok = matches!(&result, AttemptResult::Answer(a) if is_ok(a.status));
            let next = if done_ok {
                Next::Stop
            } else {
                retry::next_step(
                    outcome,
                    self.request.idempotency,
                    token.is_some(),
                    reauthenticated,
                )
            };
            let retry_after = match next {
                Next::Stop => return self.conclude(result, attempts, started),
                Next::Reauthenticate => {
                    if let (Some(source), Some(token)) = (&inner.auth, &token) {
                        source.invalidate(token);
                    }
                    reauthenticated = true;
                    tracing::info!(attempt = attempts, "401: fetching a fresh access token");
                    metrics::counter!(RETRIES_TOTAL, "api" => inner.config.name.clone(), "reason" => "unauthorized")
                        .increment(1);
                    continue;
                }
                Next::Retry {
                    reason,
                    retry_after,
                } => {
                    let wait = retry::plan_wait(
                        policy,
                        attempts,
                        started.elapsed(),
                        retry_after,
                        backoff.next(),
                    );
                    match wait {
                        Ok(delay) => {
                            tracing::warn!(
                                attempt = attempts,
                                reason,
                                delay_ms = delay.as_millis() as u64,
                                "retrying"
                            );
                            metrics::counter!(RETRIES_TOTAL, "api" => inner.config.name.clone(), "reason" => reason)
                                .increment(1);
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        Err(why) => (why, retry_after),
                    }
                }
            };
            // No further attempt: report what the last one came to.
            let (why, server_wait) = retry_after;
            if let (GiveUp::RetryAfterTooLong, AttemptResult::Answer(a)) = (why, &result) {
                self.finish(attempts, started, a.status.as_str());
                return Err(CallError::Throttled {
                    context: Box::new(self.context.clone()),
                    status: a.status,
                    retry_after: server_wait,
                    attempts,
                });
            }
            return self.conclude(result, attempts, started);
        }
    }

    /// Turns the last attempt into the call's result.
    fn conclude(
        &self,
        result: AttemptResult,
        attempts: u32,
        started: Instant,
    ) -> Result<ApiResponse, CallError> {
        let context = Box::new(self.context.clone());
        match result {
            AttemptResult::Answer(a) => {
                self.finish(attempts, started, a.status.as_str());
                if is_ok(a.status) || self.request.accept_any_status {
                    return Ok(ApiResponse {
                        status: a.status,
                        headers: a.headers,
                        body: a.body,
                        attempts,
                        correlation_id: self.correlation_id,
                        request_id: self.request_id,
                    });
                }
                let retry_after = a
                    .headers
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry::parse_retry_after(v, chrono::Utc::now()));
                let throttled = a.status == StatusCode::TOO_MANY_REQUESTS
                    || (a.status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some());
                if throttled {
                    return Err(CallError::Throttled {
                        context,
                        status: a.status,
                        retry_after,
                        attempts,
                    });
                }
                let (code, message) = parse_error_body(&a.body);
                Err(CallError::Status {
                    context,
                    status: a.status,
                    code,
                    message,
                    excerpt: excerpt(&a.body),
                    retry_after,
                    attempts,
                })
            }
            AttemptResult::Failed(f) => {
                self.finish(attempts, started, "failed");
                match f.outcome {
                    Outcome::TimedOut => Err(CallError::Timeout { context, attempts }),
                    _ => Err(CallError::Transport {
                        context,
                        attempts,
                        detail: f.detail,
                        before_send: f.outcome == Outcome::ConnectFailed,
                    }),
                }
            }
            AttemptResult::TooLarge => Err(CallError::ResponseTooLarge {
                context,
                limit: self.client.inner.config.max_response_bytes,
            }),
        }
    }

    fn finish(&self, attempts: u32, started: Instant, status: &str) {
        let span = tracing::Span::current();
        span.record("status", status);
        span.record("attempts", attempts);
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
    }

    async fn attempt(&self, token: Option<&AccessToken>) -> AttemptResult {
        let inner = &self.client.inner;
        let api = inner.config.name.clone();
        let mut builder = inner
            .http
            .request(self.request.method.clone(), self.url.clone())
            .timeout(inner.config.timeout)
            .headers(self.request.headers.clone());
        if !self.request.headers.contains_key(header::ACCEPT) {
            builder = builder.header(header::ACCEPT, HeaderValue::from_static("application/json"));
        }
        if let Some(name) = &inner.config.correlation_header {
            builder = builder.header(name.clone(), uuid_header(self.correlation_id));
        }
        if let Some(id) = self.request_id {
            builder = builder.header(MS_REQUEST_ID, uuid_header(id));
        }
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, token.bearer_header());
        }
        if let Some(body) = &self.request.body {
            builder = builder.body(body.clone());
        }
        let started = Instant::now();
        let result = match builder.send().await {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                match read_body(response, inner.config.max_response_bytes).await {
                    Ok(body) => AttemptResult::Answer(Answer {
                        status,
                        headers,
                        body,
                    }),
                    Err(BodyError::TooLarge) => AttemptResult::TooLarge,
                    Err(BodyError::Read(e)) => AttemptResult::Failed(no_answer(&e)),
                }
            }
            Err(e) => AttemptResult::Failed(no_answer(&e)),
        };
        let elapsed = started.elapsed();
        let status_label = match &result {
            AttemptResult::Answer(a) => a.status.as_str().to_owned(),
            AttemptResult::Failed(f) if f.outcome == Outcome::TimedOut => "timeout".to_owned(),
            AttemptResult::Failed(_) => "transport".to_owned(),
            AttemptResult::TooLarge => "too_large".to_owned(),
        };
        metrics::counter!(REQUESTS_TOTAL, "api" => api.clone(), "status" => status_label.clone())
            .increment(1);
        metrics::histogram!(REQUEST_DURATION, "api" => api.clone()).record(elapsed.as_secs_f64());
        if let AttemptResult::Answer(a) = &result
            && matches!(a.status.as_u16(), 429 | 503)
        {
            metrics::counter!(THROTTLED_TOTAL, "api" => api, "status" => status_label.clone())
                .increment(1);
        }
        match &result {
            AttemptResult::Failed(f) => tracing::debug!(
                status = %status_label,
                elapsed_ms = elapsed.as_millis() as u64,
                detail = %f.detail,
                "attempt failed"
            ),
            _ => tracing::debug!(
                status = %status_label,
                elapsed_ms = elapsed.as_millis() as u64,
                "attempt answered"
            ),
        }
        result
    }
}

fn is_ok(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::NOT_MODIFIED
}

fn uuid_header(id: Uuid) -> HeaderValue {
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(&id.to_string()).unwrap_or(HeaderValue::from_static("invalid"))
}

fn no_answer(e: &reqwest::Error) -> NoAnswer {
    let outcome = if e.is_connect() {
        Outcome::ConnectFailed
    } else if e.is_timeout() {
        Outcome::TimedOut
    } else {
        Outcome::Broken
    };
    NoAnswer {
        outcome,
        detail: error_chain(e),
    }
}

/// The error and its causes on one line, without the URL (which may carry a query).
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "(url)");
    }
    let mut source = e.source();
    let mut depth = 0;
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
        depth += 1;
        if depth > 4 {
            break;
        }
    }
    text
}

enum BodyError {
    TooLarge,
    Read(reqwest::Error),
}

async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
