//! `facedb bench store`: insert rows/s with durability on, flush, reopen time, FLAT nq=1
//! latency (1 and all threads) and batched throughput, on random or generated face-like data.
//!
//! With `--dataset DIR` (a folder written by `../shared/peers/ann/gen.py`: `base.npy`,
//! `queries.npy`) it also writes `ids.npy` (top-10 of every query) and `timings.json`, which
//! `bench.py ingest` puts beside faiss, hnswlib and usearch in the same tables.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use facedb_store::*;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// The embedded store: insert, flush, reopen, FLAT search.
    Store {
        /// Rows to insert (ignored with --dataset).
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        /// Dimension (ignored with --dataset).
        #[arg(long, default_value_t = 128)]
        dim: usize,
        /// Folder with base.npy and queries.npy (float32, row-major), e.g. from peers/ann/gen.py.
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// Rows per insert call.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// Metric: L2, IP or COSINE.
        #[arg(long, default_value = "L2")]
        metric: String,
        /// Single queries timed per thread setting.
        #[arg(long, default_value_t = 100)]
        single: usize,
        /// Queries per batched call.
        #[arg(long, default_value_t = 100)]
        nq: usize,
        /// Database directory (default: a temporary directory, removed afterwards).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Where to write ids.npy and timings.json for `bench.py ingest`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Filtered search: latency at several selectivities beside the unfiltered search and a
    /// brute-force scan of only the matching rows.
    Filter {
        /// Rows (uniform random vectors, an INT64 `bucket = row % 10000` field).
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        /// Dimension.
        #[arg(long, default_value_t = 128)]
        dim: usize,
        /// Queries timed per filter.
        #[arg(long, default_value_t = 30)]
        queries: usize,
    },
    /// Encodes a folder of people (DIR/<person>/<image>) and caches labelled encodings as
    /// JSON, for `bench facegen --fit`.
    Facefit(crate::bench_ann::FacefitArgs),
    /// Fits a face-descriptor model on labelled encodings and writes a calibrated dataset in
    /// the layout of ../shared/peers/ann/gen.py (exact top-100 ground truth included).
    Facegen(crate::bench_ann::FacegenArgs),
    /// Builds an index on a gen.py-layout dataset and measures it as bench.py does.
    Ann(crate::bench_ann::AnnArgs),
}

fn load_npy(path: &Path) -> Result<(Vec<f32>, usize)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let npy =
        npyz::NpyFile::new(&bytes[..]).with_context(|| format!("parsing {}", path.display()))?;
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        bail!(
            "{}: expected a 2-d array, got shape {shape:?}",
            path.display()
        );
    }
    let dim = shape[1] as usize;
    let data: Vec<f32> = npy
        .into_vec()
        .with_context(|| format!("{}: expected float32", path.display()))?;
    Ok((data, dim))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn time_single(
    c: &Collection,
    queries: &[Vec<f32>],
    metric: Metric,
    threads: usize,
) -> Result<serde_json::Value> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut lat = Vec::with_capacity(queries.len());
    pool.install(|| -> Result<()> {
        // one warm-up query
        c.search(&SearchRequest::new(vec![queries[0].clone()], metric, 10))?;
        for q in queries {
            let t = Instant::now();
            c.search(&SearchRequest::new(vec![q.clone()], metric, 10))?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Ok(())
    })?;
    lat.sort_by(f64::total_cmp);
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    Ok(serde_json::json!({
        "p50_us": percentile(&lat, 0.5), "p99_us": percentile(&lat, 0.99), "mean_us": mean,
        "cpu_us_per_q": mean * threads as f64, "n": lat.len(),
    }))
}

