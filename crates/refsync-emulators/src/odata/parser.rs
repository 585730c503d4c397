//! A recursive-descent parser for `$filter`, with OData's precedence:
//! `or` < `and` < `not` < comparisons < primaries (literals, paths, calls, lambdas, parentheses).

use super::ODataError;
use super::ast::{CompareOp, Expr, Function, LambdaKind, Literal};
use super::lexer::{Tok, Token, tokenize};
use rust_decimal::Decimal;
use std::str::FromStr;

/// Words that cannot be property names.
const RESERVED: [&str; 14] = [
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "true", "false", "null", "any", "all",
];

/// The prefix of Dataverse query functions.
const CRM_PREFIX: &str = "Microsoft.Dynamics.CRM.";

/// Deepest nesting accepted, so a hostile filter cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

pub(crate) struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

pub(crate) fn parse_filter(text: &str) -> Result<Expr, ODataError> {
    let mut p = Parser::new(text)?;
    if p.peek() == &Tok::Eof {
        return Err(ODataError::at(0, "the expression is empty"));
    }
    let e = p.or_expr()?;
    p.expect_eof()?;
    Ok(e)
}

impl Parser {
    pub(crate) fn new(text: &str) -> Result<Self, ODataError> {
        Ok(Self {
            tokens: tokenize(text)?,
            at: 0,
            depth: 0,
        })
    }

    pub(crate) fn peek(&self) -> &Tok {
        self.tokens
            .get(self.at)
            .map(|t| &t.tok)
            .unwrap_or(&Tok::Eof)
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        self.tokens
            .get(self.at + ahead)
            .map(|t| &t.tok)
            .unwrap_or(&Tok::Eof)
    }

    pub(crate) fn pos(&self) -> usize {
        self.tokens
            .get(self.at)
            .or_else(|| self.tokens.last())
            .map(|t| t.pos)
            .unwrap_or(0)
    }

