//! The untyped syntax tree that [`crate::parse`] returns.

use std::fmt;

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
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

impl CmpOp {
    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn flip(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
        }
    }

    /// Applies the operator to two values of an ordered type (IEEE semantics for floats:
    /// every comparison with NaN is false except `!=`).
    #[inline(always)]
    pub fn apply<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }

    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (integer division truncates toward zero, as C and Go)
    Div,
    /// `%` (remainder takes the sign of the dividend, as C and Go)
    Mod,
    /// `**` (constants only; always gives a float, as Milvus's `math.Pow`)
    Pow,
}

impl ArithOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
            ArithOp::Pow => "**",
        }
    }
}

impl fmt::Display for ArithOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Unary operator on a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `+x`
    Plus,
}

/// A node of the syntax tree with the byte offset where it starts in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Byte offset of the node's first token in the input.
    pub offset: usize,
}

/// The node kinds of the Milvus 2.3 filter grammar that facedb supports.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Integer constant (decimal, octal `017`, hex `0x1f`, binary `0b11`).
    Int(i64),
    /// Floating constant.
    Float(f64),
    /// String constant, unescaped.
    Str(String),
    /// `true` / `True` / `TRUE` / `false` / `False` / `FALSE`.
    Bool(bool),
    /// `[a, b, ...]` (a trailing comma is allowed; `[]` is empty).
    List(Vec<Expr>),
    /// A field name (`[A-Za-z_][A-Za-z0-9_]*` or `$meta`).
    Field(String),
    /// `field["key"][0]`: a JSON field and its path as JSON-pointer tokens.
    JsonPath {
        /// The field.
        field: String,
        /// Keys and indexes, outermost first.
        path: Vec<String>,
    },
    /// `-x`, `+x`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `not x`, `!x`.
    Not(Box<Expr>),
    /// `a + b`, `a ** b`, ...
    Arith {
        /// The operator.
        op: ArithOp,
        /// Byte offset of the operator.
        op_offset: usize,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `a < b`, `a == b`, ...
    Compare {
        /// The operator.
        op: CmpOp,
        /// Byte offset of the operator.
        op_offset: usize,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `lower op field op upper`, both operators `<`/`<=` or both `>`/`>=`.
    Range {
        /// The field (a plain or JSON identifier).
        field: Box<Expr>,
        /// The first operand.
        lower: Box<Expr>,
        /// The first operator (`Lt`, `Le`, `Gt` or `Ge`).
        lower_op: CmpOp,
        /// The second operator (same direction as the first).
        upper_op: CmpOp,
        /// The last operand.
        upper: Box<Expr>,
    },
    /// `x in [..]`, `x not in [..]`.
    In {
        /// The tested operand.
        lhs: Box<Expr>,
        /// The list (an [`ExprKind::List`] node).
        list: Box<Expr>,
        /// `not in`.
        negated: bool,
        /// Byte offset of `in` / `not`.
        op_offset: usize,
    },
    /// `x like "pattern"`.
    Like {
        /// The tested operand.
        lhs: Box<Expr>,
        /// The pattern, unescaped as a string literal (`\%`, `\_` still escaped).
        pattern: String,
        /// Byte offset of the pattern literal.
        pattern_offset: usize,
    },
    /// `a and b and ...` (`&&`), flattened.
    And(Vec<Expr>),
    /// `a or b or ...` (`||`), flattened.
    Or(Vec<Expr>),
    /// `name(args...)`, e.g. `json_contains(meta["tags"], 1)`.
    Call {
        /// The function name as written.
        name: String,
        /// The arguments.
        args: Vec<Expr>,
    },
}
