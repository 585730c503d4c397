//! Resource paths after `/api/data/<version>/`: the entity set or operation, the key
//! in parentheses, and what follows (a column, `$count`, a bound action).
//!
//! Key forms (crm.md §1.6): `leads(<guid>)`, `leads(leadid=<guid>)`,
//! `leads(msft_referralid='RF-1')` with `''` for a quote inside the value,
//! multi-part `contacts(firstname='Joe',emailaddress1='a@b.c')` and lookups
//! `accounts(_primarycontactid_value=<guid>)`. A key that names anything but the
//! primary key or one declared alternate key is refused with the documented
//! message, and so is a key value containing a character Dataverse cannot address
//! (`/ < > * % & : \ ? +`, crm.md §1.6).

use super::error::DvError;
use super::schema::{ColumnKind, Table};
use super::store::Row;
use super::values::guid_text;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Characters that make a key value unusable in a URL (crm.md §1.6).
pub(crate) const UNADDRESSABLE: [char; 10] = ['/', '<', '>', '*', '%', '&', ':', '\\', '?', '+'];

/// One literal inside key parentheses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyLiteral {
    /// `'text'` (quotes removed, `''` unescaped).
    Text(String),
    /// An unquoted token: a GUID, a number, `true`/`false` or `null`.
    Bare(String),
}

/// What is inside the parentheses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeySpec {
    /// `(value)`.
    Single(KeyLiteral),
    /// `(name=value,…)`.
    Named(Vec<(String, KeyLiteral)>),
}

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourcePath {
    /// The first segment: an entity set, an unbound action or function, `$batch`, …
    pub head: String,
    /// The parenthesised key (`None` without parentheses; `Some(Named([]))` for `()`).
    pub key: Option<KeySpec>,
    /// Further segments (`subject`, `$count`, `Microsoft.Dynamics.CRM.QualifyLead`).
    pub rest: Vec<String>,
}

/// How a request addresses one record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Address {
    /// By primary key.
    Id(Uuid),
    /// By an alternate key: its name and a probe row holding the key values.
    Key {
        /// Key name.
        name: String,
        /// The key's columns with the URL's values (typed as stored).
        probe: Row,
    },
}

/// Parses the (percent-decoded) path after the version.
pub(crate) fn parse_path(path: &str) -> Result<ResourcePath, DvError> {
    let path = path.trim_start_matches('/');
    let (head_end, has_key) = match path.find(['(', '/']) {
        Some(i) => (i, path.as_bytes().get(i) == Some(&b'(')),
        None => (path.len(), false),
    };
    let head = path[..head_end].to_owned();
    let mut at = head_end;
    let key = if has_key {
        let (spec, end) = parse_key(path, head_end + 1)?;
        at = end;
        Some(spec)
    } else {
        None
    };
    let tail = &path[at..];
    let rest = match tail.strip_prefix('/') {
        Some(t) => t
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None if tail.is_empty() => Vec::new(),
        None => return Err(DvError::segment_not_found(tail)),
    };
    Ok(ResourcePath { head, key, rest })
}

/// Parses `name=value,…)` or `value)` from `start`; returns the spec and the index after `)`.
fn parse_key(path: &str, start: usize) -> Result<(KeySpec, usize), DvError> {
    let chars: Vec<(usize, char)> = path[start..]
        .char_indices()
        .map(|(i, c)| (i + start, c))
        .collect();
    let bad = || {
        DvError::bad_url(format!(
            "Bad Request - Error in query syntax: the key in '{path}' is malformed."
        ))
    };
    let mut i = 0;
    let mut items: Vec<(Option<String>, KeyLiteral)> = Vec::new();
    loop {
        let Some(&(_, c)) = chars.get(i) else {
            return Err(bad());
        };
        if c == ')' && items.is_empty() {
            return Ok((KeySpec::Named(Vec::new()), chars[i].0 + 1));
        }
        // Optional `name=`.
        let mut name = None;
        let mut j = i;
        while let Some(&(_, c)) = chars.get(j) {
            if c.is_ascii_alphanumeric() || c == '_' {
                j += 1;
            } else {
                break;
            }
        }
        if j > i && chars.get(j).map(|c| c.1) == Some('=') {
            name = Some(chars[i..j].iter().map(|c| c.1).collect::<String>());
            i = j + 1;
        }
        // The value.
        let literal = if chars.get(i).map(|c| c.1) == Some('\'') {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i).map(|c| c.1) {
                    None => return Err(bad()),
                    Some('\'') if chars.get(i + 1).map(|c| c.1) == Some('\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        text.push(c);
                        i += 1;
                    }
                }
            }
            KeyLiteral::Text(text)
        } else {
            let mut token = String::new();
            while let Some(&(_, c)) = chars.get(i) {
                if c == ',' || c == ')' {
                    break;
                }
                token.push(c);
                i += 1;
            }
            if token.is_empty() {
                return Err(bad());
            }
            KeyLiteral::Bare(token)
        };
        items.push((name, literal));
        match chars.get(i).map(|c| c.1) {
            Some(',') => i += 1,
            Some(')') => {
                let end = chars[i].0 + 1;
                let spec = if items.len() == 1 && items[0].0.is_none() {
                    KeySpec::Single(items.remove(0).1)
                } else if items.iter().all(|(n, _)| n.is_some()) {
                    KeySpec::Named(
                        items
                            .into_iter()
                            .filter_map(|(n, v)| n.map(|n| (n, v)))
                            .collect(),
                    )
                } else {
                    return Err(bad());
                };
                return Ok((spec, end));
            }
            _ => return Err(bad()),
        }
    }
}

