//! Reading one column value from a request body: the JSON type the column's
//! Edm type needs, then its limits (length, range, option set), into the form it
//! is stored and returned in (crm.md §1.4). A wrong JSON type is a payload error
//! (as OData deserialization fails in Dataverse); a value out of limits is a
//! validation error.

use super::error::DvError;
use super::schema::{Column, ColumnKind};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use std::str::FromStr;
use uuid::Uuid;

/// The Edm type name of a column, as OData errors name it.
pub(crate) fn edm_type(kind: &ColumnKind) -> &'static str {
    match kind {
        ColumnKind::PrimaryKey | ColumnKind::Lookup { .. } => "Edm.Guid",
        ColumnKind::Text { .. } | ColumnKind::Memo { .. } => "Edm.String",
        ColumnKind::Integer { .. }
        | ColumnKind::Choice { .. }
        | ColumnKind::State
        | ColumnKind::Status => "Edm.Int32",
        ColumnKind::Double { .. } => "Edm.Double",
        ColumnKind::Decimal { .. } | ColumnKind::Money { .. } => "Edm.Decimal",
        ColumnKind::Boolean { .. } => "Edm.Boolean",
        ColumnKind::DateTime => "Edm.DateTimeOffset",
        ColumnKind::DateOnly => "Edm.Date",
        ColumnKind::Version => "Edm.Int64",
    }
}

/// Formats a date-time as Dataverse returns it: UTC, whole seconds, `Z`.
pub(crate) fn format_datetime(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Formats a system timestamp as stored: UTC with milliseconds. Dataverse returns
/// `createdon`/`modifiedon` to the second, but its SQL store keeps milliseconds and
/// `$filter` compares those, so `modifiedon gt <a returned value>` also finds later
/// edits within that second. Not in crm.md (**unconfirmed**); it is the forgiving
/// reading: a poller keyed on `gt` misses nothing here and would miss nothing there.
pub(crate) fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A stored date-time as the Web API returns it (whole seconds).
pub(crate) fn output_datetime(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > 20 => DateTime::parse_from_rfc3339(s)
            .map(|t| Value::String(format_datetime(&t.with_timezone(&Utc))))
            .unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    }
}

/// The stored form of a GUID: lowercase and hyphenated.
pub(crate) fn guid_text(id: &Uuid) -> String {
    id.hyphenated().to_string()
}

/// Rounds a money value to its precision (2) and returns it as a JSON number.
pub(crate) fn money_value(v: f64) -> Value {
    // From the shortest decimal text of the float, so 10.005 is 10.005 and rounds up.
    let rounded = Decimal::from_str(&v.to_string())
        .ok()
        .or_else(|| Decimal::from_f64(v))
        .map(|d| d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
        .and_then(|d| d.to_f64())
        .unwrap_or(v);
    serde_json::Number::from_f64(rounded)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn cannot_convert(value: &Value, kind: &ColumnKind) -> String {
    let literal = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!(
        "Cannot convert the literal '{literal}' to the expected type '{}'.",
        edm_type(kind)
    )
}

/// Checks and converts `value` for `column` of `table` (entity set `set`, for messages).
/// `null` passes through (required columns are checked on the whole record).
pub(crate) fn coerce(
    table: &str,
    set: &str,
    column: &Column,
    value: &Value,
) -> Result<Value, DvError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let wrong_type = || DvError::payload(set, cannot_convert(value, &column.kind));
    match &column.kind {
        ColumnKind::PrimaryKey => {
            let text = value.as_str().ok_or_else(wrong_type)?;
            let id = Uuid::parse_str(text).map_err(|_| wrong_type())?;
            Ok(Value::String(guid_text(&id)))
        }
        ColumnKind::Text { max_len } => {
            let text = value.as_str().ok_or_else(wrong_type)?;
            if let Some(max) = max_len
                && text.chars().count() > *max
            {
                return Err(DvError::too_long(&column.name, table, *max));
            }
            Ok(value.clone())
        }
        ColumnKind::Memo { max_len } => {
            let text = value.as_str().ok_or_else(wrong_type)?;
            if text.chars().count() > *max_len {
                return Err(DvError::too_long(&column.name, table, *max_len));
            }
            Ok(value.clone())
        }
        ColumnKind::Integer { min, max } => {
            let n = value.as_i64().ok_or_else(wrong_type)?;
            if n < *min || n > *max {
                return Err(DvError::out_of_range(
                    &n.to_string(),
                    &column.name,
                    table,
                    &min.to_string(),
                    &max.to_string(),
                ));
            }
            Ok(Value::from(n))
        }
        ColumnKind::Double { min, max } | ColumnKind::Money { min, max } => {
            let n = value.as_f64().ok_or_else(wrong_type)?;
            if !n.is_finite() || n < *min || n > *max {
                return Err(DvError::out_of_range(
                    &value.to_string(),
                    &column.name,
                    table,
                    &plain_number(*min),
                    &plain_number(*max),
                ));
            }
            if matches!(column.kind, ColumnKind::Money { .. }) {
                Ok(money_value(n))
            } else {
                Ok(value.clone())
            }
        }
        ColumnKind::Decimal { .. } => {
            value.as_f64().ok_or_else(wrong_type)?;
            Ok(value.clone())
        }
        ColumnKind::Boolean { .. } => {
            value.as_bool().ok_or_else(wrong_type)?;
            Ok(value.clone())
        }
        ColumnKind::DateTime => {
            let text = value.as_str().ok_or_else(wrong_type)?;
            // Edm.DateTimeOffset needs a time and an offset.
            let t = DateTime::parse_from_rfc3339(text).map_err(|_| wrong_type())?;
            Ok(Value::String(format_datetime(&t.with_timezone(&Utc))))
        }
        ColumnKind::DateOnly => {
            let text = value.as_str().ok_or_else(wrong_type)?;
            let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| wrong_type())?;
            Ok(Value::String(d.format("%Y-%m-%d").to_string()))
        }
        ColumnKind::Choice { options } => {
            let n = value.as_i64().ok_or_else(wrong_type)?;
            if !options.iter().any(|o| i64::from(o.value) == n) {
                return Err(DvError::choice_out_of_range(
                    &n.to_string(),
                    &column.name,
                    table,
                ));
            }
            Ok(Value::from(n))
        }
        ColumnKind::State | ColumnKind::Status => {
            let n = value.as_i64().ok_or_else(wrong_type)?;
            Ok(Value::from(n))
        }
        // Lookups are written through navigation properties; versions never.
        ColumnKind::Lookup { .. } | ColumnKind::Version => Err(wrong_type()),
    }
}

