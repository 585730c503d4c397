//! The Entra control API, mounted at `/_emulator/entra`:
//!
//! | method and path | body | effect |
//! |---|---|---|
//! | `GET /device-codes` | | device codes issued, with their state |
//! | `POST /device-codes/{user_code}/approve` | `{"username"}` | approve as that user |
//! | `POST /device-codes/{user_code}/decline` | | decline |
//! | `POST /users/{username}/revoke-refresh-tokens` | | revoke the user's refresh tokens |
//! | `GET /token-lifetime`, `PUT /token-lifetime` | `{"seconds"}` | lifetime of new access tokens |
//! | `POST /expire-access-tokens` | | expire every access token issued so far |
//! | `POST /clock/advance` | `{"seconds"}` | move the authority's clock forward |
//! | `GET /counters` | | tokens issued per grant, errors per kind |
//!
//! Each is also a method on [`EntraAuthority`].

use super::{EntraAuthority, EntraError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Body of the approve call.
#[derive(Debug, Deserialize)]
struct Approve {
    username: String,
}

/// A number of seconds.
#[derive(Debug, Deserialize)]
struct Seconds {
    seconds: u64,
}

pub(crate) fn router(authority: EntraAuthority) -> Router {
    Router::new()
        .route("/device-codes", get(list_device_codes))
        .route("/device-codes/{user_code}/approve", post(approve))
        .route("/device-codes/{user_code}/decline", post(decline))
        .route("/users/{username}/revoke-refresh-tokens", post(revoke))
        .route("/token-lifetime", get(get_lifetime).put(set_lifetime))
        .route("/expire-access-tokens", post(expire))
        .route("/clock/advance", post(advance_clock))
        .route("/counters", get(counters))
        .with_state(authority)
}

fn control_error(e: &EntraError) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": e.to_string() })),
    )
        .into_response()
}

async fn list_device_codes(State(a): State<EntraAuthority>) -> Response {
    Json(json!({ "device_codes": a.device_codes() })).into_response()
}

async fn approve(
    State(a): State<EntraAuthority>,
    Path(user_code): Path<String>,
    Json(body): Json<Approve>,
) -> Response {
    match a.approve_device_code(&user_code, &body.username) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(&e),
    }
}

async fn decline(State(a): State<EntraAuthority>, Path(user_code): Path<String>) -> Response {
    match a.decline_device_code(&user_code) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(&e),
    }
}

async fn revoke(State(a): State<EntraAuthority>, Path(username): Path<String>) -> Response {
    Json(json!({ "revoked": a.revoke_refresh_tokens(&username) })).into_response()
}

async fn get_lifetime(State(a): State<EntraAuthority>) -> Response {
    Json(json!({ "seconds": a.token_lifetime().as_secs() })).into_response()
}

async fn set_lifetime(State(a): State<EntraAuthority>, Json(body): Json<Seconds>) -> Response {
    if body.seconds == 0 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "seconds must be at least 1" })),
        )
            .into_response();
    }
    a.set_token_lifetime(Duration::from_secs(body.seconds));
    Json(json!({ "seconds": body.seconds })).into_response()
}

async fn expire(State(a): State<EntraAuthority>) -> Response {
    Json(json!({ "expired": a.expire_access_tokens() })).into_response()
}

async fn advance_clock(State(a): State<EntraAuthority>, Json(body): Json<Seconds>) -> Response {
    a.advance_clock(Duration::from_secs(body.seconds));
    Json(json!({ "now": a.now() })).into_response()
}

async fn counters(State(a): State<EntraAuthority>) -> Response {
    Json(a.counters()).into_response()
}
