//! Measures durable intake throughput: N concurrent callers recording events into a
//! fresh SQLite store (WAL, synchronous=FULL), every answer after its commit.
//!
//! `cargo run --release -p refsync-store --example intake_burst -- [events] [concurrency] [url]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{Duration, TimeZone, Utc};
use refsync_core::{EventName, ReferralId, SyncKey};
use refsync_store::{DedupeKey, EventOutcome, NewEvent, SignatureHeaders, open_store};
use std::time::Instant;

fn event(n: u64) -> NewEvent {
    let changed =
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::microseconds(n as i64);
    let id = ReferralId::parse(format!("r-{}", n % 2000)).unwrap();
    NewEvent {
        dedupe_key: DedupeKey::for_event(&EventName::ReferralUpdated, Some(&id), changed),
        event_name: EventName::ReferralUpdated,
        referral_id: Some(id.clone()),
        resource_change_utc: changed,
        received_at: changed,
        // About the size of a real callback body.
        body: format!(
            r#"{{"EventName":"referral-updated","ResourceUri":"https://api.partnercenter.microsoft.com/engagements/v1/referrals/{id}","ResourceName":"referral","AuditUri":null,"ResourceChangeUtcDate":"{}"}}"#,
            changed.to_rfc3339()
        )
        .into_bytes(),
        signature: SignatureHeaders {
            signature: Some(format!("Signature {}", "A".repeat(344))),
            certificate_url: Some("https://3psostorageacct.blob.core.windows.net/cert/pcnotifications-dispatch.microsoft.com.cer".into()),
            algorithm: Some("rsa-sha256".into()),
        },
        outcome: EventOutcome::Enqueued,
        enqueue: vec![SyncKey::Referral(id)],
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total: u64 = args.get(1).map_or(50_000, |s| s.parse().unwrap());
    let concurrency: u64 = args.get(2).map_or(64, |s| s.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let url = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = open_store(&url).await.unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let store = store.clone();
        tasks.spawn(async move {
            let mut i = w;
            while i < total {
                store.record_event(event(i)).await.unwrap();
                i += concurrency;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} events, concurrency {concurrency}: {secs:.2} s, {:.0} events/s",
        total as f64 / secs
    );
    store.close().await;
}
