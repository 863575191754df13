//! The face commands through the real binary, on face_recognition 1.3.0's test images
//! (`models/test_images`, put there by scripts/setup-face.sh) and the dev set
//! (`../shared/data/faces/dev`). Each test skips, saying why, where those are absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn models() -> PathBuf {
    match std::env::var_os("FACEDB_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo().join("models"),
    }
}

/// The test images folder, or `None` (with a message) when setup has not been run.
fn test_images() -> Option<PathBuf> {
    let m = models();
    let ti = m.join("test_images");
    let needed = [
        m.join("dlib_face_recognition_resnet_model_v1.dat"),
        m.join("shape_predictor_5_face_landmarks.dat"),
        ti.join("obama.jpg"),
        ti.join("Tom_Hanks_54745.png"),
    ];
    if let Some(missing) = needed.iter().find(|p| !p.is_file()) {
        eprintln!(
            "SKIPPED: {} is missing (run scripts/setup-face.sh)",
            missing.display()
        );
        return None;
    }
    Some(ti)
}

fn dev_dir() -> Option<PathBuf> {
    let d = repo().join("../shared/data/faces/dev");
    if d.join("manifest.csv").is_file() {
        Some(d)
    } else {
        eprintln!("SKIPPED: {} is absent", d.display());
        None
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

fn facedb(data: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_facedb"))
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--models")
        .arg(models())
        .arg("--threads")
        .arg("2")
        .output()
        .expect("run facedb");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A gallery folder with obama/obama.jpg and biden/biden.jpg, plus a `_skipped` folder
/// (holding another obama photo) that must not become a person.
fn people_dir(ti: &Path, root: &Path) -> PathBuf {
    let g = root.join("people");
    for (person, file) in [
        ("obama", "obama.jpg"),
        ("biden", "biden.jpg"),
        ("_skipped", "obama2.jpg"),
    ] {
        std::fs::create_dir_all(g.join(person)).unwrap();
        std::fs::copy(ti.join(file), g.join(person).join(file)).unwrap();
    }
    g
}

/// Enrolled obama + biden: (tempdir, data dir).
fn enrolled(ti: &Path) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let g = people_dir(ti, t.path());
    let data = t.path().join("db");
    let out = facedb(&data, &["enroll", s(&g), "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    (t, data)
}

/// A 64x64 grey 24-bit BMP: no face in it.
fn blank_bmp() -> Vec<u8> {
    let (w, h) = (64u32, 64u32);
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut b = Vec::new();
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 24]);
    b.resize(size as usize, 128);
    b
}

#[test]
fn enroll_skips_underscore_folders_and_is_idempotent() {
    let Some(ti) = test_images() else { return };
    let t = tempfile::tempdir().unwrap();
    let g = people_dir(&ti, t.path());
    let data = t.path().join("db");
    let out = facedb(&data, &["enroll", s(&g), "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["summary"]["enrolled"], 2);
    assert_eq!(j["summary"]["persons"], 2);
    assert_eq!(j["summary"]["samples"], 2);
    let images = j["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "the _skipped folder is not a person");
    assert!(images.iter().all(|i| i["status"] == "enrolled"));
    let biden = images.iter().find(|i| i["person"] == "biden").unwrap();
    assert!(biden["image"]
        .as_str()
        .unwrap()
        .starts_with("biden/biden.jpg#sha256="));
    assert_eq!(biden["faces"], 1);

    let again = facedb(&data, &["enroll", s(&g), "--json"]).json();
    assert_eq!(again["summary"]["enrolled"], 0);
    assert_eq!(again["summary"]["already_enrolled"], 2);
    assert_eq!(again["summary"]["samples"], 2);

    let people = facedb(&data, &["people", "--json"]).json();
    assert_eq!(
        people,
        serde_json::json!({"persons": [
            {"person": "biden", "samples": 1, "mean": false},
            {"person": "obama", "samples": 1, "mean": false}], "samples": 2})
    );
    let human = facedb(&data, &["people"]);
    assert_eq!(human.stdout, "biden\t1\nobama\t1\n2 persons, 2 samples\n");
}

#[test]
fn identify_known_unknown_and_no_face() {
    let Some(ti) = test_images() else { return };
    let (t, data) = enrolled(&ti);
    let blank = t.path().join("blank.bmp");
    std::fs::write(&blank, blank_bmp()).unwrap();
    let files = [
        ti.join("obama2.jpg"),
        ti.join("obama3.jpg"),
        ti.join("Tom_Hanks_54745.png"),
        blank.clone(),
    ];
    let mut args = vec!["identify", "--json", "--top", "2"];
    args.extend(files.iter().map(|p| s(p)));
    let out = facedb(&data, &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    let images = j["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    for obama in &images[..2] {
        let faces = obama["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        assert_eq!(f["name"], "obama");
        assert_eq!(f["verdict"], "known");
        let d = f["distance"].as_f64().unwrap();
        assert!(d < 0.5, "obama at {d}");
        assert_eq!(f["top"][0]["person"], "obama");
        assert_eq!(f["top"][1]["person"], "biden");
        let margin = f["margin"].as_f64().unwrap();
        let d2 = f["top"][1]["distance"].as_f64().unwrap();
        assert!((margin - (d2 - d)).abs() < 1e-12);
    }
    let hanks = &images[2]["faces"][0];
    assert_eq!(hanks["name"], "unknown_person");
    assert_eq!(hanks["verdict"], "unknown");
    assert!(hanks["distance"].as_f64().unwrap() > 0.6);
    assert_eq!(images[3]["faces"].as_array().unwrap().len(), 0);
    assert_eq!(images[3]["error"], Value::Null);

    // The default output, like face_recognition's CLI.
    let mut args = vec!["identify"];
    args.extend(files.iter().map(|p| s(p)));
    let out = facedb(&data, &args);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines[0].starts_with(&format!("{},obama,0.", s(&files[0]))));
    assert!(lines[1].starts_with(&format!("{},obama,0.", s(&files[1]))));
    assert!(lines[2].starts_with(&format!("{},unknown_person,", s(&files[2]))));
    assert_eq!(lines[3], format!("{},no_persons_found,None", s(&blank)));

    // At face_recognition's 0.6 the answers are the same here.
    let out = facedb(&data, &["identify", "--tolerance", "0.6", s(&files[0])]);
    assert!(out.stdout.contains(",obama,0."));
}

#[test]
fn bad_files_give_per_file_errors_and_the_run_goes_on() {
    let Some(ti) = test_images() else { return };
    let (t, data) = enrolled(&ti);
    let dir = t.path().join("mixed");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a_empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("b_text.jpg"), b"this is not a picture\n").unwrap();
    std::fs::copy(ti.join("obama2.jpg"), dir.join("c_obama2.jpg")).unwrap();
    let mut bad = vec!["a_empty.jpg".to_string(), "b_text.jpg".to_string()];
    if let Some(dev) = dev_dir() {
        for e in std::fs::read_dir(dev.join("_invalid")).unwrap() {
            let e = e.unwrap();
            let name = format!("d_{}", e.file_name().to_string_lossy());
            std::fs::copy(e.path(), dir.join(&name)).unwrap();
            bad.push(name);
        }
        assert_eq!(bad.len(), 5);
    }
    let out = facedb(&data, &["identify", "--json", s(&dir)]);
    assert_eq!(out.code, 3, "per-file errors give exit status 3");
    let j = out.json();
    let images = j["images"].as_array().unwrap();
    assert_eq!(images.len(), bad.len() + 1);
    for name in &bad {
        let img = images
            .iter()
            .find(|i| i["file"].as_str().unwrap().ends_with(name.as_str()))
            .unwrap();
        assert!(img["error"].is_string(), "{name}: {img}");
        assert!(out.stderr.contains(name.as_str()), "{name} not on stderr");
    }
    let obama = images
        .iter()
        .find(|i| i["file"].as_str().unwrap().ends_with("c_obama2.jpg"))
        .unwrap();
    assert_eq!(obama["faces"][0]["name"], "obama");
    let empty = images
        .iter()
        .find(|i| i["file"].as_str().unwrap().ends_with("a_empty.jpg"))
        .unwrap();
    assert_eq!(empty["error"], "empty image: 0 bytes");

    // The same files in a person folder: enroll reports them and enrolls the rest.
    let g = t.path().join("people2");
    std::fs::create_dir_all(g.join("obama")).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), g.join("obama").join(e.file_name())).unwrap();
    }
    let out = facedb(&t.path().join("db2"), &["enroll", "--json", s(&g)]);
    assert_eq!(out.code, 3);
    let j = out.json();
    assert_eq!(j["summary"]["errors"], bad.len());
    assert_eq!(j["summary"]["enrolled"], 1);
    // Human output names each bad file and ends with a summary.
    let out = facedb(&t.path().join("db3"), &["enroll", s(&g)]);
    assert_eq!(out.code, 3);
    for name in &bad {
        assert!(out.stdout.contains(&format!("error       obama/{name}")));
    }
    assert!(out.stdout.contains(&format!(
        "enrolled 1 images (0 multi_face: largest face), 0 already enrolled, 0 no_face, {} errors",
        bad.len()
    )));
}

#[test]
fn verify_forget_and_mean() {
    let Some(ti) = test_images() else { return };
    let (t, data) = enrolled(&ti);
    let same = facedb(
        &data,
        &[
            "verify",
            "--json",
            s(&ti.join("obama.jpg")),
            s(&ti.join("obama2.jpg")),
        ],
    )
    .json();
    assert_eq!(same["same_person"], true);
    let other = facedb(
        &data,
        &["verify", s(&ti.join("obama.jpg")), s(&ti.join("biden.jpg"))],
    );
    assert!(
        other.stdout.starts_with("different_person distance 0."),
        "{}",
        other.stdout
    );

    // --mean on an already enrolled folder writes the mean rows only.
    let g = t.path().join("people");
    let j = facedb(&data, &["enroll", "--mean", "--json", s(&g)]).json();
    assert_eq!(j["summary"]["means"], 2);
    assert_eq!(j["summary"]["samples"], 2, "mean rows are not samples");
    let people = facedb(&data, &["people", "--json"]).json();
    assert_eq!(people["persons"][0]["mean"], true);
    // With one sample each, the mean is the sample: same distance through --mean.
    let a = facedb(&data, &["identify", "--json", s(&ti.join("obama2.jpg"))]).json();
    let m = facedb(
        &data,
        &["identify", "--mean", "--json", s(&ti.join("obama2.jpg"))],
    )
    .json();
    assert_eq!(m["images"][0]["faces"][0]["top"][0]["image"], "<mean>");
    let (da, dm) = (
        a["images"][0]["faces"][0]["distance"].as_f64().unwrap(),
        m["images"][0]["faces"][0]["distance"].as_f64().unwrap(),
    );
    assert!((da - dm).abs() < 1e-6, "{da} vs {dm}");

    let f = facedb(&data, &["forget", "biden", "--json"]).json();
    assert_eq!(f["deleted"], 2, "the sample and the mean row");
    let out = facedb(&data, &["forget", "biden"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("biden is not enrolled"));
    let out = facedb(&data, &["identify", s(&ti.join("biden.jpg"))]);
    assert!(out.stdout.contains(",unknown_person,"), "{}", out.stdout);
}

#[test]
fn encodings_match_face_recognition() {
    let Some(ti) = test_images() else { return };
    let t = tempfile::tempdir().unwrap();
    let out = facedb(
        &t.path().join("db"),
        &["encodings", "--json", s(&ti.join("obama.jpg"))],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    let faces = j["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1);
    assert_eq!(faces[0]["landmarks"].as_array().unwrap().len(), 5);
    let enc: Vec<f64> = faces[0]["encoding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(enc.len(), 128);
    let reference = repo().join("../shared/data/reference/face_recognition_encodings.json");
    let Ok(text) = std::fs::read_to_string(&reference) else {
        eprintln!("SKIPPED comparison: {} is absent", reference.display());
        return;
    };
    let r: Value = serde_json::from_str(&text).unwrap();
    let entry = &r["images"]["obama.jpg"];
    let ref_enc: Vec<f64> = entry["faces"][0]["encoding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let d: f64 = enc
        .iter()
        .zip(&ref_enc)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    assert!(d < 1e-4, "encoding differs from face_recognition by {d}");
    let b = &faces[0]["bbox"];
    let css = &entry["faces"][0]["box_css"];
    assert_eq!(
        [&b["top"], &b["right"], &b["bottom"], &b["left"]],
        [&css[0], &css[1], &css[2], &css[3]]
    );
}

#[test]
fn format_variants_all_give_the_same_person() {
    let Some(ti) = test_images() else { return };
    let Some(dev) = dev_dir() else { return };
    let t = tempfile::tempdir().unwrap();
    let g = people_dir(&ti, t.path());
    let fv = dev.join("_format_variants");
    std::fs::create_dir_all(g.join("einstein")).unwrap();
    std::fs::copy(
        fv.join("compreface__einstein.png"),
        g.join("einstein/einstein.png"),
    )
    .unwrap();
    let data = t.path().join("db");
    assert_eq!(facedb(&data, &["enroll", s(&g)]).code, 0);
    let out = facedb(&data, &["identify", "--json", s(&fv)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    let images = j["images"].as_array().unwrap();
    assert_eq!(images.len(), 6);
    for img in images {
        let faces = img["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1, "{img}");
        assert_eq!(faces[0]["name"], "einstein", "{img}");
        let d = faces[0]["distance"].as_f64().unwrap();
        assert!(d < 0.1, "{}: {d}", img["file"]);
    }
}

#[test]
fn exif_rotated_obama_is_found_and_identified() {
    let Some(ti) = test_images() else { return };
    let (t, data) = enrolled(&ti);
    let original = image::open(ti.join("obama2.jpg")).unwrap().to_rgb8();
    // Pixels turned 90 degrees counter-clockwise, tagged Orientation=6 (rotate 90 CW to
    // display).
    let sideways = image::imageops::rotate270(&original);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(&sideways)
        .unwrap();
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a");
    tiff.extend_from_slice(&8u32.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&6u16.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let payload = [b"Exif\0\0".as_slice(), &tiff].concat();
    let mut tagged = vec![0xFF, 0xD8, 0xFF, 0xE1];
    tagged.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    tagged.extend_from_slice(&payload);
    tagged.extend_from_slice(&jpeg[2..]);
    let file = t.path().join("obama2_exif6.jpg");
    std::fs::write(&file, &tagged).unwrap();
    let j = facedb(&data, &["identify", "--json", s(&file)]).json();
    let img = &j["images"][0];
    assert_eq!(img["width"], original.width(), "shown upright");
    assert_eq!(img["height"], original.height());
    assert_eq!(img["faces"][0]["name"], "obama");
}

#[test]
fn eval_on_a_small_manifest_gives_exact_figures() {
    let Some(ti) = test_images() else { return };
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("set");
    let rows = [
        ("obama/obama.jpg", "obama", "enroll", "obama.jpg"),
        ("biden/biden.jpg", "biden", "enroll", "biden.jpg"),
        ("obama/obama2.jpg", "obama", "probe", "obama2.jpg"),
        ("obama/obama3.jpg", "obama", "probe", "obama3.jpg"),
        ("obama/32bit.png", "obama", "probe_variant", "32bit.png"),
        (
            "hanks/hanks.png",
            "hanks",
            "unknown_probe",
            "Tom_Hanks_54745.png",
        ),
    ];
    let mut csv = String::from("\"path\",\"identity\",\"suggested_role\",\"notes\"\n");
    for (path, id, role, src) in rows {
        std::fs::create_dir_all(d.join(path).parent().unwrap()).unwrap();
        std::fs::copy(ti.join(src), d.join(path)).unwrap();
        csv.push_str(&format!("\"{path}\",\"{id}\",\"{role}\",\"a, b\"\n"));
    }
    std::fs::write(d.join("manifest.csv"), csv).unwrap();
    let out = facedb(
        &t.path().join("db"),
        &["eval", "--json", "--tolerances", "0.3,0.6", s(&d)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["persons"], 2);
    assert_eq!(j["samples"], 2);
    assert_eq!(j["probes_scored"], 2, "the probe_variant is not counted");
    assert_eq!(j["unknown_scored"], 1);
    assert_eq!(j["no_face"], 0);
    let f = &j["samples_gallery"];
    assert_eq!(f["rank1"], 1.0);
    let op = &f["operating_points"];
    // obama2 and obama3 are at 0.33-0.35 from obama.jpg: misses at 0.3, hits at 0.6.
    assert_eq!(op[0]["tolerance"], 0.3);
    assert_eq!(op[0]["false_negatives"], 2);
    assert_eq!(op[0]["fnir"], 1.0);
    assert_eq!(op[1]["false_negatives"], 0);
    assert_eq!(op[1]["fpir"], 0.0, "Tom Hanks is over 0.6 from both");
    assert_eq!(j["faces"], 5);
}

#[test]
fn a_mistyped_data_folder_is_an_error_not_an_empty_gallery() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("typo");
    let out = facedb(&missing, &["people"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no gallery in"), "{}", out.stderr);
    assert!(!missing.exists(), "people created {}", missing.display());
    let file = t.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let out = facedb(&file, &["forget", "someone"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("is not a directory"), "{}", out.stderr);
    let Some(ti) = test_images() else { return };
    let out = facedb(&missing, &["identify", s(&ti.join("obama2.jpg"))]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!missing.exists());
    // An existing but empty gallery answers, with a warning.
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = facedb(&empty, &["identify", s(&ti.join("obama2.jpg"))]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("unknown_person"), "{}", out.stdout);
    assert!(out.stderr.contains("is empty"), "{}", out.stderr);
}
