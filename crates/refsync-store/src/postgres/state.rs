//! Watermarks, secrets and the status summary on PostgreSQL.

use super::PgStore;
use super::events::count_by_outcome;
use crate::codec::count;
use crate::error::Result;
use crate::state::{StoredSecret, Watermark};
use crate::status::{QueueDepth, StatusSummary};
use crate::store::StateStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

#[async_trait]
impl StateStore for PgStore {
    async fn get_watermark(&self, name: &str) -> Result<Option<Watermark>> {
        let row: Option<(DateTime<Utc>, Option<String>, DateTime<Utc>)> =
            sqlx::query_as("SELECT value, cursor, updated_at FROM watermarks WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(value, cursor, updated_at)| Watermark {
            value,
            cursor,
            updated_at,
        }))
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
        .bind(value)
        .bind(cursor)
        .bind(now)
        .execute(&self.pool)
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
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_secret(&self, name: &str) -> Result<Option<StoredSecret>> {
        let row: Option<(Vec<u8>, DateTime<Utc>)> =
            sqlx::query_as("SELECT ciphertext, updated_at FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(ciphertext, updated_at)| StoredSecret {
            ciphertext,
            updated_at,
        }))
    }

    async fn status_summary(&self, now: DateTime<Utc>) -> Result<StatusSummary> {
        let events_by_outcome = count_by_outcome(&self.pool).await?;
        let row = sqlx::query(
            "SELECT \
               COUNT(*) FILTER (WHERE state = 'pending' AND due_at <= $1 \
                   AND (lease_until IS NULL OR lease_until <= $1)) AS due, \
               COUNT(*) FILTER (WHERE state = 'pending' AND due_at > $1 AND attempts = 0 \
                   AND (lease_until IS NULL OR lease_until <= $1)) AS scheduled, \
               COUNT(*) FILTER (WHERE state = 'pending' AND due_at > $1 AND attempts > 0 \
                   AND (lease_until IS NULL OR lease_until <= $1)) AS retrying, \
               COUNT(*) FILTER (WHERE state = 'pending' AND lease_until > $1) AS leased, \
               COUNT(*) FILTER (WHERE state = 'dead') AS dead, \
               MIN(first_enqueued_at) FILTER (WHERE state = 'pending') AS oldest \
             FROM sync_queue",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let queue = QueueDepth {
            due: count(row.try_get("due")?),
            scheduled: count(row.try_get("scheduled")?),
            retrying: count(row.try_get("retrying")?),
            leased: count(row.try_get("leased")?),
            dead: count(row.try_get("dead")?),
        };
        let oldest: Option<DateTime<Utc>> = row.try_get("oldest")?;
        let oldest_pending_age = oldest.map(|t| now - t);
        Ok(StatusSummary {
            events_by_outcome,
            dead_letters: queue.dead,
            queue,
            oldest_pending_age,
        })
    }
}
