//! How a group-commit batch becomes a few multi-row statements, shared by both
//! backends. Per-event statements would cost two round trips to the database per
//! event; a batch instead costs one `INSERT` of all its events and one upsert of
//! the queue rows they touch (each in chunks that stay under the bind limits).

use crate::event::{EventId, NewEvent, RecordOutcome};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Events per multi-row `INSERT` (10 binds each: well under SQLite's 32,766 and
/// PostgreSQL's 65,535).
pub(crate) const EVENT_ROWS_PER_STATEMENT: usize = 500;
/// Queue rows per multi-row upsert (5 binds each).
pub(crate) const KEY_ROWS_PER_STATEMENT: usize = 1000;

/// One queue row a batch touches: every webhook trigger for the key, coalesced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyTouch {
    /// The sync key's text form.
    pub(crate) key: String,
    /// The earliest `received_at` among the triggers (the row's due time).
    pub(crate) due: DateTime<Utc>,
    /// The latest `received_at` (the row's last-enqueued time).
    pub(crate) last: DateTime<Utc>,
    /// How many triggers: the generation goes up by this much, as if enqueued one by one.
    pub(crate) bumps: i64,
}

/// The events of a batch that are the first with their dedupe key; a later one in the
/// same batch is a duplicate of it and is never sent to the database.
pub(crate) fn first_occurrences(events: &[NewEvent]) -> Vec<bool> {
    let mut seen = HashSet::with_capacity(events.len());
    events
        .iter()
        .map(|e| seen.insert(e.dedupe_key.as_str()))
        .collect()
}

/// The queue rows touched by the events that were actually inserted, one per key,
/// sorted by key so concurrent writers lock rows in the same order.
pub(crate) fn key_touches(
    events: &[NewEvent],
    first: &[bool],
    inserted: &HashMap<String, i64>,
) -> Vec<KeyTouch> {
    let mut by_key: BTreeMap<String, KeyTouch> = BTreeMap::new();
    for (e, _) in events
        .iter()
        .zip(first)
        .filter(|(e, first)| **first && inserted.contains_key(e.dedupe_key.as_str()))
    {
        for key in &e.enqueue {
            let key = key.to_string();
            by_key
                .entry(key.clone())
                .and_modify(|t| {
                    t.due = t.due.min(e.received_at);
                    t.last = t.last.max(e.received_at);
                    t.bumps += 1;
                })
                .or_insert(KeyTouch {
                    key,
                    due: e.received_at,
                    last: e.received_at,
                    bumps: 1,
                });
        }
    }
    by_key.into_values().collect()
}

/// Each event's answer, in submission order.
pub(crate) fn outcomes(
    events: &[NewEvent],
    first: &[bool],
    inserted: &HashMap<String, i64>,
) -> Vec<RecordOutcome> {
    events
        .iter()
        .zip(first)
        .map(|(e, first)| match inserted.get(e.dedupe_key.as_str()) {
            Some(id) if *first => RecordOutcome::Recorded { id: EventId(*id) },
            _ => RecordOutcome::Duplicate,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DedupeKey, EventOutcome, SignatureHeaders};
    use chrono::TimeZone;
    use refsync_core::{EventName, ReferralId, SyncKey};

    fn ev(dedupe: &str, referral: &str, secs: i64) -> NewEvent {
        let t = Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap();
        let id = ReferralId::parse(referral).unwrap();
        NewEvent {
            dedupe_key: DedupeKey::from_stored(dedupe),
            event_name: EventName::ReferralUpdated,
            referral_id: Some(id.clone()),
            resource_change_utc: t,
            received_at: t,
            body: vec![],
            signature: SignatureHeaders::default(),
            outcome: EventOutcome::Enqueued,
            enqueue: vec![SyncKey::Referral(id)],
        }
    }

    #[test]
    fn a_batch_coalesces_keys_and_answers_in_order() {
        let events = vec![
            ev("a", "r-2", 5),
            ev("b", "r-1", 9),
            ev("a", "r-9", 1), // same dedupe key as the first: a duplicate within the batch
            ev("c", "r-1", 3),
            ev("old", "r-3", 0), // already stored before this batch
        ];
        let first = first_occurrences(&events);
        assert_eq!(first, [true, true, false, true, true]);
        let inserted: HashMap<String, i64> =
            [("a".into(), 10), ("b".into(), 11), ("c".into(), 12)].into();
        let touches = key_touches(&events, &first, &inserted);
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(
            touches,
            vec![
                KeyTouch {
                    key: "referral:r-1".into(),
                    due: t + chrono::Duration::seconds(3),
                    last: t + chrono::Duration::seconds(9),
                    bumps: 2
                },
                KeyTouch {
                    key: "referral:r-2".into(),
                    due: t + chrono::Duration::seconds(5),
                    last: t + chrono::Duration::seconds(5),
                    bumps: 1
                },
            ]
        );
        assert_eq!(
            outcomes(&events, &first, &inserted),
            vec![
                RecordOutcome::Recorded { id: EventId(10) },
                RecordOutcome::Recorded { id: EventId(11) },
                RecordOutcome::Duplicate,
                RecordOutcome::Recorded { id: EventId(12) },
                RecordOutcome::Duplicate,
            ]
        );
    }
}
