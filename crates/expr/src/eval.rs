//! Column-at-a-time evaluation of a checked expression into a row bitmap.

// The dispatch macros widen every integer column to i64 and every float column to f64;
// for the i64 / f64 columns that cast is the identity.
#![allow(clippy::unnecessary_cast)]

use std::collections::HashSet;
use std::ops::Bound;

use crate::ast::{ArithOp, CmpOp};
use crate::bitmap::Bitmap;
use crate::checked::{CheckedExpr, FieldRef, Predicate, Value, ValueSet};
use crate::error::ExprError;
use crate::json;
use crate::like::{LikeKind, LikePattern};
use crate::schema::ScalarType;

/// A borrowed column of one segment: one value per row, row `i` at index `i`.
#[derive(Debug, Clone, Copy)]
pub enum ColumnView<'a> {
    /// `BOOL`
    Bool(&'a [bool]),
    /// `INT8`
    Int8(&'a [i8]),
    /// `INT16`
    Int16(&'a [i16]),
    /// `INT32`
    Int32(&'a [i32]),
    /// `INT64`
    Int64(&'a [i64]),
    /// `FLOAT`
    Float(&'a [f32]),
    /// `DOUBLE`
    Double(&'a [f64]),
    /// `VARCHAR`
    VarChar(&'a [String]),
    /// `JSON`: one UTF-8 JSON document per row.
    Json(&'a [Vec<u8>]),
}

impl ColumnView<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnView::Bool(v) => v.len(),
            ColumnView::Int8(v) => v.len(),
            ColumnView::Int16(v) => v.len(),
            ColumnView::Int32(v) => v.len(),
            ColumnView::Int64(v) => v.len(),
            ColumnView::Float(v) => v.len(),
            ColumnView::Double(v) => v.len(),
            ColumnView::VarChar(v) => v.len(),
            ColumnView::Json(v) => v.len(),
        }
    }

    /// `true` when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column's scalar type.
    pub fn scalar_type(&self) -> ScalarType {
        match self {
            ColumnView::Bool(_) => ScalarType::Bool,
            ColumnView::Int8(_) => ScalarType::Int8,
            ColumnView::Int16(_) => ScalarType::Int16,
            ColumnView::Int32(_) => ScalarType::Int32,
            ColumnView::Int64(_) => ScalarType::Int64,
            ColumnView::Float(_) => ScalarType::Float,
            ColumnView::Double(_) => ScalarType::Double,
            ColumnView::VarChar(_) => ScalarType::VarChar,
            ColumnView::Json(_) => ScalarType::Json,
        }
    }
}

/// The columns of one segment, as the store exposes them to the evaluator.
pub trait Columns {
    /// Number of rows in the segment; every column has this length.
    fn num_rows(&self) -> usize;
    /// The column of `field`, or `None` if there is none.
    fn column(&self, field: &str) -> Option<ColumnView<'_>>;
}

/// A simple [`Columns`] implementation: named column views of a fixed row count.
#[derive(Debug, Clone, Default)]
pub struct ColumnMap<'a> {
    num_rows: usize,
    columns: Vec<(String, ColumnView<'a>)>,
}

impl<'a> ColumnMap<'a> {
    /// An empty map for `num_rows` rows.
    pub fn new(num_rows: usize) -> ColumnMap<'a> {
        ColumnMap {
            num_rows,
            columns: Vec::new(),
        }
    }

    /// Adds (or replaces) the column `name`.
    pub fn with(mut self, name: &str, view: ColumnView<'a>) -> ColumnMap<'a> {
        self.columns.retain(|(n, _)| n != name);
        self.columns.push((name.to_string(), view));
        self
    }
}

impl Columns for ColumnMap<'_> {
    fn num_rows(&self) -> usize {
        self.num_rows
    }

    fn column(&self, field: &str) -> Option<ColumnView<'_>> {
        self.columns
            .iter()
            .find(|(n, _)| n == field)
            .map(|(_, v)| *v)
    }
}

impl CheckedExpr {
    /// Evaluates the expression over every row of `columns` and returns the matching rows.
    ///
    /// Evaluation is column-at-a-time: each leaf predicate runs one tight loop over its
    /// column producing 64 rows per bitmap word, and `and` / `or` / `not` combine bitmaps
    /// word-wise (an `and` stops early once no row is left, an `or` once every row is set).
    /// JSON predicates parse each row's document.
    ///
    /// # Errors
    /// [`ExprError::MissingColumn`], [`ExprError::ColumnTypeMismatch`] or
    /// [`ExprError::ColumnLength`] when `columns` does not match the schema the expression
    /// was checked against; [`ExprError::InvalidOperand`] for a hand-built predicate whose
    /// constant does not fit its field.
    pub fn evaluate<C: Columns + ?Sized>(&self, columns: &C) -> Result<Bitmap, ExprError> {
        eval(&self.predicate, columns, columns.num_rows())
    }
}

fn column<'c, C: Columns + ?Sized>(
    cols: &'c C,
    f: &FieldRef,
    n: usize,
) -> Result<ColumnView<'c>, ExprError> {
    let view = cols
        .column(&f.name)
        .ok_or_else(|| ExprError::MissingColumn {
            offset: f.offset,
            field: f.name.clone(),
        })?;
    if view.scalar_type() != f.ty {
        return Err(ExprError::ColumnTypeMismatch {
            offset: f.offset,
            field: f.name.clone(),
            expected: f.ty.name().to_string(),
            found: view.scalar_type().name().to_string(),
        });
    }
    if view.len() != n {
        return Err(ExprError::ColumnLength {
            offset: f.offset,
            field: f.name.clone(),
            expected: n,
            found: view.len(),
        });
    }
    Ok(view)
}

fn bad_value(f: &FieldRef) -> ExprError {
    ExprError::InvalidOperand {
        offset: f.offset,
        reason: format!("constant does not fit field {} of type {}", f.name, f.ty),
    }
}

/// Runs `f` on every element, packing the results 64 per word. The fixed-size inner loop
/// lets the compiler vectorize the comparison and the packing.
#[inline(always)]
fn map_bits<T, F: Fn(&T) -> bool>(xs: &[T], f: F) -> Bitmap {
    let len = xs.len();
    let mut words = Vec::with_capacity(len.div_ceil(64));
    let chunks = xs.chunks_exact(64);
    let rem = chunks.remainder();
    for chunk in chunks {
        let mut w = 0u64;
        for (i, x) in chunk.iter().enumerate() {
            w |= u64::from(f(x)) << i;
        }
        words.push(w);
    }
    if !rem.is_empty() {
        let mut w = 0u64;
        for (i, x) in rem.iter().enumerate() {
            w |= u64::from(f(x)) << i;
        }
        words.push(w);
    }
    Bitmap::from_words(words, len)
}

/// Comparison of a column against a constant, the operator hoisted out of the loop.
macro_rules! cmp_bits {
    ($xs:expr, $conv:ty, $op:expr, $v:expr) => {{
        let v = $v;
        match $op {
            CmpOp::Eq => map_bits($xs, |&x| (x as $conv) == v),
            CmpOp::Ne => map_bits($xs, |&x| (x as $conv) != v),
            CmpOp::Lt => map_bits($xs, |&x| (x as $conv) < v),
            CmpOp::Le => map_bits($xs, |&x| (x as $conv) <= v),
            CmpOp::Gt => map_bits($xs, |&x| (x as $conv) > v),
            CmpOp::Ge => map_bits($xs, |&x| (x as $conv) >= v),
        }
    }};
}

/// Dispatches over the integer column variants, binding the slice to `$xs`.
macro_rules! with_ints {
    ($view:expr, $xs:ident => $body:expr, _ => $other:expr) => {
        match $view {
            ColumnView::Int8($xs) => $body,
            ColumnView::Int16($xs) => $body,
            ColumnView::Int32($xs) => $body,
            ColumnView::Int64($xs) => $body,
            _ => $other,
        }
    };
}

/// Dispatches over the float column variants.
macro_rules! with_floats {
    ($view:expr, $xs:ident => $body:expr, _ => $other:expr) => {
        match $view {
            ColumnView::Float($xs) => $body,
            ColumnView::Double($xs) => $body,
            _ => $other,
        }
    };
}

/// Evaluates one node. Only `not` / `and` / `or` recurse; they and the leaves have their
/// own functions so that the frames on the recursion path stay small in debug builds.
fn eval<C: Columns + ?Sized>(p: &Predicate, cols: &C, n: usize) -> Result<Bitmap, ExprError> {
    match p {
        Predicate::Not(inner) => eval_not(inner, cols, n),
        Predicate::And(items) => eval_and(items, cols, n),
        Predicate::Or(items) => eval_or(items, cols, n),
        _ => eval_leaf(p, cols, n),
    }
}

fn eval_not<C: Columns + ?Sized>(p: &Predicate, cols: &C, n: usize) -> Result<Bitmap, ExprError> {
    let mut b = eval(p, cols, n)?;
    b.negate();
    Ok(b)
}

fn eval_and<C: Columns + ?Sized>(
    items: &[Predicate],
    cols: &C,
    n: usize,
) -> Result<Bitmap, ExprError> {
    let mut acc: Option<Bitmap> = None;
    for item in items {
        let b = eval(item, cols, n)?;
        match &mut acc {
            None => acc = Some(b),
            Some(a) => a.and_assign(&b),
        }
        if acc.as_ref().is_some_and(Bitmap::none) {
            break;
        }
    }
    Ok(acc.unwrap_or_else(|| Bitmap::ones(n)))
}

fn eval_or<C: Columns + ?Sized>(
    items: &[Predicate],
    cols: &C,
    n: usize,
) -> Result<Bitmap, ExprError> {
    let mut acc: Option<Bitmap> = None;
    for item in items {
        let b = eval(item, cols, n)?;
        match &mut acc {
            None => acc = Some(b),
            Some(a) => a.or_assign(&b),
        }
        if acc.as_ref().is_some_and(Bitmap::all) {
            break;
        }
    }
    Ok(acc.unwrap_or_else(|| Bitmap::zeros(n)))
}

fn eval_leaf<C: Columns + ?Sized>(p: &Predicate, cols: &C, n: usize) -> Result<Bitmap, ExprError> {
    Ok(match p {
        Predicate::Const(true) => Bitmap::ones(n),
        Predicate::Const(false) => Bitmap::zeros(n),
        Predicate::Compare { field, op, value } => {
            let view = column(cols, field, n)?;
            compare(view, *op, value).ok_or_else(|| bad_value(field))?
        }
        Predicate::Range {
            field,
            lower,
            upper,
        } => {
            let view = column(cols, field, n)?;
            range(view, lower, upper).ok_or_else(|| bad_value(field))?
        }
        Predicate::In {
            field,
            set,
            negated,
        } => {
            let view = column(cols, field, n)?;
            let mut b = term(view, set).ok_or_else(|| bad_value(field))?;
            if *negated {
                b.negate();
            }
            b
        }
        Predicate::Like { field, pattern } => match column(cols, field, n)? {
            ColumnView::VarChar(xs) => like(xs, pattern),
            _ => return Err(bad_value(field)),
        },
        Predicate::FieldCompare { left, op, right } => {
            let a = column(cols, left, n)?;
            let b = column(cols, right, n)?;
            field_compare(a, *op, b).ok_or_else(|| bad_value(right))?
        }
        Predicate::Arith {
            field,
            arith,
            operand,
            field_on_left,
            op,
            value,
        } => {
            let view = column(cols, field, n)?;
            arith_bits(view, *arith, operand, *field_on_left, *op, value)
                .ok_or_else(|| bad_value(field))?
        }
        Predicate::Json { field, path, test } => match column(cols, field, n)? {
            ColumnView::Json(docs) => map_bits(docs, |d| json::matches(d, path, test)),
            _ => return Err(bad_value(field)),
        },
        Predicate::Not(_) | Predicate::And(_) | Predicate::Or(_) => eval(p, cols, n)?,
    })
}

fn compare(view: ColumnView<'_>, op: CmpOp, value: &Value) -> Option<Bitmap> {
    Some(match (view, value) {
        (ColumnView::Bool(xs), Value::Bool(b)) => cmp_any(xs, op, b),
        (ColumnView::VarChar(xs), Value::Str(s)) => {
            let s = s.as_str();
            match op {
                CmpOp::Eq => map_bits(xs, |x| x.as_str() == s),
                CmpOp::Ne => map_bits(xs, |x| x.as_str() != s),
                _ => map_bits(xs, |x| op.apply(x.as_str(), s)),
            }
        }
        (_, Value::Int(v)) => with_ints!(view, xs => cmp_bits!(xs, i64, op, *v), _ => return None),
        (_, Value::Float(v)) => {
            with_floats!(view, xs => cmp_bits!(xs, f64, op, *v), _ => return None)
        }
        _ => return None,
    })
}

fn cmp_any<T: PartialOrd>(xs: &[T], op: CmpOp, v: &T) -> Bitmap {
    map_bits(xs, |x| op.apply(x, v))
}

/// Inclusive `i64` bounds from `Bound`s; `None` when the range is empty.
fn int_bounds(lower: &Bound<Value>, upper: &Bound<Value>) -> Option<Option<(i64, i64)>> {
    let lo = match lower {
        Bound::Unbounded => Some(i64::MIN),
        Bound::Included(Value::Int(v)) => Some(*v),
        Bound::Excluded(Value::Int(v)) => v.checked_add(1),
        _ => return None,
    };
    let hi = match upper {
        Bound::Unbounded => Some(i64::MAX),
        Bound::Included(Value::Int(v)) => Some(*v),
        Bound::Excluded(Value::Int(v)) => v.checked_sub(1),
        _ => return None,
    };
    Some(match (lo, hi) {
        (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
        _ => None,
    })
}

fn float_bound(b: &Bound<Value>, unbounded: f64) -> Option<(f64, bool)> {
    match b {
        Bound::Unbounded => Some((unbounded, true)),
        Bound::Included(Value::Float(v)) => Some((*v, true)),
        Bound::Excluded(Value::Float(v)) => Some((*v, false)),
        Bound::Included(Value::Int(v)) => Some((*v as f64, true)),
        Bound::Excluded(Value::Int(v)) => Some((*v as f64, false)),
        _ => None,
    }
}

fn generic_range<T: PartialOrd + ?Sized>(x: &T, lower: &Bound<&T>, upper: &Bound<&T>) -> bool {
    let lo = match lower {
        Bound::Unbounded => true,
        Bound::Included(v) => x >= *v,
        Bound::Excluded(v) => x > *v,
    };
    lo && match upper {
        Bound::Unbounded => true,
        Bound::Included(v) => x <= *v,
        Bound::Excluded(v) => x < *v,
    }
}

fn range(view: ColumnView<'_>, lower: &Bound<Value>, upper: &Bound<Value>) -> Option<Bitmap> {
    let n = view.len();
    match view {
        ColumnView::Int8(_)
        | ColumnView::Int16(_)
        | ColumnView::Int32(_)
        | ColumnView::Int64(_) => {
            let Some((lo, hi)) = int_bounds(lower, upper)? else {
                return Some(Bitmap::zeros(n));
            };
            // One unsigned comparison per row: lo <= x <= hi  <=>  (x - lo) as u64 <= hi - lo.
            let span = hi.wrapping_sub(lo) as u64;
            Some(with_ints!(view,
                xs => map_bits(xs, |&x| ((x as i64).wrapping_sub(lo) as u64) <= span),
                _ => return None))
        }
        ColumnView::Float(_) | ColumnView::Double(_) => {
            let (lo, lo_inc) = float_bound(lower, f64::NEG_INFINITY)?;
            let (hi, hi_inc) = float_bound(upper, f64::INFINITY)?;
            Some(with_floats!(view, xs => match (lo_inc, hi_inc) {
                (true, true) => map_bits(xs, |&x| (x as f64) >= lo && (x as f64) <= hi),
                (true, false) => map_bits(xs, |&x| (x as f64) >= lo && (x as f64) < hi),
                (false, true) => map_bits(xs, |&x| (x as f64) > lo && (x as f64) <= hi),
                (false, false) => map_bits(xs, |&x| (x as f64) > lo && (x as f64) < hi),
            }, _ => return None))
        }
        ColumnView::VarChar(xs) => {
            let lo = str_bound(lower)?;
            let hi = str_bound(upper)?;
            Some(map_bits(xs, |x| generic_range(x.as_str(), &lo, &hi)))
        }
        ColumnView::Bool(xs) => {
            let lo = bool_bound(lower)?;
            let hi = bool_bound(upper)?;
            Some(map_bits(xs, |x| {
                generic_range(x, &lo.as_ref(), &hi.as_ref())
            }))
        }
        ColumnView::Json(_) => None,
    }
}

fn str_bound(b: &Bound<Value>) -> Option<Bound<&str>> {
    Some(match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(Value::Str(s)) => Bound::Included(s.as_str()),
        Bound::Excluded(Value::Str(s)) => Bound::Excluded(s.as_str()),
        _ => return None,
    })
}

fn bool_bound(b: &Bound<Value>) -> Option<Bound<bool>> {
    Some(match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(Value::Bool(v)) => Bound::Included(*v),
        Bound::Excluded(Value::Bool(v)) => Bound::Excluded(*v),
        _ => return None,
    })
}

