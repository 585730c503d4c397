//! The work queue: coalescing, claims and leases, completion, retries, dead letters.

use crate::support::*;
use chrono::Duration;
use refsync_store::{
    CompleteOutcome, DeadLetterOutcome, Enqueue, LeaseOwner, QueueState, StoreError, Trigger,
};
use std::collections::HashSet;

contract_tests!(
    triggers_for_one_key_coalesce_into_one_row,
    claims_take_due_unleased_keys_earliest_first,
    complete_removes_the_row_unless_retriggered_during_the_sync,
    an_expired_lease_makes_the_key_claimable_and_the_old_claim_stale,
    retries_dead_letters_and_revival,
    a_trigger_during_a_failing_sync_keeps_the_key_alive,
    release_and_extend_lease,
    enqueue_many_writes_thousands_at_once,
    concurrent_claimers_never_get_the_same_key,
);

fn owner(name: &str) -> LeaseOwner {
    LeaseOwner::new(name)
}

const LEASE: i64 = 60;

async fn triggers_for_one_key_coalesce_into_one_row(b: &Backend) {
    let k = rkey("r-1");
    let s = &b.store;
    s.enqueue(
        Enqueue {
            key: k.clone(),
            trigger: Trigger::Reconciler,
            not_before: at(30),
        },
        at(0),
    )
    .await
    .unwrap();
    s.enqueue(
        Enqueue {
            key: k.clone(),
            trigger: Trigger::Webhook,
            not_before: at(10),
        },
        at(5),
    )
    .await
    .unwrap();
    s.enqueue(
        Enqueue {
            key: k.clone(),
            trigger: Trigger::Reconciler,
            not_before: at(50),
        },
        at(6),
    )
    .await
    .unwrap();
    let e = s.queue_entry(&k).await.unwrap().unwrap();
    assert_eq!(e.state, QueueState::Pending);
    assert_eq!(e.due_at, at(10), "the earliest due wins");
    assert_eq!(e.generation, 3);
    assert_eq!(e.attempts, 0);
    assert_eq!(e.first_enqueued_at, at(0));
    assert_eq!(e.last_enqueued_at, at(6));
    assert_eq!(e.last_trigger, Trigger::Reconciler);
    assert_eq!(e.triggers, vec![Trigger::Reconciler, Trigger::Webhook]);
    let summary = s.status_summary(at(6)).await.unwrap();
    assert_eq!(summary.queue.scheduled, 1, "one row, due later");

    let claims = s
        .claim_due_keys(&owner("w"), at(10), Duration::seconds(LEASE), 10)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].generation, 3);
    assert_eq!(
        claims[0].triggers,
        vec![Trigger::Reconciler, Trigger::Webhook]
    );
    assert_eq!(claims[0].first_enqueued_at, at(0));
}

async fn claims_take_due_unleased_keys_earliest_first(b: &Backend) {
    let s = &b.store;
    let items = vec![
        Enqueue {
            key: rkey("late"),
            trigger: Trigger::Webhook,
            not_before: at(60),
        },
        Enqueue {
            key: rkey("second"),
            trigger: Trigger::Webhook,
            not_before: at(0),
        },
        Enqueue {
            key: lead_key("first"),
            trigger: Trigger::CrmPoller,
            not_before: at(-60),
        },
    ];
    s.enqueue_many(&items, at(-100)).await.unwrap();

    let w = owner("host-a/worker-1");
    let claims = s
        .claim_due_keys(&w, at(0), Duration::seconds(3600), 10)
        .await
        .unwrap();
    let keys: Vec<_> = claims.iter().map(|c| c.key.clone()).collect();
    assert_eq!(keys, vec![lead_key("first"), rkey("second")]);
    for c in &claims {
        assert_eq!(c.owner, w);
        assert_eq!(c.lease_until, at(3600));
        assert_eq!(c.attempts, 0);
    }
    let e = s.queue_entry(&rkey("second")).await.unwrap().unwrap();
    assert!(e.is_leased(at(1)));
    assert_eq!(e.leased_by, Some(w.clone()));

    // Leased keys are not handed out again; the late one is not due yet.
    assert!(
        s.claim_due_keys(&owner("b"), at(1), Duration::seconds(LEASE), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = s
        .claim_due_keys(&owner("b"), at(59), Duration::seconds(LEASE), 10)
        .await
        .unwrap();
    assert!(later.is_empty());
    let later = s
        .claim_due_keys(&owner("b"), at(60), Duration::seconds(LEASE), 1)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].key, rkey("late"));
}

