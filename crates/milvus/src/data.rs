//! Column data between the wire (`schema.FieldData`) and the store (`Batch`, `Value`).

use std::collections::HashMap;

use facedb_store::{Batch, ColumnData, PrimaryKey, Value};
use milvus::proto::schema::{
    field_data, i_ds, scalar_field, vector_field, BoolArray, DoubleArray, FieldData, FloatArray,
    IDs, IntArray, JsonArray, LongArray, ScalarField, StringArray, VectorField,
};

use crate::schema::{Field, FieldKind, Fields};
use crate::status::{Error, Result};

/// Name of the store column that holds the dynamic field (`$meta` on the wire). Store field
/// names follow `[A-Za-z_][A-Za-z0-9_]*`, so `$meta` itself cannot be used; a user field of this
/// name is refused in collections with the dynamic field enabled.
pub const DYNAMIC_COLUMN: &str = "_meta";

/// The store column name of a wire field.
pub fn store_name(f: &Field) -> &str {
    if f.is_dynamic {
        DYNAMIC_COLUMN
    } else {
        &f.name
    }
}

/// Converts `Insert`/`Upsert` `fields_data` into a store batch (the auto-id key column left out).
///
/// `num_rows` is the request's row count (0 = take it from the columns). When the collection
/// has the dynamic field and the request has no dynamic column, every row gets `{}`.
///
/// # Errors
/// Milvus-shaped [`Error::Rejected`] / [`Error::InvalidParameter`]: a vector column whose length
/// does not divide the dimension ("the length(7) of float data should divide the dim(3)"), a
/// column whose row count differs from `num_rows`, unknown, missing, duplicated or mistyped
/// fields, values given for an auto-id key, integers out of the field's range, dynamic values
/// that are not JSON objects.
pub fn batch_from_fields_data(
    fields: &Fields,
    data: Vec<FieldData>,
    num_rows: u32,
) -> Result<(Batch, usize)> {
    let mut by_name: HashMap<String, FieldData> = HashMap::new();
    for fd in data {
        let field = if fd.is_dynamic || (fd.field_name.is_empty() && fields.dynamic) {
            fields.dynamic_field().ok_or_else(|| {
                Error::Rejected(
                    "the collection has no dynamic field, dynamic data cannot be inserted".into(),
                )
            })?
        } else {
            match fields.get(&fd.field_name) {
                Some(f) if !f.is_dynamic => f,
                _ => {
                    return Err(Error::Rejected(format!(
                        "field {} not exist",
                        fd.field_name
                    )))
                }
            }
        };
        if field.is_primary && field.auto_id {
            return Err(Error::InvalidParameter(format!(
                "the primary key field {} is auto_id, its values must not be given: invalid parameter",
                field.name
            )));
        }
        if by_name.insert(field.name.clone(), fd).is_some() {
            return Err(Error::InvalidParameter(format!(
                "duplicated field {} in the inserted data: invalid parameter",
                field.name
            )));
        }
    }
    let mut columns = Vec::with_capacity(fields.fields.len());
    let mut n: Option<usize> = (num_rows > 0).then_some(num_rows as usize);
    let mut has_dynamic = false;
    for f in &fields.fields {
        if f.is_primary && f.auto_id {
            continue;
        }
        let Some(fd) = by_name.remove(&f.name) else {
            if f.is_dynamic {
                continue; // filled below, once the row count is known
            }
            return Err(Error::InvalidParameter(format!(
                "fieldSchema({}) has no corresponding fieldData pass in: invalid parameter",
                f.name
            )));
        };
        let col = column(f, fd)?;
        let len = col.len();
        match n {
            None => n = Some(len),
            Some(want) if want != len => {
                return Err(Error::InvalidParameter(format!(
                    "the num_rows ({len}) of field ({}) is not equal to passed num_rows ({want}): invalid parameter[expected={want}][actual={len}]",
                    f.name
                )))
            }
            Some(_) => {}
        }
        if f.is_dynamic {
            has_dynamic = true;
            if let ColumnData::Json(docs) = &col {
                for (row, d) in docs.iter().enumerate() {
                    let ok = serde_json::from_slice::<serde_json::Value>(d)
                        .map(|v| v.is_object())
                        .unwrap_or(false);
                    if !ok {
                        return Err(Error::Rejected(format!(
                            "the value of the dynamic field at row {row} is not a JSON object"
                        )));
                    }
                }
            }
        }
        columns.push((store_name(f).to_string(), col));
    }
    let n = n.unwrap_or(0);
    if fields.dynamic && !has_dynamic {
        columns.push((
            DYNAMIC_COLUMN.to_string(),
            ColumnData::Json(vec![b"{}".to_vec(); n]),
        ));
    }
    Ok((Batch { columns }, n))
}

