//! The work queue on SQLite. Every statement runs on the single writer connection,
//! so a claim (one `UPDATE … RETURNING`) is atomic with respect to every other write.

use super::SqliteStore;
use super::batch::Write;
use crate::codec::{from_micros, limit, opt_from_micros, parse_key, to_micros};
use crate::error::{Result, StoreError};
use crate::intake_plan::{KEY_ROWS_PER_STATEMENT, KeyTouch};
use crate::queue::{
    Claim, CompleteOutcome, DeadLetterOutcome, Enqueue, LeaseOwner, QueueEntry, QueueState,
    Trigger, split_triggers,
};
use crate::store::WorkQueue;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use refsync_core::SyncKey;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, Transaction};

/// The columns of a queue row insert (see [`UPSERT`]).
macro_rules! upsert_head {
    () => {
        "INSERT INTO sync_queue (sync_key, state, due_at, generation, attempts, \
         first_enqueued_at, last_enqueued_at, last_trigger, triggers) "
    };
}

/// What happens when the key already has a row: one row per key; the earliest due
/// wins; the generation goes up by the new row's count; a dead row comes back to
/// pending as if new; a new trigger joins the set.
macro_rules! upsert_conflict {
    () => {
        " ON CONFLICT (sync_key) DO UPDATE SET \
    due_at = CASE WHEN sync_queue.state = 'dead' THEN excluded.due_at \
                  ELSE min(sync_queue.due_at, excluded.due_at) END, \
    generation = sync_queue.generation + excluded.generation, \
    attempts = CASE WHEN sync_queue.state = 'dead' THEN 0 ELSE sync_queue.attempts END, \
    first_enqueued_at = CASE WHEN sync_queue.state = 'dead' THEN excluded.first_enqueued_at \
                             ELSE sync_queue.first_enqueued_at END, \
    triggers = CASE \
        WHEN sync_queue.state = 'dead' THEN excluded.triggers \
        WHEN instr(',' || sync_queue.triggers || ',', ',' || excluded.last_trigger || ',') > 0 \
            THEN sync_queue.triggers \
        ELSE sync_queue.triggers || ',' || excluded.last_trigger END, \
    state = 'pending', \
    last_enqueued_at = excluded.last_enqueued_at, \
    last_trigger = excluded.last_trigger, \
    dead_reason = NULL, \
    dead_at = NULL"
    };
}

/// The coalescing upsert of one key.
const UPSERT: &str = concat!(
    upsert_head!(),
    "VALUES ($1, 'pending', $2, 1, 0, $3, $3, $4, $4)",
    upsert_conflict!()
);