fn literal_guid(literal: &KeyLiteral) -> Option<Uuid> {
    match literal {
        KeyLiteral::Bare(s) => {
            Uuid::parse_str(s.trim_start_matches('{').trim_end_matches('}')).ok()
        }
        KeyLiteral::Text(_) => None,
    }
}

/// Resolves a key spec against `table`'s primary and alternate keys.
pub(crate) fn address(table: &Table, spec: &KeySpec) -> Result<Address, DvError> {
    let invalid = || DvError::invalid_key(&table.logical_name);
    match spec {
        KeySpec::Single(literal) => literal_guid(literal).map(Address::Id).ok_or_else(invalid),
        KeySpec::Named(pairs) if pairs.len() == 1 && pairs[0].0 == table.primary_id => {
            literal_guid(&pairs[0].1)
                .map(Address::Id)
                .ok_or_else(invalid)
        }
        KeySpec::Named(pairs) => {
            // URL names a lookup key column as `_x_value`.
            let names: Vec<&str> = pairs
                .iter()
                .map(|(n, _)| {
                    n.strip_prefix('_')
                        .and_then(|s| s.strip_suffix("_value"))
                        .filter(|inner| table.column(inner).is_some_and(|c| c.kind.is_lookup()))
                        .unwrap_or(n)
                })
                .collect();
            let key = table.key_named_by(&names).ok_or_else(invalid)?;
            let mut probe = Row {
                id: Uuid::nil(),
                attrs: Map::new(),
                lookup_tables: BTreeMap::new(),
                version: 0,
            };
            for (name, (_, literal)) in names.iter().zip(pairs) {
                let column = table.column(name).ok_or_else(invalid)?;
                if let KeyLiteral::Text(text) = literal
                    && let Some(c) = text.chars().find(|c| UNADDRESSABLE.contains(c))
                {
                    return Err(DvError::bad_url(format!(
                        "The key value '{text}' contains '{c}'. Alternate key values containing / < > * % & : \\ ? + cannot be used to retrieve, update or upsert a record."
                    )));
                }
                match (&column.kind, literal) {
                    (ColumnKind::Lookup { targets }, lit) => {
                        let id = literal_guid(lit).ok_or_else(invalid)?;
                        let target = targets.first().map(|t| t.table.as_str()).unwrap_or("");
                        probe.set_lookup(name, Some((target, id)));
                    }
                    (ColumnKind::Text { .. }, KeyLiteral::Text(text)) => {
                        probe
                            .attrs
                            .insert((*name).to_owned(), Value::String(text.clone()));
                    }
                    (
                        ColumnKind::DateOnly | ColumnKind::DateTime,
                        KeyLiteral::Text(text) | KeyLiteral::Bare(text),
                    ) => {
                        probe
                            .attrs
                            .insert((*name).to_owned(), Value::String(text.clone()));
                    }
                    (
                        ColumnKind::Integer { .. } | ColumnKind::Choice { .. },
                        KeyLiteral::Bare(token),
                    ) => {
                        let n: i64 = token.parse().map_err(|_| invalid())?;
                        probe.attrs.insert((*name).to_owned(), Value::from(n));
                    }
                    (ColumnKind::Decimal { .. }, KeyLiteral::Bare(token)) => {
                        let n: f64 = token.parse().map_err(|_| invalid())?;
                        probe.attrs.insert((*name).to_owned(), Value::from(n));
                    }
                    _ => return Err(invalid()),
                }
            }
            Ok(Address::Key {
                name: key.name.clone(),
                probe,
            })
        }
    }
}

