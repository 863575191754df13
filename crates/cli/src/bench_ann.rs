//! `facedb bench facefit | facegen | ann`: calibrated face-like data and the approximate
//! indexes measured the way `../shared/peers/ann/bench.py` measures faiss, hnswlib and
//! usearch, so `bench.py ingest` puts facedb in the same tables.
//!
//! - `facefit DIR --out labelled.json`: encodes a folder of people (`DIR/<person>/<image>`,
//!   folders starting with `_` skipped) with the face pipeline, largest face per image;
//! - `facegen --fit labelled.json`: fits [`facedb_index::synth::FaceModel`] and writes a
//!   dataset in the layout of the peers' `gen.py` (`base.npy`, `queries.npy`, `base_ids.npy`,
//!   `query_ids.npy`, `gt_I.npy`, `gt_D.npy`, `meta.json`);
//! - `ann --dataset DIR --index HNSW`: builds an index, times batch and single queries,
//!   writes `ids.npy` and `timings.json`, and with `--ingest` hands them to `bench.py ingest`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use facedb_index::synth::{label_reference_faces, quantile as percentile, FaceModel, FitStats};
use facedb_index::{
    build_index, by_row, flat_search, AnnParams, FlatParams, IndexSpec, KeyRange, Metric, Neighbor,
    SearchKnobs, VectorIndex,
};
use serde_json::{json, Value};

/// The peers' home: `$ANN_HOME`, else `~/.cache/facedb-peers/ann` (as `bench.py`).
fn ann_home() -> PathBuf {
    if let Some(h) = std::env::var_os("ANN_HOME") {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/facedb-peers/ann")
}

// ---------------------------------------------------------------- labelled descriptors

/// Reads labelled descriptors: the output of `facedb bench facefit` (`{"samples": [{"label",
/// "encoding"}, ...]}`) or face_recognition's reference file (`{"images": {...}}`, labelled
/// by [`label_reference_faces`]).
pub fn load_labelled(path: &Path) -> Result<Vec<(String, Vec<f32>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let encoding = |v: &Value, what: &str| -> Result<Vec<f32>> {
        v.as_array()
            .ok_or_else(|| anyhow!("{}: {what}: `encoding` is not an array", path.display()))?
            .iter()
            .map(|x| {
                x.as_f64().map(|f| f as f32).ok_or_else(|| {
                    anyhow!("{}: {what}: non-numeric encoding value", path.display())
                })
            })
            .collect()
    };
    if let Some(samples) = doc.get("samples").and_then(Value::as_array) {
        samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let label = s["label"]
                    .as_str()
                    .ok_or_else(|| anyhow!("{}: sample {i} has no label", path.display()))?;
                Ok((
                    label.to_string(),
                    encoding(&s["encoding"], &format!("sample {i}"))?,
                ))
            })
            .collect()
    } else if let Some(images) = doc.get("images").and_then(Value::as_object) {
        let mut faces = Vec::new();
        for (name, img) in images {
            let list = img["faces"]
                .as_array()
                .ok_or_else(|| anyhow!("{}: {name}: no `faces` array", path.display()))?;
            for (i, f) in list.iter().enumerate() {
                faces.push((name.clone(), i, encoding(&f["encoding"], name)?));
            }
        }
        Ok(label_reference_faces(&faces))
    } else {
        bail!(
            "{}: expected `samples` (facedb bench facefit) or `images` (face_recognition reference)",
            path.display()
        )
    }
}

/// `facedb bench facefit`.
#[derive(Args, Debug)]
pub struct FacefitArgs {
    /// Folder with one sub-folder per person (e.g. ../shared/data/faces/dev).
    pub dir: PathBuf,
    /// Where to write the labelled encodings (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Models directory (default: $FACEDB_MODELS, else ./models).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
}

enum Encoded {
    Face(Vec<f32>),
    NoFace,
    Error(String),
}

