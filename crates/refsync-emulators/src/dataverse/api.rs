//! The Web API's HTTP surface (crm.md §1.3–§1.9): bearer validation and service
//! protection in front of every call (`guard.rs`), then one dispatcher over the resource path.
//! Handlers are thin: they read headers (`Prefer`, `If-Match`, `If-None-Match`) and
//! the body, lock the store, call the rules in `write.rs`/`query.rs`/`actions.rs`,
//! and shape the response (`OData-EntityId`, `ETag`, `Preference-Applied`).

use super::error::DvError;
use super::expand::Expand;
use super::keys::{self, Address};
use super::prefer::Prefer;
use super::query::{self, CollectionQuery, Links, PageSettings, QueryEnv};
use super::schema::Table;
use super::store::{etag, render};
use super::write::{self, Preconditions, WriteCtx};
use super::{Dataverse, actions};
use crate::odata::Select;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The system user a request runs as (set by the guard).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    /// `systemuserid`.
    pub user: Uuid,
}

/// The Web API routes, guarded by bearer validation and service protection, with
/// fault injection between the guard and the handlers (so an injected delay holds a
/// concurrency slot, as slow execution does).
pub(crate) fn router(dv: Dataverse) -> Router {
    let api = Router::new()
        .route("/api/data/{version}", any(entry))
        .route("/api/data/{version}/", any(entry))
        .route("/api/data/{version}/{*rest}", any(entry))
        .with_state(dv.clone());
    dv.faults()
        .layer(api)
        .layer(middleware::from_fn_with_state(dv, super::guard::guard))
        .fallback(|uri: axum::http::Uri| async move {
            let first = uri
                .path()
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            DvError::segment_not_found(first).into_response()
        })
}

/// One Web API request, read once.
struct Req<'a> {
    dv: &'a Dataverse,
    caller: Uuid,
    method: Method,
    headers: &'a HeaderMap,
    /// `http://host/api/data/v9.2/`.
    service_root: String,
    query: Vec<(String, String)>,
    prefer: Prefer,
    body: Bytes,
}

impl Req<'_> {
    fn ctx(&self) -> WriteCtx<'_> {
        WriteCtx {
            schema: self.dv.schema(),
            now: self.dv.now(),
            user: self.caller,
            base_currency: self.dv.base_currency(),
        }
    }

    fn json_body(&self, set: &str) -> Result<Map<String, Value>, DvError> {
        if self.body.is_empty() {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(DvError::payload(
                set,
                "The request body must be a JSON object.",
            )),
            Err(e) => Err(DvError::payload(set, format!("Invalid JSON. {e}"))),
        }
    }

    fn preconditions(&self) -> Preconditions {
        let header = |name: header::HeaderName| {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("null"))
        };
        let if_match = header(header::IF_MATCH);
        let if_none_match = header(header::IF_NONE_MATCH);
        Preconditions {
            if_match_any: if_match == Some("*"),
            if_match_etag: if_match.filter(|v| *v != "*").map(str::to_owned),
            if_none_match_any: if_none_match == Some("*"),
        }
    }

    /// `$expand` (single-valued navigation properties; ignored on PATCH, crm.md §1.5).
    fn expand(&self, table: &Table) -> Result<Expand, DvError> {
        match self.query.iter().find(|(k, _)| k == "$expand") {
            Some((_, text)) if self.method != Method::PATCH => {
                Expand::parse(self.dv.schema(), table, text)
            }
            _ => Ok(Expand::default()),
        }
    }

    fn select(&self, table: &Table) -> Result<Option<Select>, DvError> {
        let Some((_, text)) = self.query.iter().find(|(k, _)| k == "$select") else {
            return Ok(None);
        };
        let select = Select::parse(text).map_err(|e| DvError::bad_url(e.to_string()))?;
        for name in &select.0 {
            if name != "*" && table.column_by_wire_name(name).is_none() {
                return Err(DvError::unknown_property(name, &table.logical_name));
            }
        }
        Ok(Some(select))
    }

    /// A record shaped for a response: selected columns, annotations, `@odata.context` first.
    fn entity_body(
        &self,
        table: &Table,
        id: &Uuid,
        select: Option<&Select>,
    ) -> Result<(Value, String), DvError> {
        let store = self.dv.store();
        let row = store
            .get(&table.logical_name, id)
            .ok_or_else(|| DvError::not_found_id(&table.logical_name, id))?;
        let mut selected = query::selected(table, row, select);
        self.expand(table)?
            .apply(self.dv.schema(), &store, table, row, &mut selected);
        let annotated = super::annotations::annotate(
            self.dv.schema(),
            &store,
            table,
            row,
            selected,
            &self.prefer.annotations,
        );
        let projection = select
            .map(|s| format!("({})", s.0.join(",")))
            .unwrap_or_default();
        let mut body = Map::new();
        body.insert(
            "@odata.context".to_owned(),
            json!(format!(
                "{}$metadata#{}{projection}/$entity",
                self.service_root, table.entity_set
            )),
        );
        body.extend(annotated);
        Ok((Value::Object(body), etag(row.version)))
    }

    fn entity_id_url(&self, table: &Table, segment: &str) -> String {
        format!("{}{}{segment}", self.service_root, table.entity_set)
    }
}

