//! Creating, updating, upserting and deleting records with Dataverse's rules:
//! the body read as columns and `@odata.bind` lookups (crm.md §1.4), required
//! columns, the statecode/statuscode tables and read-only closed records, the
//! conditional headers and the alternate-key rules of upsert (§1.5, §1.6), and the
//! columns the platform maintains (`createdon`, `modifiedon`, `versionnumber`,
//! `ownerid`, `fullname`, currency and base amounts).

use super::error::DvError;
use super::keys::{self, Address};
use super::schema::{ColumnKind, Requirement, Schema, Table};
use super::state::next_state;
use super::store::{Row, Store, stamp};
use super::values::{coerce, format_timestamp, money_value};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Who writes, when, and the environment's base currency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteCtx<'a> {
    /// The tables.
    pub schema: &'a Schema,
    /// The write's time.
    pub now: DateTime<Utc>,
    /// The writing system user.
    pub user: Uuid,
    /// Currency given to money values on records without one (crm.md §1.4, unconfirmed).
    pub base_currency: Option<Uuid>,
}

/// The columns a request sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Changes {
    values: Vec<(String, Value)>,
    lookups: Vec<(String, Option<(String, Uuid)>)>,
}

impl Changes {
    /// True when `column` is set (as a value or a lookup).
    pub fn touches(&self, column: &str) -> bool {
        self.values.iter().any(|(c, _)| c == column)
            || self.lookups.iter().any(|(c, _)| c == column)
    }

    /// The new value of a plain column.
    pub fn value(&self, column: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v)
    }

    /// Sets a plain column.
    pub fn set(&mut self, column: &str, value: Value) {
        self.forget(column);
        self.values.push((column.to_owned(), value));
    }

    /// Sets a lookup.
    pub fn set_lookup(&mut self, column: &str, target: Option<(&str, Uuid)>) {
        self.forget(column);
        self.lookups
            .push((column.to_owned(), target.map(|(t, id)| (t.to_owned(), id))));
    }

    /// The new target of a lookup, when the changes set one.
    pub fn lookup(&self, column: &str) -> Option<(&str, Uuid)> {
        self.lookups
            .iter()
            .find(|(c, _)| c == column)
            .and_then(|(_, t)| t.as_ref().map(|(table, id)| (table.as_str(), *id)))
    }

    /// Drops a column from the changes.
    pub fn forget(&mut self, column: &str) {
        self.values.retain(|(c, _)| c != column);
        self.lookups.retain(|(c, _)| c != column);
    }
}

/// The conditional headers of a write (crm.md §1.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Preconditions {
    /// `If-Match: *` (update only).
    pub if_match_any: bool,
    /// `If-Match: W/"n"` (optimistic concurrency).
    pub if_match_etag: Option<String>,
    /// `If-None-Match: *` (create only).
    pub if_none_match_any: bool,
}

/// Whether an upsert created or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The record.
    pub id: Uuid,
    /// True when it was created.
    pub created: bool,
}

/// Who is changing the state: a PATCH is refused where the state needs an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateChangeBy {
    /// A PATCH of statecode/statuscode.
    Patch,
    /// QualifyLead, WinOpportunity, LoseOpportunity.
    Action,
}

