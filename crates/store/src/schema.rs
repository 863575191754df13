//! Collection schemas with Milvus's data model and limits.

use crate::error::{Result, StoreError};
use serde::{Deserialize, Serialize};

/// Milvus limit on `topk` and on `nq`.
pub const MAX_TOPK: usize = 16384;
/// Milvus limit on the number of query vectors per search.
pub const MAX_NQ: usize = 16384;
/// Milvus limit on vector dimension.
pub const MAX_DIM: u32 = 32768;
/// Milvus limit on VARCHAR `max_length` (bytes).
pub const MAX_VARCHAR_LENGTH: u32 = 65535;
/// Milvus limit on fields per collection.
pub const MAX_FIELDS: usize = 64;
/// Milvus limit on name length.
pub const MAX_NAME_LENGTH: usize = 255;

/// A field's type (Milvus `DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DataType {
    /// `BOOL`.
    Bool,
    /// `INT8`.
    Int8,
    /// `INT16`.
    Int16,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FLOAT` (f32).
    Float,
    /// `DOUBLE` (f64).
    Double,
    /// `VARCHAR` of at most `max_length` bytes of UTF-8.
    VarChar {
        /// Longest value in bytes, `1..=65535`.
        max_length: u32,
    },
    /// `JSON` document (stored as its UTF-8 bytes).
    Json,
    /// `FLOAT_VECTOR` of `dim` f32 values.
    FloatVector {
        /// Dimension, `1..=32768`.
        dim: u32,
    },
}

impl DataType {
    /// Milvus's name of the type (`INT64`, `VARCHAR`, `FLOAT_VECTOR`, …).
    pub fn name(&self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::VarChar { .. } => "VARCHAR",
            DataType::Json => "JSON",
            DataType::FloatVector { .. } => "FLOAT_VECTOR",
        }
    }

    /// True for `FLOAT_VECTOR`.
    pub fn is_vector(&self) -> bool {
        matches!(self, DataType::FloatVector { .. })
    }
}

/// One field of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    /// Name, `[A-Za-z_][A-Za-z0-9_]*`, at most 255 characters.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Type.
    pub data_type: DataType,
    /// True for the one primary-key field (INT64 or VARCHAR).
    #[serde(default)]
    pub is_primary: bool,
    /// Keys are assigned by the store (INT64 primary key only).
    #[serde(default)]
    pub auto_id: bool,
}

impl FieldSchema {
    /// A plain (non-key) field.
    pub fn new(name: &str, data_type: DataType) -> Self {
        FieldSchema {
            name: name.into(),
            description: String::new(),
            data_type,
            is_primary: false,
            auto_id: false,
        }
    }

    /// A primary-key field.
    pub fn primary(name: &str, data_type: DataType, auto_id: bool) -> Self {
        FieldSchema {
            is_primary: true,
            auto_id,
            ..FieldSchema::new(name, data_type)
        }
    }
}

/// A collection's schema: its name and fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionSchema {
    /// Collection name, same rules as field names.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Fields in declaration order.
    pub fields: Vec<FieldSchema>,
}

/// Checks a collection or field name against Milvus's rule.
///
/// # Errors
/// [`StoreError::InvalidSchema`] naming the rule that failed.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(StoreError::InvalidSchema(format!(
            "invalid {kind} name {name:?}: {why}"
        )))
    };
    if name.is_empty() {
        return bad("the name should not be empty");
    }
    if name.len() > MAX_NAME_LENGTH {
        return bad("the length of a name must be less than or equal to 255 characters");
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('0');
    if !(first.is_ascii_alphabetic() || first == '_') {
        return bad("the first character of a name must be an underscore or letter");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return bad("a name can only contain numbers, letters and underscores");
    }
    Ok(())
}

impl CollectionSchema {
    /// Validates the schema with Milvus's rules: valid unique names, at most 64 fields,
    /// exactly one primary key (INT64, optionally auto_id, or VARCHAR), exactly one
    /// FLOAT_VECTOR with dim in `1..=32768`, VARCHAR max_length in `1..=65535`.
    ///
    /// # Errors
    /// [`StoreError::InvalidSchema`] with the rule broken.
    pub fn validate(&self) -> Result<()> {
        validate_name("collection", &self.name)?;
        let err = |m: String| Err(StoreError::InvalidSchema(m));
        if self.fields.is_empty() {
            return err("a collection needs fields".into());
        }
        if self.fields.len() > MAX_FIELDS {
            return err(format!(
                "maximum field's number should be limited to {MAX_FIELDS}"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.fields {
            validate_name("field", &f.name)?;
            if !seen.insert(f.name.as_str()) {
                return err(format!("duplicated field name {}", f.name));
            }
            match f.data_type {
                DataType::VarChar { max_length } if max_length == 0 || max_length > MAX_VARCHAR_LENGTH => {
                    return err(format!(
                        "the maximum length specified for field {} should be in (0, {MAX_VARCHAR_LENGTH}]",
                        f.name
                    ))
                }
                DataType::FloatVector { dim } if dim == 0 || dim > MAX_DIM => {
                    return err(format!("invalid dimension: {dim}. should be in range 1 ~ {MAX_DIM}"))
                }
                _ => {}
            }
            if f.auto_id && !f.is_primary {
                return err(format!(
                    "auto_id is only allowed on the primary key, not on {}",
                    f.name
                ));
            }
            if f.is_primary {
                match f.data_type {
                    DataType::Int64 => {}
                    DataType::VarChar { .. } if !f.auto_id => {}
                    DataType::VarChar { .. } => {
                        return err("auto_id is only supported on an INT64 primary key".into())
                    }
                    _ => {
                        return err(format!(
                            "primary key field {} must be INT64 or VARCHAR",
                            f.name
                        ))
                    }
                }
            }
        }
        match self.fields.iter().filter(|f| f.is_primary).count() {
            0 => return err("primary key is not specified".into()),
            1 => {}
            _ => return err("there are more than one primary key".into()),
        }
        match self
            .fields
            .iter()
            .filter(|f| f.data_type.is_vector())
            .count()
        {
            0 => return err("schema does not contain vector field".into()),
            1 => {}
            _ => {
                return err("facedb supports exactly one FLOAT_VECTOR field per collection".into())
            }
        }
        Ok(())
    }

    /// The primary-key field. Valid schemas always have one.
    pub fn primary_field(&self) -> &FieldSchema {
        self.fields
            .iter()
            .find(|f| f.is_primary)
            .expect("validated schema has a primary key")
    }

    /// The vector field. Valid schemas always have one.
    pub fn vector_field(&self) -> &FieldSchema {
        self.fields
            .iter()
            .find(|f| f.data_type.is_vector())
            .expect("validated schema has a vector field")
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        match self.vector_field().data_type {
            DataType::FloatVector { dim } => dim as usize,
            _ => unreachable!("vector_field returns a vector"),
        }
    }

    /// Scalar fields other than the primary key, in declaration order (the stored columns).
    pub fn scalar_fields(&self) -> impl Iterator<Item = &FieldSchema> {
        self.fields
            .iter()
            .filter(|f| !f.is_primary && !f.data_type.is_vector())
    }

    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> CollectionSchema {
        CollectionSchema {
            name: "people".into(),
            description: String::new(),
            fields: vec![
                FieldSchema::primary("id", DataType::Int64, false),
                FieldSchema::new("name", DataType::VarChar { max_length: 200 }),
                FieldSchema::new("metrics", DataType::FloatVector { dim: 3 }),
            ],
        }
    }

    #[test]
    fn accepts_seed_schema_and_rejects_breaches() {
        people().validate().unwrap();
        let mut s = people();
        s.name = "1abc".into();
        assert!(matches!(s.validate(), Err(StoreError::InvalidSchema(_))));
        let mut s = people();
        s.name = "a".repeat(256);
        assert!(s.validate().is_err());
        s.name = "a".repeat(255);
        s.validate().unwrap();
        let mut s = people();
        s.fields[2].data_type = DataType::FloatVector { dim: 32769 };
        assert!(s.validate().unwrap_err().to_string().contains("dimension"));
        let mut s = people();
        s.fields[1].data_type = DataType::VarChar { max_length: 65536 };
        assert!(s.validate().is_err());
        let mut s = people();
        s.fields[1].name = "id".into();
        assert!(s.validate().unwrap_err().to_string().contains("duplicated"));
        let mut s = people();
        s.fields[0].is_primary = false;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("primary key"));
        let mut s = people();
        s.fields.remove(2);
        assert!(s.validate().unwrap_err().to_string().contains("vector"));
        let mut s = people();
        for i in 0..62 {
            s.fields
                .push(FieldSchema::new(&format!("f{i}"), DataType::Bool));
        }
        assert!(s.validate().unwrap_err().to_string().contains("64"));
        s.fields.pop();
        s.validate().unwrap();
    }
}
