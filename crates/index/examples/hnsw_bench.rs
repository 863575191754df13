//! HNSW benchmark on the peers' face-like dataset (`../shared/peers/ann/gen.py --dataset
//! face128`), for comparison with hnswlib and faiss on the same vectors.
//!
//! ```text
//! cargo run --release -p facedb-index --example hnsw_bench -- \
//!     [--data ~/.cache/facedb-peers/ann/data/face128_1000000] [--n 100000] \
//!     [--m 16] [--efc 200] [--ef 16,32,64,128,256] [--threads 1,2] [--filter 0.1,0.05]
//! ```
//!
//! Reads `base.npy` (`N × d` f32), `queries.npy` (`nq × d` f32) and, for the full set,
//! `gt_I.npy` (`nq × 100` int64); with `--n` below the file's rows the first `n` rows are
//! indexed and the ground truth is recomputed with `flat_search`. Prints the build time, the
//! index bytes per vector, then per `ef`: recall@1 and @10, batch q/s (`nq` queries in one
//! call), `q/CPU-s` (queries per CPU-second of the process: robust to other jobs on a shared
//! machine) and single-query p50 / p99 latency, for each thread count (a rayon pool of that
//! size).
//!
//! Options: `--index-file F` loads the index from `F` (built and saved there when absent);
//! `--filter s` adds filtered search at selectivity `s` (a seeded random bitmap): recall@10
//! and top-1 agreement against the exact filtered answer; `--reps R` batch runs per setting
//! (best kept, default 3); `--single N` single queries timed (default all); `--thp` searches
//! a copy of the vectors in transparent huge pages; `--metric IP|COSINE`. Searches go
//! through the graph (`Hnsw::search_graph`); `--auto` uses `VectorIndex::search`, which
//! scans exactly when its cost model says that is cheaper (small segments, selective
//! filters).
use facedb_index::blob::BlobReader;
use facedb_index::hnsw::Hnsw;
use facedb_index::{
    by_row, flat_search, AnnParams, FlatParams, KeyRange, Metric, SearchKnobs, VectorIndex,
};
use std::io::Read;
use std::time::Instant;

/// A 2-d little-endian C-order `.npy` array: (rows, cols, raw bytes of the data).
fn read_npy(path: &std::path::Path, want: &str) -> Result<(usize, usize, Vec<u8>), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut pre = [0u8; 10];
    f.read_exact(&mut pre).map_err(|e| e.to_string())?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(format!("{}: not a .npy file", path.display()));
    }
    let hlen = if pre[6] == 1 {
        u16::from_le_bytes([pre[8], pre[9]]) as usize
    } else {
        let mut b = [0u8; 2];
        f.read_exact(&mut b).map_err(|e| e.to_string())?;
        u32::from_le_bytes([pre[8], pre[9], b[0], b[1]]) as usize
    };
    let mut h = vec![0u8; hlen];
    f.read_exact(&mut h).map_err(|e| e.to_string())?;
    let h = String::from_utf8_lossy(&h).to_string();
    if !h.contains(&format!("'descr': '{want}'")) || h.contains("'fortran_order': True") {
        return Err(format!(
            "{}: want {want} C-order, header {h}",
            path.display()
        ));
    }
    let shape = h
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().map_err(|_| format!("shape {shape}")))
        .collect::<Result<_, _>>()?;
    if dims.len() != 2 {
        return Err(format!("shape {shape} is not 2-d"));
    }
    let mut data = Vec::new();
    f.read_to_end(&mut data).map_err(|e| e.to_string())?;
    Ok((dims[0], dims[1], data))
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
}

fn list<T: std::str::FromStr>(args: &[String], name: &str, default: &str) -> Vec<T> {
    let s: String = arg(args, name).unwrap_or_else(|| default.to_string());
    s.split(',').filter_map(|x| x.parse().ok()).collect()
}

/// Anonymous memory advised for transparent huge pages: (address, floats, bytes mapped).
struct HugeBuf(*mut f32, usize, usize);

impl Drop for HugeBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made by `huge_copy`, unmapped once.
        unsafe { libc::munmap(self.0 as *mut libc::c_void, self.2) };
    }
}

impl HugeBuf {
    fn as_slice(&self) -> &[f32] {
        // SAFETY: a live mapping of `self.1` initialised floats.
        unsafe { std::slice::from_raw_parts(self.0, self.1) }
    }
}

fn huge_copy(v: &[f32]) -> Result<HugeBuf, String> {
    let bytes = ((v.len() * 4).div_ceil(1 << 21) << 21).max(1 << 21);
    // SAFETY: a fresh private anonymous mapping, checked, then filled within its length.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return Err("mmap failed".into());
        }
        libc::madvise(p, bytes, libc::MADV_HUGEPAGE);
        std::ptr::copy_nonoverlapping(v.as_ptr(), p as *mut f32, v.len());
        Ok(HugeBuf(p as *mut f32, v.len(), bytes))
    }
}

