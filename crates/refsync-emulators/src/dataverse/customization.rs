//! What a CRM admin adds to the standard tables through configuration: custom
//! columns (prefixed lowercase logical names, crm.md §1.13) and alternate keys
//! (1–16 key-eligible columns, at most 10 per table, crm.md §1.6), checked once.

use super::config::{AlternateKeyConfig, CustomColumn, CustomColumnKind};
use super::schema::{AlternateKey, Choice, Column, ColumnKind, LookupTarget, SchemaError, Table};

fn valid_custom_name(name: &str) -> bool {
    let Some((prefix, rest)) = name.split_once('_') else {
        return false;
    };
    !prefix.is_empty()
        && !rest.is_empty()
        && prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(crate) fn add_custom_column(
    list: &mut [Table],
    custom: &CustomColumn,
) -> Result<(), SchemaError> {
    if !valid_custom_name(&custom.name) {
        return Err(SchemaError::BadName(custom.name.clone()));
    }
    if let CustomColumnKind::Lookup { target, .. } = &custom.kind
        && !list.iter().any(|t| &t.logical_name == target)
    {
        return Err(SchemaError::UnknownTable {
            column: custom.name.clone(),
            table: target.clone(),
        });
    }
    let table = list
        .iter_mut()
        .find(|t| t.logical_name == custom.table && t.writable)
        .ok_or_else(|| SchemaError::UnknownTable {
            column: custom.name.clone(),
            table: custom.table.clone(),
        })?;
    if table.column(&custom.name).is_some() {
        return Err(SchemaError::Duplicate {
            table: table.logical_name.clone(),
            column: custom.name.clone(),
        });
    }
    let kind = match &custom.kind {
        CustomColumnKind::Text { max_length } => ColumnKind::Text {
            max_len: Some(*max_length),
        },
        CustomColumnKind::Memo { max_length } => ColumnKind::Memo {
            max_len: *max_length,
        },
        CustomColumnKind::Boolean { .. } => ColumnKind::Boolean {
            no: "No".to_owned(),
            yes: "Yes".to_owned(),
        },
        CustomColumnKind::Choice { options } => ColumnKind::Choice {
            options: options
                .iter()
                .map(|o| Choice {
                    value: o.value,
                    label: o.label.clone(),
                })
                .collect(),
        },
        CustomColumnKind::Integer { min, max } => ColumnKind::Integer {
            min: *min,
            max: *max,
        },
        CustomColumnKind::Date => ColumnKind::DateOnly,
        CustomColumnKind::Lookup {
            target,
            navigation_property,
        } => ColumnKind::Lookup {
            targets: vec![LookupTarget {
                table: target.clone(),
                navigation: navigation_property.clone(),
            }],
        },
    };
    let mut column = Column::new(&custom.name, &custom.label, kind);
    column.custom = true;
    if let CustomColumnKind::Boolean { default } = custom.kind {
        column.default = Some(serde_json::Value::Bool(default));
    }
    table.columns.push(column);
    table.reindex();
    Ok(())
}

pub(crate) fn add_key(list: &mut [Table], key: &AlternateKeyConfig) -> Result<(), SchemaError> {
    let table = list
        .iter_mut()
        .find(|t| t.logical_name == key.table)
        .ok_or_else(|| SchemaError::UnknownTable {
            column: key.name.clone(),
            table: key.table.clone(),
        })?;
    // crm.md §1.6: 1-16 columns, at most 10 keys, and only these column types.
    if key.columns.is_empty() || key.columns.len() > 16 {
        return Err(SchemaError::Invalid(format!(
            "key {}: a key has 1 to 16 columns",
            key.name
        )));
    }
    if table.keys.len() >= 10 {
        return Err(SchemaError::Invalid(format!(
            "key {}: {} already has 10 keys",
            key.name, table.logical_name
        )));
    }
    for name in &key.columns {
        let column = table.column(name).ok_or_else(|| {
            SchemaError::Invalid(format!(
                "key {}: no column {name:?} on {}",
                key.name, table.logical_name
            ))
        })?;
        let eligible = matches!(
            column.kind,
            ColumnKind::Text { .. }
                | ColumnKind::Integer { .. }
                | ColumnKind::Decimal { .. }
                | ColumnKind::DateTime
                | ColumnKind::DateOnly
                | ColumnKind::Lookup { .. }
                | ColumnKind::Choice { .. }
        );
        if !eligible {
            return Err(SchemaError::Invalid(format!(
                "key {}: column {name:?} cannot be part of a key (text, whole number, decimal, date, lookup or choice only)",
                key.name
            )));
        }
    }
    table.keys.push(AlternateKey {
        name: key.name.clone(),
        columns: key.columns.clone(),
    });
    Ok(())
}
