//! Open-set evaluation on a labelled folder with a `manifest.csv` (the protocol of
//! `shared/data/faces/README.md`).
//!
//! - `enroll` rows build the gallery: the largest face of each image, one sample each;
//! - `probe` rows are identified (mated searches; expected answer: their identity);
//! - `unknown_probe` rows are identified (non-mated searches; expected answer: unknown);
//! - every other role (`probe_variant`, special folders) is not counted.
//!
//! A probe is the largest face of its image. Figures (NIST FRVT 1:N terms, Grother et al.,
//! NISTIR 8271):
//! - rank-1: mated probes whose nearest person is their identity, whatever the distance;
//! - FNIR(t): mated probes NOT answered with their identity at distance `<= t` (wrong
//!   person first, or right person but too far);
//! - FPIR(t): non-mated probes answered with anyone at distance `<= t`;
//! - no-face rate: images of the three roles in which no face was found.
//!
//! Probes without a face are left out of rank-1 / FNIR / FPIR (as face_recognition's
//! figures in the issue were computed); `fnir_with_no_face` counts them as misses too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use facedb_face::{decode_image, Encoding, FaceBox, ModelFiles};
use serde::Serialize;

use crate::error::{GalleryError, Result};
use crate::gallery::{image_key, largest_face, Gallery, IdentifyOptions};
use crate::store::SampleKind;
use crate::work::for_each_with_engine;

/// The tolerances reported by default: 0.40 to 0.60 by 0.05.
pub const DEFAULT_TOLERANCES: [f64; 5] = [0.4, 0.45, 0.5, 0.55, 0.6];

/// Options of [`evaluate`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Worker threads (one engine each).
    pub threads: usize,
    /// Tolerances at which FNIR and FPIR are reported.
    pub tolerances: Vec<f64>,
    /// Also enroll one mean descriptor per person and report identification against the
    /// means ([`EvalReport::mean`]).
    pub mean: bool,
}

/// FNIR and FPIR at one tolerance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatingPoint {
    /// The tolerance (true Euclidean distance).
    pub tolerance: f64,
    /// Mated probes (with a face) not answered with their identity within the tolerance.
    pub false_negatives: usize,
    /// `false_negatives / probes_scored`.
    pub fnir: f64,
    /// As `fnir`, counting mated probes without a face as misses too.
    pub fnir_with_no_face: f64,
    /// Non-mated probes (with a face) answered with someone within the tolerance.
    pub false_positives: usize,
    /// `false_positives / unknown_scored`.
    pub fpir: f64,
}

/// Identification figures for one kind of gallery row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Mated probes whose nearest person is right / `probes_scored`.
    pub rank1: f64,
    /// Mated probes with a face whose nearest person is right.
    pub rank1_hits: usize,
    /// One entry per tolerance.
    pub operating_points: Vec<OperatingPoint>,
}

/// One probe's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    /// Path relative to the evaluation folder.
    pub path: String,
    /// `probe` or `unknown_probe`.
    pub role: String,
    /// The identity in the manifest.
    pub identity: String,
    /// Faces found in the image.
    pub faces: usize,
    /// The nearest person (`None`: no face, or an error).
    pub person: Option<String>,
    /// Distance to that person.
    pub distance: Option<f64>,
    /// The error, if the image could not be processed.
    pub error: Option<String>,
}

/// What [`evaluate`] measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The evaluation folder.
    pub dir: PathBuf,
    /// Images of the `enroll` role.
    pub enroll_images: usize,
    /// Images of the `probe` role.
    pub probe_images: usize,
    /// Images of the `unknown_probe` role.
    pub unknown_images: usize,
    /// Persons in the gallery (with at least one face enrolled).
    pub persons: usize,
    /// Samples in the gallery.
    pub samples: usize,
    /// Images of the three roles with no face found.
    pub no_face: usize,
    /// `no_face / (enroll + probe + unknown images)`.
    pub no_face_rate: f64,
    /// Images that could not be decoded or processed.
    pub errors: usize,
    /// Mated probes with a face.
    pub probes_scored: usize,
    /// Non-mated probes with a face.
    pub unknown_scored: usize,
    /// Identification against the samples (every enrolled face).
    pub samples_gallery: Figures,
    /// Identification against one mean descriptor per person (with [`EvalOptions::mean`]).
    pub mean: Option<Figures>,
    /// Faces found and encoded.
    pub faces: usize,
    /// Wall time of decoding, detection and encoding of all images, seconds.
    pub face_seconds: f64,
    /// `faces / face_seconds`.
    pub faces_per_s: f64,
    /// Worker threads used.
    pub threads: usize,
    /// Every probe's answer (samples gallery).
    pub probes: Vec<ProbeResult>,
}