pub fn facefit(a: &FacefitArgs) -> Result<()> {
    let plan = facedb_gallery::enroll_plan(&a.dir)
        .with_context(|| format!("listing {}", a.dir.display()))?;
    if plan.is_empty() {
        bail!("{}: no DIR/<person>/<image> files", a.dir.display());
    }
    let dir = a
        .models
        .clone()
        .unwrap_or_else(facedb_face::default_models_dir);
    let models = facedb_face::ModelFiles::verify(&dir)
        .with_context(|| format!("models in {}", dir.display()))?;
    let threads = a
        .threads
        .unwrap_or_else(facedb_gallery::default_threads)
        .max(1);
    let t0 = Instant::now();
    let mut results: Vec<Option<Encoded>> = (0..plan.len()).map(|_| None).collect();
    let mut done = 0usize;
    facedb_gallery::for_each_with_engine(
        &models,
        threads,
        &plan,
        |engine, item| {
            let bytes = match std::fs::read(&item.path) {
                Ok(b) => b,
                Err(e) => return Encoded::Error(e.to_string()),
            };
            match facedb_face::decode_image(&bytes).and_then(|img| engine.faces(&img)) {
                Err(e) => Encoded::Error(e.to_string()),
                Ok(faces) => match facedb_gallery::largest_face(&faces) {
                    Some(f) => Encoded::Face(f.encoding.to_vec()),
                    None => Encoded::NoFace,
                },
            }
        },
        |i, r| {
            results[i] = Some(r);
            done += 1;
            if done.is_multiple_of(50) || done == plan.len() {
                eprint!("\rencoded {done}/{}", plan.len());
            }
        },
    )?;
    eprintln!();
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for (item, r) in plan.iter().zip(results) {
        match r {
            Some(Encoded::Face(e)) => samples.push(json!({
                "label": item.person, "file": item.name, "encoding": e,
            })),
            Some(Encoded::NoFace) => skipped.push(json!({"file": item.name, "reason": "no face"})),
            Some(Encoded::Error(e)) => skipped.push(json!({"file": item.name, "reason": e})),
            None => skipped.push(json!({"file": item.name, "reason": "not processed"})),
        }
    }
    let persons: std::collections::BTreeSet<&str> =
        plan.iter().map(|p| p.person.as_str()).collect();
    let doc = json!({
        "source": a.dir.display().to_string(),
        "encoder": format!("facedb {} (dlib resnet v1, largest face per image)", env!("CARGO_PKG_VERSION")),
        "persons": persons.len(),
        "samples": samples,
        "skipped": skipped,
    });
    write_atomic(&a.out, &serde_json::to_vec_pretty(&doc)?)?;
    println!(
        "{}: {} encodings of {} persons, {} skipped, {:.1} s -> {}",
        a.dir.display(),
        samples.len(),
        persons.len(),
        skipped.len(),
        t0.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

// ---------------------------------------------------------------- .npy

/// A little-endian `.npy` (format 1.0) element type.
trait NpyElem: Copy {
    const DESCR: &'static str;
    fn put(self, out: &mut Vec<u8>);
}
impl NpyElem for f32 {
    const DESCR: &'static str = "<f4";
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}
impl NpyElem for i64 {
    const DESCR: &'static str = "<i8";
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// Writes `data` with `shape` as `.npy` version 1.0: magic `\x93NUMPY`, version 1.0, a
/// little-endian u16 header length, a Python dict literal padded with spaces to a multiple
/// of 64 bytes and ended by `\n`, then the raw C-order data.
fn write_npy<T: NpyElem>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    anyhow::ensure!(
        shape.iter().product::<usize>() == data.len(),
        "npy shape {shape:?} does not match {} values",
        data.len()
    );
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        T::DESCR
    );
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    header.push('\n');
    let mut f = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    let mut buf = Vec::with_capacity(1 << 20);
    for chunk in data.chunks(1 << 17) {
        buf.clear();
        for &x in chunk {
            x.put(&mut buf);
        }
        f.write_all(&buf)?;
    }
    f.into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Reads an `.npy` file: its shape and values.
fn read_npy<T: npyz::Deserialize>(path: &Path) -> Result<(Vec<usize>, Vec<T>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let npy =
        npyz::NpyFile::new(&bytes[..]).with_context(|| format!("parsing {}", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let data = npy
        .into_vec::<T>()
        .with_context(|| format!("{}: unexpected dtype", path.display()))?;
    Ok((shape, data))
}

// ---------------------------------------------------------------- facegen

/// `facedb bench facegen`.
#[derive(Args, Debug)]
pub struct FacegenArgs {
    /// Labelled descriptors to fit on: the output of `facedb bench facefit`, or
    /// ../shared/data/reference/face_recognition_encodings.json.
    #[arg(long)]
    pub fit: PathBuf,
    /// Gallery rows.
    #[arg(long, default_value_t = 1_000_000)]
    pub n: usize,
    /// Gallery samples per identity.
    #[arg(long, default_value_t = 4)]
    pub per_id: usize,
    /// Probes: half fresh samples of enrolled identities, half never-enrolled identities.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Exact neighbours stored per probe (gt_I.npy, gt_D.npy).
    #[arg(long, default_value_t = 100)]
    pub gt_k: usize,
    /// Output folder (default: $ANN_HOME/data/facecal_<n>; bench.py finds datasets as
    /// `<dataset>_<n>` under $ANN_HOME/data).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Open-set threshold written to meta.json: facedb's default tolerance (L2).
const FACEDB_TOLERANCE: f64 = facedb_gallery::DEFAULT_TOLERANCE;

fn print_fit(stats: &FitStats, generated: &facedb_index::synth::DistanceQuantiles) {
    let r = &stats.real;
    println!(
        "fit: {} descriptors, {} identities ({} with >= 2 samples, within dof {}); shrinkage within {:.3}, centre {:.3} ({}); tr(Sigma_w) {:.4}, tr(Sigma_c) {:.4}; effective dim within {:.1}, centre {:.1}; log-sigma per identity {:.3}, per sample {:.3}; mean norm {:.3}",
        stats.samples, stats.identities, stats.identities_multi, stats.within_dof,
        stats.shrinkage_within, stats.shrinkage_center, stats.shrinkage_center_method,
        stats.trace_within, stats.trace_center, stats.effective_dim_within,
        stats.effective_dim_center, stats.id_log_sigma, stats.sample_log_sigma, stats.mean_norm
    );
    println!(
        "{:>14} {:>9} {:>8} {:>8} {:>8} {:>9}",
        "L2 distance", "pairs", "p5", "p50", "p95", "< 0.6"
    );
    for (name, q, pairs, below) in [
        (
            "real genuine",
            r.genuine,
            r.genuine_pairs,
            r.genuine_below_0_6,
        ),
        (
            "synth genuine",
            generated.genuine,
            generated.genuine_pairs,
            generated.genuine_below_0_6,
        ),
        (
            "real impostor",
            r.impostor,
            r.impostor_pairs,
            r.impostor_below_0_6,
        ),
        (
            "synth impostor",
            generated.impostor,
            generated.impostor_pairs,
            generated.impostor_below_0_6,
        ),
    ] {
        println!(
            "{name:>14} {pairs:>9} {:>8.4} {:>8.4} {:>8.4} {:>9.4}",
            q[0], q[1], q[2], below
        );
    }
    println!(
        "impostor effective dimension (2 mean^2 / var of d^2): real {:.1}, synth {:.1}",
        r.impostor_effective_dim, generated.impostor_effective_dim
    );
}

/// Exact top-`k` by squared L2, re-scored in f64 (ties by row): `(rows, distances)`, each
/// `nq × k`, padded with -1 / +inf where fewer rows exist.
fn exact_topk(base: &[f32], dim: usize, queries: &[f32], k: usize) -> (Vec<i64>, Vec<f32>) {
    let p = FlatParams {
        metric: Metric::L2,
        k: k + 16,
        range: KeyRange::ALL,
        allowed: None,
        tiebreak: &by_row,
    };
    let hits = flat_search(base, dim, queries, &p);
    let mut ids = Vec::with_capacity(hits.len() * k);
    let mut dists = Vec::with_capacity(hits.len() * k);
    for (qi, h) in hits.iter().enumerate() {
        let q = &queries[qi * dim..(qi + 1) * dim];
        let mut exact: Vec<(f64, u32)> = h
            .iter()
            .map(|n| {
                let x = &base[n.row as usize * dim..(n.row as usize + 1) * dim];
                let d: f64 = x
                    .iter()
                    .zip(q)
                    .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                    .sum();
                (d, n.row)
            })
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for j in 0..k {
            match exact.get(j) {
                Some(&(d, r)) => {
                    ids.push(r as i64);
                    dists.push(d as f32);
                }
                None => {
                    ids.push(-1);
                    dists.push(f32::INFINITY);
                }
            }
        }
    }
    (ids, dists)
}

pub fn facegen(a: &FacegenArgs) -> Result<()> {
    anyhow::ensure!(
        a.n > 0 && a.per_id > 0,
        "--n and --per-id must be at least 1"
    );
    anyhow::ensure!(a.gt_k > 0, "--gt-k must be at least 1");
    let t0 = Instant::now();
    let samples = load_labelled(&a.fit)?;
    let model = FaceModel::fit(&samples).with_context(|| format!("fitting {}", a.fit.display()))?;
    let generated = model.pair_quantiles(20_000, a.seed ^ 0x5EED);
    print_fit(model.stats(), &generated);
    let d = model.dim();
    let ids_n = a.n.div_ceil(a.per_id);
    let n_enrolled = a.queries / 2;
    anyhow::ensure!(
        n_enrolled <= ids_n,
        "--queries {} needs at least {n_enrolled} identities, the gallery has {ids_n}",
        a.queries
    );
    let mut data = model.sample(ids_n, a.per_id, n_enrolled, a.queries - n_enrolled, a.seed)?;
    data.base.truncate(a.n * d);
    data.base_ids.truncate(a.n);
    let gen_s = t0.elapsed().as_secs_f64();
    println!(
        "generated {} x {d} ({ids_n} identities x {}) and {} probes in {gen_s:.1} s; exact top-{} ...",
        a.n, a.per_id, a.queries, a.gt_k
    );
    let t1 = Instant::now();
    let (gt_i, gt_d) = exact_topk(&data.base, d, &data.queries, a.gt_k);
    let gt_s = t1.elapsed().as_secs_f64();
    let nq = data.query_ids.len();
    let enrolled: Vec<usize> = (0..nq).filter(|&q| data.query_ids[q] >= 0).collect();
    let own_top1 = enrolled
        .iter()
        .filter(|&&q| {
            let r = gt_i[q * a.gt_k];
            r >= 0 && data.base_ids[r as usize] == data.query_ids[q]
        })
        .count() as f64
        / enrolled.len().max(1) as f64;

    let out = a
        .out
        .clone()
        .unwrap_or_else(|| ann_home().join("data").join(format!("facecal_{}", a.n)));
    let name = out
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name != format!("facecal_{}", a.n) {
        eprintln!("note: bench.py looks datasets up as <dataset>_<n>; this folder is {name:?}, not \"facecal_{}\"", a.n);
    }
    let tmp = out.with_file_name(format!("{name}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    write_npy(&tmp.join("base.npy"), &[a.n, d], &data.base)?;
    write_npy(&tmp.join("queries.npy"), &[nq, d], &data.queries)?;
    write_npy(&tmp.join("base_ids.npy"), &[a.n], &data.base_ids)?;
    write_npy(&tmp.join("query_ids.npy"), &[nq], &data.query_ids)?;
    write_npy(&tmp.join("gt_I.npy"), &[nq, a.gt_k], &gt_i)?;
    write_npy(&tmp.join("gt_D.npy"), &[nq, a.gt_k], &gt_d)?;
    let meta = json!({
        "dataset": "facecal", "name": name, "n": a.n, "nq": nq, "d": d, "seed": a.seed,
        "per_id": a.per_id, "metric": "l2", "threshold": FACEDB_TOLERANCE,
        "threshold_note": "facedb's default tolerance (facedb_gallery::DEFAULT_TOLERANCE, L2); dlib and face_recognition use 0.6",
        "gt_k": a.gt_k, "gt_seconds": gt_s, "gen_seconds": gen_s,
        "generator": "facedb bench facegen (facedb_index::synth::FaceModel)",
        "params": {"fit": a.fit.display().to_string(), "fit_stats": model.stats()},
        "pair_stats": generated,
        "exact_top1_is_own_identity": own_top1,
    });
    std::fs::write(tmp.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("replacing {}", out.display()))?;
    }
    std::fs::rename(&tmp, &out).with_context(|| format!("renaming to {}", out.display()))?;
    println!(
        "exact ground truth in {gt_s:.1} s; enrolled probes whose exact top-1 is their own identity: {:.4}; wrote {} ({:.1} s total)",
        own_top1,
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------- ann

/// `facedb bench ann`.
#[derive(Args, Debug)]
pub struct AnnArgs {
    /// Dataset folder in gen.py's layout (base.npy, queries.npy, query_ids.npy, meta.json).
    #[arg(long)]
    pub dataset: PathBuf,
    /// FLAT, SQ8, IVF_FLAT, IVF_SQ8 or HNSW.
    #[arg(long)]
    pub index: String,
    /// Build parameter NAME=VALUE with Milvus's names (nlist, M, efConstruction); repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Search parameter swept: nprobe=8,16,32 | ef=32,64,128 | rerank=1,2,4; `default`
    /// among the values runs the index's own default for that parameter (recorded as its
    /// value).
    #[arg(long, value_name = "NAME=V1,V2,...")]
    pub sweep: Option<String>,
    /// Fixed re-ranking factor (k x rerank candidates re-scored exactly).
    #[arg(long)]
    pub rerank: Option<usize>,
    /// Seed of the index build.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where ids.npy and timings.json go (default: DATASET/facedb/<index>/<setting>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Hand every setting to `bench.py ingest` (same tables as faiss, hnswlib, usearch).
    #[arg(long)]
    pub ingest: bool,
    /// bench.py of the peers.
    #[arg(long, default_value = "../shared/peers/ann/bench.py")]
    pub bench_py: PathBuf,
    /// Python with numpy (default: $ANN_HOME/venv/bin/python, else
    /// ~/.cache/facedb-peers/ann/venv/bin/python).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Tag stored with the records.
    #[arg(long, default_value = "")]
    pub tag: String,
    /// Seconds per single-query latency run (at least 30 queries), as bench.py.
    #[arg(long, default_value_t = 3.0)]
    pub single_budget: f64,
    /// Seconds for the open-set vs enrolled single-query latency pass (at least 100 queries).
    #[arg(long, default_value_t = 10.0)]
    pub split_budget: f64,
    /// Skip the 1-thread batch when it would take longer than this (seconds), as bench.py.
    #[arg(long, default_value_t = 30.0)]
    pub max_batch_1t_s: f64,
}

const K: usize = 10;

/// One search setting: the index (none = FLAT) over the dataset's vectors.
struct Bench<'a> {
    index: Option<&'a dyn VectorIndex>,
    metric: Metric,
    base: &'a [f32],
    dim: usize,
    knobs: SearchKnobs,
}

impl Bench<'_> {
    fn search(&self, queries: &[f32]) -> Vec<Vec<Neighbor>> {
        match self.index {
            None => flat_search(
                self.base,
                self.dim,
                queries,
                &FlatParams {
                    metric: self.metric,
                    k: K,
                    range: KeyRange::ALL,
                    allowed: None,
                    tiebreak: &by_row,
                },
            ),
            Some(ix) => ix.search(
                self.base,
                queries,
                &AnnParams {
                    k: K,
                    range: KeyRange::ALL,
                    allowed: None,
                    tiebreak: &by_row,
                    knobs: self.knobs,
                },
            ),
        }
    }
}

/// Process CPU time (all threads), seconds.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which lives on our stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// `VmRSS` and `VmHWM` of this process in bytes (0 where unreadable).
fn rss_bytes() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb * 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 0.5)
}

/// Batch of all queries in one call, 3 repetitions: (median wall s, ids, median CPU s).
fn time_batch(
    b: &Bench<'_>,
    queries: &[f32],
    pool: &rayon::ThreadPool,
) -> (f64, Vec<Vec<Neighbor>>, f64) {
    pool.install(|| {
        let (mut ts, mut cs, mut res) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            let (c0, t0) = (cpu_seconds(), Instant::now());
            res = b.search(queries);
            ts.push(t0.elapsed().as_secs_f64());
            cs.push(cpu_seconds() - c0);
        }
        (median(&mut ts), res, median(&mut cs))
    })
}

/// One query per call until `budget` seconds and at least 30 queries (bench.py's
/// `time_single`); latencies in microseconds.
fn time_single(b: &Bench<'_>, queries: &[f32], pool: &rayon::ThreadPool, budget: f64) -> Value {
    let d = b.dim;
    pool.install(|| {
        let mut lat = Vec::new();
        let start = Instant::now();
        let c0 = cpu_seconds();
        for (i, q) in queries.chunks_exact(d).enumerate() {
            let t = Instant::now();
            std::hint::black_box(b.search(q));
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            if i + 1 >= 30 && start.elapsed().as_secs_f64() > budget {
                break;
            }
        }
        let cpu = cpu_seconds() - c0;
        let n = lat.len();
        let mean = lat.iter().sum::<f64>() / n as f64;
        lat.sort_by(f64::total_cmp);
        json!({
            "p50_us": percentile(&lat, 0.5), "p99_us": percentile(&lat, 0.99), "mean_us": mean,
            "cpu_us_per_q": cpu / n as f64 * 1e6, "n": n,
        })
    })
}

/// Single-query latency of open-set and enrolled probes, 1 thread, interleaved as stored.
fn time_split(
    b: &Bench<'_>,
    queries: &[f32],
    query_ids: &[i64],
    pool: &rayon::ThreadPool,
    budget: f64,
) -> Value {
    let d = b.dim;
    pool.install(|| {
        let (mut open, mut enrolled) = (Vec::new(), Vec::new());
        let start = Instant::now();
        for (i, q) in queries.chunks_exact(d).enumerate() {
            let t = Instant::now();
            std::hint::black_box(b.search(q));
            let us = t.elapsed().as_secs_f64() * 1e6;
            if query_ids[i] < 0 {
                open.push(us);
            } else {
                enrolled.push(us);
            }
            if i + 1 >= 100 && start.elapsed().as_secs_f64() > budget {
                break;
            }
        }
        let (no, ne) = (open.len(), enrolled.len());
        let (mo, me) = (median(&mut open), median(&mut enrolled));
        json!({
            "open_p50_us": mo, "enrolled_p50_us": me, "open_over_enrolled": mo / me,
            "n_open": no, "n_enrolled": ne, "threads": 1,
        })
    })
}

fn parse_kv(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("expected NAME=VALUE, got {s:?}"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

fn dataset_meta(dir: &Path) -> Result<Value> {
    let p = dir.join("meta.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

pub fn ann(a: &AnnArgs) -> Result<()> {
    let meta = dataset_meta(&a.dataset)?;
    let ds_name = meta["dataset"]
        .as_str()
        .ok_or_else(|| anyhow!("meta.json has no `dataset`"))?
        .to_string();
    let metric = match meta["metric"].as_str() {
        Some("l2") => Metric::L2,
        Some("ip") => Metric::Ip,
        Some("cosine") => Metric::Cosine,
        other => bail!("meta.json metric {other:?} is not l2, ip or cosine"),
    };
    let (bshape, base) = read_npy::<f32>(&a.dataset.join("base.npy"))?;
    let (qshape, queries) = read_npy::<f32>(&a.dataset.join("queries.npy"))?;
    let (_, query_ids) = read_npy::<i64>(&a.dataset.join("query_ids.npy"))?;
    anyhow::ensure!(
        bshape.len() == 2 && qshape.len() == 2 && bshape[1] == qshape[1] && bshape[1] > 0,
        "base {bshape:?} and queries {qshape:?} must be n x d and nq x d"
    );
    let (n, dim, nq) = (bshape[0], bshape[1], qshape[0]);
    anyhow::ensure!(
        query_ids.len() == nq,
        "query_ids has {} entries, queries {nq}",
        query_ids.len()
    );

    // build parameters
    let mut bp: BTreeMap<String, i64> = BTreeMap::new();
    for p in &a.params {
        let (k, v) = parse_kv(p)?;
        let v: i64 = v
            .parse()
            .with_context(|| format!("build parameter {k}: {v:?} is not an integer"))?;
        bp.insert(k, v);
    }
    let spec = IndexSpec::from_milvus(&a.index, |k| bp.get(k).copied())?;
    let allowed: &[&str] = match spec {
        IndexSpec::IvfFlat { .. } | IndexSpec::IvfSq8 { .. } => &["nlist"],
        IndexSpec::Hnsw { .. } => &["M", "efConstruction"],
        IndexSpec::Flat | IndexSpec::Sq8 => &[],
    };
    if let Some(k) = bp.keys().find(|k| !allowed.contains(&k.as_str())) {
        bail!(
            "{} takes no build parameter {k:?} (accepted: {allowed:?})",
            spec.name()
        );
    }
    let build_params: Value = match spec {
        IndexSpec::IvfFlat { nlist } | IndexSpec::IvfSq8 { nlist } => json!({"nlist": nlist}),
        IndexSpec::Hnsw { m, ef_construction } => {
            json!({"M": m, "efConstruction": ef_construction})
        }
        _ => json!({}),
    };
    let label = spec.to_string();

    // sweep
    let (sweep_key, sweep_vals): (Option<String>, Vec<Option<usize>>) = match &a.sweep {
        None => (None, vec![None]),
        Some(s) => {
            let (k, vs) = parse_kv(s)?;
            anyhow::ensure!(
                ["nprobe", "ef", "rerank"].contains(&k.as_str()),
                "--sweep takes nprobe, ef or rerank, not {k:?}"
            );
            let vals = vs
                .split(',')
                .map(|v| match v.trim() {
                    "default" => Ok(None),
                    v => v.parse::<usize>().map(Some).with_context(|| {
                        format!("--sweep {k}: {v:?} is neither an integer nor `default`")
                    }),
                })
                .collect::<Result<Vec<_>>>()?;
            (Some(k), vals)
        }
    };

    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let pool_all = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let pool_1 = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    println!(
        "facedb bench ann: {} (n={n}, d={dim}, nq={nq}, metric {}) index {label}, {threads} threads, isa {:?}",
        a.dataset.display(),
        metric.name(),
        facedb_index::distance::isa()
    );

    let load_before_build = loadavg();
    let (rss0, hwm0) = rss_bytes();
    let t = Instant::now();
    let index: Option<Box<dyn VectorIndex>> = match spec {
        IndexSpec::Flat => None,
        _ => Some(
            pool_all
                .install(|| build_index(&spec, metric, &base, dim, a.seed))
                .with_context(|| format!("building {label}"))?,
        ),
    };
    let build_s = t.elapsed().as_secs_f64();
    let load_during_build = loadavg();
    let (rss1, hwm1) = rss_bytes();
    let index_bytes = index.as_ref().map_or(0, |ix| ix.bytes());
    let bytes_per_vec = index_bytes as f64 / n as f64 + (dim * 4) as f64;
    println!(
        "build {build_s:.2} s; index {:.1} MB = {bytes_per_vec:.1} bytes/vector with the f32 vectors ({} bytes)",
        index_bytes as f64 / 1048576.0,
        dim * 4
    );

    for v in sweep_vals {
        let mut knobs = SearchKnobs {
            rerank: a.rerank,
            ..SearchKnobs::default()
        };
        let mut params = serde_json::Map::new();
        if let Some(r) = a.rerank {
            params.insert("rerank".into(), json!(r));
        }
        match (&sweep_key, v) {
            (Some(k), Some(v)) => {
                match k.as_str() {
                    "nprobe" => knobs.nprobe = Some(v),
                    "ef" => knobs.ef = Some(v),
                    _ => knobs.rerank = Some(v),
                }
                params.insert(k.clone(), json!(v));
            }
            // the index's own default for this knob, recorded as its value
            (Some(k), None) => {
                let built = index.as_ref().map_or(spec, |ix| ix.spec());
                let v = match (k.as_str(), built) {
                    ("nprobe", IndexSpec::IvfFlat { nlist } | IndexSpec::IvfSq8 { nlist }) => {
                        facedb_index::ivf::default_nprobe(nlist)
                    }
                    ("ef", _) => facedb_index::hnsw::DEFAULT_EF.max(K),
                    _ => facedb_index::sq8::DEFAULT_RERANK,
                };
                params.insert(k.clone(), json!(v));
            }
            _ => {}
        }
        knobs.validate(&spec, K)?;
        let b = Bench {
            index: index.as_deref(),
            metric,
            base: &base,
            dim,
            knobs,
        };
        let setting = if params.is_empty() {
            "default".to_string()
        } else {
            params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let l0 = loadavg();
        let (bt_all, res, ct_all) = time_batch(&b, &queries, &pool_all);
        let (bt_1, ct_1) = if bt_all * threads as f64 <= a.max_batch_1t_s {
            let (w, _, c) = time_batch(&b, &queries, &pool_1);
            (Some(w), Some(c))
        } else {
            (None, None)
        };
        let s1 = time_single(&b, &queries, &pool_1, a.single_budget);
        let s_all = time_single(&b, &queries, &pool_all, a.single_budget);
        let split = time_split(&b, &queries, &query_ids, &pool_1, a.split_budget);
        let load_after = loadavg();

        let mut ids = Vec::with_capacity(nq * K);
        for hits in &res {
            for j in 0..K {
                ids.push(hits.get(j).map_or(-1, |h| h.row as i64));
            }
        }
        let out = a.out.clone().unwrap_or_else(|| {
            a.dataset
                .join("facedb")
                .join(sanitize(&label))
                .join(sanitize(&setting))
        });
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        write_npy(&out.join("ids.npy"), &[nq, K], &ids)?;
        let qps_all = nq as f64 / bt_all;
        let timings = json!({
            "build_s": build_s, "build_params": build_params,
            "rss_delta_mb": (rss1 - rss0) / 1048576.0, "peak_rss_delta_mb": (hwm1 - hwm0) / 1048576.0,
            "index_file_mb": Value::Null, "bytes_per_vec": bytes_per_vec,
            "index_bytes": index_bytes,
            "qps_batch_allT": qps_all, "qps_batch_1T": bt_1.map(|t| nq as f64 / t),
            "qps_per_cpu_s_1T": ct_1.map(|c| nq as f64 / c.max(1e-9)),
            "qps_per_cpu_s_allT": nq as f64 / ct_all.max(1e-9),
            "single_1T": s1, "single_allT": s_all, "threads_all": threads,
            "open_vs_enrolled_1T": split,
            "load_before": l0, "load_after": load_after, "load_during_build": load_during_build,
            "load_before_build": load_before_build,
            "env": {"engine": format!("facedb {}", env!("CARGO_PKG_VERSION")),
                    "isa": format!("{:?}", facedb_index::distance::isa()),
                    "index": label, "params": Value::Object(params.clone()), "seed": a.seed},
        });
        std::fs::write(
            out.join("timings.json"),
            serde_json::to_vec_pretty(&timings)?,
        )?;
        let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "  {label} {setting}: QPS {threads}T {qps_all:.0}, 1T {}; nq=1 p50/p99 1T {:.0}/{:.0} us, {threads}T {:.0}/{:.0} us; open/enrolled p50 {:.0}/{:.0} us (ratio {:.2}); load {:?} -> {:?}",
            bt_1.map_or("-".into(), |t| format!("{:.0}", nq as f64 / t)),
            f(&s1, "p50_us"), f(&s1, "p99_us"), f(&s_all, "p50_us"), f(&s_all, "p99_us"),
            f(&split, "open_p50_us"), f(&split, "enrolled_p50_us"), f(&split, "open_over_enrolled"),
            l0.first(), load_after.first()
        );
        println!("    wrote {}", out.display());
        if a.ingest {
            ingest(a, &ds_name, n, &label, &params, &out)?;
        }
    }
    Ok(())
}

/// Characters outside `[A-Za-z0-9._=,-]` replaced by `_` (folder names of settings).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=,-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs `bench.py ingest` for one setting. `ANN_HOME` is the dataset's grandparent when the
/// dataset lies in a `data` folder (bench.py finds it as `$ANN_HOME/data/<dataset>_<n>`).
fn ingest(
    a: &AnnArgs,
    ds_name: &str,
    n: usize,
    label: &str,
    params: &serde_json::Map<String, Value>,
    out: &Path,
) -> Result<()> {
    let dir = std::fs::canonicalize(&a.dataset)?;
    let expected = format!("{ds_name}_{n}");
    anyhow::ensure!(
        dir.file_name().is_some_and(|f| f == expected.as_str()),
        "bench.py ingest finds datasets as $ANN_HOME/data/{expected}; {} is named otherwise",
        dir.display()
    );
    let home = dir
        .parent()
        .filter(|p| p.file_name().is_some_and(|f| f == "data"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("{} is not in a `data` folder", dir.display()))?;
    let python = a.python.clone().unwrap_or_else(|| {
        // the venv of $ANN_HOME, else the default home's (setup.sh's)
        let own = ann_home().join("venv/bin/python");
        let default = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/facedb-peers/ann/venv/bin/python"));
        match default {
            Some(d) if !own.exists() && d.exists() => d,
            _ => own,
        }
    });
    let status = std::process::Command::new(&python)
        .arg(&a.bench_py)
        .args(["ingest", "--dataset", ds_name, "--n", &n.to_string()])
        .args(["--lib", "facedb", "--index", label])
        .arg("--params")
        .arg(serde_json::to_string(params)?)
        .arg("--ids")
        .arg(out.join("ids.npy"))
        .arg("--timings")
        .arg(out.join("timings.json"))
        .args(["--tag", &a.tag])
        .env("ANN_HOME", &home)
        .status()
        .with_context(|| format!("running {} {}", python.display(), a.bench_py.display()))?;
    anyhow::ensure!(status.success(), "bench.py ingest failed ({status})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_header_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        write_npy(&p, &[3, 4], &data).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes[10 + hlen - 1], b'\n');
        assert_eq!(bytes.len(), 10 + hlen + 12 * 4);
        let (shape, back) = read_npy::<f32>(&p).unwrap();
        assert_eq!(shape, vec![3, 4]);
        assert_eq!(back, data);
        let ids: Vec<i64> = vec![-1, 0, 1 << 40];
        write_npy(&p, &[3], &ids).unwrap();
        let (shape, back) = read_npy::<i64>(&p).unwrap();
        assert_eq!((shape, back), (vec![3], ids));
        assert!(write_npy(&p, &[2, 2], &[1.0f32; 3]).is_err());
    }

    #[test]
    fn labelled_files_of_both_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.json");
        std::fs::write(
            &p,
            r#"{"samples": [{"label": "a", "encoding": [1, 2]}, {"label": "b", "encoding": [0.5, 0]}]}"#,
        )
        .unwrap();
        let s = load_labelled(&p).unwrap();
        assert_eq!(
            s,
            vec![("a".into(), vec![1.0, 2.0]), ("b".into(), vec![0.5, 0.0])]
        );
        std::fs::write(&p, r#"{"samples": [{"encoding": [1]}]}"#).unwrap();
        assert!(load_labelled(&p).is_err());
        std::fs::write(&p, r#"{"other": 1}"#).unwrap();
        assert!(load_labelled(&p).is_err());
        let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/reference/face_recognition_encodings.json");
        if reference.is_file() {
            let s = load_labelled(&reference).unwrap();
            assert_eq!(s.len(), 137);
            assert_eq!(s.iter().filter(|x| x.0 == "obama").count(), 6);
        } else {
            eprintln!("SKIPPED part: {} is absent", reference.display());
        }
    }
}
