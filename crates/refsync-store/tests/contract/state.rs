//! Watermarks, secrets, the status summary, and opening stores by URL.

use crate::support::*;
use chrono::Duration;
use refsync_store::{
    Enqueue, EventOutcome, LeaseOwner, StoreError, Trigger, WATERMARK_POLLER_CRM,
    WATERMARK_RECONCILER_PARTNER_CENTER, open_store,
};

contract_tests!(
    watermarks_are_named_and_replaced,
    secrets_keep_bytes_exactly,
    the_status_summary_counts_every_state,
    state_survives_reopening,
);

async fn watermarks_are_named_and_replaced(b: &Backend) {
    let s = &b.store;
    assert!(
        s.get_watermark(WATERMARK_RECONCILER_PARTNER_CENTER)
            .await
            .unwrap()
            .is_none()
    );
    s.set_watermark(WATERMARK_RECONCILER_PARTNER_CENTER, at(-3600), None, at(0))
        .await
        .unwrap();
    s.set_watermark(WATERMARK_POLLER_CRM, at(-60), Some("deltatoken=abc"), at(1))
        .await
        .unwrap();
    let w = s
        .get_watermark(WATERMARK_RECONCILER_PARTNER_CENTER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((w.value, w.cursor, w.updated_at), (at(-3600), None, at(0)));
    s.set_watermark(WATERMARK_POLLER_CRM, at(-30), None, at(2))
        .await
        .unwrap();
    let w = s
        .get_watermark(WATERMARK_POLLER_CRM)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((w.value, w.cursor, w.updated_at), (at(-30), None, at(2)));
}

async fn secrets_keep_bytes_exactly(b: &Backend) {
    let s = &b.store;
    assert!(s.get_secret("crm.refresh_token").await.unwrap().is_none());
    let bytes: Vec<u8> = (0..=255).collect();
    s.put_secret("crm.refresh_token", bytes.clone(), at(0))
        .await
        .unwrap();
    let got = s.get_secret("crm.refresh_token").await.unwrap().unwrap();
    assert_eq!((got.ciphertext, got.updated_at), (bytes, at(0)));
    s.put_secret("crm.refresh_token", vec![1, 2, 3], at(5))
        .await
        .unwrap();
    let got = s.get_secret("crm.refresh_token").await.unwrap().unwrap();
    assert_eq!((got.ciphertext, got.updated_at), (vec![1, 2, 3], at(5)));
}

async fn the_status_summary_counts_every_state(b: &Backend) {
    let s = &b.store;
    let empty = s.status_summary(at(0)).await.unwrap();
    assert_eq!(empty.queue, Default::default());
    assert_eq!(empty.oldest_pending_age, None);

    s.record_event(referral_event("r-ev", at(-100)))
        .await
        .unwrap();
    let lease = Duration::seconds(60);
    let e = |id: &str, due: i64| Enqueue {
        key: rkey(id),
        trigger: Trigger::Reconciler,
        not_before: at(due),
    };
    s.enqueue_many(
        &[e("leased", -10), e("retrying", -10), e("dead", -10)],
        at(-50),
    )
    .await
    .unwrap();
    let w = LeaseOwner::new("w");
    let claims = s.claim_due_keys(&w, at(-10), lease, 10).await.unwrap();
    assert_eq!(claims.len(), 4, "three plus the event's key");
    for c in claims {
        match c.key.to_string().as_str() {
            "referral:retrying" => s.retry_later(&c, at(500), "boom").await.unwrap(),
            "referral:dead" => {
                s.dead_letter(&c, "poison", at(-5)).await.unwrap();
            }
            "referral:r-ev" => s.release(&c, at(-5)).await.unwrap(),
            _ => {}
        }
    }
    s.enqueue(e("scheduled", 900), at(-1)).await.unwrap();

    let sum = s.status_summary(at(0)).await.unwrap();
    assert_eq!(sum.events_by_outcome.get(&EventOutcome::Enqueued), Some(&1));
    assert_eq!(
        (
            sum.queue.due,
            sum.queue.scheduled,
            sum.queue.retrying,
            sum.queue.leased,
            sum.queue.dead
        ),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(sum.dead_letters, 1);
    // The event's key was enqueued when it was received, 99 s before `now`.
    assert_eq!(sum.oldest_pending_age, Some(Duration::seconds(99)));
    // Once the lease runs out, the leased key counts as due again.
    let later = s.status_summary(at(51)).await.unwrap();
    assert_eq!((later.queue.leased, later.queue.due), (0, 2));
}

async fn state_survives_reopening(b: &Backend) {
    b.store
        .record_event(referral_event("r-1", at(0)))
        .await
        .unwrap();
    b.store.put_secret("s", vec![9], at(0)).await.unwrap();
    let again = b.another_instance().await;
    assert!(again.queue_entry(&rkey("r-1")).await.unwrap().is_some());
    assert_eq!(
        again.get_secret("s").await.unwrap().unwrap().ciphertext,
        vec![9]
    );
    assert_eq!(
        again
            .record_event(referral_event("r-1", at(0)))
            .await
            .unwrap(),
        refsync_store::RecordOutcome::Duplicate
    );
    again.close().await;
}

#[tokio::test]
async fn unknown_schemes_are_refused_without_echoing_a_password() {
    let err = match open_store("mysql://u:hunter2@db/x").await {
        Err(e) => e,
        Ok(_) => panic!("mysql is not a supported backend"),
    };
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
    let shown = err.to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn unreachable_postgres_is_a_connect_error_without_the_password() {
    // Port 1 on localhost refuses connections at once.
    let options = refsync_store::StoreOptions {
        acquire_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let err = match refsync_store::open_store_with("postgres://u:hunter2@127.0.0.1:1/x", &options)
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("nothing listens on port 1"),
    };
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn in_memory_sqlite_works_with_one_connection() {
    let s = open_store("sqlite::memory:").await.unwrap();
    s.record_event(referral_event("r-1", at(0))).await.unwrap();
    let c = s
        .claim_due_keys(&LeaseOwner::new("w"), at(5), Duration::seconds(5), 5)
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(s.backend(), "sqlite");
    s.close().await;
}
