//! The control API, mounted at `/_emulator/partner-center` (no authentication;
//! fault rules never apply to it). Every operation is also a Rust method.
//!
//! | method and path | body | effect |
//! |---|---|---|
//! | `GET /referrals` | | every referral, in creation order |
//! | `POST /referrals` | `{"count"}` or `{"referral"}`, optional `"co_sell_pair": true` | send referrals as Microsoft (201) |
//! | `GET /referrals/{id}` | | one referral |
//! | `PATCH /referrals/{id}` | [`MicrosoftUpdate`] | change fields as Microsoft |
//! | `POST /referrals/{id}/{accept,decline,expire,win,lose}` | optional `{"statusReason"}` | change status as Microsoft |
//! | `GET /registration`, `DELETE /registration` | | the webhook registration |
//! | `GET /deliveries` | | the delivery log (`deliveries`, `attempts`) |
//! | `POST /deliveries/wait-idle?timeout_ms=` | | 200 once nothing is pending, 504 on timeout |
//! | `GET /offline-queue`, `POST /offline-queue/redeliver` | | the offline queue |
//! | `GET/POST/DELETE /delivery-faults`, `DELETE /delivery-faults/{id}` | [`DeliveryFaultRule`] | delivery faults |
//! | `POST /delivery-faults/release-held` | | send held deliveries |
//! | `GET /ca.pem` | | the root certificate |

use super::PartnerCenterEmulator;
use super::delivery::{
    DeliveryAttempt, DeliveryFaultRule, DeliveryFaultStatus, DeliveryRecord, OfflineEntry,
};
use super::error::ApiError;
use super::microsoft::{MicrosoftChange, MicrosoftUpdate};
use super::registration::WebhookRegistration;
use crate::faults::FaultError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Most referrals one control call may generate.
const MAX_GENERATED: usize = 10_000;

/// Why a control operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    /// No referral has that id.
    #[error("no referral with id {0:?}")]
    NotFound(String),
    /// The service's rules refuse the change (body, status transition, …).
    #[error("{}", .0.description)]
    Refused(ApiError),
}

impl From<ApiError> for ControlError {
    fn from(e: ApiError) -> Self {
        ControlError::Refused(e)
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        match self {
            ControlError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": self.to_string() })),
            )
                .into_response(),
            ControlError::Refused(e) => e.into_response(),
        }
    }
}

/// The delivery log: deliveries and every attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryLog {
    /// Deliveries, oldest first.
    pub deliveries: Vec<DeliveryRecord>,
    /// Attempts, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

impl PartnerCenterEmulator {
    /// Every referral, in creation order.
    pub fn referrals(&self) -> Vec<Value> {
        let state = self.state();
        let mut all: Vec<_> = state.store.iter().collect();
        all.sort_by_key(|r| r.seq);
        all.into_iter().map(|r| r.value.clone()).collect()
    }

    /// One referral.
    pub fn referral(&self, id: &str) -> Option<Value> {
        self.state().store.get(id).map(|r| r.value.clone())
    }

    /// The webhook registration, if any.
    pub fn registration(&self) -> Option<WebhookRegistration> {
        self.state().registration.registration.clone()
    }

    /// Removes the webhook registration; false when there was none.
    pub fn remove_registration(&self) -> bool {
        self.state().registration.registration.take().is_some()
    }

    /// The delivery log.
    pub fn delivery_log(&self) -> DeliveryLog {
        DeliveryLog {
            deliveries: self.delivery().deliveries(),
            attempts: self.delivery().attempts(),
        }
    }

    /// The offline queue.
    pub fn offline_queue(&self) -> Vec<OfflineEntry> {
        self.delivery().offline()
    }

    /// Delivers the offline queue again; returns how many deliveries restarted.
    pub fn redeliver_offline_queue(&self) -> usize {
        self.delivery().redeliver_offline()
    }

    /// Waits until no delivery is pending (held deliveries excepted).
    pub async fn wait_for_deliveries(&self) {
        self.delivery().wait_idle().await;
    }

    /// Deliveries pending now (attempting, waiting to retry, or delayed; held ones excluded).
    pub fn deliveries_pending(&self) -> usize {
        self.delivery().pending()
    }

    /// Installs a delivery fault rule.
    pub fn install_delivery_fault(
        &self,
        rule: DeliveryFaultRule,
    ) -> Result<DeliveryFaultStatus, FaultError> {
        self.delivery().install_fault(rule)
    }

    /// The delivery fault rules and their counters.
    pub fn delivery_faults(&self) -> Vec<DeliveryFaultStatus> {
        self.delivery().faults()
    }

    /// Removes every delivery fault rule.
    pub fn clear_delivery_faults(&self) {
        self.delivery().clear_faults();
    }

    /// Removes one delivery fault rule; false when there was none with that id.
    pub fn remove_delivery_fault(&self, id: u64) -> bool {
        self.delivery().remove_fault(id)
    }

    /// Sends every held delivery now; returns how many.
    pub fn release_held_deliveries(&self) -> usize {
        self.delivery().release_held()
    }
}

pub(crate) fn router() -> Router<PartnerCenterEmulator> {
    Router::new()
        .route("/referrals", get(list_referrals).post(create_referrals))
        .route("/referrals/{id}", get(get_referral).patch(update_referral))
        .route("/referrals/{id}/{action}", post(change_status))
        .route(
            "/registration",
            get(get_registration).delete(delete_registration),
        )
        .route("/deliveries", get(deliveries))
        .route("/deliveries/wait-idle", post(wait_idle))
        .route("/offline-queue", get(offline_queue))
        .route("/offline-queue/redeliver", post(redeliver))
        .route(
            "/delivery-faults",
            get(list_faults).post(install_fault).delete(clear_faults),
        )
        .route("/delivery-faults/release-held", post(release_held))
        .route("/delivery-faults/{id}", delete(remove_fault))
        .route("/ca.pem", get(root_pem))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.into() })),
    )
        .into_response()
}

