//! The loop the reconciler and the CRM poller share: a pass now, then one every
//! interval, until shutdown; a failed pass is logged and the next one tries again.

use crate::error::SyncError;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs `pass` now and then every `interval` until `shutdown`; a pass in flight
/// when shutdown comes is dropped (each pass is safe to repeat from the start).
pub(crate) async fn run_periodically<T, Fut>(
    what: &'static str,
    interval: Duration,
    shutdown: CancellationToken,
    mut pass: impl FnMut() -> Fut,
) where
    Fut: Future<Output = Result<T, SyncError>>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = ticks.tick() => {
                let outcome = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    outcome = pass() => outcome,
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "{what} failed; trying again at the next interval");
                }
            }
        }
    }
}
