//! Group commit for webhook intake. Each acknowledged event must be on disk before
//! intake answers 200, and an fsync per event would cap intake at the disk's sync
//! rate. So callers hand events to one writer task that drains whatever has queued
//! up (up to `max_batch`), writes it in a single transaction, and answers every
//! caller after that one commit. Under load, batches grow and the fsync cost is
//! shared; when idle, a lone event is written at once, so latency stays one commit.

use crate::error::{Result, StoreError};
use crate::event::{NewEvent, RecordOutcome};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A backend's way of writing a batch of events in one transaction.
#[async_trait]
pub(crate) trait EventBatchWriter: Send + Sync + 'static {
    /// Writes every event and enqueues its keys in one transaction; one outcome per
    /// event, in order. Either all are committed or none.
    async fn write_batch(&self, events: &[NewEvent]) -> Result<Vec<RecordOutcome>>;
}

// Most messages are events, so the size difference to `Stop` costs nothing; boxing
// would add an allocation per event on the hot path.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Event(NewEvent, oneshot::Sender<Result<RecordOutcome>>),
    Stop(oneshot::Sender<()>),
}

/// The handle callers submit events through.
pub(crate) struct GroupCommit {
    tx: mpsc::Sender<Msg>,
}

impl GroupCommit {
    /// Starts the writer task on the current Tokio runtime.
    pub(crate) fn start(writer: Arc<dyn EventBatchWriter>, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        // Room for a few batches: enough to keep the writer busy, small enough that a
        // stalled disk pushes back on intake instead of buffering without bound.
        let (tx, rx) = mpsc::channel(max_batch * 4);
        tokio::spawn(run_writer(writer, rx, max_batch));
        Self { tx }
    }

    /// Submits one event and waits until its batch is committed.
    pub(crate) async fn submit(&self, event: NewEvent) -> Result<RecordOutcome> {
        let (answer, answered) = oneshot::channel();
        self.tx
            .send(Msg::Event(event, answer))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answered.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Stops accepting events, writes what is already queued, then returns.
    pub(crate) async fn shutdown(&self) {
        let (ack, acked) = oneshot::channel();
        if self.tx.send(Msg::Stop(ack)).await.is_ok() {
            let _ = acked.await;
        }
    }
}

async fn run_writer(
    writer: Arc<dyn EventBatchWriter>,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
) {
    let mut msgs = Vec::with_capacity(max_batch);
    let mut stop_acks = Vec::new();
    // `recv_many` waits for at least one message and takes whatever else is queued;
    // it returns 0 only once the channel is closed and empty.
    while rx.recv_many(&mut msgs, max_batch).await > 0 {
        let mut events = Vec::with_capacity(msgs.len());
        let mut answers = Vec::with_capacity(msgs.len());
        for msg in msgs.drain(..) {
            match msg {
                Msg::Event(e, a) => {
                    events.push(e);
                    answers.push(a);
                }
                Msg::Stop(ack) => {
                    // Refuse new events but keep draining the ones already queued.
                    rx.close();
                    stop_acks.push(ack);
                }
            }
        }
        if !events.is_empty() {
            write_and_answer(writer.as_ref(), events, answers).await;
        }
    }
    for ack in stop_acks {
        let _ = ack.send(());
    }
}

async fn write_and_answer(
    writer: &dyn EventBatchWriter,
    events: Vec<NewEvent>,
    answers: Vec<oneshot::Sender<Result<RecordOutcome>>>,
) {
    metrics::histogram!("refsync_store_event_batch_size").record(events.len() as f64);
    match writer.write_batch(&events).await {
        Ok(outcomes) if outcomes.len() == events.len() => {
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                // A caller that gave up waiting still had its event committed; the
                // sender's redelivery will be a duplicate.
                let _ = answer.send(Ok(outcome));
            }
        }
        result => {
            if let Err(e) = &result {
                tracing::warn!(error = %e, batch = events.len(), "event batch failed; writing one by one");
            }
            // One bad event must not fail its neighbours: retry each on its own so
            // every caller gets its own answer.
            for (event, answer) in events.into_iter().zip(answers) {
                let one = writer
                    .write_batch(std::slice::from_ref(&event))
                    .await
                    .and_then(|mut v| {
                        v.pop()
                            .ok_or_else(|| StoreError::Corrupt("writer returned no outcome".into()))
                    });
                let _ = answer.send(one);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DedupeKey, EventId, EventOutcome, SignatureHeaders};
    use chrono::Utc;
    use refsync_core::EventName;
    use std::sync::Mutex;

    /// Records batch sizes; fails any batch containing a body of "bad".
    struct FakeWriter {
        batches: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl EventBatchWriter for FakeWriter {
        async fn write_batch(&self, events: &[NewEvent]) -> Result<Vec<RecordOutcome>> {
            self.batches.lock().unwrap().push(events.len());
            if events.iter().any(|e| e.body == b"bad") {
                return Err(StoreError::Corrupt("bad event".into()));
            }
            Ok(events
                .iter()
                .map(|e| RecordOutcome::Recorded {
                    id: EventId(e.body.len() as i64),
                })
                .collect())
        }
    }

    fn event(body: &[u8]) -> NewEvent {
        let now = Utc::now();
        NewEvent {
            dedupe_key: DedupeKey::from_stored(String::from_utf8_lossy(body)),
            event_name: EventName::TestCreated,
            referral_id: None,
            resource_change_utc: now,
            received_at: now,
            body: body.to_vec(),
            signature: SignatureHeaders::default(),
            outcome: EventOutcome::Acknowledged,
            enqueue: vec![],
        }
    }

    #[tokio::test]
    async fn queued_events_share_a_batch_and_a_bad_one_fails_alone() {
        let fake = Arc::new(FakeWriter {
            batches: Mutex::new(vec![]),
        });
        let gc = Arc::new(GroupCommit::start(fake.clone(), 64));
        // On a current-thread runtime the writer cannot run until every submitter
        // has queued its event, so all ten land in one batch.
        let mut tasks = Vec::new();
        for i in 0..10 {
            let gc = gc.clone();
            let body = if i == 3 {
                b"bad".to_vec()
            } else {
                vec![b'x'; i + 1]
            };
            tasks.push(tokio::spawn(async move { gc.submit(event(&body)).await }));
        }
        let mut ok = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(RecordOutcome::Recorded { id }) => {
                    assert_eq!(id, EventId(i as i64 + 1));
                    ok += 1;
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => {
                    assert_eq!(i, 3);
                    assert!(e.to_string().contains("bad event"));
                }
            }
        }
        assert_eq!(ok, 9);
        let batches = fake.batches.lock().unwrap().clone();
        assert_eq!(
            batches[0], 10,
            "first attempt takes the whole burst: {batches:?}"
        );
        assert_eq!(batches[1..], [1; 10], "then one by one: {batches:?}");
    }

    #[tokio::test]
    async fn shutdown_drains_then_refuses() {
        let fake = Arc::new(FakeWriter {
            batches: Mutex::new(vec![]),
        });
        let gc = GroupCommit::start(fake.clone(), 8);
        assert!(gc.submit(event(b"a")).await.is_ok());
        gc.shutdown().await;
        assert!(matches!(
            gc.submit(event(b"b")).await,
            Err(StoreError::WriterStopped)
        ));
        assert_eq!(fake.batches.lock().unwrap().len(), 1);
    }
}
