//! `/sobjects/…`: record CRUD (crm.md §2.2), upsert by external id (§2.3),
//! getUpdated/getDeleted (§2.9) and describe.

use super::super::config::UpsertUpdateStatus;
use super::super::error::{SfError, code};
use super::super::ids::SfId;
use super::super::org::{Record, UpsertOutcome};
use super::super::schema::{FieldType, ObjectDef};
use super::super::soql::record_url;
use super::super::value::{format_datetime, parse_datetime};
use super::{ApiRequest, ApiResponse, Ctx, method_not_allowed};
use axum::http::{HeaderName, Method, StatusCode, header};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{Map, Value as JsonValue, json};

/// Routes `/sobjects/{rest…}`.
pub(crate) fn route(
    ctx: &mut Ctx<'_>,
    req: &ApiRequest,
    rest: &[&str],
) -> Result<ApiResponse, SfError> {
    let m = &req.method;
    match rest {
        [] => match *m {
            Method::GET => Ok(describe_global(ctx)),
            _ => Err(method_not_allowed(m, "HEAD,GET")),
        },
        [object] => {
            let o = ctx.object(object)?;
            match *m {
                Method::GET => Ok(basic_info(ctx, o)),
                Method::POST => create(ctx, o, req),
                _ => Err(method_not_allowed(m, "HEAD,GET,POST")),
            }
        }
        [object, "describe"] => {
            let o = ctx.object(object)?;
            match *m {
                Method::GET => Ok(describe(ctx, o)),
                _ => Err(method_not_allowed(m, "HEAD,GET")),
            }
        }
        [object, which @ ("updated" | "deleted")] if *m == Method::GET => {
            let o = ctx.object(object)?;
            replication(ctx, o, req, *which == "deleted")
        }
        [object, id_field] if id_field.eq_ignore_ascii_case("Id") && *m == Method::POST => {
            // `POST /sobjects/Account/Id` with no value creates (crm.md §2.3, API 37.0+).
            let o = ctx.object(object)?;
            create(ctx, o, req)
        }
        [object, id] => {
            let o = ctx.object(object)?;
            let def = &ctx.shared.schema.objects[o];
            let Some(id) = SfId::parse(id).filter(|i| i.key_prefix() == def.key_prefix) else {
                // Salesforce reads `/sobjects/X/{not-an-id}` as an external-id path without a value.
                return Err(SfError::new(
                    StatusCode::NOT_FOUND,
                    code::NOT_FOUND,
                    format!("Provided external ID field does not exist or is not accessible: {id}"),
                ));
            };
            match *m {
                Method::GET => read(ctx, o, &id, req),
                Method::PATCH => {
                    let body = req.body.object()?;
                    ctx.state.org.update(o, &id, body, &ctx.write())?;
                    Ok(ApiResponse::no_content())
                }
                Method::DELETE => {
                    ctx.state.org.delete(o, &id, &ctx.write())?;
                    Ok(ApiResponse::no_content())
                }
                _ => Err(method_not_allowed(m, "HEAD,GET,PATCH,DELETE")),
            }
        }
        [object, field, value] => {
            let o = ctx.object(object)?;
            let f = external_id_field(ctx, o, field)?;
            match *m {
                Method::PATCH => upsert(ctx, o, f, value, req),
                Method::GET | Method::DELETE => {
                    let id = single_match(ctx, o, f, value)?;
                    if *m == Method::GET {
                        read(ctx, o, &id, req)
                    } else {
                        ctx.state.org.delete(o, &id, &ctx.write())?;
                        Ok(ApiResponse::no_content())
                    }
                }
                _ => Err(method_not_allowed(m, "HEAD,GET,PATCH,DELETE")),
            }
        }
        _ => Err(SfError::not_found()),
    }
}