fn odata_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; odata.metadata=minimal"),
    );
    response
}

fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
    response
}

fn service_root(dv: &Dataverse, headers: &HeaderMap, version: &str) -> String {
    let root = match &dv.config().public_base_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => format!("http://{host}"),
            None => dv.org_url().trim_end_matches('/').to_owned(),
        },
    };
    format!("{root}/api/data/{version}/")
}

async fn entry(State(dv): State<Dataverse>, request: Request) -> Response {
    let caller = request.extensions().get::<Caller>().copied();
    let (parts, body) = request.into_parts();
    let Some(caller) = caller else {
        return DvError::new(StatusCode::UNAUTHORIZED, "", "No caller.").into_response();
    };
    let body = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return DvError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "",
                "The request body is too large.",
            )
            .into_response();
        }
    };
    let raw_path = parts.uri.path();
    let after = raw_path.strip_prefix("/api/data/").unwrap_or("");
    let (version, rest) = after.split_once('/').unwrap_or((after, ""));
    if !dv.config().api_versions.iter().any(|v| v == version) {
        return DvError::segment_not_found(version).into_response();
    }
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let req = Req {
        dv: &dv,
        caller: caller.user,
        method: parts.method.clone(),
        headers: &parts.headers,
        service_root: service_root(&dv, &parts.headers, version),
        query,
        prefer: Prefer::parse(&parts.headers),
        body,
    };
    let path = match percent_decode_str(rest).decode_utf8() {
        Ok(p) => p.into_owned(),
        Err(_) => return DvError::bad_url("The URL is not valid UTF-8.").into_response(),
    };
    dispatch(&req, &path).unwrap_or_else(IntoResponse::into_response)
}

fn method_not_allowed(method: &Method, what: &str) -> DvError {
    DvError::not_allowed(format!(
        "The HTTP method '{method}' is not allowed on {what}."
    ))
}

