//! The org's records and the rules every save goes through.
//!
//! All writes — single-record REST calls, composite subrequests, collection
//! records, upserts and control-API edits — go through [`Org::create`],
//! [`Org::update`] and [`Org::delete`], so validation, derived fields
//! (`Name`, `IsClosed`/`IsWon`/`Probability` from the stage, …), uniqueness and
//! the audit fields (`CreatedDate`, `LastModifiedById`, `SystemModstamp`, …)
//! behave the same everywhere. Nothing here is async or reads a clock: the
//! caller passes the acting user and the time in a [`WriteCtx`].
//!
//! `allOrNone` is implemented with savepoints over an undo journal
//! ([`Org::savepoint`], [`Org::rollback_to`]), so a rolled-back request
//! restores exactly the records it touched and nothing else.

use super::error::{SfError, code};
use super::ids::SfId;
use super::schema::{FieldDef, FieldType, ObjectDef, ObjectKind, Schema};
use super::value::{Value, coerce};
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value as JsonValue};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its id.
    pub id: SfId,
    /// Values by field index of its object.
    pub values: Vec<Value>,
    /// When it went to the recycle bin.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Record {
    /// The value of field `i`.
    pub fn get(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&Value::Null)
    }
}

#[derive(Debug, Clone, Default)]
struct Table {
    records: BTreeMap<SfId, Record>,
    next_seq: u64,
}

#[derive(Debug, Clone)]
struct Undo {
    object: usize,
    id: SfId,
    before: Option<Record>,
}

/// Who writes and when.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    /// The acting user's id.
    pub user: SfId,
    /// The time of the write.
    pub now: DateTime<Utc>,
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// No record matched; this one was created.
    Created(SfId),
    /// One record matched and was updated.
    Updated(SfId),
    /// Several matched; nothing changed (HTTP 300).
    Multiple(Vec<SfId>),
}

/// A position in the undo journal to roll back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint(usize);

/// All records of one org.
#[derive(Debug, Clone)]
pub struct Org {
    schema: Arc<Schema>,
    tables: Vec<Table>,
    journal: Vec<Undo>,
    open_savepoints: usize,
}

fn invalid_field(object: &ObjectDef, name: &str) -> SfError {
    SfError::field(
        code::INVALID_FIELD,
        format!("No such column '{name}' on sobject of type {}", object.name),
        &[name],
    )
}

impl Org {
    /// An empty org with the read-only tables (users, lead statuses, stages) filled in.
    pub fn new(schema: Arc<Schema>, users: &[super::config::UserConfig]) -> Self {
        let mut org = Self {
            tables: vec![Table::default(); schema.objects.len()],
            schema,
            journal: Vec::new(),
            open_savepoints: 0,
        };
        org.seed(users);
        org
    }

