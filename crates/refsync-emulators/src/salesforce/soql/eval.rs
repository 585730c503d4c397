//! Runs a parsed [`Query`] against the org: resolves names against the schema
//! (unknown fields → `INVALID_FIELD`, as Salesforce reports them), checks each
//! filter value against its field's type, filters, sorts, applies
//! OFFSET/LIMIT and renders rows in the REST response shape.
//!
//! Semantics follow SOQL rather than SQL where they differ: text comparisons
//! are case-insensitive, `field != 'x'` and `NOT IN` match nulls, nulls sort
//! first ascending and last descending, relative dates are whole days in GMT
//! (the emulated org's time zone).

use super::super::error::{SfError, code};
use super::super::ids::SfId;
use super::super::org::{Org, Record};
use super::super::schema::{FieldDef, FieldType, ObjectDef};
use super::super::value::Value;
use super::ast::{FieldsSet, Path, Query, SelectItem};
use super::filter::{compare, compile_filter, eval};
use super::lexer::located;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as JsonValue, json};
use std::cmp::Ordering;

/// Largest OFFSET Salesforce accepts.
pub const MAX_OFFSET: u64 = 2000;

/// What a query produced.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Matching rows (after OFFSET/LIMIT).
    pub total_size: usize,
    /// Rendered rows (empty for `COUNT()`).
    pub records: Vec<JsonValue>,
}

/// Where a query runs: the time (for relative dates), the API version (for
/// record URLs) and which deleted records are visible.
#[derive(Debug, Clone)]
pub struct QueryEnv<'a> {
    /// Now.
    pub now: DateTime<Utc>,
    /// `vNN.0` for attribute URLs.
    pub version: &'a str,
    /// `queryAll`: include records deleted at or after this instant.
    pub deleted_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Resolved {
    Direct(usize),
    Via {
        reference: usize,
        target: usize,
        field: usize,
    },
}

pub(super) struct Compiled<'o> {
    object: usize,
    def: &'o ObjectDef,
    columns: Vec<Resolved>,
}

fn no_such_column(q: &str, pos: usize, field: &str, object: &str) -> SfError {
    SfError::bad_request(
        code::INVALID_FIELD,
        located(
            q,
            pos,
            &format!(
                "No such column '{field}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
            ),
        ),
    )
}

impl<'o> Compiled<'o> {
    pub(super) fn resolve(&self, org: &'o Org, q: &str, path: &Path) -> Result<Resolved, SfError> {
        match path.parts.as_slice() {
            [field] => self
                .def
                .field_index(field)
                .map(Resolved::Direct)
                .ok_or_else(|| no_such_column(q, path.pos, field, &self.def.name)),
            [relationship, field] => {
                let reference = self.def.relationship_field(relationship).ok_or_else(|| {
                    SfError::bad_request(
                        code::INVALID_FIELD,
                        located(
                            q,
                            path.pos,
                            &format!(
                                "Didn't understand relationship '{relationship}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                            ),
                        ),
                    )
                })?;
                let FieldType::Reference { target, .. } = &self.def.fields[reference].ty else {
                    return Err(no_such_column(q, path.pos, relationship, &self.def.name));
                };
                let target = org
                    .schema()
                    .object_index(target)
                    .ok_or_else(|| no_such_column(q, path.pos, relationship, &self.def.name))?;
                let field = org.schema().objects[target]
                    .field_index(field)
                    .ok_or_else(|| {
                        no_such_column(q, path.pos, field, &org.schema().objects[target].name)
                    })?;
                Ok(Resolved::Via {
                    reference,
                    target,
                    field,
                })
            }
            _ => Err(SfError::malformed_query(located(
                q,
                path.pos,
                "relationship paths deeper than one level are not supported by the refsync Salesforce emulator",
            ))),
        }
    }

    pub(super) fn field_def(&self, org: &'o Org, r: Resolved) -> &'o FieldDef {
        match r {
            Resolved::Direct(i) => &self.def.fields[i],
            Resolved::Via { target, field, .. } => &org.schema().objects[target].fields[field],
        }
    }
}

pub(super) fn value<'r>(org: &'r Org, record: &'r Record, r: Resolved) -> &'r Value {
    match r {
        Resolved::Direct(i) => record.get(i),
        Resolved::Via {
            reference,
            target,
            field,
        } => parent(org, record, reference, target).map_or(&Value::Null, |p| p.get(field)),
    }
}

fn parent<'r>(
    org: &'r Org,
    record: &Record,
    reference: usize,
    target: usize,
) -> Option<&'r Record> {
    let id = SfId::parse(record.get(reference).as_text()?)?;
    org.record(target, &id).filter(|p| p.deleted_at.is_none())
}

/// The URL of a record in the REST API.
pub fn record_url(version: &str, object: &str, id: &str) -> String {
    format!("/services/data/{version}/sobjects/{object}/{id}")
}

fn attributes(version: &str, object: &str, id: &str) -> JsonValue {
    json!({ "type": object, "url": record_url(version, object, id) })
}

