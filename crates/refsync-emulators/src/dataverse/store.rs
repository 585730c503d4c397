//! The records of the environment: rows per table, the alternate-key indexes,
//! the org-wide row version (`versionnumber`, the `@odata.etag` and the change-
//! tracking cursor), deletion tombstones for change tracking, and the system users.
//!
//! Plain synchronous data behind the emulator's one lock; the rules for writing
//! (validation, state changes, keys) live in [`super::write`].

use super::error::DvError;
use super::schema::{Column, ColumnKind, Schema, Table};
use super::values::{format_timestamp, guid_text, output_datetime};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One record.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Primary key.
    pub id: Uuid,
    /// Column values by logical name; a lookup holds the target's id as text.
    pub attrs: Map<String, Value>,
    /// For each set lookup column, the target table's logical name.
    pub lookup_tables: BTreeMap<String, String>,
    /// Row version (`versionnumber`), unique across the environment.
    pub version: u64,
}

impl Row {
    /// A column's value (`Null` when unset).
    pub fn get(&self, column: &str) -> &Value {
        self.attrs.get(column).unwrap_or(&Value::Null)
    }

    /// A lookup's target, when set.
    pub fn lookup(&self, column: &str) -> Option<(&str, Uuid)> {
        let table = self.lookup_tables.get(column)?;
        let id = self
            .get(column)
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())?;
        Some((table.as_str(), id))
    }

    /// Sets or clears a lookup.
    pub fn set_lookup(&mut self, column: &str, target: Option<(&str, Uuid)>) {
        match target {
            Some((table, id)) => {
                self.attrs
                    .insert(column.to_owned(), Value::String(guid_text(&id)));
                self.lookup_tables
                    .insert(column.to_owned(), table.to_owned());
            }
            None => {
                self.attrs.insert(column.to_owned(), Value::Null);
                self.lookup_tables.remove(column);
            }
        }
    }

    /// The `statecode` and `statuscode`, when set.
    pub fn state(&self) -> Option<(i64, i64)> {
        Some((
            self.get("statecode").as_i64()?,
            self.get("statuscode").as_i64()?,
        ))
    }
}

/// A deleted record, remembered for change tracking (crm.md §1.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Table logical name.
    pub table: String,
    /// The deleted record's id.
    pub id: Uuid,
    /// The org version at deletion.
    pub version: u64,
    /// When it was deleted.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone)]
struct TableRows {
    rows: BTreeMap<Uuid, Row>,
    /// Key name → normalised key values → record.
    keys: HashMap<String, HashMap<String, Uuid>>,
}

/// What a transaction changed, to put it back on rollback.
#[derive(Debug, Default, Clone)]
struct Journal {
    /// (table, id, the row before the transaction first touched it).
    before: Vec<(String, Uuid, Option<Row>)>,
    tombstones: usize,
}

/// All records.
#[derive(Debug, Default, Clone)]
pub struct Store {
    tables: HashMap<String, TableRows>,
    version: u64,
    tombstones: Vec<Tombstone>,
    journal: Option<Journal>,
}

/// Normalises key values for the index: strings compare case-insensitively, as
/// Dataverse's SQL collation does. `None` when a key column is empty (not indexed).
pub(crate) fn key_signature(table: &Table, key_columns: &[String], row: &Row) -> Option<String> {
    let mut parts = Vec::with_capacity(key_columns.len());
    for name in key_columns {
        let value = row.get(name);
        let part = match (table.column(name).map(|c| &c.kind), value) {
            (_, Value::Null) => return None,
            (Some(ColumnKind::Text { .. }), Value::String(s)) => s.to_lowercase(),
            (_, Value::String(s)) => s.to_lowercase(),
            (_, other) => other.to_string(),
        };
        parts.push(part);
    }
    Some(parts.join("\u{1f}"))
}

impl Store {
    /// An empty store whose versions start at `first_version`.
    pub fn new(first_version: u64) -> Self {
        Self {
            version: first_version,
            ..Self::default()
        }
    }

    /// The last version handed out.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A fresh version for a write.
    pub fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// One record.
    pub fn get(&self, table: &str, id: &Uuid) -> Option<&Row> {
        self.tables.get(table)?.rows.get(id)
    }

