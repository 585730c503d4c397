//! The emulator's notion of "now".
//!
//! Everything time-dependent in the org (SystemModstamp, session expiry, the
//! rolling API-usage window, getUpdated/getDeleted windows, query-cursor expiry)
//! reads this clock, so tests can run on a manual clock and move it forward
//! through the control API instead of sleeping.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::sync::{Arc, Mutex, PoisonError};

/// Where the emulator reads the time from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock (what `refsync emulate` and the demo use).
    #[default]
    System,
    /// A clock that only moves when told to (tests).
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self::Manual(Arc::new(Mutex::new(truncate_ms(start))))
    }

    /// The current time, truncated to milliseconds as Salesforce stores it.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => truncate_ms(Utc::now()),
            Self::Manual(at) => *at.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Moves a manual clock forward; false (and nothing happens) on the system clock.
    pub fn advance(&self, by: TimeDelta) -> bool {
        match self {
            Self::System => false,
            Self::Manual(at) => {
                let mut at = at.lock().unwrap_or_else(PoisonError::into_inner);
                *at = truncate_ms(*at + by);
                true
            }
        }
    }

    /// Sets a manual clock; false (and nothing happens) on the system clock.
    pub fn set(&self, to: DateTime<Utc>) -> bool {
        match self {
            Self::System => false,
            Self::Manual(at) => {
                *at.lock().unwrap_or_else(PoisonError::into_inner) = truncate_ms(to);
                true
            }
        }
    }
}

/// Drops sub-millisecond precision (Salesforce stores milliseconds).
pub(crate) fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2025-01-01T00:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::manual(start);
        assert_eq!(clock.now().timestamp_subsec_micros(), 123_000);
        assert!(clock.advance(TimeDelta::seconds(5)));
        assert_eq!(
            clock.now(),
            Clock::manual(start + TimeDelta::seconds(5)).now()
        );
        assert!(!Clock::System.advance(TimeDelta::seconds(1)));
    }
}
