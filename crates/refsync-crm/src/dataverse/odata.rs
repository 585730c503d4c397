//! OData text built from values: string literals with `''` escaping, record addresses
//! by primary or alternate key, `$filter` equality and date-time literals (crm.md
//! §1.6, §1.7). Names are checked before they reach a URL, so a mapping typo can never
//! change the meaning of a query.

use crate::connector::CrmError;
use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// Characters encoded inside a key value in the URL path. The quote is encoded too
/// (the server decodes the path before reading the OData literal); `/ < > * % & : \ ? +`
/// in key values are not supported by Dataverse at all (crm.md §1.6).
const KEY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A column, table or entity-set name: a logical name (letters, digits, `_`), or a
/// lookup's read name `_x_value`.
pub(crate) fn name(text: &str) -> Result<&str, CrmError> {
    let ok = !text.is_empty()
        && text.len() <= 128
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(text)
    } else {
        Err(CrmError::Mapping(format!(
            "{text:?} is not a Dataverse logical name (letters, digits and _ only)"
        )))
    }
}

/// A string literal: single-quoted, quotes doubled (crm.md §1.7: `'O''Bryan'`).
pub(crate) fn string_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A JSON value as an OData literal for `$filter` (strings quoted, numbers and
/// booleans bare, null as `null`).
pub(crate) fn literal(value: &Value) -> Result<String, CrmError> {
    match value {
        Value::String(s) => Ok(string_literal(s)),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok("null".to_owned()),
        other => Err(CrmError::Mapping(format!(
            "{other} cannot be compared in a Dataverse filter"
        ))),
    }
}

/// `a eq 'x' and b eq 2` (string comparison is case-insensitive in Dataverse, §1.7).
pub(crate) fn all_equal(criteria: &[(&str, &Value)]) -> Result<String, CrmError> {
    let parts: Result<Vec<String>, CrmError> = criteria
        .iter()
        .map(|(column, value)| Ok(format!("{} eq {}", name(column)?, literal(value)?)))
        .collect();
    Ok(parts?.join(" and "))
}

/// A date-time literal: `2024-01-01T00:00:00.123Z` (crm.md §1.7).
pub(crate) fn datetime_literal(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `leads(<guid>)`. The id must be a GUID: anything else would change the URL.
pub(crate) fn by_id(set: &str, id: &str) -> Result<String, CrmError> {
    let guid = uuid::Uuid::parse_str(id).map_err(|_| CrmError::Rejected {
        code: None,
        message: format!("{id:?} is not a Dataverse record id (a GUID)"),
    })?;
    Ok(format!("{}({guid})", name(set)?))
}

/// `leads(msft_referralid='RF-1')`: the alternate-key address (crm.md §1.6).
pub(crate) fn by_key(set: &str, column: &str, value: &str) -> Result<String, CrmError> {
    let literal = string_literal(value);
    Ok(format!(
        "{}({}={})",
        name(set)?,
        name(column)?,
        utf8_percent_encode(&literal, KEY_VALUE)
    ))
}

/// `/accounts(<guid>)`: the value of a `nav@odata.bind` (crm.md §1.4).
pub(crate) fn bind(set: &str, id: &str) -> Result<String, CrmError> {
    Ok(format!("/{}", by_id(set, id)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_are_doubled_in_literals_and_keys() {
        assert_eq!(string_literal("O'Bryan"), "'O''Bryan'");
        assert_eq!(
            all_equal(&[
                ("name", &json!("Fabrikam's")),
                ("address1_postalcode", &json!("98052"))
            ])
            .unwrap(),
            "name eq 'Fabrikam''s' and address1_postalcode eq '98052'"
        );
        assert_eq!(
            all_equal(&[("statecode", &json!(0))]).unwrap(),
            "statecode eq 0"
        );
        assert_eq!(
            by_key("leads", "msft_ref", "a'b c").unwrap(),
            "leads(msft_ref=%27a%27%27b%20c%27)"
        );
    }

    #[test]
    fn names_and_ids_cannot_change_the_url() {
        assert!(name("name eq 'x' or 1").is_err());
        assert!(name("_transactioncurrencyid_value").is_ok());
        assert!(by_id("leads", "1)/../accounts(2").is_err());
        assert_eq!(
            bind("accounts", "00000000-0000-0000-0000-000000000001").unwrap(),
            "/accounts(00000000-0000-0000-0000-000000000001)"
        );
        assert!(literal(&json!([1])).is_err());
    }

    #[test]
    fn datetimes_are_utc_with_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2026-01-15T10:00:00.5+02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(datetime_literal(t), "2026-01-15T08:00:00.500Z");
    }
}
