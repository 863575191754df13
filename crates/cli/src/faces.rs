//! The face commands: enroll, identify, verify, people, forget, encodings, eval. Thin over
//! `facedb-gallery` and `facedb-face`; the JSON field names are documented in README.md and
//! are stable.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use facedb_face::{decode_image, Encoding, Face, FaceBox, ModelFiles};
use facedb_gallery::{
    default_threads, enroll_plan, eval, for_each_with_engine, image_files, image_key, largest_face,
    verify, EnrollOutcome, Gallery, Identification, IdentifyOptions, SampleKind, Verdict,
    DEFAULT_TOLERANCE,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

/// Exit status when every input was processed but some gave a per-file error.
pub const EXIT_SOME_FAILED: i32 = 3;

/// Options every face command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Database directory (created if missing).
    #[arg(long, default_value = "facedb-data", global = true)]
    pub data: PathBuf,
    /// Models directory (default: $FACEDB_MODELS, else ./models; see scripts/setup-face.sh).
    #[arg(long, global = true)]
    pub models: Option<PathBuf>,
    /// Machine-readable output (one JSON document on stdout; field names in README.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// Worker threads, one face engine each (default: every core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
}

impl Common {
    fn models(&self) -> Result<ModelFiles> {
        let dir = self
            .models
            .clone()
            .unwrap_or_else(facedb_face::default_models_dir);
        ModelFiles::verify(&dir).with_context(|| format!("models in {}", dir.display()))
    }
    fn threads(&self) -> usize {
        self.threads.unwrap_or_else(default_threads).max(1)
    }
    /// The gallery in `--data`, created when missing (`enroll`).
    fn gallery(&self) -> Result<Gallery> {
        if self.data.exists() && !self.data.is_dir() {
            bail!(
                "--data {} is not a directory (a gallery is a folder)",
                self.data.display()
            );
        }
        Gallery::open(&self.data).with_context(|| format!("gallery in {}", self.data.display()))
    }

    /// The gallery in `--data`, which must exist (`identify`, `people`, `forget`): a
    /// mistyped `--data` would otherwise create an empty gallery and report every face as
    /// unknown.
    fn existing_gallery(&self) -> Result<Gallery> {
        if !self.data.exists() {
            bail!(
                "no gallery in {}: the folder does not exist (enroll people first: `facedb enroll PEOPLE_DIR --data {}`, or check --data)",
                self.data.display(),
                self.data.display()
            );
        }
        self.gallery()
    }
}

fn bar(len: usize, json: bool) -> ProgressBar {
    let pb = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len as u64)
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {elapsed} ({eta} left) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// A per-file note: on stdout in human mode (above the progress bar), errors also on
/// stderr in JSON mode.
fn note(pb: &ProgressBar, json: bool, is_error: bool, line: String) {
    if !json {
        pb.suspend(|| println!("{line}"));
    } else if is_error {
        eprintln!("facedb: {line}");
    }
}

fn bbox_json(b: &FaceBox) -> Value {
    json!({"left": b.left, "top": b.top, "right": b.right, "bottom": b.bottom})
}

fn rel(path: &Path) -> String {
    path.display().to_string()
}

/// An image's width, height and faces, or the per-file error.
type Analyzed = Result<(u32, u32, Vec<Face>), String>;

/// Reads and decodes a file and finds its faces.
fn analyze(engine: &mut facedb_face::Engine, path: &Path) -> Analyzed {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let img = decode_image(&bytes).map_err(|e| e.to_string())?;
    let faces = engine.faces(&img).map_err(|e| e.to_string())?;
    Ok((img.width(), img.height(), faces))
}

// ---------------------------------------------------------------- enroll

#[derive(Args, Debug)]
pub struct EnrollArgs {
    /// Folder with one sub-folder per person (names starting with `_` or `.` are skipped).
    pub dir: PathBuf,
    /// Also store one mean descriptor per person (rows with image "<mean>").
    #[arg(long)]
    pub mean: bool,
}

enum Found {
    Already(String),
    Face {
        key: String,
        faces: usize,
        bbox: FaceBox,
        encoding: Box<Encoding>,
    },
    NoFace,
    Error(String),
}