struct Row {
    path: String,
    identity: String,
    role: String,
}

/// What the pipeline found in one image: faces, and the largest one.
type Analysis = std::result::Result<(usize, Option<(FaceBox, Encoding)>), String>;

fn read_manifest(dir: &Path) -> Result<Vec<Row>> {
    let path = dir.join("manifest.csv");
    let mut rdr = csv::Reader::from_path(&path)
        .map_err(|e| GalleryError::Eval(format!("{}: {e}", path.display())))?;
    let headers = rdr
        .headers()
        .map_err(|e| GalleryError::Eval(format!("{}: {e}", path.display())))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| GalleryError::Eval(format!("{}: no column {name:?}", path.display())))
    };
    let (cp, ci, cr) = (col("path")?, col("identity")?, col("suggested_role")?);
    let mut rows = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| GalleryError::Eval(format!("{}: {e}", path.display())))?;
        let get = |c: usize| rec.get(c).unwrap_or("").to_string();
        let role = get(cr);
        if !matches!(role.as_str(), "enroll" | "probe" | "unknown_probe") {
            continue;
        }
        let p = get(cp);
        if p.is_empty() || p.contains("..") {
            return Err(GalleryError::Eval(format!(
                "{} row {}: bad path {p:?}",
                path.display(),
                n + 2
            )));
        }
        rows.push(Row {
            path: p,
            identity: get(ci),
            role,
        });
    }
    Ok(rows)
}

fn figures(
    probes: &[(&Row, Option<(String, f64)>)],
    tolerances: &[f64],
    mated_no_face: usize,
) -> Figures {
    let mated: Vec<_> = probes
        .iter()
        .filter(|(r, a)| r.role == "probe" && a.is_some())
        .collect();
    let unknown: Vec<_> = probes
        .iter()
        .filter(|(r, a)| r.role == "unknown_probe" && a.is_some())
        .collect();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let rank1_hits = mated
        .iter()
        .filter(|(r, a)| a.as_ref().is_some_and(|(p, _)| *p == r.identity))
        .count();
    let operating_points = tolerances
        .iter()
        .map(|&t| {
            let false_negatives = mated
                .iter()
                .filter(|(r, a)| !a.as_ref().is_some_and(|(p, d)| *p == r.identity && *d <= t))
                .count();
            let false_positives = unknown
                .iter()
                .filter(|(_, a)| a.as_ref().is_some_and(|(_, d)| *d <= t))
                .count();
            OperatingPoint {
                tolerance: t,
                false_negatives,
                fnir: ratio(false_negatives, mated.len()),
                fnir_with_no_face: ratio(
                    false_negatives + mated_no_face,
                    mated.len() + mated_no_face,
                ),
                false_positives,
                fpir: ratio(false_positives, unknown.len()),
            }
        })
        .collect();
    Figures {
        rank1: ratio(rank1_hits, mated.len()),
        rank1_hits,
        operating_points,
    }
}

