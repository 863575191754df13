//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong while parsing, checking or evaluating a filter expression.
///
/// Every variant carries `offset`: the byte offset into the expression text (0-based, in
/// bytes of the UTF-8 input, not characters) of the token or operand at fault. Evaluation
/// errors (a column the caller failed to supply) carry the offset of the field reference in
/// the expression. [`ExprError::offset`] returns it for any variant.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The expression is empty or only whitespace. Milvus treats an absent filter as
    /// "no filter"; callers that want that must not call the parser with an empty string.
    #[error("empty expression at offset {offset}")]
    Empty {
        /// Always 0.
        offset: usize,
    },

    /// A character that starts no token of the grammar (for example `@`, `#`, or a single `=`).
    #[error("unexpected character {ch:?} at offset {offset}")]
    UnexpectedChar {
        /// Byte offset of the character.
        offset: usize,
        /// The character.
        ch: char,
    },

    /// A string literal without its closing quote (a raw line break also ends it).
    #[error("unterminated string literal starting at offset {offset}")]
    UnterminatedString {
        /// Byte offset of the opening quote.
        offset: usize,
    },

    /// A malformed literal: a number that does not fit in `i64` or `f64`, a bad digit in an
    /// octal / hex / binary constant, an unknown escape in a string, a malformed JSON path.
    #[error("bad literal at offset {offset}: {reason}")]
    BadLiteral {
        /// Byte offset of the literal (or of the bad escape inside a string).
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A token that the grammar does not allow at this place.
    #[error("unexpected {found} at offset {offset}, expected {expected}")]
    UnexpectedToken {
        /// Byte offset of the token.
        offset: usize,
        /// The token as written.
        found: String,
        /// What the grammar allows there.
        expected: &'static str,
    },

    /// The input ends where the grammar needs more (for example `id >`).
    #[error("unexpected end of expression at offset {offset}, expected {expected}")]
    UnexpectedEnd {
        /// Byte offset of the end of the input.
        offset: usize,
        /// What the grammar needed.
        expected: &'static str,
    },

    /// An opening `(` or `[` that is never closed.
    #[error("unclosed {open:?} opened at offset {offset}")]
    UnclosedDelimiter {
        /// Byte offset of the opening delimiter.
        offset: usize,
        /// `(` or `[`.
        open: char,
    },

    /// A closing `)` or `]` without a matching opening one.
    #[error("unmatched {close:?} at offset {offset}")]
    UnmatchedClose {
        /// Byte offset of the closing delimiter.
        offset: usize,
        /// `)` or `]`.
        close: char,
    },

    /// A complete expression followed by more input (for example `id > 2 3`).
    #[error("unexpected trailing input {found} at offset {offset}")]
    TrailingInput {
        /// Byte offset where the trailing input starts.
        offset: usize,
        /// The first trailing token as written.
        found: String,
    },

    /// Nesting deeper than [`crate::MAX_DEPTH`] levels (parentheses, unary operators, operator
    /// chains). The limit keeps parsing, checking and evaluation within a small stack.
    #[error("expression nested deeper than {limit} levels at offset {offset}")]
    TooDeep {
        /// Byte offset of the construct that went past the limit.
        offset: usize,
        /// The limit.
        limit: usize,
    },

    /// A construct of the Milvus grammar that facedb does not support (shifts, bitwise
    /// operators, `exists`, array functions, arithmetic between two fields, ...), or
    /// a chained comparison that is not a range.
    #[error("{what} is not supported (offset {offset})")]
    Unsupported {
        /// Byte offset of the construct.
        offset: usize,
        /// What it is.
        what: String,
    },

    /// A field name the schema does not have (Milvus: `field age not exist`).
    #[error("field {name} not exist (offset {offset})")]
    UnknownField {
        /// Byte offset of the name.
        offset: usize,
        /// The name.
        name: String,
    },

    /// A vector field used in a filter; vectors cannot be filtered.
    #[error("vector field {name} cannot be used in a filter expression (offset {offset})")]
    VectorField {
        /// Byte offset of the name.
        offset: usize,
        /// The name.
        name: String,
    },

    /// Two operands whose types cannot meet, e.g. a VARCHAR field compared with an integer,
    /// or a float literal against an integer field (Milvus: "cannot cast value to Int64").
    #[error("type mismatch at offset {offset}: {left} and {right} cannot be compared or combined")]
    TypeMismatch {
        /// Byte offset of the operand that does not fit (usually the literal).
        offset: usize,
        /// Type of the first operand (the field, where there is one).
        left: String,
        /// Type of the second operand.
        right: String,
    },

    /// An operator applied to an operand it does not take (`like` on an integer field,
    /// arithmetic on a string, `not` on a number, a list outside `in`, ...).
    #[error("invalid operand at offset {offset}: {reason}")]
    InvalidOperand {
        /// Byte offset of the operand.
        offset: usize,
        /// What is wrong.
        reason: String,
    },

    /// Something that must be a constant is not (an element of an `in` list, a bound of a
    /// chained range).
    #[error("expected a constant at offset {offset}")]
    NonConstant {
        /// Byte offset of the operand.
        offset: usize,
    },

    /// The whole expression (or an operand of `and` / `or` / `not`) is not boolean,
    /// for example `age` or `age + 1` alone.
    #[error("expression at offset {offset} is not a boolean predicate")]
    NotBoolean {
        /// Byte offset of the operand.
        offset: usize,
    },

    /// Division or modulo by a constant zero.
    #[error("division by zero at offset {offset}")]
    DivisionByZero {
        /// Byte offset of the zero operand.
        offset: usize,
    },

    /// Constant folding overflowed `i64`, or gave a non-finite float.
    #[error("arithmetic overflow at offset {offset}")]
    Overflow {
        /// Byte offset of the operator.
        offset: usize,
    },

    /// Evaluation: the [`crate::Columns`] implementation returned no column for a field the
    /// expression uses.
    #[error("column {field} is missing (referenced at offset {offset})")]
    MissingColumn {
        /// Byte offset of the field reference.
        offset: usize,
        /// The field.
        field: String,
    },

    /// Evaluation: the column's type differs from the type the schema gave at check time.
    #[error("column {field} has type {found}, the expression was checked for {expected} (offset {offset})")]
    ColumnTypeMismatch {
        /// Byte offset of the field reference.
        offset: usize,
        /// The field.
        field: String,
        /// Type given by the schema.
        expected: String,
        /// Type of the column handed to the evaluator.
        found: String,
    },

    /// Evaluation: a column's length differs from [`crate::Columns::num_rows`].
    #[error("column {field} has {found} rows, expected {expected} (offset {offset})")]
    ColumnLength {
        /// Byte offset of the field reference.
        offset: usize,
        /// The field.
        field: String,
        /// `num_rows()`.
        expected: usize,
        /// The column's length.
        found: usize,
    },
}

