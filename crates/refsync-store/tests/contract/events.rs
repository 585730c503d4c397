//! Received events: storage, deduplication, the same-transaction enqueue, group commit.

use crate::support::*;
use refsync_core::EventName;
use refsync_store::{
    DedupeKey, EventFilter, EventOutcome, NewEvent, QueueState, RecordOutcome, SignatureHeaders,
    Trigger,
};
use std::collections::HashSet;

contract_tests!(
    an_event_is_stored_verbatim_with_its_keys_enqueued,
    a_duplicate_stores_and_enqueues_nothing,
    events_are_listed_newest_first_and_filtered,
    a_concurrent_burst_is_answered_and_stored_once,
);

async fn an_event_is_stored_verbatim_with_its_keys_enqueued(b: &Backend) {
    let ev = referral_event("r-1", at(0));
    let outcome = b.store.record_event(ev.clone()).await.unwrap();
    let RecordOutcome::Recorded { id } = outcome else {
        panic!("expected a new record, got {outcome:?}");
    };

    let stored = b
        .store
        .list_events(&EventFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let s = &stored[0];
    assert_eq!(s.id, id);
    assert_eq!(s.dedupe_key, ev.dedupe_key);
    assert_eq!(s.event_name, ev.event_name);
    assert_eq!(s.referral_id, ev.referral_id);
    assert_eq!(s.resource_change_utc, ev.resource_change_utc);
    assert_eq!(s.received_at, ev.received_at);
    assert_eq!(s.body, ev.body, "raw body bytes are kept exactly");
    assert_eq!(s.signature, ev.signature);
    assert_eq!(s.outcome, EventOutcome::Enqueued);

    let entry = b.store.queue_entry(&rkey("r-1")).await.unwrap().unwrap();
    assert_eq!(entry.state, QueueState::Pending);
    assert_eq!(entry.due_at, ev.received_at);
    assert_eq!(entry.last_trigger, Trigger::Webhook);

    // A non-referral event: acknowledged, nothing enqueued, headers may be absent.
    let test_event = NewEvent {
        dedupe_key: DedupeKey::for_event(&EventName::TestCreated, None, at(5)),
        event_name: EventName::TestCreated,
        referral_id: None,
        resource_change_utc: at(5),
        received_at: at(5),
        body: b"{}".to_vec(),
        signature: SignatureHeaders::default(),
        outcome: EventOutcome::Acknowledged,
        enqueue: vec![],
    };
    assert!(matches!(
        b.store.record_event(test_event).await.unwrap(),
        RecordOutcome::Recorded { .. }
    ));
    let counts = b.store.count_events_by_outcome().await.unwrap();
    assert_eq!(counts.get(&EventOutcome::Enqueued), Some(&1));
    assert_eq!(counts.get(&EventOutcome::Acknowledged), Some(&1));
}

async fn a_duplicate_stores_and_enqueues_nothing(b: &Backend) {
    let first = referral_event("r-1", at(0));
    b.store.record_event(first.clone()).await.unwrap();

    // Same dedupe key, different body and keys: still a duplicate, and nothing of it lands.
    let mut again = first.clone();
    again.body = b"a retry".to_vec();
    again.enqueue = vec![rkey("r-other")];
    assert_eq!(
        b.store.record_event(again).await.unwrap(),
        RecordOutcome::Duplicate
    );
    let stored = b
        .store
        .list_events(&EventFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, first.body);
    assert!(
        b.store
            .queue_entry(&rkey("r-other"))
            .await
            .unwrap()
            .is_none()
    );
    // The first event's key was enqueued once (generation 1), not bumped by the duplicate.
    let entry = b.store.queue_entry(&rkey("r-1")).await.unwrap().unwrap();
    assert_eq!(entry.generation, 1);

    // A later change of the same referral is a new event and coalesces into the same row.
    b.store
        .record_event(referral_event("r-1", at(10)))
        .await
        .unwrap();
    let entry = b.store.queue_entry(&rkey("r-1")).await.unwrap().unwrap();
    assert_eq!(entry.generation, 2);
    assert_eq!(entry.due_at, at(1), "due stays at the earliest");
}

async fn events_are_listed_newest_first_and_filtered(b: &Backend) {
    for (i, r) in ["r-1", "r-2", "r-1", "r-3"].iter().enumerate() {
        b.store
            .record_event(referral_event(r, at(i as i64 * 10)))
            .await
            .unwrap();
    }
    let all = b
        .store
        .list_events(&EventFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    let r1 = EventFilter {
        referral_id: Some(referral("r-1")),
        ..Default::default()
    };
    let got = b.store.list_events(&r1, 10).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|e| e.referral_id == Some(referral("r-1"))));

    let page = b
        .store
        .list_events(&EventFilter::default(), 2)
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    let older = EventFilter {
        before: Some(page[1].id),
        ..Default::default()
    };
    let rest = b.store.list_events(&older, 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|e| e.id < page[1].id));

    let none = EventFilter {
        outcome: Some(EventOutcome::Acknowledged),
        event_name: Some(EventName::ReferralUpdated),
        ..Default::default()
    };
    assert!(b.store.list_events(&none, 10).await.unwrap().is_empty());
    let named = EventFilter {
        event_name: Some(EventName::ReferralUpdated),
        outcome: Some(EventOutcome::Enqueued),
        ..Default::default()
    };
    assert_eq!(b.store.list_events(&named, 10).await.unwrap().len(), 4);
}

async fn a_concurrent_burst_is_answered_and_stored_once(b: &Backend) {
    // 64 concurrent callers; every event is submitted twice (by different callers), as
    // Partner Center's retries would, and 50 referrals share the queue rows.
    const CALLERS: usize = 64;
    const PER_CALLER: usize = 25;
    let mut tasks = Vec::new();
    for c in 0..CALLERS {
        let store = b.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..PER_CALLER {
                // Callers c and c^1 submit the same events.
                let n = (c / 2) * PER_CALLER + i;
                let ev = referral_event(&format!("r-{}", n % 50), at(n as i64));
                outcomes.push((n, store.record_event(ev).await.unwrap()));
            }
            outcomes
        }));
    }
    let mut recorded = HashSet::new();
    let mut duplicates = 0;
    for t in tasks {
        for (n, outcome) in t.await.unwrap() {
            match outcome {
                RecordOutcome::Recorded { .. } => assert!(recorded.insert(n), "{n} recorded twice"),
                RecordOutcome::Duplicate => duplicates += 1,
            }
        }
    }
    let unique = CALLERS / 2 * PER_CALLER;
    assert_eq!(recorded.len(), unique);
    assert_eq!(duplicates, unique);
    let stored = b
        .store
        .list_events(&EventFilter::default(), 10_000)
        .await
        .unwrap();
    assert_eq!(stored.len(), unique);
    let keys: HashSet<_> = stored.iter().map(|e| e.dedupe_key.clone()).collect();
    assert_eq!(keys.len(), unique);
    // Every recorded event bumped its referral's row once: generations add up.
    let mut generations = 0;
    for r in 0..50 {
        let e = b
            .store
            .queue_entry(&rkey(&format!("r-{r}")))
            .await
            .unwrap()
            .unwrap();
        generations += e.generation;
    }
    assert_eq!(generations as usize, unique);
}