/// Largest value span (in bits) for which an `in` list becomes a bit table.
const MAX_TABLE_BITS: u64 = 1 << 22;
/// Lists up to this size are tested by a linear scan.
const LINEAR_IN: usize = 8;

fn term(view: ColumnView<'_>, set: &ValueSet) -> Option<Bitmap> {
    let n = view.len();
    Some(match (view, set) {
        (
            ColumnView::Bool(xs),
            ValueSet::Bool {
                has_true,
                has_false,
            },
        ) => {
            let (t, f) = (*has_true, *has_false);
            map_bits(xs, |&x| if x { t } else { f })
        }
        (ColumnView::VarChar(xs), ValueSet::Str(vals)) => {
            if vals.len() <= LINEAR_IN {
                map_bits(xs, |x| vals.iter().any(|v| v == x))
            } else {
                let set: HashSet<&str> = vals.iter().map(String::as_str).collect();
                map_bits(xs, |x| set.contains(x.as_str()))
            }
        }
        (_, ValueSet::Int(vals)) => {
            let (Some(&min), Some(&max)) = (vals.first(), vals.last()) else {
                return Some(Bitmap::zeros(n));
            };
            let span = max.wrapping_sub(min) as u64;
            if vals.len() <= LINEAR_IN {
                with_ints!(view, xs => map_bits(xs, |&x| vals.contains(&(x as i64))), _ => return None)
            } else if span < MAX_TABLE_BITS && span / 64 <= (n as u64) + 1024 {
                let mut table = vec![0u64; (span / 64 + 1) as usize];
                for &v in vals {
                    let d = v.wrapping_sub(min) as u64;
                    table[(d / 64) as usize] |= 1 << (d % 64);
                }
                with_ints!(view, xs => map_bits(xs, |&x| {
                    let d = (x as i64).wrapping_sub(min) as u64;
                    d <= span && (table[(d / 64) as usize] >> (d % 64)) & 1 == 1
                }), _ => return None)
            } else {
                with_ints!(view, xs => map_bits(xs, |&x| vals.binary_search(&(x as i64)).is_ok()),
                    _ => return None)
            }
        }
        (_, ValueSet::Float(vals)) => {
            if vals.len() <= LINEAR_IN {
                with_floats!(view, xs => map_bits(xs, |&x| vals.contains(&(x as f64))), _ => return None)
            } else {
                with_floats!(view, xs => map_bits(xs, |&x| {
                    let x = x as f64;
                    !x.is_nan() && vals.binary_search_by(|v| v.total_cmp(&x)).is_ok()
                }), _ => return None)
            }
        }
        _ => return None,
    })
}

