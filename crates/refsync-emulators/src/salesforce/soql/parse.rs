//! SOQL text → [`Query`]: a recursive-descent parser over [`lexer`](super::lexer) tokens for the
//! subset refsync and common clients send (crm.md §2.4).
//!
//! Supported: `SELECT` fields (with one level of relationship, `Account.Name`),
//! `COUNT()`, `FIELDS(ALL|STANDARD|CUSTOM)`; `FROM` one object; `WHERE` with
//! `= != <> < <= > >= LIKE IN NOT IN`, `AND`/`OR`/`NOT` and parentheses;
//! string, number, boolean, null, date, date-time and relative date literals
//! (`TODAY`, `LAST_N_DAYS:n`, …); `ORDER BY … ASC|DESC NULLS FIRST|LAST`;
//! `LIMIT`; `OFFSET`. As in real SOQL, `AND` and `OR` cannot be mixed at one
//! level without parentheses. Anything else is a `MALFORMED_QUERY` that says
//! the emulator does not support it, rather than a silently wrong answer.

use super::super::error::SfError;
pub use super::ast::*;
use super::lexer::{Tok, lex, located};
use rust_decimal::Decimal;
use std::str::FromStr;

struct Parser<'q> {
    q: &'q str,
    toks: Vec<(Tok, usize)>,
    at: usize,
}