pub fn enroll(args: &EnrollArgs, c: &Common) -> Result<i32> {
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let plan = enroll_plan(&args.dir)?;
    if plan.is_empty() {
        bail!(
            "{}: no person folders with files (expected DIR/<person>/<image>)",
            args.dir.display()
        );
    }
    let models = c.models()?;
    let gallery = c.gallery()?;
    let pb = bar(plan.len(), c.json);
    let t0 = Instant::now();
    let mut records: Vec<Option<Value>> = vec![None; plan.len()];
    let (mut enrolled, mut multi, mut already, mut no_face, mut errors, mut faces_seen) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    let mut store_err: Option<anyhow::Error> = None;
    for_each_with_engine(
        &models,
        c.threads(),
        &plan,
        |engine, item| {
            let bytes = match std::fs::read(&item.path) {
                Ok(b) => b,
                Err(e) => return Found::Error(e.to_string()),
            };
            let key = image_key(&item.name, &bytes);
            match gallery.has_image(&key) {
                Ok(true) => return Found::Already(key),
                Ok(false) => {}
                Err(e) => return Found::Error(e.to_string()),
            }
            let faces = match decode_image(&bytes).and_then(|img| engine.faces(&img)) {
                Ok(f) => f,
                Err(e) => return Found::Error(e.to_string()),
            };
            match largest_face(&faces) {
                None => Found::NoFace,
                Some(f) => Found::Face {
                    key,
                    faces: faces.len(),
                    bbox: f.bbox,
                    encoding: Box::new(f.encoding),
                },
            }
        },
        |i, found| {
            let item = &plan[i];
            let mut rec = json!({
                "path": rel(&item.path),
                "person": item.person,
                "image": Value::Null,
                "status": "",
                "faces": Value::Null,
                "face_id": Value::Null,
                "bbox": Value::Null,
                "error": Value::Null,
            });
            match found {
                Found::Already(key) => {
                    already += 1;
                    rec["status"] = json!("already_enrolled");
                    rec["image"] = json!(key);
                }
                Found::NoFace => {
                    no_face += 1;
                    rec["status"] = json!("no_face");
                    rec["faces"] = json!(0);
                    note(&pb, c.json, false, format!("no_face     {}", item.name));
                }
                Found::Error(e) => {
                    errors += 1;
                    rec["status"] = json!("error");
                    rec["error"] = json!(e);
                    note(&pb, c.json, true, format!("error       {}: {e}", item.name));
                }
                Found::Face {
                    key,
                    faces,
                    bbox,
                    encoding,
                } => {
                    faces_seen += faces;
                    rec["image"] = json!(key);
                    rec["faces"] = json!(faces);
                    rec["bbox"] = bbox_json(&bbox);
                    match gallery.enroll(&item.person, &key, bbox, &encoding) {
                        Ok(EnrollOutcome::Enrolled(id)) => {
                            enrolled += 1;
                            rec["face_id"] = json!(id);
                            if faces > 1 {
                                multi += 1;
                                rec["status"] = json!("multi_face");
                                note(
                                    &pb,
                                    c.json,
                                    false,
                                    format!(
                                        "multi_face  {}: {faces} faces, enrolled the largest",
                                        item.name
                                    ),
                                );
                            } else {
                                rec["status"] = json!("enrolled");
                            }
                        }
                        Ok(EnrollOutcome::AlreadyEnrolled) => {
                            already += 1;
                            rec["status"] = json!("already_enrolled");
                        }
                        Err(e) => {
                            errors += 1;
                            rec["status"] = json!("error");
                            rec["error"] = json!(e.to_string());
                            note(&pb, c.json, true, format!("error       {}: {e}", item.name));
                            if matches!(e, facedb_gallery::GalleryError::Store(_)) {
                                store_err.get_or_insert(e.into());
                            }
                        }
                    }
                }
            }
            records[i] = Some(rec);
            pb.inc(1);
        },
    )?;
    pb.finish_and_clear();
    if let Some(e) = store_err {
        return Err(e.context("writing to the gallery"));
    }
    let seconds = t0.elapsed().as_secs_f64();
    let mut means = 0;
    if args.mean {
        let mut persons: Vec<String> = plan.iter().map(|p| p.person.clone()).collect();
        persons.dedup();
        means = gallery.update_means(&persons)?;
    }
    let people = gallery.people()?;
    let summary = json!({
        "images": plan.len(),
        "enrolled": enrolled,
        "multi_face": multi,
        "already_enrolled": already,
        "no_face": no_face,
        "errors": errors,
        "means": means,
        "persons": people.len(),
        "samples": people.iter().map(|p| p.samples).sum::<usize>(),
        "faces": faces_seen,
        "seconds": seconds,
        "faces_per_s": if seconds > 0.0 { faces_seen as f64 / seconds } else { 0.0 },
        "threads": c.threads(),
    });
    if c.json {
        let images: Vec<Value> = records.into_iter().flatten().collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"images": images, "summary": summary}))?
        );
    } else {
        println!(
            "enrolled {enrolled} images ({multi} multi_face: largest face), {already} already enrolled, \
             {no_face} no_face, {errors} errors; {:.1} s, {:.1} faces/s on {} threads",
            seconds,
            summary["faces_per_s"].as_f64().unwrap_or(0.0),
            c.threads()
        );
        if args.mean {
            println!("{means} mean descriptors written");
        }
        println!(
            "gallery {}: {} persons, {} samples",
            c.data.display(),
            summary["persons"],
            summary["samples"]
        );
    }
    Ok(if errors > 0 { EXIT_SOME_FAILED } else { 0 })
}

