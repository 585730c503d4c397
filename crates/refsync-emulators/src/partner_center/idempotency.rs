//! `MS-RequestId`: "GUID for idempotency; reuse it when retrying after a timeout"
//! (partner-center.md §1.3, `headers.md`). That is the header's documented
//! purpose, so a write repeated with the same request id within the window gets
//! the response the first one got and changes nothing: a retried create makes no
//! duplicate referral, and a retried PATCH whose first try succeeded does not
//! come back 412 because its own change moved the eTag. Only successful
//! responses are remembered; a failed write may be retried as a new one.

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// Most request ids remembered; the oldest are forgotten first.
const CAPACITY: usize = 10_000;

/// A remembered response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordedResponse {
    pub status: StatusCode,
    pub body: Option<Value>,
}

/// Responses of recent writes, by method, path and request id.
#[derive(Debug)]
pub(crate) struct IdempotencyCache {
    window: chrono::Duration,
    entries: HashMap<String, (DateTime<Utc>, RecordedResponse)>,
}

impl IdempotencyCache {
    pub(crate) fn new(window: std::time::Duration) -> Self {
        Self {
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            entries: HashMap::new(),
        }
    }

    fn key(method: &Method, path: &str, request_id: &str) -> String {
        format!("{method} {path} {}", request_id.trim().to_ascii_lowercase())
    }

    /// The response recorded for this write, if still within the window.
    pub(crate) fn replay(
        &self,
        method: &Method,
        path: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Option<RecordedResponse> {
        self.entries
            .get(&Self::key(method, path, request_id))
            .filter(|(at, _)| now - *at < self.window)
            .map(|(_, r)| r.clone())
    }

    /// Remembers a successful response.
    pub(crate) fn record(
        &mut self,
        method: &Method,
        path: &str,
        request_id: &str,
        response: RecordedResponse,
        now: DateTime<Utc>,
    ) {
        let window = self.window;
        self.entries.retain(|_, (at, _)| now - *at < window);
        if self.entries.len() >= CAPACITY
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries
            .insert(Self::key(method, path, request_id), (now, response));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn replays_within_the_window_only() {
        let mut cache = IdempotencyCache::new(Duration::from_secs(60));
        let now = Utc::now();
        let response = RecordedResponse {
            status: StatusCode::CREATED,
            body: Some(serde_json::json!({"id": "r1"})),
        };
        cache.record(&Method::POST, "/r", "ABC", response.clone(), now);
        assert_eq!(
            cache.replay(&Method::POST, "/r", "abc", now),
            Some(response)
        );
        assert_eq!(cache.replay(&Method::PATCH, "/r", "abc", now), None);
        assert_eq!(cache.replay(&Method::POST, "/r", "other", now), None);
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(cache.replay(&Method::POST, "/r", "abc", later), None);
    }
}
