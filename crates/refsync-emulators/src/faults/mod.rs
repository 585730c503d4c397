//! Fault injection shared by every emulator: throttling (429 + `Retry-After`),
//! server errors, and slow responses, switched on at run time.
//!
//! A [`FaultInjector`] is an axum middleware plus a control router that each
//! emulator mounts at `/_emulator/faults`:
//!
//! - `POST /_emulator/faults` with a [`FaultRule`] installs a rule (201, the rule with its id);
//! - `GET /_emulator/faults` lists the rules and how often each fired;
//! - `DELETE /_emulator/faults` clears them all, `DELETE /_emulator/faults/{id}` one.
//!
//! Rules never apply to `/_emulator/*`, so the control APIs stay reachable while a
//! service is "down". The body of an injected error comes from a per-emulator
//! [`FaultResponder`], so each service fails in its own documented shape
//! ([`responders`] has the three presets). Everything is also callable from Rust.
//!
//! Randomness (`fraction`) is a seeded RNG per rule, so a test that injects
//! "30 % of requests fail" sees the same requests fail on every run.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The path prefix no rule ever applies to.
pub const CONTROL_PREFIX: &str = "/_emulator";

/// Builds the response for an injected error status, in the emulated service's own shape.
/// The injector adds `Retry-After` afterwards when the rule asks for it and the
/// responder did not set one.
pub type FaultResponder = Arc<dyn Fn(&InjectedFault) -> Response + Send + Sync>;

/// What the responder is asked to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    /// The status the rule asks for.
    pub status: StatusCode,
    /// The `Retry-After` seconds the rule asks for, if any.
    pub retry_after_secs: Option<u64>,
    /// The rule that fired.
    pub rule_id: u64,
}

/// A fault rule as installed through the control API or [`FaultInjector::install`].
///
/// A request *matches* when its method and path fit; a matching request *fires*
/// the rule when `fraction` (if set) says so and `count` (if set) is not used up.
/// Without `count` and `fraction` every matching request fires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP status to answer with (400–599). Without it the rule only delays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Fire for the next N matching requests only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Fire for this fraction (0..=1) of matching requests, drawn from a seeded RNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Value for the `Retry-After` header on the injected response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Wait this long before answering (alone, or before the injected status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Only requests whose path starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Only requests with this method (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Seed for `fraction`; defaults to the injector's seed plus the rule id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl FaultRule {
    /// A rule answering `status` to the next `count` requests.
    pub fn status_times(status: u16, count: u64) -> Self {
        Self {
            status: Some(status),
            count: Some(count),
            ..Self::default()
        }
    }

    /// Sets `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Restricts the rule to paths starting with `prefix`.
    pub fn on_path(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Restricts the rule to one method.
    pub fn on_method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    fn validate(&self) -> Result<(), FaultError> {
        if let Some(status) = self.status
            && !(400..=599).contains(&status)
        {
            return Err(FaultError::Invalid(format!(
                "status must be 400-599, got {status}"
            )));
        }
        if let Some(f) = self.fraction
            && !(0.0..=1.0).contains(&f)
        {
            return Err(FaultError::Invalid(format!(
                "fraction must be between 0 and 1, got {f}"
            )));
        }
        if self.status.is_none() && self.delay_ms.is_none() {
            return Err(FaultError::Invalid(
                "a rule needs a status, a delay_ms, or both".to_owned(),
            ));
        }
        if let Some(m) = &self.method
            && Method::from_bytes(m.to_ascii_uppercase().as_bytes()).is_err()
        {
            return Err(FaultError::Invalid(format!("not an HTTP method: {m:?}")));
        }
        Ok(())
    }
}

/// A rule with its id and counters, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRuleStatus {
    /// Rule id (for `DELETE /_emulator/faults/{id}`).
    pub id: u64,
    /// The rule as installed.
    #[serde(flatten)]
    pub rule: FaultRule,
    /// Requests that matched method and path.
    pub matched: u64,
    /// Requests the rule fired for.
    pub fired: u64,
    /// Fires left when `count` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// The rule's values are out of range or inconsistent.
    #[error("invalid fault rule: {0}")]
    Invalid(String),
}

struct RuleState {
    id: u64,
    rule: FaultRule,
    method: Option<Method>,
    matched: u64,
    fired: u64,
    rng: StdRng,
}

impl RuleState {
    fn status(&self) -> FaultRuleStatus {
        FaultRuleStatus {
            id: self.id,
            rule: self.rule.clone(),
            matched: self.matched,
            fired: self.fired,
            remaining: self.rule.count.map(|c| c.saturating_sub(self.fired)),
        }
    }

