//! The store's error type.

use crate::data::PrimaryKey;

/// Everything that can go wrong in `facedb-store`. Every variant means nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No collection of that name.
    #[error("can't find collection: {name}")]
    CollectionNotFound {
        /// Requested collection name.
        name: String,
    },
    /// A collection of that name already exists.
    #[error("collection {name} already exists")]
    CollectionExists {
        /// The duplicate name.
        name: String,
    },
    /// The schema breaks a rule (names, one primary key, one vector field, limits).
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    /// A vector has the wrong dimension.
    #[error("expected dim {expected}, got {got} at row {row}")]
    DimensionMismatch {
        /// The collection's dimension.
        expected: usize,
        /// The dimension received.
        got: usize,
        /// Row (or query) number in the request.
        row: usize,
    },
    /// A vector holds NaN or an infinity.
    #[error("vector at row {row} of field {field} contains NaN or infinity")]
    NonFinite {
        /// Vector field name.
        field: String,
        /// Row (or query) number in the request.
        row: usize,
    },
    /// A VARCHAR value is longer than the field's `max_length` (in bytes, as Milvus).
    #[error("the length ({len}) of varchar field {field} exceeds max length ({max_length}) at row {row}")]
    VarCharTooLong {
        /// Field name.
        field: String,
        /// Length in bytes.
        len: usize,
        /// The field's limit in bytes.
        max_length: usize,
        /// Row number.
        row: usize,
    },
    /// A value does not fit the field's type (integer out of range, invalid JSON, wrong type).
    #[error("invalid value for field {field} at row {row}: {reason}")]
    InvalidValue {
        /// Field name.
        field: String,
        /// Row number.
        row: usize,
        /// What is wrong.
        reason: String,
    },
    /// A field the schema requires is absent from the batch.
    #[error("missing field {name} in the inserted data")]
    MissingField {
        /// Field name.
        name: String,
    },
    /// A field is not in the schema.
    #[error("field {name} does not exist")]
    UnknownField {
        /// Field name.
        name: String,
    },
    /// Columns of a batch have different lengths.
    #[error("column {field} has {got} rows, expected {expected}")]
    RowCountMismatch {
        /// Field name.
        field: String,
        /// Rows in the first column.
        expected: usize,
        /// Rows in this column.
        got: usize,
    },
    /// The primary key already exists in the collection or twice in the batch.
    #[error("duplicate primary key {key}")]
    DuplicatePrimaryKey {
        /// The offending key.
        key: PrimaryKey,
    },
    /// `topk` outside `1..=16384`.
    #[error("topk [{topk}] is invalid, top k should be in range [1, 16384]")]
    TopkOutOfRange {
        /// The requested topk.
        topk: usize,
    },
    /// `nq` (number of query vectors) outside `1..=16384`.
    #[error("nq [{nq}] is invalid, nq (number of search vector per search request) should be in range [1, 16384]")]
    NqOutOfRange {
        /// The number of queries.
        nq: usize,
    },
    /// A request parameter is invalid (range search bounds, offsets, …).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A filter expression could not be parsed, checked or evaluated (the error carries the
    /// byte offset of the problem in the expression).
    #[error("invalid expression: {0}")]
    InvalidExpr(#[from] facedb_expr::ExprError),
    /// The feature is not implemented yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A file on disk is damaged beyond what recovery may drop.
    #[error("corrupt data in {path}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: String,
        /// What was found.
        reason: String,
    },
    /// An operating-system I/O error.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another process (or another open `Database`) holds the data directory.
    #[error("the database directory {path} is in use by another process (facedb serve or another facedb command); stop it or use another --data directory")]
    Locked {
        /// The data directory.
        path: String,
    },
    /// The collection refused writes after an earlier failed fsync (restart to recover).
    #[error("collection {name} is read-only after a failed write: {reason}")]
    Poisoned {
        /// Collection name.
        name: String,
        /// The first failure.
        reason: String,
    },
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: impl AsRef<std::path::Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: impl AsRef<std::path::Path>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.as_ref().display().to_string(),
            source,
        })
    }
}
