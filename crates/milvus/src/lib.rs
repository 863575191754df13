//! # facedb-milvus
//!
//! The Milvus gRPC service (`milvus.proto.milvus.MilvusService`) over the embedded
//! [`facedb_store`], so code written for a Milvus server (pymilvus 2.2.x and 2.3.x, ORM and
//! `MilvusClient`) runs unchanged against one facedb process. The protobuf types and server
//! stubs are the ones the `milvus-sdk-rust` crate generates.
//!
//! What a client sees:
//! - collections with Milvus's data model and limits; the schema sent to `CreateCollection`
//!   comes back byte-for-byte through `DescribeCollection` (kept in `<data>/milvus-meta.json`
//!   with index descriptions and the loaded state);
//! - the store's indexes (FLAT, IVF_FLAT, IVF_SQ8, HNSW, built in the background per sealed
//!   segment); other index types are recorded, reported by `DescribeIndex`, and searched
//!   exactly; L2 is squared, IP and COSINE larger-is-better, as Milvus;
//! - `Insert` / `Upsert` decoded from the buffered request as one slice (see `bulk.rs`), and
//!   acknowledged once the WAL is fsynced (or, with [`ServeConfig::fsync`] off, once it is
//!   written, Milvus standalone's durability);
//! - every consistency level behaves as Strong, at no cost: a search sees every acknowledged
//!   write;
//! - errors with Milvus's status codes and texts (see [`Error`]); duplicate primary keys are
//!   rejected (Milvus keeps both);
//! - filter expressions (`Search` `dsl`, `Query` `expr`, `Delete` `expr`) are evaluated by the
//!   store (`facedb-expr`, Milvus 2.3 grammar); `$meta["key"]` reaches the dynamic field.
//!   Bare dynamic keys (`color == "red"` for a key of `$meta`) are not resolved yet.
//!
//! Run it with `facedb serve` (crate `facedb`) or [`run`]; [`serve`] / [`serve_on`] embed it
//! in an async program.
//!
//! ```no_run
//! # async fn run() -> Result<(), facedb_milvus::ServeError> {
//! let config = facedb_milvus::ServeConfig::new("facedb-data");
//! facedb_milvus::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
#![warn(missing_docs)]

mod bulk;
mod catalog;
mod core;
mod data;
mod meta;
mod params;
mod schema;
mod server;
mod service;
mod status;

pub use meta::META_FILE;
pub use server::{
    run, serve, serve_on, shutdown_signal, AuthInterceptor, Credentials, ServeConfig, ServeError,
    DEFAULT_USER, MAX_MESSAGE_BYTES,
};
pub use service::{server_version, MilvusService, MILVUS_API_VERSION};
pub use status::{Error, Result};

/// The generated Milvus protobuf types (re-exported from `milvus-sdk-rust`).
pub use milvus::proto;
