//! # facedb-store
//!
//! The embedded facedb database, with Milvus's data model: a [`Database`] directory holds
//! collections; a [`Collection`] has a schema (INT64 or VARCHAR primary key, scalar fields,
//! one FLOAT_VECTOR), takes inserts, upserts and deletes through a write-ahead log (fsynced
//! before a write is acknowledged), keeps new rows in a growing segment and seals them into
//! immutable, memory-mapped segment files on [`Collection::flush`].
//!
//! Searches are exact (FLAT, [`facedb_index`]) and strongly consistent: a search sees every
//! acknowledged write. L2 distances are squared, as in Milvus and Faiss.
//!
//! ```
//! use facedb_store::*;
//! let dir = tempfile::tempdir().unwrap();
//! let db = Database::open(dir.path()).unwrap();
//! let schema = CollectionSchema {
//!     name: "people".into(),
//!     description: String::new(),
//!     fields: vec![
//!         FieldSchema::primary("id", DataType::Int64, false),
//!         FieldSchema::new("name", DataType::VarChar { max_length: 200 }),
//!         FieldSchema::new("metrics", DataType::FloatVector { dim: 3 }),
//!     ],
//! };
//! let people = db.create_collection(schema).unwrap();
//! people.insert(Batch::new()
//!     .with("id", ColumnData::Int64(vec![1, 2]))
//!     .with("name", ColumnData::VarChar(vec!["xiaoming".into(), "xiaoyue".into()]))
//!     .with("metrics", ColumnData::FloatVector { dim: 3, data: vec![1.8, 75.0, 25.0, 1.75, 70.0, 24.0] }))
//!     .unwrap();
//! let hits = people.search(&SearchRequest::new(vec![vec![1.75, 72.0, 24.0]], Metric::L2, 10)).unwrap();
//! assert_eq!(hits[0][0].pk, PrimaryKey::Int(2));
//! assert_eq!(hits[0][0].distance, 4.0); // squared L2
//! ```
#![deny(missing_docs)]

mod codec;
mod collection;
mod data;
mod db;
mod error;
mod filter;
mod scalar_index;
mod schema;
mod segment;
mod vindex;
mod wal;

pub use collection::{Collection, Hit, RangeParams, Row, SearchRequest, SegmentInfo};
pub use data::{Batch, ColumnData, PrimaryKey, Value};
pub use db::Database;
pub use error::{Result, StoreError};
pub use facedb_index::Metric;
pub use facedb_index::{IndexSpec, SearchKnobs};
pub use schema::{
    validate_name, CollectionSchema, DataType, FieldSchema, MAX_DIM, MAX_FIELDS, MAX_NAME_LENGTH,
    MAX_NQ, MAX_TOPK, MAX_VARCHAR_LENGTH,
};
pub use vindex::{IndexConfig, IndexProgress};
pub use wal::WalRecovery;

/// Database options.
#[derive(Debug, Clone)]
pub struct Options {
    /// fsync the WAL before acknowledging a write (default true). Turning it off keeps
    /// writes safe from a process crash but not from power loss.
    pub fsync: bool,
    /// Seal the growing segment once its vectors reach this many bytes (default 256 MiB).
    pub seal_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fsync: true,
            seal_bytes: 256 << 20,
        }
    }
}
