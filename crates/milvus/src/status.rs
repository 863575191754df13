//! Milvus-shaped errors and their wire status.
//!
//! Milvus 2.3 answers every failed request with a `common.Status` carrying two codes: the
//! deprecated `error_code` (the `ErrorCode` enum, read by pymilvus 2.2.x) and the newer `code`
//! (the `merr` numbers of `pkg/util/merr/errors.go`, read by pymilvus >= 2.3.2). Both are set
//! here, as Milvus 2.3.5 sets them; see `../shared/data/milvus-reference/` for the verbatim
//! answers this module reproduces.
//!
//! [`Error`] is the crate's error type. The one mapping from a store error to an [`Error`] is
//! [`Error::from_store`]; the one mapping from an [`Error`] to the wire is [`Error::status`].

use facedb_store::StoreError;
use milvus::proto::common::{ErrorCode, Status};

/// `merr.ErrCollectionNotFound`.
pub const CODE_COLLECTION_NOT_FOUND: i32 = 100;
/// `merr.ErrCollectionNotLoaded`.
pub const CODE_COLLECTION_NOT_LOADED: i32 = 101;
/// `merr.ErrIndexNotFound`.
pub const CODE_INDEX_NOT_FOUND: i32 = 700;
/// `merr.ErrParameterInvalid`.
pub const CODE_PARAMETER_INVALID: i32 = 1100;
/// `merr.errUnexpected`: the code Milvus 2.3.5 gives most request errors (wrong top-k, unknown
/// output field, malformed expression, metric mismatch, ...).
pub const CODE_UNEXPECTED: i32 = 65535;

/// An error answered to a Milvus client.
///
/// The display text is the status `reason` the client shows (pymilvus raises it as
/// `MilvusException(code, message)`); the texts follow Milvus 2.3.5 where it has an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The named collection does not exist (code 100, `CollectionNotExists`).
    #[error("collection not found[database={database}][collection={name}]")]
    CollectionNotFound {
        /// Database name as the client sent it (`default` when empty).
        database: String,
        /// Collection name.
        name: String,
    },
    /// A search or query on a collection that is not loaded (code 101).
    #[error("failed to {op}: collection not loaded[collection={collection_id}]")]
    CollectionNotLoaded {
        /// `search` or `query`.
        op: &'static str,
        /// The collection's id, as Milvus prints it.
        collection_id: i64,
    },
    /// The collection (or field) has no index where one is needed (code 700, `IndexNotExist`).
    #[error("index not found[collection={collection}]")]
    IndexNotFound {
        /// Collection name.
        collection: String,
    },
    /// A parameter Milvus reports as `ErrParameterInvalid` (code 1100, `IllegalArgument`).
    #[error("{0}")]
    InvalidParameter(String),
    /// A request Milvus 2.3.5 rejects with its generic code (65535, `UnexpectedError`): wrong
    /// top-k, unknown field, wrong dimension, metric mismatch, and so on. The text says what.
    #[error("{0}")]
    Rejected(String),
    /// A filter expression that does not parse or does not fit the schema (code 65535).
    #[error("failed to create query plan: cannot parse expression: {expr}, error: {detail}")]
    InvalidExpr {
        /// The expression as sent.
        expr: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A feature facedb does not have yet (code 65535); never a wrong answer instead.
    #[error("not supported yet by facedb: {0}")]
    Unsupported(String),
    /// Storage or another internal failure (code 65535); the request may be retried.
    #[error("facedb internal error: {0}")]
    Internal(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Builds [`Error::CollectionNotFound`] for the default database.
    pub fn collection_not_found(name: &str) -> Self {
        Self::CollectionNotFound {
            database: "default".into(),
            name: name.into(),
        }
    }

    /// The one mapping from a store error to a Milvus-shaped error (Milvus 2.3.5's texts where
    /// it has them). Expression errors need the expression: see [`Error::from_store_expr`].
    pub fn from_store(e: StoreError) -> Self {
        Self::from_store_expr(e, "")
    }

    /// [`Error::from_store`] for a request that carried filter expression `expr`.
    pub fn from_store_expr(e: StoreError, expr: &str) -> Self {
        match e {
            StoreError::CollectionNotFound { name } => Self::collection_not_found(&name),
            StoreError::CollectionExists { name } => {
                Self::Rejected(format!("collection {name} already exists"))
            }
            StoreError::InvalidSchema(m) => Self::InvalidParameter(format!("{m}: invalid parameter")),
            StoreError::DimensionMismatch { expected, got, row } => Self::Rejected(format!(
                "vector dimension mismatch: the vector at row {row} has dim {got}, the collection's dim is {expected}"
            )),
            StoreError::NonFinite { field, row } => Self::Rejected(format!(
                "the vector of field {field} at row {row} contains NaN or infinity"
            )),
            StoreError::VarCharTooLong {
                field,
                len,
                max_length,
                row,
            } => Self::Rejected(format!(
                "length of varchar field {field} exceeds max length, row number: {row}, length: {len}, max length: {max_length}"
            )),
            StoreError::InvalidValue { field, row, reason } => Self::Rejected(format!(
                "invalid value for field {field} at row {row}: {reason}"
            )),
            StoreError::MissingField { name } => Self::InvalidParameter(format!(
                "fieldSchema({name}) has no corresponding fieldData pass in: invalid parameter"
            )),
            StoreError::UnknownField { name } => Self::Rejected(format!("field {name} not exist")),
            StoreError::RowCountMismatch {
                field,
                expected,
                got,
            } => Self::InvalidParameter(format!(
                "the num_rows ({got}) of field ({field}) is not equal to passed num_rows ({expected}): invalid parameter[expected={expected}][actual={got}]"
            )),
            StoreError::DuplicatePrimaryKey { key } => Self::InvalidParameter(format!(
                "duplicate primary key {key}: facedb rejects a primary key that already exists or appears twice in one batch (nothing of this batch was written; use upsert to replace rows): invalid parameter"
            )),
            StoreError::TopkOutOfRange { topk } => Self::Rejected(format!(
                "topk [{topk}] is invalid, top k should be in range [1, 16384], but got {topk}"
            )),
            e @ StoreError::NqOutOfRange { .. } => Self::Rejected(e.to_string()),
            StoreError::InvalidParameter(m) => Self::Rejected(m),
            StoreError::InvalidExpr(detail) => Self::InvalidExpr {
                expr: expr.to_string(),
                detail: detail.to_string(),
            },
            StoreError::Unsupported(m) => Self::Unsupported(m),
            // Only opening a data directory meets a lock: a user's condition, not a fault.
            e @ StoreError::Locked { .. } => Self::Rejected(e.to_string()),
            e @ (StoreError::Corrupt { .. }
            | StoreError::Io { .. }
            | StoreError::Poisoned { .. }) => Self::Internal(e.to_string()),
        }
    }

    /// The `merr` code (`Status.code`) of this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::CollectionNotFound { .. } => CODE_COLLECTION_NOT_FOUND,
            Self::CollectionNotLoaded { .. } => CODE_COLLECTION_NOT_LOADED,
            Self::IndexNotFound { .. } => CODE_INDEX_NOT_FOUND,
            Self::InvalidParameter(_) => CODE_PARAMETER_INVALID,
            Self::Rejected(_)
            | Self::InvalidExpr { .. }
            | Self::Unsupported(_)
            | Self::Internal(_) => CODE_UNEXPECTED,
        }
    }

    /// The deprecated `ErrorCode` (`Status.error_code`) Milvus 2.3.5 derives from
    /// [`Error::code`] (`merr.oldCode`).
    pub fn error_code(&self) -> ErrorCode {
        match self.code() {
            CODE_COLLECTION_NOT_FOUND => ErrorCode::CollectionNotExists,
            CODE_PARAMETER_INVALID => ErrorCode::IllegalArgument,
            CODE_INDEX_NOT_FOUND => ErrorCode::IndexNotExist,
            _ => ErrorCode::UnexpectedError,
        }
    }

    /// The wire status of this error.
    pub fn status(&self) -> Status {
        status_with(self.error_code(), self.code(), self.to_string())
    }

    /// The status `DescribeCollection` answers for a missing collection: Milvus 2.3.5 keeps
    /// `code` 100 but sets `error_code` to `UnexpectedError` and prefixes the reason with
    /// "can't find collection", because pymilvus 2.2.x's `has_collection` tests exactly that.
    pub fn describe_status(&self) -> Status {
        match self {
            Self::CollectionNotFound { database, name } => status_with(
                ErrorCode::UnexpectedError,
                CODE_COLLECTION_NOT_FOUND,
                format!("can't find collection[database={database}][collection={name}]"),
            ),
            other => other.status(),
        }
    }
}