fn plain_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e18 {
        #[allow(clippy::cast_possible_truncation)]
        let whole = v as i64;
        whole.to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::config::DataverseConfig;
    use crate::dataverse::schema::Schema;
    use serde_json::json;

    fn check(set: &str, column: &str, value: Value) -> Result<Value, DvError> {
        let schema = Schema::from_config(&DataverseConfig::default()).unwrap();
        let table = schema.by_entity_set(set).unwrap();
        coerce(
            &table.logical_name,
            set,
            table.column(column).unwrap(),
            &value,
        )
    }

    #[test]
    fn text_length_is_counted_in_characters() {
        assert!(check("leads", "subject", json!("é".repeat(300))).is_ok());
        let err = check("leads", "subject", json!("x".repeat(301))).unwrap_err();
        assert_eq!(err.code, "0x80044331");
        assert!(err.message.contains("'subject'"), "{}", err.message);
        assert!(err.message.contains("'300'"), "{}", err.message);
        let err = check("leads", "description", json!("x".repeat(2001))).unwrap_err();
        assert!(err.message.contains("'2000'"));
    }

    #[test]
    fn money_is_range_checked_and_rounded() {
        assert_eq!(
            check("leads", "estimatedamount", json!(10.005)).unwrap(),
            json!(10.01)
        );
        assert!(check("leads", "estimatedamount", json!(1e12)).is_ok());
        let err = check("leads", "estimatedamount", json!(1e12 + 1.0)).unwrap_err();
        assert!(
            err.message.contains("Accepted Range: 0 to 1000000000000"),
            "{}",
            err.message
        );
        assert!(check("leads", "estimatedamount", json!(-1)).is_err());
        assert!(check("opportunities", "estimatedvalue", json!(-5)).is_ok());
        let err = check("leads", "estimatedamount", json!("100")).unwrap_err();
        assert_eq!(err.code, "0x80048d19");
    }

    #[test]
    fn dates_and_datetimes_need_their_own_shapes() {
        assert_eq!(
            check("leads", "estimatedclosedate", json!("2025-06-30")).unwrap(),
            json!("2025-06-30")
        );
        assert!(check("leads", "estimatedclosedate", json!("2025-06-30T00:00:00Z")).is_err());
        assert!(check("leads", "estimatedclosedate", json!("30/06/2025")).is_err());
    }

    #[test]
    fn choices_must_be_in_the_option_set() {
        assert!(check("leads", "leadsourcecode", json!(4)).is_ok());
        let err = check("leads", "leadsourcecode", json!(11)).unwrap_err();
        assert_eq!(err.code, "0x8004431a");
        assert!(check("leads", "msft_microsoftpartnercenterhelp", json!(299600005)).is_ok());
        assert!(check("leads", "msft_microsoftpartnercenterhelp", json!(299600006)).is_err());
        assert!(check("leads", "leadsourcecode", json!("4")).is_err());
    }

    #[test]
    fn guids_are_normalised() {
        assert_eq!(
            check(
                "leads",
                "leadid",
                json!("8F0A2B1C-0000-4000-8000-000000000001")
            )
            .unwrap(),
            json!("8f0a2b1c-0000-4000-8000-000000000001")
        );
        assert!(check("leads", "leadid", json!("nope")).is_err());
    }
}
