//! OData query options for the Partner Center and Dataverse emulators:
//! `$filter`, `$orderby`, `$select` and `$top` (partner-center.md §1.4, crm.md §1.7).
//!
//! `$filter` is parsed by hand into an [`Expr`] tree (comparisons, `and`/`or`/`not`
//! with OData precedence, `contains`/`startswith`/`endswith`/`tolower`/`toupper`,
//! `any`/`all` lambdas, property paths, and literals including unquoted date-times,
//! dates and GUIDs, plus Dataverse's `Microsoft.Dynamics.CRM.In`/`NotIn`) and
//! evaluated over `serde_json::Value` records with [`EvalOptions`] deciding case
//! sensitivity. Errors carry the character position and read well in a 400 body:
//! `Syntax error at position 10 in $filter 'status eq': expected a value, …`.
//!
//! Paging and which options a service accepts (`$skip` is refused by Dataverse)
//! stay with each emulator; [`QueryOptions::from_query`] reads only the four here.

mod ast;
mod eval;
mod lexer;
mod parser;

pub use ast::{CompareOp, Expr, Function, LambdaKind, Literal};
pub use eval::{EvalOptions, matches};

use lexer::Tok;
use parser::Parser;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt;

/// A malformed query option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ODataError {
    /// Which option (`$filter`, `$orderby`, …); empty until known.
    pub option: &'static str,
    /// The option's text.
    pub text: String,
    /// Character position of the problem within `text`, when there is one.
    pub position: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl ODataError {
    pub(crate) fn at(position: usize, message: impl Into<String>) -> Self {
        Self {
            option: "",
            text: String::new(),
            position: Some(position),
            message: message.into(),
        }
    }

    fn invalid(option: &'static str, text: &str, message: impl Into<String>) -> Self {
        Self {
            option,
            text: text.to_owned(),
            position: None,
            message: message.into(),
        }
    }

    fn within(mut self, option: &'static str, text: &str) -> Self {
        self.option = option;
        self.text = text.to_owned();
        self
    }
}

impl fmt::Display for ODataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(
                f,
                "Syntax error at position {p} in {} '{}': {}.",
                self.option, self.text, self.message
            ),
            None => write!(
                f,
                "Invalid value for {} '{}': {}.",
                self.option, self.text, self.message
            ),
        }
    }
}

impl std::error::Error for ODataError {}

/// Parses a `$filter` expression.
pub fn parse_filter(text: &str) -> Result<Expr, ODataError> {
    parser::parse_filter(text).map_err(|e| e.within("$filter", text))
}

/// One `$orderby` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    /// Property path.
    pub path: Vec<String>,
    /// `desc`.
    pub descending: bool,
}

/// A parsed `$orderby`: keys applied in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy(pub Vec<OrderKey>);

impl OrderBy {
    /// Parses `createdDateTime desc, name` (direction defaults to `asc`).
    pub fn parse(text: &str) -> Result<Self, ODataError> {
        let inner = || -> Result<Self, ODataError> {
            let mut p = Parser::new(text)?;
            let mut keys = Vec::new();
            loop {
                let path = p.path()?;
                let descending = if p.eat_keyword("desc") {
                    true
                } else {
                    p.eat_keyword("asc");
                    false
                };
                keys.push(OrderKey { path, descending });
                if p.next_is(&Tok::Comma) {
                    p.bump();
                } else {
                    break;
                }
            }
            p.expect_eof()?;
            Ok(OrderBy(keys))
        };
        inner().map_err(|e| e.within("$orderby", text))
    }

    /// Compares two records by the keys (nulls sort first in ascending order).
    pub fn compare(&self, a: &Value, b: &Value, opts: &EvalOptions) -> Ordering {
        for key in &self.0 {
            let ord = eval::order_by_path(a, b, &key.path, opts);
            let ord = if key.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }

    /// Sorts records in place (stable, so ties keep their stored order).
    pub fn sort(&self, records: &mut [Value], opts: &EvalOptions) {
        records.sort_by(|a, b| self.compare(a, b, opts));
    }
}

impl fmt::Display for OrderBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(
                f,
                "{}{}",
                k.path.join("/"),
                if k.descending { " desc" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// A parsed `$select`: top-level property names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select(pub Vec<String>);

impl Select {
    /// Parses `id,status,customerProfile` (`*` selects everything).
    pub fn parse(text: &str) -> Result<Self, ODataError> {
        let mut names = Vec::new();
        for part in text.split(',') {
            let name = part.trim();
            let valid = name == "*"
                || (!name.is_empty()
                    && name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if !valid {
                return Err(ODataError::invalid(
                    "$select",
                    text,
                    format!("'{name}' is not a property name"),
                ));
            }
            names.push(name.to_owned());
        }
        Ok(Select(names))
    }

    /// Keeps only the selected properties of `record`, plus those in `always`
    /// (the primary key, `@odata.etag`, …). Non-objects are returned unchanged.
    pub fn apply(&self, record: &Value, always: &[&str]) -> Value {
        let Value::Object(map) = record else {
            return record.clone();
        };
        if self.0.iter().any(|n| n == "*") {
            return record.clone();
        }
        let kept: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| self.0.iter().any(|n| n == *k) || always.iter().any(|a| a == k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(kept)
    }
}

/// Parses `$top`: a non-negative integer.
pub fn parse_top(text: &str) -> Result<usize, ODataError> {
    text.trim()
        .parse::<usize>()
        .map_err(|_| ODataError::invalid("$top", text, "expected a non-negative integer"))
}

/// The query options an emulator's collection endpoint reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOptions {
    /// `$filter`.
    pub filter: Option<Expr>,
    /// `$orderby`.
    pub orderby: Option<OrderBy>,
    /// `$select`.
    pub select: Option<Select>,
    /// `$top`.
    pub top: Option<usize>,
}

impl QueryOptions {
    /// Reads `$filter`, `$orderby`, `$select` and `$top` from decoded query pairs;
    /// other parameters are left to the caller.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ODataError> {
        let mut options = QueryOptions::default();
        for (key, value) in pairs {
            match key {
                "$filter" => options.filter = Some(parse_filter(value)?),
                "$orderby" => options.orderby = Some(OrderBy::parse(value)?),
                "$select" => options.select = Some(Select::parse(value)?),
                "$top" => options.top = Some(parse_top(value)?),
                _ => {}
            }
        }
        Ok(options)
    }

    /// Filters and sorts `records` (no `$top`, no `$select`: the caller pages first).
    pub fn filter_and_sort<'r>(
        &self,
        records: impl IntoIterator<Item = &'r Value>,
        opts: &EvalOptions,
    ) -> Vec<Value> {
        let mut out: Vec<Value> = records
            .into_iter()
            .filter(|r| self.filter.as_ref().is_none_or(|f| matches(f, r, opts)))
            .cloned()
            .collect();
        if let Some(order) = &self.orderby {
            order.sort(&mut out, opts);
        }
        out
    }

    /// Filter, sort, `$top`, then `$select` (keeping `always`): a whole, unpaged answer.
    pub fn apply<'r>(
        &self,
        records: impl IntoIterator<Item = &'r Value>,
        opts: &EvalOptions,
        always: &[&str],
    ) -> Vec<Value> {
        let mut out = self.filter_and_sort(records, opts);
        if let Some(top) = self.top {
            out.truncate(top);
        }
        match &self.select {
            Some(select) => out.iter().map(|r| select.apply(r, always)).collect(),
            None => out,
        }
    }
}

#[cfg(test)]
mod tests;
