//! Milvus boolean filter expressions for facedb: parser, schema checker and a vectorized
//! evaluator that turns an expression into a row bitmap.
//!
//! The store parses a user's `expr` once per request ([`compile`] = [`parse`] + [`check`]
//! against the collection schema), then evaluates the [`CheckedExpr`] on each segment
//! ([`CheckedExpr::evaluate`] over the segment's [`Columns`]), or answers by key lookup
//! where [`CheckedExpr::primary_key_hint`] says the expression is a key set.
//!
//! ```
//! use facedb_expr::{compile, ColumnMap, ColumnView, FieldKind, ScalarType};
//!
//! // The seed's `people` collection.
//! let schema = [
//!     ("id", FieldKind::Scalar(ScalarType::Int64)),
//!     ("name", FieldKind::Scalar(ScalarType::VarChar)),
//!     ("metrics", FieldKind::Vector),
//! ];
//! let ids = [1i64, 2, 3, 4, 5, 6];
//! let names: Vec<String> = ["xiaoming", "xiaoyue", "xiaowang", "xiaoli", "xiaozhang", "xiaozhao"]
//!     .iter().map(|s| s.to_string()).collect();
//! let columns = ColumnMap::new(6)
//!     .with("id", ColumnView::Int64(&ids))
//!     .with("name", ColumnView::VarChar(&names));
//!
//! let expr = compile(r#"id > 2 and name like "xiaoz%""#, &schema)?;
//! let rows = expr.evaluate(&columns)?;
//! let matched: Vec<i64> = rows.iter_ones().map(|r| ids[r]).collect();
//! assert_eq!(matched, vec![5, 6]);
//!
//! // Errors are typed and carry the byte offset of the fault.
//! let err = compile("name like xiao%", &schema).unwrap_err();
//! assert_eq!(err.offset(), 10);
//! # Ok::<(), facedb_expr::ExprError>(())
//! ```
//!
//! # Grammar
//!
//! The Milvus 2.3 grammar (`internal/parser/planparserv2/Plan.g4`; Milvus docs "Boolean
//! Expression Rules"), loosest binding first:
//!
//! | level | forms |
//! |---|---|
//! | or | `a or b`, `a \|\| b` (also `OR`) |
//! | and | `a and b`, `a && b` (also `AND`) |
//! | not | `not a`, `!a` (also `NOT`) |
//! | equality | `a == b`, `a != b` |
//! | relational | `a < b`, `<=`, `>`, `>=`; ranges `1 < age <= 5`, `5 >= age > 1` |
//! | membership | `x in [1, 2]`, `x not in ["a", "b"]`, `x in []` (trailing comma allowed) |
//! | additive | `a + b`, `a - b` |
//! | multiplicative | `a * b`, `a / b`, `a % b` |
//! | unary | `-a`, `+a` |
//! | power | `a ** b` (left-associative, as ANTLR builds it) |
//! | like | `name like "xiao%"` (also `LIKE`; the pattern must be a string literal) |
//! | primary | literals, fields, `meta["key"][0]`, `( .. )`, `[ .. ]`, `json_contains(..)` |
//!
//! Literals: integers in decimal, octal (`017`), hex (`0x1F`) and binary (`0b101`); floats
//! (`1.5`, `.5`, `1.`, `1e-3`, hex `0x1p4`); strings in single or double quotes with C
//! escapes as Go's `strconv.Unquote`, which Milvus uses (`\" \' \\ \n \t \r \a \b \f \v \?`,
//! `\ooo` with 3 octal digits, `\xHH` with 2 hex digits, `\uXXXX`, `\UXXXXXXXX`); booleans
//! `true` `True` `TRUE` `false` `False` `FALSE`; lists `[..]`. Fields are
//! `[A-Za-z_][A-Za-z0-9_]*` or `$meta`; a JSON path follows its field with no space:
//! `meta["a"][0]`.
//!
//! `like` patterns: `%` any run of characters, `_` one character, `\%` `\_` literal
//! (write `"a\\%"` or `"a\%"`).
//!
//! Supported predicates: field vs constant (constants may be constant expressions,
//! `age > 2 * 5`), field vs field (both numeric, both VarChar or both Bool), ranges, `in` /
//! `not in`, `like`, `field arith constant cmp constant` (`age + 2 > 10`; `+ - * / %`,
//! and `constant + field`, `constant - field`, `constant * field`), a Bool field alone
//! (`flag`, `not flag`), JSON paths with every comparison, `in`, `like`,
//! `json_contains` / `json_contains_all` / `json_contains_any`.
//!
//! Differences from Milvus 2.3, all in the direction of accepting more:
//! - `not` binds looser than comparisons (as in SQL): `not id > 2` is `not (id > 2)`. Milvus
//!   parses it as `(not id) > 2` and rejects it; every expression Milvus accepts means the
//!   same here except boolean ordering comparisons of a negated bool (`not flag >= false`).
//! - `AND`, `OR`, `NOT`, `IN` are accepted in upper case (as Milvus 2.4+).
//! - `field arith constant` works with every comparison (Milvus 2.3: `==` / `!=` only),
//!   and also `constant - field`.
//! - Comparisons between constants fold (`1 < 2` is true), `true` / `false` are valid
//!   predicates.
//! - `_` is a single-character wildcard everywhere in `like` (Milvus 2.3 only on its regex
//!   path).
//!
//! Rejected with [`ExprError::Unsupported`]: shifts (`<<` `>>`, as Milvus), bitwise `& | ^
//! ~`, `exists`, `array_*` functions, arithmetic between fields, nested field arithmetic,
//! chained comparisons that are not ranges. Empty input is [`ExprError::Empty`]; callers
//! treat an absent filter as "all rows" before calling the parser.
//!
//! # Testing
//!
//! Unit and property tests: `cargo test -p facedb-expr` (the property test compares every
//! bitmap with a per-row reference on random schemas, columns and expression trees).
//! Fuzzing (nightly, not part of the workspace): `cd crates/expr/fuzz && mkdir -p
//! corpus/parse_check_eval && cargo +nightly fuzz run parse_check_eval corpus/parse_check_eval
//! seeds -- -dict=expr.dict -max_total_time=600`.
//! Benchmarks: `cargo bench -p facedb-expr --bench eval`.

#![deny(missing_docs)]

mod ast;
mod bitmap;
mod checked;
mod checker;
mod error;
mod eval;
mod json;
mod lexer;
mod like;
mod parser;
mod pk;
mod schema;

pub use ast::{ArithOp, CmpOp, Expr, ExprKind, UnaryOp};
pub use bitmap::Bitmap;
pub use checked::{CheckedExpr, FieldRef, JsonTest, Predicate, Value, ValueSet};
pub use checker::{check, compile};
pub use error::ExprError;
pub use eval::{ColumnMap, ColumnView, Columns};
pub use like::{LikeKind, LikePattern};
pub use parser::parse;
pub use pk::{KeySet, PrimaryKeyHint};
pub use schema::{FieldKind, ScalarType, SchemaView};

/// The deepest nesting the parser accepts: parentheses, lists, unary operators and the
/// height of operator chains (`1 + 1 + ... + 1`) all count. `and` / `or` chains of any
/// length are flattened and count once.
pub const MAX_DEPTH: usize = 100;