impl ExprError {
    /// The byte offset into the expression text that the error points at.
    pub fn offset(&self) -> usize {
        match self {
            ExprError::Empty { offset }
            | ExprError::UnexpectedChar { offset, .. }
            | ExprError::UnterminatedString { offset }
            | ExprError::BadLiteral { offset, .. }
            | ExprError::UnexpectedToken { offset, .. }
            | ExprError::UnexpectedEnd { offset, .. }
            | ExprError::UnclosedDelimiter { offset, .. }
            | ExprError::UnmatchedClose { offset, .. }
            | ExprError::TrailingInput { offset, .. }
            | ExprError::TooDeep { offset, .. }
            | ExprError::Unsupported { offset, .. }
            | ExprError::UnknownField { offset, .. }
            | ExprError::VectorField { offset, .. }
            | ExprError::TypeMismatch { offset, .. }
            | ExprError::InvalidOperand { offset, .. }
            | ExprError::NonConstant { offset }
            | ExprError::NotBoolean { offset }
            | ExprError::DivisionByZero { offset }
            | ExprError::Overflow { offset }
            | ExprError::MissingColumn { offset, .. }
            | ExprError::ColumnTypeMismatch { offset, .. }
            | ExprError::ColumnLength { offset, .. } => *offset,
        }
    }
}
