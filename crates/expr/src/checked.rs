//! The checked, typed expression that [`crate::check`] returns.

use std::ops::Bound;

use crate::ast::{ArithOp, CmpOp};
use crate::like::LikePattern;
use crate::schema::ScalarType;

/// A field reference resolved against the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    /// The field's name (the column the evaluator asks [`crate::Columns`] for).
    pub name: String,
    /// Its type.
    pub ty: ScalarType,
    /// Byte offset of the reference in the expression text.
    pub offset: usize,
}

/// A constant, coerced to the type of the field it is compared with.
///
/// For integer fields the value is `Int` and within the field type's range; for `Float`
/// fields it is `Float` holding an exactly representable `f32` (the literal rounded to
/// `f32`, as Milvus casts it); for `Double` fields `Float`; for `VarChar` `Str`; for `Bool`
/// `Bool`. Against JSON paths constants keep the type they were written with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// String.
    Str(String),
}

impl Value {
    /// The type name used in error messages (`Int64` for integer constants, `Double` for
    /// floating ones, as Milvus's plan parser types literals).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "Bool",
            Value::Int(_) => "Int64",
            Value::Float(_) => "Double",
            Value::Str(_) => "VarChar",
        }
    }
}

/// The constants of an `in` list, coerced to the field's type, sorted and deduplicated.
///
/// Integers out of the field type's range are dropped (they can match no row); NaN never
/// occurs (constants are always finite).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSet {
    /// Bool field: which of the two values are in the list.
    Bool {
        /// `true` is in the list.
        has_true: bool,
        /// `false` is in the list.
        has_false: bool,
    },
    /// Integer field.
    Int(Vec<i64>),
    /// Float / Double field (for `Float` fields values are exact `f32`s).
    Float(Vec<f64>),
    /// VarChar field.
    Str(Vec<String>),
    /// JSON path: constants as written (any mix of types).
    Mixed(Vec<Value>),
}

impl ValueSet {
    /// Number of distinct values.
    pub fn len(&self) -> usize {
        match self {
            ValueSet::Bool {
                has_true,
                has_false,
            } => usize::from(*has_true) + usize::from(*has_false),
            ValueSet::Int(v) => v.len(),
            ValueSet::Float(v) => v.len(),
            ValueSet::Str(v) => v.len(),
            ValueSet::Mixed(v) => v.len(),
        }
    }