/// A field usable as an upsert key: marked External ID, or `Id`. Anything else is 404 (crm.md §2.3).
pub(crate) fn external_id_field(
    ctx: &Ctx<'_>,
    object: usize,
    name: &str,
) -> Result<usize, SfError> {
    let def = &ctx.shared.schema.objects[object];
    def.field_index(name)
        .filter(|&i| i == 0 || def.fields[i].external_id)
        .ok_or_else(SfError::not_found)
}

fn single_match(ctx: &Ctx<'_>, object: usize, field: usize, value: &str) -> Result<SfId, SfError> {
    let def = &ctx.shared.schema.objects[object];
    let key =
        super::super::value::coerce(&def.fields[field], &JsonValue::String(value.to_owned()))?;
    let matches = ctx.state.org.find_by_field(object, field, &key);
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(SfError::not_found()),
        _ => Err(SfError::new(
            StatusCode::MULTIPLE_CHOICES,
            code::NOT_FOUND,
            "More than one record found for external id field",
        )),
    }
}

fn location(ctx: &Ctx<'_>, object: &str, id: &SfId) -> (HeaderName, String) {
    (
        header::LOCATION,
        record_url(&ctx.version_path(), object, id.as_str()),
    )
}

/// A SaveResult: `{id, success, errors}` plus `created` for upserts.
pub(crate) fn save_result(id: &SfId, created: Option<bool>) -> JsonValue {
    let mut body = json!({ "id": id.as_str(), "success": true, "errors": [] });
    if let (Some(created), Some(obj)) = (created, body.as_object_mut()) {
        obj.insert("created".to_owned(), JsonValue::Bool(created));
    }
    body
}

fn create(ctx: &mut Ctx<'_>, object: usize, req: &ApiRequest) -> Result<ApiResponse, SfError> {
    let body = req.body.object()?;
    let id = ctx.state.org.create(object, body, &ctx.write())?;
    let name = &ctx.shared.schema.objects[object].name;
    let mut response = ApiResponse::json(StatusCode::CREATED, save_result(&id, None));
    response.headers.push(location(ctx, name, &id));
    Ok(response)
}

fn upsert(
    ctx: &mut Ctx<'_>,
    object: usize,
    field: usize,
    value: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, SfError> {
    let body = req.body.object()?;
    let def = &ctx.shared.schema.objects[object];
    let key_name = &def.fields[field].name;
    if field != 0 && body.keys().any(|k| k.eq_ignore_ascii_case(key_name)) {
        return Err(SfError::field(
            code::INVALID_FIELD,
            format!("The {key_name} field should not be specified in the sobject data."),
            &[key_name],
        ));
    }
    let update_only = req
        .param("updateOnly")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let outcome = ctx.state.org.upsert(
        object,
        field,
        &JsonValue::String(value.to_owned()),
        body,
        update_only,
        &ctx.write(),
    )?;
    let version = ctx.version_path();
    Ok(match outcome {
        UpsertOutcome::Created(id) => {
            let mut r = ApiResponse::json(StatusCode::CREATED, save_result(&id, Some(true)));
            r.headers.push(location(ctx, &def.name, &id));
            r
        }
        UpsertOutcome::Updated(id) => match ctx.shared.config.upsert_update_status {
            UpsertUpdateStatus::Ok200 => {
                ApiResponse::json(StatusCode::OK, save_result(&id, Some(false)))
            }
            UpsertUpdateStatus::NoContent204 => ApiResponse::no_content(),
        },
        UpsertOutcome::Multiple(ids) => ApiResponse::json(
            StatusCode::MULTIPLE_CHOICES,
            JsonValue::Array(
                ids.iter()
                    .map(|id| JsonValue::String(record_url(&version, &def.name, id.as_str())))
                    .collect(),
            ),
        ),
    })
}

/// Renders a record with `attributes` first: every field, or only `fields` followed by `Id`.
pub(crate) fn render_record(
    def: &ObjectDef,
    record: &Record,
    fields: Option<&[usize]>,
    version: &str,
) -> JsonValue {
    let mut out = Map::new();
    out.insert(
        "attributes".to_owned(),
        json!({ "type": def.name, "url": record_url(version, &def.name, record.id.as_str()) }),
    );
    let mut put = |i: usize| {
        let f = &def.fields[i];
        out.insert(f.name.clone(), record.get(i).to_json(&f.ty));
    };
    match fields {
        Some(list) => {
            for &i in list {
                put(i);
            }
            put(0);
        }
        None => (0..def.fields.len()).for_each(put),
    }
    JsonValue::Object(out)
}

/// Parses a `fields=A,B` list against an object.
pub(crate) fn field_list(def: &ObjectDef, list: &str) -> Result<Vec<usize>, SfError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            def.field_index(name).ok_or_else(|| {
                SfError::bad_request(
                    code::INVALID_FIELD,
                    format!("No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", def.name),
                )
            })
        })
        .collect()
}