fn etag_version(etag: &str) -> Option<u64> {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// The record `address` points at, if it exists.
pub(crate) fn resolve(store: &Store, table: &Table, address: &Address) -> Option<Uuid> {
    match address {
        Address::Id(id) => store.get(&table.logical_name, id).map(|r| r.id),
        Address::Key { name, probe } => store.find_by_key(table, name, probe),
    }
}

fn not_found(table: &Table, address: &Address) -> DvError {
    match address {
        Address::Id(id) => DvError::not_found_id(&table.logical_name, id),
        Address::Key { .. } => DvError::not_found_key(&table.logical_name),
    }
}

/// Reads a request body into changes: plain columns, `<nav>@odata.bind` lookups.
/// Instance annotations (`@odata.type`, `x@OData.Community…`) are ignored, and so are
/// columns that are not valid for the operation (`createdon`, `fullname`, …).
pub(crate) fn parse_body(
    schema: &Schema,
    store: &Store,
    table: &Table,
    body: &Map<String, Value>,
    create: bool,
) -> Result<Changes, DvError> {
    let set = table.entity_set.as_str();
    let mut changes = Changes::default();
    for (key, value) in body {
        if key.starts_with('@') {
            continue;
        }
        if let Some((nav, annotation)) = key.split_once('@') {
            if annotation != "odata.bind" {
                continue;
            }
            let Some((column, target_table)) = table.navigation(nav) else {
                return Err(DvError::payload(
                    set,
                    format!(
                        "An undeclared property '{nav}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values."
                    ),
                ));
            };
            let target = bind_target(schema, store, target_table, value, set)?;
            changes.set_lookup(&column.name, target.map(|id| (target_table, id)));
            continue;
        }
        if let Some(column) = table
            .column_by_wire_name(key)
            .filter(|c| c.kind.is_lookup())
        {
            let _ = column;
            return Err(DvError::bad_url(
                "CRM do not support direct update of Entity Reference properties, Use Navigation properties instead.",
            ));
        }
        let Some(column) = table.column(key) else {
            return Err(DvError::payload(
                set,
                format!(
                    "The property '{key}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                    table.logical_name
                ),
            ));
        };
        if column.kind.is_lookup() {
            return Err(DvError::payload(
                set,
                "A 'PrimitiveValue' node with non-null value was found when trying to read the value of a navigation property; however, a 'StartArray' node, a 'StartObject' node, or a 'PrimitiveValue' node with null value was expected.",
            ));
        }
        let allowed = matches!(column.kind, ColumnKind::PrimaryKey)
            || if create {
                column.on_create
            } else {
                column.on_update
            };
        if !allowed {
            tracing::debug!(column = %key, "ignoring a column not valid for this operation");
            continue;
        }
        changes.set(key, coerce(&table.logical_name, set, column, value)?);
    }
    Ok(changes)
}

/// Resolves an `@odata.bind` value (`/accounts(<guid>)`, `accounts(<guid>)`, an
/// absolute URL, or an alternate-key form) to an existing record of `target_table`.
fn bind_target(
    schema: &Schema,
    store: &Store,
    target_table: &str,
    value: &Value,
    set: &str,
) -> Result<Option<Uuid>, DvError> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.as_str(),
        other => {
            return Err(DvError::payload(
                set,
                format!("The value '{other}' of an '@odata.bind' annotation is not a URL."),
            ));
        }
    };
    let path = match text.find("/api/data/") {
        Some(i) => {
            let after = &text[i + "/api/data/".len()..];
            after.split_once('/').map(|(_, p)| p).unwrap_or(after)
        }
        None => text.trim_start_matches('/'),
    };
    let bad = || {
        DvError::payload(
            set,
            format!("The '@odata.bind' value '{text}' is not a valid entity reference."),
        )
    };
    let parsed = keys::parse_path(path).map_err(|_| bad())?;
    let target = schema.by_entity_set(&parsed.head).ok_or_else(bad)?;
    if target.logical_name != target_table || !parsed.rest.is_empty() {
        return Err(bad());
    }
    let spec = parsed.key.ok_or_else(bad)?;
    let address = keys::address(target, &spec)?;
    resolve(store, target, &address)
        .map(Some)
        .ok_or_else(|| not_found(target, &address))
}

fn check_required(table: &Table, row: &Row, only: Option<&Changes>) -> Result<(), DvError> {
    for column in &table.columns {
        if column.required == Requirement::None || matches!(column.kind, ColumnKind::PrimaryKey) {
            continue;
        }
        if let Some(changes) = only
            && !changes.touches(&column.name)
        {
            continue;
        }
        let empty = match row.get(&column.name) {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            _ => false,
        };
        if empty {
            return Err(DvError::required(
                &column.name,
                &column.label,
                &table.logical_name,
            ));
        }
    }
    Ok(())
}

fn apply(row: &mut Row, changes: &Changes) {
    for (column, value) in &changes.values {
        row.attrs.insert(column.clone(), value.clone());
    }
    for (column, target) in &changes.lookups {
        row.set_lookup(column, target.as_ref().map(|(t, id)| (t.as_str(), *id)));
    }
}

