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

// Binding powers, loosest first.
const BP_OR: u8 = 1;
const BP_AND: u8 = 2;
const BP_NOT: u8 = 3;
const BP_EQ: u8 = 4;
const BP_REL: u8 = 5;
const BP_IN: u8 = 6;
const BP_ADD: u8 = 8;
const BP_MUL: u8 = 9;
const BP_POW: u8 = 11;
const BP_LIKE: u8 = 12;
/// Marks operators that are rejected wherever they appear (shifts, bitwise).
const BP_ERROR: u8 = u8::MAX;

/// Binding power of the token at the cursor as an infix / postfix operator (`next` is the
/// token after it, to recognise `not in`); `None` when it is not one.
fn infix_bp(tok: &Tok, next: Option<&Tok>) -> Option<u8> {
    Some(match tok {
        Tok::Or => BP_OR,
        Tok::And => BP_AND,
        Tok::EqEq | Tok::Ne => BP_EQ,
        Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge => BP_REL,
        Tok::In => BP_IN,
        Tok::Not if next == Some(&Tok::In) => BP_IN,
        Tok::Plus | Tok::Minus => BP_ADD,
        Tok::Star | Tok::Slash | Tok::Percent => BP_MUL,
        Tok::Pow => BP_POW,
        Tok::Like => BP_LIKE,
        Tok::Shl | Tok::Shr | Tok::BitAnd | Tok::BitOr | Tok::BitXor => BP_ERROR,
        _ => return None,
    })
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
        self.parse_bp(BP_OR)
    }

    /// Precedence climbing: parses an expression whose operators all bind at least as
    /// tightly as `min_bp`. One recursive function (instead of one per level) keeps the
    /// stack shallow: each nesting level costs two frames.
    fn parse_bp(&mut self, min_bp: u8) -> Result<N, ExprError> {
        let mut lhs = self.parse_prefix(min_bp)?;
        // The loop only dispatches; every operator is handled by its own function so that
        // this frame, which is on the recursion path, stays small in debug builds too.
        loop {
            let bp = match self.peek() {
                None => return Ok(lhs),
                Some(tok) => infix_bp(tok, self.peek_at(1)),
            };
            match bp {
                Some(BP_ERROR) => return Err(self.unsupported_infix()),
                Some(bp) if bp >= min_bp => lhs = self.infix(lhs, bp)?,
                _ => return Ok(lhs),
            }
        }
    }

    /// Parses the infix (or postfix) operator at the cursor, whose binding power is `bp`.
    fn infix(&mut self, lhs: N, bp: u8) -> Result<N, ExprError> {
        match bp {
            BP_OR | BP_AND => self.logic(lhs, bp),
            BP_EQ => {
                let t = self.bump();
                let op = if t.tok == Tok::EqEq {
                    CmpOp::Eq
                } else {
                    CmpOp::Ne
                };
                let rhs = self.parse_bp(BP_EQ + 1)?;
                compare(op, t.start, lhs, rhs)
            }
            BP_REL => self.relational(lhs),
            BP_IN => {
                let negated = self.peek() == Some(&Tok::Not);
                self.membership(lhs, negated)
            }
            BP_ADD | BP_MUL | BP_POW => self.arith_op(lhs, bp),
            _ => self.like_op(lhs),
        }
    }

    fn unsupported_infix(&self) -> ExprError {
        let what = match self.peek() {
            Some(t @ (Tok::Shl | Tok::Shr)) => format!("shift operator {}", t.describe()),
            Some(t) => format!("bitwise operator {}", t.describe()),
            None => String::new(),
        };
        ExprError::Unsupported {
            offset: self.offset(),
            what,
        }
    }

    /// `lhs or b or c ...` / `lhs and b and c ...`, flattened.
    fn logic(&mut self, lhs: N, bp: u8) -> Result<N, ExprError> {
        let sep = if bp == BP_OR { Tok::Or } else { Tok::And };
        let offset = lhs.e.offset;
        let mut h = lhs.h;
        let mut items = vec![lhs.e];
        while self.peek() == Some(&sep) {
            self.bump();
            let n = self.parse_bp(bp + 1)?;
            h = h.max(n.h);
            items.push(n.e);
        }
        let kind = if bp == BP_OR {
            ExprKind::Or(items)
        } else {
            ExprKind::And(items)
        };
        node(kind, offset, h + 1)
    }

    /// `lhs + b`, `lhs * b`, `lhs ** b`, ... (all left-associative; a prefix `-` on the
    /// right of `**` is parsed by `parse_prefix`).
    fn arith_op(&mut self, lhs: N, bp: u8) -> Result<N, ExprError> {
        let t = self.bump();
        let op = match t.tok {
            Tok::Plus => ArithOp::Add,
            Tok::Minus => ArithOp::Sub,
            Tok::Star => ArithOp::Mul,
            Tok::Slash => ArithOp::Div,
            Tok::Percent => ArithOp::Mod,
            _ => ArithOp::Pow,
        };
        let rhs = self.parse_bp(bp + 1)?;
        arith(op, t.start, lhs, rhs)
    }

    /// `lhs like "pattern"`.
    fn like_op(&mut self, lhs: N) -> Result<N, ExprError> {
        self.bump();
        let Some(Tok::Str(pattern)) = self.peek().cloned() else {
            return Err(self.unexpected("a string literal after like"));
        };
        let pattern_offset = self.bump().start;
        let h = lhs.h + 1;
        let offset = lhs.e.offset;
        node(
            ExprKind::Like {
                lhs: Box::new(lhs.e),
                pattern,
                pattern_offset,
            },
            offset,
            h,
        )
    }

    /// A prefix operator or a primary.
    fn parse_prefix(&mut self, min_bp: u8) -> Result<N, ExprError> {
        match self.peek() {
            Some(Tok::Not) if min_bp <= BP_NOT => self.not_op(),
            Some(Tok::Plus | Tok::Minus) => self.unary_op(),
            Some(Tok::BitNot) => Err(ExprError::Unsupported {
                offset: self.offset(),
                what: "bitwise operator '~'".into(),
            }),
            _ => self.parse_primary(),
        }
    }

    fn not_op(&mut self) -> Result<N, ExprError> {
        let start = self.bump().start;
        self.enter(start)?;
        let inner = self.parse_bp(BP_NOT)?;
        self.leave();
        node(ExprKind::Not(Box::new(inner.e)), start, inner.h + 1)
    }

    fn unary_op(&mut self) -> Result<N, ExprError> {
        let t = self.bump();
        let op = if t.tok == Tok::Plus {
            UnaryOp::Plus
        } else {
            UnaryOp::Neg
        };
        self.enter(t.start)?;
        // Unary minus binds looser than `**`: -2 ** 2 is -(2 ** 2).
        let operand = self.parse_bp(BP_POW)?;
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

    /// After `lhs` and a relational operator: a comparison, or a range when the operand
    /// after the operator is a bare field followed by a second relational operator.
    fn relational(&mut self, lhs: N) -> Result<N, ExprError> {
        let op1 = self.peek().and_then(cmp_op).unwrap_or(CmpOp::Lt);
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
            let upper = self.parse_bp(BP_REL + 1)?;
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
            let rhs = self.parse_bp(BP_REL + 1)?;
            compare(op1, op_offset, lhs, rhs)?
        };
        if self.peek().and_then(cmp_op).is_some() {
            return Err(ExprError::Unsupported {
                offset: self.offset(),
                what: "a chained comparison that is not a range `lower < field < upper`".into(),
            });
        }
        Ok(result)
    }

    /// After `lhs`: `in [..]` or `not in [..]`.
    fn membership(&mut self, lhs: N, negated: bool) -> Result<N, ExprError> {
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

    /// A primary. Each kind is parsed by its own small function so that the frames on the
    /// recursion path (`(`, `[`, calls) stay small, also in debug builds.
    fn parse_primary(&mut self) -> Result<N, ExprError> {
        match self.peek() {
            Some(Tok::LParen) => self.paren(),
            Some(Tok::LBracket) => self.list(),
            Some(Tok::Ident(_)) => self.ident(),
            _ => self.leaf(),
        }
    }

    fn paren(&mut self) -> Result<N, ExprError> {
        let start = self.bump().start;
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

    fn list(&mut self) -> Result<N, ExprError> {
        let start = self.offset();
        let (items, h) = self.delimited(Tok::LBracket, Tok::RBracket, '[')?;
        node(ExprKind::List(items), start, h + 1)
    }

    fn ident(&mut self) -> Result<N, ExprError> {
        let t = self.bump();
        let Tok::Ident(name) = t.tok else {
            return Err(self.unexpected(OPERAND));
        };
        if self.peek() == Some(&Tok::LParen) {
            let (args, h) = self.delimited(Tok::LParen, Tok::RParen, '(')?;
            return node(ExprKind::Call { name, args }, t.start, h + 1);
        }
        node(ExprKind::Field(name), t.start, 1)
    }

    fn leaf(&mut self) -> Result<N, ExprError> {
        let start = self.offset();
        let kind = match self.peek() {
            Some(Tok::Int(v)) => ExprKind::Int(*v),
            Some(Tok::Float(v)) => ExprKind::Float(*v),
            Some(Tok::Str(s)) => ExprKind::Str(s.clone()),
            Some(Tok::Bool(b)) => ExprKind::Bool(*b),
            Some(Tok::JsonIdent(field, path)) => ExprKind::JsonPath {
                field: field.clone(),
                path: path.clone(),
            },
            Some(Tok::Exists) => {
                return Err(ExprError::Unsupported {
                    offset: start,
                    what: "exists".into(),
                })
            }
            _ => return Err(self.unexpected(OPERAND)),
        };
        self.bump();
        node(kind, start, 1)
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

fn compare(op: CmpOp, op_offset: usize, lhs: N, rhs: N) -> Result<N, ExprError> {
    let h = lhs.h.max(rhs.h) + 1;
    let offset = lhs.e.offset;
    node(
        ExprKind::Compare {
            op,
            op_offset,
            lhs: Box::new(lhs.e),
            rhs: Box::new(rhs.e),
        },
        offset,
        h,
    )
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
