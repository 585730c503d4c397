//! The control API, nested at `/_emulator/dataverse` (no token, no limits, no faults):
//!
//! | route | what |
//! |---|---|
//! | `GET` (the root) | environment summary: org URL, scope, record counts |
//! | `GET /records/{set}[?$filter=…]` | records as the Web API returns them |
//! | `POST /records/{set}` | create a record as the human user |
//! | `GET /records/{set}/{id}` | one record |
//! | `PATCH /records/{set}/{id}` | edit as the human user (`modifiedby` a person, `modifiedon` moves) |
//! | `DELETE /records/{set}/{id}` | delete as the human user |
//! | `GET /usage`, `POST /usage/reset` | requests served, 429s, per-user use of the limits |
//! | `GET /limits`, `PUT /limits` | service-protection limits |
//! | `GET /clock`, `POST /clock/advance` `{"seconds":n}` | the environment's clock |
//!
//! Errors use the Web API's error body. Every operation is also a [`Dataverse`] method
//! (below), for in-process tests and the demo.

use super::config::ServiceProtectionLimits;
use super::error::DvError;
use super::keys::Address;
use super::{Counters, Dataverse, DataverseError, DataverseUsage, lock, store, write};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// Control operations, as Rust methods.
impl Dataverse {
    /// Request counts, 429s and each user's use of the limits.
    pub fn usage(&self) -> DataverseUsage {
        let counters = lock(&self.inner.counters);
        DataverseUsage {
            requests_served: counters.served,
            unauthorized: counters.unauthorized,
            throttled: self.inner.protection.throttled(),
            responses: counters.responses.clone(),
            users: self.inner.protection.usage(),
            limits: self.inner.protection.limits(),
        }
    }

    /// Zeroes the counters and forgets the limits' history.
    pub fn reset_usage(&self) {
        *lock(&self.inner.counters) = Counters::default();
        self.inner.protection.reset();
    }

    /// The service-protection limits in force.
    pub fn limits(&self) -> ServiceProtectionLimits {
        self.inner.protection.limits()
    }

    /// Changes the service-protection limits.
    pub fn set_limits(&self, limits: ServiceProtectionLimits) -> Result<(), DataverseError> {
        if limits.window.is_zero() {
            return Err(DataverseError::Config(
                "limits.window must be longer than zero".to_owned(),
            ));
        }
        self.inner.protection.set_limits(limits);
        Ok(())
    }

    /// Every record of an entity set as the Web API returns it, in primary-key order.
    pub fn records(&self, entity_set: &str) -> Result<Vec<Value>, DvError> {
        let table = self.table_for_set(entity_set)?;
        let store = self.store();
        Ok(store
            .rows(&table.logical_name)
            .map(|row| Value::Object(store::render(table, row)))
            .collect())
    }

    /// The records of an entity set matching an OData `$filter`.
    pub fn find(&self, entity_set: &str, filter: &str) -> Result<Vec<Value>, DvError> {
        let expr =
            crate::odata::parse_filter(filter).map_err(|e| DvError::bad_url(e.to_string()))?;
        Ok(self
            .records(entity_set)?
            .into_iter()
            .filter(|r| crate::odata::matches(&expr, r, &crate::odata::EvalOptions::DATAVERSE))
            .collect())
    }

    /// One record as the Web API returns it.
    pub fn record(&self, entity_set: &str, id: Uuid) -> Result<Value, DvError> {
        let table = self.table_for_set(entity_set)?;
        let store = self.store();
        store
            .get(&table.logical_name, &id)
            .map(|row| Value::Object(store::render(table, row)))
            .ok_or_else(|| DvError::not_found_id(&table.logical_name, &id))
    }

    fn user_ctx(&self) -> (Uuid, DateTime<Utc>) {
        (self.inner.config.human_user.id, self.now())
    }

    /// Creates a record as the human user would in the app (same rules as the Web API);
    /// `body` is a Web API payload (columns and `nav@odata.bind`).
    pub fn create_as_user(&self, entity_set: &str, body: &Value) -> Result<Value, DvError> {
        let table = self.table_for_set(entity_set)?;
        let body = body
            .as_object()
            .ok_or_else(|| DvError::payload(entity_set, "The body is not a JSON object."))?;
        let (user, now) = self.user_ctx();
        let ctx = write::WriteCtx {
            schema: &self.inner.schema,
            now,
            user,
            base_currency: self.base_currency(),
        };
        let id = write::create(&ctx, &mut self.store(), table, body)?;
        self.record(entity_set, id)
    }

    /// Edits a record as the human user (so `modifiedby` is a person and `modifiedon`
    /// moves): the CRM-side edit the sync engine must notice.
    pub fn edit_as_user(
        &self,
        entity_set: &str,
        id: Uuid,
        changes: &Value,
    ) -> Result<Value, DvError> {
        let table = self.table_for_set(entity_set)?;
        let body = changes
            .as_object()
            .ok_or_else(|| DvError::payload(entity_set, "The body is not a JSON object."))?;
        let (user, now) = self.user_ctx();
        let ctx = write::WriteCtx {
            schema: &self.inner.schema,
            now,
            user,
            base_currency: self.base_currency(),
        };
        {
            let mut store = self.store();
            let parsed = write::parse_body(&self.inner.schema, &store, table, body, false)?;
            write::update(
                &ctx,
                &mut store,
                table,
                &id,
                &parsed,
                write::StateChangeBy::Patch,
            )?;
        }
        self.record(entity_set, id)
    }

