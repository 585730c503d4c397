//! The reconciler: every `interval`, list the referrals updated since the watermark
//! (less an overlap), enqueue them (trigger `reconciler`) and move the watermark to
//! the newest `updatedDateTime` seen. This catches what webhooks missed — events
//! Partner Center parked in its offline queue after 10 failed deliveries
//! (partner-center.md §2.4), an outage of our own — and, on the first run with no
//! watermark, lists everything: the backfill.
//!
//! Enqueueing an unchanged referral is cheap: its sync takes the fast path.

use crate::decide;
use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::metrics as m;
use crate::settings::ReconcilerSettings;
use chrono::{DateTime, Utc};
use refsync_core::SyncKey;
use refsync_partner_center::ReferralQuery;
use refsync_store::{Enqueue, Trigger, WATERMARK_RECONCILER_PARTNER_CENTER};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What one reconciliation pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Where the listing started (`None`: everything).
    pub since: Option<DateTime<Utc>>,
    /// Referrals listed.
    pub listed: usize,
    /// Keys enqueued (our own referrals; other organizations' are reached through ours).
    pub enqueued: usize,
    /// The watermark after the pass.
    pub watermark: Option<DateTime<Utc>>,
}

impl SyncEngine {
    /// One pass from the stored watermark (less `overlap`); everything on the first run.
    pub async fn reconcile_once(
        &self,
        settings: &ReconcilerSettings,
    ) -> Result<ReconcileReport, SyncError> {
        let since = self
            .store
            .get_watermark(WATERMARK_RECONCILER_PARTNER_CENTER)
            .await?
            .map(|w| {
                let overlap = chrono::Duration::from_std(settings.overlap).unwrap_or_default();
                w.value - overlap
            });
        self.reconcile_since(since).await
    }

    /// One pass over the referrals updated at or after `since` (all of them for
    /// `None`): `refsync reconcile --since`. The watermark only ever moves forward.
    pub async fn reconcile_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<ReconcileReport, SyncError> {
        let query = match since {
            Some(t) => ReferralQuery::updated_since(t),
            None => ReferralQuery::new(),
        };
        let own = self.settings.own_organization_id.as_deref();
        let mut report = ReconcileReport {
            since,
            ..ReconcileReport::default()
        };
        let mut newest: Option<DateTime<Utc>> = None;
        let mut pages = self.referrals.list(&query);
        while let Some(page) = pages.next_page().await? {
            let now = self.now();
            report.listed += page.referrals.len();
            let mut items = Vec::new();
            for referral in &page.referrals {
                newest = newest.max(referral.updated_date_time);
                if decide::is_foreign(referral, own) {
                    continue;
                }
                if let Some(id) = &referral.id {
                    items.push(Enqueue::now(
                        SyncKey::Referral(id.clone()),
                        Trigger::Reconciler,
                        now,
                    ));
                }
            }
            // Enqueued page by page, so a backfill's first keys are being worked
            // while the rest is still being listed.
            if !items.is_empty() {
                self.store.enqueue_many(&items, now).await?;
                report.enqueued += items.len();
                self.wakeup.notify();
            }
        }
        m::reconciler_enqueued(report.enqueued);
        let stored = self
            .store
            .get_watermark(WATERMARK_RECONCILER_PARTNER_CENTER)
            .await?
            .map(|w| w.value);
        if let Some(newest) = newest
            && stored.is_none_or(|s| newest > s)
        {
            self.store
                .set_watermark(
                    WATERMARK_RECONCILER_PARTNER_CENTER,
                    newest,
                    None,
                    self.now(),
                )
                .await?;
        }
        report.watermark = newest.max(stored);
        tracing::info!(
            listed = report.listed,
            enqueued = report.enqueued,
            "reconciliation pass done"
        );
        Ok(report)
    }
}

/// Runs a reconciliation pass now and then every `settings.interval`, until
/// `shutdown`. A failed pass is logged and tried again at the next interval.
pub async fn run_reconciler(
    engine: Arc<SyncEngine>,
    settings: ReconcilerSettings,
    shutdown: CancellationToken,
) {
    crate::periodic::run_periodically("reconciliation pass", settings.interval, shutdown, || {
        engine.reconcile_once(&settings)
    })
    .await;
}