    pub(crate) fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == word)
    }

    pub(crate) fn expect(&mut self, want: &Tok, what: &str) -> Result<(), ODataError> {
        if self.peek() == want {
            self.bump();
            Ok(())
        } else {
            Err(ODataError::at(
                self.pos(),
                format!("expected {what}, found {}", describe(self.peek())),
            ))
        }
    }

    pub(crate) fn expect_eof(&self) -> Result<(), ODataError> {
        if self.peek() == &Tok::Eof {
            Ok(())
        } else {
            Err(ODataError::at(
                self.pos(),
                format!("unexpected {}", describe(self.peek())),
            ))
        }
    }

    fn enter(&mut self) -> Result<(), ODataError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(ODataError::at(
                self.pos(),
                "the expression is nested too deeply",
            ))
        } else {
            Ok(())
        }
    }

    fn or_expr(&mut self) -> Result<Expr, ODataError> {
        self.enter()?;
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            self.bump();
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, ODataError> {
        let mut left = self.not_expr()?;
        while self.keyword("and") {
            self.bump();
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, ODataError> {
        if self.keyword("not") {
            self.bump();
            self.enter()?;
            let operand = self.not_expr()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(operand)));
        }
        self.compare_expr()
    }

    fn compare_expr(&mut self) -> Result<Expr, ODataError> {
        let mut left = self.primary()?;
        while let Tok::Ident(word) = self.peek() {
            let Some(op) = CompareOp::from_keyword(word) else {
                break;
            };
            self.bump();
            let right = self.primary()?;
            left = Expr::Compare {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, ODataError> {
        let pos = self.pos();
        match self.bump() {
            Tok::LParen => {
                let inner = self.or_expr()?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(inner)
            }
            Tok::Str(s) => Ok(Expr::Literal(Literal::String(s))),
            Tok::Num(n) => Ok(Expr::Literal(number(&n, pos)?)),
            Tok::DateTime(d) => Ok(Expr::Literal(Literal::DateTime(d))),
            Tok::Date(d) => Ok(Expr::Literal(Literal::Date(d))),
            Tok::Guid(g) => Ok(Expr::Literal(Literal::Guid(g))),
            Tok::Ident(word) => self.identifier_led(word, pos),
            Tok::Eof => Err(ODataError::at(
                pos,
                "expected a value, found the end of the expression",
            )),
            other => Err(ODataError::at(
                pos,
                format!("expected a value, found {}", describe(&other)),
            )),
        }
    }

    fn identifier_led(&mut self, word: String, pos: usize) -> Result<Expr, ODataError> {
        match word.as_str() {
            "true" => return Ok(Expr::Literal(Literal::Bool(true))),
            "false" => return Ok(Expr::Literal(Literal::Bool(false))),
            "null" => return Ok(Expr::Literal(Literal::Null)),
            _ => {}
        }
        if self.peek() == &Tok::LParen {
            if let Some(function) = Function::from_name(&word) {
                return self.call(function, pos);
            }
            if let Some(name) = word.strip_prefix(CRM_PREFIX) {
                return self.crm_function(name, pos);
            }
            return Err(ODataError::at(pos, format!("unknown function '{word}'")));
        }
        if RESERVED.contains(&word.as_str()) {
            return Err(ODataError::at(
                pos,
                format!("expected a value, found the keyword '{word}'"),
            ));
        }
        check_segment(&word, pos)?;
        let mut path = vec![word];
        while self.peek() == &Tok::Slash {
            self.bump();
            let seg_pos = self.pos();
            let Tok::Ident(segment) = self.bump() else {
                return Err(ODataError::at(
                    seg_pos,
                    "expected a property name after '/'",
                ));
            };
            let lambda = match segment.as_str() {
                "any" => Some(LambdaKind::Any),
                "all" => Some(LambdaKind::All),
                _ => None,
            };
            if let Some(kind) = lambda
                && self.peek() == &Tok::LParen
            {
                return self.lambda(path, kind);
            }
            check_segment(&segment, seg_pos)?;
            path.push(segment);
        }
        Ok(Expr::Path(path))
    }

    fn call(&mut self, function: Function, pos: usize) -> Result<Expr, ODataError> {
        self.expect(&Tok::LParen, "'('")?;
        let mut args = Vec::new();
        if self.peek() != &Tok::RParen {
            loop {
                args.push(self.or_expr()?);
                if self.peek() == &Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect(&Tok::RParen, "')'")?;
        if args.len() != function.arity() {
            return Err(ODataError::at(
                pos,
                format!(
                    "function '{}' takes {} argument(s), got {}",
                    function.name(),
                    function.arity(),
                    args.len()
                ),
            ));
        }
        Ok(Expr::Call { function, args })
    }

    fn lambda(&mut self, collection: Vec<String>, kind: LambdaKind) -> Result<Expr, ODataError> {
        self.expect(&Tok::LParen, "'('")?;
        if self.peek() == &Tok::RParen {
            self.bump();
            if kind == LambdaKind::All {
                return Err(ODataError::at(
                    self.pos(),
                    "'all' needs a lambda expression",
                ));
            }
            return Ok(Expr::Lambda {
                collection,
                kind,
                body: None,
            });
        }
        let var_pos = self.pos();
        let Tok::Ident(var) = self.bump() else {
            return Err(ODataError::at(
                var_pos,
                "expected a range variable such as 't:'",
            ));
        };
        check_segment(&var, var_pos)?;
        self.expect(&Tok::Colon, "':' after the range variable")?;
        let body = self.or_expr()?;
        self.expect(&Tok::RParen, "')'")?;
        Ok(Expr::Lambda {
            collection,
            kind,
            body: Some((var, Box::new(body))),
        })
    }

    /// `Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=['a','b'])` and `NotIn`.
    fn crm_function(&mut self, name: &str, pos: usize) -> Result<Expr, ODataError> {
        let negated = match name {
            "In" => false,
            "NotIn" => true,
            _ => {
                return Err(ODataError::at(
                    pos,
                    format!(
                        "the Dataverse function '{CRM_PREFIX}{name}' is not supported by the emulator"
                    ),
                ));
            }
        };
        self.expect(&Tok::LParen, "'('")?;
        let mut property = None;
        let mut values = None;
        loop {
            let arg_pos = self.pos();
            let Tok::Ident(arg) = self.bump() else {
                return Err(ODataError::at(arg_pos, "expected a parameter name"));
            };
            self.expect(&Tok::Equals, "'='")?;
            match arg.as_str() {
                "PropertyName" => {
                    let value_pos = self.pos();
                    match self.bump() {
                        Tok::Str(s) | Tok::DqStr(s) => property = Some(s),
                        _ => {
                            return Err(ODataError::at(value_pos, "PropertyName must be a string"));
                        }
                    }
                }
                "PropertyValues" => values = Some(self.value_list()?),
                other => {
                    return Err(ODataError::at(
                        arg_pos,
                        format!("unknown parameter '{other}'"),
                    ));
                }
            }
            if self.peek() == &Tok::Comma {
                self.bump();
            } else {
                break;
            }
        }
        self.expect(&Tok::RParen, "')'")?;
        match (property, values) {
            (Some(property), Some(values)) => Ok(Expr::In {
                property,
                values,
                negated,
            }),
            _ => Err(ODataError::at(
                pos,
                "PropertyName and PropertyValues are both required",
            )),
        }
    }

    fn value_list(&mut self) -> Result<Vec<Literal>, ODataError> {
        self.expect(&Tok::LBracket, "'['")?;
        let mut values = Vec::new();
        if self.peek() != &Tok::RBracket {
            loop {
                let pos = self.pos();
                let literal = match self.bump() {
                    Tok::Str(s) | Tok::DqStr(s) => Literal::String(s),
                    Tok::Num(n) => number(&n, pos)?,
                    Tok::Guid(g) => Literal::Guid(g),
                    Tok::DateTime(d) => Literal::DateTime(d),
                    Tok::Date(d) => Literal::Date(d),
                    Tok::Ident(w) if w == "true" || w == "false" => Literal::Bool(w == "true"),
                    other => {
                        return Err(ODataError::at(
                            pos,
                            format!("expected a literal, found {}", describe(&other)),
                        ));
                    }
                };
                values.push(literal);
                if self.peek() == &Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect(&Tok::RBracket, "']'")?;
        Ok(values)
    }

    /// A property path (for `$orderby`): `a/b/c`.
    pub(crate) fn path(&mut self) -> Result<Vec<String>, ODataError> {
        let mut path = Vec::new();
        loop {
            let pos = self.pos();
            let Tok::Ident(seg) = self.bump() else {
                return Err(ODataError::at(pos, "expected a property name"));
            };
            check_segment(&seg, pos)?;
            path.push(seg);
            if self.peek() == &Tok::Slash {
                self.bump();
            } else {
                return Ok(path);
            }
        }
    }

    /// True when the next token is the identifier `word` (then consumed).
    pub(crate) fn eat_keyword(&mut self, word: &str) -> bool {
        if self.keyword(word) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Lookahead used by `$orderby` to see a trailing `asc`/`desc`.
    pub(crate) fn next_is(&self, tok: &Tok) -> bool {
        self.peek_at(0) == tok
    }
}

fn check_segment(seg: &str, pos: usize) -> Result<(), ODataError> {
    if RESERVED.contains(&seg) {
        return Err(ODataError::at(
            pos,
            format!("'{seg}' is a keyword, not a property name"),
        ));
    }
    if seg.contains('.') {
        return Err(ODataError::at(
            pos,
            format!("'{seg}' is not a valid property name"),
        ));
    }
    Ok(())
}

fn number(raw: &str, pos: usize) -> Result<Literal, ODataError> {
    if !raw.contains('.')
        && let Ok(i) = raw.parse::<i64>()
    {
        return Ok(Literal::Int(i));
    }
    Decimal::from_str(raw)
        .map(Literal::Decimal)
        .map_err(|_| ODataError::at(pos, format!("'{raw}' is out of range")))
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) | Tok::DqStr(s) => format!("the string '{s}'"),
        Tok::Num(n) => format!("the number {n}"),
        Tok::DateTime(d) => format!("the date-time {}", d.to_rfc3339()),
        Tok::Date(d) => format!("the date {d}"),
        Tok::Guid(g) => format!("the GUID {g}"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::Slash => "'/'".into(),
        Tok::Colon => "':'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Equals => "'='".into(),
        Tok::Eof => "the end of the expression".into(),
    }
}
