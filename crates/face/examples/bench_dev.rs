//! Throughput of the face pipeline over a folder of labelled faces (default: the dev set
//! `../shared/data/faces/dev`), on N worker threads, one [`Engine`] each.
//!
//! ```text
//! cargo run --release -p facedb-face --example bench_dev -- [--threads 2] [--no-retry]
//!     [--blas-threads 1] [--list-misses] [--dev DIR] [--models DIR]
//! ```
//! `--blas-threads` (default 1 with several worker threads, else OpenBLAS's own default)
//! is passed to [`facedb_face::set_blas_threads`].
//! Prints decode / detect / encode milliseconds (per image, per megapixel, per face) and
//! faces per second. Only person folders are read (names not starting with `_`).
//! face_recognition 1.3.0 on this machine: ~120 ms per face encoding, ~510 ms per
//! megapixel for HOG detection with upsample 1.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use facedb_face::{decode_image, DetectPass, Engine, FaceOptions, ModelFiles};

#[derive(Default)]
struct Totals {
    images: usize,
    errors: usize,
    megapixels: f64,
    faces: usize,
    no_face: Vec<String>,
    rescued: Vec<String>,
    decode: Duration,
    detect: Duration,
    encode: Duration,
    retry: Duration,
}

fn arg_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn list_images(dev: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(people) = std::fs::read_dir(dev) else {
        return out;
    };
    let mut people: Vec<_> = people
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    for person in people {
        let name = person
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&person) else {
            continue;
        };
        let mut files: Vec<_> = files
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dev = arg_value(&args, "--dev")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data/faces/dev"));
    let models = arg_value(&args, "--models")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("FACEDB_MODELS")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("models"))
        });
    let threads: usize = arg_value(&args, "--threads")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let retry = !args.iter().any(|a| a == "--no-retry");
    let list = args.iter().any(|a| a == "--list-misses");
    let blas: Option<u32> = arg_value(&args, "--blas-threads")
        .and_then(|v| v.parse().ok())
        .or(if threads > 1 { Some(1) } else { None });
    if let Some(n) = blas {
        if !facedb_face::set_blas_threads(n) {
            eprintln!("BLAS is not OpenBLAS: --blas-threads ignored");
        }
    }

    let files = match ModelFiles::verify(&models) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("models: {e}");
            std::process::exit(2);
        }
    };
    let images = list_images(&dev);
    if images.is_empty() {
        eprintln!("no images under {} (person folders)", dev.display());
        std::process::exit(2);
    }
    let options = FaceOptions {
        small_image_retry: retry,
        ..FaceOptions::default()
    };
    let next = AtomicUsize::new(0);
    let totals = Mutex::new(Totals::default());
    let wall = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut engine = Engine::from_models(&files).expect("engine");
                let mut t = Totals::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = images.get(i) else { break };
                    let name = path
                        .strip_prefix(&dev)
                        .unwrap_or(path)
                        .display()
                        .to_string();
                    t.images += 1;
                    let t0 = Instant::now();
                    let img = match std::fs::read(path)
                        .map_err(|e| e.to_string())
                        .and_then(|b| decode_image(&b).map_err(|e| e.to_string()))
                    {
                        Ok(img) => img,
                        Err(e) => {
                            eprintln!("{name}: {e}");
                            t.errors += 1;
                            continue;
                        }
                    };
                    t.decode += t0.elapsed();
                    t.megapixels += f64::from(img.width()) * f64::from(img.height()) / 1e6;
                    let t1 = Instant::now();
                    let found = engine.detect_raw(&img, options.upsample).expect("detect");
                    t.detect += t1.elapsed();
                    if found.is_empty() {
                        let t2 = Instant::now();
                        let faces = engine.faces_with(&img, &options).expect("faces");
                        t.retry += t2.elapsed();
                        if faces.is_empty() {
                            t.no_face.push(name);
                        } else {
                            t.faces += faces.len();
                            let pass = faces[0].pass;
                            assert_ne!(pass, DetectPass::Standard);
                            t.rescued.push(format!("{name} ({pass:?})"));
                        }
                        continue;
                    }
                    let t2 = Instant::now();
                    for d in &found {
                        let marks = engine.landmarks(&img, &d.rect).expect("landmarks");
                        engine.encode(&img, &marks, 1).expect("encode");
                    }
                    t.encode += t2.elapsed();
                    t.faces += found.len();
                }
                let mut all = totals.lock().expect("lock");
                all.images += t.images;
                all.errors += t.errors;
                all.megapixels += t.megapixels;
                all.faces += t.faces;
                all.no_face.extend(t.no_face);
                all.rescued.extend(t.rescued);
                all.decode += t.decode;
                all.detect += t.detect;
                all.encode += t.encode;
                all.retry += t.retry;
            });
        }
    });
    let wall = wall.elapsed();
    let t = totals.into_inner().expect("lock");
    let ok = (t.images - t.errors).max(1) as f64;
    let standard_faces = t.faces - t.rescued.len();
    println!(
        "dev set: {} ({} images, {:.1} Mpx, {} threads, BLAS threads {:?}, retry {})",
        dev.display(),
        t.images,
        t.megapixels,
        threads,
        blas,
        retry
    );
    println!("decode:  {:7.1} ms/image", ms(t.decode) / ok);
    println!(
        "detect:  {:7.1} ms/image  {:7.1} ms/Mpx (HOG, upsample 1)",
        ms(t.detect) / ok,
        ms(t.detect) / t.megapixels
    );
    println!(
        "encode:  {:7.1} ms/face   (landmarks + chip + ResNet)",
        ms(t.encode) / standard_faces.max(1) as f64
    );
    println!(
        "retry:   {:7.1} ms total on {} images without a face at first",
        ms(t.retry),
        t.rescued.len() + t.no_face.len()
    );
    println!(
        "overall: {} faces in {:.2} s wall = {:.2} faces/s, {:.2} images/s",
        t.faces,
        wall.as_secs_f64(),
        t.faces as f64 / wall.as_secs_f64(),
        t.images as f64 / wall.as_secs_f64()
    );
    println!(
        "no face: {} images ({:.1}%), rescued by the small-image retry: {}, errors: {}",
        t.no_face.len(),
        100.0 * t.no_face.len() as f64 / ok,
        t.rescued.len(),
        t.errors
    );
    if list {
        let (mut no_face, mut rescued) = (t.no_face, t.rescued);
        no_face.sort();
        rescued.sort();
        for n in no_face {
            println!("  no face: {n}");
        }
        for n in rescued {
            println!("  rescued: {n}");
        }
    }
}
