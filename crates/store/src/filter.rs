//! Filter expressions (Milvus boolean grammar, `facedb-expr`) evaluated over segments.

use crate::collection::State;
use crate::data::{ColumnData, PkColumn, PrimaryKey};
use crate::error::{Result, StoreError};
use crate::schema::{CollectionSchema, DataType};
use crate::segment::Segment;
use facedb_expr::{
    Bitmap, CheckedExpr, ColumnView, Columns, FieldKind, KeySet, ScalarType, SchemaView,
};

impl SchemaView for CollectionSchema {
    fn field_type(&self, name: &str) -> Option<FieldKind> {
        let f = self.field(name)?;
        Some(match f.data_type {
            DataType::Bool => FieldKind::Scalar(ScalarType::Bool),
            DataType::Int8 => FieldKind::Scalar(ScalarType::Int8),
            DataType::Int16 => FieldKind::Scalar(ScalarType::Int16),
            DataType::Int32 => FieldKind::Scalar(ScalarType::Int32),
            DataType::Int64 => FieldKind::Scalar(ScalarType::Int64),
            DataType::Float => FieldKind::Scalar(ScalarType::Float),
            DataType::Double => FieldKind::Scalar(ScalarType::Double),
            DataType::VarChar { .. } => FieldKind::Scalar(ScalarType::VarChar),
            DataType::Json => FieldKind::Scalar(ScalarType::Json),
            DataType::FloatVector { .. } => FieldKind::Vector,
        })
    }
}

/// A segment seen as columns by the evaluator.
struct SegmentColumns<'a> {
    schema: &'a CollectionSchema,
    seg: &'a Segment,
}

impl Columns for SegmentColumns<'_> {
    fn num_rows(&self) -> usize {
        self.seg.rows()
    }

    fn column(&self, field: &str) -> Option<ColumnView<'_>> {
        let f = self.schema.field(field)?;
        if f.is_primary {
            return Some(match &self.seg.pks {
                PkColumn::Int(v) => ColumnView::Int64(v),
                PkColumn::Str(v) => ColumnView::VarChar(v),
            });
        }
        let i = self.schema.scalar_fields().position(|g| g.name == field)?;
        Some(match &self.seg.scalars[i] {
            ColumnData::Bool(v) => ColumnView::Bool(v),
            ColumnData::Int8(v) => ColumnView::Int8(v),
            ColumnData::Int16(v) => ColumnView::Int16(v),
            ColumnData::Int32(v) => ColumnView::Int32(v),
            ColumnData::Int64(v) => ColumnView::Int64(v),
            ColumnData::Float(v) => ColumnView::Float(v),
            ColumnData::Double(v) => ColumnView::Double(v),
            ColumnData::VarChar(v) => ColumnView::VarChar(v),
            ColumnData::Json(v) => ColumnView::Json(v),
            ColumnData::FloatVector { .. } => return None,
        })
    }
}

/// Parses and checks a filter against the schema. `None` or blank means "every row".
///
/// # Errors
/// [`StoreError::InvalidExpr`] with the byte offset of the problem.
pub(crate) fn compile(
    schema: &CollectionSchema,
    filter: Option<&str>,
) -> Result<Option<CheckedExpr>> {
    match filter.map(str::trim) {
        None | Some("") => Ok(None),
        Some(f) => Ok(Some(facedb_expr::compile(f, schema)?)),
    }
}

/// Rows of every segment (sealed in order, then growing) that are live and match `expr`;
/// `None` for a segment means "every row allowed" (no filter, no deletes).
pub(crate) fn allowed_rows(
    schema: &CollectionSchema,
    st: &State,
    expr: Option<&CheckedExpr>,
) -> Result<Vec<Option<Bitmap>>> {
    let segs: Vec<&Segment> = st.segments().collect();
    let Some(expr) = expr else {
        return Ok(segs
            .iter()
            .map(|s| s.live_bitmap().map(|w| Bitmap::from_words(w, s.rows())))
            .collect());
    };
    // Primary-key constraints answered through the key index (`id in [..]`, `id == 5`).
    let pk_name = &schema.primary_field().name;
    if let Some(hint) = expr.primary_key_hint(pk_name) {
        let keys: Option<Vec<PrimaryKey>> = match hint.keys {
            KeySet::Ints(v) => Some(v.into_iter().map(PrimaryKey::Int).collect()),
            KeySet::Strs(v) => Some(v.into_iter().map(PrimaryKey::Str).collect()),
            KeySet::IntRange { .. } => None,
        };
        if let Some(keys) = keys {
            let mut maps: Vec<Bitmap> = segs.iter().map(|s| Bitmap::zeros(s.rows())).collect();
            for k in &keys {
                if let Some((si, row)) = st.locate(k) {
                    maps[si].set(row, true);
                }
            }
            if !hint.exact {
                for (m, s) in maps.iter_mut().zip(&segs) {
                    if !m.none() {
                        let full = expr
                            .evaluate(&SegmentColumns { schema, seg: s })
                            .map_err(StoreError::from)?;
                        m.and_assign(&full);
                    }
                }
            }
            return Ok(maps.into_iter().map(Some).collect());
        }
    }
    let sealed = st.sealed_count();
    segs.iter()
        .enumerate()
        .map(|(i, s)| {
            let cols = SegmentColumns { schema, seg: s };
            let indexed = if i < sealed {
                crate::scalar_index::indexed_bitmap(expr, s, &cols)
            } else {
                None
            };
            let mut m = match indexed {
                Some(r) => r?,
                None => expr.evaluate(&cols)?,
            };
            if let Some(live) = s.live_bitmap() {
                m.and_assign(&Bitmap::from_words(live, s.rows()));
            }
            Ok(Some(m))
        })
        .collect()
}
