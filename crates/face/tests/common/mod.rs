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

/// A TIFF-structured EXIF block with one tag, Orientation (0x0112) = `orientation`,
/// big-endian ("MM"), as cameras write it.
pub fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"MM\0\x2a");
    t.extend_from_slice(&8u32.to_be_bytes()); // offset of IFD0
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes()); // count
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]); // value padding
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

/// A PNG with an `eXIf` chunk (Orientation = `orientation`) inserted right after IHDR.
pub fn png_with_exif(png: &[u8], orientation: u16) -> Vec<u8> {
    let ihdr_end = 8 + 4 + 4 + 13 + 4;
    let body = [b"eXIf".as_slice(), &exif_tiff(orientation)].concat();
    let mut chunk = ((body.len() - 4) as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32(&body).to_be_bytes());
    [&png[..ihdr_end], &chunk, &png[ihdr_end..]].concat()
}

/// A JPEG with an APP1 `Exif` segment (Orientation = `orientation`) right after SOI.
pub fn jpeg_with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let payload = [b"Exif\0\0".as_slice(), &exif_tiff(orientation)].concat();
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// CRC-32 (IEEE) as PNG chunks use it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
