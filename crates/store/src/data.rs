//! Values, columns and batches of rows.

use crate::error::{Result, StoreError};
use crate::schema::{CollectionSchema, DataType, FieldSchema};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A primary key: INT64 or VARCHAR, as the schema says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PrimaryKey {
    /// INT64 key.
    Int(i64),
    /// VARCHAR key.
    Str(String),
}

impl fmt::Display for PrimaryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrimaryKey::Int(v) => write!(f, "{v}"),
            PrimaryKey::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One field value of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// BOOL.
    Bool(bool),
    /// Any integer field (INT8..INT64), range-checked against the field on insert.
    Int(i64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// VARCHAR.
    String(String),
    /// JSON document as UTF-8 bytes.
    Json(Vec<u8>),
    /// FLOAT_VECTOR.
    FloatVector(Vec<f32>),
}

/// One column of values (all rows of one field), column-wise as Milvus's `FieldData`.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// BOOL values.
    Bool(Vec<bool>),
    /// INT8 values.
    Int8(Vec<i8>),
    /// INT16 values.
    Int16(Vec<i16>),
    /// INT32 values.
    Int32(Vec<i32>),
    /// INT64 values.
    Int64(Vec<i64>),
    /// FLOAT values.
    Float(Vec<f32>),
    /// DOUBLE values.
    Double(Vec<f64>),
    /// VARCHAR values.
    VarChar(Vec<String>),
    /// JSON documents (UTF-8 bytes each).
    Json(Vec<Vec<u8>>),
    /// FLOAT_VECTOR values: `rows × dim`, row-major.
    FloatVector {
        /// Dimension of every vector.
        dim: usize,
        /// `rows × dim` values.
        data: Vec<f32>,
    },
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Bool(v) => v.len(),
            ColumnData::Int8(v) => v.len(),
            ColumnData::Int16(v) => v.len(),
            ColumnData::Int32(v) => v.len(),
            ColumnData::Int64(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Double(v) => v.len(),
            ColumnData::VarChar(v) => v.len(),
            ColumnData::Json(v) => v.len(),
            ColumnData::FloatVector { dim, data } => {
                if *dim == 0 {
                    0
                } else {
                    data.len() / dim
                }
            }
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty column for a field type.
    pub fn empty(dt: &DataType) -> ColumnData {
        match dt {
            DataType::Bool => ColumnData::Bool(vec![]),
            DataType::Int8 => ColumnData::Int8(vec![]),
            DataType::Int16 => ColumnData::Int16(vec![]),
            DataType::Int32 => ColumnData::Int32(vec![]),
            DataType::Int64 => ColumnData::Int64(vec![]),
            DataType::Float => ColumnData::Float(vec![]),
            DataType::Double => ColumnData::Double(vec![]),
            DataType::VarChar { .. } => ColumnData::VarChar(vec![]),
            DataType::Json => ColumnData::Json(vec![]),
            DataType::FloatVector { dim } => ColumnData::FloatVector {
                dim: *dim as usize,
                data: vec![],
            },
        }
    }

    /// An empty column of the same type.
    pub fn empty_like(&self) -> ColumnData {
        match self {
            ColumnData::Bool(_) => ColumnData::Bool(vec![]),
            ColumnData::Int8(_) => ColumnData::Int8(vec![]),
            ColumnData::Int16(_) => ColumnData::Int16(vec![]),
            ColumnData::Int32(_) => ColumnData::Int32(vec![]),
            ColumnData::Int64(_) => ColumnData::Int64(vec![]),
            ColumnData::Float(_) => ColumnData::Float(vec![]),
            ColumnData::Double(_) => ColumnData::Double(vec![]),
            ColumnData::VarChar(_) => ColumnData::VarChar(vec![]),
            ColumnData::Json(_) => ColumnData::Json(vec![]),
            ColumnData::FloatVector { dim, .. } => ColumnData::FloatVector {
                dim: *dim,
                data: vec![],
            },
        }
    }

    /// The value at `row`. Panics if `row >= len()`.
    pub fn value(&self, row: usize) -> Value {
        match self {
            ColumnData::Bool(v) => Value::Bool(v[row]),
            ColumnData::Int8(v) => Value::Int(v[row] as i64),
            ColumnData::Int16(v) => Value::Int(v[row] as i64),
            ColumnData::Int32(v) => Value::Int(v[row] as i64),
            ColumnData::Int64(v) => Value::Int(v[row]),
            ColumnData::Float(v) => Value::Float(v[row]),
            ColumnData::Double(v) => Value::Double(v[row]),
            ColumnData::VarChar(v) => Value::String(v[row].clone()),
            ColumnData::Json(v) => Value::Json(v[row].clone()),
            ColumnData::FloatVector { dim, data } => {
                Value::FloatVector(data[row * dim..(row + 1) * dim].to_vec())
            }
        }
    }

    /// Appends rows `rows` of `other` (same variant) to `self`.
    pub(crate) fn extend_rows(&mut self, other: &ColumnData, rows: impl Iterator<Item = usize>) {
        macro_rules! ext {
            ($a:expr, $b:expr) => {
                for r in rows {
                    $a.push($b[r].clone());
                }
            };
        }
        match (self, other) {
            (ColumnData::Bool(a), ColumnData::Bool(b)) => ext!(a, b),
            (ColumnData::Int8(a), ColumnData::Int8(b)) => ext!(a, b),
            (ColumnData::Int16(a), ColumnData::Int16(b)) => ext!(a, b),
            (ColumnData::Int32(a), ColumnData::Int32(b)) => ext!(a, b),
            (ColumnData::Int64(a), ColumnData::Int64(b)) => ext!(a, b),
            (ColumnData::Float(a), ColumnData::Float(b)) => ext!(a, b),
            (ColumnData::Double(a), ColumnData::Double(b)) => ext!(a, b),
            (ColumnData::VarChar(a), ColumnData::VarChar(b)) => ext!(a, b),
            (ColumnData::Json(a), ColumnData::Json(b)) => ext!(a, b),
            (ColumnData::FloatVector { dim, data: a }, ColumnData::FloatVector { data: b, .. }) => {
                for r in rows {
                    a.extend_from_slice(&b[r * *dim..(r + 1) * *dim]);
                }
            }
            (a, b) => panic!("extend_rows: column types differ ({a:?} vs {b:?})"),
        }
    }
}