/// Recomputes `fullname`, the currency, the exchange rate and the base amounts.
fn derive(ctx: &WriteCtx<'_>, store: &Store, table: &Table, row: &mut Row) {
    if let Some((first, last)) = &table.full_name_from {
        let parts: Vec<&str> = [row.get(first), row.get(last)]
            .into_iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        row.attrs
            .insert("fullname".to_owned(), Value::String(parts.join(" ")));
    }
    if !table.has_money() || table.column("transactioncurrencyid").is_none() {
        return;
    }
    let has_amount = table.columns.iter().any(|c| {
        matches!(c.kind, ColumnKind::Money { .. }) && c.on_update && !row.get(&c.name).is_null()
    });
    if has_amount
        && row.lookup("transactioncurrencyid").is_none()
        && let Some(base) = ctx.base_currency
    {
        row.set_lookup("transactioncurrencyid", Some(("transactioncurrency", base)));
    }
    let rate = row
        .lookup("transactioncurrencyid")
        .and_then(|(_, id)| store.get("transactioncurrency", &id))
        .and_then(|c| c.get("exchangerate").as_f64());
    row.attrs.insert(
        "exchangerate".to_owned(),
        rate.map_or(Value::Null, Value::from),
    );
    for column in &table.columns {
        let Some(base_name) = column.name.strip_suffix("_base") else {
            continue;
        };
        let base_value = match (row.get(base_name).as_f64(), rate) {
            (Some(v), Some(r)) if r > 0.0 => money_value(v / r),
            _ => Value::Null,
        };
        row.attrs.insert(column.name.clone(), base_value);
    }
}

