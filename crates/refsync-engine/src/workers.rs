//! The workers: claim due keys with a lease, sync up to N at once, and settle each
//! claim — `complete` on success (a key triggered again meanwhile stays queued and
//! is worked again), `retry_later` with exponential backoff and jitter on a
//! transient failure, `dead_letter` with the reason once the attempts are used up or
//! at once on a permanent failure.
//!
//! They wake at once when work arrives in this process ([`Wakeup`], poked by the
//! webhook intake and the engine itself) and poll at an interval otherwise (keys
//! due later, keys enqueued by another instance sharing PostgreSQL). On shutdown
//! (the cancellation token, wired to SIGTERM by the binary) they stop claiming, let
//! in-flight syncs finish within a grace period, and release the rest unworked.

use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::metrics as m;
use crate::outcome::SyncOutcome;
use crate::settings::WorkerSettings;
use chrono::{DateTime, Utc};
use refsync_core::SyncKey;
use refsync_store::{Claim, CompleteOutcome, DeadLetterOutcome, LeaseOwner};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Wakes the workers when keys were enqueued in this process.
#[derive(Debug, Clone, Default)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    /// Wakes a waiting worker loop (or the next one to wait: the wake-up is kept).
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Waits for a wake-up.
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

/// What to do with a claim once its sync has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done: remove the key (unless it was triggered again meanwhile).
    Complete,
    /// Failed, worth trying again at this time.
    RetryAt(DateTime<Utc>),
    /// Given up on, with the reason.
    DeadLetter(String),
}

/// Decides a claim's fate. `attempts` is the claim's failed attempts before this
/// one; `jitter` a number in `[0, 1)` (random in production, fixed in tests).
pub fn disposition(
    result: &Result<SyncOutcome, SyncError>,
    attempts: i32,
    settings: &WorkerSettings,
    now: DateTime<Utc>,
    jitter: f64,
) -> Disposition {
    let error = match result {
        Ok(_) => return Disposition::Complete,
        Err(e) => e,
    };
    if !error.is_transient() {
        return Disposition::DeadLetter(format!("permanent failure: {error}"));
    }
    let failures = u32::try_from(attempts).unwrap_or(0).saturating_add(1);
    if failures >= settings.max_attempts {
        return Disposition::DeadLetter(format!("gave up after {failures} attempts: {error}"));
    }
    let delay = backoff(failures, settings.retry_initial, settings.retry_max, jitter).max(
        error
            .retry_after()
            .unwrap_or_default()
            .min(settings.retry_max),
    );
    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
    Disposition::RetryAt(now.checked_add_signed(delay).unwrap_or(now))
}

/// The pause after the `failures`-th failure: `initial` doubled per earlier
/// failure, capped at `max`, then jittered into its upper half (so retries of many
/// keys spread out, but none comes back sooner than half the nominal delay).
pub fn backoff(failures: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let nominal = initial.saturating_mul(1u32 << exponent).min(max);
    let jitter = jitter.clamp(0.0, 1.0);
    nominal.mul_f64(0.5 + jitter / 2.0)
}

/// Runs the workers until `shutdown` is cancelled, then winds down: no new claims,
/// in-flight syncs get `settings.shutdown_grace` to finish, the rest are released.
pub async fn run_workers(
    engine: Arc<SyncEngine>,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let tracker = TaskTracker::new();
    let hard_stop = CancellationToken::new();
    let owner = LeaseOwner::new(settings.owner.clone());
    let lease =
        chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(120));
    tracing::info!(owner = %owner, concurrency = settings.concurrency, "workers started");
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let mut held = vec![first];
        while let Ok(p) = Arc::clone(&permits).try_acquire_owned() {
            held.push(p);
        }
        let wanted = u32::try_from(held.len()).unwrap_or(u32::MAX);
        let claims = match engine
            .store
            .claim_due_keys(&owner, engine.now(), lease, wanted)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim keys; trying again after the poll interval");
                drop(held);
                if idle(&engine, &settings, &shutdown).await {
                    break;
                }
                continue;
            }
        };
        let got = claims.len();
        for (claim, permit) in claims.into_iter().zip(held.drain(..)) {
            tracker.spawn(work_claim(
                Arc::clone(&engine),
                claim,
                settings.clone(),
                hard_stop.clone(),
                permit,
            ));
        }
        drop(held);
        if got == 0 && idle(&engine, &settings, &shutdown).await {
            break;
        }
    }
    tracker.close();
    if tokio::time::timeout(settings.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::info!("shutdown grace period over; releasing the keys still in flight");
        hard_stop.cancel();
        tracker.wait().await;
    }
    tracing::info!("workers stopped");
}

/// Waits for work: a wake-up, the poll interval, or shutdown (true).
async fn idle(
    engine: &SyncEngine,
    settings: &WorkerSettings,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => true,
        _ = engine.wakeup.notified() => false,
        _ = tokio::time::sleep(settings.poll_interval) => false,
    }
}

