//! Service-protection limits, enforced for real (crm.md §1.12): per user, requests
//! and combined execution time over a sliding window, and requests in progress at
//! once. Exceeding one is a 429 with `Retry-After` (seconds) and the documented code
//! and message. The concurrency limit fails at once; the window limits are checked
//! before a request starts, so they can be overshot by requests already running.
//! A client that keeps sending while throttled is told to wait longer each time.
//!
//! [`Protection::admit`] hands out a [`Permit`]; dropping it ends the request and
//! records its execution time. Times come from the environment's [`Clock`], so a
//! test can move it past the window instead of sleeping.

use super::clock::Clock;
use super::config::ServiceProtectionLimits;
use super::error::{DvError, LIMIT_CONCURRENCY, LIMIT_EXECUTION_TIME, LIMIT_REQUESTS};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Which limit a 429 was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Number of requests over the window.
    Requests,
    /// Combined execution time over the window.
    ExecutionTime,
    /// Concurrent requests.
    Concurrency,
}

#[derive(Debug, Default)]
struct UserWindow {
    requests: VecDeque<DateTime<Utc>>,
    executions: VecDeque<(DateTime<Utc>, Duration)>,
    in_flight: u32,
    blocked: Option<(DateTime<Utc>, Measure)>,
}

/// One user's use of the limits, as the control API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserUsage {
    /// The user (the token's object id).
    pub user: String,
    /// Requests counted in the current window.
    pub requests_in_window: usize,
    /// Execution time counted in the current window (ms).
    pub execution_ms_in_window: u64,
    /// Requests running now.
    pub in_flight: u32,
    /// Throttled until (when throttled).
    pub throttled_until: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct State {
    limits: ServiceProtectionLimits,
    users: HashMap<String, UserWindow>,
    throttled: BTreeMap<Measure, u64>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    clock: Clock,
}

/// The limits and everyone's use of them (cheap to clone; clones share the state).
#[derive(Debug, Clone)]
pub struct Protection {
    inner: Arc<Inner>,
}

/// A request in progress: holds a concurrency slot until dropped.
#[derive(Debug)]
pub struct Permit {
    inner: Arc<Inner>,
    user: String,
    started: Instant,
    /// Requests left in the window after this one (`x-ms-ratelimit-burst-remaining-xrm-requests`).
    pub remaining_requests: u64,
    /// Execution time left in the window, ms (`x-ms-ratelimit-time-remaining-xrm-requests`).
    pub remaining_execution_ms: u64,
}

fn ceil_secs(d: chrono::Duration) -> u64 {
    let ms = d.num_milliseconds().max(0);
    u64::try_from((ms + 999) / 1000).unwrap_or(0).max(1)
}

fn window_of(limits: &ServiceProtectionLimits) -> chrono::Duration {
    chrono::Duration::from_std(limits.window).unwrap_or(chrono::Duration::MAX)
}

fn prune(user: &mut UserWindow, now: DateTime<Utc>, window: chrono::Duration) {
    while user.requests.front().is_some_and(|t| *t + window <= now) {
        user.requests.pop_front();
    }
    while user
        .executions
        .front()
        .is_some_and(|(t, _)| *t + window <= now)
    {
        user.executions.pop_front();
    }
}

fn message(measure: Measure, limits: &ServiceProtectionLimits) -> (&'static str, String) {
    let secs = limits.window.as_secs();
    match measure {
        Measure::Requests => (
            LIMIT_REQUESTS,
            format!(
                "Number of requests exceeded the limit of {} over time window of {secs} seconds.",
                limits.requests_per_window
            ),
        ),
        Measure::ExecutionTime => (
            LIMIT_EXECUTION_TIME,
            format!(
                "Combined execution time of incoming requests exceeded limit of {} milliseconds over time window of {secs} seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.",
                super::annotations::group_thousands(
                    &limits.execution_time_per_window.as_millis().to_string()
                )
            ),
        ),
        Measure::Concurrency => (
            LIMIT_CONCURRENCY,
            format!(
                "Number of concurrent requests exceeded the limit of {}.",
                limits.concurrent_requests
            ),
        ),
    }
}