    /// The records of a table in primary-key order.
    pub fn rows<'a>(&'a self, table: &str) -> impl Iterator<Item = &'a Row> + 'a {
        self.tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.rows.values())
    }

    /// How many records a table has.
    pub fn count(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, |t| t.rows.len())
    }

    /// The record holding these key values (in key column order), if any.
    pub fn find_by_key(&self, table: &Table, key_name: &str, probe: &Row) -> Option<Uuid> {
        let key = table.keys.iter().find(|k| k.name == key_name)?;
        let signature = key_signature(table, &key.columns, probe)?;
        self.tables
            .get(&table.logical_name)?
            .keys
            .get(key_name)?
            .get(&signature)
            .copied()
    }

    /// Fails with 412 when another record already has `row`'s values for one of the table's keys.
    pub fn check_keys_unique(&self, table: &Table, row: &Row) -> Result<(), DvError> {
        let Some(rows) = self.tables.get(&table.logical_name) else {
            return Ok(());
        };
        for key in &table.keys {
            let Some(signature) = key_signature(table, &key.columns, row) else {
                continue;
            };
            if let Some(other) = rows.keys.get(&key.name).and_then(|k| k.get(&signature))
                && *other != row.id
            {
                let labels: Vec<String> = key
                    .columns
                    .iter()
                    .map(|c| {
                        table
                            .column(c)
                            .map(|col| col.label.clone())
                            .unwrap_or_else(|| c.clone())
                    })
                    .collect();
                return Err(DvError::duplicate_key(&labels.join(", "), &key.name));
            }
        }
        Ok(())
    }

    /// Starts recording changes so [`Store::rollback`] can undo them (one at a time).
    pub fn begin(&mut self) {
        self.journal = Some(Journal {
            before: Vec::new(),
            tombstones: self.tombstones.len(),
        });
    }

    /// Keeps the changes made since [`Store::begin`].
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every change made since [`Store::begin`] (versions stay used).
    pub fn rollback(&mut self, schema: &Schema) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        for (name, id, before) in journal.before.into_iter().rev() {
            let Some(table) = schema.by_logical_name(&name) else {
                continue;
            };
            self.unindex(table, &id);
            match before {
                Some(row) => self.put(table, row),
                None => {
                    if let Some(rows) = self.tables.get_mut(&name) {
                        rows.rows.remove(&id);
                    }
                }
            }
        }
        self.tombstones.truncate(journal.tombstones);
    }

    fn remember(&mut self, table: &str, id: &Uuid) {
        let seen = self
            .journal
            .as_ref()
            .is_none_or(|j| j.before.iter().any(|(t, i, _)| t == table && i == id));
        if seen {
            return;
        }
        let before = self.get(table, id).cloned();
        if let Some(journal) = &mut self.journal {
            journal.before.push((table.to_owned(), *id, before));
        }
    }

    fn unindex(&mut self, table: &Table, id: &Uuid) {
        let Some(rows) = self.tables.get_mut(&table.logical_name) else {
            return;
        };
        let Some(old) = rows.rows.get(id) else {
            return;
        };
        for key in &table.keys {
            if let Some(sig) = key_signature(table, &key.columns, old)
                && let Some(index) = rows.keys.get_mut(&key.name)
            {
                index.remove(&sig);
            }
        }
    }

    /// Inserts or replaces a record and re-indexes its keys.
    pub fn put(&mut self, table: &Table, row: Row) {
        self.remember(&table.logical_name, &row.id);
        self.unindex(table, &row.id);
        let rows = self.tables.entry(table.logical_name.clone()).or_default();
        for key in &table.keys {
            if let Some(sig) = key_signature(table, &key.columns, &row) {
                rows.keys
                    .entry(key.name.clone())
                    .or_default()
                    .insert(sig, row.id);
            }
        }
        rows.rows.insert(row.id, row);
    }

    /// Removes a record, leaving a tombstone; returns it.
    pub fn remove(&mut self, table: &Table, id: &Uuid, at: DateTime<Utc>) -> Option<Row> {
        self.get(&table.logical_name, id)?;
        self.remember(&table.logical_name, id);
        self.unindex(table, id);
        let row = self.tables.get_mut(&table.logical_name)?.rows.remove(id)?;
        let version = self.next_version();
        self.tombstones.push(Tombstone {
            table: table.logical_name.clone(),
            id: *id,
            version,
            at,
        });
        Some(row)
    }

    /// Every row of any table whose lookups point at `(table, id)`: (table, row id, column).
    pub fn referrers(&self, table: &str, id: &Uuid) -> Vec<(String, Uuid, String)> {
        let mut found = Vec::new();
        for (name, rows) in &self.tables {
            for row in rows.rows.values() {
                for (column, target) in &row.lookup_tables {
                    if target == table && row.lookup(column).is_some_and(|(_, t)| t == *id) {
                        found.push((name.clone(), row.id, column.clone()));
                    }
                }
            }
        }
        found
    }

    /// Tombstones of `table` newer than `version`, oldest first.
    pub fn deleted_since<'a>(
        &'a self,
        table: &'a str,
        version: u64,
    ) -> impl Iterator<Item = &'a Tombstone> + 'a {
        self.tombstones
            .iter()
            .filter(move |t| t.table == table && t.version > version)
    }

    /// Forgets tombstones deleted before `cutoff` (no delta token that old is accepted).
    pub fn prune_tombstones(&mut self, cutoff: DateTime<Utc>) {
        self.tombstones.retain(|t| t.at >= cutoff);
    }
}

