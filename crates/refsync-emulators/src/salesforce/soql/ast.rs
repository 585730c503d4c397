//! The SOQL syntax tree the parser produces and the evaluator runs.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The SELECT list.
    pub select: Vec<SelectItem>,
    /// The object queried, as written.
    pub from: String,
    /// Byte offset of the object name (for error messages).
    pub from_pos: usize,
    /// The WHERE condition.
    pub filter: Option<Cond>,
    /// ORDER BY items.
    pub order_by: Vec<OrderItem>,
    /// LIMIT.
    pub limit: Option<u64>,
    /// OFFSET.
    pub offset: Option<u64>,
}

/// A field path as written (`Name`, `Account.Name`) with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Dot-separated parts.
    pub parts: Vec<String>,
    /// Byte offset in the query.
    pub pos: usize,
}

/// One SELECT item.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// A field or relationship field.
    Field(Path),
    /// `COUNT()`: only the number of matching rows.
    CountAll,
    /// `FIELDS(ALL|STANDARD|CUSTOM)`.
    Fields(FieldsSet),
}

/// The sets `FIELDS()` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsSet {
    /// Every field.
    All,
    /// Standard fields.
    Standard,
    /// Custom fields.
    Custom,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A relative date literal such as `TODAY` or `LAST_N_DAYS:7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateLiteral {
    /// `TODAY`
    Today,
    /// `YESTERDAY`
    Yesterday,
    /// `TOMORROW`
    Tomorrow,
    /// `LAST_N_DAYS:n` (today and the n days before it)
    LastNDays(u32),
    /// `NEXT_N_DAYS:n` (the n days after today)
    NextNDays(u32),
    /// `THIS_MONTH`
    ThisMonth,
    /// `LAST_MONTH`
    LastMonth,
    /// `THIS_YEAR`
    ThisYear,
}

/// A literal value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A quoted string (escapes resolved).
    Str(String),
    /// A number.
    Num(Decimal),
    /// `YYYY-MM-DD`
    Date(NaiveDate),
    /// `YYYY-MM-DDThh:mm:ss[.sss](Z|±hh:mm)`
    DateTime(DateTime<Utc>),
    /// A relative date.
    Relative(DateLiteral),
}

/// A WHERE condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// All of these.
    And(Vec<Cond>),
    /// Any of these.
    Or(Vec<Cond>),
    /// Not this.
    Not(Box<Cond>),
    /// `path op value`
    Cmp(Path, Op, Literal),
    /// `path [NOT] IN (values)`
    In(Path, bool, Vec<Literal>),
    /// `path LIKE 'pattern'`
    Like(Path, String),
}

/// An ORDER BY item.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    /// The field.
    pub path: Path,
    /// Descending.
    pub desc: bool,
    /// Nulls after values (default: first for ASC, last for DESC).
    pub nulls_last: bool,
}