const UNSUPPORTED: [&str; 7] = [
    "GROUP", "HAVING", "WITH", "FOR", "USING", "TYPEOF", "UPDATE",
];

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.at.min(self.toks.len() - 1)].0
    }

    fn pos(&self) -> usize {
        self.toks[self.at.min(self.toks.len() - 1)].1
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn error(&self, message: &str) -> SfError {
        SfError::malformed_query(located(self.q, self.pos(), message))
    }

    fn unexpected(&self) -> SfError {
        let tok = self.peek();
        if let Tok::Ident(word) = tok
            && UNSUPPORTED.iter().any(|u| u.eq_ignore_ascii_case(word))
        {
            return self.error(&format!(
                "{} is valid SOQL but not supported by the refsync Salesforce emulator",
                word.to_ascii_uppercase()
            ));
        }
        self.error(&format!("unexpected token: {}", tok.shown()))
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SfError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(s) if *s == sym) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), SfError> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn ident(&mut self) -> Result<(String, usize), SfError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Ident(w) if !is_reserved(&w) => {
                self.at += 1;
                Ok((w, pos))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn path(&mut self) -> Result<Path, SfError> {
        let (first, pos) = self.ident()?;
        let mut parts = vec![first];
        while self.eat_sym(".") {
            parts.push(self.ident()?.0);
        }
        Ok(Path { parts, pos })
    }

    fn query(&mut self) -> Result<Query, SfError> {
        self.expect_kw("SELECT")?;
        let mut select = Vec::new();
        loop {
            if self.is_kw("COUNT") {
                self.at += 1;
                self.expect_sym("(")?;
                if !self.eat_sym(")") {
                    return Err(self.error(
                        "COUNT(field) aggregates are not supported by the refsync Salesforce emulator; use COUNT()",
                    ));
                }
                select.push(SelectItem::CountAll);
            } else if self.is_kw("FIELDS") {
                self.at += 1;
                self.expect_sym("(")?;
                let set = if self.eat_kw("ALL") {
                    FieldsSet::All
                } else if self.eat_kw("STANDARD") {
                    FieldsSet::Standard
                } else if self.eat_kw("CUSTOM") {
                    FieldsSet::Custom
                } else {
                    return Err(self.unexpected());
                };
                self.expect_sym(")")?;
                select.push(SelectItem::Fields(set));
            } else if self.eat_sym("(") {
                return Err(self.error(
                    "relationship subqueries are not supported by the refsync Salesforce emulator",
                ));
            } else {
                select.push(SelectItem::Field(self.path()?));
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        self.expect_kw("FROM")?;
        let (from, from_pos) = self.ident()?;
        let filter = if self.eat_kw("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let path = self.path()?;
                let desc = if self.eat_kw("DESC") {
                    true
                } else {
                    self.eat_kw("ASC");
                    false
                };
                let nulls_last = if self.eat_kw("NULLS") {
                    if self.eat_kw("LAST") {
                        true
                    } else {
                        self.expect_kw("FIRST")?;
                        false
                    }
                } else {
                    desc
                };
                order_by.push(OrderItem {
                    path,
                    desc,
                    nulls_last,
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.integer()?)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            Some(self.integer()?)
        } else {
            None
        };
        if *self.peek() != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(Query {
            select,
            from,
            from_pos,
            filter,
            order_by,
            limit,
            offset,
        })
    }

    fn integer(&mut self) -> Result<u64, SfError> {
        match self.peek().clone() {
            Tok::Num(n) => {
                let v = n.parse::<u64>().map_err(|_| self.unexpected())?;
                self.at += 1;
                Ok(v)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// condition := unary ((AND unary)* | (OR unary)*)
    fn condition(&mut self) -> Result<Cond, SfError> {
        let first = self.unary()?;
        let connective = if self.is_kw("AND") {
            "AND"
        } else if self.is_kw("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut items = vec![first];
        loop {
            if self.eat_kw(connective) {
                items.push(self.unary()?);
            } else if self.is_kw("AND") || self.is_kw("OR") {
                // SOQL requires parentheses when AND and OR are mixed.
                return Err(self.unexpected());
            } else {
                break;
            }
        }
        Ok(if connective == "AND" {
            Cond::And(items)
        } else {
            Cond::Or(items)
        })
    }

    fn unary(&mut self) -> Result<Cond, SfError> {
        if self.eat_kw("NOT") {
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        if self.eat_sym("(") {
            let inner = self.condition()?;
            self.expect_sym(")")?;
            return Ok(inner);
        }
        let path = self.path()?;
        if self.eat_kw("LIKE") {
            return match self.next() {
                Tok::Str(s) => Ok(Cond::Like(path, s)),
                _ => {
                    self.at -= 1;
                    Err(self.unexpected())
                }
            };
        }
        if self.eat_kw("IN") {
            return Ok(Cond::In(path, false, self.list()?));
        }
        if self.is_kw("NOT") {
            self.at += 1;
            self.expect_kw("IN")?;
            return Ok(Cond::In(path, true, self.list()?));
        }
        if self.is_kw("INCLUDES") || self.is_kw("EXCLUDES") {
            return Err(self
                .error("INCLUDES/EXCLUDES are not supported by the refsync Salesforce emulator"));
        }
        let op = match self.next() {
            Tok::Sym("=") => Op::Eq,
            Tok::Sym("!=") => Op::Ne,
            Tok::Sym("<") => Op::Lt,
            Tok::Sym("<=") => Op::Le,
            Tok::Sym(">") => Op::Gt,
            Tok::Sym(">=") => Op::Ge,
            _ => {
                self.at -= 1;
                return Err(self.unexpected());
            }
        };
        Ok(Cond::Cmp(path, op, self.literal()?))
    }

    fn list(&mut self) -> Result<Vec<Literal>, SfError> {
        self.expect_sym("(")?;
        if self.is_kw("SELECT") {
            return Err(
                self.error("semi-joins are not supported by the refsync Salesforce emulator")
            );
        }
        let mut values = vec![self.literal()?];
        while self.eat_sym(",") {
            values.push(self.literal()?);
        }
        self.expect_sym(")")?;
        Ok(values)
    }

    fn literal(&mut self) -> Result<Literal, SfError> {
        let negative = self.eat_sym("-");
        let tok = self.next();
        let lit = match (&tok, negative) {
            (Tok::Num(n), _) => {
                let text = if negative { format!("-{n}") } else { n.clone() };
                Decimal::from_str(&text).map(Literal::Num).ok()
            }
            (_, true) => None,
            (Tok::Str(s), _) => Some(Literal::Str(s.clone())),
            (Tok::Date(d), _) => Some(Literal::Date(*d)),
            (Tok::DateTime(t), _) => Some(Literal::DateTime(*t)),
            (Tok::Ident(w), _) => match w.to_ascii_uppercase().as_str() {
                "NULL" => Some(Literal::Null),
                "TRUE" => Some(Literal::Bool(true)),
                "FALSE" => Some(Literal::Bool(false)),
                "TODAY" => Some(Literal::Relative(DateLiteral::Today)),
                "YESTERDAY" => Some(Literal::Relative(DateLiteral::Yesterday)),
                "TOMORROW" => Some(Literal::Relative(DateLiteral::Tomorrow)),
                "THIS_MONTH" => Some(Literal::Relative(DateLiteral::ThisMonth)),
                "LAST_MONTH" => Some(Literal::Relative(DateLiteral::LastMonth)),
                "THIS_YEAR" => Some(Literal::Relative(DateLiteral::ThisYear)),
                "LAST_N_DAYS" | "NEXT_N_DAYS" => {
                    let last = w.eq_ignore_ascii_case("LAST_N_DAYS");
                    self.expect_sym(":")?;
                    let n = u32::try_from(self.integer()?).map_err(|_| self.unexpected())?;
                    Some(Literal::Relative(if last {
                        DateLiteral::LastNDays(n)
                    } else {
                        DateLiteral::NextNDays(n)
                    }))
                }
                _ => None,
            },
            _ => None,
        };
        match lit {
            Some(l) => Ok(l),
            None => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }
}

fn is_reserved(word: &str) -> bool {
    const RESERVED: [&str; 17] = [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT",
        "OFFSET", "NULL", "TRUE", "FALSE", "NULLS", "GROUP",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// Parses SOQL text.
pub fn parse(q: &str) -> Result<Query, SfError> {
    let toks = lex(q)?;
    Parser { q, toks, at: 0 }.query()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &str) -> Query {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e:?}"))
    }

    fn message(q: &str) -> String {
        parse(q).unwrap_err().errors[0].message.clone()
    }

    #[test]
    fn parses_the_query_refsync_polls_with() {
        let q = p(
            "SELECT Id, Name, Account.Name FROM Opportunity WHERE SystemModstamp > 2024-01-01T00:00:00Z AND Sync_with_Partner_Center__c = true ORDER BY SystemModstamp ASC, Id LIMIT 200",
        );
        assert_eq!(q.select.len(), 3);
        assert_eq!(q.from, "Opportunity");
        let Some(Cond::And(items)) = &q.filter else {
            panic!("{:?}", q.filter)
        };
        assert_eq!(items.len(), 2);
        assert!(matches!(
            &items[0],
            Cond::Cmp(_, Op::Gt, Literal::DateTime(_))
        ));
        assert_eq!(q.order_by.len(), 2);
        assert_eq!(q.limit, Some(200));
    }

    #[test]
    fn strings_numbers_dates_and_relative_dates() {
        let q = p(
            r"select id from lead where LastName = 'O\'Brien' or AnnualRevenue >= -1.5 or CreatedDate = LAST_N_DAYS:7 or CloseDate < 2025-01-31 or Email != null",
        );
        let Some(Cond::Or(items)) = q.filter else {
            panic!()
        };
        assert_eq!(
            items[0],
            Cond::Cmp(
                Path {
                    parts: vec!["LastName".into()],
                    pos: 26
                },
                Op::Eq,
                Literal::Str("O'Brien".into())
            )
        );
        assert!(
            matches!(items[1], Cond::Cmp(_, Op::Ge, Literal::Num(n)) if n == Decimal::new(-15, 1))
        );
        assert!(matches!(
            items[2],
            Cond::Cmp(_, Op::Eq, Literal::Relative(DateLiteral::LastNDays(7)))
        ));
        assert!(matches!(items[3], Cond::Cmp(_, Op::Lt, Literal::Date(_))));
        assert!(matches!(items[4], Cond::Cmp(_, Op::Ne, Literal::Null)));
    }

    #[test]
    fn in_not_in_like_not_and_parentheses() {
        let q = p(
            "SELECT Id FROM Lead WHERE (Status IN ('A','B') OR Company LIKE 'Con%') AND NOT Rating = 'Hot' AND Id NOT IN ('00Q5g0000000001')",
        );
        let Some(Cond::And(items)) = q.filter else {
            panic!()
        };
        assert!(matches!(&items[0], Cond::Or(inner) if inner.len() == 2));
        assert!(matches!(&items[1], Cond::Not(_)));
        assert!(matches!(&items[2], Cond::In(_, true, v) if v.len() == 1));
    }

    #[test]
    fn order_by_nulls_defaults_follow_direction() {
        let q = p(
            "SELECT Id FROM Lead ORDER BY Name DESC, Company NULLS LAST, Email ASC NULLS FIRST LIMIT 10 OFFSET 20",
        );
        let flags: Vec<(bool, bool)> = q.order_by.iter().map(|o| (o.desc, o.nulls_last)).collect();
        assert_eq!(flags, [(true, true), (false, true), (false, false)]);
        assert_eq!((q.limit, q.offset), (Some(10), Some(20)));
    }

    #[test]
    fn malformed_queries_say_where() {
        assert!(
            message("SELECT Id FROM Lead WHERE A = 1 AND B = 2 OR C = 3")
                .contains("unexpected token: OR")
        );
        assert!(message("SELECT Id FROM").contains("unexpected token: <EOF>"));
        assert!(message("SELECT Id FROM Lead WHERE Name = 'x").contains("unterminated"));
        assert!(message("SELECT Id FROM Lead GROUP BY Name").contains("not supported"));
        let m = message("SELECT Id FROM Lead WHERE");
        assert!(m.contains("ERROR at Row:1:Column:26"), "{m}");
        assert_eq!(
            parse("SELECT Id FROM Lead WHERE").unwrap_err().errors[0].code,
            "MALFORMED_QUERY"
        );
    }

    #[test]
    fn count_and_fields_functions() {
        assert_eq!(p("SELECT COUNT() FROM Lead").select, [SelectItem::CountAll]);
        assert_eq!(
            p("SELECT FIELDS(ALL) FROM Lead LIMIT 200").select,
            [SelectItem::Fields(FieldsSet::All)]
        );
    }
}
