//! Test support: the labelled reference descriptors and a calibrated 100k dataset.

#![allow(dead_code)]

use std::path::PathBuf;

use facedb_index::synth::{label_reference_faces, FaceData, FaceModel};

/// `shared/data/reference/face_recognition_encodings.json`, beside the repository.
pub fn reference_json() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/reference/face_recognition_encodings.json")
}

/// The reference encodings labelled by identity (see `synth::label_reference_faces`), or
/// `None` (with a message) where the file is absent.
pub fn reference_samples() -> Option<Vec<(String, Vec<f32>)>> {
    let path = reference_json();
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} not found", path.display());
        return None;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).expect("reference JSON parses");
    let images = doc["images"].as_object().expect("`images` object");
    let mut faces = Vec::new();
    for (name, img) in images {
        for (i, face) in img["faces"].as_array().expect("faces").iter().enumerate() {
            let enc: Vec<f32> = face["encoding"]
                .as_array()
                .expect("encoding")
                .iter()
                .map(|v| v.as_f64().expect("number") as f32)
                .collect();
            faces.push((name.clone(), i, enc));
        }
    }
    Some(label_reference_faces(&faces))
}

/// The model fitted on the reference encodings.
pub fn reference_model() -> Option<FaceModel> {
    reference_samples().map(|s| FaceModel::fit(&s).expect("reference fit"))
}

/// 100k calibrated descriptors: 25,000 identities x 4 samples, 1000 enrolled + 1000 open
/// probes, seed 20251130.
pub fn calibrated_100k() -> Option<FaceData> {
    reference_model().map(|m| m.sample(25_000, 4, 1000, 1000, 20_251_130).expect("sample"))
}
