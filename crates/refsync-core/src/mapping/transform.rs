//! Transforms: how one mapped field's value is read from each side into the
//! comparable ("canonical") form and written back in each side's wire form.
//!
//! The canonical form is Partner Center's meaning in a normalised shape (a date as
//! `YYYY-MM-DD`, money as a rounded JSON number, an enum as the table's spelling). The
//! property everything rests on: reading back what was written from a canonical value
//! gives that same value on both sides, so a write never looks like a new change.

use super::normalize::{self, TextRules, match_key};
use crate::ids::CrmRecordId;
use crate::wire::format_datetime;
use chrono::NaiveDate;
use serde_json::Value;
use std::collections::BTreeMap;

/// How a field's values are converted (the `transform` of a mapping line).
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Text: trimmed, empty is null, optionally cut to a column's length and case-folded.
    Text(TextRules),
    /// A decimal number, rounded to `scale` places when given (money: 2).
    Decimal {
        /// Decimal places kept.
        scale: Option<u32>,
    },
    /// Partner Center date-time ↔ CRM date-only (`YYYY-MM-DD`), compared as UTC days.
    Date,
    /// A yes/no value.
    Boolean,
    /// Enumerated values: one Partner Center value (or tuple) ↔ one CRM value (or tuple).
    Table(ValueTable),
    /// Text built from referral values, e.g. the Referral Link; only flows to the CRM.
    Template(Template),
    /// A fixed value written when a CRM record is created from Partner Center.
    Constant(Value),
    /// The CRM record's own id (a pseudo-field with no CRM column); only flows to Partner Center.
    CrmRecordId,
    /// A CRM lookup addressed by a key of the target table (the Dataverse transaction
    /// currency by ISO code). The core sees the key value as text; the connector resolves
    /// it to and from the lookup (`<field>@odata.bind`, `_<field>_value`).
    Lookup {
        /// Target entity set, e.g. `transactioncurrencies`.
        target: String,
        /// Column of the target that holds the key value, e.g. `isocurrencycode`.
        key: String,
        /// How the key value is normalised.
        text: TextRules,
    },
}

impl Transform {
    /// Reads the canonical value from the raw values at the field's referral paths.
    pub(crate) fn read_pc(&self, raw: &[&Value]) -> Result<Value, String> {
        match self {
            Transform::Table(t) => t.read(raw, TableSide::Pc),
            Transform::Template(t) => Ok(t.render(raw)),
            Transform::Constant(v) => Ok(v.clone()),
            _ => self.scalar(one(raw)?),
        }
    }

    /// Reads the canonical value from the raw values of the field's CRM columns.
    pub(crate) fn read_crm(
        &self,
        raw: &[&Value],
        record_id: Option<&CrmRecordId>,
    ) -> Result<Value, String> {
        match self {
            Transform::Table(t) => t.read(raw, TableSide::Crm),
            Transform::CrmRecordId => Ok(record_id
                .map(|id| Value::String(id.to_string()))
                .unwrap_or(Value::Null)),
            Transform::Template(_) | Transform::Constant(_) => {
                normalize::text(one(raw)?, &TextRules::default())
            }
            _ => self.scalar(one(raw)?),
        }
    }

    /// The values to write at the field's referral paths, in Partner Center's wire form.
    pub(crate) fn write_pc(&self, canonical: &Value) -> Result<Vec<Value>, String> {
        match self {
            Transform::Table(t) => t.write(canonical, TableSide::Pc),
            Transform::Date => Ok(vec![match canonical {
                Value::String(s) => {
                    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map_err(|_| format!("not a canonical date: {s:?}"))?;
                    Value::String(format_datetime(&day.and_time(Default::default()).and_utc()))
                }
                other => other.clone(),
            }]),
            Transform::Template(_) | Transform::Constant(_) => {
                Err("its value is derived from Partner Center, so it is never written there".into())
            }
            _ => Ok(vec![canonical.clone()]),
        }
    }

    /// The values to write to the field's CRM columns.
    pub(crate) fn write_crm(&self, canonical: &Value) -> Result<Vec<Value>, String> {
        match self {
            Transform::Table(t) => t.write(canonical, TableSide::Crm),
            Transform::CrmRecordId => {
                Err("it is the CRM record's own id, which is never written".into())
            }
            _ => Ok(vec![canonical.clone()]),
        }
    }

