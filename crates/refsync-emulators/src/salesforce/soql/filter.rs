//! WHERE clauses: literals checked against their field's type (as Salesforce
//! rejects a quoted date or an unquoted string), relative dates turned into
//! whole GMT days, and SOQL's comparison rules (case-insensitive text, nulls
//! matching `!=` and `NOT IN`, `LIKE` with `%`/`_` and backslash escapes).

use super::super::error::{SfError, code};
use super::super::ids::SfId;
use super::super::org::{Org, Record};
use super::super::schema::{FieldDef, FieldType};
use super::super::value::Value;
use super::ast::{Cond, DateLiteral, Literal, Op};
use super::eval::{Compiled, Resolved, value};
use super::lexer::located;
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use std::cmp::Ordering;

/// A filter with names resolved and values checked against field types.
pub(super) enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Cmp(Resolved, Op, Value),
    Range(Resolved, Op, DateTime<Utc>, DateTime<Utc>, bool),
    In(Resolved, bool, Vec<Value>),
    Like(Resolved, String),
}

fn type_error(q: &str, pos: usize, field: &FieldDef, quoted: bool) -> SfError {
    let type_name = match field.ty {
        FieldType::DateTime => "dateTime",
        FieldType::Currency(..) | FieldType::Percent(..) | FieldType::Double(..) => "double",
        FieldType::Id | FieldType::Reference { .. } => "id",
        ref other if other.is_textual() => "string",
        ref other => other.describe_name(),
    };
    let quotes = if quoted {
        "should be enclosed in quotes"
    } else {
        "should not be enclosed in quotes"
    };
    SfError::bad_request(
        code::INVALID_FIELD,
        located(
            q,
            pos,
            &format!(
                "value of filter criterion for field '{}' must be of type {type_name} and {quotes}",
                field.name
            ),
        ),
    )
}

/// Converts a literal to a stored value for `field`, or a relative date range.
enum Typed {
    Value(Value),
    Range(DateTime<Utc>, DateTime<Utc>),
}

fn typed(
    q: &str,
    pos: usize,
    field: &FieldDef,
    lit: &Literal,
    now: DateTime<Utc>,
) -> Result<Typed, SfError> {
    let ty = &field.ty;
    let v = match (lit, ty) {
        (Literal::Null, _) => Value::Null,
        (Literal::Str(s), t) if t.is_id() => match SfId::parse(s) {
            Some(id) => Value::Text(id.as_str().to_owned()),
            None => {
                return Err(SfError::bad_request(
                    code::INVALID_QUERY_FILTER_OPERATOR,
                    located(q, pos, &format!("invalid ID field: {s}")),
                ));
            }
        },
        (Literal::Str(s), t) if t.is_textual() => Value::Text(s.clone()),
        (_, t) if t.is_textual() || t.is_id() => return Err(type_error(q, pos, field, true)),
        (Literal::Bool(b), FieldType::Boolean) => Value::Bool(*b),
        (Literal::Num(n), t) if t.is_numeric() => Value::Number(*n),
        (Literal::Date(d), FieldType::Date) => Value::Date(*d),
        (Literal::DateTime(t), FieldType::DateTime) => Value::DateTime(*t),
        (Literal::Relative(r), FieldType::Date | FieldType::DateTime) => {
            let (start, end) = relative_range(*r, now);
            return Ok(Typed::Range(midnight(start), midnight(end)));
        }
        _ => return Err(type_error(q, pos, field, false)),
    };
    Ok(Typed::Value(v))
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// `[start, end)` in whole days for a relative date literal.
fn relative_range(lit: DateLiteral, now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let today = now.date_naive();
    let day = |d: NaiveDate, n: i64| {
        if n >= 0 {
            d.checked_add_days(Days::new(n.unsigned_abs()))
        } else {
            d.checked_sub_days(Days::new(n.unsigned_abs()))
        }
        .unwrap_or(d)
    };
    let month_start = today.with_day(1).unwrap_or(today);
    let next_month = month_start
        .checked_add_months(Months::new(1))
        .unwrap_or(today);
    match lit {
        DateLiteral::Today => (today, day(today, 1)),
        DateLiteral::Yesterday => (day(today, -1), today),
        DateLiteral::Tomorrow => (day(today, 1), day(today, 2)),
        DateLiteral::LastNDays(n) => (day(today, -i64::from(n)), day(today, 1)),
        DateLiteral::NextNDays(n) => (day(today, 1), day(today, 1 + i64::from(n))),
        DateLiteral::ThisMonth => (month_start, next_month),
        DateLiteral::LastMonth => (
            month_start
                .checked_sub_months(Months::new(1))
                .unwrap_or(today),
            month_start,
        ),
        DateLiteral::ThisYear => {
            let start = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today);
            let end = NaiveDate::from_ymd_opt(today.year() + 1, 1, 1).unwrap_or(today);
            (start, end)
        }
    }
}

