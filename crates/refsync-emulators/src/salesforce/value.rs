//! Field values: parsed from request JSON by field type, stored typed, and
//! written back in Salesforce's JSON formats.
//!
//! Parsing is where the emulator catches real client mistakes: a date that is
//! not `YYYY-MM-DD`, text over the field length (`STRING_TOO_LONG`), a value
//! outside a restricted picklist, a number that does not fit the field, an
//! email that is not one, an id that is not an id. Empty text is stored as
//! null, as Salesforce does.

use super::clock::truncate_ms;
use super::error::{SfError, code};
use super::ids::SfId;
use super::schema::{FieldDef, FieldType};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Number, Value as JsonValue};
use std::str::FromStr;

/// A stored field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// Text, picklist values and ids (ids in their 18-character form).
    Text(String),
    /// Checkbox.
    Bool(bool),
    /// Any number (currency, percent, double, int).
    Number(Decimal),
    /// A date.
    Date(NaiveDate),
    /// An instant, at millisecond precision.
    DateTime(DateTime<Utc>),
}

impl Value {
    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The text, for text-like values.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The instant, for date-time values.
    pub fn as_datetime(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::DateTime(t) => Some(*t),
            _ => None,
        }
    }

    /// The JSON Salesforce answers for this value in a field of type `ty`.
    pub fn to_json(&self, ty: &FieldType) -> JsonValue {
        match self {
            Self::Null => JsonValue::Null,
            Self::Text(s) => JsonValue::String(s.clone()),
            Self::Bool(b) => JsonValue::Bool(*b),
            Self::Date(d) => JsonValue::String(d.format("%Y-%m-%d").to_string()),
            Self::DateTime(t) => JsonValue::String(format_datetime(*t)),
            Self::Number(n) => match ty {
                FieldType::Int => n
                    .to_i64()
                    .map(|i| JsonValue::Number(i.into()))
                    .unwrap_or(JsonValue::Null),
                _ => n
                    .to_f64()
                    .and_then(Number::from_f64)
                    .map(JsonValue::Number)
                    .unwrap_or(JsonValue::Null),
            },
        }
    }
}

/// Salesforce's date-time format: `2024-05-08T21:20:00.000+0000`.
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// Parses an ISO 8601 instant as clients send it: `Z`, `+00:00` or `+0000`
/// offsets, with or without fractional seconds.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// Parses a strict `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The canonical ISO form used in non-record JSON (getUpdated, limits).
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parser_error(type_name: &str, json: &JsonValue) -> SfError {
    let token = match json {
        JsonValue::String(_) => "VALUE_STRING",
        JsonValue::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        JsonValue::Number(_) => "VALUE_NUMBER_INT",
        JsonValue::Bool(true) => "VALUE_TRUE",
        JsonValue::Bool(false) => "VALUE_FALSE",
        JsonValue::Array(_) => "START_ARRAY",
        JsonValue::Object(_) => "START_OBJECT",
        JsonValue::Null => "VALUE_NULL",
    };
    let shown = match json {
        JsonValue::String(s) => s.clone(),
        other => other.to_string(),
    };
    SfError::json(format!(
        "Cannot deserialize instance of {type_name} from {token} value {shown} or request may be missing a required field"
    ))
}