async fn complete_removes_the_row_unless_retriggered_during_the_sync(b: &Backend) {
    let s = &b.store;
    let k = rkey("r-1");
    let lease = Duration::seconds(LEASE);
    s.enqueue(Enqueue::now(k.clone(), Trigger::Webhook, at(0)), at(0))
        .await
        .unwrap();
    let c = s
        .claim_due_keys(&owner("w"), at(0), lease, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        s.complete(&c, at(5)).await.unwrap(),
        CompleteOutcome::Removed
    );
    assert!(s.queue_entry(&k).await.unwrap().is_none());

    // A webhook arrives while the worker is mid-sync.
    s.enqueue(Enqueue::now(k.clone(), Trigger::Webhook, at(10)), at(10))
        .await
        .unwrap();
    let c = s
        .claim_due_keys(&owner("w"), at(10), lease, 1)
        .await
        .unwrap()
        .remove(0);
    s.enqueue(Enqueue::now(k.clone(), Trigger::Webhook, at(12)), at(12))
        .await
        .unwrap();
    assert!(
        s.claim_due_keys(&owner("x"), at(13), lease, 1)
            .await
            .unwrap()
            .is_empty(),
        "a re-triggered key stays with its worker until that worker is done"
    );
    assert_eq!(
        s.complete(&c, at(15)).await.unwrap(),
        CompleteOutcome::Retriggered
    );
    let e = s.queue_entry(&k).await.unwrap().unwrap();
    assert_eq!(e.state, QueueState::Pending);
    assert_eq!(e.due_at, at(15));
    assert!(!e.is_leased(at(15)));
    assert_eq!(e.leased_by, None);
    let again = s
        .claim_due_keys(&owner("x"), at(15), lease, 1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].generation > c.generation);
    assert_eq!(
        s.complete(&again[0], at(16)).await.unwrap(),
        CompleteOutcome::Removed
    );
}

