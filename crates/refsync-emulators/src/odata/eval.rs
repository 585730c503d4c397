//! Evaluates a `$filter` tree against a JSON record, and orders records for `$orderby`.
//!
//! Missing properties are `null`. Values of different kinds are compared where a
//! real service would coerce them (a number and a numeric string; a date-time
//! literal and a date-time string; a GUID literal and a GUID string); otherwise
//! a comparison is simply false, never an error.

use super::ast::{CompareOp, Expr, Function, LambdaKind, Literal};
use chrono::{DateTime, NaiveDate, Utc};
use refsync_core::wire::parse_datetime;
use rust_decimal::Decimal;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::str::FromStr;
use uuid::Uuid;

/// How values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalOptions {
    /// Compare strings case-insensitively (Dataverse does, crm.md §1.7).
    pub case_insensitive: bool,
    /// When both sides of a comparison read as date-times, compare the instants
    /// (so `2024-01-01T00:00:00Z` and `2024-01-01T01:00:00+01:00` are equal).
    pub datetime_aware: bool,
}

impl EvalOptions {
    /// Partner Center: case-sensitive strings (unconfirmed; configurable), date-time aware.
    pub const PARTNER_CENTER: EvalOptions = EvalOptions {
        case_insensitive: false,
        datetime_aware: true,
    };
    /// Dataverse: case-insensitive strings, date-time aware.
    pub const DATAVERSE: EvalOptions = EvalOptions {
        case_insensitive: true,
        datetime_aware: true,
    };
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self::PARTNER_CENTER
    }
}

/// An intermediate value.
#[derive(Debug, Clone)]
enum Val<'a> {
    Null,
    Bool(bool),
    Num(Decimal),
    Str(Cow<'a, str>),
    DateTime(DateTime<Utc>),
    Date(NaiveDate),
    Guid(Uuid),
    /// An array or object: only reachable through paths and lambdas, never compared.
    Composite,
}

struct Scope<'a> {
    root: &'a Value,
    vars: Vec<(&'a str, &'a Value)>,
}

fn from_json(v: &Value) -> Val<'_> {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s)
                .or_else(|_| Decimal::from_scientific(&s))
                .map(Val::Num)
                .unwrap_or(Val::Null)
        }
        Value::String(s) => Val::Str(Cow::Borrowed(s)),
        Value::Array(_) | Value::Object(_) => Val::Composite,
    }
}

fn from_literal(l: &Literal) -> Val<'_> {
    match l {
        Literal::Null => Val::Null,
        Literal::Bool(b) => Val::Bool(*b),
        Literal::Int(i) => Val::Num(Decimal::from(*i)),
        Literal::Decimal(d) => Val::Num(*d),
        Literal::String(s) => Val::Str(Cow::Borrowed(s)),
        Literal::DateTime(d) => Val::DateTime(d.with_timezone(&Utc)),
        Literal::Date(d) => Val::Date(*d),
        Literal::Guid(g) => Val::Guid(*g),
    }
}

fn resolve<'a>(path: &[String], scope: &Scope<'a>) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut current = match scope.vars.iter().rev().find(|(name, _)| *name == first) {
        Some((_, v)) => *v,
        None => scope.root.get(first)?,
    };
    for seg in rest {
        current = current.get(seg)?;
    }
    Some(current)
}

/// True when `expr` holds for `record`.
pub fn matches(expr: &Expr, record: &Value, opts: &EvalOptions) -> bool {
    let scope = Scope {
        root: record,
        vars: Vec::new(),
    };
    matches!(eval(expr, &scope, opts), Val::Bool(true))
}

fn truth(v: &Val<'_>) -> Option<bool> {
    match v {
        Val::Bool(b) => Some(*b),
        _ => None,
    }
}