fn mistyped(f: &Field, fd: &FieldData) -> Error {
    Error::Rejected(format!(
        "the data type of field {} is {}, but the inserted data is of another type \
         ({} declared, {} sent)",
        f.name,
        f.kind.name(),
        milvus::proto::schema::DataType::try_from(fd.r#type)
            .map(|t| t.as_str_name().to_string())
            .unwrap_or_else(|_| fd.r#type.to_string()),
        payload_name(fd)
    ))
}

/// The protobuf field that holds a `FieldData`'s values (`long_data`, `float_vector`, ...):
/// what was sent, whatever its declared `type` says.
fn payload_name(fd: &FieldData) -> &'static str {
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(scalar_field::Data::BoolData(_)) => "bool_data",
            Some(scalar_field::Data::IntData(_)) => "int_data",
            Some(scalar_field::Data::LongData(_)) => "long_data",
            Some(scalar_field::Data::FloatData(_)) => "float_data",
            Some(scalar_field::Data::DoubleData(_)) => "double_data",
            Some(scalar_field::Data::StringData(_)) => "string_data",
            Some(scalar_field::Data::JsonData(_)) => "json_data",
            Some(_) => "other scalar data",
            None => "no values",
        },
        Some(field_data::Field::Vectors(v)) => match &v.data {
            Some(vector_field::Data::FloatVector(_)) => "float_vector",
            Some(_) => "other vector data",
            None => "no values",
        },
        Some(_) => "other data",
        None => "no values",
    }
}

fn column(f: &Field, fd: FieldData) -> Result<ColumnData> {
    let err = mistyped(f, &fd);
    let FieldData { field, .. } = fd;
    let narrow = |v: &[i32], lo: i64, hi: i64| -> Result<()> {
        match v.iter().position(|x| (*x as i64) < lo || (*x as i64) > hi) {
            Some(row) => Err(Error::Rejected(format!(
                "the value {} of field {} at row {row} is out of range for {}",
                v[row],
                f.name,
                f.kind.name()
            ))),
            None => Ok(()),
        }
    };
    if let FieldKind::FloatVector { dim } = f.kind {
        let Some(field_data::Field::Vectors(v)) = field else {
            return Err(err);
        };
        let Some(vector_field::Data::FloatVector(a)) = v.data else {
            return Err(err);
        };
        if v.dim != 0 && v.dim != dim as i64 {
            return Err(Error::Rejected(format!(
                "the dim ({}) of field data ({}) is not equal to schema dim ({dim})",
                v.dim, f.name
            )));
        }
        if a.data.len() % dim != 0 {
            return Err(Error::Rejected(format!(
                "the length({}) of float data should divide the dim({dim})",
                a.data.len()
            )));
        }
        return Ok(ColumnData::FloatVector { dim, data: a.data });
    }
    let Some(field_data::Field::Scalars(ScalarField {
        data: Some(scalars),
        ..
    })) = field
    else {
        return Err(err);
    };
    Ok(match (f.kind, scalars) {
        (FieldKind::Bool, scalar_field::Data::BoolData(a)) => ColumnData::Bool(a.data),
        (FieldKind::Int8, scalar_field::Data::IntData(a)) => {
            narrow(&a.data, i8::MIN as i64, i8::MAX as i64)?;
            ColumnData::Int8(a.data.iter().map(|x| *x as i8).collect())
        }
        (FieldKind::Int16, scalar_field::Data::IntData(a)) => {
            narrow(&a.data, i16::MIN as i64, i16::MAX as i64)?;
            ColumnData::Int16(a.data.iter().map(|x| *x as i16).collect())
        }
        (FieldKind::Int32, scalar_field::Data::IntData(a)) => ColumnData::Int32(a.data),
        (FieldKind::Int64, scalar_field::Data::LongData(a)) => ColumnData::Int64(a.data),
        (FieldKind::Float, scalar_field::Data::FloatData(a)) => ColumnData::Float(a.data),
        (FieldKind::Double, scalar_field::Data::DoubleData(a)) => ColumnData::Double(a.data),
        (FieldKind::VarChar { .. }, scalar_field::Data::StringData(a)) => {
            ColumnData::VarChar(a.data)
        }
        (FieldKind::Json, scalar_field::Data::JsonData(a)) => ColumnData::Json(a.data),
        _ => return Err(err),
    })
}

