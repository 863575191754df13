//! IVF_FLAT, IVF_SQ8 and SQ8 on the peers' face128 data, beside FLAT:
//!
//! ```text
//! cargo run --release -p facedb-index --example ivf_bench -- [--n 100000] [--nq 1000]
//!     [--index flat,ivf_flat,ivf_sq8,sq8] [--nlist 1024,auto] [--nprobe 8,16,32,64,128]
//!     [--threads 1,2] [--single 200] [--rerank 4] [--data DIR] [--cache DIR]
//! ```
//!
//! Reads `DIR/{base,queries,gt_I,base_ids,query_ids}.npy` (default
//! `~/.cache/facedb-peers/ann/data/face128_1000000`, written by
//! `../shared/peers/ann/gen.py`); with `--n` below the file's rows, the first `n` rows are
//! used and the ground truth is recomputed with `flat_search`. `--nlist auto` is
//! `4 × sqrt(n)` (as the peers' faiss IVF). For every index and setting it prints build
//! time, bytes per vector, recall@1 / @10 against exact search, the share of enrolled probes
//! whose genuine mate is the top-1 (exact search in brackets), batch q/s (`nq` queries in one
//! call, best of 3 or `REPS`) and one-query p50 / p99 latency, with 1 and 2 rayon threads, plus the
//! process CPU time per query (robust to other jobs on a shared machine) and the load
//! average. `--cache DIR` keeps built indexes there (`load_index` on later runs; the build
//! column then shows the time of the original build).

use std::io::Read;
use std::time::Instant;

use facedb_index::{
    build_index, by_row, flat_search, AnnParams, FlatParams, IndexSpec, KeyRange, Metric, Neighbor,
    SearchKnobs, VectorIndex,
};

/// A 2-d little-endian `f4` / `i8` C-order array (1-d arrays read as `n × 1`), at most
/// `max_rows` rows.
struct Npy {
    rows: usize,
    cols: usize,
    f32s: Vec<f32>,
    i64s: Vec<i64>,
}

fn read_npy(path: &str, max_rows: usize) -> Result<Npy, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut head = [0u8; 10];
    f.read_exact(&mut head)
        .map_err(|e| format!("{path}: {e}"))?;
    if &head[..6] != b"\x93NUMPY" {
        return Err(format!("{path}: not a .npy file"));
    }
    let hlen = if head[6] == 1 {
        u16::from_le_bytes([head[8], head[9]]) as usize
    } else {
        let mut more = [0u8; 2];
        f.read_exact(&mut more).map_err(|e| e.to_string())?;
        u32::from_le_bytes([head[8], head[9], more[0], more[1]]) as usize
    };
    let mut h = vec![0u8; hlen];
    f.read_exact(&mut h).map_err(|e| e.to_string())?;
    let h = String::from_utf8_lossy(&h).to_string();
    if h.contains("'fortran_order': True") {
        return Err(format!("{path}: Fortran order"));
    }
    let descr = h
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .ok_or(format!("{path}: no descr"))?
        .to_string();
    let shape: Vec<usize> = h
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or(format!("{path}: no shape"))?
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let (rows, cols) = match shape[..] {
        [r] => (r, 1),
        [r, c] => (r, c),
        _ => return Err(format!("{path}: shape {shape:?}")),
    };
    let rows = rows.min(max_rows);
    let size = match descr.as_str() {
        "<f4" => 4,
        "<i8" => 8,
        d => return Err(format!("{path}: dtype {d}")),
    };
    let mut bytes = vec![0u8; rows * cols * size];
    f.read_exact(&mut bytes)
        .map_err(|e| format!("{path}: {e}"))?;
    let mut out = Npy {
        rows,
        cols,
        f32s: Vec::new(),
        i64s: Vec::new(),
    };
    if size == 4 {
        out.f32s = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
    } else {
        out.i64s = bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
    }
    Ok(out)
}

fn cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|s| s.as_str())
}