// ---------------------------------------------------------------- identify

#[derive(Args, Debug)]
pub struct IdentifyArgs {
    /// Image files or folders of images (a folder's files, not its sub-folders).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Known at or under this Euclidean distance (dlib units; face_recognition uses 0.6).
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// How many persons to list per face (best sample per person).
    #[arg(long, default_value_t = 1)]
    pub top: usize,
    /// Compare with the per-person mean descriptors (enroll --mean) instead of the samples.
    #[arg(long)]
    pub mean: bool,
    /// Human output with every face's box, verdict, margin and top persons.
    #[arg(long)]
    pub long: bool,
}

type FaceAnswer = (Face, Identification);
type ImageAnswer = Result<(u32, u32, Vec<FaceAnswer>), String>;

fn fmt_distance(d: Option<f64>) -> String {
    d.map_or_else(|| "None".to_string(), |d| format!("{d:.6}"))
}

pub fn identify(args: &IdentifyArgs, c: &Common) -> Result<i32> {
    if args.top == 0 {
        bail!("--top must be at least 1");
    }
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        bail!("--tolerance must be a number >= 0");
    }
    let mut files = Vec::new();
    for input in &args.inputs {
        if input.is_dir() {
            files.extend(image_files(input)?);
        } else {
            files.push(input.clone());
        }
    }
    let models = c.models()?;
    let gallery = c.existing_gallery()?;
    if gallery.samples()? == 0 {
        eprintln!(
            "facedb: warning: the gallery in {} is empty: every face will be unknown",
            c.data.display()
        );
    }
    let opts = IdentifyOptions {
        top: args.top,
        tolerance: args.tolerance,
        against: if args.mean {
            SampleKind::Mean
        } else {
            SampleKind::Sample
        },
    };
    let pb = bar(files.len(), c.json || files.len() < 2);
    let mut answers: Vec<Option<ImageAnswer>> = vec![None; files.len()];
    let mut gallery_err: Option<String> = None;
    for_each_with_engine(
        &models,
        c.threads(),
        &files,
        |engine, path| -> (ImageAnswer, Option<String>) {
            match analyze(engine, path) {
                Err(e) => (Err(e), None),
                Ok((w, h, faces)) => {
                    let mut out = Vec::with_capacity(faces.len());
                    for f in faces {
                        match gallery.identify(&f.encoding, &opts) {
                            Ok(id) => out.push((f, id)),
                            Err(e) => return (Err(e.to_string()), Some(e.to_string())),
                        }
                    }
                    (Ok((w, h, out)), None)
                }
            }
        },
        |i, (a, ge)| {
            if let Some(e) = ge {
                gallery_err.get_or_insert(e);
            }
            answers[i] = Some(a);
            pb.inc(1);
        },
    )?;
    pb.finish_and_clear();
    if let Some(e) = gallery_err {
        bail!("gallery: {e}");
    }
    let mut failed = 0;
    let mut images = Vec::new();
    for (path, a) in files.iter().zip(answers) {
        let file = rel(path);
        match a.unwrap_or_else(|| Err("not processed".into())) {
            Err(e) => {
                failed += 1;
                eprintln!("facedb: {file}: {e}");
                images.push(
                    json!({"file": file, "error": e, "width": null, "height": null, "faces": []}),
                );
            }
            Ok((w, h, faces)) => {
                if !c.json {
                    if faces.is_empty() {
                        println!("{file},no_persons_found,None");
                    }
                    for (i, (f, id)) in faces.iter().enumerate() {
                        let name = match id.verdict {
                            Verdict::Known => id.person.clone().unwrap_or_default(),
                            Verdict::Unknown => "unknown_person".to_string(),
                        };
                        if args.long {
                            let verdict = match id.verdict {
                                Verdict::Known => "known",
                                Verdict::Unknown => "unknown",
                            };
                            let b = f.bbox;
                            let top: Vec<String> = id
                                .top
                                .iter()
                                .map(|p| format!("{} {:.4}", p.person, p.distance))
                                .collect();
                            println!(
                                "{file} face {i} box left={} top={} right={} bottom={}: {name} ({}, nearest {} at {}, margin {}) top: {}",
                                b.left,
                                b.top,
                                b.right,
                                b.bottom,
                                verdict,
                                id.person.as_deref().unwrap_or("-"),
                                fmt_distance(id.distance),
                                fmt_distance(id.margin),
                                top.join(", ")
                            );
                        } else {
                            println!("{file},{name},{}", fmt_distance(id.distance));
                        }
                    }
                }
                let faces: Vec<Value> = faces
                    .iter()
                    .map(|(f, id)| {
                        let name = match id.verdict {
                            Verdict::Known => id.person.clone().unwrap_or_default(),
                            Verdict::Unknown => "unknown_person".to_string(),
                        };
                        json!({
                            "bbox": bbox_json(&f.bbox),
                            "name": name,
                            "verdict": id.verdict,
                            "person": id.person,
                            "distance": id.distance,
                            "margin": id.margin,
                            "top": id.top,
                        })
                    })
                    .collect();
                images.push(
                    json!({"file": file, "error": null, "width": w, "height": h, "faces": faces}),
                );
            }
        }
    }
    if c.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "tolerance": args.tolerance,
                "top": args.top,
                "against": opts.against,
                "images": images,
            }))?
        );
    }
    Ok(if failed > 0 { EXIT_SOME_FAILED } else { 0 })
}

