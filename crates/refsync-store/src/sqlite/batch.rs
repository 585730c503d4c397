//! Group commit for the workers' writes on SQLite. Every sync claims its key,
//! saves its link and completes its claim: three write transactions, each a WAL
//! fsync under `synchronous=FULL`, all behind the one writer connection. With many
//! workers those commits queue up behind each other, so instead the writes go to
//! one task that takes whatever has queued (up to `max_batch`), runs each in its own
//! savepoint inside one transaction, commits once, and then answers every caller.
//!
//! A savepoint per write keeps writes independent: one that fails (a lost lease, a
//! version conflict) is rolled back alone and answered with its own error, while the
//! rest commit. Completions, whose failures change nothing, skip theirs. Nobody is answered before the commit, so a caller told "saved" is
//! on disk. When idle a lone write is committed at once: latency stays one commit.

use super::links::save_link_in;
use super::queue::{claim_in, complete_in};
use crate::audit::NewAuditEntry;
use crate::error::{Result, StoreError};
use crate::link::SyncLink;
use crate::queue::{Claim, CompleteOutcome, LeaseOwner};
use chrono::{DateTime, Duration, Utc};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// One write, with where its answer goes.
pub(super) enum Write {
    /// `claim_due_keys`.
    Claim {
        owner: LeaseOwner,
        now: DateTime<Utc>,
        lease: Duration,
        n: u32,
        answer: oneshot::Sender<Result<Vec<Claim>>>,
    },
    /// `complete`.
    Complete {
        claim: Box<Claim>,
        now: DateTime<Utc>,
        answer: oneshot::Sender<Result<CompleteOutcome>>,
    },
    /// `save_link_with_audit`.
    SaveLink {
        link: Box<SyncLink>,
        audit: Vec<NewAuditEntry>,
        now: DateTime<Utc>,
        answer: oneshot::Sender<Result<SyncLink>>,
    },
}

impl Write {
    /// Runs the write on a connection inside the batch's transaction.
    async fn run(self, conn: &mut SqliteConnection) -> Ran {
        match self {
            Write::Claim {
                owner,
                now,
                lease,
                n,
                answer,
            } => Ran::new(claim_in(conn, &owner, now, lease, n).await, answer),
            Write::Complete { claim, now, answer } => {
                Ran::new(complete_in(conn, &claim, now).await, answer)
            }
            Write::SaveLink {
                link,
                audit,
                now,
                answer,
            } => Ran::new(save_link_in(conn, &link, &audit, now).await, answer),
        }
    }

    /// True when a failure of this write leaves nothing behind, so it needs no
    /// savepoint (two more round trips to the writer) of its own. A completion is
    /// a DELETE, then maybe an UPDATE: it fails either because no row matched, or
    /// with an error SQLite undoes along with the statement. A claim's rows are
    /// decoded after its UPDATE, and a link save writes audit rows after the link,
    /// so those two keep theirs.
    fn fails_without_changes(&self) -> bool {
        matches!(self, Write::Complete { .. })
    }

    /// Answers a write that never ran.
    fn refuse(self, message: &str) {
        let failed = || StoreError::CommitFailed(message.to_owned());
        // A caller that gave up waiting has nothing to be told.
        match self {
            Write::Claim { answer, .. } => drop(answer.send(Err(failed()))),
            Write::Complete { answer, .. } => drop(answer.send(Err(failed()))),
            Write::SaveLink { answer, .. } => drop(answer.send(Err(failed()))),
        }
    }
}

/// A write that has run inside the batch: whether it succeeded, and how to answer
/// its caller once the batch's commit is known.
struct Ran {
    succeeded: bool,
    answer: Answer,
}

/// Answers a caller, given why the batch's commit failed (`None`: committed).
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

impl Ran {
    fn new<T: Send + 'static>(result: Result<T>, answer: oneshot::Sender<Result<T>>) -> Self {
        Self {
            succeeded: result.is_ok(),
            // The caller's own result once committed, the commit's failure if not.
            answer: Box::new(move |commit_failure| {
                let answered = match commit_failure {
                    None => result,
                    Some(e) => Err(StoreError::CommitFailed(e.to_owned())),
                };
                drop(answer.send(answered));
            }),
        }
    }
}