fn time_batch(
    c: &Collection,
    queries: &[Vec<f32>],
    metric: Metric,
    threads: usize,
) -> Result<(f64, Vec<Vec<Hit>>)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| -> Result<(f64, Vec<Vec<Hit>>)> {
        let mut best = f64::INFINITY;
        let mut res = Vec::new();
        let t_all = Instant::now();
        let mut reps = 0;
        while reps < 3 || (t_all.elapsed().as_secs_f64() < 4.0 && reps < 10) {
            let t = Instant::now();
            res = c.search(&SearchRequest::new(queries.to_vec(), metric, 10))?;
            best = best.min(t.elapsed().as_secs_f64());
            reps += 1;
        }
        Ok((queries.len() as f64 / best, res))
    })
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Store {
            n,
            dim,
            dataset,
            batch,
            metric,
            single,
            nq,
            data,
            out,
        } => store(n, dim, dataset, batch, metric, single, nq, data, out),
        BenchCmd::Filter { n, dim, queries } => filter(n, dim, queries),
        BenchCmd::Facefit(a) => crate::bench_ann::facefit(&a),
        BenchCmd::Facegen(a) => crate::bench_ann::facegen(&a),
        BenchCmd::Ann(a) => crate::bench_ann::ann(&a),
    }
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2] * 1e3
}

/// Refuses sizes that cannot run: zero counts, and data larger than this machine's memory.
fn check_sizes(n: usize, dim: usize, counts: &[(&str, usize)]) -> Result<()> {
    for (name, v) in counts {
        anyhow::ensure!(*v > 0, "--{name} must be at least 1");
    }
    anyhow::ensure!(n > 0, "--n must be at least 1");
    anyhow::ensure!((1..=32768).contains(&dim), "--dim must be in 1..=32768");
    let bytes = n.checked_mul(dim).and_then(|x| x.checked_mul(4));
    anyhow::ensure!(
        bytes.is_some_and(|b| b <= 64 << 30),
        "--n {n} x --dim {dim} is more than 64 GiB of vectors"
    );
    Ok(())
}