impl Protection {
    /// Limits read from the environment's `clock`.
    pub fn new(limits: ServiceProtectionLimits, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    limits,
                    users: HashMap::new(),
                    throttled: BTreeMap::new(),
                }),
                clock,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The limits in force.
    pub fn limits(&self) -> ServiceProtectionLimits {
        self.state().limits.clone()
    }

    /// Changes the limits (running requests and counted history are kept).
    pub fn set_limits(&self, limits: ServiceProtectionLimits) {
        self.state().limits = limits;
    }

    /// 429s sent by each limit so far.
    pub fn throttled(&self) -> BTreeMap<Measure, u64> {
        self.state().throttled.clone()
    }

    /// Forgets every user's history and the 429 counts.
    pub fn reset(&self) {
        let mut state = self.state();
        state.users.retain(|_, u| u.in_flight > 0);
        for user in state.users.values_mut() {
            user.requests.clear();
            user.executions.clear();
            user.blocked = None;
        }
        state.throttled.clear();
    }

    /// Every user's current use.
    pub fn usage(&self) -> Vec<UserUsage> {
        let now = self.inner.clock.now();
        let mut state = self.state();
        let window = window_of(&state.limits);
        let mut list: Vec<UserUsage> = state
            .users
            .iter_mut()
            .map(|(name, user)| {
                prune(user, now, window);
                UserUsage {
                    user: name.clone(),
                    requests_in_window: user.requests.len(),
                    execution_ms_in_window: user
                        .executions
                        .iter()
                        .map(|(_, d)| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                        .sum(),
                    in_flight: user.in_flight,
                    throttled_until: user.blocked.map(|(t, _)| t).filter(|t| *t > now),
                }
            })
            .collect();
        list.sort_by(|a, b| a.user.cmp(&b.user));
        list
    }

    /// Admits a request from `user` now, or refuses it with a 429.
    pub fn admit(&self, user: &str) -> Result<Permit, DvError> {
        self.admit_at(user, self.inner.clock.now())
    }

    fn admit_at(&self, user_key: &str, now: DateTime<Utc>) -> Result<Permit, DvError> {
        let mut state = self.state();
        let limits = state.limits.clone();
        let window = window_of(&limits);
        let user = state.users.entry(user_key.to_owned()).or_default();
        prune(user, now, window);
        let refusal = if !limits.enabled {
            None
        } else if user.in_flight >= limits.concurrent_requests {
            // Fails at once and frees up as soon as a request finishes.
            Some((Measure::Concurrency, 1))
        } else if let Some((until, measure)) = user.blocked.filter(|(until, _)| *until > now) {
            // Still sending while throttled: the wait grows (capped at two windows).
            let growth = chrono::Duration::from_std(limits.retry_after_growth).unwrap_or_default();
            let until = (until + growth).min(now + window + window);
            user.blocked = Some((until, measure));
            Some((measure, ceil_secs(until - now)))
        } else if user.requests.len() >= limits.requests_per_window as usize {
            let excess = user.requests.len() + 1 - limits.requests_per_window as usize;
            let frees_at = user
                .requests
                .get(excess.saturating_sub(1))
                .map_or(now, |t| *t + window);
            user.blocked = Some((frees_at, Measure::Requests));
            Some((Measure::Requests, ceil_secs(frees_at - now)))
        } else {
            let budget = limits.execution_time_per_window;
            let mut used: Duration = user.executions.iter().map(|(_, d)| *d).sum();
            if used >= budget {
                let mut frees_at = now;
                for (finished, d) in &user.executions {
                    used = used.saturating_sub(*d);
                    frees_at = *finished + window;
                    if used < budget {
                        break;
                    }
                }
                user.blocked = Some((frees_at, Measure::ExecutionTime));
                Some((Measure::ExecutionTime, ceil_secs(frees_at - now)))
            } else {
                None
            }
        };
        if let Some((measure, retry_after)) = refusal {
            *state.throttled.entry(measure).or_default() += 1;
            let (code, text) = message(measure, &limits);
            tracing::info!(
                user = user_key,
                ?measure,
                retry_after,
                "service protection limit hit"
            );
            return Err(DvError::throttled(code, text, retry_after));
        }
        user.blocked = None;
        user.requests.push_back(now);
        user.in_flight += 1;
        let used: Duration = user.executions.iter().map(|(_, d)| *d).sum();
        let remaining_requests = u64::from(limits.requests_per_window)
            .saturating_sub(u64::try_from(user.requests.len()).unwrap_or(u64::MAX));
        let remaining_execution_ms = u64::try_from(
            limits
                .execution_time_per_window
                .saturating_sub(used)
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        Ok(Permit {
            inner: self.inner.clone(),
            user: user_key.to_owned(),
            started: Instant::now(),
            remaining_requests,
            remaining_execution_ms,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let now = self.inner.clock.now();
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(user) = state.users.get_mut(&self.user) {
            user.in_flight = user.in_flight.saturating_sub(1);
            user.executions.push_back((now, self.started.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn protection(requests: u32, window_secs: u64, concurrent: u32) -> Protection {
        Protection::new(
            ServiceProtectionLimits::small(requests, Duration::from_secs(window_secs), concurrent),
            Clock::default(),
        )
    }

    #[test]
    fn requests_over_the_window_are_refused_until_the_oldest_leave_it() {
        let p = protection(3, 10, 10);
        for s in 0..3 {
            drop(p.admit_at("u", at(s)).unwrap());
        }
        let err = p.admit_at("u", at(4)).unwrap_err();
        assert_eq!(err.status.as_u16(), 429);
        assert_eq!(err.code, "0x80072322");
        assert_eq!(
            err.message,
            "Number of requests exceeded the limit of 3 over time window of 10 seconds."
        );
        // The oldest request (t=0) leaves the window at t=10.
        assert_eq!(err.retry_after_secs, Some(6));
        // Other users are not affected.
        assert!(p.admit_at("v", at(4)).is_ok());
        // After the wait, requests pass again.
        assert!(p.admit_at("u", at(10)).is_ok());
        assert_eq!(p.throttled().get(&Measure::Requests), Some(&1));
    }

    #[test]
    fn retry_after_grows_while_the_client_keeps_sending() {
        let p = protection(1, 10, 10);
        drop(p.admit_at("u", at(0)).unwrap());
        let first = p
            .admit_at("u", at(1))
            .unwrap_err()
            .retry_after_secs
            .unwrap();
        let second = p
            .admit_at("u", at(1))
            .unwrap_err()
            .retry_after_secs
            .unwrap();
        let third = p
            .admit_at("u", at(1))
            .unwrap_err()
            .retry_after_secs
            .unwrap();
        assert_eq!(first, 9);
        assert!(second > first && third > second, "{first} {second} {third}");
        // Capped at two windows.
        for _ in 0..30 {
            let _ = p.admit_at("u", at(1));
        }
        assert_eq!(
            p.admit_at("u", at(1)).unwrap_err().retry_after_secs,
            Some(20)
        );
        // Waiting the full Retry-After (without sending) lets requests through.
        assert!(p.admit_at("u", at(21)).is_ok());
    }

    #[test]
    fn concurrency_fails_at_once_and_frees_when_a_request_ends() {
        let p = protection(100, 10, 2);
        let a = p.admit_at("u", at(0)).unwrap();
        let _b = p.admit_at("u", at(0)).unwrap();
        let err = p.admit_at("u", at(0)).unwrap_err();
        assert_eq!(err.code, "0x80072326");
        assert_eq!(
            err.message,
            "Number of concurrent requests exceeded the limit of 2."
        );
        assert_eq!(err.retry_after_secs, Some(1));
        drop(a);
        assert!(p.admit_at("u", at(0)).is_ok());
        assert_eq!(p.throttled().get(&Measure::Concurrency), Some(&1));
    }

    #[test]
    fn execution_time_over_the_window_is_refused() {
        let mut limits = ServiceProtectionLimits::small(100, Duration::from_secs(10), 10);
        limits.execution_time_per_window = Duration::from_millis(5);
        let p = Protection::new(limits, Clock::default());
        {
            let state = &mut p.state();
            let user = state.users.entry("u".to_owned()).or_default();
            user.executions.push_back((at(0), Duration::from_millis(6)));
        }
        let err = p.admit_at("u", at(1)).unwrap_err();
        assert_eq!(err.code, "0x80072321");
        assert!(err.message.starts_with(
            "Combined execution time of incoming requests exceeded limit of 5 milliseconds over time window of 10 seconds."
        ));
        assert_eq!(err.retry_after_secs, Some(9));
    }

    #[test]
    fn disabled_limits_admit_everything() {
        let mut limits = ServiceProtectionLimits::small(1, Duration::from_secs(10), 1);
        limits.enabled = false;
        let p = Protection::new(limits, Clock::default());
        let _a = p.admit_at("u", at(0)).unwrap();
        assert!(p.admit_at("u", at(0)).is_ok());
    }
}