fn like(xs: &[String], p: &LikePattern) -> Bitmap {
    match p.kind() {
        LikeKind::Exact(t) => map_bits(xs, |s| s == t),
        LikeKind::Prefix(t) => {
            let t = t.as_bytes();
            map_bits(xs, |s| s.as_bytes().starts_with(t))
        }
        LikeKind::Suffix(t) => {
            let t = t.as_bytes();
            map_bits(xs, |s| s.as_bytes().ends_with(t))
        }
        LikeKind::Any => Bitmap::ones(xs.len()),
        LikeKind::Contains(_) | LikeKind::General => map_bits(xs, |s| p.matches(s)),
    }
}

fn to_i64s(view: ColumnView<'_>) -> Option<Vec<i64>> {
    with_ints!(view, xs => Some(xs.iter().map(|&x| x as i64).collect()), _ => None)
}

fn to_f64s(view: ColumnView<'_>) -> Option<Vec<f64>> {
    match view {
        ColumnView::Float(xs) => Some(xs.iter().map(|&x| f64::from(x)).collect()),
        ColumnView::Double(xs) => Some(xs.to_vec()),
        _ => to_i64s(view).map(|v| v.into_iter().map(|x| x as f64).collect()),
    }
}

fn zip_bits<T>(a: &[T], b: &[T], op: CmpOp) -> Bitmap
where
    T: PartialOrd,
{
    Bitmap::from_fn(a.len().min(b.len()), |i| op.apply(&a[i], &b[i]))
}

