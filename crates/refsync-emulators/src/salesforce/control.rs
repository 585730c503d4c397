//! The control API under `/_emulator/salesforce/` for tests and the demo. It
//! needs no token and spends no API calls (fault rules never touch it either):
//!
//! - `GET /records/{Object}[?deleted=true]` lists records, `GET /records/{Object}/{id}` shows one;
//! - `POST /records/{Object}`, `PATCH|DELETE /records/{Object}/{id}` write **as a user**
//!   (`?as=<username or user id>`, default `default_human_user`), with the same
//!   validation as the API, so the record's `LastModifiedById` is a human and the
//!   sync engine sees a CRM-side edit;
//! - `POST /leads/{id}/convert` converts a lead as a user (body: [`LeadConversion`], all optional),
//!   answering `{accountId, contactId, opportunityId}`;
//! - `GET /users` lists users with their ids;
//! - `GET|DELETE /usage` shows or resets API usage; `PUT /limits` `{"daily_api_requests":N}` sets the allocation;
//! - `GET /clock`, `POST /clock` `{"advance_secs":N}` or `{"now":"…"}` (manual clock only);
//! - `DELETE /sessions` ends every session (the next API call gets `INVALID_SESSION_ID`).

use super::error::SfError;
use super::ids::SfId;
use super::org::{Converted, LeadConversion, WriteCtx};
use super::value::{format_datetime, parse_datetime};
use super::{SalesforceEmulator, Shared, api::sobjects::render_record};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::TimeDelta;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The control router, to be nested at `/_emulator/salesforce`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/records/{object}", get(list).post(create))
        .route(
            "/records/{object}/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/leads/{id}/convert", axum::routing::post(convert))
        .route("/users", get(users))
        .route("/usage", get(usage).delete(reset_usage))
        .route("/limits", put(set_limits))
        .route("/clock", get(clock).post(move_clock))
        .route("/sessions", axum::routing::delete(end_sessions))
        .with_state(shared)
}

fn version(shared: &Shared) -> String {
    format!("v{}.0", shared.config.max_api_version)
}

fn object_index(shared: &Shared, name: &str) -> Result<usize, SfError> {
    shared
        .schema
        .object_index(name)
        .ok_or_else(SfError::not_found)
}

fn records_of(
    shared: &Shared,
    object: &str,
    include_deleted: bool,
) -> Result<Vec<JsonValue>, SfError> {
    let o = object_index(shared, object)?;
    let def = &shared.schema.objects[o];
    let state = shared.lock();
    let v = version(shared);
    Ok(state
        .org
        .records(o)
        .filter(|r| include_deleted || r.deleted_at.is_none())
        .map(|r| render_record(def, r, None, &v))
        .collect())
}

fn acting(shared: &Shared, who: Option<&str>) -> Result<WriteCtx, SfError> {
    let name = who.unwrap_or(&shared.config.default_human_user);
    let state = shared.lock();
    let user = state.org.user_id(name).ok_or_else(|| {
        SfError::bad_request(
            super::error::code::INVALID_INPUT,
            format!("no user {name:?}"),
        )
    })?;
    Ok(WriteCtx {
        user,
        now: shared.clock.now(),
    })
}

fn body_object(body: &JsonValue) -> Result<&serde_json::Map<String, JsonValue>, SfError> {
    body.as_object()
        .ok_or_else(|| SfError::json("the body must be a JSON object"))
}

fn record_id(shared: &Shared, object: usize, id: &str) -> Result<SfId, SfError> {
    SfId::parse(id)
        .filter(|i| i.key_prefix() == shared.schema.objects[object].key_prefix)
        .ok_or_else(SfError::not_found)
}

fn create_as(
    shared: &Shared,
    who: Option<&str>,
    object: &str,
    body: &JsonValue,
) -> Result<String, SfError> {
    let o = object_index(shared, object)?;
    let ctx = acting(shared, who)?;
    let id = shared.lock().org.create(o, body_object(body)?, &ctx)?;
    Ok(id.as_str().to_owned())
}

