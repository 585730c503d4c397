//! `$expand` on single-valued navigation properties: `$expand=transactioncurrencyid($select=isocurrencycode)`
//! puts the related record (its selected columns, primary key and `@odata.etag`) under
//! the navigation property's name, or `null` when the lookup is empty. That is what a
//! connector needs to read a lookup's key (the currency's ISO code) in one call.
//! Collection-valued navigation and nested options other than `$select` are not
//! implemented (501); `$expand` with change tracking is refused as Dataverse does (crm.md §1.9).

use super::error::DvError;
use super::query::selected;
use super::schema::{Schema, Table};
use super::store::{Row, Store};
use crate::odata::Select;
use serde_json::{Map, Value};

/// One expanded navigation property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandItem {
    /// The navigation property (case-sensitive), e.g. `customerid_account`.
    pub nav: String,
    /// Its `$select`.
    pub select: Option<Select>,
}

/// A parsed `$expand`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Expand(pub Vec<ExpandItem>);

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

impl Expand {
    /// Parses `$expand` for `table`, checking each navigation property and nested `$select`.
    pub fn parse(schema: &Schema, table: &Table, text: &str) -> Result<Self, DvError> {
        let mut items = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            let (nav, options) = match part.split_once('(') {
                Some((nav, rest)) => {
                    let inner = rest.strip_suffix(')').ok_or_else(|| {
                        DvError::bad_url(format!("The $expand item '{part}' is malformed."))
                    })?;
                    (nav.trim(), Some(inner))
                }
                None => (part, None),
            };
            let Some((_, target)) = table.navigation(nav) else {
                return Err(DvError::unknown_property(nav, &table.logical_name));
            };
            let target = schema
                .by_logical_name(target)
                .ok_or_else(|| DvError::unknown_property(nav, &table.logical_name))?;
            let mut select = None;
            for option in options
                .map(|o| o.split(';').collect::<Vec<_>>())
                .unwrap_or_default()
            {
                let (name, value) = option.split_once('=').unwrap_or((option, ""));
                if name.trim() != "$select" {
                    return Err(DvError::not_implemented(&format!(
                        "The nested {} option of $expand",
                        name.trim()
                    )));
                }
                let parsed = Select::parse(value).map_err(|e| DvError::bad_url(e.to_string()))?;
                for column in &parsed.0 {
                    if column != "*" && target.column_by_wire_name(column).is_none() {
                        return Err(DvError::unknown_property(column, &target.logical_name));
                    }
                }
                select = Some(parsed);
            }
            items.push(ExpandItem {
                nav: nav.to_owned(),
                select,
            });
        }
        Ok(Self(items))
    }

    /// True when nothing is expanded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the expanded records to `out` (a rendered, selected record of `table`).
    pub fn apply(
        &self,
        schema: &Schema,
        store: &Store,
        table: &Table,
        row: &Row,
        out: &mut Map<String, Value>,
    ) {
        for item in &self.0 {
            let related = table
                .navigation(&item.nav)
                .and_then(|(column, target)| {
                    row.lookup(&column.name)
                        .filter(|(t, _)| *t == target)
                        .map(|(t, id)| (t.to_owned(), id))
                })
                .and_then(|(t, id)| Some((schema.by_logical_name(&t)?, store.get(&t, &id)?)))
                .map(|(target, related)| {
                    Value::Object(selected(target, related, item.select.as_ref()))
                })
                .unwrap_or(Value::Null);
            out.insert(item.nav.clone(), related);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::config::DataverseConfig;

    #[test]
    fn single_valued_navigation_with_nested_select() {
        let schema = Schema::from_config(&DataverseConfig::default()).unwrap();
        let opp = schema.by_logical_name("opportunity").unwrap();
        let e = Expand::parse(
            &schema,
            opp,
            "transactioncurrencyid($select=isocurrencycode,currencysymbol),customerid_account",
        )
        .unwrap();
        assert_eq!(e.0.len(), 2);
        assert_eq!(e.0[0].nav, "transactioncurrencyid");
        assert_eq!(
            e.0[0].select.as_ref().unwrap().0,
            vec!["isocurrencycode", "currencysymbol"]
        );
        assert!(Expand::parse(&schema, opp, "nosuch").is_err());
        assert!(Expand::parse(&schema, opp, "transactioncurrencyid($select=nosuch)").is_err());
        assert_eq!(
            Expand::parse(&schema, opp, "customerid_account($filter=name eq 'x')")
                .unwrap_err()
                .status
                .as_u16(),
            501
        );
    }
}