fn field_compare(a: ColumnView<'_>, op: CmpOp, b: ColumnView<'_>) -> Option<Bitmap> {
    Some(match (a, b) {
        (ColumnView::Bool(x), ColumnView::Bool(y)) => zip_bits(x, y, op),
        (ColumnView::VarChar(x), ColumnView::VarChar(y)) => zip_bits(x, y, op),
        _ if a.scalar_type().is_integer() && b.scalar_type().is_integer() => {
            zip_bits(&to_i64s(a)?, &to_i64s(b)?, op)
        }
        _ if a.scalar_type().is_numeric() && b.scalar_type().is_numeric() => {
            zip_bits(&to_f64s(a)?, &to_f64s(b)?, op)
        }
        _ => return None,
    })
}

/// `field arith operand op value`, exact for integers (128-bit intermediate), in the
/// column's precision for floats.
fn arith_bits(
    view: ColumnView<'_>,
    arith: ArithOp,
    operand: &Value,
    field_on_left: bool,
    op: CmpOp,
    value: &Value,
) -> Option<Bitmap> {
    match (operand, value) {
        (Value::Int(c), Value::Int(v)) if view.scalar_type().is_integer() => {
            let (c, v) = (*c, *v);
            let v128 = i128::from(v);
            macro_rules! go {
                ($f:expr) => {
                    with_ints!(view, xs => {
                        let f = $f;
                        match op {
                            CmpOp::Eq => map_bits(xs, |&x| f(x as i64) == v128),
                            CmpOp::Ne => map_bits(xs, |&x| f(x as i64) != v128),
                            CmpOp::Lt => map_bits(xs, |&x| f(x as i64) < v128),
                            CmpOp::Le => map_bits(xs, |&x| f(x as i64) <= v128),
                            CmpOp::Gt => map_bits(xs, |&x| f(x as i64) > v128),
                            CmpOp::Ge => map_bits(xs, |&x| f(x as i64) >= v128),
                        }
                    }, _ => return None)
                };
            }
            let c128 = i128::from(c);
            Some(match (arith, field_on_left) {
                (ArithOp::Add, _) => go!(|x: i64| i128::from(x) + c128),
                (ArithOp::Mul, _) => go!(|x: i64| i128::from(x) * c128),
                (ArithOp::Sub, true) => go!(|x: i64| i128::from(x) - c128),
                (ArithOp::Sub, false) => go!(|x: i64| c128 - i128::from(x)),
                (ArithOp::Div, true) if c != 0 && c != -1 => go!(|x: i64| i128::from(x / c)),
                (ArithOp::Mod, true) if c != 0 && c != -1 => go!(|x: i64| i128::from(x % c)),
                (ArithOp::Div, true) if c == -1 => go!(|x: i64| -i128::from(x)),
                (ArithOp::Mod, true) if c == -1 => go!(|_x: i64| 0i128),
                _ => return None,
            })
        }
        (Value::Float(c), Value::Float(v)) => {
            macro_rules! go {
                ($xs:expr, $t:ty) => {{
                    let (c, v) = (*c as $t, *v as $t);
                    let f = |x: $t| -> $t {
                        match (arith, field_on_left) {
                            (ArithOp::Add, _) => x + c,
                            (ArithOp::Mul, _) => x * c,
                            (ArithOp::Sub, true) => x - c,
                            (ArithOp::Sub, false) => c - x,
                            (ArithOp::Div, _) => x / c,
                            (ArithOp::Mod, _) => x % c,
                            (ArithOp::Pow, _) => <$t>::NAN,
                        }
                    };
                    match op {
                        CmpOp::Eq => map_bits($xs, |&x| f(x) == v),
                        CmpOp::Ne => map_bits($xs, |&x| f(x) != v),
                        CmpOp::Lt => map_bits($xs, |&x| f(x) < v),
                        CmpOp::Le => map_bits($xs, |&x| f(x) <= v),
                        CmpOp::Gt => map_bits($xs, |&x| f(x) > v),
                        CmpOp::Ge => map_bits($xs, |&x| f(x) >= v),
                    }
                }};
            }
            if !field_on_left && matches!(arith, ArithOp::Div | ArithOp::Mod) {
                return None;
            }
            match view {
                ColumnView::Float(xs) => Some(go!(xs, f32)),
                ColumnView::Double(xs) => Some(go!(xs, f64)),
                _ => None,
            }
        }
        _ => None,
    }
}