/// Wire `IDs` of store primary keys of a collection whose key field is `pk`.
pub fn ids(pk: &Field, keys: &[PrimaryKey]) -> IDs {
    let id_field = match pk.kind {
        FieldKind::VarChar { .. } => i_ds::IdField::StrId(StringArray {
            data: keys
                .iter()
                .map(|k| match k {
                    PrimaryKey::Str(s) => s.clone(),
                    PrimaryKey::Int(v) => v.to_string(),
                })
                .collect(),
        }),
        _ => i_ds::IdField::IntId(LongArray {
            data: keys
                .iter()
                .map(|k| match k {
                    PrimaryKey::Int(v) => *v,
                    PrimaryKey::Str(s) => s.parse().unwrap_or_default(),
                })
                .collect(),
        }),
    };
    IDs {
        id_field: Some(id_field),
    }
}

/// One output column: the wire field and where its values come from.
#[derive(Debug, Clone, PartialEq)]
pub struct OutColumn {
    /// The field (the dynamic field for dynamic keys).
    pub field: Field,
}

/// Resolved `output_fields`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputFields {
    /// Columns to return, each field once, in request order.
    pub columns: Vec<OutColumn>,
    /// The names to echo in the response's `output_fields` (expanded `*`, dynamic keys kept),
    /// which pymilvus uses to pick dynamic keys out of `$meta`.
    pub names: Vec<String>,
}

impl OutputFields {
    /// The store column names to fetch.
    pub fn store_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| store_name(&c.field).to_string())
            .collect()
    }

    fn push(&mut self, f: &Field) {
        if !self.columns.iter().any(|c| c.field.name == f.name) {
            self.columns.push(OutColumn { field: f.clone() });
        }
    }
}

/// Resolves requested `output_fields`: `*` is every field (vectors and `$meta` included, as
/// Milvus 2.3); names not in the schema are dynamic keys when the dynamic field is enabled.
/// With `with_pk` (queries) the primary key is always returned.
///
/// # Errors
/// [`Error::Rejected`] "field age not exist" for an unknown name without the dynamic field.
pub fn resolve_output_fields(
    fields: &Fields,
    requested: &[String],
    with_pk: bool,
) -> Result<OutputFields> {
    let mut out = OutputFields::default();
    for raw in requested {
        let name = raw.trim();
        if name.is_empty() {
            continue;
        }
        if name == "*" {
            for f in &fields.fields {
                out.push(f);
                if !out.names.iter().any(|n| n == &f.name) {
                    out.names.push(f.name.clone());
                }
            }
            continue;
        }
        match fields.get(name) {
            Some(f) => out.push(f),
            None => match fields.dynamic_field() {
                Some(d) if valid_dynamic_key(name) => out.push(d),
                _ => return Err(Error::Rejected(format!("field {name} not exist"))),
            },
        }
        if !out.names.iter().any(|n| n == name) {
            out.names.push(name.to_string());
        }
    }
    if with_pk {
        let pk = fields.pk();
        out.push(pk);
        if !out.names.iter().any(|n| n == &pk.name) {
            out.names.push(pk.name.clone());
        }
    }
    Ok(out)
}

fn valid_dynamic_key(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|x| x == '_' || x.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// Builds wire `FieldData` columns for `columns` from rows of `(store name, value)` pairs.
///
/// A value missing from a row becomes the type's zero value (the store returns every requested
/// field, so this does not happen for well-formed rows).
pub fn field_data<'a>(
    columns: &[OutColumn],
    rows: impl Iterator<Item = &'a [(String, Value)]> + Clone,
) -> Vec<FieldData> {
    columns
        .iter()
        .map(|c| {
            let key = store_name(&c.field);
            let vals = rows
                .clone()
                .map(|r| r.iter().find(|(n, _)| n == key).map(|(_, v)| v));
            build_column(&c.field, vals)
        })
        .collect()
}