fn dispatch(req: &Req<'_>, path: &str) -> Result<Response, DvError> {
    if path.is_empty() {
        return service_document(req);
    }
    let resource = keys::parse_path(path)?;
    match resource.head.as_str() {
        "$metadata" => return Err(DvError::not_implemented("$metadata")),
        "$batch" => return Err(DvError::not_implemented("$batch")),
        "WhoAmI" => {
            return match req.method {
                Method::GET => Ok(odata_json(
                    StatusCode::OK,
                    &actions::who_am_i(req.dv, req.caller, &req.service_root),
                )),
                _ => Err(method_not_allowed(&req.method, "WhoAmI")),
            };
        }
        "WinOpportunity" | "LoseOpportunity" => {
            if req.method != Method::POST {
                return Err(method_not_allowed(&req.method, &resource.head));
            }
            let body = req.json_body(&resource.head)?;
            let won = resource.head == "WinOpportunity";
            actions::close_opportunity(req.dv, &req.ctx(), &body, won)?;
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        _ => {}
    }
    let table = req.dv.table_for_set(&resource.head)?;
    match (&resource.key, resource.rest.as_slice()) {
        (None, []) => match req.method {
            Method::GET => collection(req, table),
            Method::POST => create(req, table),
            _ => Err(method_not_allowed(&req.method, &table.entity_set)),
        },
        (None, [count]) if count == "$count" && req.method == Method::GET => {
            let n = req
                .dv
                .store()
                .count(&table.logical_name)
                .min(req.dv.config().count_cap);
            let mut response = n.to_string().into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(response)
        }
        (Some(spec), rest) => {
            let address = keys::address(table, spec)?;
            match rest {
                [] => match req.method {
                    Method::GET => read_one(req, table, &address),
                    Method::PATCH => upsert(req, table, &address),
                    Method::DELETE => delete(req, table, &address),
                    _ => Err(method_not_allowed(&req.method, &table.entity_set)),
                },
                [action] if action == "Microsoft.Dynamics.CRM.QualifyLead" => {
                    if req.method != Method::POST || table.logical_name != "lead" {
                        return Err(method_not_allowed(&req.method, action));
                    }
                    let body = req.json_body(action)?;
                    let id = resolve_existing(req, table, &address)?;
                    let created = actions::qualify_lead(req.dv, &req.ctx(), &id, &body)?;
                    Ok(odata_json(
                        StatusCode::OK,
                        &actions::qualify_response(req.dv, &req.service_root, &created),
                    ))
                }
                [column] => single_column(req, table, &address, column),
                [nav, reference] if reference == "$ref" && req.method == Method::DELETE => {
                    clear_lookup(req, table, &address, nav)
                }
                _ => Err(DvError::segment_not_found(&rest.join("/"))),
            }
        }
        (None, rest) => Err(DvError::segment_not_found(&rest.join("/"))),
    }
}

fn service_document(req: &Req<'_>) -> Result<Response, DvError> {
    let sets: Vec<Value> = req
        .dv
        .schema()
        .tables()
        .iter()
        .map(|t| json!({"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}))
        .collect();
    Ok(odata_json(
        StatusCode::OK,
        &json!({"@odata.context": format!("{}$metadata", req.service_root), "value": sets}),
    ))
}

fn resolve_existing(req: &Req<'_>, table: &Table, address: &Address) -> Result<Uuid, DvError> {
    let store = req.dv.store();
    write::resolve(&store, table, address).ok_or_else(|| match address {
        Address::Id(id) => DvError::not_found_id(&table.logical_name, id),
        Address::Key { .. } => DvError::not_found_key(&table.logical_name),
    })
}

fn collection(req: &Req<'_>, table: &Table) -> Result<Response, DvError> {
    let q = CollectionQuery::parse(req.dv.schema(), table, &req.query)?;
    let config = req.dv.config();
    let settings = PageSettings {
        max_page_size_pref: req.prefer.max_page_size,
        track_changes: req.prefer.track_changes,
        default_page_size: config.default_page_size,
        max_page_size: config.max_page_size,
        count_cap: config.count_cap,
        token_lifetime: config.change_token_lifetime,
    };
    let page = {
        let mut store = req.dv.store();
        let cutoff = req.dv.now()
            - chrono::Duration::from_std(config.change_token_lifetime)
                .unwrap_or(chrono::Duration::MAX);
        store.prune_tombstones(cutoff);
        let env = QueryEnv {
            schema: req.dv.schema(),
            store: &store,
            links: Links {
                service_root: &req.service_root,
                entity_set: &table.entity_set,
            },
            annotations: &req.prefer.annotations,
            now: req.dv.now(),
        };
        query::run(&env, table, &q, &settings)?
    };
    let mut applied = Vec::new();
    if let Some(n) = page.applied_page_size {
        applied.push(format!("odata.maxpagesize={n}"));
    }
    if page.tracking {
        applied.push("odata.track-changes".to_owned());
    }
    applied.extend(req.prefer.annotations.applied());
    let response = odata_json(StatusCode::OK, &page.body);
    Ok(if applied.is_empty() {
        response
    } else {
        with_header(response, "Preference-Applied", &applied.join(","))
    })
}

fn read_one(req: &Req<'_>, table: &Table, address: &Address) -> Result<Response, DvError> {
    let select = req.select(table)?;
    let expanded = !req.expand(table)?.is_empty();
    let id = resolve_existing(req, table, address)?;
    let (body, tag) = req.entity_body(table, &id, select.as_ref())?;
    // crm.md §1.6: If-None-Match with the current version → 304 (never with
    // annotations or $expand).
    let if_none_match = req
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if let Some(wanted) = if_none_match
        && !req.prefer.annotations.requested()
        && !expanded
        && (wanted.trim() == "*" || wanted.split(',').any(|t| t.trim() == tag))
    {
        return Ok(with_header(
            StatusCode::NOT_MODIFIED.into_response(),
            "ETag",
            &tag,
        ));
    }
    let mut response = with_header(odata_json(StatusCode::OK, &body), "ETag", &tag);
    if let Some(applied) = req.prefer.annotations.applied() {
        response = with_header(response, "Preference-Applied", &applied);
    }
    Ok(response)
}

fn writable(req: &Req<'_>, table: &Table) -> Result<(), DvError> {
    if table.writable {
        Ok(())
    } else {
        Err(method_not_allowed(&req.method, &table.entity_set))
    }
}

/// The answer to a write: 204 + `OData-EntityId`, or the record with `return=representation`.
fn written(
    req: &Req<'_>,
    table: &Table,
    id: &Uuid,
    created: bool,
    entity_id: String,
) -> Result<Response, DvError> {
    if req.prefer.representation {
        let select = req.select(table)?;
        let (body, tag) = req.entity_body(table, id, select.as_ref())?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let response = with_header(odata_json(status, &body), "ETag", &tag);
        return Ok(with_header(
            response,
            "Preference-Applied",
            "return=representation",
        ));
    }
    Ok(with_header(
        StatusCode::NO_CONTENT.into_response(),
        "OData-EntityId",
        &entity_id,
    ))
}

fn create(req: &Req<'_>, table: &Table) -> Result<Response, DvError> {
    writable(req, table)?;
    req.select(table)?;
    let body = req.json_body(&table.entity_set)?;
    let id = write::create(&req.ctx(), &mut req.dv.store(), table, &body)?;
    let entity_id = req.entity_id_url(table, &keys::key_segment(table, &Address::Id(id)));
    written(req, table, &id, true, entity_id)
}

fn upsert(req: &Req<'_>, table: &Table, address: &Address) -> Result<Response, DvError> {
    writable(req, table)?;
    req.select(table)?;
    let body = req.json_body(&table.entity_set)?;
    let outcome = write::upsert(
        &req.ctx(),
        &mut req.dv.store(),
        table,
        address,
        &body,
        &req.preconditions(),
    )?;
    // crm.md §1.6: the OData-EntityId uses the key form the request used.
    let entity_id = req.entity_id_url(table, &keys::key_segment(table, address));
    written(req, table, &outcome.id, outcome.created, entity_id)
}

fn delete(req: &Req<'_>, table: &Table, address: &Address) -> Result<Response, DvError> {
    writable(req, table)?;
    write::delete(
        &req.ctx(),
        &mut req.dv.store(),
        table,
        address,
        &req.preconditions(),
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET`/`PUT`/`DELETE /<set>(<key>)/<column>` (crm.md §1.5).
fn single_column(
    req: &Req<'_>,
    table: &Table,
    address: &Address,
    name: &str,
) -> Result<Response, DvError> {
    let column = table
        .column_by_wire_name(name)
        .ok_or_else(|| DvError::segment_not_found(name))?;
    let id = resolve_existing(req, table, address)?;
    match req.method {
        Method::GET => {
            let store = req.dv.store();
            let row = store
                .get(&table.logical_name, &id)
                .ok_or_else(|| DvError::not_found_id(&table.logical_name, &id))?;
            let rendered = render(table, row);
            let value = rendered
                .get(&column.wire_name())
                .cloned()
                .unwrap_or(Value::Null);
            Ok(odata_json(
                StatusCode::OK,
                &json!({
                    "@odata.context": format!("{}$metadata#{}({id})/{name}", req.service_root, table.entity_set),
                    "value": value,
                }),
            ))
        }
        Method::PUT | Method::DELETE => {
            writable(req, table)?;
            if column.kind.is_lookup() {
                return Err(DvError::bad_url(
                    "CRM do not support direct update of Entity Reference properties, Use Navigation properties instead.",
                ));
            }
            let value = if req.method == Method::PUT {
                req.json_body(&table.entity_set)?
                    .remove("value")
                    .ok_or_else(|| {
                        DvError::payload(
                            &table.entity_set,
                            "The body must have a 'value' property.",
                        )
                    })?
            } else {
                Value::Null
            };
            let mut body = Map::new();
            body.insert(column.name.clone(), value);
            let mut store = req.dv.store();
            let changes = write::parse_body(req.dv.schema(), &store, table, &body, false)?;
            write::update(
                &req.ctx(),
                &mut store,
                table,
                &id,
                &changes,
                write::StateChangeBy::Patch,
            )?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(method_not_allowed(&req.method, name)),
    }
}

/// `DELETE /<set>(<key>)/<nav>/$ref`: clears a lookup.
fn clear_lookup(
    req: &Req<'_>,
    table: &Table,
    address: &Address,
    nav: &str,
) -> Result<Response, DvError> {
    writable(req, table)?;
    let (column, _) = table
        .navigation(nav)
        .ok_or_else(|| DvError::segment_not_found(nav))?;
    let id = resolve_existing(req, table, address)?;
    let mut body = Map::new();
    body.insert(format!("{nav}@odata.bind"), Value::Null);
    let _ = column;
    let mut store = req.dv.store();
    let changes = write::parse_body(req.dv.schema(), &store, table, &body, false)?;
    write::update(
        &req.ctx(),
        &mut store,
        table,
        &id,
        &changes,
        write::StateChangeBy::Patch,
    )?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
