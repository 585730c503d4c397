//! Referral status and substatus, and the rules Partner Center enforces on them
//! (reference §1.5): which substatus goes with which status, and which status may
//! follow which. Both the emulator (to refuse) and the merge (to never send an
//! illegal change) use these functions.

use crate::open_enum;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

open_enum! {
    /// `status`.
    pub enum ReferralStatus {
        /// Not set.
        None = "None",
        /// Not yet accepted.
        New = "New",
        /// Accepted and being worked.
        Active = "Active",
        /// Finished: won, lost, declined or expired.
        Closed = "Closed",
    }
}

open_enum! {
    /// `substatus`.
    pub enum ReferralSubstatus {
        /// Not set.
        None = "None",
        /// New, waiting for a response.
        Pending = "Pending",
        /// New, seen by the partner.
        Received = "Received",
        /// Active.
        Accepted = "Accepted",
        /// Closed as a win.
        Won = "Won",
        /// Closed as a loss.
        Lost = "Lost",
        /// Closed without being worked.
        Declined = "Declined",
        /// Closed because nobody answered within the allotted time (14 days).
        Expired = "Expired",
    }
}

/// A status with its substatus: the unit every rule is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusPair {
    /// Status.
    pub status: ReferralStatus,
    /// Substatus.
    pub substatus: ReferralSubstatus,
}

impl StatusPair {
    /// Pairs a status with a substatus (not checked; see [`check_combination`]).
    pub fn new(status: ReferralStatus, substatus: ReferralSubstatus) -> Self {
        Self { status, substatus }
    }

    /// New/Pending: how an incoming referral starts.
    pub fn new_pending() -> Self {
        Self::new(ReferralStatus::New, ReferralSubstatus::Pending)
    }

    /// Active/Accepted: the referral was accepted.
    pub fn accepted() -> Self {
        Self::new(ReferralStatus::Active, ReferralSubstatus::Accepted)
    }

    /// Closed with the given substatus.
    pub fn closed(substatus: ReferralSubstatus) -> Self {
        Self::new(ReferralStatus::Closed, substatus)
    }

    /// Parses `Status/Substatus` as written by `Display`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('/')?;
        Some(Self::new(
            ReferralStatus::parse(a.trim()),
            ReferralSubstatus::parse(b.trim()),
        ))
    }
}

impl fmt::Display for StatusPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.status, self.substatus)
    }
}

/// Why a status or a status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatusError {
    /// The substatus does not belong to the status.
    #[error("substatus {substatus} is not allowed with status {status} (allowed: {allowed})")]
    BadCombination {
        /// The status.
        status: ReferralStatus,
        /// The offending substatus.
        substatus: ReferralSubstatus,
        /// The substatuses the status allows, comma separated.
        allowed: String,
    },
    /// The status cannot follow the current one.
    #[error("status cannot change from {from} to {to} (allowed from {from}: {allowed})")]
    BadTransition {
        /// Current status.
        from: ReferralStatus,
        /// Requested status.
        to: ReferralStatus,
        /// The statuses allowed next, comma separated.
        allowed: String,
    },
    /// A value refsync does not know; refused rather than guessed at.
    #[error("unknown status value {0:?}")]
    Unknown(String),
}

/// The substatuses a status allows.
pub fn allowed_substatuses(status: &ReferralStatus) -> &'static [ReferralSubstatus] {
    use ReferralSubstatus as S;
    match status {
        ReferralStatus::New => &[S::Pending, S::Received],
        ReferralStatus::Active => &[S::Accepted],
        ReferralStatus::Closed => &[S::Won, S::Lost, S::Declined, S::Expired],
        ReferralStatus::None => &[S::None],
        ReferralStatus::Other(_) => &[],
    }
}

