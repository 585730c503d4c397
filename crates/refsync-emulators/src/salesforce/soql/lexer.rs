//! SOQL tokens, and error messages that point into the query text the way
//! Salesforce's do (`ERROR at Row:1:Column:26`).

use super::super::error::SfError;
use super::super::value::parse_datetime;
use chrono::{DateTime, NaiveDate, Utc};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A word: keyword, field or object name.
    Ident(String),
    /// A quoted string, escapes resolved.
    Str(String),
    /// A number as written.
    Num(String),
    /// `YYYY-MM-DD`
    Date(NaiveDate),
    /// An ISO 8601 instant.
    DateTime(DateTime<Utc>),
    /// Punctuation or an operator.
    Sym(&'static str),
    /// End of the query.
    Eof,
}

impl Tok {
    pub(super) fn shown(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Num(s) => s.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Date(d) => d.to_string(),
            Tok::DateTime(t) => t.to_rfc3339(),
            Tok::Sym(s) => (*s).to_owned(),
            Tok::Eof => "<EOF>".to_owned(),
        }
    }
}

/// Formats an error the way Salesforce points into the query text.
pub fn located(query: &str, pos: usize, message: &str) -> String {
    let before = &query[..pos.min(query.len())];
    let row = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let line = query.lines().nth(row - 1).unwrap_or("");
    format!(
        "\n{line}\n{caret:>width$}\nERROR at Row:{row}:Column:{col}\n{message}",
        caret = "^",
        width = col
    )
}

/// Splits a query into tokens with their byte offsets; the last is `Eof`.
pub(super) fn lex(q: &str) -> Result<Vec<(Tok, usize)>, SfError> {
    let bytes = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, msg: &str| SfError::malformed_query(located(q, pos, msg));
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == b'\'' {
            let mut s = String::new();
            i += 1;
            let mut chars = q[i..].char_indices();
            let mut closed = false;
            while let Some((off, ch)) = chars.next() {
                match ch {
                    '\'' => {
                        i += off + 1;
                        closed = true;
                        break;
                    }
                    '\\' => {
                        let Some((_, esc)) = chars.next() else { break };
                        s.push_str(match esc {
                            'n' => "\n",
                            'r' => "\r",
                            't' => "\t",
                            'b' => "\u{8}",
                            'f' => "\u{c}",
                            '\'' => "'",
                            '"' => "\"",
                            '\\' => "\\",
                            // Kept escaped: they only mean something to LIKE.
                            '%' => "\\%",
                            '_' => "\\_",
                            _ => {
                                return Err(err(
                                    start,
                                    "Invalid string literal: illegal escape sequence",
                                ));
                            }
                        });
                    }
                    other => s.push(other),
                }
            }
            if !closed {
                return Err(err(start, "unexpected token: unterminated string literal"));
            }
            out.push((Tok::Str(s), start));
            continue;
        }
        if c.is_ascii_digit() {
            let rest = &q[i..];
            let date_like = rest.len() >= 10
                && rest.as_bytes()[4] == b'-'
                && rest.as_bytes()[7] == b'-'
                && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit);
            if date_like {
                let end = rest
                    .find(|ch: char| ch.is_whitespace() || ch == ')' || ch == ',')
                    .unwrap_or(rest.len());
                let text = &rest[..end];
                let tok = if text.len() == 10 {
                    NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .ok()
                        .map(Tok::Date)
                } else {
                    parse_datetime(text).map(Tok::DateTime)
                };
                let tok = tok.ok_or_else(|| {
                    err(
                        start,
                        &format!("line 1:{start} no viable alternative at character '{text}'"),
                    )
                })?;
                out.push((tok, start));
                i += end;
                continue;
            }
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            out.push((Tok::Num(q[start..i].to_owned()), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(q[start..i].to_owned()), start));
            continue;
        }
        let two = q.get(i..i + 2).unwrap_or("");
        let sym: &'static str = match two {
            "!=" => "!=",
            "<>" => "!=",
            "<=" => "<=",
            ">=" => ">=",
            _ => match c {
                b'(' => "(",
                b')' => ")",
                b',' => ",",
                b'=' => "=",
                b'<' => "<",
                b'>' => ">",
                b'.' => ".",
                b':' => ":",
                b'-' => "-",
                _ => {
                    let ch = q[i..].chars().next().unwrap_or('?');
                    return Err(err(
                        i,
                        &format!("line 1:{i} no viable alternative at character '{ch}'"),
                    ));
                }
            },
        };
        i += if matches!(two, "!=" | "<>" | "<=" | ">=") {
            2
        } else {
            1
        };
        out.push((Tok::Sym(sym), start));
    }
    out.push((Tok::Eof, q.len()));
    Ok(out)
}