// ---------------------------------------------------------------- verify

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// First image (its largest face is compared).
    pub a: PathBuf,
    /// Second image (its largest face is compared).
    pub b: PathBuf,
    /// Same person at or under this Euclidean distance.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    pub tolerance: f64,
}

pub fn verify_cmd(args: &VerifyArgs, c: &Common) -> Result<i32> {
    let models = c.models()?;
    let files = [args.a.clone(), args.b.clone()];
    let mut found: Vec<Option<Analyzed>> = vec![None, None];
    for_each_with_engine(
        &models,
        c.threads().min(2),
        &files,
        |e, p| analyze(e, p),
        |i, r| found[i] = Some(r),
    )?;
    let mut sides = Vec::new();
    for (path, r) in files.iter().zip(found) {
        match r.unwrap_or_else(|| Err("not processed".into())) {
            Err(e) => bail!("{}: {e}", path.display()),
            Ok((_, _, faces)) => match largest_face(&faces) {
                None => bail!("{}: no face found", path.display()),
                Some(f) => sides.push((path, faces.len(), f.clone())),
            },
        }
    }
    let v = verify(&sides[0].2.encoding, &sides[1].2.encoding, args.tolerance);
    if c.json {
        let side = |(p, n, f): &(&PathBuf, usize, Face)| json!({"file": rel(p), "faces": n, "bbox": bbox_json(&f.bbox)});
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "a": side(&sides[0]),
                "b": side(&sides[1]),
                "distance": v.distance,
                "same_person": v.same_person,
                "tolerance": v.tolerance,
            }))?
        );
    } else {
        for (p, n, _) in &sides {
            if *n > 1 {
                eprintln!("facedb: {}: {n} faces, comparing the largest", p.display());
            }
        }
        println!(
            "{} distance {:.6} (tolerance {})",
            if v.same_person {
                "same_person"
            } else {
                "different_person"
            },
            v.distance,
            v.tolerance
        );
    }
    Ok(0)
}

// ---------------------------------------------------------------- people, forget

pub fn people(c: &Common) -> Result<i32> {
    let g = c.existing_gallery()?;
    let people = g.people()?;
    let samples: usize = people.iter().map(|p| p.samples).sum();
    if c.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"persons": people, "samples": samples}))?
        );
    } else {
        for p in &people {
            println!(
                "{}\t{}{}",
                p.person,
                p.samples,
                if p.mean { "\t+mean" } else { "" }
            );
        }
        println!("{} persons, {samples} samples", people.len());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The person to remove (every sample and the mean row).
    pub person: String,
}