fn render(org: &Org, c: &Compiled<'_>, record: &Record, version: &str) -> JsonValue {
    let mut row = Map::new();
    row.insert(
        "attributes".to_owned(),
        attributes(version, &c.def.name, record.id.as_str()),
    );
    for col in &c.columns {
        match *col {
            Resolved::Direct(i) => {
                let f = &c.def.fields[i];
                row.insert(f.name.clone(), record.get(i).to_json(&f.ty));
            }
            Resolved::Via {
                reference,
                target,
                field,
            } => {
                let FieldType::Reference { relationship, .. } = &c.def.fields[reference].ty else {
                    continue;
                };
                let target_def = &org.schema().objects[target];
                let entry = row.entry(relationship.clone()).or_insert(JsonValue::Null);
                let Some(p) = parent(org, record, reference, target) else {
                    continue;
                };
                if entry.is_null() {
                    let mut nested = Map::new();
                    nested.insert(
                        "attributes".to_owned(),
                        attributes(version, &target_def.name, p.id.as_str()),
                    );
                    *entry = JsonValue::Object(nested);
                }
                if let Some(nested) = entry.as_object_mut() {
                    let f = &target_def.fields[field];
                    nested.insert(f.name.clone(), p.get(field).to_json(&f.ty));
                }
            }
        }
    }
    JsonValue::Object(row)
}

/// Runs `query` (whose text is `text`, for error messages).
pub fn run(
    org: &Org,
    query: &Query,
    text: &str,
    env: &QueryEnv<'_>,
) -> Result<QueryResult, SfError> {
    let object = org.schema().object_index(&query.from).ok_or_else(|| {
        SfError::bad_request(
            code::INVALID_TYPE,
            located(
                text,
                query.from_pos,
                &format!(
                    "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                    query.from
                ),
            ),
        )
    })?;
    let mut c = Compiled {
        object,
        def: &org.schema().objects[object],
        columns: Vec::new(),
    };
    let count_only = query
        .select
        .iter()
        .any(|s| matches!(s, SelectItem::CountAll));
    if count_only && query.select.len() > 1 {
        return Err(SfError::malformed_query(located(
            text,
            0,
            "COUNT() cannot be used with other fields",
        )));
    }
    let mut seen = Vec::new();
    for item in &query.select {
        let resolved: Vec<Resolved> = match item {
            SelectItem::CountAll => Vec::new(),
            SelectItem::Field(path) => vec![c.resolve(org, text, path)?],
            SelectItem::Fields(set) => {
                if matches!(set, FieldsSet::All | FieldsSet::Custom)
                    && query.limit.is_none_or(|l| l > 200)
                {
                    return Err(SfError::malformed_query(located(
                        text,
                        0,
                        "The SOQL FIELDS function must have a LIMIT of at most 200",
                    )));
                }
                c.def
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| match set {
                        FieldsSet::All => true,
                        FieldsSet::Standard => !f.custom,
                        FieldsSet::Custom => f.custom,
                    })
                    .map(|(i, _)| Resolved::Direct(i))
                    .collect()
            }
        };
        for r in resolved {
            let key = match r {
                Resolved::Direct(i) => (usize::MAX, i),
                Resolved::Via {
                    reference, field, ..
                } => (reference, field),
            };
            if seen.contains(&key) {
                let name = &c.field_def(org, r).name;
                return Err(SfError::malformed_query(located(
                    text,
                    0,
                    &format!("duplicate field selected: {name}"),
                )));
            }
            seen.push(key);
            c.columns.push(r);
        }
    }
    if let Some(offset) = query.offset
        && offset > MAX_OFFSET
    {
        return Err(SfError::bad_request(
            code::NUMBER_OUTSIDE_VALID_RANGE,
            format!("Maximum SOQL offset allowed is {MAX_OFFSET}"),
        ));
    }
    let filter = query
        .filter
        .as_ref()
        .map(|f| compile_filter(&c, org, text, f, env.now))
        .transpose()?;
    let order: Vec<(Resolved, bool, bool)> = query
        .order_by
        .iter()
        .map(|o| Ok((c.resolve(org, text, &o.path)?, o.desc, o.nulls_last)))
        .collect::<Result<_, SfError>>()?;

    let mut rows: Vec<&Record> = org
        .records(c.object)
        .filter(|r| match (r.deleted_at, env.deleted_since) {
            (None, _) => true,
            (Some(at), Some(since)) => at >= since,
            (Some(_), None) => false,
        })
        .filter(|r| filter.as_ref().is_none_or(|f| eval(org, &c, r, f)))
        .collect();
    if !order.is_empty() {
        rows.sort_by(|a, b| {
            for (r, desc, nulls_last) in &order {
                let (x, y) = (value(org, a, *r), value(org, b, *r));
                let o = match (x.is_null(), y.is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => {
                        if *nulls_last {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        }
                    }
                    (false, true) => {
                        if *nulls_last {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        }
                    }
                    (false, false) => {
                        let o = compare(x, y).unwrap_or(Ordering::Equal);
                        if *desc { o.reverse() } else { o }
                    }
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    let offset = usize::try_from(query.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let limit = query
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let selected = rows.into_iter().skip(offset).take(limit);
    if count_only {
        return Ok(QueryResult {
            total_size: selected.count(),
            records: Vec::new(),
        });
    }
    let records: Vec<JsonValue> = selected.map(|r| render(org, &c, r, env.version)).collect();
    Ok(QueryResult {
        total_size: records.len(),
        records,
    })
}