/// A batch of rows to insert or upsert, column-wise: `(field name, column)` pairs.
///
/// The primary-key column is omitted when the key is `auto_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Columns by field name.
    pub columns: Vec<(String, ColumnData)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a column (builder style).
    pub fn with(mut self, field: &str, column: ColumnData) -> Self {
        self.columns.push((field.to_string(), column));
        self
    }

    /// Builds a column-wise batch from rows of `(field, value)` pairs (row-wise insert).
    ///
    /// # Errors
    /// [`StoreError::UnknownField`], [`StoreError::MissingField`],
    /// [`StoreError::DimensionMismatch`] (with the row number) and
    /// [`StoreError::InvalidValue`] when a value does not match its field's type.
    pub fn from_rows(schema: &CollectionSchema, rows: &[Vec<(String, Value)>]) -> Result<Batch> {
        let fields: Vec<&FieldSchema> = schema
            .fields
            .iter()
            .filter(|f| !(f.is_primary && f.auto_id))
            .collect();
        let mut cols: Vec<ColumnData> = fields
            .iter()
            .map(|f| ColumnData::empty(&f.data_type))
            .collect();
        for (r, row) in rows.iter().enumerate() {
            for (name, _) in row {
                if !fields.iter().any(|f| &f.name == name) {
                    if schema.field(name).is_some() {
                        return Err(StoreError::InvalidValue {
                            field: name.clone(),
                            row: r,
                            reason: "the primary key is auto-generated, do not provide it".into(),
                        });
                    }
                    return Err(StoreError::UnknownField { name: name.clone() });
                }
            }
            for (f, col) in fields.iter().zip(cols.iter_mut()) {
                let v = row
                    .iter()
                    .find(|(n, _)| n == &f.name)
                    .map(|(_, v)| v)
                    .ok_or_else(|| StoreError::MissingField {
                        name: f.name.clone(),
                    })?;
                push_value(col, f, v, r)?;
            }
        }
        Ok(Batch {
            columns: fields.iter().map(|f| f.name.clone()).zip(cols).collect(),
        })
    }
}

