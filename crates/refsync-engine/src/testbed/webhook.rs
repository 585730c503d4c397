//! A stand-in for the binary's webhook intake, so the emulator's real deliveries
//! (with their duplicates, delays, reorderings and drops) drive the queue in tests.
//!
//! **It does not verify signatures**: it is test support only. The production
//! intake (crates/refsync) verifies every callback before anything is stored.

use crate::workers::Wakeup;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use refsync_core::{SyncKey, WebhookEvent};
use refsync_store::{Enqueue, Store, Trigger};
use std::sync::Arc;

#[derive(Clone)]
struct Intake {
    store: Arc<dyn Store>,
    wakeup: Wakeup,
}

/// The receiver's routes: `POST /webhook`.
pub(crate) fn router(store: Arc<dyn Store>, wakeup: Wakeup) -> Router {
    Router::new()
        .route("/webhook", post(receive))
        .with_state(Intake { store, wakeup })
}

async fn receive(State(intake): State<Intake>, body: Bytes) -> StatusCode {
    let Ok(event) = WebhookEvent::from_slice(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if !event.event_name.is_referral_event() {
        return StatusCode::OK;
    }
    let Ok(id) = event.referral_id() else {
        return StatusCode::BAD_REQUEST;
    };
    let now = chrono::Utc::now();
    let item = Enqueue::now(SyncKey::Referral(id), Trigger::Webhook, now);
    match intake.store.enqueue(item, now).await {
        Ok(()) => {
            intake.wakeup.notify();
            StatusCode::OK
        }
        // Partner Center retries what we do not acknowledge.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
