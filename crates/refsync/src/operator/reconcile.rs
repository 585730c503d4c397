//! `refsync reconcile [--since …]`: one reconciliation pass now — list the
//! referrals Partner Center changed since a time and enqueue ours (trigger
//! `reconciler`), as the periodic pass in `refsync serve` does. This is how an
//! operator catches up after webhooks were lost (no registration, Partner Center's
//! offline queue, an outage); the workers of `refsync serve` then sync the keys.

use super::show_time;
use crate::config::Config;
use crate::engine::{build_engine, reconciler_settings};
use anyhow::Context;
use chrono::{DateTime, Utc};
use refsync_engine::ReconcileReport;
use refsync_store::Store;
use std::sync::Arc;

/// Parses `--since`: an RFC 3339 time, or a duration (`2h`, `3d 4h`) back from `now`.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(s).with_context(|| {
        format!(
            "--since {s:?}: expected an RFC 3339 time (2026-11-23T08:00:00Z) or a duration (2h)"
        )
    })?;
    let ago = chrono::Duration::from_std(ago).context("--since: too long ago")?;
    now.checked_sub_signed(ago).context("--since: too long ago")
}

/// Runs one pass: from `since`, or (`None`) from the stored watermark less
/// `[reconciler] overlap` — everything when there is no watermark yet.
pub async fn reconcile_now(
    config: &Config,
    store: Arc<dyn Store>,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<ReconcileReport> {
    let built = build_engine(config, store)?.context(
        "reconciling needs the sync engine: set [crm] kind (dynamics or salesforce) in the configuration",
    )?;
    let report = match since {
        Some(t) => built.engine.reconcile_since(Some(t)).await?,
        None => {
            built
                .engine
                .reconcile_once(&reconciler_settings(config))
                .await?
        }
    };
    Ok(report)
}

/// What the pass did, for people.
pub fn reconcile_text(report: &ReconcileReport) -> String {
    let since = report
        .since
        .map_or_else(|| "the beginning (backfill)".to_owned(), show_time);
    let watermark = report
        .watermark
        .map_or_else(|| "none".to_owned(), show_time);
    format!(
        "listed {} referral(s) updated since {since}; enqueued {} of ours \
         (others' are reached through ours)\n\
         reconciler watermark: {watermark}\n{}",
        report.listed,
        report.enqueued,
        if report.enqueued > 0 {
            "`refsync serve` syncs them; `refsync status` shows the queue\n"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_or_a_duration_back_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("2026-11-23T08:30:00+01:00", now).unwrap(),
            DateTime::parse_from_rfc3339("2026-11-23T07:30:00Z").unwrap()
        );
        assert_eq!(
            parse_since("2h 30m", now).unwrap(),
            DateTime::parse_from_rfc3339("2026-11-23T09:30:00Z").unwrap()
        );
        let err = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn the_report_names_counts_and_the_window() {
        let t = DateTime::UNIX_EPOCH;
        let text = reconcile_text(&ReconcileReport {
            since: Some(t),
            listed: 5,
            enqueued: 3,
            watermark: Some(t + chrono::Duration::seconds(1)),
        });
        for needle in [
            "listed 5 referral(s) updated since 1970-01-01 00:00:00Z",
            "enqueued 3",
            "watermark: 1970-01-01 00:00:01Z",
            "refsync serve",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        let backfill = reconcile_text(&ReconcileReport::default());
        assert!(backfill.contains("the beginning (backfill)"), "{backfill}");
        assert!(!backfill.contains("refsync serve"), "{backfill}");
    }
}
