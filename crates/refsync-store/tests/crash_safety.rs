//! Crash safety on SQLite: an event the store acknowledged is on disk, even if the
//! process is killed the next instant. This test re-runs its own binary as a child
//! that records events as fast as it can and prints each acknowledged dedupe key; the
//! parent SIGKILLs it at a random point and checks every printed key was stored.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{Duration, TimeZone, Utc};
use refsync_core::{EventName, ReferralId, SyncKey};
use refsync_store::test_harness::sqlite_url_for_test;
use refsync_store::{
    DedupeKey, EventFilter, EventOutcome, NewEvent, RecordOutcome, SignatureHeaders, open_store,
};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const CHILD_DB_ENV: &str = "REFSYNC_CRASH_CHILD_DB";
const CONCURRENCY: usize = 64;

fn event(n: u64) -> NewEvent {
    let changed =
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::milliseconds(n as i64);
    let id = ReferralId::parse(format!("r-{}", n % 500)).unwrap();
    NewEvent {
        dedupe_key: DedupeKey::for_event(&EventName::ReferralUpdated, Some(&id), changed),
        event_name: EventName::ReferralUpdated,
        referral_id: Some(id.clone()),
        resource_change_utc: changed,
        received_at: changed,
        body: format!(r#"{{"EventName":"referral-updated","n":{n}}}"#).into_bytes(),
        signature: SignatureHeaders::default(),
        outcome: EventOutcome::Enqueued,
        enqueue: vec![SyncKey::Referral(id)],
    }
}

/// The child side, run only by `acknowledged_events_survive_sigkill` (which sets the
/// database in the environment); on its own it has nothing to do.
#[test]
#[ignore = "child process of acknowledged_events_survive_sigkill"]
fn crash_child_writer() {
    let Ok(url) = std::env::var(CHILD_DB_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = open_store(&url).await.unwrap();
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..CONCURRENCY as u64 {
            let store = store.clone();
            writers.spawn(async move {
                for i in 0.. {
                    let ev = event(i * CONCURRENCY as u64 + w);
                    let key = ev.dedupe_key.clone();
                    if let RecordOutcome::Recorded { .. } = store.record_event(ev).await.unwrap() {
                        // Printed only after the commit returned: this is the acknowledgement.
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {key}").unwrap();
                        out.flush().unwrap();
                    }
                }
            });
        }
        while writers.join_next().await.is_some() {}
    });
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let db = sqlite_url_for_test();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--ignored", "--nocapture"])
        .env(CHILD_DB_ENV, db.url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // A random moment: somewhere in the first few thousand acknowledgements.
    let kill_after = 300 + (uuid::Uuid::new_v4().as_u128() % 3000) as usize;
    let mut acked = Vec::new();
    let mut killed = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        if let Some(key) = line.strip_prefix("ACK ") {
            acked.push(key.to_owned());
            if acked.len() == kill_after {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
        }
        // Keep reading after the kill: lines already in the pipe were acknowledged too.
    }
    if !killed {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "the child stopped after {} acknowledgements, before it could be killed ({status})",
        acked.len()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let stored: HashSet<String> = rt.block_on(async {
        let store = open_store(db.url()).await.unwrap();
        let events = store
            .list_events(&EventFilter::default(), u32::MAX)
            .await
            .unwrap();
        store.close().await;
        events
            .into_iter()
            .map(|e| e.dedupe_key.as_str().to_owned())
            .collect()
    });
    let missing: Vec<_> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events were lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
    assert!(stored.len() >= acked.len());
}
