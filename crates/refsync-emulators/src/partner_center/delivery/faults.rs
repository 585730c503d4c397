//! Faults injected into webhook delivery (not into HTTP requests, which the shared
//! [`crate::faults`] layer handles): duplicates, delays, holds and drops — the
//! misbehaviours refsync's intake must be indifferent to (DESIGN.md, "The one idea").
//!
//! Rules are consulted in order for each new delivery; the first that fires
//! decides. Like the HTTP faults, `count` limits a rule to the next N matching
//! deliveries and `fraction` draws from a seeded generator, so runs repeat.

use crate::faults::FaultError;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What happens to a delivery a rule fires for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryFaultKind {
    /// Delivered, then the same signed body sent once more.
    Duplicate,
    /// Held for `delay_ms` before the first attempt, so later events overtake it.
    Delay,
    /// Held until released (`release_held`): deterministic reordering.
    Hold,
    /// Never sent: parked straight in the offline queue, as a lost webhook.
    Drop,
}

impl DeliveryFaultKind {
    /// The name used in the control API and the delivery log.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryFaultKind::Duplicate => "duplicate",
            DeliveryFaultKind::Delay => "delay",
            DeliveryFaultKind::Hold => "hold",
            DeliveryFaultKind::Drop => "drop",
        }
    }
}

/// A delivery fault rule, as installed through the control API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFaultRule {
    /// What to do.
    pub kind: DeliveryFaultKind,
    /// Fire for the next N matching deliveries only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Fire for this fraction (0..=1) of matching deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// For `delay`: how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Only deliveries of this event (e.g. `referral-updated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// Seed for `fraction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl DeliveryFaultRule {
    /// A rule of `kind` for the next `count` deliveries.
    pub fn next(kind: DeliveryFaultKind, count: u64) -> Self {
        Self {
            kind,
            count: Some(count),
            fraction: None,
            delay_ms: None,
            event_name: None,
            seed: None,
        }
    }

    fn validate(&self) -> Result<(), FaultError> {
        if let Some(f) = self.fraction
            && !(0.0..=1.0).contains(&f)
        {
            return Err(FaultError::Invalid(format!(
                "fraction must be between 0 and 1, got {f}"
            )));
        }
        if self.kind == DeliveryFaultKind::Delay && self.delay_ms.is_none() {
            return Err(FaultError::Invalid(
                "a delay rule needs delay_ms".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A rule with its id and counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryFaultStatus {
    /// Rule id.
    pub id: u64,
    /// The rule.
    #[serde(flatten)]
    pub rule: DeliveryFaultRule,
    /// Deliveries that matched `event_name`.
    pub matched: u64,
    /// Deliveries the rule fired for.
    pub fired: u64,
    /// Fires left when `count` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

struct RuleState {
    status: DeliveryFaultStatus,
    rng: StdRng,
}

/// What a fired rule does to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FaultDecision {
    pub kind: DeliveryFaultKind,
    pub delay: Option<Duration>,
}

/// The installed rules.
pub(crate) struct DeliveryFaults {
    rules: Vec<RuleState>,
    next_id: u64,
    seed: u64,
}

impl Default for DeliveryFaults {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            next_id: 1,
            seed: 0xde11_7e57,
        }
    }
}

impl DeliveryFaults {
    pub(crate) fn install(
        &mut self,
        rule: DeliveryFaultRule,
    ) -> Result<DeliveryFaultStatus, FaultError> {
        rule.validate()?;
        let id = self.next_id;
        self.next_id += 1;
        let seed = rule.seed.unwrap_or(self.seed.wrapping_add(id));
        let status = DeliveryFaultStatus {
            id,
            remaining: rule.count,
            rule,
            matched: 0,
            fired: 0,
        };
        self.rules.push(RuleState {
            status: status.clone(),
            rng: StdRng::seed_from_u64(seed),
        });
        Ok(status)
    }

    pub(crate) fn list(&self) -> Vec<DeliveryFaultStatus> {
        self.rules.iter().map(|r| r.status.clone()).collect()
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.status.id != id);
        self.rules.len() != before
    }

    /// Consults the rules for a new delivery of `event_name`.
    pub(crate) fn decide(&mut self, event_name: &str) -> Option<FaultDecision> {
        for rule in &mut self.rules {
            let status = &mut rule.status;
            if status.remaining == Some(0) {
                continue;
            }
            if status
                .rule
                .event_name
                .as_deref()
                .is_some_and(|e| !e.eq_ignore_ascii_case(event_name))
            {
                continue;
            }
            status.matched += 1;
            if let Some(fraction) = status.rule.fraction
                && !rule.rng.random_bool(fraction)
            {
                continue;
            }
            status.fired += 1;
            status.remaining = status.remaining.map(|r| r.saturating_sub(1));
            return Some(FaultDecision {
                kind: status.rule.kind,
                delay: status.rule.delay_ms.map(Duration::from_millis),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_rules_fire_for_the_next_n_matching_deliveries() {
        let mut f = DeliveryFaults::default();
        f.install(DeliveryFaultRule {
            event_name: Some("referral-updated".into()),
            ..DeliveryFaultRule::next(DeliveryFaultKind::Drop, 2)
        })
        .unwrap();
        assert_eq!(f.decide("referral-created"), None);
        assert!(f.decide("referral-updated").is_some());
        assert!(f.decide("Referral-Updated").is_some());
        assert_eq!(f.decide("referral-updated"), None);
        assert_eq!(f.list()[0].fired, 2);
        assert_eq!(f.list()[0].remaining, Some(0));
    }

    #[test]
    fn fractions_repeat_for_a_seed() {
        let run = || {
            let mut f = DeliveryFaults::default();
            f.install(DeliveryFaultRule {
                fraction: Some(0.5),
                seed: Some(9),
                ..DeliveryFaultRule::next(DeliveryFaultKind::Duplicate, 1000)
            })
            .unwrap();
            (0..200)
                .map(|_| f.decide("x").is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|h| **h).count();
        assert!((60..140).contains(&hits), "{hits}");
    }

    #[test]
    fn invalid_rules_are_refused() {
        let mut f = DeliveryFaults::default();
        assert!(
            f.install(DeliveryFaultRule::next(DeliveryFaultKind::Delay, 1))
                .is_err()
        );
        assert!(
            f.install(DeliveryFaultRule {
                fraction: Some(2.0),
                ..DeliveryFaultRule::next(DeliveryFaultKind::Drop, 1)
            })
            .is_err()
        );
        let ok = f
            .install(DeliveryFaultRule::next(DeliveryFaultKind::Hold, 1))
            .unwrap();
        assert!(f.remove(ok.id));
        assert!(!f.remove(ok.id));
    }
}
