//! Scalar indexes on sealed segments, built on first use and chosen per query when they pay.
//!
//! - integer fields (and an INT64 primary key): rows sorted by value, for `==`, `<`, `<=`,
//!   `>`, `>=`, ranges (`1 < age <= 5`) and `in [...]`;
//! - VARCHAR fields: a hash map from value to rows, for `==` and `in [...]`.
//!
//! The planner looks for one such condition among the top-level conjuncts of the filter.
//! The index gives the exact number of rows it admits; when that is at most 1/64 of the
//! segment, only those rows are gathered and the whole filter is evaluated on them
//! (exact: a row outside the conjunct's rows fails the conjunct). Otherwise the vectorised
//! scan of the whole column is as cheap, and the planner declines.

use crate::segment::Segment;
use facedb_expr::{
    Bitmap, CheckedExpr, CmpOp, ColumnMap, ColumnView, Columns, Predicate, Value, ValueSet,
};
use rustc_hash::FxHashMap;
use std::ops::Bound;
use std::sync::Arc;

/// An index over one column of one sealed segment.
pub(crate) enum ScalarIndex {
    /// `(value, row)` sorted by value then row.
    Int(Vec<(i64, u32)>),
    /// Rows of each value, ascending.
    Str(FxHashMap<String, Vec<u32>>),
}

impl ScalarIndex {
    fn build(col: &ColumnView<'_>) -> Option<ScalarIndex> {
        fn sorted<T: Copy + Into<i64>>(v: &[T]) -> ScalarIndex {
            let mut out: Vec<(i64, u32)> = v
                .iter()
                .enumerate()
                .map(|(r, x)| ((*x).into(), r as u32))
                .collect();
            out.sort_unstable();
            ScalarIndex::Int(out)
        }
        Some(match col {
            ColumnView::Int8(v) => sorted(v),
            ColumnView::Int16(v) => sorted(v),
            ColumnView::Int32(v) => sorted(v),
            ColumnView::Int64(v) => sorted(v),
            ColumnView::VarChar(v) => {
                let mut m: FxHashMap<String, Vec<u32>> = FxHashMap::default();
                for (r, s) in v.iter().enumerate() {
                    m.entry(s.clone()).or_default().push(r as u32);
                }
                ScalarIndex::Str(m)
            }
            _ => return None,
        })
    }

    /// Rows with a value in `lo..=hi` (integer index).
    fn int_range(&self, lo: i64, hi: i64) -> &[(i64, u32)] {
        match self {
            ScalarIndex::Int(v) if lo <= hi => {
                let a = v.partition_point(|(x, _)| *x < lo);
                let b = v.partition_point(|(x, _)| *x <= hi);
                &v[a..b]
            }
            _ => &[],
        }
    }
}

/// Lazily built indexes of a segment, by field name.
#[derive(Default)]
pub(crate) struct SegmentIndexes {
    by_field: parking_lot::Mutex<FxHashMap<String, Arc<ScalarIndex>>>,
}

impl SegmentIndexes {
    fn get(&self, field: &str, cols: &dyn Columns) -> Option<Arc<ScalarIndex>> {
        let mut m = self.by_field.lock();
        if let Some(ix) = m.get(field) {
            return Some(ix.clone());
        }
        let ix = Arc::new(ScalarIndex::build(&cols.column(field)?)?);
        m.insert(field.to_string(), ix.clone());
        Some(ix)
    }
}

/// Candidate rows (sorted) of one indexable condition, or `None` when the condition has no
/// index or admits more than `limit` rows.
fn candidates(p: &Predicate, seg: &Segment, cols: &dyn Columns, limit: usize) -> Option<Vec<u32>> {
    let int_bounds = |lower: &Bound<Value>, upper: &Bound<Value>| -> Option<(i64, i64)> {
        let lo = match lower {
            Bound::Unbounded => i64::MIN,
            Bound::Included(Value::Int(v)) => *v,
            Bound::Excluded(Value::Int(v)) => v.checked_add(1)?,
            _ => return None,
        };
        let hi = match upper {
            Bound::Unbounded => i64::MAX,
            Bound::Included(Value::Int(v)) => *v,
            Bound::Excluded(Value::Int(v)) => v.checked_sub(1)?,
            _ => return None,
        };
        Some((lo, hi))
    };
    let collect = |parts: Vec<&[(i64, u32)]>| -> Option<Vec<u32>> {
        if parts.iter().map(|p| p.len()).sum::<usize>() > limit {
            return None;
        }
        let mut rows: Vec<u32> = parts
            .iter()
            .flat_map(|p| p.iter().map(|(_, r)| *r))
            .collect();
        rows.sort_unstable();
        rows.dedup();
        Some(rows)
    };
    match p {
        Predicate::Compare {
            field,
            op,
            value: Value::Int(v),
        } if field.ty.is_integer() => {
            let (lo, hi) = match op {
                CmpOp::Eq => (*v, *v),
                CmpOp::Lt => (i64::MIN, v.checked_sub(1)?),
                CmpOp::Le => (i64::MIN, *v),
                CmpOp::Gt => (v.checked_add(1)?, i64::MAX),
                CmpOp::Ge => (*v, i64::MAX),
                CmpOp::Ne => return None,
            };
            let ix = seg.indexes.get(&field.name, cols)?;
            collect(vec![ix.int_range(lo, hi)])
        }
        Predicate::Range {
            field,
            lower,
            upper,
        } if field.ty.is_integer() => {
            let (lo, hi) = int_bounds(lower, upper)?;
            let ix = seg.indexes.get(&field.name, cols)?;
            collect(vec![ix.int_range(lo, hi)])
        }
        Predicate::In {
            field,
            set: ValueSet::Int(vals),
            negated: false,
        } if field.ty.is_integer() => {
            let ix = seg.indexes.get(&field.name, cols)?;
            collect(vals.iter().map(|v| ix.int_range(*v, *v)).collect())
        }
        Predicate::Compare {
            field,
            op: CmpOp::Eq,
            value: Value::Str(s),
        } => str_rows(seg, cols, &field.name, std::slice::from_ref(s), limit),
        Predicate::In {
            field,
            set: ValueSet::Str(vals),
            negated: false,
        } => str_rows(seg, cols, &field.name, vals, limit),
        Predicate::And(children) => {
            // The most selective indexable conjunct.
            children
                .iter()
                .filter_map(|c| candidates(c, seg, cols, limit))
                .min_by_key(|r| r.len())
        }
        _ => None,
    }
}