pub(super) fn compile_filter(
    c: &Compiled<'_>,
    org: &Org,
    q: &str,
    cond: &Cond,
    now: DateTime<Utc>,
) -> Result<Filter, SfError> {
    Ok(match cond {
        Cond::And(items) => Filter::All(
            items
                .iter()
                .map(|i| compile_filter(c, org, q, i, now))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Or(items) => Filter::Any(
            items
                .iter()
                .map(|i| compile_filter(c, org, q, i, now))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Not(inner) => Filter::Not(Box::new(compile_filter(c, org, q, inner, now)?)),
        Cond::Cmp(path, op, lit) => {
            let r = c.resolve(org, q, path)?;
            let field = c.field_def(org, r);
            if matches!(field.ty, FieldType::Boolean) && !matches!(op, Op::Eq | Op::Ne) {
                return Err(SfError::bad_request(
                    code::INVALID_QUERY_FILTER_OPERATOR,
                    located(
                        q,
                        path.pos,
                        &format!("invalid operator on boolean field: {}", field.name),
                    ),
                ));
            }
            match typed(q, path.pos, field, lit, now)? {
                Typed::Value(v) => Filter::Cmp(r, *op, v),
                Typed::Range(s, e) => {
                    Filter::Range(r, *op, s, e, matches!(field.ty, FieldType::Date))
                }
            }
        }
        Cond::In(path, negated, lits) => {
            let r = c.resolve(org, q, path)?;
            let field = c.field_def(org, r);
            let mut values = Vec::new();
            for lit in lits {
                match typed(q, path.pos, field, lit, now)? {
                    Typed::Value(v) => values.push(v),
                    Typed::Range(..) => return Err(type_error(q, path.pos, field, false)),
                }
            }
            Filter::In(r, *negated, values)
        }
        Cond::Like(path, pattern) => {
            let r = c.resolve(org, q, path)?;
            let field = c.field_def(org, r);
            if !field.ty.is_textual() && !field.ty.is_id() {
                return Err(SfError::bad_request(
                    code::INVALID_QUERY_FILTER_OPERATOR,
                    located(
                        q,
                        path.pos,
                        &format!(
                            "invalid operator on field: {}; LIKE is only valid on string fields",
                            field.name
                        ),
                    ),
                ));
            }
            Filter::Like(r, pattern.clone())
        }
    })
}

pub(super) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Number(x), Value::Number(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn equal(field_is_id: bool, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Text(x), Value::Text(y)) if field_is_id => x == y,
        _ => compare(a, b) == Some(Ordering::Equal),
    }
}

fn like(value: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Lit(char),
    }
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        parts.push(match ch {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Lit(chars.next().unwrap_or('\\')),
            c => P::Lit(c),
        });
    }
    let text: Vec<char> = value.to_lowercase().chars().collect();
    let parts: Vec<P> = parts
        .into_iter()
        .map(|p| match p {
            P::Lit(c) => P::Lit(c.to_lowercase().next().unwrap_or(c)),
            other => other,
        })
        .collect();
    // Classic wildcard matching with backtracking over the last `%`.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match parts.get(p) {
            Some(P::Lit(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Any) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    parts[p..].iter().all(|x| *x == P::Any)
}

pub(super) fn eval(org: &Org, c: &Compiled<'_>, record: &Record, f: &Filter) -> bool {
    match f {
        Filter::All(items) => items.iter().all(|i| eval(org, c, record, i)),
        Filter::Any(items) => items.iter().any(|i| eval(org, c, record, i)),
        Filter::Not(inner) => !eval(org, c, record, inner),
        Filter::Cmp(r, op, lit) => {
            let v = value(org, record, *r);
            let is_id = c.field_def(org, *r).ty.is_id();
            match op {
                Op::Eq => equal(is_id, v, lit),
                Op::Ne => !equal(is_id, v, lit),
                _ => match compare(v, lit) {
                    Some(o) => match op {
                        Op::Lt => o.is_lt(),
                        Op::Le => o.is_le(),
                        Op::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    },
                    None => false,
                },
            }
        }
        Filter::Range(r, op, start, end, is_date) => {
            let at = match value(org, record, *r) {
                Value::Date(d) if *is_date => midnight(*d),
                Value::DateTime(t) => *t,
                _ => return matches!(op, Op::Ne),
            };
            match op {
                Op::Eq => *start <= at && at < *end,
                Op::Ne => !(*start <= at && at < *end),
                Op::Lt => at < *start,
                Op::Le => at < *end,
                Op::Gt => at >= *end,
                Op::Ge => at >= *start,
            }
        }
        Filter::In(r, negated, values) => {
            let v = value(org, record, *r);
            let is_id = c.field_def(org, *r).ty.is_id();
            values.iter().any(|x| equal(is_id, v, x)) != *negated
        }
        Filter::Like(r, pattern) => value(org, record, *r)
            .as_text()
            .is_some_and(|text| like(text, pattern)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_is_case_insensitive_with_both_wildcards_and_escapes() {
        assert!(like("Contoso Ltd", "con%"));
        assert!(like("Contoso Ltd", "%LTD"));
        assert!(like("Contoso", "C_nt%o"));
        assert!(!like("Contoso", "C_t%"));
        assert!(like("100%", "100\\%"));
        assert!(!like("1000", "100\\%"));
        assert!(like("", "%"));
    }

    #[test]
    fn relative_ranges_are_whole_gmt_days() {
        let now = DateTime::parse_from_rfc3339("2025-03-15T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            relative_range(DateLiteral::Today, now),
            (d("2025-03-15"), d("2025-03-16"))
        );
        assert_eq!(
            relative_range(DateLiteral::LastNDays(2), now),
            (d("2025-03-13"), d("2025-03-16"))
        );
        assert_eq!(
            relative_range(DateLiteral::NextNDays(1), now),
            (d("2025-03-16"), d("2025-03-17"))
        );
        assert_eq!(
            relative_range(DateLiteral::LastMonth, now),
            (d("2025-02-01"), d("2025-03-01"))
        );
    }
}
