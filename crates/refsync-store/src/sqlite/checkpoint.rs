//! WAL checkpoints off the commit path. By default SQLite checkpoints inside the
//! commit that crosses the WAL threshold, so one unlucky webhook batch pays for
//! copying thousands of pages and syncing the database file. Here the writer's own
//! threshold is raised (a backstop, should this task ever stop), and a separate
//! connection runs `PASSIVE` checkpoints on a timer: those never block the writer, and
//! once one completes SQLite reuses the WAL from the start instead of growing it.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use std::time::Duration;
use tokio::sync::watch;

/// Pages the writer may accumulate in the WAL before it checkpoints by itself
/// (about 40 MB at the default page size).
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: &str = "10000";

/// Starts the checkpoint task; it stops when `stop` is dropped or sent to.
pub(super) fn start(
    options: SqliteConnectOptions,
    interval: Duration,
    mut stop: watch::Receiver<()>,
) {
    tokio::spawn(async move {
        let mut conn: Option<SqliteConnection> = None;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => {}
            }
            if conn.is_none() {
                match options.connect().await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpointer cannot connect; will retry");
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            // Returns (busy, WAL frames, frames checkpointed).
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut *c)
                .await
            {
                Ok((_, log, done)) if log > done => {
                    tracing::debug!(
                        log,
                        done,
                        "WAL checkpoint incomplete (readers or writer busy)"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed; reconnecting");
                    conn = None;
                }
            }
        }
    });
}