/// The statuses that may follow a status. `None` (unset) may become anything, which is
/// what creating a referral does.
pub fn allowed_next_statuses(status: &ReferralStatus) -> &'static [ReferralStatus] {
    use ReferralStatus as St;
    match status {
        St::None => &[St::New, St::Active, St::Closed],
        St::New => &[St::New, St::Active, St::Closed],
        St::Active => &[St::Active, St::Closed],
        St::Closed => &[St::Closed],
        St::Other(_) => &[],
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that a substatus belongs to its status.
pub fn check_combination(pair: &StatusPair) -> Result<(), StatusError> {
    if let ReferralStatus::Other(s) = &pair.status {
        return Err(StatusError::Unknown(s.clone()));
    }
    if let ReferralSubstatus::Other(s) = &pair.substatus {
        return Err(StatusError::Unknown(s.clone()));
    }
    let allowed = allowed_substatuses(&pair.status);
    if allowed.contains(&pair.substatus) {
        Ok(())
    } else {
        Err(StatusError::BadCombination {
            status: pair.status.clone(),
            substatus: pair.substatus.clone(),
            allowed: join(allowed),
        })
    }
}

/// Checks a change from one status pair to another: the target must be a valid
/// combination and its status must be allowed to follow the current one.
pub fn check_transition(from: &StatusPair, to: &StatusPair) -> Result<(), StatusError> {
    check_combination(to)?;
    let allowed = allowed_next_statuses(&from.status);
    if allowed.contains(&to.status) {
        Ok(())
    } else {
        Err(StatusError::BadTransition {
            from: from.status.clone(),
            to: to.status.clone(),
            allowed: join(allowed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReferralStatus as St;
    use ReferralSubstatus as Su;

    fn p(s: St, ss: Su) -> StatusPair {
        StatusPair::new(s, ss)
    }

    #[test]
    fn documented_combinations_and_only_those() {
        let all_sub = ReferralSubstatus::KNOWN;
        let ok = [
            (St::New, Su::Pending),
            (St::New, Su::Received),
            (St::Active, Su::Accepted),
            (St::Closed, Su::Won),
            (St::Closed, Su::Lost),
            (St::Closed, Su::Declined),
            (St::Closed, Su::Expired),
            (St::None, Su::None),
        ];
        for s in ReferralStatus::KNOWN {
            for ss in all_sub {
                let pair = p(s.clone(), ss.clone());
                let expected = ok.contains(&(s.clone(), ss.clone()));
                assert_eq!(check_combination(&pair).is_ok(), expected, "{pair}");
            }
        }
    }

    #[test]
    fn documented_transitions() {
        let new = StatusPair::new_pending();
        let active = StatusPair::accepted();
        let won = StatusPair::closed(Su::Won);
        assert!(check_transition(&new, &p(St::New, Su::Received)).is_ok());
        assert!(check_transition(&new, &active).is_ok());
        assert!(check_transition(&new, &StatusPair::closed(Su::Declined)).is_ok());
        assert!(check_transition(&active, &won).is_ok());
        assert!(check_transition(&won, &StatusPair::closed(Su::Lost)).is_ok());
        let back = check_transition(&active, &new).unwrap_err();
        assert!(matches!(back, StatusError::BadTransition { .. }));
        assert!(back.to_string().contains("Active, Closed"));
        assert!(check_transition(&won, &active).is_err());
        assert!(check_transition(&won, &new).is_err());
        // The target must itself be a valid combination.
        assert!(matches!(
            check_transition(&new, &p(St::Active, Su::Won)),
            Err(StatusError::BadCombination { .. })
        ));
    }

    #[test]
    fn unknown_values_are_refused_not_guessed() {
        let odd = p(St::Other("Paused".into()), Su::Pending);
        assert_eq!(
            check_combination(&odd),
            Err(StatusError::Unknown("Paused".into()))
        );
    }

    #[test]
    fn pairs_print_and_parse() {
        let pair = StatusPair::closed(Su::Won);
        assert_eq!(pair.to_string(), "Closed/Won");
        assert_eq!(StatusPair::parse("Closed/Won"), Some(pair));
        assert_eq!(StatusPair::parse("Closed"), None);
    }
}