    fn seed(&mut self, users: &[super::config::UserConfig]) {
        let schema = Arc::clone(&self.schema);
        let text = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                Value::Text(s.to_owned())
            }
        };
        let number = |n: usize| Value::Number(Decimal::from(n));
        for (i, object) in schema.objects.iter().enumerate() {
            let rows: Vec<Vec<(&str, Value)>> = match object.kind {
                ObjectKind::User => users
                    .iter()
                    .map(|u| {
                        let first = u.first_name.clone().unwrap_or_default();
                        vec![
                            ("Username", text(&u.username)),
                            ("FirstName", text(&first)),
                            ("LastName", text(&u.last_name)),
                            ("Name", text(format!("{first} {}", u.last_name).trim())),
                            ("Email", text(&u.email)),
                            ("IsActive", Value::Bool(true)),
                        ]
                    })
                    .collect(),
                ObjectKind::LeadStatus => schema
                    .lead_statuses
                    .iter()
                    .enumerate()
                    .map(|(n, s)| {
                        vec![
                            ("ApiName", text(&s.api_name)),
                            ("MasterLabel", text(&s.api_name)),
                            ("SortOrder", number(n + 1)),
                            ("IsDefault", Value::Bool(s.is_default)),
                            ("IsConverted", Value::Bool(s.is_converted)),
                        ]
                    })
                    .collect(),
                ObjectKind::OpportunityStage => schema
                    .stages
                    .iter()
                    .enumerate()
                    .map(|(n, s)| {
                        let (api, label) = forecast_category(&s.forecast_category);
                        vec![
                            ("ApiName", text(&s.api_name)),
                            ("MasterLabel", text(&s.api_name)),
                            ("IsActive", Value::Bool(true)),
                            ("SortOrder", number(n + 1)),
                            ("IsClosed", Value::Bool(s.is_closed)),
                            ("IsWon", Value::Bool(s.is_won)),
                            (
                                "DefaultProbability",
                                number(usize::from(s.default_probability)),
                            ),
                            ("ForecastCategory", text(api)),
                            ("ForecastCategoryName", text(label)),
                        ]
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for row in rows {
                let table = &mut self.tables[i];
                table.next_seq += 1;
                let id = SfId::generate(&object.key_prefix, table.next_seq + stage_offset(object));
                let mut values = vec![Value::Null; object.fields.len()];
                values[0] = Value::Text(id.as_str().to_owned());
                for (name, value) in row {
                    if let Some(f) = object.field_index(name) {
                        values[f] = value;
                    }
                }
                table.records.insert(
                    id.clone(),
                    Record {
                        id,
                        values,
                        deleted_at: None,
                    },
                );
            }
        }
    }

    /// The schema the org follows.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Every record of object `object`, live and deleted, in id order.
    pub fn records(&self, object: usize) -> impl Iterator<Item = &Record> {
        self.tables
            .get(object)
            .into_iter()
            .flat_map(|t| t.records.values())
    }

    /// A record by id, whatever its state.
    pub fn record(&self, object: usize, id: &SfId) -> Option<&Record> {
        self.tables.get(object)?.records.get(id)
    }

    /// A live record, or `NOT_FOUND` / `ENTITY_IS_DELETED` (404) as the REST API answers.
    pub fn live(&self, object: usize, id: &SfId) -> Result<&Record, SfError> {
        match self.record(object, id) {
            Some(r) if r.deleted_at.is_none() => Ok(r),
            Some(_) => Err(SfError::new(
                StatusCode::NOT_FOUND,
                code::ENTITY_IS_DELETED,
                "entity is deleted",
            )),
            None => Err(SfError::not_found()),
        }
    }

    /// The id of the active user named `username` (case-insensitive) or with id `username`.
    pub fn user_id(&self, username: &str) -> Option<SfId> {
        let object = self.schema.object_index("User")?;
        let field = self.schema.objects[object].field_index("Username")?;
        if let Some(id) = SfId::parse(username)
            && self.record(object, &id).is_some()
        {
            return Some(id);
        }
        self.records(object)
            .find(|r| {
                r.get(field)
                    .as_text()
                    .is_some_and(|u| u.eq_ignore_ascii_case(username))
            })
            .map(|r| r.id.clone())
    }

    /// Opens a savepoint; writes after it can be undone with [`Org::rollback_to`].
    pub fn savepoint(&mut self) -> Savepoint {
        self.open_savepoints += 1;
        Savepoint(self.journal.len())
    }

    /// Keeps the writes since `sp`.
    pub fn release(&mut self, sp: Savepoint) {
        let _ = sp;
        self.open_savepoints = self.open_savepoints.saturating_sub(1);
        if self.open_savepoints == 0 {
            self.journal.clear();
        }
    }

    /// Undoes every write since `sp`, newest first.
    pub fn rollback_to(&mut self, sp: Savepoint) {
        while self.journal.len() > sp.0 {
            let Some(undo) = self.journal.pop() else {
                break;
            };
            let table = &mut self.tables[undo.object];
            match undo.before {
                Some(record) => {
                    table.records.insert(undo.id, record);
                }
                None => {
                    table.records.remove(&undo.id);
                }
            }
        }
        self.release(sp);
    }

    fn put(&mut self, object: usize, record: Record) {
        let table = &mut self.tables[object];
        let before = table.records.insert(record.id.clone(), record.clone());
        if self.open_savepoints > 0 {
            self.journal.push(Undo {
                object,
                id: record.id,
                before,
            });
        }
    }

    fn writable<'s>(
        schema: &'s Schema,
        object: usize,
        verb: &str,
    ) -> Result<&'s ObjectDef, SfError> {
        let def = &schema.objects[object];
        if def.writable {
            Ok(def)
        } else {
            Err(SfError::bad_request(
                code::INVALID_TYPE_FOR_OPERATION,
                format!("entity type {} does not support {verb}", def.name),
            ))
        }
    }

    /// Parses a request body into field values, refusing `Id`, unknown and read-only fields.
    fn parse_body(
        &self,
        def: &ObjectDef,
        body: &Map<String, JsonValue>,
        creating: bool,
    ) -> Result<Vec<(usize, Value)>, SfError> {
        let mut values = Vec::new();
        let mut read_only = Vec::new();
        let mut failed: Option<SfError> = None;
        for (key, json) in body {
            if key == "attributes" {
                continue;
            }
            let Some(i) = def.field_index(key) else {
                return Err(invalid_field(def, key));
            };
            if i == 0 {
                return Err(SfError::bad_request(
                    code::INVALID_FIELD,
                    "The Id field should not be specified in the sobject data.",
                ));
            }
            let field = &def.fields[i];
            if (creating && !field.createable) || (!creating && !field.updateable) {
                read_only.push(field.name.clone());
                continue;
            }
            match coerce(field, json) {
                Ok(v) => values.push((i, v)),
                Err(e) => match &mut failed {
                    Some(f) => f.merge(e),
                    None => failed = Some(e),
                },
            }
        }
        if !read_only.is_empty() {
            return Err(SfError::bad_request(
                code::INVALID_FIELD_FOR_INSERT_UPDATE,
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    read_only.join(", ")
                ),
            )
            .with_fields(read_only));
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(values),
        }
    }

    /// Checks that lookups point at live records of the right object.
    fn check_references(&self, def: &ObjectDef, values: &[(usize, Value)]) -> Result<(), SfError> {
        for (i, value) in values {
            let field = &def.fields[*i];
            let (FieldType::Reference { target, .. }, Value::Text(id)) = (&field.ty, value) else {
                continue;
            };
            let Some(target_index) = self.schema.object_index(target) else {
                continue;
            };
            let target_def = &self.schema.objects[target_index];
            let fields = [field.name.as_str()];
            let Some(id) = SfId::parse(id).filter(|id| id.key_prefix() == target_def.key_prefix)
            else {
                return Err(SfError::field(
                    code::FIELD_INTEGRITY_EXCEPTION,
                    format!("{}: id value of incorrect type: {id}", field.label),
                    &fields,
                ));
            };
            match self.record(target_index, &id) {
                Some(r) if r.deleted_at.is_none() => {}
                Some(_) => {
                    return Err(SfError::field(
                        code::ENTITY_IS_DELETED,
                        "entity is deleted",
                        &fields,
                    ));
                }
                None => {
                    return Err(SfError::field(
                        code::INVALID_CROSS_REFERENCE_KEY,
                        format!("invalid cross reference id: {id}"),
                        &fields,
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_required(def: &ObjectDef, values: &[Value]) -> Result<(), SfError> {
        let missing: Vec<String> = def
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| f.required && values[*i].is_null())
            .map(|(_, f)| f.name.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(SfError::bad_request(
            code::REQUIRED_FIELD_MISSING,
            format!("Required fields are missing: [{}]", missing.join(", ")),
        )
        .with_fields(missing))
    }

    fn check_unique(
        &self,
        object: usize,
        values: &[Value],
        own: Option<&SfId>,
    ) -> Result<(), SfError> {
        let def = &self.schema.objects[object];
        for (i, field) in def.fields.iter().enumerate() {
            if !field.unique || values[i].is_null() {
                continue;
            }
            let clash = self
                .records(object)
                .filter(|r| r.deleted_at.is_none() && Some(&r.id) != own)
                .find(|r| same_key(field, r.get(i), &values[i]));
            if let Some(other) = clash {
                return Err(SfError::field(
                    code::DUPLICATE_VALUE,
                    format!(
                        "duplicate value found: {} duplicates value on record with id: {}",
                        field.name, other.id
                    ),
                    &[field.name.as_str()],
                ));
            }
        }
        Ok(())
    }

    /// Creates a record from a REST body.
    pub fn create(
        &mut self,
        object: usize,
        body: &Map<String, JsonValue>,
        ctx: &WriteCtx,
    ) -> Result<SfId, SfError> {
        let schema = Arc::clone(&self.schema);
        let def = Self::writable(&schema, object, "insert")?;
        let given = self.parse_body(def, body, true)?;
        self.check_references(def, &given)?;
        let mut values: Vec<Value> = def
            .fields
            .iter()
            .map(|f| match (&f.default, &f.ty) {
                (Some(v), _) => v.clone(),
                (None, FieldType::Boolean) => Value::Bool(false),
                _ => Value::Null,
            })
            .collect();
        for (i, v) in &given {
            values[*i] = v.clone();
        }
        let given_names: Vec<&str> = given
            .iter()
            .map(|(i, _)| def.fields[*i].name.as_str())
            .collect();
        derive(def, &schema, &mut values, &given_names, true);
        Self::check_required(def, &values)?;
        self.check_unique(object, &values, None)?;

        let table = &mut self.tables[object];
        table.next_seq += 1;
        let id = SfId::generate(&def.key_prefix, table.next_seq);
        let user = Value::Text(ctx.user.as_str().to_owned());
        let now = Value::DateTime(ctx.now);
        set(def, &mut values, "Id", Value::Text(id.as_str().to_owned()));
        if def
            .field_index("OwnerId")
            .is_some_and(|i| values[i].is_null())
        {
            set(def, &mut values, "OwnerId", user.clone());
        }
        set(def, &mut values, "CreatedDate", now.clone());
        set(def, &mut values, "CreatedById", user.clone());
        set(def, &mut values, "LastModifiedDate", now.clone());
        set(def, &mut values, "LastModifiedById", user);
        set(def, &mut values, "SystemModstamp", now);
        set(def, &mut values, "IsDeleted", Value::Bool(false));
        self.put(
            object,
            Record {
                id: id.clone(),
                values,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    /// Updates a live record from a REST body.
    pub fn update(
        &mut self,
        object: usize,
        id: &SfId,
        body: &Map<String, JsonValue>,
        ctx: &WriteCtx,
    ) -> Result<(), SfError> {
        let schema = Arc::clone(&self.schema);
        let def = Self::writable(&schema, object, "update")?;
        let mut values = self.live(object, id)?.values.clone();
        let given = self.parse_body(def, body, false)?;
        self.check_references(def, &given)?;
        for (i, v) in &given {
            values[*i] = v.clone();
        }
        let given_names: Vec<&str> = given
            .iter()
            .map(|(i, _)| def.fields[*i].name.as_str())
            .collect();
        derive(def, &schema, &mut values, &given_names, false);
        Self::check_required(def, &values)?;
        self.check_unique(object, &values, Some(id))?;
        let user = Value::Text(ctx.user.as_str().to_owned());
        let now = Value::DateTime(ctx.now);
        set(def, &mut values, "LastModifiedDate", now.clone());
        set(def, &mut values, "LastModifiedById", user);
        set(def, &mut values, "SystemModstamp", now);
        self.put(
            object,
            Record {
                id: id.clone(),
                values,
                deleted_at: None,
            },
        );
        Ok(())
    }

    /// Moves a live record (and, for an account, its contacts and opportunities) to the recycle bin.
    pub fn delete(&mut self, object: usize, id: &SfId, ctx: &WriteCtx) -> Result<(), SfError> {
        let schema = Arc::clone(&self.schema);
        let def = Self::writable(&schema, object, "delete")?;
        let kind = def.kind;
        let mut record = self.live(object, id)?.clone();
        let user = Value::Text(ctx.user.as_str().to_owned());
        let now = Value::DateTime(ctx.now);
        set(def, &mut record.values, "IsDeleted", Value::Bool(true));
        set(def, &mut record.values, "LastModifiedDate", now.clone());
        set(def, &mut record.values, "LastModifiedById", user);
        set(def, &mut record.values, "SystemModstamp", now);
        record.deleted_at = Some(ctx.now);
        self.put(object, record);
        if kind == ObjectKind::Account {
            // Deleting an account deletes its contacts and opportunities with it.
            for child in ["Contact", "Opportunity"] {
                let Some(c) = self.schema.object_index(child) else {
                    continue;
                };
                let Some(f) = self.schema.objects[c].field_index("AccountId") else {
                    continue;
                };
                let children: Vec<SfId> = self
                    .records(c)
                    .filter(|r| r.deleted_at.is_none() && r.get(f).as_text() == Some(id.as_str()))
                    .map(|r| r.id.clone())
                    .collect();
                for child_id in children {
                    self.delete(c, &child_id, ctx)?;
                }
            }
        }
        Ok(())
    }

    /// Live records whose `field` equals `key` (by the field's matching rules).
    pub fn find_by_field(&self, object: usize, field: usize, key: &Value) -> Vec<SfId> {
        let def = &self.schema.objects[object];
        let Some(f) = def.fields.get(field) else {
            return Vec::new();
        };
        self.records(object)
            .filter(|r| r.deleted_at.is_none() && same_key(f, r.get(field), key))
            .map(|r| r.id.clone())
            .collect()
    }

    /// Upsert by external id (crm.md §2.3): creates when nothing matches (unless
    /// `update_only`), updates a single match, reports several matches.
    pub fn upsert(
        &mut self,
        object: usize,
        field: usize,
        key: &JsonValue,
        body: &Map<String, JsonValue>,
        update_only: bool,
        ctx: &WriteCtx,
    ) -> Result<UpsertOutcome, SfError> {
        let schema = Arc::clone(&self.schema);
        let def = Self::writable(&schema, object, "upsert")?;
        let f = def
            .fields
            .get(field)
            .ok_or_else(SfError::not_found)?
            .clone();
        let key_value = coerce(&f, key)?;
        if field == 0 {
            // Upsert on Id: only an update is possible.
            let Value::Text(id) = &key_value else {
                return Err(SfError::not_found());
            };
            let id = SfId::parse(id).ok_or_else(SfError::not_found)?;
            self.update(object, &id, body, ctx)?;
            return Ok(UpsertOutcome::Updated(id));
        }
        if key_value.is_null() {
            return Err(SfError::not_found());
        }
        let matches = self.find_by_field(object, field, &key_value);
        match matches.as_slice() {
            [] if update_only => Err(SfError::not_found()),
            [] => {
                let mut body = body.clone();
                body.insert(f.name.clone(), key.clone());
                self.create(object, &body, ctx).map(UpsertOutcome::Created)
            }
            [one] => {
                let one = one.clone();
                self.update(object, &one, body, ctx)?;
                Ok(UpsertOutcome::Updated(one))
            }
            _ => Ok(UpsertOutcome::Multiple(matches)),
        }
    }
}

/// Spreads the stage and status tables' ids apart, as both share key prefix `01J`.
fn stage_offset(object: &ObjectDef) -> u64 {
    match object.kind {
        ObjectKind::OpportunityStage => 1000,
        _ => 0,
    }
}

fn set(def: &ObjectDef, values: &mut [Value], name: &str, value: Value) {
    if let Some(i) = def.field_index(name) {
        values[i] = value;
    }
}

fn get<'a>(def: &ObjectDef, values: &'a [Value], name: &str) -> &'a Value {
    def.field_index(name)
        .and_then(|i| values.get(i))
        .unwrap_or(&Value::Null)
}

/// Whether two values of `field` count as the same key.
pub fn same_key(field: &FieldDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => {
            if field.case_sensitive || field.ty.is_id() {
                x == y
            } else {
                x.to_lowercase() == y.to_lowercase()
            }
        }
        (Value::Null, _) | (_, Value::Null) => false,
        (x, y) => x == y,
    }
}

/// (ForecastCategory API name, ForecastCategoryName label) for a configured category.
fn forecast_category(configured: &str) -> (&'static str, &'static str) {
    match configured.to_ascii_lowercase().replace(' ', "").as_str() {
        "closed" => ("Closed", "Closed"),
        "omitted" => ("Omitted", "Omitted"),
        "bestcase" => ("BestCase", "Best Case"),
        "commit" | "forecast" => ("Forecast", "Commit"),
        _ => ("Pipeline", "Pipeline"),
    }
}

/// Fills the fields Salesforce computes: names, and the stage-driven opportunity fields.
fn derive(def: &ObjectDef, schema: &Schema, values: &mut [Value], given: &[&str], creating: bool) {
    let given_has = |name: &str| given.iter().any(|g| g.eq_ignore_ascii_case(name));
    match def.kind {
        ObjectKind::Lead | ObjectKind::Contact => {
            let first = get(def, values, "FirstName")
                .as_text()
                .unwrap_or("")
                .to_owned();
            let last = get(def, values, "LastName")
                .as_text()
                .unwrap_or("")
                .to_owned();
            let name = format!("{first} {last}").trim().to_owned();
            let name = if name.is_empty() {
                Value::Null
            } else {
                Value::Text(name)
            };
            set(def, values, "Name", name);
        }
        ObjectKind::Opportunity => {
            let stage = get(def, values, "StageName")
                .as_text()
                .and_then(|s| schema.stages.iter().find(|st| st.api_name == s))
                .cloned();
            if let Some(stage) = stage
                && (creating || given_has("StageName"))
            {
                set(def, values, "IsClosed", Value::Bool(stage.is_closed));
                set(def, values, "IsWon", Value::Bool(stage.is_won));
                let (api, label) = forecast_category(&stage.forecast_category);
                set(def, values, "ForecastCategory", Value::Text(api.to_owned()));
                if !given_has("ForecastCategoryName") {
                    set(
                        def,
                        values,
                        "ForecastCategoryName",
                        Value::Text(label.to_owned()),
                    );
                }
                if !given_has("Probability") {
                    set(
                        def,
                        values,
                        "Probability",
                        Value::Number(Decimal::from(stage.default_probability)),
                    );
                }
            }
            let expected = match (get(def, values, "Amount"), get(def, values, "Probability")) {
                (Value::Number(a), Value::Number(p)) => {
                    Value::Number((a * p / Decimal::from(100)).round_dp(2).normalize())
                }
                _ => Value::Null,
            };
            set(def, values, "ExpectedRevenue", expected);
            let (year, quarter) = match get(def, values, "CloseDate") {
                Value::Date(d) => (
                    Value::Number(Decimal::from(d.year())),
                    Value::Number(Decimal::from(d.month0() / 3 + 1)),
                ),
                _ => (Value::Null, Value::Null),
            };
            set(def, values, "FiscalYear", year);
            set(def, values, "FiscalQuarter", quarter);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::SalesforceConfig;
    use super::*;
    use serde_json::json;

    fn org() -> (Org, WriteCtx) {
        let config = SalesforceConfig::default();
        let schema = Arc::new(Schema::build(&config).unwrap());
        let now = DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let org = Org::new(schema, &config.users);
        let user = org.user_id(super::super::config::INTEGRATION_USER).unwrap();
        (org, WriteCtx { user, now })
    }

    fn obj(org: &Org, name: &str) -> usize {
        org.schema().object_index(name).unwrap()
    }

    fn body(v: JsonValue) -> Map<String, JsonValue> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn create_sets_audit_fields_and_derived_stage_fields() {
        let (mut org, ctx) = org();
        let o = obj(&org, "Opportunity");
        let id = org
            .create(o, &body(json!({"Name":"Deal","StageName":"Closed Won","CloseDate":"2025-05-02","Amount":1000})), &ctx)
            .unwrap();
        assert_eq!(id.key_prefix(), "006");
        let def = &org.schema().objects[o];
        let r = org.live(o, &id).unwrap();
        let v = |n: &str| r.get(def.field_index(n).unwrap()).clone();
        assert_eq!(v("IsWon"), Value::Bool(true));
        assert_eq!(v("Probability"), Value::Number(Decimal::from(100)));
        assert_eq!(v("ExpectedRevenue"), Value::Number(Decimal::from(1000)));
        assert_eq!(v("FiscalQuarter"), Value::Number(Decimal::from(2)));
        assert_eq!(v("CreatedById"), Value::Text(ctx.user.to_string()));
        assert_eq!(v("SystemModstamp"), Value::DateTime(ctx.now));
    }

    #[test]
    fn required_unknown_read_only_and_duplicate_fields_are_refused() {
        let (mut org, ctx) = org();
        let lead = obj(&org, "Lead");
        let e = org
            .create(lead, &body(json!({"FirstName":"A"})), &ctx)
            .unwrap_err();
        assert_eq!(e.errors[0].code, code::REQUIRED_FIELD_MISSING);
        assert_eq!(e.errors[0].fields, ["LastName", "Company", "Status"]);
        let e = org
            .create(lead, &body(json!({"Foo__c":1})), &ctx)
            .unwrap_err();
        assert_eq!(
            e.errors[0].message,
            "No such column 'Foo__c' on sobject of type Lead"
        );
        let e = org
            .create(lead, &body(json!({"IsConverted":true})), &ctx)
            .unwrap_err();
        assert_eq!(e.errors[0].code, code::INVALID_FIELD_FOR_INSERT_UPDATE);
        let ok = json!({"LastName":"L","Company":"C","Status":"Open - Not Contacted","Referral_Identifier__c":"RF-1"});
        org.create(lead, &body(ok.clone()), &ctx).unwrap();
        let mut dup = ok;
        dup["Referral_Identifier__c"] = json!("rf-1");
        let e = org.create(lead, &body(dup), &ctx).unwrap_err();
        assert_eq!(
            e.errors[0].code,
            code::DUPLICATE_VALUE,
            "unique is case-insensitive"
        );
    }

    #[test]
    fn savepoints_undo_exactly_the_writes_since() {
        let (mut org, ctx) = org();
        let a = obj(&org, "Account");
        let kept = org.create(a, &body(json!({"Name":"Kept"})), &ctx).unwrap();
        let sp = org.savepoint();
        let gone = org.create(a, &body(json!({"Name":"Gone"})), &ctx).unwrap();
        org.update(a, &kept, &body(json!({"Name":"Renamed"})), &ctx)
            .unwrap();
        org.rollback_to(sp);
        assert!(org.record(a, &gone).is_none());
        let name = org.schema().objects[a].field_index("Name").unwrap();
        assert_eq!(
            org.live(a, &kept).unwrap().get(name),
            &Value::Text("Kept".into())
        );
    }

    #[test]
    fn deleting_an_account_deletes_its_opportunities() {
        let (mut org, ctx) = org();
        let a = obj(&org, "Account");
        let o = obj(&org, "Opportunity");
        let acc = org.create(a, &body(json!({"Name":"A"})), &ctx).unwrap();
        let opp = org
            .create(o, &body(json!({"Name":"D","StageName":"Prospecting","CloseDate":"2025-01-01","AccountId":acc.as_str()})), &ctx)
            .unwrap();
        org.delete(a, &acc, &ctx).unwrap();
        assert_eq!(
            org.live(o, &opp).unwrap_err().errors[0].code,
            code::ENTITY_IS_DELETED
        );
    }

    #[test]
    fn upsert_creates_updates_and_reports_several_matches() {
        let (mut org, ctx) = org();
        let lead = obj(&org, "Lead");
        let field = org.schema().objects[lead]
            .field_index("Referral_Identifier__c")
            .unwrap();
        let b = body(json!({"LastName":"L","Company":"C","Status":"Open - Not Contacted"}));
        let first = org
            .upsert(lead, field, &json!("RF-9"), &b, false, &ctx)
            .unwrap();
        let UpsertOutcome::Created(id) = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            org.upsert(lead, field, &json!("RF-9"), &b, false, &ctx)
                .unwrap(),
            UpsertOutcome::Updated(id)
        );
        assert_eq!(
            org.upsert(lead, field, &json!("RF-10"), &b, true, &ctx)
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
    }
}
