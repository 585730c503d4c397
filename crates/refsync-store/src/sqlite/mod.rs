//! The SQLite backend, refsync's embedded default.
//!
//! One writer connection (a pool of one) takes every write, so writers queue in the
//! pool instead of fighting over `SQLITE_BUSY`; a separate read-only pool serves
//! lookups concurrently, which WAL mode allows. `synchronous=FULL` makes every
//! commit durable before it returns; group commit — of webhook events (the
//! `group_commit` module) and of the workers' claims, completions and link saves
//! (`batch`) — and WAL checkpoints on a separate connection (`checkpoint`) keep that
//! affordable under load.

mod batch;
mod checkpoint;
mod events;
mod links;
mod queue;
mod state;

use crate::StoreOptions;
use crate::error::{Result, connect_error};
use crate::group_commit::GroupCommit;
use crate::store::Store;
use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::watch;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A store on one SQLite database file (or in memory, for tests).
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    events: GroupCommit,
    /// The workers' claims, completions and link saves, committed in batches.
    writes: batch::WriteBatcher,
    /// Dropping (or sending on) this stops the WAL checkpointer.
    stop_checkpointer: watch::Sender<()>,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database named by a `sqlite:` URL.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| connect_error(url, e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let in_memory = is_in_memory(url);
        // The writer's single connection must never be recycled for an in-memory
        // database: closing it would drop the data.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(u32::from(in_memory))
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone().pragma(
                "wal_autocheckpoint",
                checkpoint::WRITER_AUTOCHECKPOINT_PAGES,
            ))
            .await
            .map_err(|e| connect_error(url, e))?;
        MIGRATOR.run(&writer).await?;
        let (stop_checkpointer, stop) = watch::channel(());
        if !in_memory {
            checkpoint::start(connect.clone(), options.checkpoint_interval, stop);
        }
        // Each in-memory connection would be a separate database, so reads share the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(options.read_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.read_only(true))
                .await
                .map_err(|e| connect_error(url, e))?
        };
        let events = GroupCommit::start(
            Arc::new(events::SqliteEventWriter {
                writer: writer.clone(),
            }),
            options.max_event_batch,
        );
        let writes = batch::WriteBatcher::start(writer.clone(), options.max_event_batch);
        Ok(Self {
            writer,
            reader,
            events,
            writes,
            stop_checkpointer,
        })
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.events.shutdown().await;
        let _ = self.stop_checkpointer.send(());
        self.reader.close().await;
        self.writer.close().await;
    }
}
