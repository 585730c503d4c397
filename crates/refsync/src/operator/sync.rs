//! `refsync sync <referral-id>`: enqueue the key now (trigger `operator`, which
//! also rules out the fast path) and wait for its outcome.
//!
//! So that it works whether or not `refsync serve` runs, this process runs the
//! workers itself while it waits, as one more instance for those seconds: its
//! workers claim whatever keys are due, so **they may also sync other due keys**
//! (they settle them as `serve` would; a sync cut short when the command ends is
//! released and picked up again). With `serve` running too, whichever instance
//! claims the key first works it; the outcome is read from the store either way.

use super::audit::audit_table;
use super::{show_span, show_time};
use crate::config::Config;
use crate::engine::{build_engine, worker_settings};
use anyhow::Context;
use chrono::{DateTime, Utc};
use refsync_core::SyncKey;
use refsync_engine::{OperatorOutcome, OperatorState, run_workers};
use refsync_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Enqueues `key`, runs the workers in-process and waits up to `timeout` for the
/// key's outcome (see the module docs for what else the workers may do meanwhile).
pub async fn sync_and_wait(
    config: &Config,
    store: Arc<dyn Store>,
    key: &SyncKey,
    timeout: Duration,
) -> anyhow::Result<OperatorOutcome> {
    let built = build_engine(config, store)?.context(
        "nothing to sync with: set [crm] kind (dynamics or salesforce) in the configuration",
    )?;
    let engine = built.engine;
    let shutdown = CancellationToken::new();
    let workers = tokio::spawn(run_workers(
        Arc::clone(&engine),
        worker_settings(config),
        shutdown.clone(),
    ));
    let outcome = engine.sync_now(key, timeout).await;
    // The workers finish or release what they hold within `[sync] shutdown_grace`.
    shutdown.cancel();
    if let Err(e) = workers.await {
        tracing::warn!(error = %e, "the in-process workers ended abnormally");
    }
    Ok(outcome?)
}

/// Why the command failed (its exit status), or `None` when the key was synced.
pub fn failure(key: &SyncKey, state: &OperatorState) -> Option<String> {
    match state {
        OperatorState::Done => None,
        OperatorState::Retrying { .. } => Some(format!("{key} failed and will be retried")),
        OperatorState::DeadLettered { .. } => Some(format!("{key} was dead-lettered")),
        OperatorState::TimedOut => Some(format!("{key} did not finish in time")),
    }
}

/// The outcome for people: one line saying how it ended, then the audit entries
/// the sync wrote.
pub fn sync_report(
    key: &SyncKey,
    outcome: &OperatorOutcome,
    timeout: Duration,
    now: DateTime<Utc>,
) -> String {
    let mut out = match &outcome.state {
        OperatorState::Done => format!("{key}: done\n"),
        OperatorState::Retrying { error, due_at } => format!(
            "{key}: failed, will be retried at {} (in {}): {error}\n",
            show_time(*due_at),
            show_span(now, *due_at),
        ),
        OperatorState::DeadLettered { reason } => format!(
            "{key}: dead-lettered: {reason}\n\
             fix the cause, then `refsync dead-letters retry {key}`\n"
        ),
        OperatorState::TimedOut => format!(
            "{key}: not finished within {}; it stays queued (see `refsync status`)\n",
            humantime::format_duration(timeout)
        ),
    };
    if outcome.audit.is_empty() {
        out.push_str("no audit entries were written\n");
    } else {
        out.push_str(&audit_table(&outcome.audit));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use refsync_core::ReferralId;
    use refsync_store::{AuditEntry, AuditKind, NewAuditEntry};
    use serde_json::json;

    fn key() -> SyncKey {
        SyncKey::Referral(ReferralId::parse("r-1").unwrap())
    }

    fn entry(kind: AuditKind, summary: &str) -> AuditEntry {
        AuditEntry {
            id: 7,
            entry: NewAuditEntry {
                at: DateTime::UNIX_EPOCH,
                key: key(),
                referral_id: ReferralId::parse("r-1").ok(),
                crm_record: None,
                kind,
                summary: summary.to_owned(),
                detail: json!({}),
            },
        }
    }

    #[test]
    fn each_outcome_says_how_it_ended_and_only_done_succeeds() {
        let now = DateTime::UNIX_EPOCH;
        let cases = [
            (OperatorState::Done, "referral:r-1: done", true),
            (
                OperatorState::Retrying {
                    error: "CRM unavailable".into(),
                    due_at: now + chrono::Duration::seconds(90),
                },
                "will be retried at 1970-01-01 00:01:30Z (in 1m 30s): CRM unavailable",
                false,
            ),
            (
                OperatorState::DeadLettered {
                    reason: "permanent failure: rejected".into(),
                },
                "dead-lettered: permanent failure: rejected",
                false,
            ),
            (OperatorState::TimedOut, "not finished within 1m", false),
        ];
        for (state, needle, ok) in cases {
            assert_eq!(failure(&key(), &state).is_none(), ok, "{state:?}");
            let outcome = OperatorOutcome {
                state,
                audit: vec![entry(AuditKind::CreatedLead, "created lead 00Q1")],
            };
            let text = sync_report(&key(), &outcome, Duration::from_secs(60), now);
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
            assert!(text.contains("created lead 00Q1"), "{text}");
        }
    }

    #[test]
    fn a_sync_that_wrote_nothing_says_so() {
        let outcome = OperatorOutcome {
            state: OperatorState::Done,
            audit: Vec::new(),
        };
        let text = sync_report(&key(), &outcome, Duration::from_secs(1), Utc::now());
        assert!(text.contains("no audit entries"), "{text}");
    }
}
