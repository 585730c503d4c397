//! The retry rules, as pure functions of what happened: which outcomes are worth
//! another attempt for which kind of request, and how long to wait first.
//!
//! Kept apart from the sending loop so the rules can be read (and tested) as a table.

use super::config::RetryPolicy;
use super::request::Idempotency;
use chrono::{DateTime, Utc};
use http::StatusCode;
use std::time::Duration;

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The server answered.
    Answered {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    /// No connection could be made: the request never left.
    ConnectFailed,
    /// The attempt ran out of time (the server may have acted on it).
    TimedOut,
    /// The connection broke after the request may have been sent.
    Broken,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Stop here and report the outcome.
    Stop,
    /// Drop the access token and try once more with a fresh one.
    Reauthenticate,
    /// Wait and try again.
    Retry {
        /// Why, for logs and the `reason` metric label.
        reason: &'static str,
        /// The server's requested wait, which replaces the backoff delay.
        retry_after: Option<Duration>,
    },
}

/// Statuses that say "try again later" rather than "this request is wrong".
pub(crate) fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// The rule table.
///
/// - A 401 on an authenticated call drops the token and tries once more, for any
///   request: authentication fails before the server acts, and a token expired or
///   revoked early (partner-center.md §1.2, crm.md §1.2) is refreshed transparently.
/// - A failed connect is retried for any request: nothing was sent.
/// - Timeouts, broken connections, 429 and 500/502/503/504 are retried only when a
///   repeat is harmless ([`Idempotency::may_repeat`]).
pub(crate) fn next_step(
    outcome: Outcome,
    idempotency: Idempotency,
    authenticated: bool,
    already_reauthenticated: bool,
) -> Next {
    match outcome {
        Outcome::Answered { status, .. }
            if status == StatusCode::UNAUTHORIZED && authenticated && !already_reauthenticated =>
        {
            Next::Reauthenticate
        }
        Outcome::ConnectFailed => Next::Retry {
            reason: "connect",
            retry_after: None,
        },
        _ if !idempotency.may_repeat() => Next::Stop,
        Outcome::TimedOut => Next::Retry {
            reason: "timeout",
            retry_after: None,
        },
        Outcome::Broken => Next::Retry {
            reason: "transport",
            retry_after: None,
        },
        Outcome::Answered {
            status,
            retry_after,
        } if is_transient_status(status) => Next::Retry {
            reason: if status == StatusCode::TOO_MANY_REQUESTS {
                "throttled"
            } else {
                "server_error"
            },
            retry_after: if matches!(status.as_u16(), 429 | 503) {
                retry_after
            } else {
                None
            },
        },
        Outcome::Answered { .. } => Next::Stop,
    }
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUp {
    /// Attempts or time used up.
    BudgetSpent,
    /// The server asked for a longer wait than the policy waits in-process.
    RetryAfterTooLong,
}

/// How long to wait before attempt `attempts_made + 1`, or why not to make it.
/// `backoff` is the next delay of the exponential schedule (None when spent).
pub(crate) fn plan_wait(
    policy: &RetryPolicy,
    attempts_made: u32,
    elapsed: Duration,
    retry_after: Option<Duration>,
    backoff: Option<Duration>,
) -> Result<Duration, GiveUp> {
    if attempts_made >= policy.max_attempts {
        return Err(GiveUp::BudgetSpent);
    }
    let delay = match retry_after {
        Some(wait) if wait > policy.max_retry_after => return Err(GiveUp::RetryAfterTooLong),
        Some(wait) => wait,
        None => backoff.ok_or(GiveUp::BudgetSpent)?,
    };
    if elapsed + delay > policy.max_elapsed {
        return Err(if retry_after.is_some() {
            GiveUp::RetryAfterTooLong
        } else {
            GiveUp::BudgetSpent
        });
    }
    Ok(delay)
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date
/// in the past means "now".
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Idempotency::*;

    fn answered(status: u16, retry_after: Option<u64>) -> Outcome {
        Outcome::Answered {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn retries(next: Next) -> bool {
        matches!(next, Next::Retry { .. })
    }

    #[test]
    fn idempotent_requests_retry_every_transient_failure() {
        for id in [Idempotent, IdempotentWithRequestId] {
            for outcome in [
                answered(429, Some(1)),
                answered(500, None),
                answered(502, None),
                answered(503, None),
                answered(504, None),
                Outcome::TimedOut,
                Outcome::Broken,
                Outcome::ConnectFailed,
            ] {
                assert!(retries(next_step(outcome, id, true, false)), "{outcome:?}");
            }
            for status in [200, 201, 204, 400, 403, 404, 409, 412, 501] {
                assert_eq!(
                    next_step(answered(status, None), id, true, false),
                    Next::Stop
                );
            }
        }
    }

    #[test]
    fn a_plain_post_is_retried_only_when_nothing_was_sent() {
        assert!(retries(next_step(
            Outcome::ConnectFailed,
            NotIdempotent,
            false,
            false
        )));
        for outcome in [
            answered(503, Some(1)),
            answered(429, Some(1)),
            answered(500, None),
            Outcome::TimedOut,
            Outcome::Broken,
        ] {
            assert_eq!(
                next_step(outcome, NotIdempotent, true, false),
                Next::Stop,
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn a_401_refreshes_the_token_once() {
        for id in [Idempotent, NotIdempotent, IdempotentWithRequestId] {
            assert_eq!(
                next_step(answered(401, None), id, true, false),
                Next::Reauthenticate
            );
            assert_eq!(next_step(answered(401, None), id, true, true), Next::Stop);
            assert_eq!(next_step(answered(401, None), id, false, false), Next::Stop);
        }
    }

    #[test]
    fn retry_after_is_kept_for_429_and_503_only() {
        let keep = |s| match next_step(answered(s, Some(7)), Idempotent, false, false) {
            Next::Retry { retry_after, .. } => retry_after,
            other => panic!("{other:?}"),
        };
        assert_eq!(keep(429), Some(Duration::from_secs(7)));
        assert_eq!(keep(503), Some(Duration::from_secs(7)));
        assert_eq!(keep(500), None);
    }

    #[test]
    fn waits_follow_retry_after_within_the_caps() {
        let policy = RetryPolicy {
            max_attempts: 4,
            max_elapsed: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let backoff = Some(Duration::from_millis(300));
        let s = Duration::from_secs;
        assert_eq!(
            plan_wait(&policy, 1, s(0), None, backoff),
            Ok(Duration::from_millis(300))
        );
        assert_eq!(plan_wait(&policy, 1, s(0), Some(s(5)), backoff), Ok(s(5)));
        assert_eq!(
            plan_wait(&policy, 1, s(0), Some(s(11)), backoff),
            Err(GiveUp::RetryAfterTooLong)
        );
        assert_eq!(
            plan_wait(&policy, 1, s(28), Some(s(5)), backoff),
            Err(GiveUp::RetryAfterTooLong)
        );
        assert_eq!(
            plan_wait(&policy, 4, s(0), None, backoff),
            Err(GiveUp::BudgetSpent)
        );
        assert_eq!(
            plan_wait(&policy, 1, s(0), None, None),
            Err(GiveUp::BudgetSpent)
        );
        assert_eq!(
            plan_wait(&policy, 1, s(30), None, backoff),
            Err(GiveUp::BudgetSpent)
        );
    }

    #[test]
    fn retry_after_as_seconds_or_http_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
