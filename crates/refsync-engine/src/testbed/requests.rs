//! A request recorder in front of an emulator's router: every request's method and
//! path, so tests can count outbound calls and writes exactly as the service saw them.

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::{Arc, Mutex};

/// One request an emulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The method.
    pub method: Method,
    /// The path (no query).
    pub path: String,
}

impl Recorded {
    /// True for a method that changes data.
    pub fn is_write(&self) -> bool {
        matches!(
            self.method,
            Method::POST | Method::PATCH | Method::PUT | Method::DELETE
        )
    }
}

/// Every request an emulator received, in order. Clones share the log.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Recorded>>>);

impl RequestLog {
    /// Wraps `router` so every request is recorded before it is handled.
    pub fn record(&self, router: Router) -> Router {
        let log = self.clone();
        router.layer(middleware::from_fn(move |request: Request, next: Next| {
            let log = log.clone();
            async move {
                log.push(Recorded {
                    method: request.method().clone(),
                    path: request.uri().path().to_owned(),
                });
                let response: Response = next.run(request).await;
                response
            }
        }))
    }

    fn push(&self, r: Recorded) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Recorded> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn under(&self, prefix: &str) -> Vec<Recorded> {
        self.all()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    /// How many requests under `prefix` changed data.
    pub fn writes_under(&self, prefix: &str) -> usize {
        self.under(prefix).iter().filter(|r| r.is_write()).count()
    }

    /// The requests under `prefix` as `METHOD path` lines, for failure messages.
    pub fn lines_under(&self, prefix: &str) -> Vec<String> {
        self.under(prefix)
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