    fn scalar(&self, v: &Value) -> Result<Value, String> {
        match self {
            Transform::Text(rules) | Transform::Lookup { text: rules, .. } => {
                normalize::text(v, rules)
            }
            Transform::Decimal { scale } => normalize::decimal(v, *scale),
            Transform::Date => normalize::date(v),
            Transform::Boolean => normalize::boolean(v),
            Transform::CrmRecordId => normalize::text(v, &TextRules::default()),
            Transform::Table(_) | Transform::Template(_) | Transform::Constant(_) => {
                Err("not a single-value transform".into())
            }
        }
    }
}

fn one<'a>(raw: &[&'a Value]) -> Result<&'a Value, String> {
    match raw {
        [v] => Ok(v),
        _ => Err(format!("expected one value, found {}", raw.len())),
    }
}

/// A text template with `{path}` placeholders naming the field's referral paths.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq)]
enum TemplatePart {
    Literal(String),
    /// Index into the field's referral paths.
    Value(usize),
}

impl Template {
    /// Parses `https://…/{id}`; each placeholder must be one of `paths`.
    pub(crate) fn parse(text: &str, paths: &[&str]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (lit, after) = rest.split_at(open);
            let close = after
                .find('}')
                .ok_or_else(|| format!("template {text:?} has an unclosed {{"))?;
            let name = &after[1..close];
            let index = paths.iter().position(|p| *p == name).ok_or_else(|| {
                format!("template placeholder {{{name}}} is not one of the field's referral paths")
            })?;
            if !lit.is_empty() {
                parts.push(TemplatePart::Literal(lit.to_owned()));
            }
            parts.push(TemplatePart::Value(index));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("template {text:?} has a stray }}"));
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The text, or null when a placeholder has no value. Values are percent-encoded
    /// so that whatever an id holds cannot change the shape of the URL.
    fn render(&self, raw: &[&Value]) -> Value {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Value(i) => {
                    let Ok(Value::String(s)) = raw.get(*i).map_or(Ok(Value::Null), |v| {
                        normalize::text(v, &TextRules::default())
                    }) else {
                        return Value::Null;
                    };
                    percent_encode_into(&mut out, &s);
                }
            }
        }
        Value::String(out)
    }
}

/// Keeps RFC 3986 unreserved characters and percent-encodes every other byte.
fn percent_encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// One row of a value table: a Partner Center value ↔ a CRM value, each with the
/// other spellings read as the same thing. The first value of each side is the one
/// written; the Partner Center one is also the canonical value.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry {
    /// Written to Partner Center; one element per referral path.
    pub pc: Vec<Value>,
    /// Also read as this row on the Partner Center side (e.g. New/Received beside New/Pending).
    pub pc_also: Vec<Vec<Value>>,
    /// Written to the CRM; one element per CRM column.
    pub crm: Vec<Value>,
    /// Also read as this row on the CRM side (e.g. statuscode 5 Out-Sold beside 4 Canceled).
    pub crm_also: Vec<Vec<Value>>,
    /// While the CRM record is in this row, its other changes do not flow to Partner
    /// Center (Salesforce's on-hold stage, crm.md §3.4).
    pub on_hold: bool,
}

/// Which side of a value table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableSide {
    Pc,
    Crm,
}

type TableKey = Vec<Option<String>>;

/// A value table (enum ↔ option set / picklist), possibly over several paths and
/// columns at once (status + substatus ↔ statecode + statuscode, or ↔ StageName).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueTable {
    entries: Vec<TableEntry>,
    /// The Partner Center value that means "nothing" (e.g. `Unknown` for "How can
    /// Microsoft help?"): read as null, and written where the CRM field is empty.
    pc_empty: Option<Value>,
    /// The row unknown Partner Center values are read as, if any.
    pc_fallback: Option<usize>,
    pc_index: BTreeMap<TableKey, usize>,
    crm_index: BTreeMap<TableKey, usize>,
}

fn key_of(values: &[Value]) -> TableKey {
    values.iter().map(match_key).collect()
}

fn key_of_refs(values: &[&Value]) -> TableKey {
    values.iter().map(|v| match_key(v)).collect()
}

fn show(values: &[Value]) -> String {
    match values {
        [v] => v.to_string(),
        vs => Value::Array(vs.to_vec()).to_string(),
    }
}

