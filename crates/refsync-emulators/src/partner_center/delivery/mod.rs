//! Signed webhook delivery (partner-center.md §2.4, §2.5).
//!
//! Each event becomes a [`DeliveryRecord`]: the body is rendered once, then
//! signed once and posted on a background task with `Content-Type: application/json`,
//! `x-ms-certificate-url`, `x-ms-signature-algorithm: rsa-sha256` and the signature
//! in `Authorization` or `x-ms-signature`. A non-2xx answer or a timeout is retried
//! after the configured pauses, up to 10 attempts; then the event moves to the
//! **offline queue** and "no further attempts will be made" — unless the control
//! API redelivers it. Every attempt is written to the delivery log.
//!
//! Delivery faults ([`faults`]) duplicate, delay, hold or drop deliveries.

pub mod faults;
mod records;

pub use faults::{DeliveryFaultKind, DeliveryFaultRule, DeliveryFaultStatus};
pub use records::{DeliveryAttempt, DeliveryRecord, DeliveryState, OfflineEntry, SignatureHeader};
pub(crate) use records::{event_body, status_name};

use super::config::DeliveryConfig;
use super::signing::SigningChain;
use crate::faults::FaultError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use faults::DeliveryFaults;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// Most of a response body kept in the log.
const RESPONSE_PREVIEW_BYTES: usize = 1024;

/// An event to deliver.
#[derive(Debug, Clone)]
pub(crate) struct EventToSend {
    pub event_name: String,
    pub resource_uri: String,
    pub resource_name: String,
    pub changed_at: DateTime<Utc>,
    pub url: String,
    pub header: SignatureHeader,
}

/// A delivery ready to post: body fixed, and signed at most once, so retries and
/// duplicates send identical bytes.
#[derive(Debug, Clone)]
struct Job {
    id: u64,
    event_name: String,
    resource_uri: String,
    url: String,
    header: SignatureHeader,
    body: Bytes,
    /// Signed on the first attempt, not at enqueue: the caller holds the emulator's
    /// state lock, and an RSA-2048 signature under it would stall every API request.
    signature: Arc<OnceLock<String>>,
    duplicate: bool,
    delay: Option<Duration>,
}

#[derive(Default)]
struct EngineState {
    next_id: u64,
    records: BTreeMap<u64, DeliveryRecord>,
    attempts: VecDeque<DeliveryAttempt>,
    offline: Vec<(OfflineEntry, Job)>,
    held: Vec<Job>,
    faults: DeliveryFaults,
}

struct EngineInner {
    config: DeliveryConfig,
    certificate_url: String,
    signing: Arc<SigningChain>,
    client: reqwest::Client,
    state: Mutex<EngineState>,
    permits: Semaphore,
    /// Deliveries pending (attempting, waiting to retry, or delayed); held ones excluded.
    active: watch::Sender<usize>,
    stop: watch::Sender<bool>,
    /// The runtime the emulator was started in: deliveries run there even when the
    /// event is raised from another (a test or the bench driving the emulator).
    runtime: Option<tokio::runtime::Handle>,
}

/// The delivery engine (cheap to clone).
#[derive(Clone)]
pub(crate) struct DeliveryEngine {
    inner: Arc<EngineInner>,
}

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("webhook HTTP client: {0}")]
pub struct DeliveryClientError(String);