/// A record as the Web API returns it: every column in table order, lookups as
/// `_<name>_value`, unset columns as `null` (crm.md §1.4, §1.7).
pub(crate) fn render(table: &Table, row: &Row) -> Map<String, Value> {
    let mut out = Map::with_capacity(table.columns.len() + 1);
    out.insert("@odata.etag".to_owned(), Value::String(etag(row.version)));
    for column in &table.columns {
        out.insert(column.wire_name(), output_value(column, row));
    }
    out
}

/// A column's value as returned: versions from the row, date-times to the second.
fn output_value(column: &Column, row: &Row) -> Value {
    match column.kind {
        ColumnKind::Version => Value::from(row.version),
        ColumnKind::DateTime => output_datetime(row.get(&column.name)),
        _ => row.get(&column.name).clone(),
    }
}

/// Only the named wire properties of a record. `stored`: date-times at the stored
/// precision (for matching and sorting, as Dataverse's SQL does); otherwise as returned.
pub(crate) fn render_only(
    table: &Table,
    row: &Row,
    wire_names: &[String],
    stored: bool,
) -> Map<String, Value> {
    let mut out = Map::with_capacity(wire_names.len());
    for name in wire_names {
        let Some(column) = table.column_by_wire_name(name) else {
            continue;
        };
        let value = match column.kind {
            ColumnKind::DateTime if stored => row.get(&column.name).clone(),
            _ => output_value(column, row),
        };
        out.insert(name.clone(), value);
    }
    out
}