fn build_column<'a>(f: &Field, vals: impl Iterator<Item = Option<&'a Value>>) -> FieldData {
    let scalar = |d: scalar_field::Data| {
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(d),
            ..Default::default()
        }))
    };
    let field = match f.kind {
        FieldKind::Bool => scalar(scalar_field::Data::BoolData(BoolArray {
            data: vals.map(|v| matches!(v, Some(Value::Bool(true)))).collect(),
        })),
        FieldKind::Int8 | FieldKind::Int16 | FieldKind::Int32 => {
            scalar(scalar_field::Data::IntData(IntArray {
                data: vals
                    .map(|v| match v {
                        Some(Value::Int(x)) => *x as i32,
                        _ => 0,
                    })
                    .collect(),
            }))
        }
        FieldKind::Int64 => scalar(scalar_field::Data::LongData(LongArray {
            data: vals
                .map(|v| match v {
                    Some(Value::Int(x)) => *x,
                    _ => 0,
                })
                .collect(),
        })),
        FieldKind::Float => scalar(scalar_field::Data::FloatData(FloatArray {
            data: vals
                .map(|v| match v {
                    Some(Value::Float(x)) => *x,
                    Some(Value::Double(x)) => *x as f32,
                    _ => 0.0,
                })
                .collect(),
        })),
        FieldKind::Double => scalar(scalar_field::Data::DoubleData(DoubleArray {
            data: vals
                .map(|v| match v {
                    Some(Value::Double(x)) => *x,
                    Some(Value::Float(x)) => *x as f64,
                    _ => 0.0,
                })
                .collect(),
        })),
        FieldKind::VarChar { .. } => scalar(scalar_field::Data::StringData(StringArray {
            data: vals
                .map(|v| match v {
                    Some(Value::String(s)) => s.clone(),
                    _ => String::new(),
                })
                .collect(),
        })),
        FieldKind::Json => scalar(scalar_field::Data::JsonData(JsonArray {
            data: vals
                .map(|v| match v {
                    Some(Value::Json(b)) => b.clone(),
                    _ => b"{}".to_vec(),
                })
                .collect(),
        })),
        FieldKind::FloatVector { dim } => {
            let mut data = Vec::new();
            for v in vals {
                match v {
                    Some(Value::FloatVector(x)) if x.len() == dim => data.extend_from_slice(x),
                    _ => data.extend(std::iter::repeat_n(0.0, dim)),
                }
            }
            Some(field_data::Field::Vectors(VectorField {
                dim: dim as i64,
                data: Some(vector_field::Data::FloatVector(FloatArray { data })),
                ..Default::default()
            }))
        }
    };
    FieldData {
        r#type: f.kind.proto() as i32,
        field_name: f.name.clone(),
        field,
        field_id: f.id,
        is_dynamic: f.is_dynamic,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milvus::proto::schema::DataType as PDataType;

    fn field(id: i64, name: &str, kind: FieldKind) -> Field {
        Field {
            id,
            name: name.into(),
            kind,
            is_primary: id == 100,
            auto_id: false,
            is_dynamic: false,
            description: String::new(),
        }
    }

    fn fields(dynamic: bool, auto_id: bool) -> Fields {
        let mut v = vec![
            field(100, "id", FieldKind::Int64),
            field(101, "age", FieldKind::Int8),
            field(102, "v", FieldKind::FloatVector { dim: 2 }),
        ];
        v[0].auto_id = auto_id;
        if dynamic {
            let mut d = field(103, "$meta", FieldKind::Json);
            d.is_dynamic = true;
            v.push(d);
        }
        Fields {
            fields: v,
            pk: 0,
            dynamic,
        }
    }

    fn scalar(name: &str, t: PDataType, d: scalar_field::Data) -> FieldData {
        FieldData {
            r#type: t as i32,
            field_name: name.into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(d),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn vectors(name: &str, dim: i64, data: Vec<f32>) -> FieldData {
        FieldData {
            r#type: PDataType::FloatVector as i32,
            field_name: name.into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim,
                data: Some(vector_field::Data::FloatVector(FloatArray { data })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn rows(ages: Vec<i32>) -> Vec<FieldData> {
        let n = ages.len();
        vec![
            scalar(
                "id",
                PDataType::Int64,
                scalar_field::Data::LongData(LongArray {
                    data: (0..n as i64).collect(),
                }),
            ),
            scalar(
                "age",
                PDataType::Int8,
                scalar_field::Data::IntData(IntArray { data: ages }),
            ),
            vectors("v", 2, vec![0.5; 2 * n]),
        ]
    }

    #[test]
    fn converts_columns_and_fills_the_dynamic_field() {
        let (b, n) = batch_from_fields_data(&fields(true, false), rows(vec![1, -2]), 2).unwrap();
        assert_eq!(n, 2);
        let names: Vec<_> = b.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["id", "age", "v", DYNAMIC_COLUMN]);
        assert_eq!(b.columns[1].1, ColumnData::Int8(vec![1, -2]));
        assert_eq!(
            b.columns[3].1,
            ColumnData::Json(vec![b"{}".to_vec(), b"{}".to_vec()])
        );
    }

    #[test]
    fn rejects_bad_columns() {
        let f = fields(false, false);
        let e = batch_from_fields_data(&f, rows(vec![1, 300]), 2).unwrap_err();
        assert!(e.to_string().contains("out of range for Int8"), "{e}");
        let e = batch_from_fields_data(&f, rows(vec![1, 2]), 3).unwrap_err();
        assert!(
            e.to_string().starts_with("the num_rows (2) of field (id)"),
            "{e}"
        );
        let mut r = rows(vec![1]);
        r.pop();
        let e = batch_from_fields_data(&f, r, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "fieldSchema(v) has no corresponding fieldData pass in: invalid parameter"
        );
        let mut r = rows(vec![1]);
        r[2] = vectors("v", 2, vec![1.0, 2.0, 3.0]);
        assert_eq!(
            batch_from_fields_data(&f, r, 1).unwrap_err().to_string(),
            "the length(3) of float data should divide the dim(2)"
        );
        // Data in another protobuf field than the schema's type, declared as that type or
        // not: the message names the schema's type, the declared one and what was sent.
        let cases = [
            (
                1,
                PDataType::VarChar,
                scalar_field::Data::StringData(StringArray {
                    data: vec!["x".into()],
                }),
                "string_data",
            ),
            (
                0,
                PDataType::Int64,
                scalar_field::Data::IntData(IntArray { data: vec![7] }),
                "int_data",
            ),
            (
                2,
                PDataType::FloatVector,
                scalar_field::Data::FloatData(FloatArray {
                    data: vec![1.0, 2.0],
                }),
                "float_data",
            ),
        ];
        for (col, declared, data, sent) in cases {
            let mut r = rows(vec![1]);
            let schema_field = &f.fields[col];
            r[col] = scalar(&schema_field.name, declared, data);
            assert_eq!(
                batch_from_fields_data(&f, r, 1).unwrap_err().to_string(),
                format!(
                    "the data type of field {} is {}, but the inserted data is of another type \
                     ({} declared, {sent} sent)",
                    schema_field.name,
                    schema_field.kind.name(),
                    declared.as_str_name()
                )
            );
        }
        let mut r = rows(vec![1]);
        r[0].field_name = "nope".into();
        assert_eq!(
            batch_from_fields_data(&f, r, 1).unwrap_err().to_string(),
            "field nope not exist"
        );
        let e = batch_from_fields_data(&fields(false, true), rows(vec![1]), 1).unwrap_err();
        assert!(e.to_string().contains("is auto_id"), "{e}");
        let mut r = rows(vec![1]);
        r.push(scalar(
            "",
            PDataType::Json,
            scalar_field::Data::JsonData(JsonArray {
                data: vec![b"[1]".to_vec()],
            }),
        ));
        r[3].is_dynamic = true;
        let e = batch_from_fields_data(&fields(true, false), r, 1).unwrap_err();
        assert!(e.to_string().contains("not a JSON object"), "{e}");
    }

    #[test]
    fn output_fields() {
        let f = fields(true, false);
        let o = resolve_output_fields(&f, &["*".into()], false).unwrap();
        assert_eq!(o.names, vec!["id", "age", "v", "$meta"]);
        assert_eq!(o.store_names(), vec!["id", "age", "v", DYNAMIC_COLUMN]);
        let o = resolve_output_fields(&f, &["color".into(), "age".into()], true).unwrap();
        assert_eq!(o.names, vec!["color", "age", "id"]);
        assert_eq!(o.store_names(), vec![DYNAMIC_COLUMN, "age", "id"]);
        let e = resolve_output_fields(&fields(false, false), &["color".into()], false).unwrap_err();
        assert_eq!(e.to_string(), "field color not exist");
    }

    #[test]
    fn builds_wire_columns() {
        let f = fields(false, false);
        let cols = vec![
            OutColumn {
                field: f.fields[1].clone(),
            },
            OutColumn {
                field: f.fields[2].clone(),
            },
        ];
        let r1 = vec![
            ("age".to_string(), Value::Int(7)),
            ("v".to_string(), Value::FloatVector(vec![1.0, 2.0])),
        ];
        let r2 = vec![
            ("age".to_string(), Value::Int(-1)),
            ("v".to_string(), Value::FloatVector(vec![3.0, 4.0])),
        ];
        let rows = [r1, r2];
        let fd = field_data(&cols, rows.iter().map(|r| r.as_slice()));
        assert_eq!(fd[0].field_id, 101);
        assert_eq!(
            fd[0].field,
            Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::IntData(IntArray { data: vec![7, -1] })),
                ..Default::default()
            }))
        );
        match &fd[1].field {
            Some(field_data::Field::Vectors(v)) => {
                assert_eq!(v.dim, 2);
                assert_eq!(
                    v.data,
                    Some(vector_field::Data::FloatVector(FloatArray {
                        data: vec![1.0, 2.0, 3.0, 4.0]
                    }))
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