/// CPU seconds of this process (all threads): robust to other jobs on a shared machine.
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
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn recall(got: &[Vec<u32>], gt: &[Vec<u32>], k: usize) -> f64 {
    let mut hit = 0usize;
    for (g, t) in got.iter().zip(gt) {
        let t = &t[..k.min(t.len())];
        hit += g.iter().take(k).filter(|r| t.contains(r)).count();
    }
    hit as f64 / (got.len() * k) as f64
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let home = std::env::var("HOME").unwrap_or_default();
    let data: String = arg(&args, "--data")
        .unwrap_or_else(|| format!("{home}/.cache/facedb-peers/ann/data/face128_1000000"));
    let dir = std::path::Path::new(&data);
    let m: usize = arg(&args, "--m").unwrap_or(16);
    let efc: usize = arg(&args, "--efc").unwrap_or(200);
    let efs: Vec<usize> = list(&args, "--ef", "16,32,64,128,256");
    let threads: Vec<usize> = list(&args, "--threads", "1,2");
    let filters: Vec<f64> = list(&args, "--filter", "");
    let metric = Metric::parse(&arg::<String>(&args, "--metric").unwrap_or("L2".into()))
        .ok_or("bad --metric")?;
    let k = 10;
    // `--auto`: the trait's search (exact scan when the cost model prefers it); default: the
    // graph always.
    let auto = args.iter().any(|a| a == "--auto");
    let search = |idx: &Hnsw, base: &[f32], q: &[f32], p: &AnnParams<'_>| {
        if auto {
            idx.search(base, q, p)
        } else {
            idx.search_graph(base, q, p)
        }
    };
    let reps: usize = arg(&args, "--reps").unwrap_or(3);
    let single: usize = arg(&args, "--single").unwrap_or(usize::MAX);

    let (rows, dim, b) = read_npy(&dir.join("base.npy"), "<f4")?;
    let n: usize = arg(&args, "--n").unwrap_or(rows).min(rows);
    let mut base = f32s(&b[..n * dim * 4]);
    drop(b);
    let (nq, qdim, qb) = read_npy(&dir.join("queries.npy"), "<f4")?;
    if qdim != dim {
        return Err("query dim".into());
    }
    let queries = f32s(&qb);
    println!(
        "data {data}: n={n} (of {rows}) d={dim} nq={nq} metric={} M={m} efConstruction={efc}; load {}",
        metric.name(),
        loadavg()
    );

    let full = rayon::ThreadPoolBuilder::new()
        .build()
        .map_err(|e| e.to_string())?;
    let exact = |allowed: Option<&[u64]>, base: &[f32]| -> Vec<Vec<u32>> {
        let p = FlatParams {
            metric,
            k: 100,
            range: KeyRange::ALL,
            allowed,
            tiebreak: &by_row,
        };
        full.install(|| flat_search(base, dim, &queries, &p))
            .into_iter()
            .map(|v| v.into_iter().map(|x| x.row).collect())
            .collect()
    };
    let gt: Vec<Vec<u32>> = if n == rows && metric == Metric::L2 && dir.join("gt_I.npy").exists() {
        let (gq, gk, gb) = read_npy(&dir.join("gt_I.npy"), "<i8")?;
        if gq != nq {
            return Err("gt rows".into());
        }
        gb.chunks_exact(8 * gk)
            .map(|r| {
                r.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32)
                    .collect()
            })
            .collect()
    } else {
        let t = Instant::now();
        let g = exact(None, &base);
        println!(
            "ground truth by flat_search: {:.1}s",
            t.elapsed().as_secs_f64()
        );
        g
    };

    // `--index-file F`: load the index from F when it exists, else build and save it there.
    let file: Option<String> = arg(&args, "--index-file");
    let idx = match file.as_deref() {
        Some(f) if std::path::Path::new(f).exists() => {
            let t = Instant::now();
            let bytes = std::fs::read(f).map_err(|e| e.to_string())?;
            let r = BlobReader::open(std::sync::Arc::new(bytes)).map_err(|e| e.to_string())?;
            let idx = Hnsw::load(&r).map_err(|e| e.to_string())?;
            println!("loaded {f} in {:.2}s", t.elapsed().as_secs_f64());
            idx
        }
        _ => {
            let (t, c) = (Instant::now(), cpu_s());
            let idx = full
                .install(|| Hnsw::build(metric, &base, dim, m, efc, 42))
                .map_err(|e| e.to_string())?;
            let (build_s, build_cpu) = (t.elapsed().as_secs_f64(), cpu_s() - c);
            println!(
                "build {:.1}s ({:.1} CPU-s) with {} threads (load {}); index {:.1} bytes/vector (+{} f32 vectors), max level {}",
                build_s,
                build_cpu,
                full.current_num_threads(),
                loadavg(),
                idx.bytes() as f64 / n as f64,
                dim * 4,
                idx.max_level()
            );
            // Round trip through the blob format (what the store maps from disk).
            let t = Instant::now();
            let blob = idx.to_blob();
            if let Some(f) = &file {
                std::fs::write(f, &blob).map_err(|e| e.to_string())?;
            }
            let r = BlobReader::open(std::sync::Arc::new(blob)).map_err(|e| e.to_string())?;
            let idx = Hnsw::load(&r).map_err(|e| e.to_string())?;
            println!("blob round trip {:.2}s", t.elapsed().as_secs_f64());
            idx
        }
    };
    base.shrink_to_fit();
    // `--thp`: search over a copy of the vectors in transparent huge pages (2 MiB), as a
    // store could map them: fewer TLB misses on random rows.
    let huge = if args.iter().any(|a| a == "--thp") {
        Some(huge_copy(&base)?)
    } else {
        None
    };
    let base: &[f32] = match &huge {
        Some(h) => h.as_slice(),
        None => &base,
    };

    let params = |ef: usize, allowed: Option<&'static [u64]>| AnnParams {
        k,
        range: KeyRange::ALL,
        allowed,
        tiebreak: &by_row,
        knobs: SearchKnobs {
            ef: Some(ef.max(k)),
            ..Default::default()
        },
    };
    println!(
        "{:>5} {:>7} {:>8} {:>8} {:>10} {:>12} {:>10} {:>10} {:>7}",
        "ef", "threads", "R@1", "R@10", "batch q/s", "q/CPU-s", "p50 us", "p99 us", "load"
    );
    for &ef in &efs {
        for &th in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(th)
                .build()
                .map_err(|e| e.to_string())?;
            let p = params(ef, None);
            let (got, qps, qcpu) = pool.install(|| {
                let (mut best, mut best_cpu) = (f64::MAX, f64::MAX);
                let mut got = Vec::new();
                for _ in 0..reps {
                    let (t, c) = (Instant::now(), cpu_s());
                    got = search(&idx, base, &queries, &p);
                    best = best.min(t.elapsed().as_secs_f64());
                    best_cpu = best_cpu.min(cpu_s() - c);
                }
                (got, nq as f64 / best, nq as f64 / best_cpu)
            });
            let mut lat: Vec<f64> = pool.install(|| {
                (0..single.min(nq))
                    .map(|i| {
                        let t = Instant::now();
                        let r = search(&idx, base, &queries[i * dim..(i + 1) * dim], &p);
                        std::hint::black_box(r);
                        t.elapsed().as_secs_f64() * 1e6
                    })
                    .collect()
            });
            let rows: Vec<Vec<u32>> = got
                .iter()
                .map(|v| v.iter().map(|x| x.row).collect())
                .collect();
            println!(
                "{:>5} {:>7} {:>8.4} {:>8.4} {:>10.0} {:>12.0} {:>10.1} {:>10.1} {:>7}",
                ef,
                th,
                recall(&rows, &gt, 1),
                recall(&rows, &gt, 10),
                qps,
                qcpu,
                pct(&mut lat, 0.5),
                pct(&mut lat, 0.99),
                loadavg().split(' ').next().unwrap_or("")
            );
        }
    }
    for &sel in &filters {
        // A seeded random bitmap with about `sel` of the rows allowed.
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut words = vec![0u64; n.div_ceil(64)];
        for r in 0..n {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if ((s >> 11) as f64 / (1u64 << 53) as f64) < sel {
                words[r / 64] |= 1 << (r % 64);
            }
        }
        let words: &'static [u64] = Box::leak(words.into_boxed_slice());
        let t = Instant::now();
        let fgt = exact(Some(words), base);
        println!(
            "filter {sel:.3}: exact flat_search (k=100) {:.0} q/s (all threads)",
            nq as f64 / t.elapsed().as_secs_f64()
        );
        for &ef in &efs {
            let p = params(ef, Some(words));
            let t = Instant::now();
            let got = full.install(|| search(&idx, base, &queries, &p));
            let qps = nq as f64 / t.elapsed().as_secs_f64();
            let rows: Vec<Vec<u32>> = got
                .iter()
                .map(|v| v.iter().map(|x| x.row).collect())
                .collect();
            let bad = rows
                .iter()
                .flatten()
                .any(|&r| words[r as usize / 64] >> (r % 64) & 1 == 0);
            let top1 = rows
                .iter()
                .zip(&fgt)
                .filter(|(g, t)| g.first() == t.first())
                .count() as f64
                / nq as f64;
            println!(
                "filter {sel:.3}: ef {ef:>5} top1 = exact {top1:.4} R@10 {:.4} {qps:.0} q/s (all threads){}",
                recall(&rows, &fgt, 10),
                if bad { " DISALLOWED ROW RETURNED" } else { "" }
            );
        }
    }
    println!("load at end {}", loadavg());
    Ok(())
}
