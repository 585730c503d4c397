//! sObject Collections under `/composite/sobjects` (crm.md §2.5): create
//! (mixed types), update, upsert by external id, retrieve and delete up to
//! `collection_max_records` records in one call.
//!
//! Answers are 200 with one SaveResult per record in request order; a failed
//! record carries `errors: [{statusCode, message, fields}]` (`statusCode`, not
//! `errorCode`). With `allOrNone`, any failure rolls every record back and the
//! records that had succeeded report `ALL_OR_NONE_OPERATION_ROLLED_BACK`.

use super::super::error::{SfError, code};
use super::super::ids::SfId;
use super::super::org::UpsertOutcome;
use super::sobjects::{external_id_field, field_list, render_record};
use super::{ApiRequest, ApiResponse, Ctx, method_not_allowed};
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value as JsonValue, json};

/// Routes `/composite/sobjects/{rest…}`.
pub(crate) fn route(
    ctx: &mut Ctx<'_>,
    req: &ApiRequest,
    rest: &[&str],
) -> Result<ApiResponse, SfError> {
    let m = &req.method;
    match rest {
        [] => match *m {
            Method::POST => write_all(ctx, req, Op::Create),
            Method::PATCH => write_all(ctx, req, Op::Update),
            Method::DELETE => delete_all(ctx, req),
            _ => Err(method_not_allowed(m, "POST,PATCH,DELETE")),
        },
        [object] => match *m {
            Method::GET => {
                let ids = req.param("ids").unwrap_or("").to_owned();
                let fields = req.param("fields").unwrap_or("").to_owned();
                retrieve(ctx, object, &ids, &fields)
            }
            Method::POST => {
                // The POST form of retrieve, for id lists too long for a URL.
                let body = req.body.object()?;
                let join = |key: &str| {
                    body.get(key)
                        .and_then(JsonValue::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(JsonValue::as_str)
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default()
                };
                retrieve(ctx, object, &join("ids"), &join("fields"))
            }
            _ => Err(method_not_allowed(m, "GET,POST")),
        },
        [object, field] => match *m {
            Method::PATCH => {
                let o = ctx.object(object)?;
                let f = external_id_field(ctx, o, field)?;
                write_all(ctx, req, Op::Upsert(o, f))
            }
            _ => Err(method_not_allowed(m, "PATCH")),
        },
        _ => Err(SfError::not_found()),
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    Update,
    Upsert(usize, usize),
}

/// One record's outcome before `allOrNone` is applied.
struct Outcome {
    id: Option<SfId>,
    created: Option<bool>,
    error: Option<SfError>,
}

fn failure(id: Option<SfId>, error: SfError) -> Outcome {
    Outcome {
        id,
        created: None,
        error: Some(error),
    }
}

fn record_error(code: &'static str, message: impl Into<String>, fields: &[&str]) -> SfError {
    SfError::field(code, message, fields)
}

fn too_many(max: usize) -> SfError {
    SfError::bad_request(
        code::EXCEEDED_ID_LIMIT,
        format!("record limit reached. cannot submit more than {max} records into this call"),
    )
}

fn write_all(ctx: &mut Ctx<'_>, req: &ApiRequest, op: Op) -> Result<ApiResponse, SfError> {
    let body = req.body.object()?;
    let all_or_none = body
        .get("allOrNone")
        .and_then(JsonValue::as_bool)
        .unwrap_or(false);
    let records = body
        .get("records")
        .and_then(JsonValue::as_array)
        .ok_or_else(|| SfError::json("records is required and must be an array"))?;
    let max = ctx.shared.config.collection_max_records;
    if records.len() > max {
        return Err(too_many(max));
    }
    let savepoint = ctx.state.org.savepoint();
    let outcomes: Vec<Outcome> = records.iter().map(|r| write_one(ctx, r, op)).collect();
    let any_failed = outcomes.iter().any(|o| o.error.is_some());
    let rolled_back = all_or_none && any_failed;
    if rolled_back {
        ctx.state.org.rollback_to(savepoint);
    } else {
        ctx.state.org.release(savepoint);
    }
    let results: Vec<JsonValue> = outcomes
        .into_iter()
        .map(|o| {
            let error = match (o.error, rolled_back) {
                (Some(e), _) => Some(e),
                (None, true) => Some(record_error(
                    code::ALL_OR_NONE_OPERATION_ROLLED_BACK,
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    &[],
                )),
                (None, false) => None,
            };
            // A record created and then rolled back never existed: no id to report.
            let id = match (&op, o.created, rolled_back) {
                (_, Some(true), true) | (Op::Create, _, true) => None,
                _ => o.id,
            };
            result_json(id.as_ref(), error.as_ref(), o.created.filter(|_| error.is_none()), &op)
        })
        .collect();
    Ok(ApiResponse::json(StatusCode::OK, JsonValue::Array(results)))
}

fn result_json(
    id: Option<&SfId>,
    error: Option<&SfError>,
    created: Option<bool>,
    op: &Op,
) -> JsonValue {
    let mut out = Map::new();
    if let Some(id) = id {
        out.insert("id".to_owned(), JsonValue::String(id.as_str().to_owned()));
    }
    out.insert("success".to_owned(), JsonValue::Bool(error.is_none()));
    out.insert(
        "errors".to_owned(),
        error.map_or(JsonValue::Array(Vec::new()), SfError::record_errors),
    );
    if matches!(op, Op::Upsert(..)) {
        out.insert(
            "created".to_owned(),
            JsonValue::Bool(created.unwrap_or(false)),
        );
    }
    JsonValue::Object(out)
}

fn write_one(ctx: &mut Ctx<'_>, record: &JsonValue, op: Op) -> Outcome {
    let Some(fields) = record.as_object() else {
        return failure(
            None,
            record_error(
                code::JSON_PARSER_ERROR,
                "each record must be a JSON object",
                &[],
            ),
        );
    };
    let type_name = fields
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(JsonValue::as_str);
    let object = match (type_name, op) {
        (Some(t), _) => match ctx.shared.schema.object_index(t) {
            Some(o) => o,
            None => {
                return failure(
                    None,
                    record_error(
                        code::INVALID_TYPE,
                        format!("sObject type '{t}' is not supported."),
                        &[],
                    ),
                );
            }
        },
        (None, Op::Upsert(o, _)) => o,
        (None, _) => {
            return failure(
                None,
                record_error(code::INVALID_TYPE, "Must send a concrete entity type.", &[]),
            );
        }
    };
    let id_value = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("id"))
        .map(|(_, v)| v.clone());
    let mut body: Map<String, JsonValue> = fields
        .iter()
        .filter(|(k, _)| *k != "attributes" && !k.eq_ignore_ascii_case("id"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let write = ctx.write();
    match op {
        Op::Create => {
            if id_value.is_some_and(|v| !v.is_null()) {
                return failure(
                    None,
                    record_error(
                        code::INVALID_FIELD,
                        "cannot specify Id in an insert call",
                        &["Id"],
                    ),
                );
            }
            match ctx.state.org.create(object, &body, &write) {
                Ok(id) => Outcome {
                    id: Some(id),
                    created: None,
                    error: None,
                },
                Err(e) => failure(None, e),
            }
        }
        Op::Update => {
            let Some(raw) = id_value
                .as_ref()
                .and_then(JsonValue::as_str)
                .filter(|s| !s.is_empty())
            else {
                return failure(
                    None,
                    record_error(
                        code::MISSING_ARGUMENT,
                        "Id not specified in an update call",
                        &[],
                    ),
                );
            };
            let prefix = &ctx.shared.schema.objects[object].key_prefix;
            let Some(id) = SfId::parse(raw).filter(|i| i.key_prefix() == prefix) else {
                return failure(
                    None,
                    record_error(code::MALFORMED_ID, format!("malformed id {raw}"), &["Id"]),
                );
            };
            match ctx.state.org.update(object, &id, &body, &write) {
                Ok(()) => Outcome {
                    id: Some(id),
                    created: None,
                    error: None,
                },
                Err(e) if e.errors.first().is_some_and(|x| x.code == code::NOT_FOUND) => failure(
                    Some(id),
                    record_error(
                        code::INVALID_CROSS_REFERENCE_KEY,
                        "invalid cross reference id",
                        &[],
                    ),
                ),
                Err(e) => failure(Some(id), e),
            }
        }
        Op::Upsert(expected, field) => {
            if object != expected {
                return failure(
                    None,
                    record_error(
                        code::INVALID_TYPE,
                        "all records must be of the type named in the URL",
                        &[],
                    ),
                );
            }
            let def = &ctx.shared.schema.objects[object];
            let field_name = def.fields[field].name.clone();
            let key = if field == 0 {
                id_value
            } else {
                let found = body
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(&field_name))
                    .cloned();
                found.and_then(|k| body.remove(&k))
            };
            let Some(key) = key.filter(|k| !k.is_null()) else {
                return failure(
                    None,
                    record_error(
                        code::MISSING_ARGUMENT,
                        format!("{field_name} not specified"),
                        &[&field_name],
                    ),
                );
            };
            match ctx
                .state
                .org
                .upsert(object, field, &key, &body, false, &write)
            {
                Ok(UpsertOutcome::Created(id)) => Outcome {
                    id: Some(id),
                    created: Some(true),
                    error: None,
                },
                Ok(UpsertOutcome::Updated(id)) => Outcome {
                    id: Some(id),
                    created: Some(false),
                    error: None,
                },
                Ok(UpsertOutcome::Multiple(ids)) => failure(
                    None,
                    record_error(
                        code::DUPLICATE_EXTERNAL_ID,
                        format!(
                            "{field_name}: more than one record found for external id field: [{}]",
                            ids.iter().map(SfId::as_str).collect::<Vec<_>>().join(", ")
                        ),
                        &[&field_name],
                    ),
                ),
                Err(e) => failure(None, e),
            }
        }
    }
}

fn split_ids(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn delete_all(ctx: &mut Ctx<'_>, req: &ApiRequest) -> Result<ApiResponse, SfError> {
    let ids = split_ids(req.param("ids").unwrap_or(""));
    if ids.is_empty() {
        return Err(SfError::bad_request(
            code::MISSING_ARGUMENT,
            "ids parameter is required",
        ));
    }
    let max = ctx.shared.config.collection_max_records;
    if ids.len() > max {
        return Err(too_many(max));
    }
    let all_or_none = req
        .param("allOrNone")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let savepoint = ctx.state.org.savepoint();
    let write = ctx.write();
    let outcomes: Vec<Outcome> = ids
        .iter()
        .map(|raw| {
            let Some(id) = SfId::parse(raw) else {
                return failure(
                    None,
                    record_error(code::MALFORMED_ID, format!("malformed id {raw}"), &[]),
                );
            };
            let Some(object) = ctx.shared.schema.object_by_prefix(id.key_prefix()) else {
                return failure(
                    Some(id),
                    record_error(
                        code::INVALID_CROSS_REFERENCE_KEY,
                        "invalid cross reference id",
                        &[],
                    ),
                );
            };
            match ctx.state.org.delete(object, &id, &write) {
                Ok(()) => Outcome {
                    id: Some(id),
                    created: None,
                    error: None,
                },
                Err(e) if e.errors.first().is_some_and(|x| x.code == code::NOT_FOUND) => failure(
                    Some(id),
                    record_error(
                        code::INVALID_CROSS_REFERENCE_KEY,
                        "invalid cross reference id",
                        &[],
                    ),
                ),
                Err(e) => failure(Some(id), e),
            }
        })
        .collect();
    let rolled_back = all_or_none && outcomes.iter().any(|o| o.error.is_some());
    if rolled_back {
        ctx.state.org.rollback_to(savepoint);
    } else {
        ctx.state.org.release(savepoint);
    }
    let results: Vec<JsonValue> = outcomes
        .into_iter()
        .map(|o| {
            let error = o.error.or_else(|| {
                rolled_back.then(|| {
                    record_error(
                        code::ALL_OR_NONE_OPERATION_ROLLED_BACK,
                        "Record rolled back because not all records were valid and the request was using AllOrNone header",
                        &[],
                    )
                })
            });
            result_json(o.id.as_ref(), error.as_ref(), None, &Op::Update)
        })
        .collect();
    Ok(ApiResponse::json(StatusCode::OK, JsonValue::Array(results)))
}

fn retrieve(ctx: &Ctx<'_>, object: &str, ids: &str, fields: &str) -> Result<ApiResponse, SfError> {
    let o = ctx.object(object)?;
    let def = &ctx.shared.schema.objects[o];
    if fields.trim().is_empty() {
        return Err(SfError::bad_request(
            code::MISSING_ARGUMENT,
            "fields parameter is required",
        ));
    }
    let fields = field_list(def, fields)?;
    let ids = split_ids(ids);
    if ids.len() > 2000 {
        return Err(too_many(2000));
    }
    let version = ctx.version_path();
    let rows: Vec<JsonValue> = ids
        .iter()
        .map(|raw| {
            SfId::parse(raw)
                .and_then(|id| ctx.state.org.live(o, &id).ok())
                .map_or(JsonValue::Null, |r| {
                    render_record(def, r, Some(&fields), &version)
                })
        })
        .collect();
    Ok(ApiResponse::json(StatusCode::OK, json!(rows)))
}