    fn used_up(&self) -> bool {
        self.rule.count.is_some_and(|c| self.fired >= c)
    }
}

/// What the middleware does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    delay: Option<Duration>,
    fault: Option<InjectedFault>,
}

struct Inner {
    rules: Mutex<Vec<RuleState>>,
    next_id: AtomicU64,
    seed: u64,
    responder: FaultResponder,
}

/// Fault rules for one emulator (cheap to clone; clones share the rules).
#[derive(Clone)]
pub struct FaultInjector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector")
            .field("rules", &self.list())
            .finish()
    }
}

impl FaultInjector {
    /// An injector with no rules, answering injected errors through `responder`.
    pub fn new(responder: FaultResponder) -> Self {
        Self::with_seed(responder, 0x5eed_fa17)
    }

    /// Like [`FaultInjector::new`] with an explicit base seed for `fraction` rules.
    pub fn with_seed(responder: FaultResponder, seed: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                rules: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                seed,
                responder,
            }),
        }
    }

    fn rules(&self) -> MutexGuard<'_, Vec<RuleState>> {
        // A poisoned lock only means a panic elsewhere mid-update of counters; keep serving.
        self.inner
            .rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Installs a rule; later rules are consulted after earlier ones.
    pub fn install(&self, rule: FaultRule) -> Result<FaultRuleStatus, FaultError> {
        rule.validate()?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let seed = rule.seed.unwrap_or(self.inner.seed.wrapping_add(id));
        let state = RuleState {
            id,
            method: rule
                .method
                .as_deref()
                .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok()),
            rule,
            matched: 0,
            fired: 0,
            rng: StdRng::seed_from_u64(seed),
        };
        let status = state.status();
        tracing::info!(rule_id = id, rule = ?status.rule, "fault rule installed");
        self.rules().push(state);
        Ok(status)
    }

    /// The installed rules and their counters.
    pub fn list(&self) -> Vec<FaultRuleStatus> {
        self.rules().iter().map(RuleState::status).collect()
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules().clear();
    }

    /// Removes one rule; false when there was none with that id.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.rules();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    /// Consults the rules for one request and updates their counters.
    fn decide(&self, method: &Method, path: &str) -> Option<Decision> {
        if is_control_path(path) {
            return None;
        }
        let mut rules = self.rules();
        for rule in rules.iter_mut() {
            if rule.used_up() {
                continue;
            }
            if rule.method.as_ref().is_some_and(|m| m != method) {
                continue;
            }
            if rule
                .rule
                .path_prefix
                .as_deref()
                .is_some_and(|p| !path.starts_with(p))
            {
                continue;
            }
            rule.matched += 1;
            if let Some(fraction) = rule.rule.fraction
                && !rule.rng.random_bool(fraction)
            {
                continue;
            }
            rule.fired += 1;
            return Some(Decision {
                delay: rule.rule.delay_ms.map(Duration::from_millis),
                fault: rule.rule.status.and_then(|s| {
                    StatusCode::from_u16(s).ok().map(|status| InjectedFault {
                        status,
                        retry_after_secs: rule.rule.retry_after_secs,
                        rule_id: rule.id,
                    })
                }),
            });
        }
        None
    }

    /// Wraps `app` with the fault middleware and mounts the control API at `/_emulator/faults`.
    pub fn mount(&self, app: Router) -> Router {
        app.nest("/_emulator/faults", self.control_router())
            .layer(middleware::from_fn_with_state(self.clone(), inject))
    }

    /// Wraps `app` with the fault middleware only (mount [`FaultInjector::control_router`] yourself).
    pub fn layer(&self, app: Router) -> Router {
        app.layer(middleware::from_fn_with_state(self.clone(), inject))
    }

    /// The control API, to be nested at `/_emulator/faults`.
    pub fn control_router(&self) -> Router {
        Router::new()
            .route("/", get(list_rules).post(install_rule).delete(clear_rules))
            .route("/{id}", delete(remove_rule))
            .with_state(self.clone())
    }

    fn respond(&self, fault: &InjectedFault) -> Response {
        let mut response = (self.inner.responder)(fault);
        if let Some(secs) = fault.retry_after_secs
            && !response.headers().contains_key(header::RETRY_AFTER)
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn is_control_path(path: &str) -> bool {
    path == CONTROL_PREFIX || path.starts_with("/_emulator/")
}

async fn inject(State(injector): State<FaultInjector>, request: Request, next: Next) -> Response {
    let Some(decision) = injector.decide(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    if let Some(delay) = decision.delay {
        tracing::debug!(delay_ms = delay.as_millis() as u64, path = %request.uri().path(), "injected delay");
        tokio::time::sleep(delay).await;
    }
    match decision.fault {
        Some(fault) => {
            tracing::info!(status = fault.status.as_u16(), rule_id = fault.rule_id, path = %request.uri().path(), "injected fault");
            injector.respond(&fault)
        }
        None => next.run(request).await,
    }
}

async fn list_rules(State(injector): State<FaultInjector>) -> Json<serde_json::Value> {
    Json(json!({ "rules": injector.list() }))
}

async fn install_rule(
    State(injector): State<FaultInjector>,
    body: Result<Json<FaultRule>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let rule = match body {
        Ok(Json(rule)) => rule,
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": rejection.body_text() })),
            )
                .into_response();
        }
    };
    match injector.install(rule) {
        Ok(status) => (StatusCode::CREATED, Json(status)).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn clear_rules(State(injector): State<FaultInjector>) -> StatusCode {
    injector.clear();
    StatusCode::NO_CONTENT
}

async fn remove_rule(State(injector): State<FaultInjector>, Path(id): Path<u64>) -> StatusCode {
    if injector.remove(id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

pub mod responders;

#[cfg(test)]
mod tests {
    use super::*;

    fn injector() -> FaultInjector {
        FaultInjector::new(responders::plain())
    }

    fn fires(inj: &FaultInjector, method: &Method, path: &str) -> Option<u16> {
        inj.decide(method, path)
            .and_then(|d| d.fault)
            .map(|f| f.status.as_u16())
    }

    #[test]
    fn count_rules_fire_exactly_n_times_then_stop() {
        let inj = injector();
        inj.install(FaultRule::status_times(503, 2)).unwrap();
        let got: Vec<_> = (0..4).map(|_| fires(&inj, &Method::GET, "/x")).collect();
        assert_eq!(got, vec![Some(503), Some(503), None, None]);
        let listed = inj.list();
        assert_eq!(listed[0].fired, 2);
        assert_eq!(listed[0].remaining, Some(0));
    }

    #[test]
    fn method_and_prefix_filter_requests() {
        let inj = injector();
        inj.install(
            FaultRule::status_times(429, 10)
                .on_path("/v1.0/engagements")
                .on_method("patch"),
        )
        .unwrap();
        assert_eq!(
            fires(&inj, &Method::GET, "/v1.0/engagements/referrals"),
            None
        );
        assert_eq!(fires(&inj, &Method::PATCH, "/api/data/v9.2/leads"), None);
        assert_eq!(
            fires(&inj, &Method::PATCH, "/v1.0/engagements/referrals/1"),
            Some(429)
        );
    }

    #[test]
    fn control_paths_are_never_faulted() {
        let inj = injector();
        inj.install(FaultRule {
            status: Some(500),
            ..FaultRule::default()
        })
        .unwrap();
        assert_eq!(fires(&inj, &Method::GET, "/_emulator/faults"), None);
        assert_eq!(fires(&inj, &Method::POST, "/_emulator/entra/expire"), None);
        assert_eq!(fires(&inj, &Method::GET, "/_emulatorx"), Some(500));
    }

    #[test]
    fn fractions_are_deterministic_for_a_seed_and_roughly_right() {
        let run = || {
            let inj = injector();
            inj.install(FaultRule {
                status: Some(500),
                fraction: Some(0.3),
                seed: Some(42),
                ..FaultRule::default()
            })
            .unwrap();
            (0..1000)
                .map(|_| fires(&inj, &Method::GET, "/a").is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|h| **h).count();
        assert!((200..400).contains(&hits), "{hits} of 1000 fired");
    }

    #[test]
    fn invalid_rules_are_refused() {
        let inj = injector();
        assert!(inj.install(FaultRule::status_times(200, 1)).is_err());
        assert!(
            inj.install(FaultRule {
                status: Some(500),
                fraction: Some(1.5),
                ..FaultRule::default()
            })
            .is_err()
        );
        assert!(inj.install(FaultRule::default()).is_err());
        assert!(inj.list().is_empty());
    }

    #[test]
    fn remove_and_clear() {
        let inj = injector();
        let a = inj.install(FaultRule::status_times(500, 1)).unwrap();
        inj.install(FaultRule::status_times(503, 1)).unwrap();
        assert!(inj.remove(a.id));
        assert!(!inj.remove(a.id));
        assert_eq!(inj.list().len(), 1);
        inj.clear();
        assert!(inj.list().is_empty());
    }
}