fn update_as(
    shared: &Shared,
    who: Option<&str>,
    object: &str,
    id: &str,
    body: &JsonValue,
) -> Result<(), SfError> {
    let o = object_index(shared, object)?;
    let id = record_id(shared, o, id)?;
    let ctx = acting(shared, who)?;
    shared.lock().org.update(o, &id, body_object(body)?, &ctx)
}

fn delete_as(shared: &Shared, who: Option<&str>, object: &str, id: &str) -> Result<(), SfError> {
    let o = object_index(shared, object)?;
    let id = record_id(shared, o, id)?;
    let ctx = acting(shared, who)?;
    shared.lock().org.delete(o, &id, &ctx)
}

fn convert_as(
    shared: &Shared,
    who: Option<&str>,
    lead: &str,
    how: &LeadConversion,
) -> Result<Converted, SfError> {
    let o = object_index(shared, "Lead")?;
    let id = record_id(shared, o, lead)?;
    let ctx = acting(shared, who)?;
    shared.lock().org.convert_lead(&id, how, &ctx)
}

impl SalesforceEmulator {
    /// Converts a lead as user `who`, as a seller would in the UI.
    pub fn convert_lead_as(
        &self,
        who: Option<&str>,
        lead: &str,
        how: &LeadConversion,
    ) -> Result<Converted, SfError> {
        convert_as(&self.shared, who, lead, how)
    }

    /// The records of `object` as the API renders them (live only unless `include_deleted`).
    pub fn records(&self, object: &str, include_deleted: bool) -> Result<Vec<JsonValue>, SfError> {
        records_of(&self.shared, object, include_deleted)
    }

    /// Creates a record as user `who` (username or id; default: the configured human user).
    pub fn create_as(
        &self,
        who: Option<&str>,
        object: &str,
        body: &JsonValue,
    ) -> Result<String, SfError> {
        create_as(&self.shared, who, object, body)
    }

    /// Updates a record as user `who`, so `LastModifiedById` is that user.
    pub fn update_as(
        &self,
        who: Option<&str>,
        object: &str,
        id: &str,
        body: &JsonValue,
    ) -> Result<(), SfError> {
        update_as(&self.shared, who, object, id, body)
    }

    /// Deletes a record as user `who`.
    pub fn delete_as(&self, who: Option<&str>, object: &str, id: &str) -> Result<(), SfError> {
        delete_as(&self.shared, who, object, id)
    }

    /// The id of a user by username.
    pub fn user_id(&self, username: &str) -> Option<String> {
        self.shared
            .lock()
            .org
            .user_id(username)
            .map(|id| id.as_str().to_owned())
    }

    /// API calls counted in the current window, and the allocation.
    pub fn api_usage(&self) -> (u64, u64) {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let used = state.usage.used(now);
        (used, state.usage.max())
    }

    /// Forgets counted API calls.
    pub fn reset_api_usage(&self) {
        self.shared.lock().usage.reset();
    }

    /// Sets the API allocation.
    pub fn set_daily_api_requests(&self, max: u64) {
        self.shared.lock().usage.set_max(max);
    }
}