async fn list_referrals(State(pc): State<PartnerCenterEmulator>) -> Response {
    Json(json!({ "value": pc.referrals() })).into_response()
}

/// `POST /referrals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    count: Option<usize>,
    referral: Option<Value>,
    #[serde(default)]
    co_sell_pair: bool,
}

async fn create_referrals(
    State(pc): State<PartnerCenterEmulator>,
    body: Result<Json<CreateRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(r)) => r,
        Err(e) => return bad_request(e.body_text()),
    };
    let created = match (request.count, request.referral, request.co_sell_pair) {
        (Some(n), None, _) if n > MAX_GENERATED => {
            return bad_request(format!("count must be at most {MAX_GENERATED}"));
        }
        (Some(n), None, false) => json!({ "created": pc.send_generated_referrals(n) }),
        (Some(n), None, true) => json!({ "pairs": pc.open_generated_cosells(n) }),
        (None, Some(body), false) => match pc.send_referral(body) {
            Ok(r) => json!({ "created": [r] }),
            Err(e) => return e.into_response(),
        },
        (None, Some(body), true) => match pc.open_cosell(body) {
            Ok(pair) => json!({ "pairs": [pair] }),
            Err(e) => return e.into_response(),
        },
        _ => return bad_request("give either count or referral"),
    };
    (StatusCode::CREATED, Json(created)).into_response()
}

async fn get_referral(State(pc): State<PartnerCenterEmulator>, Path(id): Path<String>) -> Response {
    match pc.referral(&id) {
        Some(r) => Json(r).into_response(),
        None => ControlError::NotFound(id).into_response(),
    }
}

async fn update_referral(
    State(pc): State<PartnerCenterEmulator>,
    Path(id): Path<String>,
    body: Result<Json<MicrosoftUpdate>, JsonRejection>,
) -> Response {
    let update = match body {
        Ok(Json(u)) => u,
        Err(e) => return bad_request(e.body_text()),
    };
    match pc.microsoft_change(&id, MicrosoftChange::Update(update)) {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Optional body of the status actions.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StatusBody {
    status_reason: Option<String>,
}

async fn change_status(
    State(pc): State<PartnerCenterEmulator>,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<StatusBody>(&body) {
            Ok(b) => b.status_reason,
            Err(e) => return bad_request(e.to_string()),
        }
    };
    let change = match action.as_str() {
        "accept" => MicrosoftChange::Accept,
        "decline" => MicrosoftChange::Decline(reason),
        "expire" => MicrosoftChange::Expire,
        "win" => MicrosoftChange::Win,
        "lose" => MicrosoftChange::Lose(reason),
        other => {
            return bad_request(format!(
                "unknown action {other:?}; use accept, decline, expire, win or lose"
            ));
        }
    };
    match pc.microsoft_change(&id, change) {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_registration(State(pc): State<PartnerCenterEmulator>) -> Response {
    match pc.registration() {
        Some(r) => Json(r).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no webhook registration" })),
        )
            .into_response(),
    }
}

async fn delete_registration(State(pc): State<PartnerCenterEmulator>) -> StatusCode {
    if pc.remove_registration() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn deliveries(State(pc): State<PartnerCenterEmulator>) -> Response {
    Json(pc.delivery_log()).into_response()
}

/// `?timeout_ms=`.
#[derive(Debug, Deserialize)]
struct WaitQuery {
    timeout_ms: Option<u64>,
}

async fn wait_idle(
    State(pc): State<PartnerCenterEmulator>,
    Query(q): Query<WaitQuery>,
) -> Response {
    let limit = Duration::from_millis(q.timeout_ms.unwrap_or(10_000).min(60_000));
    match tokio::time::timeout(limit, pc.wait_for_deliveries()).await {
        Ok(()) => Json(json!({ "idle": true })).into_response(),
        Err(_) => (StatusCode::GATEWAY_TIMEOUT, Json(json!({ "idle": false }))).into_response(),
    }
}

async fn offline_queue(State(pc): State<PartnerCenterEmulator>) -> Response {
    Json(json!({ "value": pc.offline_queue() })).into_response()
}

async fn redeliver(State(pc): State<PartnerCenterEmulator>) -> Response {
    Json(json!({ "redelivered": pc.redeliver_offline_queue() })).into_response()
}

async fn list_faults(State(pc): State<PartnerCenterEmulator>) -> Response {
    Json(json!({ "rules": pc.delivery_faults() })).into_response()
}

async fn install_fault(
    State(pc): State<PartnerCenterEmulator>,
    body: Result<Json<DeliveryFaultRule>, JsonRejection>,
) -> Response {
    let rule = match body {
        Ok(Json(r)) => r,
        Err(e) => return bad_request(e.body_text()),
    };
    match pc.install_delivery_fault(rule) {
        Ok(status) => (StatusCode::CREATED, Json(status)).into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

async fn clear_faults(State(pc): State<PartnerCenterEmulator>) -> StatusCode {
    pc.clear_delivery_faults();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(pc): State<PartnerCenterEmulator>, Path(id): Path<u64>) -> StatusCode {
    if pc.remove_delivery_fault(id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn release_held(State(pc): State<PartnerCenterEmulator>) -> Response {
    Json(json!({ "released": pc.release_held_deliveries() })).into_response()
}

async fn root_pem(State(pc): State<PartnerCenterEmulator>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        pc.root_ca_pem().to_owned(),
    )
        .into_response()
}
