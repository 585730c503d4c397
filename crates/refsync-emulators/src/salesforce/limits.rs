//! The org's API request allocation over a rolling window (crm.md §2.7).
//!
//! Every authenticated REST call under `/services/data/vNN.0/` counts one
//! (a composite request counts one however many subrequests it carries); the
//! versions list and the control API do not count. Once the window holds
//! `max` calls, calls are refused with 403 `REQUEST_LIMIT_EXCEEDED` until old
//! calls age out. Calls are kept in one-minute buckets, so memory stays small
//! whatever the allocation.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::collections::VecDeque;

/// Usage of the API allocation.
#[derive(Debug, Clone)]
pub struct ApiUsage {
    buckets: VecDeque<(DateTime<Utc>, u64)>,
    window: TimeDelta,
    max: u64,
}

impl ApiUsage {
    /// An unused allocation of `max` calls per `window`.
    pub fn new(max: u64, window: TimeDelta) -> Self {
        Self {
            buckets: VecDeque::new(),
            window,
            max,
        }
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some((minute, _)) = self.buckets.front() {
            if *minute + self.window <= now {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    /// Calls counted in the window ending at `now`.
    pub fn used(&mut self, now: DateTime<Utc>) -> u64 {
        self.expire(now);
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    /// The allocation.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Changes the allocation (calls already counted stay counted).
    pub fn set_max(&mut self, max: u64) {
        self.max = max;
    }

    /// Forgets every counted call.
    pub fn reset(&mut self) {
        self.buckets.clear();
    }

    /// Counts one call if the allocation allows it; returns the usage after it,
    /// or `None` when the allocation is used up (the call is refused, not counted).
    pub fn try_count(&mut self, now: DateTime<Utc>) -> Option<u64> {
        let used = self.used(now);
        if used >= self.max {
            return None;
        }
        let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        match self.buckets.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => self.buckets.push_back((minute, 1)),
        }
        Some(used + 1)
    }

    /// The `Sforce-Limit-Info` header value.
    pub fn header(&self, used: u64) -> String {
        format!("api-usage={used}/{}", self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn refuses_after_the_allocation_and_recovers_as_calls_age_out() {
        let mut usage = ApiUsage::new(2, TimeDelta::hours(24));
        assert_eq!(usage.try_count(at("2025-01-01T00:00:10Z")), Some(1));
        assert_eq!(usage.try_count(at("2025-01-01T06:00:00Z")), Some(2));
        assert_eq!(usage.try_count(at("2025-01-01T07:00:00Z")), None);
        assert_eq!(
            usage.used(at("2025-01-01T07:00:00Z")),
            2,
            "refused calls are not counted"
        );
        assert_eq!(
            usage.try_count(at("2025-01-02T00:01:00Z")),
            Some(2),
            "the first call aged out"
        );
        assert_eq!(usage.header(2), "api-usage=2/2");
        usage.reset();
        assert_eq!(usage.used(at("2025-01-02T00:01:00Z")), 0);
    }
}
