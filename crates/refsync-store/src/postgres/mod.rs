//! The PostgreSQL backend, for several instances sharing one queue.
//!
//! Statements match the SQLite backend's wherever the dialects agree; they differ in
//! the claim (`FOR UPDATE SKIP LOCKED`, so N instances never claim the same key and
//! never wait on each other), in native `timestamptz`/`jsonb`/`bytea` columns, and in
//! a few function names (`LEAST`, `strpos`). Commits use PostgreSQL's normal
//! synchronous commit, so an acknowledged event is on disk.

mod events;
mod links;
mod queue;
mod state;

use crate::StoreOptions;
use crate::error::{Result, connect_error};
use crate::group_commit::GroupCommit;
use crate::store::Store;
use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A store on a PostgreSQL database.
pub struct PgStore {
    pool: PgPool,
    events: GroupCommit,
}

impl PgStore {
    /// Connects to the database named by a `postgres://` URL and migrates it
    /// (sqlx's advisory lock keeps concurrent instances from migrating twice).
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let statement_timeout = format!("{}ms", options.statement_timeout.as_millis());
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| connect_error(url, e))?
            .options([("statement_timeout", statement_timeout.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| connect_error(url, e))?;
        MIGRATOR.run(&pool).await?;
        let events = GroupCommit::start(
            Arc::new(events::PgEventWriter { pool: pool.clone() }),
            options.max_event_batch,
        );
        Ok(Self { pool, events })
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn close(&self) {
        self.events.shutdown().await;
        self.pool.close().await;
    }
}