fn list(args: &[String], name: &str, default: &str) -> Vec<String> {
    arg(args, name)
        .unwrap_or(default)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Batch repetitions (`REPS`, default 3): the best is reported.
fn reps() -> usize {
    std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

struct Quality {
    r1: f64,
    r10: f64,
    mate: f64,
}

/// Recall against the ground truth, and the share of enrolled probes (`enrolled[i]`) whose
/// top-1 row has the probe's identity.
fn quality(
    got: &[Vec<Neighbor>],
    gt: &[Vec<u32>],
    ids: &[i64],
    qids: &[i64],
    enrolled: &[bool],
) -> Quality {
    let nq = got.len() as f64;
    let mut r1 = 0.0;
    let mut r10 = 0.0;
    let mut mate = 0;
    let mut probes = 0;
    for (((g, t), &qid), &enr) in got.iter().zip(gt).zip(qids).zip(enrolled) {
        if g.first().map(|n| n.row) == t.first().copied() {
            r1 += 1.0;
        }
        r10 += g
            .iter()
            .take(10)
            .filter(|n| t[..10.min(t.len())].contains(&n.row))
            .count() as f64
            / 10.0;
        if enr {
            probes += 1;
            if g.first().map(|n| ids[n.row as usize]) == Some(qid) {
                mate += 1;
            }
        }
    }
    Quality {
        r1: r1 / nq,
        r10: r10 / nq,
        mate: mate as f64 / probes.max(1) as f64,
    }
}

struct Timing {
    qps: f64,
    cpu_us: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Batch q/s (best of 3) and one-query latencies of `search` under `threads` threads.
fn time_it(
    threads: usize,
    nq: usize,
    single: usize,
    search: &(dyn Fn(&[f32]) -> Vec<Vec<Neighbor>> + Sync),
    queries: &[f32],
    dim: usize,
) -> Timing {
    pool(threads).install(|| {
        let mut best = f64::INFINITY;
        let mut cpu = f64::INFINITY;
        for _ in 0..reps() {
            let (t, c) = (Instant::now(), cpu_s());
            std::hint::black_box(search(&queries[..nq * dim]));
            best = best.min(t.elapsed().as_secs_f64());
            cpu = cpu.min(cpu_s() - c);
        }
        let mut lat: Vec<f64> = (0..single)
            .map(|i| {
                let q = &queries[(i % nq) * dim..(i % nq + 1) * dim];
                let t = Instant::now();
                std::hint::black_box(search(q));
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0)
        };
        Timing {
            qps: nq as f64 / best,
            cpu_us: cpu / nq as f64 * 1e6,
            p50_us: pct(0.5),
            p99_us: pct(0.99),
        }
    })
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let home = std::env::var("HOME").unwrap_or_default();
    let default_dir = format!("{home}/.cache/facedb-peers/ann/data/face128_1000000");
    let dir = arg(&args, "--data").unwrap_or(&default_dir).to_string();
    let n_arg: usize = arg(&args, "--n").map_or(usize::MAX, |s| s.parse().unwrap_or(usize::MAX));
    let nq_arg: usize = arg(&args, "--nq").map_or(1000, |s| s.parse().unwrap_or(1000));
    let single: usize = arg(&args, "--single").map_or(200, |s| s.parse().unwrap_or(200));
    let rerank: Option<usize> = arg(&args, "--rerank").and_then(|s| s.parse().ok());
    let indexes = list(&args, "--index", "flat,ivf_flat,ivf_sq8,sq8");
    let nlists = list(&args, "--nlist", "1024,auto");
    let nprobes: Vec<usize> = list(&args, "--nprobe", "8,16,32,64,128")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let base_name = dir
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("data");
    let cache = arg(&args, "--cache").map(|s| format!("{s}/{base_name}"));
    let threads: Vec<usize> = list(&args, "--threads", "1,2")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();

    println!("load average at start: {}", loadavg());
    let t = Instant::now();
    let base = read_npy(&format!("{dir}/base.npy"), n_arg)?;
    let full_rows = read_npy(&format!("{dir}/base_ids.npy"), usize::MAX)?.rows;
    let base_ids = read_npy(&format!("{dir}/base_ids.npy"), base.rows)?.i64s;
    let queries = read_npy(&format!("{dir}/queries.npy"), nq_arg)?;
    let query_ids = read_npy(&format!("{dir}/query_ids.npy"), queries.rows)?.i64s;
    let (n, dim, nq) = (base.rows, base.cols, queries.rows);
    let v = &base.f32s;
    let q = &queries.f32s;
    println!(
        "data: {n} x {dim} base, {nq} queries ({:.1} s to read)",
        t.elapsed().as_secs_f64()
    );

    // Ground truth: the peers' file for the full set, flat_search for a prefix.
    let gt: Vec<Vec<u32>> = if n == full_rows {
        let g = read_npy(&format!("{dir}/gt_I.npy"), nq)?;
        g.i64s
            .chunks_exact(g.cols)
            .map(|r| r.iter().take(10).map(|&i| i as u32).collect())
            .collect()
    } else {
        let t = Instant::now();
        let p = FlatParams {
            metric: Metric::L2,
            k: 10,
            range: KeyRange::ALL,
            allowed: None,
            tiebreak: &by_row,
        };
        let g = flat_search(v, dim, q, &p)
            .into_iter()
            .map(|r| r.into_iter().map(|nb| nb.row).collect())
            .collect();
        println!(
            "ground truth by flat_search: {:.1} s",
            t.elapsed().as_secs_f64()
        );
        g
    };
    let id_set: std::collections::HashSet<i64> = base_ids.iter().copied().collect();
    let enrolled: Vec<bool> = query_ids.iter().map(|q| id_set.contains(q)).collect();
    let exact_mate = {
        let top: Vec<Vec<Neighbor>> = gt
            .iter()
            .map(|g| {
                vec![Neighbor {
                    row: g[0],
                    score: 0.0,
                }]
            })
            .collect();
        quality(&top, &gt, &base_ids, &query_ids, &enrolled).mate
    };
    println!(
        "enrolled probes: {} of {nq}; genuine mate is FLAT's top-1 for {:.2} %",
        enrolled.iter().filter(|&&e| e).count(),
        100.0 * exact_mate
    );
    println!();
    println!("| index | nlist | nprobe | build s | B/vec | R@1 | R@10 | mate top-1 % | threads | q/s (nq={nq}) | CPU us/q | p50 us | p99 us | load |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");

    let row = |name: &str,
               nlist: &str,
               nprobe: &str,
               build: f64,
               bpv: f64,
               search: &(dyn Fn(&[f32]) -> Vec<Vec<Neighbor>> + Sync)| {
        let got = pool(*threads.last().unwrap_or(&1)).install(|| search(q));
        let qual = quality(&got, &gt, &base_ids, &query_ids, &enrolled);
        for &th in &threads {
            let tm = time_it(th, nq, single, search, q, dim);
            println!(
                "| {name} | {nlist} | {nprobe} | {build:.2} | {bpv:.1} | {:.4} | {:.4} | {:.2} ({:.2}) | {th} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                qual.r1,
                qual.r10,
                100.0 * qual.mate,
                100.0 * exact_mate,
                tm.qps,
                tm.cpu_us,
                tm.p50_us,
                tm.p99_us,
                loadavg()
            );
        }
    };

    for name in &indexes {
        match name.as_str() {
            "flat" => {
                let p = FlatParams {
                    metric: Metric::L2,
                    k: 10,
                    range: KeyRange::ALL,
                    allowed: None,
                    tiebreak: &by_row,
                };
                row("FLAT", "-", "-", 0.0, 4.0 * dim as f64, &|qq: &[f32]| {
                    flat_search(v, dim, qq, &p)
                });
            }
            "sq8" => {
                let (idx, build) = build_cached(&cache, &IndexSpec::Sq8, v, dim)?;
                let knobs = SearchKnobs {
                    rerank,
                    ..Default::default()
                };
                search_row(&row, "SQ8", "-", "-", build, &*idx, v, knobs);
            }
            "ivf_flat" | "ivf_sq8" => {
                for nl in &nlists {
                    let nlist = if nl == "auto" {
                        ((4.0 * (n as f64).sqrt()).round() as usize).clamp(1, 65536)
                    } else {
                        nl.parse().map_err(|_| format!("bad nlist {nl}"))?
                    };
                    let spec = if name == "ivf_flat" {
                        IndexSpec::IvfFlat { nlist }
                    } else {
                        IndexSpec::IvfSq8 { nlist }
                    };
                    let (idx, build) = build_cached(&cache, &spec, v, dim)?;
                    let eff = match idx.spec() {
                        IndexSpec::IvfFlat { nlist } | IndexSpec::IvfSq8 { nlist } => nlist,
                        _ => nlist,
                    };
                    let mut sweep: Vec<usize> = nprobes.iter().map(|&p| p.min(eff)).collect();
                    sweep.push(0); // 0 = the default
                    for np in sweep {
                        let knobs = SearchKnobs {
                            nprobe: (np > 0).then_some(np),
                            rerank,
                            ..Default::default()
                        };
                        let label = if np == 0 {
                            format!("default ({})", facedb_index::ivf::default_nprobe(eff))
                        } else {
                            np.to_string()
                        };
                        search_row(
                            &row,
                            spec.name(),
                            &eff.to_string(),
                            &label,
                            build,
                            &*idx,
                            v,
                            knobs,
                        );
                    }
                }
            }
            other => return Err(format!("unknown index {other}")),
        }
    }
    println!();
    println!("load average at end: {}", loadavg());
    Ok(())
}

/// Builds an index with 2 threads, or loads it from `cache` (with its recorded build time).
fn build_cached(
    cache: &Option<String>,
    spec: &IndexSpec,
    v: &[f32],
    dim: usize,
) -> Result<(Box<dyn VectorIndex>, f64), String> {
    let n = v.len() / dim;
    let tag: String = spec
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let name = cache.as_ref().map(|d| format!("{d}/{tag}_n{n}.idx"));
    if let Some(d) = cache {
        std::fs::create_dir_all(d).map_err(|e| format!("{d}: {e}"))?;
    }
    if let Some(p) = &name {
        if let (Ok(bytes), Ok(t)) = (std::fs::read(p), std::fs::read_to_string(format!("{p}.s"))) {
            let idx =
                facedb_index::load_index(std::sync::Arc::new(bytes)).map_err(|e| e.to_string())?;
            return Ok((idx, t.trim().parse().unwrap_or(0.0)));
        }
    }
    let t = Instant::now();
    let idx = pool(2)
        .install(|| build_index(spec, Metric::L2, v, dim, 1))
        .map_err(|e| e.to_string())?;
    let build = t.elapsed().as_secs_f64();
    if let Some(p) = &name {
        std::fs::write(p, idx.to_blob()).map_err(|e| format!("{p}: {e}"))?;
        std::fs::write(format!("{p}.s"), build.to_string()).map_err(|e| e.to_string())?;
    }
    Ok((idx, build))
}

type RowFn<'a> =
    dyn Fn(&str, &str, &str, f64, f64, &(dyn Fn(&[f32]) -> Vec<Vec<Neighbor>> + Sync)) + 'a;

#[allow(clippy::too_many_arguments)]
fn search_row(
    row: &RowFn<'_>,
    name: &str,
    nlist: &str,
    nprobe: &str,
    build: f64,
    idx: &dyn VectorIndex,
    v: &[f32],
    knobs: SearchKnobs,
) {
    let bpv = idx.bytes() as f64 / idx.rows().max(1) as f64;
    let p = AnnParams {
        k: 10,
        range: KeyRange::ALL,
        allowed: None,
        tiebreak: &by_row,
        knobs,
    };
    row(name, nlist, nprobe, build, bpv, &|qq: &[f32]| {
        idx.search(v, qq, &p)
    });
}