fn push_value(col: &mut ColumnData, f: &FieldSchema, v: &Value, row: usize) -> Result<()> {
    let bad = |reason: String| StoreError::InvalidValue {
        field: f.name.clone(),
        row,
        reason,
    };
    let int = |v: &Value| match v {
        Value::Int(i) => Ok(*i),
        other => Err(bad(format!("expected an integer, got {other:?}"))),
    };
    match col {
        ColumnData::Bool(c) => match v {
            Value::Bool(b) => c.push(*b),
            other => return Err(bad(format!("expected a bool, got {other:?}"))),
        },
        ColumnData::Int8(c) => c.push(
            int(v)?
                .try_into()
                .map_err(|_| bad("out of INT8 range".into()))?,
        ),
        ColumnData::Int16(c) => c.push(
            int(v)?
                .try_into()
                .map_err(|_| bad("out of INT16 range".into()))?,
        ),
        ColumnData::Int32(c) => c.push(
            int(v)?
                .try_into()
                .map_err(|_| bad("out of INT32 range".into()))?,
        ),
        ColumnData::Int64(c) => c.push(int(v)?),
        ColumnData::Float(c) => match v {
            Value::Float(x) => c.push(*x),
            Value::Double(x) => c.push(*x as f32),
            Value::Int(x) => c.push(*x as f32),
            other => return Err(bad(format!("expected a float, got {other:?}"))),
        },
        ColumnData::Double(c) => match v {
            Value::Float(x) => c.push(*x as f64),
            Value::Double(x) => c.push(*x),
            Value::Int(x) => c.push(*x as f64),
            other => return Err(bad(format!("expected a double, got {other:?}"))),
        },
        ColumnData::VarChar(c) => match v {
            Value::String(s) => c.push(s.clone()),
            other => return Err(bad(format!("expected a string, got {other:?}"))),
        },
        ColumnData::Json(c) => match v {
            Value::Json(b) => c.push(b.clone()),
            Value::String(s) => c.push(s.as_bytes().to_vec()),
            other => return Err(bad(format!("expected JSON, got {other:?}"))),
        },
        ColumnData::FloatVector { dim, data } => match v {
            Value::FloatVector(x) if x.len() == *dim => data.extend_from_slice(x),
            Value::FloatVector(x) => {
                return Err(StoreError::DimensionMismatch {
                    expected: *dim,
                    got: x.len(),
                    row,
                })
            }
            other => return Err(bad(format!("expected a float vector, got {other:?}"))),
        },
    }
    Ok(())
}

/// Column of primary keys of a segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PkColumn {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl PkColumn {
    pub(crate) fn empty_for(dt: &DataType) -> PkColumn {
        match dt {
            DataType::Int64 => PkColumn::Int(vec![]),
            _ => PkColumn::Str(vec![]),
        }
    }
    pub(crate) fn len(&self) -> usize {
        match self {
            PkColumn::Int(v) => v.len(),
            PkColumn::Str(v) => v.len(),
        }
    }
    pub(crate) fn get(&self, row: usize) -> PrimaryKey {
        match self {
            PkColumn::Int(v) => PrimaryKey::Int(v[row]),
            PkColumn::Str(v) => PrimaryKey::Str(v[row].clone()),
        }
    }
    pub(crate) fn cmp_rows(&self, a: usize, b: usize) -> std::cmp::Ordering {
        match self {
            PkColumn::Int(v) => v[a].cmp(&v[b]),
            PkColumn::Str(v) => v[a].cmp(&v[b]),
        }
    }
    pub(crate) fn push(&mut self, pk: &PrimaryKey) {
        match (self, pk) {
            (PkColumn::Int(v), PrimaryKey::Int(k)) => v.push(*k),
            (PkColumn::Str(v), PrimaryKey::Str(k)) => v.push(k.clone()),
            _ => unreachable!("primary key type checked on validation"),
        }
    }
    pub(crate) fn to_column(&self) -> ColumnData {
        match self {
            PkColumn::Int(v) => ColumnData::Int64(v.clone()),
            PkColumn::Str(v) => ColumnData::VarChar(v.clone()),
        }
    }
}

/// A validated batch: keys, scalar columns in `schema.scalar_fields()` order, vectors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rows {
    /// `None` until auto ids are assigned.
    pub pks: Vec<PrimaryKey>,
    pub scalars: Vec<ColumnData>,
    /// `rows × dim`.
    pub vectors: Vec<f32>,
}

impl Rows {
    pub(crate) fn len(&self) -> usize {
        self.pks.len()
    }
}