fn eval<'a>(expr: &'a Expr, scope: &Scope<'a>, opts: &EvalOptions) -> Val<'a> {
    match expr {
        Expr::Literal(l) => from_literal(l),
        Expr::Path(p) => resolve(p, scope).map(from_json).unwrap_or(Val::Null),
        Expr::Compare { op, left, right } => {
            let l = eval(left, scope, opts);
            let r = eval(right, scope, opts);
            Val::Bool(compare_op(*op, &l, &r, opts))
        }
        Expr::And(l, r) => {
            let l = truth(&eval(l, scope, opts));
            if l == Some(false) {
                return Val::Bool(false);
            }
            match (l, truth(&eval(r, scope, opts))) {
                (Some(true), Some(true)) => Val::Bool(true),
                (_, Some(false)) => Val::Bool(false),
                _ => Val::Null,
            }
        }
        Expr::Or(l, r) => {
            let l = truth(&eval(l, scope, opts));
            if l == Some(true) {
                return Val::Bool(true);
            }
            match (l, truth(&eval(r, scope, opts))) {
                (_, Some(true)) => Val::Bool(true),
                (Some(false), Some(false)) => Val::Bool(false),
                _ => Val::Null,
            }
        }
        Expr::Not(e) => match truth(&eval(e, scope, opts)) {
            Some(b) => Val::Bool(!b),
            None => Val::Null,
        },
        Expr::Call { function, args } => call(*function, args, scope, opts),
        Expr::Lambda {
            collection,
            kind,
            body,
        } => {
            let Some(Value::Array(items)) = resolve(collection, scope) else {
                return Val::Bool(false);
            };
            let Some((var, body)) = body else {
                return Val::Bool(!items.is_empty());
            };
            let holds = |item: &'a Value| {
                let mut vars = scope.vars.clone();
                vars.push((var.as_str(), item));
                let inner = Scope {
                    root: scope.root,
                    vars,
                };
                matches!(eval(body, &inner, opts), Val::Bool(true))
            };
            Val::Bool(match kind {
                LambdaKind::Any => items.iter().any(holds),
                LambdaKind::All => items.iter().all(holds),
            })
        }
        Expr::In {
            property,
            values,
            negated,
        } => {
            let path: Vec<String> = property.split('/').map(str::to_owned).collect();
            let actual = resolve(&path, scope).map(from_json).unwrap_or(Val::Null);
            let found = values
                .iter()
                .any(|v| compare(&actual, &from_literal(v), opts) == Some(Ordering::Equal));
            Val::Bool(found != *negated)
        }
    }
}

fn as_text<'a>(v: &Val<'a>) -> Option<Cow<'a, str>> {
    match v {
        Val::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn fold(s: &str, opts: &EvalOptions) -> String {
    if opts.case_insensitive {
        s.to_lowercase()
    } else {
        s.to_owned()
    }
}

fn call<'a>(
    function: Function,
    args: &'a [Expr],
    scope: &Scope<'a>,
    opts: &EvalOptions,
) -> Val<'a> {
    let vals: Vec<Val<'a>> = args.iter().map(|a| eval(a, scope, opts)).collect();
    match function {
        Function::ToLower | Function::ToUpper => match vals.first().and_then(as_text) {
            Some(s) if function == Function::ToLower => Val::Str(Cow::Owned(s.to_lowercase())),
            Some(s) => Val::Str(Cow::Owned(s.to_uppercase())),
            None => Val::Null,
        },
        Function::Contains | Function::StartsWith | Function::EndsWith => {
            let (Some(hay), Some(needle)) = (
                vals.first().and_then(as_text),
                vals.get(1).and_then(as_text),
            ) else {
                return Val::Null;
            };
            let (hay, needle) = (fold(&hay, opts), fold(&needle, opts));
            Val::Bool(match function {
                Function::Contains => hay.contains(&needle),
                Function::StartsWith => hay.starts_with(&needle),
                _ => hay.ends_with(&needle),
            })
        }
    }
}

