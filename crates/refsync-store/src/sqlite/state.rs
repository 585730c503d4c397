//! Watermarks, secrets and the status summary on SQLite.

use super::SqliteStore;
use super::events::count_by_outcome;
use crate::codec::{count, from_micros, to_micros};
use crate::error::Result;
use crate::state::{StoredSecret, Watermark};
use crate::status::{QueueDepth, StatusSummary};
use crate::store::StateStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

#[async_trait]
impl StateStore for SqliteStore {
    async fn get_watermark(&self, name: &str) -> Result<Option<Watermark>> {
        let row: Option<(i64, Option<String>, i64)> =
            sqlx::query_as("SELECT value, cursor, updated_at FROM watermarks WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
        row.map(|(value, cursor, updated_at)| {
            Ok(Watermark {
                value: from_micros(value)?,
                cursor,
                updated_at: from_micros(updated_at)?,
            })
        })
        .transpose()
    }

    async fn set_watermark(
        &self,
        name: &str,
        value: DateTime<Utc>,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO watermarks (name, value, cursor, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, cursor = excluded.cursor, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(to_micros(value))
        .bind(cursor)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn put_secret(&self, name: &str, ciphertext: Vec<u8>, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO secrets (name, ciphertext, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(ciphertext)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_secret(&self, name: &str) -> Result<Option<StoredSecret>> {
        let row: Option<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT ciphertext, updated_at FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
        row.map(|(ciphertext, updated_at)| {
            Ok(StoredSecret {
                ciphertext,
                updated_at: from_micros(updated_at)?,
            })
        })
        .transpose()
    }

    async fn status_summary(&self, now: DateTime<Utc>) -> Result<StatusSummary> {
        let events_by_outcome = count_by_outcome(&self.reader).await?;
        let row = sqlx::query(
            "SELECT \
               COALESCE(SUM(state = 'pending' AND due_at <= $1 \
                   AND (lease_until IS NULL OR lease_until <= $1)), 0) AS due, \
               COALESCE(SUM(state = 'pending' AND due_at > $1 AND attempts = 0 \
                   AND (lease_until IS NULL OR lease_until <= $1)), 0) AS scheduled, \
               COALESCE(SUM(state = 'pending' AND due_at > $1 AND attempts > 0 \
                   AND (lease_until IS NULL OR lease_until <= $1)), 0) AS retrying, \
               COALESCE(SUM(state = 'pending' AND lease_until > $1), 0) AS leased, \
               COALESCE(SUM(state = 'dead'), 0) AS dead, \
               MIN(CASE WHEN state = 'pending' THEN first_enqueued_at END) AS oldest \
             FROM sync_queue",
        )
        .bind(to_micros(now))
        .fetch_one(&self.reader)
        .await?;
        let queue = QueueDepth {
            due: count(row.try_get("due")?),
            scheduled: count(row.try_get("scheduled")?),
            retrying: count(row.try_get("retrying")?),
            leased: count(row.try_get("leased")?),
            dead: count(row.try_get("dead")?),
        };
        let oldest: Option<i64> = row.try_get("oldest")?;
        let oldest_pending_age = oldest.map(from_micros).transpose()?.map(|t| now - t);
        Ok(StatusSummary {
            events_by_outcome,
            dead_letters: queue.dead,
            queue,
            oldest_pending_age,
        })
    }
}