/// Index of the first NaN or infinity in `v`. Scans blocks of 256 without an early exit
/// (so the check vectorizes), then finds the position in the block that has one.
fn first_non_finite(v: &[f32]) -> Option<usize> {
    const EXP: u32 = 0x7f80_0000;
    v.chunks(256).enumerate().find_map(|(b, c)| {
        let bad = c
            .iter()
            .fold(false, |acc, x| acc | (x.to_bits() & EXP == EXP));
        bad.then(|| b * 256 + c.iter().position(|x| !x.is_finite()).unwrap_or(0))
    })
}

/// Validates a batch against the schema and normalises it (integer widths, column order).
///
/// With `auto_id` and `require_pk == false` the keys are left empty for the caller to assign
/// (the returned `pks` is empty and `n` is the row count).
pub(crate) fn validate_batch(
    schema: &CollectionSchema,
    batch: Batch,
    require_pk: bool,
) -> Result<(Rows, usize)> {
    let pkf = schema.primary_field();
    let auto = pkf.auto_id && !require_pk;
    for (name, _) in &batch.columns {
        match schema.field(name) {
            None => return Err(StoreError::UnknownField { name: name.clone() }),
            Some(f) if f.is_primary && auto => {
                return Err(StoreError::InvalidValue {
                    field: name.clone(),
                    row: 0,
                    reason: "the primary key is auto-generated (auto_id), do not provide it".into(),
                })
            }
            _ => {}
        }
        if batch.columns.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(StoreError::InvalidValue {
                field: name.clone(),
                row: 0,
                reason: "field given twice".into(),
            });
        }
    }
    let mut columns = batch.columns;
    let mut take = |f: &FieldSchema| -> Result<ColumnData> {
        let i = columns
            .iter()
            .position(|(n, _)| n == &f.name)
            .ok_or_else(|| StoreError::MissingField {
                name: f.name.clone(),
            })?;
        Ok(columns.swap_remove(i).1)
    };
    let vf = schema.vector_field();
    let dim = schema.dim();
    let vcol = take(vf)?;
    let vectors = match vcol {
        ColumnData::FloatVector { dim: d, data } => {
            if d != dim {
                return Err(StoreError::DimensionMismatch {
                    expected: dim,
                    got: d,
                    row: 0,
                });
            }
            if data.len() % dim != 0 {
                return Err(StoreError::DimensionMismatch {
                    expected: dim,
                    got: data.len() % dim,
                    row: data.len() / dim,
                });
            }
            if let Some(i) = first_non_finite(&data) {
                return Err(StoreError::NonFinite {
                    field: vf.name.clone(),
                    row: i / dim,
                });
            }
            data
        }
        other => {
            return Err(StoreError::InvalidValue {
                field: vf.name.clone(),
                row: 0,
                reason: format!("expected FLOAT_VECTOR data, got {}", variant_name(&other)),
            })
        }
    };
    let n = vectors.len() / dim;
    let check_len = |name: &str, got: usize| -> Result<()> {
        if got != n {
            return Err(StoreError::RowCountMismatch {
                field: name.to_string(),
                expected: n,
                got,
            });
        }
        Ok(())
    };
    let mut pks = Vec::new();
    if !auto {
        let c = take(pkf)?;
        check_len(&pkf.name, c.len())?;
        let c = convert(pkf, c)?;
        pks = match c {
            ColumnData::Int64(v) => v.into_iter().map(PrimaryKey::Int).collect(),
            ColumnData::VarChar(v) => v.into_iter().map(PrimaryKey::Str).collect(),
            _ => unreachable!("convert returns the field's type"),
        };
        // Strictly increasing keys (ids counted up, the usual case) are distinct; others go
        // through a hash set.
        if !pks.windows(2).all(|w| w[0] < w[1]) {
            let mut seen =
                rustc_hash::FxHashSet::with_capacity_and_hasher(pks.len(), Default::default());
            for pk in &pks {
                if !seen.insert(pk) {
                    return Err(StoreError::DuplicatePrimaryKey { key: pk.clone() });
                }
            }
        }
    }
    let mut scalars = Vec::new();
    for f in schema.scalar_fields() {
        let c = take(f)?;
        check_len(&f.name, c.len())?;
        scalars.push(convert(f, c)?);
    }
    Ok((
        Rows {
            pks,
            scalars,
            vectors,
        },
        n,
    ))
}