    /// Deletes a record as the human user.
    pub fn delete_as_user(&self, entity_set: &str, id: Uuid) -> Result<(), DvError> {
        let table = self.table_for_set(entity_set)?;
        let (user, now) = self.user_ctx();
        let ctx = write::WriteCtx {
            schema: &self.inner.schema,
            now,
            user,
            base_currency: self.base_currency(),
        };
        write::delete(
            &ctx,
            &mut self.store(),
            table,
            &Address::Id(id),
            &write::Preconditions::default(),
        )
    }
}

/// The control routes (to be nested at `/_emulator/dataverse`).
pub(crate) fn router(dv: Dataverse) -> Router {
    Router::new()
        .route("/", get(summary))
        .route("/records/{set}", get(list).post(create))
        .route("/records/{set}/{id}", get(one).patch(edit).delete(remove))
        .route("/usage", get(usage))
        .route("/usage/reset", post(reset_usage))
        .route("/limits", get(limits).put(set_limits))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance))
        .with_state(dv)
}

fn answer(result: Result<Value, DvError>, ok: StatusCode) -> Response {
    match result {
        Ok(v) => (ok, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn body_json(body: &axum::body::Bytes) -> Result<Value, DvError> {
    serde_json::from_slice(body).map_err(|e| DvError::payload("", format!("Invalid JSON. {e}")))
}

fn parse_id(id: &str) -> Result<Uuid, DvError> {
    Uuid::parse_str(id).map_err(|_| DvError::bad_url(format!("'{id}' is not a GUID.")))
}

async fn summary(State(dv): State<Dataverse>) -> Json<Value> {
    let counts: serde_json::Map<String, Value> = {
        let store = dv.store();
        dv.schema()
            .tables()
            .iter()
            .map(|t| (t.entity_set.clone(), json!(store.count(&t.logical_name))))
            .collect()
    };
    Json(json!({
        "org_name": dv.config().org_name,
        "org_url": dv.org_url(),
        "scope": dv.scope(),
        "api_versions": dv.config().api_versions,
        "records": counts,
    }))
}

async fn list(
    State(dv): State<Dataverse>,
    Path(set): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let result = match params.get("$filter") {
        Some(filter) => dv.find(&set, filter),
        None => dv.records(&set),
    };
    answer(
        result.map(|records| json!({ "value": records })),
        StatusCode::OK,
    )
}

async fn one(State(dv): State<Dataverse>, Path((set, id)): Path<(String, String)>) -> Response {
    answer(
        parse_id(&id).and_then(|id| dv.record(&set, id)),
        StatusCode::OK,
    )
}

async fn create(
    State(dv): State<Dataverse>,
    Path(set): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    answer(
        body_json(&body).and_then(|b| dv.create_as_user(&set, &b)),
        StatusCode::CREATED,
    )
}

async fn edit(
    State(dv): State<Dataverse>,
    Path((set, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    answer(
        parse_id(&id).and_then(|id| dv.edit_as_user(&set, id, &body_json(&body)?)),
        StatusCode::OK,
    )
}

async fn remove(State(dv): State<Dataverse>, Path((set, id)): Path<(String, String)>) -> Response {
    match parse_id(&id).and_then(|id| dv.delete_as_user(&set, id)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn usage(State(dv): State<Dataverse>) -> Json<super::DataverseUsage> {
    Json(dv.usage())
}

async fn reset_usage(State(dv): State<Dataverse>) -> StatusCode {
    dv.reset_usage();
    StatusCode::NO_CONTENT
}

async fn limits(State(dv): State<Dataverse>) -> Json<ServiceProtectionLimits> {
    Json(dv.limits())
}

async fn set_limits(State(dv): State<Dataverse>, body: axum::body::Bytes) -> Response {
    let limits: ServiceProtectionLimits = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return DvError::invalid_argument(format!("Invalid limits: {e}")).into_response(),
    };
    match dv.set_limits(limits) {
        Ok(()) => (StatusCode::OK, Json(dv.limits())).into_response(),
        Err(e) => DvError::invalid_argument(e.to_string()).into_response(),
    }
}

async fn clock(State(dv): State<Dataverse>) -> Json<Value> {
    Json(json!({
        "now": super::values::format_datetime(&dv.now()),
        "offset_seconds": dv.clock().offset().as_secs(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: u64,
}

async fn advance(State(dv): State<Dataverse>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Advance>(&body) {
        Ok(a) => {
            dv.advance_clock(Duration::from_secs(a.seconds));
            clock(State(dv)).await.into_response()
        }
        Err(e) => {
            DvError::invalid_argument(format!("Expected {{\"seconds\": n}}: {e}")).into_response()
        }
    }
}