/// Runs the protocol on `dir` (which holds `manifest.csv` and the images it names), with a
/// fresh gallery in a temporary directory. `progress(done, total)` is called after each
/// image is processed.
///
/// # Errors
/// [`GalleryError::Eval`] for a missing or malformed manifest or no enrolled face;
/// [`GalleryError::Face`] if the models cannot be loaded; [`GalleryError::Store`].
pub fn evaluate(
    dir: &Path,
    models: &ModelFiles,
    options: &EvalOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalReport> {
    let rows = read_manifest(dir)?;
    let total = rows.len();
    let mut analyses: Vec<Option<Analysis>> = vec![None; total];
    let mut keys: Vec<String> = vec![String::new(); total];
    let t0 = Instant::now();
    let mut done_n = 0;
    for_each_with_engine(
        models,
        options.threads,
        &rows,
        |engine, row| -> (String, Analysis) {
            let path = dir.join(&row.path);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => return (String::new(), Err(format!("{}: {e}", path.display()))),
            };
            let key = image_key(&row.path, &bytes);
            let faces = decode_image(&bytes).and_then(|img| engine.faces(&img));
            let a = match faces {
                Ok(faces) => Ok((
                    faces.len(),
                    largest_face(&faces).map(|f| (f.bbox, f.encoding)),
                )),
                Err(e) => Err(e.to_string()),
            };
            (key, a)
        },
        |i, (key, a)| {
            analyses[i] = Some(a);
            keys[i] = key;
            done_n += 1;
            progress(done_n, total);
        },
    )?;
    let face_seconds = t0.elapsed().as_secs_f64();

    let tmp = tempfile::tempdir().map_err(|source| GalleryError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let gallery = Gallery::open(tmp.path())?;
    let mut persons: BTreeSet<String> = BTreeSet::new();
    let mut samples = 0;
    let (mut no_face, mut errors, mut faces) = (0, 0, 0);
    let count = |role: &str| rows.iter().filter(|r| r.role == role).count();
    for (i, row) in rows.iter().enumerate() {
        match &analyses[i] {
            Some(Ok((n, best))) => {
                faces += n;
                if best.is_none() {
                    no_face += 1;
                }
                if let (Some((bbox, enc)), "enroll") = (best, row.role.as_str()) {
                    gallery.enroll(&row.identity, &keys[i], *bbox, enc)?;
                    persons.insert(row.identity.clone());
                    samples += 1;
                }
            }
            _ => errors += 1,
        }
    }
    if samples == 0 {
        return Err(GalleryError::Eval(format!(
            "{}: no face enrolled (no `enroll` rows with a face)",
            dir.display()
        )));
    }
    let person_list: Vec<String> = persons.iter().cloned().collect();
    if options.mean {
        gallery.update_means(&person_list)?;
    }

    let mut results: Vec<ProbeResult> = Vec::new();
    let mut answers: Vec<(&Row, Option<(String, f64)>)> = Vec::new();
    let mut mean_answers: Vec<(&Row, Option<(String, f64)>)> = Vec::new();
    let mut mated_no_face = 0;
    for (i, row) in rows.iter().enumerate() {
        if row.role == "enroll" {
            continue;
        }
        let mut res = ProbeResult {
            path: row.path.clone(),
            role: row.role.clone(),
            identity: row.identity.clone(),
            faces: 0,
            person: None,
            distance: None,
            error: None,
        };
        let mut answer = None;
        let mut mean_answer = None;
        match &analyses[i] {
            Some(Ok((n, best))) => {
                res.faces = *n;
                if let Some((_, enc)) = best {
                    let id = gallery.identify(enc, &IdentifyOptions::default())?;
                    res.person = id.person.clone();
                    res.distance = id.distance;
                    answer = id.person.zip(id.distance);
                    if options.mean {
                        let opts = IdentifyOptions {
                            against: SampleKind::Mean,
                            ..IdentifyOptions::default()
                        };
                        let m = gallery.identify(enc, &opts)?;
                        mean_answer = m.person.zip(m.distance);
                    }
                } else if row.role == "probe" {
                    mated_no_face += 1;
                }
            }
            Some(Err(e)) => res.error = Some(e.clone()),
            None => res.error = Some("not processed".into()),
        }
        if res.error.is_none() {
            answers.push((row, answer));
            mean_answers.push((row, mean_answer));
        }
        results.push(res);
    }
    let scored = |role: &str| {
        answers
            .iter()
            .filter(|(r, a)| r.role == role && a.is_some())
            .count()
    };
    let n_images = rows.len();
    Ok(EvalReport {
        dir: dir.to_path_buf(),
        enroll_images: count("enroll"),
        probe_images: count("probe"),
        unknown_images: count("unknown_probe"),
        persons: persons.len(),
        samples,
        no_face,
        no_face_rate: if n_images == 0 {
            0.0
        } else {
            no_face as f64 / n_images as f64
        },
        errors,
        probes_scored: scored("probe"),
        unknown_scored: scored("unknown_probe"),
        samples_gallery: figures(&answers, &options.tolerances, mated_no_face),
        mean: options
            .mean
            .then(|| figures(&mean_answers, &options.tolerances, mated_no_face)),
        faces,
        face_seconds,
        faces_per_s: if face_seconds > 0.0 {
            faces as f64 / face_seconds
        } else {
            0.0
        },
        threads: options.threads,
        probes: results,
    })
}