fn check_preconditions(
    pre: &Preconditions,
    existing: Option<&Row>,
    table: &Table,
    address: &Address,
) -> Result<(), DvError> {
    match existing {
        None if pre.if_match_any || pre.if_match_etag.is_some() => Err(not_found(table, address)),
        Some(_) if pre.if_none_match_any => Err(DvError::already_exists()),
        Some(row) => match &pre.if_match_etag {
            Some(etag) if etag_version(etag) != Some(row.version) => {
                Err(DvError::version_mismatch())
            }
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// Creates a record (`POST`, or the create half of an upsert) with `changes`.
pub(crate) fn insert(
    ctx: &WriteCtx<'_>,
    store: &mut Store,
    table: &Table,
    id: Option<Uuid>,
    changes: &Changes,
) -> Result<Uuid, DvError> {
    let id = match (id, changes.value(&table.primary_id).and_then(Value::as_str)) {
        (Some(id), Some(body)) if Uuid::parse_str(body).ok() != Some(id) => {
            return Err(DvError::invalid_argument(format!(
                "The {} in the request body does not match the key in the request URI.",
                table.primary_id
            )));
        }
        (Some(id), _) => id,
        (None, Some(body)) => {
            Uuid::parse_str(body).map_err(|_| DvError::invalid_argument("bad id"))?
        }
        (None, None) => Uuid::new_v4(),
    };
    if store.get(&table.logical_name, &id).is_some() {
        return Err(DvError::duplicate_id());
    }
    let mut row = Row {
        id,
        attrs: Map::new(),
        lookup_tables: BTreeMap::new(),
        version: 0,
    };
    for column in &table.columns {
        if let Some(default) = &column.default {
            row.attrs.insert(column.name.clone(), default.clone());
        }
    }
    let state = next_state(table, None, changes, &id, StateChangeBy::Patch)?;
    apply(&mut row, changes);
    row.attrs.insert(
        table.primary_id.clone(),
        Value::String(super::values::guid_text(&id)),
    );
    if let Some((state, status)) = state {
        row.attrs.insert("statecode".to_owned(), Value::from(state));
        row.attrs
            .insert("statuscode".to_owned(), Value::from(status));
    }
    if table.user_owned {
        if row.lookup("ownerid").is_none() {
            row.set_lookup("ownerid", Some(("systemuser", ctx.user)));
        }
        row.set_lookup("createdby", Some(("systemuser", ctx.user)));
    }
    row.attrs.insert(
        "createdon".to_owned(),
        Value::String(format_timestamp(&ctx.now)),
    );
    derive(ctx, store, table, &mut row);
    check_required(table, &row, None)?;
    store.check_keys_unique(table, &row)?;
    let version = store.next_version();
    stamp(&mut row, table, version, ctx.now, ctx.user);
    store.put(table, row);
    Ok(id)
}

/// Updates an existing record with `changes`.
pub(crate) fn update(
    ctx: &WriteCtx<'_>,
    store: &mut Store,
    table: &Table,
    id: &Uuid,
    changes: &Changes,
    by: StateChangeBy,
) -> Result<(), DvError> {
    let mut row = store
        .get(&table.logical_name, id)
        .cloned()
        .ok_or_else(|| DvError::not_found_id(&table.logical_name, id))?;
    if let Some(body_id) = changes.value(&table.primary_id).and_then(Value::as_str)
        && Uuid::parse_str(body_id).ok() != Some(*id)
    {
        return Err(DvError::invalid_argument(format!(
            "The {} in the request body does not match the key in the request URI.",
            table.primary_id
        )));
    }
    let current = row.state();
    let state = next_state(table, current, changes, id, by)?;
    if let (Some(model), Some((cs, _))) = (&table.states, current)
        && let Some(current_def) = model.state(cs)
        && current_def.read_only
        && by == StateChangeBy::Patch
    {
        let reopening = state
            .and_then(|(s, _)| model.state(s))
            .is_some_and(|s| !s.read_only);
        if !reopening {
            let initial = model
                .initial()
                .map(|s| (s.code, s.label.clone()))
                .unwrap_or((0, "Open".to_owned()));
            return Err(DvError::invalid_argument(format!(
                "The {table} is closed ({state}) and cannot be modified. Reactivate it first (statecode {code}, {label}).",
                table = table.logical_name,
                state = current_def.label,
                code = initial.0,
                label = initial.1,
            )));
        }
    }
    apply(&mut row, changes);
    if let Some((state, status)) = state {
        row.attrs.insert("statecode".to_owned(), Value::from(state));
        row.attrs
            .insert("statuscode".to_owned(), Value::from(status));
    }
    derive(ctx, store, table, &mut row);
    check_required(table, &row, Some(changes))?;
    store.check_keys_unique(table, &row)?;
    let version = store.next_version();
    stamp(&mut row, table, version, ctx.now, ctx.user);
    store.put(table, row);
    Ok(())
}

/// `POST /<set>`: creates a record from `body`.
pub(crate) fn create(
    ctx: &WriteCtx<'_>,
    store: &mut Store,
    table: &Table,
    body: &Map<String, Value>,
) -> Result<Uuid, DvError> {
    let changes = parse_body(ctx.schema, store, table, body, true)?;
    insert(ctx, store, table, None, &changes)
}

/// `PATCH /<set>(<key>)`: update, or create when missing — unless a conditional
/// header says otherwise (crm.md §1.6).
pub(crate) fn upsert(
    ctx: &WriteCtx<'_>,
    store: &mut Store,
    table: &Table,
    address: &Address,
    body: &Map<String, Value>,
    pre: &Preconditions,
) -> Result<Outcome, DvError> {
    let existing = resolve(store, table, address);
    check_preconditions(
        pre,
        existing.and_then(|id| store.get(&table.logical_name, &id)),
        table,
        address,
    )?;
    match existing {
        Some(id) => {
            let mut changes = parse_body(ctx.schema, store, table, body, false)?;
            // §1.6: on update, body values for the key columns are removed.
            if let Address::Key { name, .. } = address
                && let Some(key) = table.keys.iter().find(|k| &k.name == name)
            {
                for column in &key.columns {
                    changes.forget(column);
                }
            }
            update(ctx, store, table, &id, &changes, StateChangeBy::Patch)?;
            Ok(Outcome { id, created: false })
        }
        None => {
            let mut changes = parse_body(ctx.schema, store, table, body, true)?;
            let id = match address {
                Address::Id(id) => Some(*id),
                Address::Key { name, probe } => {
                    // §1.6: on create, body key values win; otherwise the URL's are copied in.
                    if let Some(key) = table.keys.iter().find(|k| &k.name == name) {
                        for column in &key.columns {
                            if changes.touches(column) {
                                continue;
                            }
                            match probe.lookup(column) {
                                Some(target) => changes.set_lookup(column, Some(target)),
                                None => changes.set(column, probe.get(column).clone()),
                            }
                        }
                    }
                    None
                }
            };
            let id = insert(ctx, store, table, id, &changes)?;
            Ok(Outcome { id, created: true })
        }
    }
}

/// `DELETE /<set>(<key>)`: removes the record; lookups pointing at it are cleared.
pub(crate) fn delete(
    ctx: &WriteCtx<'_>,
    store: &mut Store,
    table: &Table,
    address: &Address,
    pre: &Preconditions,
) -> Result<(), DvError> {
    let id = resolve(store, table, address).ok_or_else(|| not_found(table, address))?;
    if let (Some(etag), Some(row)) = (&pre.if_match_etag, store.get(&table.logical_name, &id))
        && etag_version(etag) != Some(row.version)
    {
        return Err(DvError::version_mismatch());
    }
    store.remove(table, &id, ctx.now);
    for (other_table, other_id, column) in store.referrers(&table.logical_name, &id) {
        let Some(other) = ctx.schema.by_logical_name(&other_table) else {
            continue;
        };
        if let Some(mut row) = store.get(&other_table, &other_id).cloned() {
            row.set_lookup(&column, None);
            let version = store.next_version();
            stamp(&mut row, other, version, ctx.now, ctx.user);
            store.put(other, row);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