pub fn forget(args: &ForgetArgs, c: &Common) -> Result<i32> {
    let g = c.existing_gallery()?;
    let n = g.forget(&args.person)?;
    if c.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"person": args.person, "deleted": n}))?
        );
    } else if n > 0 {
        println!("forgot {}: {n} rows deleted", args.person);
    }
    if n == 0 {
        eprintln!("facedb: {} is not enrolled", args.person);
        return Ok(1);
    }
    Ok(0)
}

// ---------------------------------------------------------------- encodings

#[derive(Args, Debug)]
pub struct EncodingsArgs {
    /// The image.
    pub image: PathBuf,
}

pub fn encodings(args: &EncodingsArgs, c: &Common) -> Result<i32> {
    let models = c.models()?;
    let mut engine = facedb_face::Engine::from_models(&models)?;
    let (w, h, faces) = analyze(&mut engine, &args.image)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.image.display()))?;
    if c.json {
        let faces: Vec<Value> = faces
            .iter()
            .map(|f| {
                json!({
                    "bbox": bbox_json(&f.bbox),
                    "raw_bbox": bbox_json(&f.raw_bbox),
                    "confidence": f.confidence,
                    "pass": format!("{:?}", f.pass).to_lowercase(),
                    "landmarks": f.landmarks.points.iter().map(|p| json!({"x": p.x, "y": p.y})).collect::<Vec<_>>(),
                    "encoding": f.encoding.to_vec(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string(
                &json!({"file": rel(&args.image), "width": w, "height": h, "faces": faces})
            )?
        );
    } else {
        println!("{}: {w}x{h}, {} faces", args.image.display(), faces.len());
        for (i, f) in faces.iter().enumerate() {
            let (t, r, b, l) = f.bbox.to_css();
            let lm: Vec<String> = f
                .landmarks
                .points
                .iter()
                .map(|p| format!("({},{})", p.x, p.y))
                .collect();
            println!(
                "face {i}: box (top, right, bottom, left) = ({t}, {r}, {b}, {l}); landmarks {}",
                lm.join(" ")
            );
            let e: Vec<String> = f.encoding.iter().map(|x| format!("{x:.8}")).collect();
            println!("encoding {i}: {}", e.join(" "));
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------- eval

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Folder with manifest.csv (e.g. ../shared/data/faces/dev).
    pub dir: PathBuf,
    /// Tolerances to report (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = eval::DEFAULT_TOLERANCES)]
    pub tolerances: Vec<f64>,
    /// Also evaluate identification against one mean descriptor per person.
    #[arg(long)]
    pub mean: bool,
}

pub fn eval_cmd(args: &EvalArgs, c: &Common) -> Result<i32> {
    let models = c.models()?;
    let pb = bar(0, c.json);
    let options = eval::EvalOptions {
        threads: c.threads(),
        tolerances: args.tolerances.clone(),
        mean: args.mean,
    };
    let report = eval::evaluate(&args.dir, &models, &options, &mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })?;
    pb.finish_and_clear();
    if c.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    println!(
        "{}: gallery {} persons / {} samples (enroll images {}); probes {} (scored {}), unknown probes {} (scored {})",
        report.dir.display(),
        report.persons,
        report.samples,
        report.enroll_images,
        report.probe_images,
        report.probes_scored,
        report.unknown_images,
        report.unknown_scored
    );
    println!(
        "no face: {} of {} images ({}); errors: {}",
        report.no_face,
        report.enroll_images + report.probe_images + report.unknown_images,
        pct(report.no_face_rate),
        report.errors
    );
    let table = |name: &str, f: &eval::Figures| {
        println!(
            "{name}: rank-1 {} ({}/{})",
            pct(f.rank1),
            f.rank1_hits,
            report.probes_scored
        );
        println!("  tolerance   FNIR            FPIR          FNIR(no face = miss)");
        for op in &f.operating_points {
            println!(
                "  {:<9}   {:<6} ({:>3})    {:<6} ({:>3})  {}",
                op.tolerance,
                pct(op.fnir),
                op.false_negatives,
                pct(op.fpir),
                op.false_positives,
                pct(op.fnir_with_no_face)
            );
        }
    };
    table("samples gallery", &report.samples_gallery);
    if let Some(m) = &report.mean {
        table("mean gallery", m);
    }
    println!(
        "faces: {} in {:.1} s on {} threads: {:.1} faces/s",
        report.faces, report.face_seconds, report.threads, report.faces_per_s
    );
    Ok(0)
}
