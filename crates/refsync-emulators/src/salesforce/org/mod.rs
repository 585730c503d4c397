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
//! Lead conversion (control API only, as the REST API has none) lives in
//! [`convert`](LeadConversion).
//!
//! `allOrNone` is implemented with savepoints over an undo journal
//! ([`Org::savepoint`], [`Org::rollback_to`]), so a rolled-back request
//! restores exactly the records it touched and nothing else.

use super::error::{SfError, code};
use super::ids::SfId;
use super::schema::{FieldType, ObjectDef, ObjectKind, Schema};
use super::value::{Value, coerce};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as JsonValue};
use std::collections::BTreeMap;
use std::sync::Arc;

mod convert;
mod rules;
mod seed;
#[cfg(test)]
mod tests;

pub use convert::{Converted, LeadConversion};
pub use rules::same_key;
use rules::{derive, set};

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
        if def.kind == ObjectKind::Lead
            && def
                .field_index("IsConverted")
                .is_some_and(|i| values[i] == Value::Bool(true))
        {
            return Err(convert::converted_lead());
        }
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
