//! Per-operation latency on single images, best of N runs (robust to other load on the
//! machine): decode, HOG detection (upsample 1), landmarks + encoding per face.
//!
//! ```text
//! cargo run --release -p facedb-face --example bench_ops -- [--runs 5] [IMAGE...]
//! ```
//! Default images: the face_recognition test images in `$FACEDB_MODELS/test_images`.
//! Runs on one thread with one OpenBLAS thread ([`facedb_face::set_blas_threads`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use facedb_face::{decode_image, Engine};

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        out = Some(v);
    }
    (best, out.expect("at least one run"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let models = std::env::var_os("FACEDB_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models"));
    let mut images: Vec<PathBuf> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--runs"))
        .map(|(_, a)| PathBuf::from(a))
        .collect();
    if images.is_empty() {
        for n in [
            "obama.jpg",
            "obama2.jpg",
            "obama3.jpg",
            "biden.jpg",
            "32bit.png",
        ] {
            images.push(models.join("test_images").join(n));
        }
    }
    facedb_face::set_blas_threads(1);
    let mut engine = match Engine::load(&models) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (mut det_ms, mut mpx, mut enc_ms, mut faces) = (0.0, 0.0, 0.0, 0usize);
    println!("best of {runs} runs, 1 thread, 1 BLAS thread");
    for path in &images {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        let (t_dec, img) = best(runs, || decode_image(&bytes));
        let img = match img {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                continue;
            }
        };
        let (t_det, found) = best(runs, || engine.detect_raw(&img, 1).expect("detect"));
        let (t_enc, _) = best(runs, || {
            for d in &found {
                let marks = engine.landmarks(&img, &d.rect).expect("landmarks");
                engine.encode(&img, &marks, 1).expect("encode");
            }
        });
        let m = f64::from(img.width()) * f64::from(img.height()) / 1e6;
        let per_face = t_enc.as_secs_f64() * 1e3 / found.len().max(1) as f64;
        println!(
            "{:<28} {:>5}x{:<5} decode {:6.1} ms  detect {:7.1} ms ({:6.1} ms/Mpx)  encode {:6.1} ms/face ({} faces)",
            path.file_name().unwrap_or_default().to_string_lossy(),
            img.width(),
            img.height(),
            t_dec.as_secs_f64() * 1e3,
            t_det.as_secs_f64() * 1e3,
            t_det.as_secs_f64() * 1e3 / m,
            per_face,
            found.len()
        );
        det_ms += t_det.as_secs_f64() * 1e3;
        mpx += m;
        enc_ms += t_enc.as_secs_f64() * 1e3;
        faces += found.len();
    }
    println!(
        "overall: detect {:.1} ms/Mpx, encode {:.1} ms/face",
        det_ms / mpx.max(1e-9),
        enc_ms / faces.max(1) as f64
    );
}