fn decimal_from_json(json: &JsonValue) -> Option<Decimal> {
    let text = match json {
        JsonValue::Number(n) => n.to_string(),
        JsonValue::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
}

/// Parses `json` for `field`; errors name the field as Salesforce does.
pub fn coerce(field: &FieldDef, json: &JsonValue) -> Result<Value, SfError> {
    if json.is_null() {
        return Ok(match field.ty {
            // A checkbox cannot be null; clearing it stores false.
            FieldType::Boolean => Value::Bool(false),
            _ => Value::Null,
        });
    }
    let fields = [field.name.as_str()];
    match &field.ty {
        FieldType::Id | FieldType::Reference { .. } => {
            let JsonValue::String(s) = json else {
                return Err(parser_error("id", json));
            };
            if s.is_empty() {
                return Ok(Value::Null);
            }
            SfId::parse(s)
                .map(|id| Value::Text(id.as_str().to_owned()))
                .ok_or_else(|| {
                    SfError::field(
                        code::MALFORMED_ID,
                        format!("{}: id value of incorrect type: {s}", field.label),
                        &fields,
                    )
                })
        }
        FieldType::Text(_)
        | FieldType::TextArea(_)
        | FieldType::Email
        | FieldType::Phone(_)
        | FieldType::Url(_)
        | FieldType::Picklist { .. } => {
            let text = match json {
                JsonValue::String(s) => s.clone(),
                JsonValue::Number(n) => n.to_string(),
                JsonValue::Bool(b) => b.to_string(),
                _ => return Err(parser_error("string", json)),
            };
            if text.is_empty() {
                return Ok(Value::Null);
            }
            if let Some(max) = field.ty.max_length()
                && text.chars().count() > max as usize
            {
                return Err(SfError::field(
                    code::STRING_TOO_LONG,
                    format!(
                        "{}: data value too large: {text} (max length={max})",
                        field.label
                    ),
                    &fields,
                ));
            }
            match &field.ty {
                FieldType::Email if !looks_like_email(&text) => Err(SfError::field(
                    code::INVALID_EMAIL_ADDRESS,
                    format!("{}: invalid email address: {text}", field.label),
                    &fields,
                )),
                FieldType::Picklist {
                    values,
                    restricted: true,
                } if !values.iter().any(|v| v == &text) => Err(SfError::field(
                    code::INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST,
                    format!(
                        "{}: bad value for restricted picklist field: {text}",
                        field.label
                    ),
                    &fields,
                )),
                _ => Ok(Value::Text(text)),
            }
        }
        FieldType::Boolean => match json {
            JsonValue::Bool(b) => Ok(Value::Bool(*b)),
            JsonValue::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            JsonValue::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(parser_error("boolean", json)),
        },
        FieldType::Date => match json {
            JsonValue::String(s) => parse_date(s)
                .map(Value::Date)
                .ok_or_else(|| parser_error("date", json)),
            _ => Err(parser_error("date", json)),
        },
        FieldType::DateTime => match json {
            JsonValue::String(s) => parse_datetime(s)
                .map(|t| Value::DateTime(truncate_ms(t)))
                .ok_or_else(|| parser_error("datetime", json)),
            _ => Err(parser_error("datetime", json)),
        },
        FieldType::Int => {
            let n = decimal_from_json(json).ok_or_else(|| parser_error("int", json))?;
            if !n.fract().is_zero() || n.abs() > Decimal::from(i32::MAX) {
                return Err(parser_error("int", json));
            }
            Ok(Value::Number(n))
        }
        FieldType::Currency(precision, scale)
        | FieldType::Percent(precision, scale)
        | FieldType::Double(precision, scale) => {
            let type_name = field.ty.describe_name();
            let n = decimal_from_json(json).ok_or_else(|| parser_error(type_name, json))?;
            let n = n.round_dp_with_strategy(*scale, RoundingStrategy::MidpointAwayFromZero);
            let integer_digits = precision.saturating_sub(*scale);
            let limit = Decimal::from(10u64.pow(integer_digits.min(18)));
            if n.abs() >= limit {
                return Err(SfError::field(
                    code::NUMBER_OUTSIDE_VALID_RANGE,
                    format!(
                        "{}: value outside of valid range on numeric field: {n}",
                        field.label
                    ),
                    &fields,
                ));
            }
            Ok(Value::Number(n.normalize()))
        }
    }
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(ty: FieldType) -> FieldDef {
        FieldDef {
            name: "F__c".to_owned(),
            label: "F".to_owned(),
            ty,
            createable: true,
            updateable: true,
            required: false,
            external_id: false,
            unique: false,
            case_sensitive: false,
            custom: true,
            default: None,
        }
    }

    fn err_code(r: Result<Value, SfError>) -> &'static str {
        r.unwrap_err().errors[0].code
    }

    #[test]
    fn dates_must_be_plain_dates() {
        let f = field(FieldType::Date);
        assert_eq!(
            coerce(&f, &json!("2025-06-30")).unwrap(),
            Value::Date(NaiveDate::from_ymd_opt(2025, 6, 30).unwrap())
        );
        for bad in [
            json!("2025-6-30"),
            json!("2025-06-30T00:00:00Z"),
            json!("30/06/2025"),
            json!(20250630),
        ] {
            assert_eq!(err_code(coerce(&f, &bad)), code::JSON_PARSER_ERROR, "{bad}");
        }
    }

    #[test]
    fn datetimes_accept_the_usual_offsets_and_render_salesforce_style() {
        let f = field(FieldType::DateTime);
        for s in [
            "2024-01-01T10:00:00Z",
            "2024-01-01T10:00:00.000+0000",
            "2024-01-01T12:00:00+02:00",
        ] {
            let v = coerce(&f, &json!(s)).unwrap();
            assert_eq!(
                v.to_json(&f.ty),
                json!("2024-01-01T10:00:00.000+0000"),
                "{s}"
            );
        }
    }

    #[test]
    fn text_length_and_empty_strings() {
        let f = field(FieldType::Text(5));
        assert_eq!(coerce(&f, &json!("")).unwrap(), Value::Null);
        assert_eq!(
            coerce(&f, &json!("héllo")).unwrap(),
            Value::Text("héllo".into())
        );
        let e = coerce(&f, &json!("toolong")).unwrap_err();
        assert_eq!(e.errors[0].code, code::STRING_TOO_LONG);
        assert_eq!(
            e.errors[0].message,
            "F: data value too large: toolong (max length=5)"
        );
    }

    #[test]
    fn numbers_round_to_scale_and_respect_precision() {
        let f = field(FieldType::Currency(5, 2));
        let v = coerce(&f, &json!(123.456)).unwrap();
        assert_eq!(v.to_json(&f.ty), json!(123.46));
        assert_eq!(
            coerce(&f, &json!("12.5")).unwrap().to_json(&f.ty),
            json!(12.5)
        );
        assert_eq!(
            err_code(coerce(&f, &json!(1000))),
            code::NUMBER_OUTSIDE_VALID_RANGE
        );
        assert_eq!(err_code(coerce(&f, &json!("abc"))), code::JSON_PARSER_ERROR);
        let i = field(FieldType::Int);
        assert_eq!(coerce(&i, &json!(42)).unwrap().to_json(&i.ty), json!(42));
        assert_eq!(err_code(coerce(&i, &json!(4.2))), code::JSON_PARSER_ERROR);
    }

    #[test]
    fn picklists_emails_booleans_and_ids() {
        let p = field(FieldType::Picklist {
            values: vec!["A".into(), "B".into()],
            restricted: true,
        });
        assert!(coerce(&p, &json!("A")).is_ok());
        assert_eq!(
            err_code(coerce(&p, &json!("a"))),
            code::INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST
        );
        let e = field(FieldType::Email);
        assert!(coerce(&e, &json!("a@b.co")).is_ok());
        assert_eq!(
            err_code(coerce(&e, &json!("not-an-email"))),
            code::INVALID_EMAIL_ADDRESS
        );
        let b = field(FieldType::Boolean);
        assert_eq!(coerce(&b, &json!(null)).unwrap(), Value::Bool(false));
        assert_eq!(err_code(coerce(&b, &json!(1))), code::JSON_PARSER_ERROR);
        let r = field(FieldType::Reference {
            target: "Account".into(),
            relationship: "Account".into(),
        });
        assert_eq!(err_code(coerce(&r, &json!("nope"))), code::MALFORMED_ID);
        assert_eq!(
            coerce(&r, &json!("00300000003T2PG")).unwrap(),
            Value::Text("00300000003T2PGAA0".into())
        );
    }
}
