//! Recursive-descent parser for the Milvus 2.3 filter grammar.
//!
//! Precedence, loosest first (as the alternative order of `Plan.g4`, except `not`, see the
//! crate docs): `or` < `and` < `not` < `== !=` < `< <= > >=` and ranges < `in` / `not in`
//! < shifts (rejected) < `+ -` < `* / %` < unary `+ -` < `**` < `like` < primaries.

use crate::ast::{ArithOp, CmpOp, Expr, ExprKind, UnaryOp};
use crate::error::ExprError;
use crate::lexer::{tokenize, Tok, Token};
use crate::MAX_DEPTH;

/// Parses a Milvus boolean expression into a syntax tree.
///
/// The tree is not yet checked against a schema: see [`crate::check`].
///
/// # Errors
/// [`ExprError::Empty`] for an empty or blank input; the lexical and syntactic variants
/// ([`ExprError::UnexpectedChar`], [`ExprError::UnterminatedString`],
/// [`ExprError::BadLiteral`], [`ExprError::UnexpectedToken`], [`ExprError::UnexpectedEnd`],
/// [`ExprError::UnclosedDelimiter`], [`ExprError::UnmatchedClose`],
/// [`ExprError::TrailingInput`], [`ExprError::TooDeep`]) and [`ExprError::Unsupported`] for
/// shifts, bitwise operators and `exists`. Each carries the byte offset of the fault.
pub fn parse(input: &str) -> Result<Expr, ExprError> {
    let toks = tokenize(input)?;
    if toks.is_empty() {
        return Err(ExprError::Empty { offset: 0 });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: input.len(),
        depth: 0,
        open: 0,
    };
    let n = p.parse_or()?;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(match t.tok {
            Tok::RParen => ExprError::UnmatchedClose {
                offset: t.start,
                close: ')',
            },
            Tok::RBracket => ExprError::UnmatchedClose {
                offset: t.start,
                close: ']',
            },
            _ => ExprError::TrailingInput {
                offset: t.start,
                found: t.tok.describe(),
            },
        });
    }
    Ok(n.e)
}

/// A node and the height of its subtree.
struct N {
    e: Expr,
    h: usize,
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Input length: the offset reported for "unexpected end".
    end: usize,
    /// Current recursion depth (parentheses, lists, unary operators).
    depth: usize,
    /// Open parentheses / brackets around the current position.
    open: usize,
}

const OPERAND: &str = "an operand (a field, a constant, '(' or '[')";

fn node(kind: ExprKind, offset: usize, h: usize) -> Result<N, ExprError> {
    if h > MAX_DEPTH {
        return Err(ExprError::TooDeep {
            offset,
            limit: MAX_DEPTH,
        });
    }
    Ok(N {
        e: Expr { kind, offset },
        h,
    })
}

fn cmp_op(t: &Tok) -> Option<CmpOp> {
    Some(match t {
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        _ => return None,
    })
}

