//! Value normalisation: the rules that make equal things compare equal across the two
//! systems (`50000` / `50000.00` / `"50000"`, `""` / null, a date-time / a date-only,
//! trailing whitespace, enum case). Each function is idempotent: normalising a
//! normalised value returns it unchanged, which is what keeps the merge from seeing
//! its own writes as changes.

use crate::wire::{decimal_from_json, parse_datetime};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use serde_json::{Number, Value};
use std::str::FromStr;

/// Letter case applied to text before comparing (e.g. ISO currency codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    /// Upper case.
    Upper,
    /// Lower case.
    Lower,
}

/// How a text value is normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextRules {
    /// Longest value the CRM column holds, in characters; longer values are cut.
    pub max_len: Option<usize>,
    /// Case to fold to.
    pub case: Option<Case>,
}

/// Trims, folds line endings to `\n`, applies the case, cuts to `max_len` characters;
/// empty text is null. Numbers and booleans become their text.
pub fn text(v: &Value, rules: &TextRules) -> Result<Value, String> {
    let s = match v {
        Value::Null => return Ok(Value::Null),
        Value::String(s) => s.replace("\r\n", "\n"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(format!("expected text, found {other}")),
    };
    let mut s = s.trim().to_owned();
    match rules.case {
        Some(Case::Upper) => s = s.to_uppercase(),
        Some(Case::Lower) => s = s.to_lowercase(),
        None => {}
    }
    if let Some((cut, _)) = rules.max_len.and_then(|max| s.char_indices().nth(max)) {
        s.truncate(cut);
        // The cut may leave whitespace at the end; trimming keeps this idempotent.
        s.truncate(s.trim_end().len());
    }
    Ok(if s.is_empty() {
        Value::Null
    } else {
        Value::String(s)
    })
}

/// A decimal as a JSON number, rounded half away from zero to `scale` places when
/// given, trailing zeros dropped. Empty text is null.
pub fn decimal(v: &Value, scale: Option<u32>) -> Result<Value, String> {
    match v {
        Value::Null => return Ok(Value::Null),
        Value::String(s) if s.trim().is_empty() => return Ok(Value::Null),
        _ => {}
    }
    let d = decimal_from_json(v).ok_or_else(|| format!("expected a number, found {v}"))?;
    decimal_value(d, scale)
}

fn decimal_value(d: Decimal, scale: Option<u32>) -> Result<Value, String> {
    let d = match scale {
        Some(s) => d.round_dp_with_strategy(s, RoundingStrategy::MidpointAwayFromZero),
        None => d,
    };
    let d = if d.is_zero() {
        Decimal::ZERO
    } else {
        d.normalize()
    };
    Number::from_str(&d.to_string())
        .map(Value::Number)
        .map_err(|_| format!("{d} cannot be written as a JSON number"))
}

/// A date as `YYYY-MM-DD`, taken in UTC from a date-time or a date. Empty text is null.
pub fn date(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if s.trim().is_empty() => Ok(Value::Null),
        Value::String(s) => parse_datetime(s)
            .map(|dt| Value::String(dt.date_naive().format("%Y-%m-%d").to_string()))
            .ok_or_else(|| format!("expected a date, found {s:?}")),
        other => Err(format!("expected a date, found {other}")),
    }
}

/// A boolean from `true`/`false`, `1`/`0`, `yes`/`no` (text in any case) or a number 0/1.
pub fn boolean(v: &Value) -> Result<Value, String> {
    let b = match v {
        Value::Null => return Ok(Value::Null),
        Value::Bool(b) => *b,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "" => return Ok(Value::Null),
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => return Err(format!("expected a boolean, found {s:?}")),
        },
        Value::Number(n) if n.as_f64() == Some(1.0) => true,
        Value::Number(n) if n.as_f64() == Some(0.0) => false,
        other => return Err(format!("expected a boolean, found {other}")),
    };
    Ok(Value::Bool(b))
}