/// A success status.
pub fn success() -> Status {
    Status::default()
}

/// A status with both codes and a reason.
#[allow(deprecated)] // `error_code` is deprecated in the proto, yet pymilvus 2.2 reads only it
pub fn status_with(error_code: ErrorCode, code: i32, reason: String) -> Status {
    Status {
        error_code: error_code as i32,
        reason,
        code,
        ..Status::default()
    }
}

/// The status of a result: success or the error's status.
pub fn status_of<T>(r: &Result<T>) -> Status {
    match r {
        Ok(_) => success(),
        Err(e) => e.status(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(deprecated)]
    fn codes(s: &Status) -> (i32, i32) {
        (s.error_code, s.code)
    }

    #[test]
    fn not_found_has_both_codes() {
        let e = Error::collection_not_found("people");
        assert_eq!(codes(&e.status()), (4, 100));
        assert_eq!(
            e.status().reason,
            "collection not found[database=default][collection=people]"
        );
        let d = e.describe_status();
        assert_eq!(codes(&d), (1, 100));
        assert!(d.reason.contains("can't find collection"));
    }

    #[test]
    fn generic_rejections_use_unexpected_codes() {
        let e = Error::Rejected("field age not exist".into());
        assert_eq!(codes(&e.status()), (1, 65535));
        let e = Error::CollectionNotLoaded {
            op: "search",
            collection_id: 7,
        };
        assert_eq!(codes(&e.status()), (1, 101));
        assert_eq!(
            e.to_string(),
            "failed to search: collection not loaded[collection=7]"
        );
        assert_eq!(
            codes(&Error::InvalidParameter("x".into()).status()),
            (5, 1100)
        );
        assert_eq!(
            codes(
                &Error::IndexNotFound {
                    collection: "c".into()
                }
                .status()
            ),
            (25, 700)
        );
    }
}
