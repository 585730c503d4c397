//! The HTTP surface: the Partner Center webhook, health, readiness and metrics.
//! Handlers are thin: parse, call one function, map the result to a status.

mod webhook;

use crate::intake::Intake;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use refsync_store::Store;
use std::sync::{Arc, OnceLock};
use tower_http::trace::TraceLayer;

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    /// Webhook intake.
    pub intake: Intake,
    /// The store, for readiness.
    pub store: Arc<dyn Store>,
    /// The Referrals API's App+User tokens, when the engine runs: their health is
    /// part of `/readyz`.
    pub referrals_tokens: Option<Arc<refsync_outbound::token::CachedTokenSource>>,
}

/// The router for `webhook_path` plus `/healthz`, `/readyz` and `/metrics`.
pub fn router(state: AppState, webhook_path: &str) -> Router {
    Router::new()
        .route(webhook_path, post(webhook::receive_webhook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Ready (200) when the store answers: webhooks can be taken. The Partner Center
/// sign-in is reported beside it but does not gate readiness — with a refused
/// refresh token, webhooks are still stored and queued, and turning traffic away
/// would only push them into Partner Center's offline queue.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let sign_in = state.referrals_tokens.as_ref().map(|t| t.health());
    let (status, store) = match state.store.status_summary(chrono::Utc::now()).await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    let body = serde_json::json!({
        "ready": status == StatusCode::OK,
        "store": store,
        "partner_center_sign_in": sign_in,
        "login_required": sign_in.as_ref().is_some_and(|h| h.needs_login()),
    });
    (status, axum::Json(body))
}

async fn render_metrics() -> impl IntoResponse {
    match metrics_handle() {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder is installed".to_owned(),
        ),
    }
}

/// The process-wide Prometheus recorder, installed on first use. Several services
/// in one process (tests, the demo) share it.
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                describe_metrics();
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

fn describe_metrics() {
    metrics::describe_counter!(
        "refsync_webhook_accepted_total",
        "Webhook callbacks that passed verification, by signature header style."
    );
    metrics::describe_counter!(
        "refsync_webhook_rejected_total",
        "Webhook callbacks refused, by reason; nothing of them is stored."
    );
    metrics::describe_counter!(
        "refsync_webhook_duplicates_total",
        "Verified callbacks for a change already stored."
    );
}
