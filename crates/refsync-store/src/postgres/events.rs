//! Received events on PostgreSQL: the group-commit batch writer and the operator queries.

use super::PgStore;
use super::queue::upsert_queue_row;
use crate::codec::{count, limit, parse_referral};
use crate::error::Result;
use crate::event::{
    DedupeKey, EventFilter, EventId, EventOutcome, NewEvent, RecordOutcome, SignatureHeaders,
    StoredEvent,
};
use crate::group_commit::EventBatchWriter;
use crate::queue::{Enqueue, Trigger};
use crate::store::EventLog;
use async_trait::async_trait;
use refsync_core::EventName;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;

/// Writes batches of events through one pooled connection per batch.
pub(super) struct PgEventWriter {
    pub(super) pool: PgPool,
}

#[async_trait]
impl EventBatchWriter for PgEventWriter {
    async fn write_batch(&self, events: &[NewEvent]) -> Result<Vec<RecordOutcome>> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(events.len());
        for e in events {
            // A duplicate hits the UNIQUE dedupe key and returns no row.
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO received_events (dedupe_key, event_name, referral_id, \
                 resource_change_utc, received_at, body, signature, certificate_url, \
                 signature_algorithm, outcome) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            )
            .bind(e.dedupe_key.as_str())
            .bind(e.event_name.as_str())
            .bind(e.referral_id.as_ref().map(|r| r.as_str()))
            .bind(e.resource_change_utc)
            .bind(e.received_at)
            .bind(e.body.as_slice())
            .bind(e.signature.signature.as_deref())
            .bind(e.signature.certificate_url.as_deref())
            .bind(e.signature.algorithm.as_deref())
            .bind(e.outcome.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                outcomes.push(RecordOutcome::Duplicate);
                continue;
            };
            for key in &e.enqueue {
                let item = Enqueue::now(key.clone(), Trigger::Webhook, e.received_at);
                upsert_queue_row(&mut tx, &item, e.received_at).await?;
            }
            outcomes.push(RecordOutcome::Recorded { id: EventId(id) });
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

fn event_from_row(row: &PgRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: EventId(row.try_get("id")?),
        dedupe_key: DedupeKey::from_stored(row.try_get::<String, _>("dedupe_key")?),
        event_name: EventName::parse(row.try_get("event_name")?),
        referral_id: parse_referral(row.try_get("referral_id")?)?,
        resource_change_utc: row.try_get("resource_change_utc")?,
        received_at: row.try_get("received_at")?,
        body: row.try_get("body")?,
        signature: SignatureHeaders {
            signature: row.try_get("signature")?,
            certificate_url: row.try_get("certificate_url")?,
            algorithm: row.try_get("signature_algorithm")?,
        },
        outcome: EventOutcome::parse(row.try_get("outcome")?),
    })
}

#[async_trait]
impl EventLog for PgStore {
    async fn record_event(&self, event: NewEvent) -> Result<RecordOutcome> {
        self.events.submit(event).await
    }

    async fn list_events(&self, filter: &EventFilter, n: u32) -> Result<Vec<StoredEvent>> {
        // NULL parameters switch a condition off, so one prepared statement serves every filter.
        let rows = sqlx::query(
            "SELECT id, dedupe_key, event_name, referral_id, resource_change_utc, received_at, \
             body, signature, certificate_url, signature_algorithm, outcome \
             FROM received_events \
             WHERE ($1 IS NULL OR referral_id = $1) AND ($2 IS NULL OR event_name = $2) \
             AND ($3 IS NULL OR outcome = $3) AND ($4 IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $5",
        )
        .bind(filter.referral_id.as_ref().map(|r| r.as_str()))
        .bind(filter.event_name.as_ref().map(|n| n.as_str()))
        .bind(filter.outcome.as_ref().map(|o| o.as_str()))
        .bind(filter.before.map(|b| b.0))
        .bind(limit(n))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn count_events_by_outcome(&self) -> Result<BTreeMap<EventOutcome, u64>> {
        count_by_outcome(&self.pool).await
    }
}

/// Events per outcome (shared with the status summary).
pub(super) async fn count_by_outcome(pool: &PgPool) -> Result<BTreeMap<EventOutcome, u64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT outcome, COUNT(*) FROM received_events GROUP BY outcome")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(o, n)| (EventOutcome::parse(&o), count(n)))
        .collect())
}