fn is_upward(op: CmpOp) -> bool {
    matches!(op, CmpOp::Lt | CmpOp::Le)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|t| &t.tok)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.start)
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        self.pos += 1;
        t
    }

    fn enter(&mut self, offset: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::TooDeep {
                offset,
                limit: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn unexpected(&self, expected: &'static str) -> ExprError {
        match self.toks.get(self.pos) {
            None => ExprError::UnexpectedEnd {
                offset: self.end,
                expected,
            },
            Some(t) if self.open == 0 && matches!(t.tok, Tok::RParen | Tok::RBracket) => {
                ExprError::UnmatchedClose {
                    offset: t.start,
                    close: if t.tok == Tok::RParen { ')' } else { ']' },
                }
            }
            Some(t) => ExprError::UnexpectedToken {
                offset: t.start,
                found: t.tok.describe(),
                expected,
            },
        }
    }

    fn parse_or(&mut self) -> Result<N, ExprError> {
        let first = self.parse_and()?;
        if self.peek() != Some(&Tok::Or) {
            return Ok(first);
        }
        let offset = first.e.offset;
        let mut h = first.h;
        let mut items = vec![first.e];
        while self.peek() == Some(&Tok::Or) {
            self.bump();
            let n = self.parse_and()?;
            h = h.max(n.h);
            items.push(n.e);
        }
        node(ExprKind::Or(items), offset, h + 1)
    }

    fn parse_and(&mut self) -> Result<N, ExprError> {
        let first = self.parse_not()?;
        if self.peek() != Some(&Tok::And) {
            return Ok(first);
        }
        let offset = first.e.offset;
        let mut h = first.h;
        let mut items = vec![first.e];
        while self.peek() == Some(&Tok::And) {
            self.bump();
            let n = self.parse_not()?;
            h = h.max(n.h);
            items.push(n.e);
        }
        node(ExprKind::And(items), offset, h + 1)
    }

    fn parse_not(&mut self) -> Result<N, ExprError> {
        if self.peek() == Some(&Tok::Not) {
            let t = self.bump();
            self.enter(t.start)?;
            let inner = self.parse_not()?;
            self.leave();
            return node(ExprKind::Not(Box::new(inner.e)), t.start, inner.h + 1);
        }
        self.parse_equality()
    }

    fn parse_equality(&mut self) -> Result<N, ExprError> {
        let mut lhs = self.parse_relational()?;
        loop {
            let op = match self.peek() {
                Some(Tok::EqEq) => CmpOp::Eq,
                Some(Tok::Ne) => CmpOp::Ne,
                Some(Tok::BitAnd | Tok::BitOr | Tok::BitXor) => {
                    let t = &self.toks[self.pos];
                    return Err(ExprError::Unsupported {
                        offset: t.start,
                        what: format!("bitwise operator {}", t.tok.describe()),
                    });
                }
                _ => return Ok(lhs),
            };
            let op_offset = self.bump().start;
            let rhs = self.parse_relational()?;
            let h = lhs.h.max(rhs.h) + 1;
            let offset = lhs.e.offset;
            lhs = node(
                ExprKind::Compare {
                    op,
                    op_offset,
                    lhs: Box::new(lhs.e),
                    rhs: Box::new(rhs.e),
                },
                offset,
                h,
            )?;
        }
    }

    fn parse_relational(&mut self) -> Result<N, ExprError> {
        let lhs = self.parse_in()?;
        let Some(op1) = self.peek().and_then(cmp_op) else {
            return Ok(lhs);
        };
        let op_offset = self.bump().start;
        let is_range = matches!(self.peek(), Some(Tok::Ident(_) | Tok::JsonIdent(..)))
            && self.peek_at(1).and_then(cmp_op).is_some();
        let result = if is_range {
            let field = self.parse_primary()?;
            let op2_tok = self.bump();
            let op2 = cmp_op(&op2_tok.tok).unwrap_or(CmpOp::Lt);
            if is_upward(op1) != is_upward(op2) {
                return Err(ExprError::Unsupported {
                    offset: op2_tok.start,
                    what: "a chained comparison with operators of opposite directions \
                           (a range needs < / <= on both sides, or > / >= on both sides)"
                        .into(),
                });
            }
            let upper = self.parse_in()?;
            let h = lhs.h.max(field.h).max(upper.h) + 1;
            let offset = lhs.e.offset;
            node(
                ExprKind::Range {
                    field: Box::new(field.e),
                    lower: Box::new(lhs.e),
                    lower_op: op1,
                    upper_op: op2,
                    upper: Box::new(upper.e),
                },
                offset,
                h,
            )?
        } else {
            let rhs = self.parse_in()?;
            let h = lhs.h.max(rhs.h) + 1;
            let offset = lhs.e.offset;
            node(
                ExprKind::Compare {
                    op: op1,
                    op_offset,
                    lhs: Box::new(lhs.e),
                    rhs: Box::new(rhs.e),
                },
                offset,
                h,
            )?
        };
        if self.peek().and_then(cmp_op).is_some() {
            return Err(ExprError::Unsupported {
                offset: self.offset(),
                what: "a chained comparison that is not a range `lower < field < upper`".into(),
            });
        }
        Ok(result)
    }

    fn parse_in(&mut self) -> Result<N, ExprError> {
        let lhs = self.parse_shift()?;
        let negated = match (self.peek(), self.peek_at(1)) {
            (Some(Tok::In), _) => false,
            (Some(Tok::Not), Some(Tok::In)) => true,
            _ => return Ok(lhs),
        };
        let op_offset = self.bump().start;
        if negated {
            self.bump();
        }
        if self.peek() != Some(&Tok::LBracket) {
            return Err(self.unexpected("'[' (a list) after in"));
        }
        let list = self.parse_primary()?;
        let h = lhs.h.max(list.h) + 1;
        let offset = lhs.e.offset;
        node(
            ExprKind::In {
                lhs: Box::new(lhs.e),
                list: Box::new(list.e),
                negated,
                op_offset,
            },
            offset,
            h,
        )
    }

    fn parse_shift(&mut self) -> Result<N, ExprError> {
        let lhs = self.parse_additive()?;
        if let Some(t @ (Tok::Shl | Tok::Shr)) = self.peek() {
            return Err(ExprError::Unsupported {
                offset: self.offset(),
                what: format!("shift operator {}", t.describe()),
            });
        }
        Ok(lhs)
    }

    fn parse_additive(&mut self) -> Result<N, ExprError> {
        let mut lhs = self.parse_mul()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Plus) => ArithOp::Add,
                Some(Tok::Minus) => ArithOp::Sub,
                _ => return Ok(lhs),
            };
            let op_offset = self.bump().start;
            let rhs = self.parse_mul()?;
            lhs = arith(op, op_offset, lhs, rhs)?;
        }
    }

    fn parse_mul(&mut self) -> Result<N, ExprError> {
        let mut lhs = self.parse_unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Star) => ArithOp::Mul,
                Some(Tok::Slash) => ArithOp::Div,
                Some(Tok::Percent) => ArithOp::Mod,
                _ => return Ok(lhs),
            };
            let op_offset = self.bump().start;
            let rhs = self.parse_unary()?;
            lhs = arith(op, op_offset, lhs, rhs)?;
        }
    }

    fn parse_unary(&mut self) -> Result<N, ExprError> {
        let op = match self.peek() {
            Some(Tok::Plus) => UnaryOp::Plus,
            Some(Tok::Minus) => UnaryOp::Neg,
            Some(Tok::BitNot) => {
                return Err(ExprError::Unsupported {
                    offset: self.offset(),
                    what: "bitwise operator '~'".into(),
                })
            }
            _ => return self.parse_pow(),
        };
        let t = self.bump();
        self.enter(t.start)?;
        let operand = self.parse_unary()?;
        self.leave();
        node(
            ExprKind::Unary {
                op,
                operand: Box::new(operand.e),
            },
            t.start,
            operand.h + 1,
        )
    }

    fn parse_pow(&mut self) -> Result<N, ExprError> {
        let mut lhs = self.parse_postfix()?;
        while self.peek() == Some(&Tok::Pow) {
            let op_offset = self.bump().start;
            let rhs = if matches!(self.peek(), Some(Tok::Plus | Tok::Minus | Tok::BitNot)) {
                self.parse_unary()?
            } else {
                self.parse_postfix()?
            };
            lhs = arith(ArithOp::Pow, op_offset, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn parse_postfix(&mut self) -> Result<N, ExprError> {
        let mut lhs = self.parse_primary()?;
        while self.peek() == Some(&Tok::Like) {
            self.bump();
            let Some(Tok::Str(pattern)) = self.peek().cloned() else {
                return Err(self.unexpected("a string literal after like"));
            };
            let pattern_offset = self.bump().start;
            let h = lhs.h + 1;
            let offset = lhs.e.offset;
            lhs = node(
                ExprKind::Like {
                    lhs: Box::new(lhs.e),
                    pattern,
                    pattern_offset,
                },
                offset,
                h,
            )?;
        }
        Ok(lhs)
    }

    fn parse_primary(&mut self) -> Result<N, ExprError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.unexpected(OPERAND));
        };
        let start = self.offset();
        match tok {
            Tok::Int(v) => {
                self.bump();
                node(ExprKind::Int(v), start, 1)
            }
            Tok::Float(v) => {
                self.bump();
                node(ExprKind::Float(v), start, 1)
            }
            Tok::Str(s) => {
                self.bump();
                node(ExprKind::Str(s), start, 1)
            }
            Tok::Bool(b) => {
                self.bump();
                node(ExprKind::Bool(b), start, 1)
            }
            Tok::JsonIdent(field, path) => {
                self.bump();
                node(ExprKind::JsonPath { field, path }, start, 1)
            }
            Tok::Ident(name) => {
                self.bump();
                if self.peek() == Some(&Tok::LParen) {
                    let (args, h) = self.delimited(Tok::LParen, Tok::RParen, '(')?;
                    return node(ExprKind::Call { name, args }, start, h + 1);
                }
                node(ExprKind::Field(name), start, 1)
            }
            Tok::LParen => {
                self.bump();
                self.enter(start)?;
                self.open += 1;
                let inner = self.parse_or()?;
                self.open -= 1;
                self.leave();
                match self.peek() {
                    Some(Tok::RParen) => {
                        self.bump();
                        Ok(inner)
                    }
                    None => Err(ExprError::UnclosedDelimiter {
                        offset: start,
                        open: '(',
                    }),
                    Some(_) => Err(self.unexpected("')'")),
                }
            }
            Tok::LBracket => {
                let (items, h) = self.delimited(Tok::LBracket, Tok::RBracket, '[')?;
                node(ExprKind::List(items), start, h + 1)
            }
            Tok::Exists => Err(ExprError::Unsupported {
                offset: start,
                what: "exists".into(),
            }),
            _ => Err(self.unexpected(OPERAND)),
        }
    }

    /// `open expr (, expr)* ,? close` or `open close`; returns the items and their max height.
    fn delimited(
        &mut self,
        open_tok: Tok,
        close: Tok,
        open_ch: char,
    ) -> Result<(Vec<Expr>, usize), ExprError> {
        let start = self.offset();
        debug_assert_eq!(self.peek(), Some(&open_tok));
        self.bump();
        self.enter(start)?;
        self.open += 1;
        let mut items = Vec::new();
        let mut h = 0;
        if self.peek() == Some(&close) {
            self.bump();
        } else {
            loop {
                let n = self.parse_or()?;
                h = h.max(n.h);
                items.push(n.e);
                match self.peek() {
                    Some(Tok::Comma) => {
                        self.bump();
                        if self.peek() == Some(&close) {
                            self.bump();
                            break;
                        }
                    }
                    Some(t) if *t == close => {
                        self.bump();
                        break;
                    }
                    None => {
                        return Err(ExprError::UnclosedDelimiter {
                            offset: start,
                            open: open_ch,
                        })
                    }
                    Some(_) => {
                        return Err(self.unexpected(if open_ch == '[' {
                            "',' or ']'"
                        } else {
                            "',' or ')'"
                        }))
                    }
                }
            }
        }
        self.open -= 1;
        self.leave();
        Ok((items, h))
    }
}

fn arith(op: ArithOp, op_offset: usize, lhs: N, rhs: N) -> Result<N, ExprError> {
    let h = lhs.h.max(rhs.h) + 1;
    let offset = lhs.e.offset;
    if h > MAX_DEPTH {
        return Err(ExprError::TooDeep {
            offset: op_offset,
            limit: MAX_DEPTH,
        });
    }
    node(
        ExprKind::Arith {
            op,
            op_offset,
            lhs: Box::new(lhs.e),
            rhs: Box::new(rhs.e),
        },
        offset,
        h,
    )
}