fn filter(n: usize, dim: usize, nqueries: usize) -> Result<()> {
    check_sizes(n, dim, &[("queries", nqueries)])?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let base: Vec<f32> = (0..n * dim).map(|_| rng.gen::<f32>()).collect();
    let queries: Vec<Vec<f32>> = (0..nqueries)
        .map(|_| (0..dim).map(|_| rng.gen::<f32>()).collect())
        .collect();
    let tmp = tempfile::tempdir()?;
    let db = Database::open_with(
        tmp.path(),
        Options {
            fsync: false,
            ..Options::default()
        },
    )?;
    let c = db.create_collection(CollectionSchema {
        name: "bench".into(),
        description: String::new(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("bucket", DataType::Int64),
            FieldSchema::new("v", DataType::FloatVector { dim: dim as u32 }),
        ],
    })?;
    for start in (0..n).step_by(100_000) {
        let end = (start + 100_000).min(n);
        let ids: Vec<i64> = (start as i64..end as i64).collect();
        c.insert(
            Batch::new()
                .with(
                    "bucket",
                    ColumnData::Int64(ids.iter().map(|i| i % 10_000).collect()),
                )
                .with(
                    "v",
                    ColumnData::FloatVector {
                        dim,
                        data: base[start * dim..end * dim].to_vec(),
                    },
                )
                .with("id", ColumnData::Int64(ids)),
        )?;
    }
    c.flush()?;
    println!("facedb bench filter: n={n} dim={dim} uniform random, {nqueries} queries each, top-10 L2, {} threads", rayon::current_num_threads());
    println!(
        "{:>24} {:>10} {:>14} {:>22}",
        "filter", "matching", "search p50 ms", "scan of matches p50 ms"
    );
    for (label, expr, keep) in [
        ("none", None, 10_000i64),
        ("50% bucket < 5000", Some("bucket < 5000"), 5000),
        ("10% bucket < 1000", Some("bucket < 1000"), 1000),
        ("1% bucket < 100", Some("bucket < 100"), 100),
        ("0.01% bucket < 1", Some("bucket < 1"), 1),
    ] {
        let mut lat = Vec::new();
        let mut hits_len = 0;
        for q in &queries {
            let mut r = SearchRequest::new(vec![q.clone()], Metric::L2, 10);
            r.filter = expr.map(str::to_string);
            let t = Instant::now();
            let h = c.search(&r)?;
            lat.push(t.elapsed().as_secs_f64());
            hits_len = h[0].len();
        }
        // Brute force over the matching rows only, already gathered into one array.
        let rows: Vec<usize> = (0..n).filter(|r| (*r as i64 % 10_000) < keep).collect();
        let mut gathered = Vec::with_capacity(rows.len() * dim);
        for r in &rows {
            gathered.extend_from_slice(&base[r * dim..(r + 1) * dim]);
        }
        let p = facedb_index::FlatParams {
            metric: Metric::L2,
            k: 10,
            range: facedb_index::KeyRange::ALL,
            allowed: None,
            tiebreak: &facedb_index::by_row,
        };
        let mut scan = Vec::new();
        for q in &queries {
            let t = Instant::now();
            facedb_index::flat_search(&gathered, dim, q, &p);
            scan.push(t.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            hits_len == 10.min(rows.len()),
            "filtered search returned {hits_len} hits"
        );
        println!(
            "{label:>24} {:>10} {:>14.2} {:>22.2}",
            rows.len(),
            median_ms(lat),
            median_ms(scan)
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn store(
    n: usize,
    dim: usize,
    dataset: Option<PathBuf>,
    batch: usize,
    metric: String,
    single: usize,
    nq: usize,
    data: Option<PathBuf>,
    out: Option<PathBuf>,
) -> Result<()> {
    let metric = Metric::parse(&metric).with_context(|| format!("unknown metric {metric}"))?;
    check_sizes(n, dim, &[("batch", batch), ("single", single), ("nq", nq)])?;
    let (base, queries, dim, source) = match &dataset {
        Some(d) => {
            let (b, dim) = load_npy(&d.join("base.npy"))?;
            let (q, qd) = load_npy(&d.join("queries.npy"))?;
            if qd != dim {
                bail!("queries have dim {qd}, base has {dim}");
            }
            (b, q, dim, d.display().to_string())
        }
        None => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(42);
            let b: Vec<f32> = (0..n * dim).map(|_| rng.gen::<f32>()).collect();
            let q: Vec<f32> = (0..1000 * dim).map(|_| rng.gen::<f32>()).collect();
            (b, q, dim, format!("uniform random [0,1)^{dim}, seed 42"))
        }
    };
    let n = base.len() / dim;
    anyhow::ensure!(
        n > 0 && queries.len() >= dim,
        "the dataset needs at least one base vector and one query"
    );
    let queries: Vec<Vec<f32>> = queries.chunks_exact(dim).map(|q| q.to_vec()).collect();
    let tmp = tempfile::tempdir()?;
    let dir = data.unwrap_or_else(|| tmp.path().join("db"));
    let threads = rayon::current_num_threads();
    println!(
        "facedb bench store: n={n} dim={dim} metric={} data={source} threads={threads} isa={:?}",
        metric.name(),
        facedb_index::distance::isa()
    );

    let schema = CollectionSchema {
        name: "bench".into(),
        description: String::new(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("v", DataType::FloatVector { dim: dim as u32 }),
        ],
    };
    let db = Database::open(&dir)?;
    if db.has_collection("bench") {
        db.drop_collection("bench")?;
    }
    let c = db.create_collection(schema)?;
    let t = Instant::now();
    for (i, chunk) in base.chunks(batch * dim).enumerate() {
        let rows = chunk.len() / dim;
        let ids: Vec<i64> = (0..rows as i64).map(|r| (i * batch) as i64 + r).collect();
        c.insert(Batch::new().with("id", ColumnData::Int64(ids)).with(
            "v",
            ColumnData::FloatVector {
                dim,
                data: chunk.to_vec(),
            },
        ))?;
    }
    let insert_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    c.flush()?;
    let flush_s = t.elapsed().as_secs_f64();
    println!("insert (fsync per batch of {batch}): {:.0} rows/s ({insert_s:.2} s); flush {flush_s:.3} s; {} sealed segments", n as f64 / insert_s, c.sealed_segments());
    drop(c);
    drop(db);
    let t = Instant::now();
    let db = Database::open(&dir)?;
    let c = db.collection("bench")?;
    let count = c.count();
    let reopen_s = t.elapsed().as_secs_f64();
    println!("reopen: {:.3} s ({count} rows)", reopen_s);
    let t = Instant::now();
    c.wait_for_index(std::time::Duration::from_secs(3600));
    println!(
        "ready for search (8-bit sketches of sealed segments, FACEDB_SKETCH=0 for none): {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let singles: Vec<Vec<f32>> = queries.iter().take(single).cloned().collect();
    let s1 = time_single(&c, &singles, metric, 1)?;
    let s_all = time_single(&c, &singles, metric, threads)?;
    println!(
        "FLAT nq=1 top-10, 1 thread:  p50 {:.2} ms  p99 {:.2} ms",
        s1["p50_us"].as_f64().unwrap_or(0.0) / 1e3,
        s1["p99_us"].as_f64().unwrap_or(0.0) / 1e3
    );
    println!(
        "FLAT nq=1 top-10, {threads} threads: p50 {:.2} ms  p99 {:.2} ms",
        s_all["p50_us"].as_f64().unwrap_or(0.0) / 1e3,
        s_all["p99_us"].as_f64().unwrap_or(0.0) / 1e3
    );
    let bq: Vec<Vec<f32>> = queries.iter().take(nq).cloned().collect();
    let (qps_all, _) = time_batch(&c, &bq, metric, threads)?;
    let (qps_1, _) = time_batch(&c, &bq, metric, 1)?;
    println!(
        "FLAT nq={} top-10: {qps_all:.0} q/s ({threads} threads), {qps_1:.0} q/s (1 thread)",
        bq.len()
    );
    let bytes = (n * dim * 4) as f64;
    println!(
        "scan bandwidth at nq=1: {:.1} GB/s (1 thread), {:.1} GB/s ({threads} threads)",
        bytes / s1["p50_us"].as_f64().unwrap_or(1.0) / 1e3,
        bytes / s_all["p50_us"].as_f64().unwrap_or(1.0) / 1e3
    );

    if let Some(out) = out {
        std::fs::create_dir_all(&out)?;
        let all = c.search(&SearchRequest::new(queries.clone(), metric, 10))?;
        let mut ids: Vec<i64> = Vec::with_capacity(all.len() * 10);
        for hits in &all {
            for i in 0..10 {
                ids.push(match hits.get(i).map(|h| &h.pk) {
                    Some(PrimaryKey::Int(k)) => *k,
                    _ => -1,
                });
            }
        }
        let mut f = std::fs::File::create(out.join("ids.npy"))?;
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<i64>::new()
            .default_dtype()
            .shape(&[all.len() as u64, 10])
            .writer(&mut f)
            .begin_nd()?;
        w.extend(ids)?;
        w.finish()?;
        let timings = serde_json::json!({
            "build_s": 0.0, "build_params": {"insert_rows_per_s": n as f64 / insert_s, "flush_s": flush_s, "reopen_s": reopen_s},
            "bytes_per_vec": (dim * 4) as f64, "qps_batch_allT": qps_all, "qps_batch_1T": qps_1,
            "single_1T": s1, "single_allT": s_all, "threads_all": threads,
        });
        std::fs::write(
            out.join("timings.json"),
            serde_json::to_vec_pretty(&timings)?,
        )?;
        println!("wrote {}/ids.npy and timings.json", out.display());
    }
    Ok(())
}
