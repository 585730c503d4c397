//! Building SOQL (crm.md §2.4) from the mapping's names and the engine's values.
//!
//! Names (objects, fields) come from configuration and are checked to be plain API
//! names, so a typo cannot change a query's shape. Values are written as literals:
//! strings single-quoted with `\` escapes, so a customer called `O'Brien \ Sons`
//! is matched, not injected.

use crate::connector::CrmError;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Checks an object or field API name: letters, digits and `_`, starting with a letter
/// (`Referral_Identifier__c`, `ns__Field__c`); `.` separates relationship hops.
pub(crate) fn name(text: &str) -> Result<&str, CrmError> {
    let valid = !text.is_empty()
        && text.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if valid {
        Ok(text)
    } else {
        Err(CrmError::Mapping(format!(
            "{text:?} is not a Salesforce API name (letters, digits and _)"
        )))
    }
}

/// A quoted string literal. `'` and `\` are escaped, and so are the control characters
/// SOQL has escapes for, so the query stays one line (crm.md §2.4).
pub(crate) fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

/// A datetime literal: unquoted ISO 8601 in UTC with milliseconds, Salesforce's precision.
pub(crate) fn datetime_literal(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A JSON value as a literal for `=`: text quoted, numbers and booleans bare, null as `null`.
pub(crate) fn literal(value: &Value) -> Result<String, CrmError> {
    match value {
        Value::String(s) => Ok(string_literal(s)),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok("null".to_owned()),
        other => Err(CrmError::Mapping(format!(
            "cannot compare a Salesforce field with {other}"
        ))),
    }
}

/// `A = 'x' AND B = 'y'`.
pub(crate) fn all_equal(criteria: &[(&str, &Value)]) -> Result<String, CrmError> {
    let parts = criteria
        .iter()
        .map(|(field, value)| Ok(format!("{} = {}", name(field)?, literal(value)?)))
        .collect::<Result<Vec<_>, CrmError>>()?;
    Ok(parts.join(" AND "))
}

/// `SELECT … FROM … [WHERE …] [ORDER BY …] [LIMIT n]`.
pub(crate) fn select(
    fields: &[String],
    object: &str,
    condition: Option<&str>,
    order_by: Option<&str>,
    limit: Option<usize>,
) -> Result<String, CrmError> {
    let mut q = format!("SELECT {} FROM {}", fields.join(", "), name(object)?);
    if let Some(c) = condition {
        q.push_str(" WHERE ");
        q.push_str(c);
    }
    if let Some(o) = order_by {
        q.push_str(" ORDER BY ");
        q.push_str(o);
    }
    if let Some(n) = limit {
        q.push_str(&format!(" LIMIT {n}"));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(string_literal("O'Brien"), r"'O\'Brien'");
        assert_eq!(string_literal(r"a\b"), r"'a\\b'");
        assert_eq!(string_literal(r"\'"), r"'\\\''");
        assert_eq!(string_literal("two\nlines"), r"'two\nlines'");
        // LIKE wildcards mean nothing to `=`, so they are left alone.
        assert_eq!(string_literal("100%_sure"), "'100%_sure'");
    }

    #[test]
    fn criteria_render_as_one_and_chain() {
        let name_v = json!("Contoso's \"Best\" Ltd");
        let zip = json!("98052");
        let n = json!(5);
        let t = json!(true);
        let q = all_equal(&[
            ("Name", &name_v),
            ("BillingPostalCode", &zip),
            ("NumberOfEmployees", &n),
            ("IsActive__c", &t),
        ])
        .unwrap();
        assert_eq!(
            q,
            r#"Name = 'Contoso\'s "Best" Ltd' AND BillingPostalCode = '98052' AND NumberOfEmployees = 5 AND IsActive__c = true"#
        );
        assert!(all_equal(&[("Name) OR (Id", &name_v)]).is_err());
        assert!(all_equal(&[("Name", &json!(["x"]))]).is_err());
    }

    #[test]
    fn names_are_plain_api_names() {
        for ok in [
            "Account",
            "Referral_Identifier__c",
            "ns__F__c",
            "Account.Name",
        ] {
            assert!(name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1x", "Name,Id", "Name Id", "_x", "a..b", "Name'"] {
            assert!(name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn datetimes_are_unquoted_utc_with_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2026-01-15T10:00:00.123456+02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(datetime_literal(t), "2026-01-15T08:00:00.123Z");
        let q = select(
            &["Id".to_owned(), "Name".to_owned()],
            "Lead",
            Some("SystemModstamp > 2026-01-15T08:00:00.123Z"),
            Some("SystemModstamp ASC, Id ASC"),
            Some(200),
        )
        .unwrap();
        assert_eq!(
            q,
            "SELECT Id, Name FROM Lead WHERE SystemModstamp > 2026-01-15T08:00:00.123Z ORDER BY SystemModstamp ASC, Id ASC LIMIT 200"
        );
    }
}
