//! Shared test helpers: where the models, reference data and images are.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use facedb_face::{Engine, ModelFiles};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$FACEDB_MODELS`, else `<repo>/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("FACEDB_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => manifest_dir().join("../../models"),
    }
}

/// An engine, or `None` (with a message) when the models are absent.
pub fn engine() -> Option<Engine> {
    let dir = models_dir();
    match ModelFiles::verify(&dir) {
        Ok(files) => {
            Some(Engine::from_models(&files).expect("models verified but dlib cannot load them"))
        }
        Err(facedb_face::FaceError::ModelMissing { path }) => {
            eprintln!(
                "SKIP: model {} absent: run scripts/setup-face.sh (or set FACEDB_MODELS)",
                path.display()
            );
            None
        }
        Err(e) => panic!("models in {} are unusable: {e}", dir.display()),
    }
}

pub fn shared_dir() -> PathBuf {
    manifest_dir().join("../../../shared")
}

pub fn dev_dir() -> Option<PathBuf> {
    let d = shared_dir().join("data/faces/dev");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("SKIP: {} absent", d.display());
        None
    }
}

pub fn reference_json() -> Option<serde_json::Value> {
    let p = shared_dir().join("data/reference/face_recognition_encodings.json");
    match std::fs::read(&p) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("reference JSON parses")),
        Err(_) => {
            eprintln!("SKIP: {} absent", p.display());
            None
        }
    }
}

/// Where a reference image named as in the reference JSON lives on this machine, if anywhere.
pub fn find_reference_image(name: &str) -> Option<PathBuf> {
    let dlib = Path::new("/usr/share/doc/libdlib19.1/examples");
    let candidates = [
        models_dir().join("test_images").join(name),
        dlib.join("faces").join(name),
        dlib.join(name), // johns/<person>/<file>
    ];
    candidates.into_iter().find(|p| p.is_file())
}

pub fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// A face_recognition test image; panics (with the fix) when absent, since the setup script
/// that provides the models provides these too.
pub fn test_image(name: &str) -> PathBuf {
    find_reference_image(name).unwrap_or_else(|| {
        panic!(
            "{name} absent from {}: run scripts/setup-face.sh",
            models_dir().join("test_images").display()
        )
    })
}