fn read(ctx: &Ctx<'_>, object: usize, id: &SfId, req: &ApiRequest) -> Result<ApiResponse, SfError> {
    let def = &ctx.shared.schema.objects[object];
    let fields = req
        .param("fields")
        .map(|l| field_list(def, l))
        .transpose()?;
    let record = ctx.state.org.live(object, id)?;
    Ok(ApiResponse::json(
        StatusCode::OK,
        render_record(def, record, fields.as_deref(), &ctx.version_path()),
    ))
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

fn replication_date(req: &ApiRequest, name: &str) -> Result<DateTime<Utc>, SfError> {
    let raw = req.param(name).ok_or_else(|| {
        SfError::bad_request(code::MISSING_ARGUMENT, format!("{name} date is required"))
    })?;
    // An unencoded `+` in the offset arrives as a space.
    parse_datetime(&raw.replace(' ', "+")).ok_or_else(|| {
        SfError::bad_request(
            code::INVALID_REPLICATION_DATE,
            format!("{name} is not a valid dateTime: {raw}"),
        )
    })
}

/// getUpdated / getDeleted. Seconds are ignored (crm.md §2.9): the window is
/// `[start, end)` with both ends truncated to the minute and `end` capped at now,
/// and `latestDateCovered` is that end, so polling from it misses nothing.
fn replication(
    ctx: &Ctx<'_>,
    object: usize,
    req: &ApiRequest,
    deleted: bool,
) -> Result<ApiResponse, SfError> {
    let start = minute(replication_date(req, "start")?);
    let end = minute(replication_date(req, "end")?.min(ctx.now));
    let max_days = i64::from(ctx.shared.config.replication_max_days);
    if start < ctx.now - TimeDelta::days(max_days) {
        return Err(SfError::bad_request(
            code::INVALID_REPLICATION_DATE,
            format!("startDate cannot be more than {max_days} days ago"),
        ));
    }
    if end < start {
        return Err(SfError::bad_request(
            code::INVALID_REPLICATION_DATE,
            "EndDate must chronologically follow the StartDate",
        ));
    }
    let def = &ctx.shared.schema.objects[object];
    let modstamp = def
        .field_index("SystemModstamp")
        .or_else(|| def.field_index("LastModifiedDate"));
    let org = &ctx.state.org;
    let retention = ctx.now - TimeDelta::days(i64::from(ctx.shared.config.recycle_bin_days));
    let in_window = |t: DateTime<Utc>| start <= t && t < end;
    if deleted {
        let mut rows: Vec<(DateTime<Utc>, &SfId)> = org
            .records(object)
            .filter_map(|r| r.deleted_at.map(|at| (at, &r.id)))
            .filter(|(at, _)| *at >= retention)
            .collect();
        rows.sort();
        let earliest = rows
            .first()
            .map_or(minute(retention), |(at, _)| minute(*at));
        let deleted_records: Vec<JsonValue> = rows
            .iter()
            .filter(|(at, _)| in_window(*at))
            .map(|(at, id)| json!({ "id": id.as_str(), "deletedDate": format_datetime(*at) }))
            .collect();
        return Ok(ApiResponse::json(
            StatusCode::OK,
            json!({
                "deletedRecords": deleted_records,
                "earliestDateAvailable": format_datetime(earliest),
                "latestDateCovered": format_datetime(end),
            }),
        ));
    }
    let ids: Vec<JsonValue> = org
        .records(object)
        .filter(|r| r.deleted_at.is_none())
        .filter(|r| {
            modstamp
                .and_then(|i| r.get(i).as_datetime())
                .is_some_and(in_window)
        })
        .map(|r| JsonValue::String(r.id.as_str().to_owned()))
        .collect();
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({ "ids": ids, "latestDateCovered": format_datetime(end) }),
    ))
}

