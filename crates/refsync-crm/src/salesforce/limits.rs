//! The org's API allocation as the connector sees it (crm.md §2.7).
//!
//! Every REST response carries `Sforce-Limit-Info: api-usage=N/MAX`; the latest value
//! is kept for [`CrmConnector::usage`](crate::CrmConnector::usage) and published as
//! gauges. The allocation is a rolling 24 hours shared with the org's users and other
//! integrations, and Salesforce answers past it with 403 `REQUEST_LIMIT_EXCEEDED` and
//! no `Retry-After` — so instead of meeting that wall, the connector paces itself down
//! to a floor once usage passes a threshold (a backfill then takes longer instead of
//! locking everyone out), and back up when the window has room again.

use crate::connector::ApiUsage;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Gauge: API calls used in the current allocation window, by `crm`.
pub const USAGE_GAUGE: &str = "refsync_crm_api_usage";
/// Gauge: the allocation, by `crm`.
pub const ALLOCATION_GAUGE: &str = "refsync_crm_api_allocation";
/// Gauge: 1 while the connector has slowed down to protect the allocation, by `crm`.
pub const SLOWED_GAUGE: &str = "refsync_crm_api_slowed";

/// Usage must fall this far (as a share of the allocation) below the threshold before
/// full speed resumes, so a usage hovering at the threshold does not flap.
const RECOVERY_MARGIN: f64 = 0.05;

/// Reads `api-usage=N/MAX` from a `Sforce-Limit-Info` value, which may also carry
/// `api-bursts=…` or `per-app-api-usage=…(appName=…)` parts (crm.md §2.7).
pub(crate) fn parse_limit_info(value: &str) -> Option<ApiUsage> {
    value.split([';', ',']).find_map(|part| {
        let (key, rest) = part.trim().split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("api-usage") {
            return None;
        }
        let (used, max) = rest.trim().split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            max: max.trim().parse().ok()?,
        })
    })
}

/// What an observation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageChange {
    /// Nothing.
    None,
    /// Usage crossed the threshold: slow down.
    SlowedDown,
    /// Usage fell well below the threshold again: full speed.
    Recovered,
}

/// The latest usage and whether the connector is slowed down.
#[derive(Debug)]
pub(crate) struct UsageTracker {
    latest: Mutex<Option<ApiUsage>>,
    threshold: f64,
    slowed: AtomicBool,
}

impl UsageTracker {
    /// A tracker slowing down at `threshold` (a share of the allocation, 0–1].
    pub(crate) fn new(threshold: f64) -> Self {
        Self {
            latest: Mutex::new(None),
            threshold,
            slowed: AtomicBool::new(false),
        }
    }

    /// The latest usage seen.
    pub(crate) fn latest(&self) -> Option<ApiUsage> {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True while usage is past the threshold.
    pub(crate) fn is_slowed(&self) -> bool {
        self.slowed.load(Ordering::Relaxed)
    }

    /// Records a response's usage; the caller logs the change it reports (once per crossing).
    pub(crate) fn observe(&self, usage: ApiUsage) -> UsageChange {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(usage);
        let share = if usage.max == 0 {
            1.0
        } else {
            usage.used as f64 / usage.max as f64
        };
        metrics::gauge!(USAGE_GAUGE, "crm" => "salesforce").set(usage.used as f64);
        metrics::gauge!(ALLOCATION_GAUGE, "crm" => "salesforce").set(usage.max as f64);
        let change = if share >= self.threshold {
            if self.slowed.swap(true, Ordering::Relaxed) {
                UsageChange::None
            } else {
                UsageChange::SlowedDown
            }
        } else if share < self.threshold - RECOVERY_MARGIN
            && self.slowed.swap(false, Ordering::Relaxed)
        {
            UsageChange::Recovered
        } else {
            UsageChange::None
        };
        metrics::gauge!(SLOWED_GAUGE, "crm" => "salesforce").set(if self.is_slowed() {
            1.0
        } else {
            0.0
        });
        change
    }
}

/// Spaces requests evenly: each caller reserves the next free slot and waits for it.
/// Two rates, the normal one and the slowed-down floor, picked per request.
#[derive(Debug)]
pub(crate) struct Pacer {
    normal: Duration,
    slowed: Duration,
    /// Requests that may go at once before the spacing applies (at the normal rate).
    burst: u32,
    /// The theoretical time of the next request if every one were spaced (GCRA).
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `normal` requests per second after a burst of `burst`, and
    /// `slowed` (no burst) once slowed down (rates > 0).
    pub(crate) fn new(normal: f64, slowed: f64, burst: u32) -> Self {
        let interval = |rate: f64| Duration::from_secs_f64(1.0 / rate.max(f64::MIN_POSITIVE));
        Self {
            normal: interval(normal),
            slowed: interval(slowed),
            burst: burst.max(1),
            next: Mutex::new(None),
        }
    }

