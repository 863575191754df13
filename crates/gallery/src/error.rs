//! The one error type of this crate.

/// Everything that can go wrong in `facedb-gallery`. Nothing is partially written when one
/// of these is returned (a write is one store batch).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GalleryError {
    /// The underlying store refused or failed (I/O, validation, a bad filter).
    #[error(transparent)]
    Store(#[from] facedb_store::StoreError),

    /// The face pipeline failed (decoding, models, dlib).
    #[error(transparent)]
    Face(#[from] facedb_face::FaceError),

    /// A person name is empty, longer than 255 bytes, or reserved.
    #[error("invalid person name {name:?}: {reason}")]
    InvalidPerson {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// An image key is empty or longer than the `image` field's 1024 bytes.
    #[error("invalid image key ({len} bytes): {reason}")]
    InvalidImage {
        /// Length of the key in bytes.
        len: usize,
        /// Why it is refused.
        reason: &'static str,
    },

    /// An encoding holds NaN or an infinity.
    #[error("face encoding contains NaN or infinity")]
    NonFinite,

    /// A parameter is out of range (`top` of 0, a negative or NaN tolerance).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),

    /// An existing collection has a schema other than the gallery's.
    #[error("collection {name} exists with a schema that is not a face gallery's: {reason}")]
    SchemaMismatch {
        /// The collection name.
        name: String,
        /// The first difference found.
        reason: String,
    },

    /// The evaluation set is unusable (no manifest, a malformed row, no enrolled person).
    #[error("evaluation: {0}")]
    Eval(String),

    /// Reading a file or directory failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for `Result<T, GalleryError>`.
pub type Result<T, E = GalleryError> = std::result::Result<T, E>;