    /// `true` when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What is tested on the value found at a JSON path.
///
/// A row whose document lacks the path, or has a value of another type there, satisfies
/// none of these tests; `!=` and `not in` are the negations of `==` and `in`, so they hold
/// for such rows (as Milvus 2.3).
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per query, never in bulk
pub enum JsonTest {
    /// `path op value`. Numbers compare numerically (integers exactly), strings by bytes,
    /// booleans with `false < true`.
    Compare {
        /// The operator.
        op: CmpOp,
        /// The constant.
        value: Value,
    },
    /// `lower < path < upper` and the other range forms.
    Range {
        /// Lower bound.
        lower: Bound<Value>,
        /// Upper bound.
        upper: Bound<Value>,
    },
    /// `path in [...]`.
    In(Vec<Value>),
    /// `path like "..."` (strings only).
    Like(LikePattern),
    /// `json_contains(path, v)`: the value is an array with an element equal to `v`.
    Contains(Value),
    /// `json_contains_all(path, [..])`: the array holds every listed value.
    ContainsAll(Vec<Value>),
    /// `json_contains_any(path, [..])`: the array holds at least one listed value.
    ContainsAny(Vec<Value>),
}

/// A checked predicate: every field resolved and typed, constants folded and coerced.
///
/// The store may inspect it (for example to pick a scalar index for a `Range` or an `In`)
/// or hand it to the evaluator through [`CheckedExpr::evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// A constant outcome (`true` matches every row). Comparisons that no value of the
    /// field's type can satisfy (`int8_field > 200`) fold to `Const(false)`, those that every
    /// value satisfies (`int8_field < 200`) to `Const(true)`.
    Const(bool),
    /// `field op value`. A bare boolean field `flag` is `flag == true`.
    Compare {
        /// The field.
        field: FieldRef,
        /// The operator, with the field on the left.
        op: CmpOp,
        /// The constant, coerced to the field's type.
        value: Value,
    },
    /// `lower < field <= upper` and friends; bounds coerced to the field type. For integer
    /// fields bounds are inclusive (`Included`) or `Unbounded`, clamped to the type's range.
    Range {
        /// The field.
        field: FieldRef,
        /// Lower bound.
        lower: Bound<Value>,
        /// Upper bound.
        upper: Bound<Value>,
    },
    /// `field in [...]` / `field not in [...]`.
    In {
        /// The field.
        field: FieldRef,
        /// The list.
        set: ValueSet,
        /// `not in`.
        negated: bool,
    },
    /// `field like "pattern"` on a VarChar field.
    Like {
        /// The field.
        field: FieldRef,
        /// The compiled pattern.
        pattern: LikePattern,
    },
    /// `left op right` between two fields: both numeric (compared as `f64` when either is a
    /// float, as `i64` otherwise), both VarChar, or both Bool.
    FieldCompare {
        /// Left field.
        left: FieldRef,
        /// The operator.
        op: CmpOp,
        /// Right field.
        right: FieldRef,
    },
    /// `field arith operand op value` (or `operand arith field op value` when
    /// `field_on_left` is false; only `+`, `-`, `*` allow that). Integer fields compute
    /// exactly (in 128 bits); `Float` fields in `f32`, `Double` fields in `f64`.
    Arith {
        /// The field.
        field: FieldRef,
        /// The arithmetic operator (never `Pow`).
        arith: ArithOp,
        /// The constant operand (non-zero for `/` and `%`).
        operand: Value,
        /// Whether the field is the left operand of `arith`.
        field_on_left: bool,
        /// The comparison.
        op: CmpOp,
        /// The constant compared with.
        value: Value,
    },
    /// A test on the value at a path of a JSON field.
    Json {
        /// The JSON field.
        field: FieldRef,
        /// The path as JSON-pointer tokens (object keys or array indexes), outermost first;
        /// empty for the document itself.
        path: Vec<String>,
        /// The test.
        test: JsonTest,
    },
    /// Negation.
    Not(Box<Predicate>),
    /// Conjunction (at least two operands, none of them `Const` or `And`).
    And(Vec<Predicate>),
    /// Disjunction (at least two operands, none of them `Const` or `Or`).
    Or(Vec<Predicate>),
}

/// A filter expression checked against a schema, ready to evaluate.
///
/// Built by [`crate::check`] or [`crate::compile`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedExpr {
    pub(crate) predicate: Predicate,
}

impl CheckedExpr {
    /// The checked predicate tree.
    pub fn predicate(&self) -> &Predicate {
        &self.predicate
    }

    /// Wraps a predicate built by hand (for example by a store that rewrites expressions).
    pub fn from_predicate(predicate: Predicate) -> CheckedExpr {
        CheckedExpr { predicate }
    }

    /// The names of the fields the expression reads, sorted, without duplicates: the
    /// columns a [`crate::Columns`] implementation must provide.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        collect_fields(&self.predicate, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn collect_fields<'a>(p: &'a Predicate, out: &mut Vec<&'a str>) {
    match p {
        Predicate::Const(_) => {}
        Predicate::Compare { field, .. }
        | Predicate::Range { field, .. }
        | Predicate::In { field, .. }
        | Predicate::Like { field, .. }
        | Predicate::Arith { field, .. }
        | Predicate::Json { field, .. } => out.push(&field.name),
        Predicate::FieldCompare { left, right, .. } => {
            out.push(&left.name);
            out.push(&right.name);
        }
        Predicate::Not(inner) => collect_fields(inner, out),
        Predicate::And(items) | Predicate::Or(items) => {
            for i in items {
                collect_fields(i, out);
            }
        }
    }
}