    /// The spacing in force.
    pub(crate) fn interval(&self, slowed: bool) -> Duration {
        if slowed { self.slowed } else { self.normal }
    }

    /// Reserves the next slot: now while the burst lasts, else one interval after
    /// the last reserved slot.
    pub(crate) fn reserve(&self, slowed: bool, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let interval = self.interval(slowed);
        let theoretical = next.map_or(now, |n| n.max(now));
        let tolerance = if slowed {
            Duration::ZERO
        } else {
            interval * (self.burst - 1)
        };
        let slot = theoretical
            .checked_sub(tolerance)
            .map_or(now, |earliest| earliest.max(now));
        *next = Some(theoretical + interval);
        slot
    }

    /// Waits for this request's turn.
    pub(crate) async fn wait_turn(&self, slowed: bool) {
        let slot = self.reserve(slowed, Instant::now());
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_any_shape_of_the_header() {
        assert_eq!(
            parse_limit_info("api-usage=10018/100000"),
            Some(ApiUsage {
                used: 10018,
                max: 100000
            })
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=sample); api-usage=25/5000"),
            Some(ApiUsage {
                used: 25,
                max: 5000
            })
        );
        assert_eq!(
            parse_limit_info("api-usage=3/10; api-bursts=1/750"),
            Some(ApiUsage { used: 3, max: 10 })
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x)"),
            None
        );
        assert_eq!(parse_limit_info("api-usage=lots"), None);
    }

    #[test]
    fn crossing_the_threshold_slows_down_once_and_recovery_needs_a_margin() {
        let t = UsageTracker::new(0.8);
        let at = |used| ApiUsage { used, max: 100 };
        assert_eq!(t.observe(at(79)), UsageChange::None);
        assert!(!t.is_slowed());
        assert_eq!(t.observe(at(80)), UsageChange::SlowedDown);
        assert_eq!(t.observe(at(95)), UsageChange::None, "warned once");
        assert!(t.is_slowed());
        assert_eq!(t.observe(at(78)), UsageChange::None, "inside the margin");
        assert!(t.is_slowed());
        assert_eq!(t.observe(at(70)), UsageChange::Recovered);
        assert!(!t.is_slowed());
        assert_eq!(t.latest(), Some(at(70)));
        assert_eq!(
            t.observe(ApiUsage { used: 0, max: 0 }),
            UsageChange::SlowedDown
        );
    }

    #[test]
    fn slots_are_spaced_by_the_rate_in_force() {
        let p = Pacer::new(10.0, 0.5, 1);
        let t0 = Instant::now();
        assert_eq!(p.reserve(false, t0), t0);
        assert_eq!(p.reserve(false, t0), t0 + Duration::from_millis(100));
        // Slowed down: the next slot still follows the last one, the one after is 2 s later.
        let s = p.reserve(true, t0);
        assert_eq!(s, t0 + Duration::from_millis(200));
        assert_eq!(p.reserve(true, t0), s + Duration::from_secs(2));
        // An idle pacer starts at once.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(p.reserve(false, later), later);
    }

    #[test]
    fn a_burst_goes_at_once_then_the_rate_applies() {
        let p = Pacer::new(10.0, 0.5, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(p.reserve(false, t0), t0);
        }
        assert_eq!(p.reserve(false, t0), t0 + Duration::from_millis(100));
        assert_eq!(p.reserve(false, t0), t0 + Duration::from_millis(200));
        // Idle long enough, the burst is available again.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(p.reserve(false, later), later);
        }
    }
}
