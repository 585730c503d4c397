//! The engine's metrics, named once here (the `metrics` facade; the binary installs
//! the Prometheus exporter):
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `refsync_syncs_total` | counter | `outcome` (a [`SyncOutcome`] label, or `failed`) |
//! | `refsync_sync_failures_total` | counter | `side` (`partner_center`, `crm`, `store`, `data`), `transient` |
//! | `refsync_writes_total` | counter | `side` (`crm`, `partner_center`), `op` |
//! | `refsync_conflicts_total` | counter | |
//! | `refsync_refusals_total` | counter | |
//! | `refsync_precondition_failed_total` | counter | (412s resolved by re-reading) |
//! | `refsync_queue_to_done_seconds` | histogram | (first enqueued → completed) |
//! | `refsync_sync_duration_seconds` | histogram | |
//! | `refsync_retries_total`, `refsync_dead_letters_total` | counter | |
//! | `refsync_reconciler_enqueued_total`, `refsync_poller_enqueued_total` | counter | |

use crate::error::SyncError;
use crate::outcome::SyncOutcome;
use refsync_core::MergePlan;
use std::time::Duration;

pub(crate) fn sync_succeeded(outcome: &SyncOutcome) {
    metrics::counter!("refsync_syncs_total", "outcome" => outcome.label()).increment(1);
}

pub(crate) fn sync_failed(e: &SyncError) {
    metrics::counter!("refsync_syncs_total", "outcome" => "failed").increment(1);
    metrics::counter!(
        "refsync_sync_failures_total",
        "side" => e.side(),
        "transient" => if e.is_transient() { "true" } else { "false" }
    )
    .increment(1);
}

pub(crate) fn crm_write(op: &'static str) {
    metrics::counter!("refsync_writes_total", "side" => "crm", "op" => op).increment(1);
}

pub(crate) fn pc_write(op: &'static str) {
    metrics::counter!("refsync_writes_total", "side" => "partner_center", "op" => op).increment(1);
}

pub(crate) fn merge_observed(plan: &MergePlan) {
    if !plan.conflicts.is_empty() {
        metrics::counter!("refsync_conflicts_total").increment(plan.conflicts.len() as u64);
    }
    if !plan.refusals.is_empty() {
        metrics::counter!("refsync_refusals_total").increment(plan.refusals.len() as u64);
    }
}

pub(crate) fn precondition_failed() {
    metrics::counter!("refsync_precondition_failed_total").increment(1);
}

pub(crate) fn sync_duration(d: Duration) {
    metrics::histogram!("refsync_sync_duration_seconds").record(d.as_secs_f64());
}

pub(crate) fn queue_to_done(d: Duration) {
    metrics::histogram!("refsync_queue_to_done_seconds").record(d.as_secs_f64());
}

pub(crate) fn retried() {
    metrics::counter!("refsync_retries_total").increment(1);
}

pub(crate) fn dead_lettered() {
    metrics::counter!("refsync_dead_letters_total").increment(1);
}

pub(crate) fn reconciler_enqueued(n: usize) {
    metrics::counter!("refsync_reconciler_enqueued_total").increment(n as u64);
}

pub(crate) fn poller_enqueued(n: usize) {
    metrics::counter!("refsync_poller_enqueued_total").increment(n as u64);
}
