//! The `$filter` syntax tree and its canonical printer.
//!
//! Printing adds parentheses only where precedence needs them, and re-parsing the
//! printed text gives back the same tree (a property test checks this).

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use rust_decimal::Decimal;
use std::fmt;
use uuid::Uuid;

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer such as `42` or `-7`.
    Int(i64),
    /// A decimal such as `1.5`.
    Decimal(Decimal),
    /// A quoted string; `''` inside quotes is one `'`.
    String(String),
    /// An unquoted date-time such as `2024-01-01T00:00:00Z` (fractions and offsets allowed).
    DateTime(DateTime<FixedOffset>),
    /// An unquoted date such as `2025-06-30`.
    Date(NaiveDate),
    /// An unquoted GUID such as `65edc0b5-3485-41b7-a17e-dfa9ef4706e2`.
    Guid(Uuid),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

impl CompareOp {
    /// The operator's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator for a keyword.
    pub fn from_keyword(s: &str) -> Option<Self> {
        Some(match s {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `contains(haystack, needle)`
    Contains,
    /// `startswith(s, prefix)`
    StartsWith,
    /// `endswith(s, suffix)`
    EndsWith,
    /// `tolower(s)`
    ToLower,
    /// `toupper(s)`
    ToUpper,
}

impl Function {
    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            Function::Contains => "contains",
            Function::StartsWith => "startswith",
            Function::EndsWith => "endswith",
            Function::ToLower => "tolower",
            Function::ToUpper => "toupper",
        }
    }

    /// The function for a name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "contains" => Function::Contains,
            "startswith" => Function::StartsWith,
            "endswith" => Function::EndsWith,
            "tolower" => Function::ToLower,
            "toupper" => Function::ToUpper,
            _ => return None,
        })
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Function::Contains | Function::StartsWith | Function::EndsWith => 2,
            Function::ToLower | Function::ToUpper => 1,
        }
    }
}

/// `any` or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaKind {
    /// True when some element satisfies the body (or, without a body, when there is any element).
    Any,
    /// True when every element satisfies the body.
    All,
}

impl LambdaKind {
    fn keyword(self) -> &'static str {
        match self {
            LambdaKind::Any => "any",
            LambdaKind::All => "all",
        }
    }
}

/// A `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Literal),
    /// A property path such as `customerProfile/address/country` (or `t/email` inside a lambda).
    Path(Vec<String>),
    /// `left op right`.
    Compare {
        /// The operator.
        op: CompareOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `left and right`.
    And(Box<Expr>, Box<Expr>),
    /// `left or right`.
    Or(Box<Expr>, Box<Expr>),
    /// `not operand`.
    Not(Box<Expr>),
    /// A function call.
    Call {
        /// Which function.
        function: Function,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// `collection/any(var:body)` or `collection/all(var:body)`.
    Lambda {
        /// Path to the collection.
        collection: Vec<String>,
        /// `any` or `all`.
        kind: LambdaKind,
        /// The range variable and body; `None` for `any()`.
        body: Option<(String, Box<Expr>)>,
    },
    /// Dataverse's `Microsoft.Dynamics.CRM.In` / `NotIn` (crm.md §1.7).
    In {
        /// `PropertyName`.
        property: String,
        /// `PropertyValues`.
        values: Vec<Literal>,
        /// True for `NotIn`.
        negated: bool,
    },
}

/// Binding strength; higher binds tighter.
pub(crate) fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(..) => 3,
        Expr::Compare { .. } => 4,
        _ => 5,
    }
}

struct Wrapped<'a>(&'a Expr, bool);

impl fmt::Display for Wrapped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 {
            write!(f, "({})", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Prints `e` in parentheses when it binds looser than `min`.
fn at_least(e: &Expr, min: u8) -> Wrapped<'_> {
    Wrapped(e, precedence(e) < min)
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Decimal(d) => {
                let s = d.to_string();
                // Keep a decimal point so the value re-parses as a decimal, not an integer.
                if s.contains('.') {
                    f.write_str(&s)
                } else {
                    write!(f, "{s}.0")
                }
            }
            Literal::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::DateTime(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Literal::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Literal::Guid(g) => write!(f, "{}", g.hyphenated()),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Path(p) => f.write_str(&p.join("/")),
            // Left-associative: the left side may be another comparison, the right may not.
            Expr::Compare { op, left, right } => write!(
                f,
                "{} {} {}",
                at_least(left, 4),
                op.keyword(),
                at_least(right, 5)
            ),
            Expr::And(l, r) => write!(f, "{} and {}", at_least(l, 2), at_least(r, 3)),
            Expr::Or(l, r) => write!(f, "{} or {}", at_least(l, 1), at_least(r, 2)),
            Expr::Not(e) => write!(f, "not {}", at_least(e, 3)),
            Expr::Call { function, args } => {
                write!(f, "{}(", function.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Expr::Lambda {
                collection,
                kind,
                body,
            } => {
                write!(f, "{}/{}(", collection.join("/"), kind.keyword())?;
                if let Some((var, body)) = body {
                    write!(f, "{var}:{body}")?;
                }
                f.write_str(")")
            }
            Expr::In {
                property,
                values,
                negated,
            } => {
                let name = if *negated { "NotIn" } else { "In" };
                write!(
                    f,
                    "Microsoft.Dynamics.CRM.{name}(PropertyName='{}',PropertyValues=[",
                    property.replace('\'', "''")
                )?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("])")
            }
        }
    }
}