async fn an_expired_lease_makes_the_key_claimable_and_the_old_claim_stale(b: &Backend) {
    let s = &b.store;
    let k = rkey("r-1");
    s.enqueue(Enqueue::now(k.clone(), Trigger::Webhook, at(0)), at(0))
        .await
        .unwrap();
    let dead_worker = s
        .claim_due_keys(&owner("a"), at(0), Duration::seconds(30), 1)
        .await
        .unwrap()
        .remove(0);
    assert!(
        s.claim_due_keys(&owner("b"), at(29), Duration::seconds(30), 1)
            .await
            .unwrap()
            .is_empty()
    );

    // Instance "a" was killed: at the lease's end the key is claimable, and the lost
    // attempt counts, so a key that crashes its worker every time still ends up dead.
    let mut taken = s
        .claim_due_keys(&owner("b"), at(30), Duration::seconds(30), 1)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let c = taken.remove(0);
    assert_eq!(c.key, k);
    assert_eq!(c.attempts, 1);
    assert!(
        c.last_error
            .as_deref()
            .unwrap_or("")
            .contains("lease held by a expired")
    );
    assert_ne!(c.lease_token, dead_worker.lease_token);

    // The old claim can no longer act on the key.
    assert!(matches!(
        s.complete(&dead_worker, at(31)).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        s.retry_later(&dead_worker, at(99), "x").await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        s.dead_letter(&dead_worker, "x", at(31)).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        s.release(&dead_worker, at(31)).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let mut stale = dead_worker.clone();
    assert!(matches!(
        s.extend_lease(&mut stale, at(999)).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let e = s.queue_entry(&k).await.unwrap().unwrap();
    assert_eq!(e.leased_by, Some(owner("b")));
    assert_eq!(
        s.complete(&c, at(32)).await.unwrap(),
        CompleteOutcome::Removed
    );
}

async fn retries_dead_letters_and_revival(b: &Backend) {
    let s = &b.store;
    let lease = Duration::seconds(LEASE);
    let k = rkey("r-1");
    s.enqueue(Enqueue::now(k.clone(), Trigger::Webhook, at(0)), at(0))
        .await
        .unwrap();
    let c = s
        .claim_due_keys(&owner("w"), at(0), lease, 1)
        .await
        .unwrap()
        .remove(0);
    s.retry_later(&c, at(300), "CRM answered 503")
        .await
        .unwrap();
    let e = s.queue_entry(&k).await.unwrap().unwrap();
    assert_eq!((e.attempts, e.due_at), (1, at(300)));
    assert_eq!(e.last_error.as_deref(), Some("CRM answered 503"));
    assert_eq!(e.leased_by, None);
    let summary = s.status_summary(at(1)).await.unwrap();
    assert_eq!(summary.queue.retrying, 1);
    assert!(
        s.claim_due_keys(&owner("w"), at(299), lease, 1)
            .await
            .unwrap()
            .is_empty()
    );

    let c = s
        .claim_due_keys(&owner("w"), at(300), lease, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c.attempts, 1);
    assert_eq!(c.last_error.as_deref(), Some("CRM answered 503"));
    s.dead_letter(&c, "gave up after 1 attempt", at(301))
        .await
        .unwrap();
    let dead = s.list_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].state, QueueState::Dead);
    assert_eq!(
        dead[0].dead_reason.as_deref(),
        Some("gave up after 1 attempt")
    );
    assert_eq!(dead[0].dead_at, Some(at(301)));
    assert!(
        s.claim_due_keys(&owner("w"), at(10_000), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // An operator revives it.
    assert!(s.retry_dead_letter(&k, at(400)).await.unwrap());
    assert!(
        !s.retry_dead_letter(&k, at(400)).await.unwrap(),
        "no longer dead"
    );
    assert!(
        !s.retry_dead_letter(&rkey("never-seen"), at(400))
            .await
            .unwrap()
    );
    let e = s.queue_entry(&k).await.unwrap().unwrap();
    assert_eq!(
        (e.state.clone(), e.attempts, e.due_at),
        (QueueState::Pending, 0, at(400))
    );
    assert_eq!(e.last_trigger, Trigger::Operator);

    // Dead again; this time a new trigger brings it back, attempts reset.
    let c = s
        .claim_due_keys(&owner("w"), at(400), lease, 1)
        .await
        .unwrap()
        .remove(0);
    s.dead_letter(&c, "again", at(401)).await.unwrap();
    s.enqueue(
        Enqueue::now(k.clone(), Trigger::Reconciler, at(500)),
        at(500),
    )
    .await
    .unwrap();
    let e = s.queue_entry(&k).await.unwrap().unwrap();
    assert_eq!(
        (e.state.clone(), e.attempts, e.due_at),
        (QueueState::Pending, 0, at(500))
    );
    assert_eq!(e.dead_reason, None);
    assert_eq!(e.triggers, vec![Trigger::Reconciler]);

    // retry_all revives every dead letter and says how many.
    for id in ["d-1", "d-2", "d-3"] {
        s.enqueue(Enqueue::now(rkey(id), Trigger::Webhook, at(600)), at(600))
            .await
            .unwrap();
    }
    let mut claims = s
        .claim_due_keys(&owner("w"), at(600), lease, 10)
        .await
        .unwrap();
    claims.retain(|c| c.key != k);
    assert_eq!(claims.len(), 3);
    for c in &claims {
        s.dead_letter(c, "poison", at(601)).await.unwrap();
    }
    assert_eq!(s.status_summary(at(602)).await.unwrap().dead_letters, 3);
    assert_eq!(s.retry_all_dead_letters(at(700)).await.unwrap(), 3);
    assert_eq!(s.retry_all_dead_letters(at(700)).await.unwrap(), 0);
    assert!(s.list_dead_letters(10).await.unwrap().is_empty());
}

async fn release_and_extend_lease(b: &Backend) {
    let s = &b.store;
    let k = rkey("r-1");
    s.enqueue(Enqueue::now(k.clone(), Trigger::Webhook, at(0)), at(0))
        .await
        .unwrap();
    let mut c = s
        .claim_due_keys(&owner("w"), at(0), Duration::seconds(30), 1)
        .await
        .unwrap()
        .remove(0);
    s.extend_lease(&mut c, at(120)).await.unwrap();
    assert_eq!(c.lease_until, at(120));
    assert!(
        s.claim_due_keys(&owner("x"), at(60), Duration::seconds(30), 1)
            .await
            .unwrap()
            .is_empty(),
        "the extended lease still holds"
    );
    // Shutdown: hand the key back unworked; attempts unchanged, due now.
    s.release(&c, at(61)).await.unwrap();
    let e = s.queue_entry(&k).await.unwrap().unwrap();
    assert_eq!(
        (e.attempts, e.due_at, e.leased_by.clone()),
        (0, at(61), None)
    );
    let c2 = s
        .claim_due_keys(&owner("x"), at(61), Duration::seconds(30), 1)
        .await
        .unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(c2[0].attempts, 0, "a released key is not a failed attempt");
}

async fn enqueue_many_writes_thousands_at_once(b: &Backend) {
    let s = &b.store;
    let items: Vec<_> = (0..3000)
        .map(|i| Enqueue::now(rkey(&format!("r-{i}")), Trigger::Reconciler, at(0)))
        .collect();
    s.enqueue_many(&items, at(0)).await.unwrap();
    // Enqueueing them all again coalesces: still 3000 rows.
    s.enqueue_many(&items, at(1)).await.unwrap();
    let summary = s.status_summary(at(1)).await.unwrap();
    assert_eq!(summary.queue.due, 3000);
    assert_eq!(summary.oldest_pending_age, Some(Duration::seconds(1)));
    let claims = s
        .claim_due_keys(&owner("w"), at(1), Duration::seconds(LEASE), 500)
        .await
        .unwrap();
    assert_eq!(claims.len(), 500);
    assert!(claims.iter().all(|c| c.generation == 2));
    let distinct: HashSet<_> = claims.iter().map(|c| c.key.clone()).collect();
    assert_eq!(distinct.len(), 500);
    let summary = s.status_summary(at(1)).await.unwrap();
    assert_eq!((summary.queue.due, summary.queue.leased), (2500, 500));
}

async fn concurrent_claimers_never_get_the_same_key(b: &Backend) {
    // Two instances (separate pools, as two processes would have), two workers each,
    // all claiming small batches at the same instant until the queue is empty.
    const KEYS: usize = 400;
    let items: Vec<_> = (0..KEYS)
        .map(|i| Enqueue::now(rkey(&format!("r-{i}")), Trigger::Reconciler, at(0)))
        .collect();
    b.store.enqueue_many(&items, at(0)).await.unwrap();
    let second = b.another_instance().await;
    let mut tasks = Vec::new();
    for (i, store) in [
        b.store.clone(),
        b.store.clone(),
        second.clone(),
        second.clone(),
    ]
    .into_iter()
    .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let me = owner(&format!("worker-{i}"));
            let mut mine = Vec::new();
            loop {
                let claims = store
                    .claim_due_keys(&me, at(1), Duration::seconds(600), 7)
                    .await
                    .unwrap();
                if claims.is_empty() {
                    break mine;
                }
                mine.extend(claims.into_iter().map(|c| c.key));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for key in t.await.unwrap() {
            assert!(seen.insert(key.clone()), "{key} was claimed twice");
        }
    }
    assert_eq!(seen.len(), KEYS);
    second.close().await;
}

async fn a_trigger_during_a_failing_sync_keeps_the_key_alive(b: &Backend) {
    let s = &b.store;
    let k = rkey("r-1");
    s.enqueue(Enqueue::now(k.clone(), Trigger::Webhook, at(0)), at(0))
        .await
        .unwrap();
    let c = s
        .claim_due_keys(&owner("w"), at(0), Duration::seconds(LEASE), 1)
        .await
        .unwrap()
        .remove(0);
    // While the last attempt fails, a new event arrives for the key.
    s.enqueue(Enqueue::now(k.clone(), Trigger::Webhook, at(5)), at(5))
        .await
        .unwrap();
    assert_eq!(
        s.dead_letter(&c, "gave up", at(10)).await.unwrap(),
        DeadLetterOutcome::Retriggered
    );
    let e = s.queue_entry(&k).await.unwrap().unwrap();
    assert_eq!(
        (e.state, e.attempts, e.due_at),
        (QueueState::Pending, 0, at(10))
    );
    assert_eq!(e.last_error.as_deref(), Some("gave up"));
    assert!(s.list_dead_letters(10).await.unwrap().is_empty());
}