fn str_rows(
    seg: &Segment,
    cols: &dyn Columns,
    field: &str,
    vals: &[String],
    limit: usize,
) -> Option<Vec<u32>> {
    let ix = seg.indexes.get(field, cols)?;
    let ScalarIndex::Str(m) = &*ix else {
        return None;
    };
    let lists: Vec<&Vec<u32>> = vals.iter().filter_map(|v| m.get(v)).collect();
    if lists.iter().map(|l| l.len()).sum::<usize>() > limit {
        return None;
    }
    let mut rows: Vec<u32> = lists.into_iter().flatten().copied().collect();
    rows.sort_unstable();
    rows.dedup();
    Some(rows)
}

/// Owned copy of some rows of a column.
enum Gathered {
    Bool(Vec<bool>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    VarChar(Vec<String>),
    Json(Vec<Vec<u8>>),
}

impl Gathered {
    fn of(col: &ColumnView<'_>, rows: &[u32]) -> Gathered {
        fn g<T: Clone>(v: &[T], rows: &[u32]) -> Vec<T> {
            rows.iter().map(|r| v[*r as usize].clone()).collect()
        }
        match col {
            ColumnView::Bool(v) => Gathered::Bool(g(v, rows)),
            ColumnView::Int8(v) => Gathered::Int8(g(v, rows)),
            ColumnView::Int16(v) => Gathered::Int16(g(v, rows)),
            ColumnView::Int32(v) => Gathered::Int32(g(v, rows)),
            ColumnView::Int64(v) => Gathered::Int64(g(v, rows)),
            ColumnView::Float(v) => Gathered::Float(g(v, rows)),
            ColumnView::Double(v) => Gathered::Double(g(v, rows)),
            ColumnView::VarChar(v) => Gathered::VarChar(g(v, rows)),
            ColumnView::Json(v) => Gathered::Json(g(v, rows)),
        }
    }

    fn view(&self) -> ColumnView<'_> {
        match self {
            Gathered::Bool(v) => ColumnView::Bool(v),
            Gathered::Int8(v) => ColumnView::Int8(v),
            Gathered::Int16(v) => ColumnView::Int16(v),
            Gathered::Int32(v) => ColumnView::Int32(v),
            Gathered::Int64(v) => ColumnView::Int64(v),
            Gathered::Float(v) => ColumnView::Float(v),
            Gathered::Double(v) => ColumnView::Double(v),
            Gathered::VarChar(v) => ColumnView::VarChar(v),
            Gathered::Json(v) => ColumnView::Json(v),
        }
    }
}

/// The filter's bitmap for a sealed segment through a scalar index, or `None` when no index
/// pays (the caller then evaluates the whole column).
pub(crate) fn indexed_bitmap(
    expr: &CheckedExpr,
    seg: &Segment,
    cols: &dyn Columns,
) -> Option<Result<Bitmap, facedb_expr::ExprError>> {
    let n = seg.rows();
    let rows = candidates(expr.predicate(), seg, cols, n / 64)?;
    let fields = expr.fields();
    let gathered: Vec<(String, Gathered)> = fields
        .iter()
        .filter_map(|f| {
            cols.column(f)
                .map(|c| (f.to_string(), Gathered::of(&c, &rows)))
        })
        .collect();
    let mut map = ColumnMap::new(rows.len());
    for (name, g) in &gathered {
        map = map.with(name, g.view());
    }
    Some(expr.evaluate(&map).map(|sub| {
        let mut out = Bitmap::zeros(n);
        for i in sub.iter_ones() {
            out.set(rows[i] as usize, true);
        }
        out
    }))
}