/// The handle the store submits writes through.
pub(super) struct WriteBatcher {
    tx: mpsc::Sender<Write>,
    /// Batches committed so far (what the tests check batching by).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

impl WriteBatcher {
    /// Starts the batching task on the current Tokio runtime.
    pub(super) fn start(writer: SqlitePool, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(writer, rx, max_batch, Arc::clone(&commits)));
        Self { tx, commits }
    }

    /// Batches committed so far.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Submits a write built around its answer channel and waits for the answer.
    pub(super) async fn submit<T>(
        &self,
        write: impl FnOnce(oneshot::Sender<Result<T>>) -> Write,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        self.tx
            .send(write(answer))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answered.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(
    writer: SqlitePool,
    mut rx: mpsc::Receiver<Write>,
    max_batch: usize,
    commits: Arc<AtomicU64>,
) {
    let mut writes = Vec::with_capacity(max_batch);
    // Ends when the store (every sender) is dropped and the queue is drained.
    while rx.recv_many(&mut writes, max_batch).await > 0 {
        metrics::histogram!("refsync_store_write_batch_size").record(writes.len() as f64);
        match writer.acquire().await {
            Ok(mut conn) => {
                if run_batch(&mut conn, writes.drain(..)).await {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                let message = e.to_string();
                writes.drain(..).for_each(|w| w.refuse(&message));
            }
        }
    }
}

/// Runs every write in its own savepoint inside one transaction, commits, and
/// answers every caller. True when the batch was committed.
async fn run_batch(conn: &mut SqliteConnection, mut writes: impl Iterator<Item = Write>) -> bool {
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let message = e.to_string();
            writes.for_each(|w| w.refuse(&message));
            return false;
        }
    };
    let mut ran = Vec::new();
    let mut broken = None;
    while let Some(write) = writes.next() {
        if write.fails_without_changes() {
            ran.push(write.run(&mut tx).await);
            continue;
        }
        // A nested `begin` on a transaction is a savepoint; dropping it unreleased
        // rolls back to it.
        let mut savepoint = match tx.begin().await {
            Ok(sp) => sp,
            Err(e) => {
                write.refuse(&e.to_string());
                continue;
            }
        };
        let done = write.run(&mut savepoint).await;
        let settled = if done.succeeded {
            savepoint.commit().await
        } else {
            savepoint.rollback().await
        };
        ran.push(done);
        if let Err(e) = settled {
            // The transaction is in an unknown state: give up on the whole batch.
            let message = e.to_string();
            writes.for_each(|w| w.refuse(&message));
            broken = Some(message);
            break;
        }
    }
    let commit = match broken {
        Some(message) => Err(message),
        None => tx.commit().await.map_err(|e| e.to_string()),
    };
    for r in ran {
        (r.answer)(commit.as_ref().err().map(String::as_str));
    }
    commit.is_ok()
}

#[cfg(test)]
mod tests {
    use crate::queue::{Enqueue, Trigger};
    use crate::sqlite::SqliteStore;
    use crate::store::WorkQueue;
    use crate::{StoreError, StoreOptions};
    use chrono::{Duration, TimeZone, Utc};
    use refsync_core::{ReferralId, SyncKey};
    use std::sync::Arc;

    #[tokio::test]
    async fn writes_queued_together_share_one_commit_and_fail_alone() {
        let store = Arc::new(
            SqliteStore::open("sqlite::memory:", &StoreOptions::default())
                .await
                .unwrap(),
        );
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let items: Vec<_> = (0..10)
            .map(|i| {
                let key = SyncKey::Referral(ReferralId::parse(format!("r-{i}")).unwrap());
                Enqueue::now(key, Trigger::Webhook, now)
            })
            .collect();
        store.enqueue_many(&items, now).await.unwrap();
        let owner = crate::queue::LeaseOwner::new("w");
        let mut claims = store
            .claim_due_keys(&owner, now, Duration::seconds(60), 10)
            .await
            .unwrap();
        claims[3].lease_token = "not-ours".into();
        let before = store.writes.commits();
        // On a current-thread runtime the batcher runs only once every task has
        // queued its write, so all ten meet in one batch.
        let tasks: Vec<_> = claims
            .into_iter()
            .map(|claim| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.complete(&claim, now).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        assert_eq!(
            store.writes.commits() - before,
            1,
            "one commit for ten writes"
        );
        for (i, outcome) in outcomes.iter().enumerate() {
            assert_eq!(
                matches!(outcome, Err(StoreError::LeaseLost { .. })),
                i == 3,
                "{i}: {outcome:?}"
            );
        }
    }
}