/// Syncs one claimed key, keeping its lease alive, and settles the claim.
async fn work_claim(
    engine: Arc<SyncEngine>,
    mut claim: Claim,
    settings: WorkerSettings,
    hard_stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let started = Instant::now();
    let ticket = claim.clone();
    let sync = engine.sync_key(&ticket);
    tokio::pin!(sync);
    let every = (settings.lease / 3).max(Duration::from_millis(10));
    let mut extend = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let lease =
        chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(120));
    let result = loop {
        tokio::select! {
            biased;
            result = &mut sync => break result,
            _ = hard_stop.cancelled() => {
                // The sync is dropped mid-way: harmless, every write is idempotent and
                // the next worker re-reads both sides.
                if let Err(e) = engine.store.release(&claim, engine.now()).await {
                    tracing::warn!(key = %claim.key, error = %e, "could not release the key");
                }
                return;
            }
            _ = extend.tick() => {
                if let Err(e) = engine.store.extend_lease(&mut claim, engine.now() + lease).await {
                    // Another worker owns the key now; it will do this sync itself.
                    tracing::warn!(key = %claim.key, error = %e, "lease lost; abandoning the sync");
                    return;
                }
            }
        }
    };
    m::sync_duration(started.elapsed());
    let now = engine.now();
    match disposition(
        &result,
        claim.attempts,
        &settings,
        now,
        rand::random::<f64>(),
    ) {
        Disposition::Complete => match engine.store.complete(&claim, now).await {
            Ok(CompleteOutcome::Removed) => {
                m::queue_to_done((now - claim.first_enqueued_at).to_std().unwrap_or_default());
            }
            Ok(CompleteOutcome::Retriggered) => engine.wakeup.notify(),
            Err(e) => tracing::warn!(key = %claim.key, error = %e, "could not complete the key"),
        },
        Disposition::RetryAt(due) => {
            let error = result.err().map(|e| e.to_string()).unwrap_or_default();
            m::retried();
            if let Err(e) = engine.store.retry_later(&claim, due, &error).await {
                tracing::warn!(key = %claim.key, error = %e, "could not schedule the retry");
            }
        }
        Disposition::DeadLetter(reason) => {
            match engine.store.dead_letter(&claim, &reason, now).await {
                Ok(DeadLetterOutcome::DeadLettered) => {
                    m::dead_lettered();
                    tracing::error!(key = %claim.key, reason = %reason, "key dead-lettered");
                    if let Some(record) = linked_record(&engine, &claim.key).await {
                        engine.mark_failure(&record, &reason).await;
                    }
                }
                Ok(DeadLetterOutcome::Retriggered) => engine.wakeup.notify(),
                Err(e) => {
                    tracing::warn!(key = %claim.key, error = %e, "could not dead-letter the key")
                }
            }
        }
    }
}

/// The CRM record a key's failure can be shown on.
async fn linked_record(engine: &SyncEngine, key: &SyncKey) -> Option<refsync_core::CrmRecordRef> {
    match key {
        SyncKey::Crm(record) => Some(record.clone()),
        SyncKey::Referral(id) => engine
            .store
            .link_by_referral(id)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.crm_record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use refsync_crm::CrmError;

    fn settings() -> WorkerSettings {
        WorkerSettings {
            max_attempts: 4,
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            ..WorkerSettings::default()
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_in_its_upper_half() {
        let (i, max) = (Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(backoff(1, i, max, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(2, i, max, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(3, i, max, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(10, i, max, 1.0), max);
        assert_eq!(backoff(u32::MAX, i, max, 1.0), max);
        assert_eq!(backoff(2, i, max, 0.0), Duration::from_secs(2));
        let mid = backoff(3, i, max, 0.5);
        assert!(mid > Duration::from_secs(4) && mid < Duration::from_secs(8));
    }

    #[test]
    fn success_completes() {
        assert_eq!(
            disposition(&Ok(SyncOutcome::Unchanged), 3, &settings(), now(), 0.5),
            Disposition::Complete
        );
    }

    #[test]
    fn transient_failures_retry_until_the_attempts_are_used_up() {
        let err = || Err(SyncError::Crm(CrmError::Unavailable("503".into())));
        assert_eq!(
            disposition(&err(), 0, &settings(), now(), 1.0),
            Disposition::RetryAt(now() + chrono::Duration::seconds(2))
        );
        assert_eq!(
            disposition(&err(), 2, &settings(), now(), 1.0),
            Disposition::RetryAt(now() + chrono::Duration::seconds(8))
        );
        let Disposition::DeadLetter(reason) = disposition(&err(), 3, &settings(), now(), 1.0)
        else {
            panic!("the fourth failure gives up");
        };
        assert_eq!(
            reason,
            "gave up after 4 attempts: CRM: the CRM is unavailable: 503"
        );
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_is_honoured_up_to_the_cap() {
        let throttled = |s| {
            Err(SyncError::Crm(CrmError::Throttled {
                retry_after: Some(Duration::from_secs(s)),
            }))
        };
        assert_eq!(
            disposition(&throttled(30), 0, &settings(), now(), 1.0),
            Disposition::RetryAt(now() + chrono::Duration::seconds(30))
        );
        assert_eq!(
            disposition(&throttled(3600), 0, &settings(), now(), 1.0),
            Disposition::RetryAt(now() + chrono::Duration::seconds(60))
        );
    }

    #[test]
    fn permanent_failures_dead_letter_at_once() {
        let rejected = Err(SyncError::Crm(CrmError::Rejected {
            code: Some("REQUIRED_FIELD_MISSING".into()),
            message: "Required fields are missing: [LastName]".into(),
        }));
        let Disposition::DeadLetter(reason) = disposition(&rejected, 0, &settings(), now(), 0.5)
        else {
            panic!("a rejected write is permanent");
        };
        assert!(
            reason.starts_with("permanent failure: CRM: the CRM refused the write"),
            "{reason}"
        );
    }
}