impl ValueTable {
    /// Builds a table, refusing rows whose values could be read two ways.
    pub(crate) fn new(
        entries: Vec<TableEntry>,
        pc_empty: Option<Value>,
        pc_fallback: Option<Vec<Value>>,
    ) -> Result<Self, String> {
        if entries.is_empty() {
            return Err("a value table needs at least one row".into());
        }
        let mut pc_index = BTreeMap::new();
        let mut crm_index = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            for (side, values, index) in [
                (
                    "Partner Center",
                    std::iter::once(&e.pc).chain(&e.pc_also).collect::<Vec<_>>(),
                    &mut pc_index,
                ),
                (
                    "CRM",
                    std::iter::once(&e.crm).chain(&e.crm_also).collect(),
                    &mut crm_index,
                ),
            ] {
                for v in values {
                    let key = key_of(v);
                    if key.iter().all(Option::is_none) {
                        return Err(format!(
                            "a {side} value in the table is empty; empty values always mean null"
                        ));
                    }
                    if let Some(prev) = index.insert(key, i)
                        && prev != i
                    {
                        return Err(format!(
                            "{side} value {} is in two rows of the table",
                            show(v)
                        ));
                    }
                }
            }
        }
        if let Some(empty) = &pc_empty
            && pc_index.contains_key(&key_of(std::slice::from_ref(empty)))
        {
            return Err(format!("pc_empty {empty} is also a row of the table"));
        }
        let pc_fallback = match pc_fallback {
            None => None,
            Some(v) => Some(*pc_index.get(&key_of(&v)).ok_or_else(|| {
                format!(
                    "pc_fallback {} is not a Partner Center value of the table",
                    show(&v)
                )
            })?),
        };
        Ok(Self {
            entries,
            pc_empty,
            pc_fallback,
            pc_index,
            crm_index,
        })
    }

    /// The rows.
    pub fn entries(&self) -> &[TableEntry] {
        &self.entries
    }

    /// The row a canonical value stands for (`None` for null or an unknown value).
    pub(crate) fn entry_of(&self, canonical: &Value) -> Option<&TableEntry> {
        let key = match canonical {
            Value::Array(vs) => key_of(vs),
            v => key_of(std::slice::from_ref(v)),
        };
        self.pc_index.get(&key).map(|i| &self.entries[*i])
    }

    fn canonical(&self, row: usize) -> Value {
        match self.entries[row].pc.as_slice() {
            [v] => v.clone(),
            vs => Value::Array(vs.to_vec()),
        }
    }

    fn read(&self, raw: &[&Value], side: TableSide) -> Result<Value, String> {
        let key = key_of_refs(raw);
        if key.iter().all(Option::is_none) {
            return Ok(Value::Null);
        }
        if side == TableSide::Pc
            && let (Some(empty), [Some(only)]) = (&self.pc_empty, key.as_slice())
            && match_key(empty).as_ref() == Some(only)
        {
            return Ok(Value::Null);
        }
        let index = match side {
            TableSide::Pc => &self.pc_index,
            TableSide::Crm => &self.crm_index,
        };
        match index.get(&key) {
            Some(row) => Ok(self.canonical(*row)),
            None => match (side, self.pc_fallback) {
                (TableSide::Pc, Some(row)) => Ok(self.canonical(row)),
                _ => Err(format!(
                    "{} is not in the field's value table",
                    show(&raw.iter().map(|v| (*v).clone()).collect::<Vec<_>>())
                )),
            },
        }
    }

    fn write(&self, canonical: &Value, side: TableSide) -> Result<Vec<Value>, String> {
        let arity = match side {
            TableSide::Pc => self.entries[0].pc.len(),
            TableSide::Crm => self.entries[0].crm.len(),
        };
        if canonical.is_null() {
            return Ok(match (&self.pc_empty, side) {
                (Some(empty), TableSide::Pc) => vec![empty.clone()],
                _ => vec![Value::Null; arity],
            });
        }
        let entry = self
            .entry_of(canonical)
            .ok_or_else(|| format!("{canonical} is not in the field's value table"))?;
        Ok(match side {
            TableSide::Pc => entry.pc.clone(),
            TableSide::Crm => entry.crm.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status_table() -> ValueTable {
        let row = |pc: Value, pc_also: Vec<Value>, crm: Value, crm_also: Vec<Value>| TableEntry {
            pc: pc.as_array().unwrap().clone(),
            pc_also: pc_also
                .iter()
                .map(|v| v.as_array().unwrap().clone())
                .collect(),
            crm: crm.as_array().unwrap().clone(),
            crm_also: crm_also
                .iter()
                .map(|v| v.as_array().unwrap().clone())
                .collect(),
            on_hold: false,
        };
        ValueTable::new(
            vec![
                row(json!(["Active", "Accepted"]), vec![], json!([0, 1]), vec![]),
                row(
                    json!(["Closed", "Lost"]),
                    vec![json!(["Closed", "Declined"])],
                    json!([2, 4]),
                    vec![json!([2, 5])],
                ),
            ],
            None,
            None,
        )
        .unwrap()
    }

    #[test]
    fn composite_rows_read_every_spelling_as_the_first() {
        let t = Transform::Table(status_table());
        let lost = json!(["Closed", "Lost"]);
        assert_eq!(
            t.read_pc(&[&json!("closed"), &json!("Declined")]).unwrap(),
            lost
        );
        assert_eq!(t.read_crm(&[&json!(2), &json!("5")], None).unwrap(), lost);
        assert_eq!(t.write_crm(&lost).unwrap(), vec![json!(2), json!(4)]);
        assert_eq!(
            t.write_pc(&lost).unwrap(),
            vec![json!("Closed"), json!("Lost")]
        );
        assert_eq!(
            t.read_pc(&[&Value::Null, &Value::Null]).unwrap(),
            Value::Null
        );
        let err = t.read_crm(&[&json!(1), &json!(3)], None).unwrap_err();
        assert!(err.contains("[1,3]"), "{err}");
    }

    /// A one-value row.
    fn e(pc: &str, crm: i64) -> TableEntry {
        TableEntry {
            pc: vec![json!(pc)],
            pc_also: vec![],
            crm: vec![json!(crm)],
            crm_also: vec![],
            on_hold: false,
        }
    }

    #[test]
    fn ambiguous_tables_are_refused() {
        let err = ValueTable::new(vec![e("A", 1), e("B", 1)], None, None).unwrap_err();
        assert!(err.contains("CRM value 1 is in two rows"), "{err}");
        let err = ValueTable::new(vec![e("A", 1), e("a", 2)], None, None).unwrap_err();
        assert!(err.contains("Partner Center value"), "{err}");
        assert!(ValueTable::new(vec![e("A", 1)], Some(json!("A")), None).is_err());
        assert!(ValueTable::new(vec![e("A", 1)], None, Some(vec![json!("Z")])).is_err());
    }

    #[test]
    fn empty_and_fallback_values() {
        let t = Transform::Table(
            ValueTable::new(
                vec![e("GeneralOrOther", 1), e("QuotesOrLicensing", 2)],
                Some(json!("Unknown")),
                Some(vec![json!("GeneralOrOther")]),
            )
            .unwrap(),
        );
        assert_eq!(t.read_pc(&[&json!("Unknown")]).unwrap(), Value::Null);
        assert_eq!(
            t.read_pc(&[&json!("SomethingNew")]).unwrap(),
            json!("GeneralOrOther")
        );
        assert_eq!(t.write_pc(&Value::Null).unwrap(), vec![json!("Unknown")]);
        assert_eq!(t.write_crm(&Value::Null).unwrap(), vec![Value::Null]);
        assert!(t.read_crm(&[&json!(9)], None).is_err());
    }

    #[test]
    fn dates_write_midnight_to_partner_center_and_the_day_to_the_crm() {
        let t = Transform::Date;
        let day = t.read_pc(&[&json!("2020-12-01T15:00:00Z")]).unwrap();
        assert_eq!(day, json!("2020-12-01"));
        assert_eq!(
            t.write_pc(&day).unwrap(),
            vec![json!("2020-12-01T00:00:00.0000000Z")]
        );
        assert_eq!(t.write_crm(&day).unwrap(), vec![json!("2020-12-01")]);
    }

    #[test]
    fn templates_fill_and_encode() {
        let t = Template::parse("https://x/{id}/d", &["id"]).unwrap();
        assert_eq!(t.render(&[&json!("c5fb")]), json!("https://x/c5fb/d"));
        assert_eq!(t.render(&[&json!("a/b c")]), json!("https://x/a%2Fb%20c/d"));
        assert_eq!(t.render(&[&Value::Null]), Value::Null);
        assert!(Template::parse("https://x/{name}", &["id"]).is_err());
        assert!(Template::parse("https://x/{id", &["id"]).is_err());
    }

    #[test]
    fn the_record_id_is_read_from_the_record() {
        let id = CrmRecordId::parse("0f1e").unwrap();
        let t = Transform::CrmRecordId;
        assert_eq!(t.read_crm(&[], Some(&id)).unwrap(), json!("0f1e"));
        assert_eq!(t.read_crm(&[], None).unwrap(), Value::Null);
        assert!(t.write_crm(&json!("x")).is_err());
    }
}
