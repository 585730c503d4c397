//! Instance annotations asked for with `Prefer: odata.include-annotations` (crm.md §1.3):
//! `OData.Community.Display.V1.FormattedValue` (choice, state, status and Yes/No labels,
//! money with the currency symbol, dates, lookup names) and, on lookups,
//! `Microsoft.Dynamics.CRM.lookuplogicalname` and `…associatednavigationproperty`.
//! Each annotation is written just before the property it annotates, as Dataverse does.

use super::schema::{ColumnKind, Schema, Table};
use super::store::Row;
use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};

/// Formatted values.
pub(crate) const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
/// The logical name of a lookup's target.
pub(crate) const LOOKUP_LOGICAL_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";
/// The navigation property a lookup is set through.
pub(crate) const NAVIGATION: &str = "Microsoft.Dynamics.CRM.associatednavigationproperty";

/// Which annotations the client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Annotations {
    patterns: Vec<String>,
    raw: Option<String>,
}

impl Annotations {
    /// Reads the value of `odata.include-annotations` (`"*"`, or a comma-separated list
    /// of names and `Namespace.*` wildcards).
    pub fn from_preference(value: &str) -> Self {
        let raw = value.trim().trim_matches('"').to_owned();
        Self {
            patterns: raw
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            raw: Some(raw),
        }
    }

    /// True when `name` was asked for.
    pub fn wants(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| {
            p == "*"
                || p == name
                || p.strip_suffix(".*")
                    .is_some_and(|ns| name.starts_with(ns) && name[ns.len()..].starts_with('.'))
        })
    }

    /// True when any annotation was asked for (conditional GETs then never answer 304, §1.6).
    pub fn requested(&self) -> bool {
        self.raw.is_some()
    }

    /// The `Preference-Applied` entry.
    pub fn applied(&self) -> Option<String> {
        self.raw
            .as_ref()
            .map(|r| format!("odata.include-annotations=\"{r}\""))
    }
}

/// `1200000` → `1,200,000`.
pub(crate) fn group_thousands(whole: &str) -> String {
    let (sign, digits) = match whole.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", whole),
    };
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn format_money(symbol: &str, v: f64) -> String {
    let text = format!("{:.2}", v.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    let sign = if v < 0.0 { "-" } else { "" };
    format!("{sign}{symbol}{}.{cents}", group_thousands(whole))
}

fn formatted(
    schema: &Schema,
    store: &super::store::Store,
    table: &Table,
    row: &Row,
    column: &super::schema::Column,
    value: &Value,
) -> Option<String> {
    match (&column.kind, value) {
        (_, Value::Null) => None,
        (ColumnKind::Choice { options }, Value::Number(n)) => {
            let n = n.as_i64()?;
            options
                .iter()
                .find(|o| i64::from(o.value) == n)
                .map(|o| o.label.clone())
        }
        (ColumnKind::State, Value::Number(n)) => table
            .states
            .as_ref()?
            .state(n.as_i64()?)
            .map(|s| s.label.clone()),
        (ColumnKind::Status, Value::Number(n)) => {
            let n = n.as_i64()?;
            table
                .states
                .as_ref()?
                .state_of_status(n)?
                .statuses
                .iter()
                .find(|c| i64::from(c.value) == n)
                .map(|c| c.label.clone())
        }
        (ColumnKind::Boolean { no, yes }, Value::Bool(b)) => {
            Some(if *b { yes.clone() } else { no.clone() })
        }
        (ColumnKind::Money { .. }, Value::Number(n)) => {
            let base = column.name.ends_with("_base");
            let currency = if base {
                None
            } else {
                row.lookup("transactioncurrencyid")
            };
            let symbol = currency
                .and_then(|(_, id)| store.get("transactioncurrency", &id))
                .and_then(|c| c.get("currencysymbol").as_str().map(str::to_owned))
                .unwrap_or_else(|| "$".to_owned());
            Some(format_money(&symbol, n.as_f64()?))
        }
        (ColumnKind::Integer { .. }, Value::Number(n)) => {
            Some(group_thousands(&n.as_i64()?.to_string()))
        }
        (ColumnKind::DateTime, Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.format("%-m/%-d/%Y %-I:%M %p").to_string()),
        (ColumnKind::DateOnly, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(|d| d.format("%-m/%-d/%Y").to_string()),
        (ColumnKind::Lookup { .. }, _) => {
            let (target, id) = row.lookup(&column.name)?;
            let target_table = schema.by_logical_name(target)?;
            store
                .get(target, &id)?
                .get(&target_table.primary_name)
                .as_str()
                .map(str::to_owned)
        }
        _ => None,
    }
}

/// Adds the requested annotations to a (selected) rendered record.
pub(crate) fn annotate(
    schema: &Schema,
    store: &super::store::Store,
    table: &Table,
    row: &Row,
    record: Map<String, Value>,
    wanted: &Annotations,
) -> Map<String, Value> {
    if wanted.patterns.is_empty() {
        return record;
    }
    let mut out = Map::with_capacity(record.len() * 2);
    for (key, value) in record {
        if let Some(column) = table.column_by_wire_name(&key) {
            if let ColumnKind::Lookup { targets } = &column.kind
                && let Some((target, _)) = row.lookup(&column.name)
            {
                if wanted.wants(NAVIGATION)
                    && let Some(nav) = targets.iter().find(|t| t.table == target)
                {
                    out.insert(
                        format!("{key}@{NAVIGATION}"),
                        Value::String(nav.navigation.clone()),
                    );
                }
                if wanted.wants(LOOKUP_LOGICAL_NAME) {
                    out.insert(
                        format!("{key}@{LOOKUP_LOGICAL_NAME}"),
                        Value::String(target.to_owned()),
                    );
                }
            }
            if wanted.wants(FORMATTED)
                && let Some(text) = formatted(schema, store, table, row, column, &value)
            {
                out.insert(format!("{key}@{FORMATTED}"), Value::String(text));
            }
        }
        out.insert(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_patterns() {
        let all = Annotations::from_preference("\"*\"");
        assert!(all.wants(FORMATTED));
        assert!(all.requested());
        let some = Annotations::from_preference(
            "\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*\"",
        );
        assert!(some.wants(FORMATTED));
        assert!(some.wants(LOOKUP_LOGICAL_NAME));
        assert!(!some.wants("Other.Thing"));
        assert!(!Annotations::default().wants(FORMATTED));
        assert_eq!(
            some.applied().unwrap(),
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*\""
        );
    }

    #[test]
    fn money_is_grouped_with_the_symbol() {
        assert_eq!(format_money("$", 1234567.5), "$1,234,567.50");
        assert_eq!(format_money("€", -12.0), "-€12.00");
        assert_eq!(format_money("£", 999.999), "£1,000.00");
        assert_eq!(group_thousands("100"), "100");
        assert_eq!(group_thousands("-1000"), "-1,000");
        assert_eq!(group_thousands("1200000"), "1,200,000");
    }
}