/// Runs the coalescing upsert of one key inside a transaction.
async fn upsert_queue_row(
    tx: &mut Transaction<'static, Sqlite>,
    item: &Enqueue,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(UPSERT)
        .bind(item.key.to_string())
        .bind(to_micros(item.not_before))
        .bind(to_micros(now))
        .bind(item.trigger.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Upserts the queue rows a batch of webhook events touches (one per key, already
/// coalesced), in multi-row statements inside the batch's transaction.
pub(super) async fn upsert_touches(
    tx: &mut Transaction<'static, Sqlite>,
    touches: &[KeyTouch],
) -> Result<()> {
    for chunk in touches.chunks(KEY_ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(upsert_head!());
        q.push_values(chunk, |mut row, t| {
            row.push_bind(t.key.clone())
                .push_bind("pending")
                .push_bind(to_micros(t.due))
                .push_bind(t.bumps)
                .push_bind(0_i32)
                .push_bind(to_micros(t.due))
                .push_bind(to_micros(t.last))
                .push_bind(Trigger::Webhook.as_str())
                .push_bind(Trigger::Webhook.as_str());
        });
        q.push(upsert_conflict!());
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

const ENTRY_COLUMNS: &str = "sync_key, state, due_at, generation, attempts, first_enqueued_at, \
    last_enqueued_at, last_trigger, triggers, leased_by, lease_until, last_error, dead_reason, dead_at";

fn entry_from_row(row: &SqliteRow) -> Result<QueueEntry> {
    Ok(QueueEntry {
        key: parse_key(row.try_get("sync_key")?)?,
        state: QueueState::parse(row.try_get("state")?),
        due_at: from_micros(row.try_get("due_at")?)?,
        generation: row.try_get("generation")?,
        attempts: row.try_get("attempts")?,
        first_enqueued_at: from_micros(row.try_get("first_enqueued_at")?)?,
        last_enqueued_at: from_micros(row.try_get("last_enqueued_at")?)?,
        last_trigger: Trigger::parse(row.try_get("last_trigger")?),
        triggers: split_triggers(row.try_get("triggers")?),
        leased_by: row
            .try_get::<Option<String>, _>("leased_by")?
            .map(LeaseOwner::new),
        lease_until: opt_from_micros(row.try_get("lease_until")?)?,
        last_error: row.try_get("last_error")?,
        dead_reason: row.try_get("dead_reason")?,
        dead_at: opt_from_micros(row.try_get("dead_at")?)?,
    })
}

/// Checks that a lease-guarded statement touched its row.
fn require_lease(rows: u64, claim: &Claim) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            key: claim.key.clone(),
        })
    }
}

/// Claims up to `n` due keys (see `WorkQueue::claim_due_keys`) on a connection
/// inside the caller's transaction.
pub(super) async fn claim_in(
    conn: &mut SqliteConnection,
    owner: &LeaseOwner,
    now: DateTime<Utc>,
    lease: Duration,
    n: u32,
) -> Result<Vec<Claim>> {
    let token = uuid::Uuid::new_v4().to_string();
    let lease_until = now + lease;
    // A row whose lease ran out was being worked by an instance that died or hung:
    // count that as a failed attempt, so a key that kills its worker every time
    // still reaches the dead-letter limit instead of looping forever.
    // The limit is written into the SQL, not bound: SQLite plans around a bound
    // LIMIT's value, so it re-prepared this statement on every claim. The few
    // distinct batch sizes each keep their own cached statement.
    let sql = format!(
        "UPDATE sync_queue SET leased_by = $1, lease_token = $2, lease_until = $3, \
             attempts = attempts + (lease_until IS NOT NULL), \
             last_error = CASE WHEN lease_until IS NOT NULL \
                 THEN 'lease held by ' || leased_by || ' expired' ELSE last_error END \
         WHERE sync_key IN (SELECT sync_key FROM sync_queue \
             WHERE state = 'pending' AND due_at <= $4 \
               AND (lease_until IS NULL OR lease_until <= $4) \
             ORDER BY due_at, sync_key LIMIT {}) \
         RETURNING sync_key, due_at, generation, attempts, first_enqueued_at, last_trigger, \
             triggers, last_error",
        limit(n)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner.as_str())
        .bind(&token)
        .bind(to_micros(lease_until))
        .bind(to_micros(now))
        .fetch_all(&mut *conn)
        .await?;
    let mut claims = Vec::with_capacity(rows.len());
    for row in &rows {
        let due: i64 = row.try_get("due_at")?;
        claims.push((
            due,
            Claim {
                key: parse_key(row.try_get("sync_key")?)?,
                generation: row.try_get("generation")?,
                attempts: row.try_get("attempts")?,
                first_enqueued_at: from_micros(row.try_get("first_enqueued_at")?)?,
                last_trigger: Trigger::parse(row.try_get("last_trigger")?),
                triggers: split_triggers(row.try_get("triggers")?),
                last_error: row.try_get("last_error")?,
                owner: owner.clone(),
                lease_token: token.clone(),
                lease_until,
            },
        ));
    }
    // RETURNING does not promise an order; hand keys out earliest due first.
    claims.sort_by(|a, b| (a.0, &a.1.key).cmp(&(b.0, &b.1.key)));
    Ok(claims.into_iter().map(|(_, c)| c).collect())
}

/// Settles a finished claim (see `WorkQueue::complete`) on a connection inside the
/// caller's transaction.
pub(super) async fn complete_in(
    conn: &mut SqliteConnection,
    claim: &Claim,
    now: DateTime<Utc>,
) -> Result<CompleteOutcome> {
    let key = claim.key.to_string();
    let deleted = sqlx::query(
        "DELETE FROM sync_queue WHERE sync_key = $1 AND lease_token = $2 AND generation = $3",
    )
    .bind(&key)
    .bind(&claim.lease_token)
    .bind(claim.generation)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if deleted == 1 {
        return Ok(CompleteOutcome::Removed);
    }
    // Still ours but the generation moved: a trigger arrived during the sync.
    let kept = sqlx::query(
        "UPDATE sync_queue SET leased_by = NULL, lease_token = NULL, lease_until = NULL, \
             due_at = $3, attempts = 0, last_error = NULL \
         WHERE sync_key = $1 AND lease_token = $2",
    )
    .bind(&key)
    .bind(&claim.lease_token)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    require_lease(kept, claim)?;
    Ok(CompleteOutcome::Retriggered)
}

#[async_trait]
impl WorkQueue for SqliteStore {
    async fn enqueue_many(&self, items: &[Enqueue], now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for item in items {
            upsert_queue_row(&mut tx, item, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_due_keys(
        &self,
        owner: &LeaseOwner,
        now: DateTime<Utc>,
        lease: Duration,
        n: u32,
    ) -> Result<Vec<Claim>> {
        let owner = owner.clone();
        self.writes
            .submit(|answer| Write::Claim {
                owner,
                now,
                lease,
                n,
                answer,
            })
            .await
    }

    async fn complete(&self, claim: &Claim, now: DateTime<Utc>) -> Result<CompleteOutcome> {
        let claim = Box::new(claim.clone());
        self.writes
            .submit(|answer| Write::Complete { claim, now, answer })
            .await
    }

    async fn retry_later(&self, claim: &Claim, due: DateTime<Utc>, error: &str) -> Result<()> {
        let n = sqlx::query(
            "UPDATE sync_queue SET leased_by = NULL, lease_token = NULL, lease_until = NULL, \
                 attempts = attempts + 1, due_at = $3, last_error = $4 \
             WHERE sync_key = $1 AND lease_token = $2",
        )
        .bind(claim.key.to_string())
        .bind(&claim.lease_token)
        .bind(to_micros(due))
        .bind(error)
        .execute(&self.writer)
        .await?
        .rows_affected();
        require_lease(n, claim)
    }

    async fn dead_letter(
        &self,
        claim: &Claim,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<DeadLetterOutcome> {
        // A trigger that arrived during the failing sync brings new information: as it
        // would revive a dead letter, it keeps the key alive (pending, due now, fresh).
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE sync_queue SET leased_by = NULL, lease_token = NULL, lease_until = NULL, \
                 state = CASE WHEN generation = $3 THEN 'dead' ELSE 'pending' END, \
                 dead_reason = CASE WHEN generation = $3 THEN $4 END, \
                 dead_at = CASE WHEN generation = $3 THEN $5 END, \
                 due_at = CASE WHEN generation = $3 THEN due_at ELSE $5 END, \
                 attempts = CASE WHEN generation = $3 THEN attempts ELSE 0 END, \
                 last_error = $4 \
             WHERE sync_key = $1 AND lease_token = $2 RETURNING state",
        )
        .bind(claim.key.to_string())
        .bind(&claim.lease_token)
        .bind(claim.generation)
        .bind(reason)
        .bind(to_micros(now))
        .fetch_optional(&self.writer)
        .await?;
        match state.as_deref() {
            Some("dead") => Ok(DeadLetterOutcome::DeadLettered),
            Some(_) => Ok(DeadLetterOutcome::Retriggered),
            None => Err(StoreError::LeaseLost {
                key: claim.key.clone(),
            }),
        }
    }

    async fn release(&self, claim: &Claim, now: DateTime<Utc>) -> Result<()> {
        let n = sqlx::query(
            "UPDATE sync_queue SET leased_by = NULL, lease_token = NULL, lease_until = NULL, \
                 due_at = $3 \
             WHERE sync_key = $1 AND lease_token = $2",
        )
        .bind(claim.key.to_string())
        .bind(&claim.lease_token)
        .bind(to_micros(now))
        .execute(&self.writer)
        .await?
        .rows_affected();
        require_lease(n, claim)
    }

    async fn extend_lease(&self, claim: &mut Claim, until: DateTime<Utc>) -> Result<()> {
        let n = sqlx::query(
            "UPDATE sync_queue SET lease_until = $3 WHERE sync_key = $1 AND lease_token = $2",
        )
        .bind(claim.key.to_string())
        .bind(&claim.lease_token)
        .bind(to_micros(until))
        .execute(&self.writer)
        .await?
        .rows_affected();
        require_lease(n, claim)?;
        claim.lease_until = until;
        Ok(())
    }

    async fn queue_entry(&self, key: &SyncKey) -> Result<Option<QueueEntry>> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM sync_queue WHERE sync_key = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(entry_from_row)
            .transpose()
    }

    async fn list_dead_letters(&self, n: u32) -> Result<Vec<QueueEntry>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM sync_queue WHERE state = 'dead' \
             ORDER BY dead_at DESC, sync_key LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn retry_dead_letter(&self, key: &SyncKey, now: DateTime<Utc>) -> Result<bool> {
        let n = sqlx::query(REVIVE_DEAD)
            .bind(to_micros(now))
            .bind(Some(key.to_string()))
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn retry_all_dead_letters(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query(REVIVE_DEAD)
            .bind(to_micros(now))
            .bind(None::<String>)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}

/// Brings dead letters back as fresh pending rows triggered by an operator; `$2` NULL means all.
const REVIVE_DEAD: &str = "\
UPDATE sync_queue SET state = 'pending', due_at = $1, attempts = 0, generation = generation + 1, \
    first_enqueued_at = $1, last_enqueued_at = $1, last_trigger = 'operator', triggers = 'operator', \
    dead_reason = NULL, dead_at = NULL \
WHERE state = 'dead' AND ($2 IS NULL OR sync_key = $2)";