/// The key a scalar is matched by in value tables: trimmed and lower-cased text,
/// numbers by decimal value (`2` matches `"2"` and `2.0`); `None` for null or empty.
pub fn match_key(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => {
            let t = s.trim();
            Some(match Decimal::from_str(t) {
                Ok(d) => d.normalize().to_string(),
                Err(_) => t.to_lowercase(),
            })
        }
        Value::Number(_) => decimal_from_json(v).map(|d| d.normalize().to_string()),
        other => Some(other.to_string().to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_compares_by_value() {
        for v in [
            json!(50000),
            json!(50000.00),
            json!("50000"),
            json!(" 50000.000 "),
        ] {
            assert_eq!(decimal(&v, Some(2)).unwrap(), json!(50000), "{v}");
        }
        assert_eq!(decimal(&json!(1234.565), Some(2)).unwrap(), json!(1234.57));
        assert_eq!(decimal(&json!(-0.001), Some(2)).unwrap(), json!(0));
        assert_eq!(decimal(&json!(""), Some(2)).unwrap(), Value::Null);
        assert!(decimal(&json!("lots"), None).is_err());
    }

    #[test]
    fn text_trims_cuts_and_empties_to_null() {
        let r = TextRules::default();
        assert_eq!(
            text(&json!("  Fabrikam \r\n"), &r).unwrap(),
            json!("Fabrikam")
        );
        assert_eq!(text(&json!("   "), &r).unwrap(), Value::Null);
        assert_eq!(text(&json!(98052), &r).unwrap(), json!("98052"));
        let cut = TextRules {
            max_len: Some(4),
            case: Some(Case::Upper),
        };
        assert_eq!(text(&json!("ab cdef"), &cut).unwrap(), json!("AB C"));
        assert_eq!(text(&json!("abc def"), &cut).unwrap(), json!("ABC"));
        assert_eq!(text(&json!("żółwie"), &cut).unwrap(), json!("ŻÓŁW"));
        assert!(text(&json!({"a": 1}), &r).is_err());
    }

    #[test]
    fn dates_compare_as_utc_days() {
        assert_eq!(
            date(&json!("2020-12-01T00:00:00Z")).unwrap(),
            json!("2020-12-01")
        );
        assert_eq!(date(&json!("2020-12-01")).unwrap(), json!("2020-12-01"));
        assert_eq!(
            date(&json!("2020-12-01T23:30:00-05:00")).unwrap(),
            json!("2020-12-02")
        );
        assert_eq!(date(&json!("")).unwrap(), Value::Null);
        assert!(date(&json!("soon")).is_err());
    }

    #[test]
    fn booleans_from_their_usual_spellings() {
        assert_eq!(boolean(&json!("Yes")).unwrap(), json!(true));
        assert_eq!(boolean(&json!(0)).unwrap(), json!(false));
        assert_eq!(boolean(&json!("")).unwrap(), Value::Null);
        assert!(boolean(&json!("maybe")).is_err());
    }

    #[test]
    fn match_keys_ignore_case_and_number_form() {
        assert_eq!(
            match_key(&json!(" Closed Won ")),
            match_key(&json!("closed won"))
        );
        assert_eq!(match_key(&json!(2)), match_key(&json!("2")));
        assert_eq!(match_key(&json!(2.0)), match_key(&json!(2)));
        assert_eq!(match_key(&json!("")), None);
        assert_ne!(match_key(&json!(true)), match_key(&json!("1")));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        let rules = TextRules {
            max_len: Some(3),
            case: None,
        };
        for v in [json!(" a b c "), json!("ab  c"), json!(""), json!(7)] {
            let once = text(&v, &rules).unwrap();
            assert_eq!(text(&once, &rules).unwrap(), once);
        }
        let once = decimal(&json!("10.005"), Some(2)).unwrap();
        assert_eq!(decimal(&once, Some(2)).unwrap(), once);
    }
}
