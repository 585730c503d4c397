//! Webhook intake: the one path from an HTTP request to the durable queue.
//!
//! A callback is verified (signature, certificate chain, organization — see
//! `refsync_partner_center::callback`), then committed to the store together with
//! the sync key it names, and only after that commit does the caller answer 200.
//! Nothing unverified is stored; a redelivery of the same change is acknowledged
//! without storing anything new.

use chrono::{DateTime, Utc};
use refsync_core::event::EventError;
use refsync_core::ids::SyncKey;
use refsync_engine::Wakeup;
use refsync_partner_center::callback::{
    CallbackRejection, CallbackVerifier, UnverifiedCallback, VerifiedCallback,
};
use refsync_store::{DedupeKey, EventOutcome, NewEvent, RecordOutcome, SignatureHeaders, Store};
use std::sync::Arc;
use thiserror::Error;

/// Why a callback was not accepted.
#[derive(Debug, Error)]
pub enum IntakeError {
    /// Authentication or validation failed; the rejection carries status and reason.
    #[error("callback refused: {0}")]
    Rejected(#[from] CallbackRejection),
    /// A verified referral event whose `ResourceUri` names no usable referral.
    #[error("referral event without a usable referral id: {0}")]
    BadResourceUri(EventError),
    /// The store could not commit the event; Partner Center will redeliver.
    #[error("could not store the event: {0}")]
    Store(#[from] refsync_store::StoreError),
}

/// What happened to an accepted callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Stored, and the referral's key enqueued.
    Enqueued(SyncKey),
    /// Stored; not a referral event, so nothing to sync.
    Acknowledged,
    /// The same change was delivered before; nothing new stored.
    Duplicate,
}

/// Everything intake needs; cheap to clone into each request.
#[derive(Clone)]
pub struct Intake {
    verifier: CallbackVerifier,
    store: Arc<dyn Store>,
    work_arrived: Wakeup,
}

impl Intake {
    /// Builds intake over a verifier and a store; `work_arrived` wakes in-process workers.
    pub fn new(verifier: CallbackVerifier, store: Arc<dyn Store>, work_arrived: Wakeup) -> Self {
        Self {
            verifier,
            store,
            work_arrived,
        }
    }

    /// The largest body the verifier accepts (the HTTP layer reads at most one byte more).
    pub fn max_body_bytes(&self) -> usize {
        self.verifier.max_body_bytes()
    }

    /// Verifies a callback and, if it is authentic, commits it durably.
    pub async fn accept_callback(
        &self,
        callback: UnverifiedCallback,
        now: DateTime<Utc>,
    ) -> Result<IntakeOutcome, IntakeError> {
        let verified = self.verifier.verify_callback(callback, now).await?;
        let event = event_to_store(&verified, now)?;
        let key = event.enqueue.first().cloned();
        match self.store.record_event(event).await? {
            RecordOutcome::Duplicate => {
                metrics::counter!("refsync_webhook_duplicates_total").increment(1);
                Ok(IntakeOutcome::Duplicate)
            }
            RecordOutcome::Recorded { .. } => match key {
                Some(key) => {
                    self.work_arrived.notify();
                    Ok(IntakeOutcome::Enqueued(key))
                }
                None => Ok(IntakeOutcome::Acknowledged),
            },
        }
    }
}

/// The store row for a verified callback: referral events enqueue their referral
/// (for `related-referral-*`, the related referral: the engine follows it to ours).
fn event_to_store(
    verified: &VerifiedCallback,
    now: DateTime<Utc>,
) -> Result<NewEvent, IntakeError> {
    let event = verified.event();
    let referral_id = if event.event_name.is_referral_event() {
        Some(event.referral_id().map_err(IntakeError::BadResourceUri)?)
    } else {
        None
    };
    let headers = verified.signature_headers();
    let enqueue: Vec<SyncKey> = referral_id.iter().cloned().map(SyncKey::Referral).collect();
    Ok(NewEvent {
        dedupe_key: DedupeKey::for_event(
            &event.event_name,
            referral_id.as_ref(),
            event.resource_change_utc_date,
        ),
        event_name: event.event_name.clone(),
        referral_id,
        resource_change_utc: event.resource_change_utc_date,
        received_at: now,
        body: verified.body().to_vec(),
        signature: SignatureHeaders {
            signature: Some(headers.signature().to_owned()),
            certificate_url: Some(headers.certificate_url().to_owned()),
            algorithm: Some(headers.algorithm().to_owned()),
        },
        outcome: if enqueue.is_empty() {
            EventOutcome::Acknowledged
        } else {
            EventOutcome::Enqueued
        },
        enqueue,
    })
}
