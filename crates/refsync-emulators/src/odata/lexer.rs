//! Splits an OData expression into tokens, recognising the unquoted literals
//! (date-times, dates, GUIDs, numbers) by their shape.

use super::ODataError;
use chrono::{DateTime, FixedOffset, NaiveDate};
use uuid::Uuid;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// `'…'` with `''` unescaped.
    Str(String),
    /// `"…"` (only inside Dataverse function arguments).
    DqStr(String),
    /// A number exactly as written.
    Num(String),
    DateTime(DateTime<FixedOffset>),
    Date(NaiveDate),
    Guid(Uuid),
    LParen,
    RParen,
    Comma,
    Slash,
    Colon,
    LBracket,
    RBracket,
    Equals,
    Eof,
}

/// A token and the character position it starts at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$' || c == '@'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$' | '@')
}

/// A GUID at `i` (8-4-4-4-12 hex digits) not followed by an identifier character.
fn guid_at(chars: &[char], i: usize) -> Option<Uuid> {
    let end = i + 36;
    if end > chars.len() || chars.get(end).is_some_and(|c| is_ident_char(*c)) {
        return None;
    }
    let text: String = chars[i..end].iter().collect();
    let shape_ok = text.char_indices().all(|(k, c)| {
        if matches!(k, 8 | 13 | 18 | 23) {
            c == '-'
        } else {
            c.is_ascii_hexdigit()
        }
    });
    if shape_ok {
        Uuid::parse_str(&text).ok()
    } else {
        None
    }
}

pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, ODataError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let pos = i;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '/' => Some(Tok::Slash),
            ':' => Some(Tok::Colon),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '=' => Some(Tok::Equals),
            _ => None,
        };
        if let Some(tok) = single {
            out.push(Token { tok, pos });
            i += 1;
            continue;
        }
        if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(ODataError::at(pos, "unterminated string literal")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
            continue;
        }
        if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(ODataError::at(pos, "unterminated string literal")),
                    Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                        s.push(chars[i + 1]);
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Token {
                tok: Tok::DqStr(s),
                pos,
            });
            continue;
        }
        if let Some(g) = guid_at(&chars, i) {
            out.push(Token {
                tok: Tok::Guid(g),
                pos,
            });
            i += 36;
            continue;
        }
        let starts_number =
            c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if starts_number {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], ':' | '.' | '+' | '-'))
            {
                j += 1;
            }
            let raw: String = chars[i..j].iter().collect();
            out.push(Token {
                tok: classify_number_like(&raw, pos)?,
                pos,
            });
            i = j;
            continue;
        }
        if is_ident_start(c) {
            let mut j = i + 1;
            while j < chars.len() && is_ident_char(chars[j]) {
                j += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[i..j].iter().collect()),
                pos,
            });
            i = j;
            continue;
        }
        return Err(ODataError::at(pos, format!("unexpected character '{c}'")));
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: chars.len(),
    });
    Ok(out)
}

fn classify_number_like(raw: &str, pos: usize) -> Result<Tok, ODataError> {
    if raw.contains('T') || raw.contains('t') {
        return DateTime::parse_from_rfc3339(raw)
            .map(Tok::DateTime)
            .map_err(|_| ODataError::at(pos, format!("'{raw}' is not a valid date-time")));
    }
    if raw.len() == 10 && raw.as_bytes().get(4) == Some(&b'-') {
        return NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map(Tok::Date)
            .map_err(|_| ODataError::at(pos, format!("'{raw}' is not a valid date")));
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let numeric = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && !digits.ends_with('.');
    if numeric {
        Ok(Tok::Num(raw.to_owned()))
    } else {
        Err(ODataError::at(
            pos,
            format!("'{raw}' is not a valid literal"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn unquoted_literals_are_recognised_by_shape() {
        assert!(matches!(toks("2024-01-01T00:00:00Z")[0], Tok::DateTime(_)));
        assert!(matches!(
            toks("2024-01-01T00:00:00.1234567+02:00")[0],
            Tok::DateTime(_)
        ));
        assert!(matches!(toks("2025-06-30")[0], Tok::Date(_)));
        assert!(matches!(
            toks("c5fbb3b6-be74-4795-9fb5-4324c73fed37")[0],
            Tok::Guid(_)
        ));
        assert!(matches!(
            toks("65edc0b5-3485-41b7-a17e-dfa9ef4706e2")[0],
            Tok::Guid(_)
        ));
        assert_eq!(toks("-12.5")[0], Tok::Num("-12.5".into()));
        assert_eq!(toks("'O''Bryan'")[0], Tok::Str("O'Bryan".into()));
        assert_eq!(
            toks("Microsoft.Dynamics.CRM.In")[0],
            Tok::Ident("Microsoft.Dynamics.CRM.In".into())
        );
    }

    #[test]
    fn bad_input_reports_its_position() {
        let e = tokenize("name eq 'open").unwrap_err();
        assert_eq!(e.position, Some(8));
        let e = tokenize("x eq 2024-13-01").unwrap_err();
        assert_eq!(e.position, Some(5));
        let e = tokenize("x eq #").unwrap_err();
        assert_eq!(e.position, Some(5));
    }
}