impl DeliveryEngine {
    pub(crate) fn new(
        config: DeliveryConfig,
        certificate_url: String,
        signing: Arc<SigningChain>,
    ) -> Result<Self, DeliveryClientError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A registered URL is called as registered; redirects are not followed (unconfirmed).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("refsync-emulator (Partner Center webhooks)")
            .build()
            .map_err(|e| DeliveryClientError(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(EngineInner {
                permits: Semaphore::new(config.max_concurrent.max(1)),
                config,
                certificate_url,
                signing,
                client,
                state: Mutex::new(EngineState {
                    next_id: 1,
                    ..EngineState::default()
                }),
                active: watch::Sender::new(0),
                stop: watch::Sender::new(false),
                runtime: tokio::runtime::Handle::try_current().ok(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, EngineState> {
        self.inner.state()
    }

    /// Schedules one event (signed when first sent); returns its delivery id.
    pub(crate) fn enqueue(&self, event: EventToSend) -> u64 {
        let body = Bytes::from(event_body(
            &event.event_name,
            &event.resource_uri,
            &event.resource_name,
            event.changed_at,
        ));
        let created_at = event.changed_at;
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let decision = state.faults.decide(&event.event_name);
        let mut job = Job {
            id,
            event_name: event.event_name,
            resource_uri: event.resource_uri,
            url: event.url,
            header: event.header,
            body,
            signature: Arc::default(),
            duplicate: false,
            delay: None,
        };
        let kind = decision.map(|d| d.kind);
        match decision {
            Some(d) if d.kind == DeliveryFaultKind::Duplicate => job.duplicate = true,
            Some(d) if d.kind == DeliveryFaultKind::Delay => job.delay = d.delay,
            _ => {}
        }
        let initial = match kind {
            Some(DeliveryFaultKind::Hold) => DeliveryState::Held,
            Some(DeliveryFaultKind::Drop) => DeliveryState::Dropped,
            _ => DeliveryState::Pending,
        };
        state.records.insert(
            id,
            DeliveryRecord {
                id,
                event_name: job.event_name.clone(),
                resource_uri: job.resource_uri.clone(),
                url: job.url.clone(),
                state: initial,
                attempts: 0,
                fault: kind.map(|k| k.as_str().to_owned()),
                created_at,
                body: String::from_utf8_lossy(&job.body).into_owned(),
            },
        );
        self.inner.prune(&mut state);
        match kind {
            Some(DeliveryFaultKind::Drop) => {
                let entry = offline_entry(&job, 0, "dropped by fault");
                state.offline.push((entry, job));
                tracing::info!(delivery_id = id, "webhook dropped by fault");
            }
            Some(DeliveryFaultKind::Hold) => state.held.push(job),
            _ => {
                drop(state);
                self.spawn(job);
            }
        }
        id
    }

    fn spawn(&self, job: Job) {
        self.inner.active.send_modify(|n| *n += 1);
        let inner = Arc::clone(&self.inner);
        let delivery = async move {
            inner.run(job).await;
            inner.active.send_modify(|n| *n = n.saturating_sub(1));
        };
        match &self.inner.runtime {
            Some(runtime) => drop(runtime.spawn(delivery)),
            None => drop(tokio::spawn(delivery)),
        }
    }

    /// Waits until no delivery is pending (held deliveries do not count).
    pub(crate) async fn wait_idle(&self) {
        let mut rx = self.inner.active.subscribe();
        // The sender lives as long as the engine, so this only ends when idle.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Deliveries pending now (held ones excluded).
    pub(crate) fn pending(&self) -> usize {
        *self.inner.active.borrow()
    }

    /// Sends every held delivery now; returns how many.
    pub(crate) fn release_held(&self) -> usize {
        let held = std::mem::take(&mut self.state().held);
        let n = held.len();
        for job in held {
            self.inner.set_state(job.id, DeliveryState::Pending);
            self.spawn(job);
        }
        n
    }

    /// Delivers the offline queue again (a fresh round of attempts each); returns how many.
    pub(crate) fn redeliver_offline(&self) -> usize {
        let parked = std::mem::take(&mut self.state().offline);
        let n = parked.len();
        for (_, mut job) in parked {
            job.delay = None;
            self.inner.set_state(job.id, DeliveryState::Pending);
            self.spawn(job);
        }
        n
    }

    /// Every delivery still in the log, oldest first.
    pub(crate) fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.state().records.values().cloned().collect()
    }

    /// One delivery.
    pub(crate) fn delivery(&self, id: u64) -> Option<DeliveryRecord> {
        self.state().records.get(&id).cloned()
    }

    /// Every attempt in the log, oldest first.
    pub(crate) fn attempts(&self) -> Vec<DeliveryAttempt> {
        self.state().attempts.iter().cloned().collect()
    }

    /// The attempts of one delivery.
    pub(crate) fn attempts_of(&self, id: u64) -> Vec<DeliveryAttempt> {
        self.state()
            .attempts
            .iter()
            .filter(|a| a.delivery_id == id)
            .cloned()
            .collect()
    }

    /// The offline queue.
    pub(crate) fn offline(&self) -> Vec<OfflineEntry> {
        self.state()
            .offline
            .iter()
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// Installs a delivery fault rule.
    pub(crate) fn install_fault(
        &self,
        rule: DeliveryFaultRule,
    ) -> Result<DeliveryFaultStatus, FaultError> {
        self.state().faults.install(rule)
    }

    /// The delivery fault rules.
    pub(crate) fn faults(&self) -> Vec<DeliveryFaultStatus> {
        self.state().faults.list()
    }

    /// Removes every delivery fault rule.
    pub(crate) fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Removes one delivery fault rule.
    pub(crate) fn remove_fault(&self, id: u64) -> bool {
        self.state().faults.remove(id)
    }

    /// Stops retrying: pending deliveries end after their current attempt.
    pub(crate) fn stop(&self) {
        self.inner.stop.send_replace(true);
    }
}

fn offline_entry(job: &Job, attempts: u32, last_error: &str) -> OfflineEntry {
    OfflineEntry {
        delivery_id: job.id,
        event_name: job.event_name.clone(),
        resource_uri: job.resource_uri.clone(),
        url: job.url.clone(),
        attempts,
        last_error: last_error.to_owned(),
        parked_at: Utc::now(),
    }
}

impl EngineInner {
    fn state(&self) -> MutexGuard<'_, EngineState> {
        // A poisoned lock means a panic mid-update elsewhere; the log is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sign(&self, body: &[u8]) -> String {
        self.signing.sign(body).unwrap_or_else(|e| {
            // Cannot happen with a generated RSA key; deliver unsigned rather than not at all.
            tracing::error!(error = %e, "signing a webhook body failed");
            String::new()
        })
    }

    fn set_state(&self, id: u64, new_state: DeliveryState) {
        if let Some(r) = self.state().records.get_mut(&id) {
            r.state = new_state;
        }
    }

    /// Keeps the log within `log_capacity`: oldest finished deliveries and attempts go first.
    fn prune(&self, state: &mut EngineState) {
        let cap = self.config.log_capacity.max(1);
        while state.attempts.len() > cap {
            state.attempts.pop_front();
        }
        if state.records.len() > cap {
            let finished: Vec<u64> = state
                .records
                .values()
                .filter(|r| r.state == DeliveryState::Delivered)
                .map(|r| r.id)
                .take(state.records.len() - cap)
                .collect();
            for id in finished {
                state.records.remove(&id);
            }
        }
    }

    /// Sleeps unless the engine stops first; false when stopped.
    async fn pause(&self, duration: Duration) -> bool {
        let mut stop = self.stop.subscribe();
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    async fn run(&self, job: Job) {
        if let Some(delay) = job.delay
            && !self.pause(delay).await
        {
            return;
        }
        let max = self.config.max_attempts.max(1);
        let mut last_error = String::new();
        for attempt in 1..=max {
            let outcome = self.attempt(&job, attempt, false).await;
            if outcome.succeeded() {
                self.set_state(job.id, DeliveryState::Delivered);
                if job.duplicate {
                    self.attempt(&job, attempt, true).await;
                }
                return;
            }
            last_error = match (outcome.status, &outcome.error) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(e)) => e.clone(),
                (None, None) => "no response".to_owned(),
            };
            if attempt < max && !self.pause(self.config.pause_after(attempt)).await {
                return;
            }
        }
        tracing::warn!(delivery_id = job.id, url = %job.url, attempts = max, %last_error,
            "webhook moved to the offline queue");
        let mut state = self.state();
        if let Some(r) = state.records.get_mut(&job.id) {
            r.state = DeliveryState::Offline;
        }
        let entry = offline_entry(&job, max, &last_error);
        state.offline.push((entry, job));
    }

    async fn attempt(&self, job: &Job, attempt: u32, duplicate: bool) -> DeliveryAttempt {
        let _permit = self.permits.acquire().await;
        let signature = job.signature.get_or_init(|| self.sign(&job.body));
        let at = Utc::now();
        let signature_header = match job.header {
            SignatureHeader::Authorization => "authorization",
            SignatureHeader::MsSignature => "x-ms-signature",
        };
        let sent = self
            .client
            .post(&job.url)
            .header("content-type", "application/json")
            .header("x-ms-certificate-url", &self.certificate_url)
            .header("x-ms-signature-algorithm", "rsa-sha256")
            .header(signature_header, format!("Signature {signature}"))
            .body(job.body.clone())
            .send()
            .await;
        let (status, error, response) = match sent {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let mut preview = Vec::new();
                while preview.len() < RESPONSE_PREVIEW_BYTES {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => preview.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                preview.truncate(RESPONSE_PREVIEW_BYTES);
                (
                    Some(status),
                    None,
                    String::from_utf8_lossy(&preview).into_owned(),
                )
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    "timeout".to_owned()
                } else if e.is_connect() {
                    "connection failed".to_owned()
                } else {
                    format!("request failed: {e}")
                };
                (None, Some(why), String::new())
            }
        };
        let record = DeliveryAttempt {
            delivery_id: job.id,
            event_name: job.event_name.clone(),
            resource_uri: job.resource_uri.clone(),
            url: job.url.clone(),
            attempt,
            duplicate,
            status,
            error,
            response,
            at,
        };
        tracing::debug!(delivery_id = job.id, attempt, duplicate, status = ?record.status,
            error = ?record.error, "webhook attempt");
        let mut state = self.state();
        if !duplicate && let Some(r) = state.records.get_mut(&job.id) {
            r.attempts = attempt;
        }
        state.attempts.push_back(record.clone());
        self.prune(&mut state);
        record
    }
}