/// The key segment written back into `OData-EntityId` for `address` (`(<guid>)` or
/// `(name='value')`, quotes doubled).
pub(crate) fn key_segment(table: &Table, address: &Address) -> String {
    match address {
        Address::Id(id) => format!("({})", guid_text(id)),
        Address::Key { name, probe } => {
            let Some(key) = table.keys.iter().find(|k| &k.name == name) else {
                return String::new();
            };
            let parts: Vec<String> = key
                .columns
                .iter()
                .map(|c| {
                    let column = table.column(c);
                    let wire = column
                        .map(|col| col.wire_name())
                        .unwrap_or_else(|| c.clone());
                    let value = match (column.map(|col| &col.kind), probe.get(c)) {
                        (Some(ColumnKind::Text { .. }), Value::String(s)) => {
                            format!("'{}'", s.replace('\'', "''"))
                        }
                        (Some(ColumnKind::DateOnly | ColumnKind::DateTime), Value::String(s)) => {
                            s.clone()
                        }
                        (_, Value::String(s)) => s.clone(),
                        (_, other) => other.to_string(),
                    };
                    format!("{wire}={value}")
                })
                .collect();
            format!("({})", parts.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::config::DataverseConfig;
    use crate::dataverse::schema::Schema;

    fn schema() -> Schema {
        Schema::from_config(&DataverseConfig::default()).unwrap()
    }

    #[test]
    fn paths_split_into_head_key_and_rest() {
        let p = parse_path(
            "leads(00000000-0000-0000-0000-000000000001)/Microsoft.Dynamics.CRM.QualifyLead",
        )
        .unwrap();
        assert_eq!(p.head, "leads");
        assert_eq!(
            p.key,
            Some(KeySpec::Single(KeyLiteral::Bare(
                "00000000-0000-0000-0000-000000000001".to_owned()
            )))
        );
        assert_eq!(p.rest, vec!["Microsoft.Dynamics.CRM.QualifyLead"]);
        let p = parse_path("WhoAmI()").unwrap();
        assert_eq!(p.key, Some(KeySpec::Named(vec![])));
        let p = parse_path("leads/$count").unwrap();
        assert_eq!((p.key, p.rest), (None, vec!["$count".to_owned()]));
    }

    #[test]
    fn quoted_values_unescape_doubled_quotes_and_may_hold_slashes() {
        let p = parse_path("leads(msft_x='O''Brien, Ltd (UK)')/subject").unwrap();
        assert_eq!(
            p.key,
            Some(KeySpec::Named(vec![(
                "msft_x".to_owned(),
                KeyLiteral::Text("O'Brien, Ltd (UK)".to_owned())
            )]))
        );
        assert_eq!(p.rest, vec!["subject"]);
        assert!(parse_path("leads(msft_x='open").is_err());
        assert!(parse_path("leads(msft_x='a'").is_err());
    }

    #[test]
    fn keys_resolve_to_primary_or_declared_alternate_keys_only() {
        let schema = schema();
        let lead = schema.by_logical_name("lead").unwrap();
        let id = "8f0a2b1c-0000-4000-8000-000000000001";
        let spec = parse_path(&format!("leads(leadid={id})"))
            .unwrap()
            .key
            .unwrap();
        assert_eq!(
            address(lead, &spec).unwrap(),
            Address::Id(Uuid::parse_str(id).unwrap())
        );
        let spec = parse_path("leads(msft_microsoftpartnercenterreferralidentifier='RF-1')")
            .unwrap()
            .key
            .unwrap();
        let Address::Key { name, probe } = address(lead, &spec).unwrap() else {
            panic!("alternate key");
        };
        assert_eq!(name, "msft_referralidentifierkey");
        assert_eq!(
            probe.get("msft_microsoftpartnercenterreferralidentifier"),
            "RF-1"
        );
        assert_eq!(
            key_segment(lead, &Address::Key { name, probe }),
            "(msft_microsoftpartnercenterreferralidentifier='RF-1')"
        );
        let spec = parse_path("leads(subject='x')").unwrap().key.unwrap();
        let err = address(lead, &spec).unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(err.message.starts_with(
            "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.lead'"
        ));
        let spec = parse_path("leads('abc')").unwrap().key.unwrap();
        assert!(address(lead, &spec).is_err());
    }

    #[test]
    fn unaddressable_characters_are_refused() {
        let schema = schema();
        let lead = schema.by_logical_name("lead").unwrap();
        for bad in [
            "a/b", "a+b", "50%", "a:b", "a?b", "a&b", "a*b", "a<b", "a\\b",
        ] {
            let spec = parse_path(&format!(
                "leads(msft_microsoftpartnercenterreferralidentifier='{bad}')"
            ))
            .unwrap()
            .key
            .unwrap();
            assert!(address(lead, &spec).is_err(), "{bad}");
        }
    }
}
