//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in `facedb-face`. Bad input never panics: it is one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FaceError {
    /// The input has zero bytes.
    #[error("empty image: 0 bytes")]
    Empty,

    /// The bytes are not any image format we decode (sniffed from the content, not from
    /// the file name), e.g. a text file named `.jpg`.
    #[error(
        "not a supported image (JPEG, PNG, GIF, BMP, TIFF, WebP, PNM): content not recognised"
    )]
    UnknownFormat,

    /// The data is in a known format but malformed (bad header, bad checksum, bad codes).
    #[error("corrupt {format} image: {reason}")]
    Corrupt {
        /// The sniffed format, e.g. `"JPEG"`.
        format: &'static str,
        /// What the decoder said.
        reason: String,
    },

    /// The data ends before the image does.
    #[error("truncated {format} image: {reason}")]
    Truncated {
        /// The sniffed format.
        format: &'static str,
        /// What the decoder said.
        reason: String,
    },

    /// A valid file of a known format that uses a feature we do not decode (e.g. a colour
    /// space or bit depth the codec refuses).
    #[error("unsupported {format} image: {reason}")]
    Unsupported {
        /// The sniffed format.
        format: &'static str,
        /// What is not supported.
        reason: String,
    },

    /// The image has more pixels than the decoder's limit (a defence against
    /// decompression bombs); checked from the header, before decoding.
    #[error("image of {width}x{height} pixels is over the limit of {max_pixels} pixels")]
    TooLarge {
        /// Width in pixels, from the header.
        width: u32,
        /// Height in pixels, from the header.
        height: u32,
        /// The limit in force ([`crate::DecodeOptions::max_pixels`]).
        max_pixels: u64,
    },

    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A model file is absent from the models directory (run `scripts/setup-face.sh`).
    #[error("model file {path} not found (run scripts/setup-face.sh, or set FACEDB_MODELS)")]
    ModelMissing {
        /// The path that was looked for.
        path: PathBuf,
    },

    /// A model file's SHA-256 differs from the one this crate was built for.
    #[error("model file {path} has SHA-256 {actual}, expected {expected}")]
    ModelChecksum {
        /// The file.
        path: PathBuf,
        /// The SHA-256 in [`crate::models`] (lower-case hex).
        expected: &'static str,
        /// The file's SHA-256 (lower-case hex).
        actual: String,
    },

    /// dlib refused to load a model file.
    #[error("cannot load model {path}: {reason}")]
    ModelLoad {
        /// The file.
        path: PathBuf,
        /// dlib's message.
        reason: String,
    },

    /// An argument is out of range (an empty image, a box with right < left, a zero size).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// dlib threw an exception while processing (message from dlib).
    #[error("dlib error: {0}")]
    Dlib(String),
}

/// Shorthand for `Result<T, FaceError>`.
pub type Result<T, E = FaceError> = std::result::Result<T, E>;
