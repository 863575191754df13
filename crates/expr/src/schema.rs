//! The schema description the checker works against, filled by the store.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A scalar field type, as Milvus's `DataType` for scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// `BOOL`
    Bool,
    /// `INT8`
    Int8,
    /// `INT16`
    Int16,
    /// `INT32`
    Int32,
    /// `INT64`
    Int64,
    /// `FLOAT` (32-bit)
    Float,
    /// `DOUBLE` (64-bit)
    Double,
    /// `VARCHAR`
    VarChar,
    /// `JSON` (a JSON document per row)
    Json,
}

impl ScalarType {
    /// `true` for the four integer types.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            ScalarType::Int8 | ScalarType::Int16 | ScalarType::Int32 | ScalarType::Int64
        )
    }

    /// `true` for `Float` and `Double`.
    pub fn is_float(self) -> bool {
        matches!(self, ScalarType::Float | ScalarType::Double)
    }

    /// `true` for integers and floats.
    pub fn is_numeric(self) -> bool {
        self.is_integer() || self.is_float()
    }

    /// The inclusive value range of an integer type, `None` for other types.
    pub fn int_range(self) -> Option<(i64, i64)> {
        Some(match self {
            ScalarType::Int8 => (i64::from(i8::MIN), i64::from(i8::MAX)),
            ScalarType::Int16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
            ScalarType::Int32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
            ScalarType::Int64 => (i64::MIN, i64::MAX),
            _ => return None,
        })
    }

    /// The Milvus name of the type (`Int64`, `VarChar`, ...), as in Milvus error messages.
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::Bool => "Bool",
            ScalarType::Int8 => "Int8",
            ScalarType::Int16 => "Int16",
            ScalarType::Int32 => "Int32",
            ScalarType::Int64 => "Int64",
            ScalarType::Float => "Float",
            ScalarType::Double => "Double",
            ScalarType::VarChar => "VarChar",
            ScalarType::Json => "JSON",
        }
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a field name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A scalar field, usable in filters.
    Scalar(ScalarType),
    /// A vector field (`FLOAT_VECTOR`, `BINARY_VECTOR`, ...): it cannot be filtered.
    Vector,
}

/// The schema as the checker sees it: field names to kinds.
///
/// The store implements this over its collection schema. Implementations are provided for
/// `HashMap<String, FieldKind>`, `BTreeMap<String, FieldKind>` and slices of
/// `(&str, FieldKind)` pairs.
pub trait SchemaView {
    /// The kind of the field `name`, or `None` if the schema has no such field.
    fn field_type(&self, name: &str) -> Option<FieldKind>;

    /// The name of the dynamic JSON field (Milvus's `$meta`), if the collection has one.
    /// Where it exists, an identifier that names no field is read as a key of it:
    /// `color == "red"` means `$meta["color"] == "red"`. Defaults to `None`.
    fn dynamic_field(&self) -> Option<&str> {
        None
    }
}

impl SchemaView for HashMap<String, FieldKind> {
    fn field_type(&self, name: &str) -> Option<FieldKind> {
        self.get(name).copied()
    }
}

impl SchemaView for BTreeMap<String, FieldKind> {
    fn field_type(&self, name: &str) -> Option<FieldKind> {
        self.get(name).copied()
    }
}

impl SchemaView for [(&str, FieldKind)] {
    fn field_type(&self, name: &str) -> Option<FieldKind> {
        self.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }
}

impl<const N: usize> SchemaView for [(&str, FieldKind); N] {
    fn field_type(&self, name: &str) -> Option<FieldKind> {
        self.as_slice().field_type(name)
    }
}

impl<T: SchemaView + ?Sized> SchemaView for &T {
    fn field_type(&self, name: &str) -> Option<FieldKind> {
        (**self).field_type(name)
    }

    fn dynamic_field(&self) -> Option<&str> {
        (**self).dynamic_field()
    }
}