fn variant_name(c: &ColumnData) -> &'static str {
    match c {
        ColumnData::Bool(_) => "BOOL",
        ColumnData::Int8(_) => "INT8",
        ColumnData::Int16(_) => "INT16",
        ColumnData::Int32(_) => "INT32",
        ColumnData::Int64(_) => "INT64",
        ColumnData::Float(_) => "FLOAT",
        ColumnData::Double(_) => "DOUBLE",
        ColumnData::VarChar(_) => "VARCHAR",
        ColumnData::Json(_) => "JSON",
        ColumnData::FloatVector { .. } => "FLOAT_VECTOR",
    }
}

/// Converts a column to the field's exact type: integer widths with range checks, float
/// widths, VARCHAR length, JSON validity.
fn convert(f: &FieldSchema, c: ColumnData) -> Result<ColumnData> {
    let bad = |row: usize, reason: String| StoreError::InvalidValue {
        field: f.name.clone(),
        row,
        reason,
    };
    fn ints(c: ColumnData) -> Option<Vec<i64>> {
        Some(match c {
            ColumnData::Int8(v) => v.into_iter().map(i64::from).collect(),
            ColumnData::Int16(v) => v.into_iter().map(i64::from).collect(),
            ColumnData::Int32(v) => v.into_iter().map(i64::from).collect(),
            ColumnData::Int64(v) => v,
            _ => return None,
        })
    }
    macro_rules! narrow {
        ($c:expr, $t:ty, $variant:ident, $name:expr) => {{
            let got = variant_name(&$c);
            let v =
                ints($c).ok_or_else(|| bad(0, format!("expected {} data, got {}", $name, got)))?;
            let mut out = Vec::with_capacity(v.len());
            for (row, x) in v.into_iter().enumerate() {
                out.push(
                    <$t>::try_from(x)
                        .map_err(|_| bad(row, format!("{x} is out of {} range", $name)))?,
                );
            }
            ColumnData::$variant(out)
        }};
    }
    Ok(match (&f.data_type, c) {
        (DataType::Bool, c @ ColumnData::Bool(_)) => c,
        (DataType::Int8, c) => narrow!(c, i8, Int8, "INT8"),
        (DataType::Int16, c) => narrow!(c, i16, Int16, "INT16"),
        (DataType::Int32, c) => narrow!(c, i32, Int32, "INT32"),
        (DataType::Int64, c) => narrow!(c, i64, Int64, "INT64"),
        (DataType::Float, ColumnData::Float(v)) => ColumnData::Float(v),
        (DataType::Float, ColumnData::Double(v)) => {
            ColumnData::Float(v.into_iter().map(|x| x as f32).collect())
        }
        (DataType::Double, ColumnData::Double(v)) => ColumnData::Double(v),
        (DataType::Double, ColumnData::Float(v)) => {
            ColumnData::Double(v.into_iter().map(f64::from).collect())
        }
        (DataType::VarChar { max_length }, ColumnData::VarChar(v)) => {
            for (row, s) in v.iter().enumerate() {
                if s.len() > *max_length as usize {
                    return Err(StoreError::VarCharTooLong {
                        field: f.name.clone(),
                        len: s.len(),
                        max_length: *max_length as usize,
                        row,
                    });
                }
            }
            ColumnData::VarChar(v)
        }
        (DataType::Json, ColumnData::Json(v)) => {
            for (row, doc) in v.iter().enumerate() {
                serde_json::from_slice::<serde_json::Value>(doc)
                    .map_err(|e| bad(row, format!("invalid JSON: {e}")))?;
            }
            ColumnData::Json(v)
        }
        (dt, c) => {
            return Err(bad(
                0,
                format!("expected {} data, got {}", dt.name(), variant_name(&c)),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::first_non_finite;

    #[test]
    fn first_non_finite_finds_the_first_nan_or_infinity() {
        let mut v = vec![1.0f32; 1000];
        v[3] = f32::MAX;
        v[4] = -f32::MAX;
        v[5] = f32::MIN_POSITIVE / 2.0; // subnormal: finite
        assert_eq!(first_non_finite(&v), None);
        assert_eq!(first_non_finite(&[]), None);
        for (at, bad) in [
            (0, f32::NAN),
            (255, f32::INFINITY),
            (256, f32::NEG_INFINITY),
            (999, -f32::NAN),
        ] {
            let mut w = v.clone();
            w[at] = bad;
            assert_eq!(first_non_finite(&w), Some(at), "{bad} at {at}");
            w[at + 1..].iter_mut().for_each(|x| *x = f32::NAN);
            assert_eq!(first_non_finite(&w), Some(at));
        }
    }
}