fn urls(version: &str, name: &str) -> JsonValue {
    let base = format!("/services/data/{version}/sobjects/{name}");
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

fn object_summary(def: &ObjectDef, version: &str) -> JsonValue {
    json!({
        "name": def.name,
        "label": def.label,
        "labelPlural": def.label_plural,
        "keyPrefix": def.key_prefix,
        "custom": false,
        "createable": def.writable,
        "updateable": def.writable,
        "deletable": def.writable,
        "queryable": true,
        "retrieveable": true,
        "replicateable": true,
        "urls": urls(version, &def.name),
    })
}

fn describe_global(ctx: &Ctx<'_>) -> ApiResponse {
    let version = ctx.version_path();
    let objects: Vec<JsonValue> = ctx
        .shared
        .schema
        .objects
        .iter()
        .map(|o| object_summary(o, &version))
        .collect();
    ApiResponse::json(
        StatusCode::OK,
        json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects }),
    )
}

fn basic_info(ctx: &Ctx<'_>, object: usize) -> ApiResponse {
    let def = &ctx.shared.schema.objects[object];
    ApiResponse::json(
        StatusCode::OK,
        json!({ "objectDescribe": object_summary(def, &ctx.version_path()), "recentItems": [] }),
    )
}

fn describe(ctx: &Ctx<'_>, object: usize) -> ApiResponse {
    let def = &ctx.shared.schema.objects[object];
    let fields: Vec<JsonValue> = def
        .fields
        .iter()
        .map(|f| {
            let (precision, scale) = match f.ty {
                FieldType::Currency(p, s) | FieldType::Percent(p, s) | FieldType::Double(p, s) => {
                    (p, s)
                }
                _ => (0, 0),
            };
            let picklist: Vec<JsonValue> = match &f.ty {
                FieldType::Picklist { values, .. } => values
                    .iter()
                    .map(|v| {
                        let default =
                            f.default.as_ref().and_then(|d| d.as_text()) == Some(v.as_str());
                        json!({ "value": v, "label": v, "active": true, "defaultValue": default })
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let (reference_to, relationship) = match &f.ty {
                FieldType::Reference {
                    target,
                    relationship,
                } => (vec![target.clone()], Some(relationship.clone())),
                _ => (Vec::new(), None),
            };
            json!({
                "name": f.name,
                "label": f.label,
                "type": f.ty.describe_name(),
                "length": f.ty.max_length().unwrap_or(0),
                "precision": precision,
                "scale": scale,
                "nillable": f.nillable(),
                "createable": f.createable,
                "updateable": f.updateable,
                "externalId": f.external_id,
                "unique": f.unique,
                "caseSensitive": f.case_sensitive,
                "custom": f.custom,
                "defaultedOnCreate": f.default.is_some() || matches!(f.ty, FieldType::Boolean),
                "restrictedPicklist": matches!(f.ty, FieldType::Picklist { restricted: true, .. }),
                "picklistValues": picklist,
                "referenceTo": reference_to,
                "relationshipName": relationship,
            })
        })
        .collect();
    let mut body = object_summary(def, &ctx.version_path());
    if let Some(obj) = body.as_object_mut() {
        obj.insert("fields".to_owned(), JsonValue::Array(fields));
    }
    ApiResponse::json(StatusCode::OK, body)
}