fn compare_op(op: CompareOp, l: &Val<'_>, r: &Val<'_>, opts: &EvalOptions) -> bool {
    let null_l = matches!(l, Val::Null);
    let null_r = matches!(r, Val::Null);
    match op {
        CompareOp::Eq if null_l || null_r => null_l && null_r,
        CompareOp::Ne if null_l || null_r => null_l != null_r,
        CompareOp::Eq => compare(l, r, opts) == Some(Ordering::Equal),
        CompareOp::Ne => compare(l, r, opts) != Some(Ordering::Equal),
        _ => match compare(l, r, opts) {
            Some(ord) => match op {
                CompareOp::Gt => ord == Ordering::Greater,
                CompareOp::Ge => ord != Ordering::Less,
                CompareOp::Lt => ord == Ordering::Less,
                _ => ord != Ordering::Greater,
            },
            None => false,
        },
    }
}

fn date_of(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Orders two values when they are comparable; `None` otherwise.
fn compare(l: &Val<'_>, r: &Val<'_>, opts: &EvalOptions) -> Option<Ordering> {
    use Val::*;
    match (l, r) {
        (Null, Null) => Some(Ordering::Equal),
        (Bool(a), Bool(b)) => Some(a.cmp(b)),
        (Num(a), Num(b)) => Some(a.cmp(b)),
        (Num(a), Str(s)) => Decimal::from_str(s.trim()).ok().map(|b| a.cmp(&b)),
        (Str(s), Num(b)) => Decimal::from_str(s.trim()).ok().map(|a| a.cmp(b)),
        (DateTime(a), DateTime(b)) => Some(a.cmp(b)),
        (DateTime(a), Str(s)) => parse_datetime(s).map(|b| a.cmp(&b)),
        (Str(s), DateTime(b)) => parse_datetime(s).map(|a| a.cmp(b)),
        (Date(a), Date(b)) => Some(a.cmp(b)),
        (Date(a), Str(s)) => date_of(s).map(|b| a.cmp(&b)),
        (Str(s), Date(b)) => date_of(s).map(|a| a.cmp(b)),
        (Date(a), DateTime(b)) => Some(a.cmp(&b.date_naive())),
        (DateTime(a), Date(b)) => Some(a.date_naive().cmp(b)),
        (Guid(a), Guid(b)) => Some(a.cmp(b)),
        (Guid(a), Str(s)) => Uuid::parse_str(s.trim()).ok().map(|b| a.cmp(&b)),
        (Str(s), Guid(b)) => Uuid::parse_str(s.trim()).ok().map(|a| a.cmp(b)),
        (Str(a), Str(b)) => {
            if opts.datetime_aware
                && let (Some(x), Some(y)) = (datetime_string(a), datetime_string(b))
            {
                return Some(x.cmp(&y));
            }
            if opts.case_insensitive {
                Some(a.to_lowercase().cmp(&b.to_lowercase()))
            } else {
                Some(a.as_ref().cmp(b.as_ref()))
            }
        }
        _ => None,
    }
}

/// A string that is a full date-time (not merely a date or a number).
fn datetime_string(s: &str) -> Option<DateTime<Utc>> {
    if s.len() < 19
        || !s
            .as_bytes()
            .get(10)
            .is_some_and(|b| *b == b'T' || *b == b' ')
    {
        return None;
    }
    parse_datetime(s)
}

/// The rank of a value's kind, so `$orderby` is a total order: nulls first.
fn kind_rank(v: &Val<'_>) -> u8 {
    match v {
        Val::Null => 0,
        Val::Bool(_) => 1,
        Val::Num(_) => 2,
        Val::DateTime(_) | Val::Date(_) => 3,
        Val::Guid(_) => 4,
        Val::Str(_) => 5,
        Val::Composite => 6,
    }
}

/// Orders two records by the value at `path` (ascending; nulls first, as OData sorts them).
pub(crate) fn order_by_path(a: &Value, b: &Value, path: &[String], opts: &EvalOptions) -> Ordering {
    let x = at_path(a, path).map(from_json).unwrap_or(Val::Null);
    let y = at_path(b, path).map(from_json).unwrap_or(Val::Null);
    compare(&x, &y, opts).unwrap_or_else(|| kind_rank(&x).cmp(&kind_rank(&y)))
}

fn at_path<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, seg| cur.get(seg))
}