/// The weak ETag of a version: `W/"<n>"` (crm.md §1.5).
pub(crate) fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// Sets the columns every write maintains (crm.md §1.5: `modifiedon` moves on every write).
pub(crate) fn stamp(row: &mut Row, table: &Table, version: u64, now: DateTime<Utc>, user: Uuid) {
    row.version = version;
    let stamp = Value::String(format_timestamp(&now));
    if table.column("modifiedon").is_some() {
        row.attrs.insert("modifiedon".to_owned(), stamp);
    }
    if table.user_owned {
        row.set_lookup("modifiedby", Some(("systemuser", user)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::config::DataverseConfig;
    use crate::dataverse::schema::Schema;
    use serde_json::json;

    fn lead_row(id: u128, referral: Option<&str>) -> Row {
        let mut attrs = Map::new();
        attrs.insert(
            "msft_microsoftpartnercenterreferralidentifier".to_owned(),
            referral.map_or(Value::Null, |r| json!(r)),
        );
        Row {
            id: Uuid::from_u128(id),
            attrs,
            lookup_tables: BTreeMap::new(),
            version: 1,
        }
    }

    #[test]
    fn keys_are_indexed_case_insensitively_and_released_on_change_and_delete() {
        let schema = Schema::from_config(&DataverseConfig::default()).unwrap();
        let lead = schema.by_logical_name("lead").unwrap();
        let key = "msft_referralidentifierkey";
        let mut store = Store::new(100);
        store.put(lead, lead_row(1, Some("RF-1")));
        store.put(lead, lead_row(2, None));
        assert_eq!(
            store.find_by_key(lead, key, &lead_row(0, Some("rf-1"))),
            Some(Uuid::from_u128(1))
        );
        let clash = store
            .check_keys_unique(lead, &lead_row(3, Some("Rf-1")))
            .unwrap_err();
        assert_eq!(clash.status.as_u16(), 412);
        assert!(
            clash.message.contains("Referral Identifier"),
            "{}",
            clash.message
        );
        // Empty key values never clash.
        assert!(store.check_keys_unique(lead, &lead_row(4, None)).is_ok());
        // Changing the key frees the old value.
        store.put(lead, lead_row(1, Some("RF-2")));
        assert_eq!(
            store.find_by_key(lead, key, &lead_row(0, Some("RF-1"))),
            None
        );
        store.remove(lead, &Uuid::from_u128(1), Utc::now()).unwrap();
        assert_eq!(
            store.find_by_key(lead, key, &lead_row(0, Some("RF-2"))),
            None
        );
        assert_eq!(store.deleted_since("lead", 100).count(), 1);
        assert_eq!(store.version(), 101);
    }

    #[test]
    fn timestamps_are_returned_to_the_second_but_matched_at_stored_precision() {
        let schema = Schema::from_config(&DataverseConfig::default()).unwrap();
        let lead = schema.by_logical_name("lead").unwrap();
        let mut row = lead_row(1, None);
        let at = DateTime::parse_from_rfc3339("2025-03-04T05:06:07.891Z")
            .unwrap()
            .with_timezone(&Utc);
        stamp(&mut row, lead, 5, at, Uuid::from_u128(2));
        assert_eq!(render(lead, &row)["modifiedon"], "2025-03-04T05:06:07Z");
        let names = vec!["modifiedon".to_owned(), "versionnumber".to_owned()];
        let stored = render_only(lead, &row, &names, true);
        assert_eq!(stored["modifiedon"], "2025-03-04T05:06:07.891Z");
        assert_eq!(stored["versionnumber"], 5);
        let returned = render_only(lead, &row, &names, false);
        assert_eq!(returned["modifiedon"], "2025-03-04T05:06:07Z");
        // So a filter on a returned value still finds an edit later in that second.
        let filter = crate::odata::parse_filter("modifiedon gt 2025-03-04T05:06:07Z").unwrap();
        let opts = crate::odata::EvalOptions::DATAVERSE;
        assert!(crate::odata::matches(
            &filter,
            &Value::Object(stored),
            &opts
        ));
    }

    #[test]
    fn rollback_restores_rows_keys_and_tombstones() {
        let schema = Schema::from_config(&DataverseConfig::default()).unwrap();
        let lead = schema.by_logical_name("lead").unwrap();
        let key = "msft_referralidentifierkey";
        let mut store = Store::new(0);
        store.put(lead, lead_row(1, Some("RF-1")));
        store.put(lead, lead_row(2, Some("RF-2")));
        store.begin();
        store.put(lead, lead_row(1, Some("RF-1b")));
        store.put(lead, lead_row(1, Some("RF-1c")));
        store.put(lead, lead_row(3, Some("RF-3")));
        store.remove(lead, &Uuid::from_u128(2), Utc::now());
        store.rollback(&schema);
        assert_eq!(store.count("lead"), 2);
        assert_eq!(
            store.find_by_key(lead, key, &lead_row(0, Some("RF-1"))),
            Some(Uuid::from_u128(1))
        );
        assert_eq!(
            store.find_by_key(lead, key, &lead_row(0, Some("RF-2"))),
            Some(Uuid::from_u128(2))
        );
        assert_eq!(
            store.find_by_key(lead, key, &lead_row(0, Some("RF-1c"))),
            None
        );
        assert_eq!(
            store.find_by_key(lead, key, &lead_row(0, Some("RF-3"))),
            None
        );
        assert_eq!(store.deleted_since("lead", 0).count(), 0);
        // Committed changes stay.
        store.begin();
        store.put(lead, lead_row(3, Some("RF-3")));
        store.commit();
        store.rollback(&schema);
        assert_eq!(store.count("lead"), 3);
    }
}
