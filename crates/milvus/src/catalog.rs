//! A collection as the service sees it: the store's collection joined with its Milvus metadata.

use std::sync::Arc;

use facedb_store::{
    Collection, CollectionSchema as StoreSchema, DataType, FieldSchema as StoreField,
};
use milvus::proto::common::KeyValuePair;
use milvus::proto::schema::{CollectionSchema, FieldSchema};
use prost::Message;

use crate::data::DYNAMIC_COLUMN;
use crate::meta::CollectionMeta;
use crate::params::MetricKind;
use crate::schema::{FieldKind, Fields, FIRST_FIELD_ID};
use crate::status::{Error, Result};

/// A collection with everything the wire needs.
#[derive(Clone)]
pub struct CollInfo {
    /// Collection name.
    pub name: String,
    /// The store's collection.
    pub coll: Arc<Collection>,
    /// Milvus metadata (from the sidecar, or derived from the store schema).
    pub meta: CollectionMeta,
    /// The stored wire schema (decoded `meta.schema`).
    pub schema: CollectionSchema,
    /// Resolved fields.
    pub fields: Fields,
}

impl CollInfo {
    /// Joins a store collection with its sidecar entry; an entry that does not describe the
    /// store's schema (or none) is replaced by metadata derived from the store schema.
    pub fn new(name: &str, coll: Arc<Collection>, meta: Option<&CollectionMeta>) -> Result<Self> {
        if let Some(m) = meta {
            if let Ok(schema) = CollectionSchema::decode(m.schema.as_slice()) {
                if let Ok(fields) = Fields::from_proto(&schema) {
                    if same_store_schema(&store_schema(&schema, &fields)?, coll.schema()) {
                        return Ok(Self {
                            name: name.to_string(),
                            coll,
                            meta: m.clone(),
                            schema,
                            fields,
                        });
                    }
                }
            }
        }
        let schema = wire_schema(coll.schema());
        let fields = Fields::from_proto(&schema)?;
        let meta = CollectionMeta {
            id: derived_id(name),
            created_ts: 0,
            created_utc_ms: 0,
            schema: schema.encode_to_vec(),
            consistency_level: 0,
            shards_num: 1,
            properties: vec![],
            loaded: false,
            indexes: vec![],
        };
        Ok(Self {
            name: name.to_string(),
            coll,
            meta,
            schema,
            fields,
        })
    }

    /// The metric of the index on vector field `field`, if it has one (`metric_type` as asked;
    /// L2 for an index created without one, as Milvus 2.3 for explicit index types, IP for
    /// AUTOINDEX as Milvus 2.3's autoindex default).
    pub fn index_metric(&self, field: &str) -> Option<Result<MetricKind>> {
        let idx = self.meta.indexes.iter().find(|i| i.field_name == field)?;
        Some(
            match idx.param("metric_type").filter(|s| !s.trim().is_empty()) {
                Some(m) => MetricKind::parse(m),
                None => Ok(match idx.param("index_type") {
                    None | Some("") | Some("AUTOINDEX") => MetricKind::Ip,
                    Some(_) => MetricKind::L2,
                }),
            },
        )
    }
}

/// A stable positive id for a collection that has no Milvus metadata (FNV-1a of the name).
fn derived_id(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 2) as i64
}

fn store_type(k: FieldKind) -> DataType {
    match k {
        FieldKind::Bool => DataType::Bool,
        FieldKind::Int8 => DataType::Int8,
        FieldKind::Int16 => DataType::Int16,
        FieldKind::Int32 => DataType::Int32,
        FieldKind::Int64 => DataType::Int64,
        FieldKind::Float => DataType::Float,
        FieldKind::Double => DataType::Double,
        FieldKind::VarChar { max_length } => DataType::VarChar { max_length },
        FieldKind::Json => DataType::Json,
        FieldKind::FloatVector { dim } => DataType::FloatVector { dim: dim as u32 },
    }
}

fn kind_of(t: DataType) -> FieldKind {
    match t {
        DataType::Bool => FieldKind::Bool,
        DataType::Int8 => FieldKind::Int8,
        DataType::Int16 => FieldKind::Int16,
        DataType::Int32 => FieldKind::Int32,
        DataType::Int64 => FieldKind::Int64,
        DataType::Float => FieldKind::Float,
        DataType::Double => FieldKind::Double,
        DataType::VarChar { max_length } => FieldKind::VarChar { max_length },
        DataType::Json => FieldKind::Json,
        DataType::FloatVector { dim } => FieldKind::FloatVector { dim: dim as usize },
    }
}

/// The store schema of a validated wire schema (the dynamic field becomes the JSON column
/// [`DYNAMIC_COLUMN`]).
///
/// # Errors
/// [`Error::InvalidParameter`] when a field is named [`DYNAMIC_COLUMN`] while the dynamic
/// field is enabled.
pub fn store_schema(schema: &CollectionSchema, fields: &Fields) -> Result<StoreSchema> {
    if fields.dynamic && schema.fields.iter().any(|f| f.name == DYNAMIC_COLUMN) {
        return Err(Error::InvalidParameter(format!(
            "field name {DYNAMIC_COLUMN} is reserved for the dynamic field in facedb: invalid parameter"
        )));
    }
    Ok(StoreSchema {
        name: schema.name.clone(),
        description: schema.description.clone(),
        fields: fields
            .fields
            .iter()
            .map(|f| StoreField {
                name: crate::data::store_name(f).to_string(),
                description: f.description.clone(),
                data_type: store_type(f.kind),
                is_primary: f.is_primary,
                auto_id: f.auto_id,
            })
            .collect(),
    })
}

fn same_store_schema(a: &StoreSchema, b: &StoreSchema) -> bool {
    a.name == b.name
        && a.fields.len() == b.fields.len()
        && a.fields.iter().zip(&b.fields).all(|(x, y)| {
            x.name == y.name
                && x.data_type == y.data_type
                && x.is_primary == y.is_primary
                && x.auto_id == y.auto_id
        })
}

/// The wire schema of a store collection created without Milvus (the embedded API): field ids
/// 100, 101, ... in declaration order, `dim` / `max_length` type parameters as strings.
pub fn wire_schema(s: &StoreSchema) -> CollectionSchema {
    let kv = |k: &str, v: String| KeyValuePair {
        key: k.into(),
        value: v,
    };
    #[allow(deprecated)] // collection-level autoID mirrors the key's, as Milvus sets it
    CollectionSchema {
        name: s.name.clone(),
        description: s.description.clone(),
        auto_id: s.fields.iter().any(|f| f.is_primary && f.auto_id),
        fields: s
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let kind = kind_of(f.data_type);
                let type_params = match kind {
                    FieldKind::VarChar { max_length } => {
                        vec![kv("max_length", max_length.to_string())]
                    }
                    FieldKind::FloatVector { dim } => vec![kv("dim", dim.to_string())],
                    _ => vec![],
                };
                FieldSchema {
                    field_id: FIRST_FIELD_ID + i as i64,
                    name: f.name.clone(),
                    is_primary_key: f.is_primary,
                    description: f.description.clone(),
                    data_type: kind.proto() as i32,
                    type_params,
                    auto_id: f.auto_id,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}