fn result<T: IntoResponse>(r: Result<T, SfError>) -> Response {
    match r {
        Ok(v) => v.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let deleted = q.get("deleted").is_some_and(|v| v == "true");
    result(
        records_of(&shared, &object, deleted)
            .map(|records| Json(json!({ "totalSize": records.len(), "records": records }))),
    )
}

async fn show(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    result((|| {
        let o = object_index(&shared, &object)?;
        let id = record_id(&shared, o, &id)?;
        let state = shared.lock();
        let record = state.org.record(o, &id).ok_or_else(SfError::not_found)?;
        Ok(Json(render_record(
            &shared.schema.objects[o],
            record,
            None,
            &version(&shared),
        )))
    })())
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<JsonValue>,
) -> Response {
    let id = create_as(&shared, q.get("as").map(String::as_str), &object, &body);
    result(id.map(|id| {
        (
            StatusCode::CREATED,
            Json(json!({ "id": id, "success": true, "errors": [] })),
        )
    }))
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<JsonValue>,
) -> Response {
    let done = update_as(
        &shared,
        q.get("as").map(String::as_str),
        &object,
        &id,
        &body,
    );
    result(done.map(|()| StatusCode::NO_CONTENT))
}

async fn remove(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let done = delete_as(&shared, q.get("as").map(String::as_str), &object, &id);
    result(done.map(|()| StatusCode::NO_CONTENT))
}

async fn convert(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let how: LeadConversion = if body.iter().all(u8::is_ascii_whitespace) {
        LeadConversion::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(how) => how,
            Err(e) => return SfError::json(e.to_string()).into_response(),
        }
    };
    let done = convert_as(&shared, q.get("as").map(String::as_str), &id, &how);
    result(done.map(|c| {
        Json(json!({
            "leadId": id,
            "accountId": c.account.as_str(),
            "contactId": c.contact.as_str(),
            "opportunityId": c.opportunity.as_ref().map(SfId::as_str),
        }))
    }))
}

async fn users(State(shared): State<Arc<Shared>>) -> Response {
    let users: Vec<JsonValue> = shared
        .config
        .users
        .iter()
        .map(|u| {
            let id = shared.lock().org.user_id(&u.username);
            json!({ "id": id.map(|i| i.as_str().to_owned()), "username": u.username, "email": u.email })
        })
        .collect();
    Json(json!({ "users": users })).into_response()
}

fn usage_body(shared: &Shared) -> JsonValue {
    let now = shared.clock.now();
    let mut state = shared.lock();
    let used = state.usage.used(now);
    let max = state.usage.max();
    json!({ "used": used, "max": max, "remaining": max.saturating_sub(used) })
}

async fn usage(State(shared): State<Arc<Shared>>) -> Response {
    Json(usage_body(&shared)).into_response()
}

async fn reset_usage(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().usage.reset();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsBody {
    daily_api_requests: u64,
}

async fn set_limits(State(shared): State<Arc<Shared>>, Json(body): Json<LimitsBody>) -> Response {
    shared.lock().usage.set_max(body.daily_api_requests);
    Json(usage_body(&shared)).into_response()
}

fn clock_body(shared: &Shared) -> JsonValue {
    json!({
        "now": format_datetime(shared.clock.now()),
        "manual": matches!(shared.clock, super::Clock::Manual(_)),
    })
}

async fn clock(State(shared): State<Arc<Shared>>) -> Response {
    Json(clock_body(&shared)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    #[serde(default)]
    advance_secs: Option<i64>,
    #[serde(default)]
    now: Option<String>,
}

async fn move_clock(State(shared): State<Arc<Shared>>, Json(body): Json<ClockBody>) -> Response {
    let moved = match (body.advance_secs, body.now.as_deref()) {
        (Some(secs), None) => shared.clock.advance(TimeDelta::seconds(secs)),
        (None, Some(at)) => match parse_datetime(at) {
            Some(t) => shared.clock.set(t),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": "now is not an ISO 8601 instant" })),
                )
                    .into_response();
            }
        },
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "give exactly one of advance_secs and now" })),
            )
                .into_response();
        }
    };
    if !moved {
        return (
            StatusCode::CONFLICT,
            Json(json!({ "error": "the emulator runs on the system clock" })),
        )
            .into_response();
    }
    Json(clock_body(&shared)).into_response()
}

async fn end_sessions(State(shared): State<Arc<Shared>>) -> Response {
    let revoked = shared.lock().sessions.revoke_all();
    Json(json!({ "revoked": revoked })).into_response()
}
