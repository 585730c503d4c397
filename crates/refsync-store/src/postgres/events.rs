//! Received events on PostgreSQL: the group-commit batch writer and the operator queries.

use super::PgStore;
use super::queue::upsert_touches;
use crate::codec::{count, limit, parse_referral};
use crate::error::Result;
use crate::event::{
    DedupeKey, EventFilter, EventId, EventOutcome, NewEvent, RecordOutcome, SignatureHeaders,
    StoredEvent,
};
use crate::group_commit::EventBatchWriter;
use crate::intake_plan::{EVENT_ROWS_PER_STATEMENT, first_occurrences, key_touches, outcomes};
use crate::store::EventLog;
use async_trait::async_trait;
use refsync_core::EventName;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use std::collections::{BTreeMap, HashMap};

/// Writes batches of events through one pooled connection per batch.
pub(super) struct PgEventWriter {
    pub(super) pool: PgPool,
}

#[async_trait]
impl EventBatchWriter for PgEventWriter {
    async fn write_batch(&self, events: &[NewEvent]) -> Result<Vec<RecordOutcome>> {
        let first = first_occurrences(events);
        let unique: Vec<&NewEvent> = events
            .iter()
            .zip(&first)
            .filter_map(|(e, first)| first.then_some(e))
            .collect();
        let mut tx = self.pool.begin().await?;
        let mut inserted: HashMap<String, i64> = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(EVENT_ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Postgres>::new(
                "INSERT INTO received_events (dedupe_key, event_name, referral_id, \
                 resource_change_utc, received_at, body, signature, certificate_url, \
                 signature_algorithm, outcome) ",
            );
            q.push_values(chunk, |mut row, e| {
                row.push_bind(e.dedupe_key.as_str().to_owned())
                    .push_bind(e.event_name.as_str().to_owned())
                    .push_bind(e.referral_id.as_ref().map(|r| r.as_str().to_owned()))
                    .push_bind(e.resource_change_utc)
                    .push_bind(e.received_at)
                    .push_bind(e.body.clone())
                    .push_bind(e.signature.signature.clone())
                    .push_bind(e.signature.certificate_url.clone())
                    .push_bind(e.signature.algorithm.clone())
                    .push_bind(e.outcome.as_str().to_owned());
            });
            // Rows whose dedupe key is already stored are skipped and not returned.
            q.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key, id");
            let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut *tx).await?;
            inserted.extend(rows);
        }
        upsert_touches(&mut tx, &key_touches(events, &first, &inserted)).await?;
        tx.commit().await?;
        Ok(outcomes(events, &first, &inserted))
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
