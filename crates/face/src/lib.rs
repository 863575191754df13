//! The facedb face pipeline: image decoding and dlib's face recognition, with the same
//! steps and results as face_recognition 1.3.0.
//!
//! - [`decode_image`]: bytes -> upright 8-bit RGB; format by content (JPEG through
//!   libjpeg-turbo for bit-exact parity, PNG, GIF, BMP, TIFF, WebP, PNM through the
//!   `image` crate), EXIF orientation applied, pixel limit, typed errors.
//! - [`Engine`]: one per worker thread. [`Engine::detect`] (HOG frontal face detector,
//!   upsampling, boxes clipped as `face_locations`), [`Engine::landmarks`]
//!   (`shape_predictor_5_face_landmarks`), [`Engine::encode`] (150 px face chip, padding
//!   0.25, `dlib_face_recognition_resnet_model_v1`, 128-d), and [`Engine::faces`] for all
//!   three in one call.
//! - [`ModelFiles`] / [`default_models_dir`]: the model files (fetched by
//!   `scripts/setup-face.sh`, checked by SHA-256; this crate never downloads anything).
//!
//! Source: dlib 19.24 (Davis E. King, <http://dlib.net>): HOG detector (Dalal & Triggs 2005
//! features, Felzenszwalb's FHOG), "One Millisecond Face Alignment with an Ensemble of
//! Regression Trees" (Kazemi & Sullivan 2014), a ResNet-29 trained with a metric loss
//! (99.38% on LFW). The C++ shim in `cpp/` mirrors dlib's Python binding.
//!
//! ```no_run
//! use facedb_face::{decode_image, default_models_dir, face_distance, Engine};
//!
//! let mut engine = Engine::load(default_models_dir())?;
//! let img = decode_image(&std::fs::read("obama.jpg").expect("readable"))?;
//! for face in engine.faces(&img)? {
//!     println!("{:?} {:?}", face.bbox, face.landmarks.nose_tip());
//!     println!("self-distance {}", face_distance(&face.encoding, &face.encoding));
//! }
//! # Ok::<(), facedb_face::FaceError>(())
//! ```
#![deny(missing_docs)]

mod decode;
mod engine;
mod error;
mod ffi;
pub mod models;

pub use decode::{
    decode_image, decode_image_with, exif_orientation, load_image, sniff_format, DecodeOptions,
    ImageKind, DEFAULT_MAX_PIXELS,
};
pub use engine::{
    face_chip, face_distance, set_blas_threads, DetectPass, Detection, Encoding, Engine, Face,
    FaceBox, FaceOptions, Landmarks, Point, CHIP_PADDING, CHIP_SIZE, ENCODING_DIM,
    MAX_UPSAMPLED_PIXELS,
};
pub use error::{FaceError, Result};
pub use image::RgbImage;
pub use models::{default_models_dir, ModelFiles};
