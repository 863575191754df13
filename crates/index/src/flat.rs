//! FLAT: exact (brute-force) k-nearest-neighbour search over `n × d` row-major `f32` vectors.
//!
//! Two scan strategies, chosen per call, return identical results:
//! - *row kernel* (small `nq`, sparse filters): every allowed row is scored against every
//!   query with the SIMD kernels of [`crate::distance`];
//! - *packed blocks* (`nq >= 12` on AVX-512): 32 rows at a time are transposed into a small
//!   `d × 32` buffer that stays in L1 cache, and 6 queries × 32 rows of inner products are
//!   accumulated in 12 registers (a GEMM micro-kernel, as BLAS does for Faiss's batched
//!   search). Squared L2 comes from `|x|² + |q|² − 2 q·x`; candidates are over-selected
//!   (`k + 16`) and re-scored with the row kernel, so returned scores are exact and the same
//!   whatever path ran.
//!
//! Rows are split into chunks searched on the rayon thread pool; each chunk keeps its own
//! [`TopK`] per query, merged at the end.

use crate::distance::{self, Isa};
use crate::topk::{Candidate, TieBreak, TopK};
use crate::Metric;
use rayon::prelude::*;

/// Minimum number of queries for the packed-block path.
pub(crate) const PACK_MIN_NQ: usize = 12;
/// Queries per register tile (two AVX-512 registers of 16 lanes).
const TILE_LANES: usize = 32;
/// Rows per register tile.
const TILE_ROWS: usize = 6;
/// Extra candidates kept by the packed path before exact re-scoring.
const OVERSAMPLE: usize = 16;

/// Half-open interval of keys a result must fall in: `lo <= key < hi`.
///
/// Built from Milvus range-search parameters by [`Metric::key_range`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyRange {
    /// Inclusive lower bound on the key.
    pub lo: f32,
    /// Exclusive upper bound on the key.
    pub hi: f32,
}

impl KeyRange {
    /// Every key.
    pub const ALL: KeyRange = KeyRange {
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
    };

    /// True when `lo <= key < hi`.
    #[inline(always)]
    pub fn contains(&self, key: f32) -> bool {
        key >= self.lo && key < self.hi
    }
}

/// One result of a search: the row and its score in the metric's own units
/// (squared L2, inner product or cosine similarity).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Row number in the searched vectors (`0..n`).
    pub row: u32,
    /// Score in metric units: squared L2 (smaller is better), IP or cosine (larger is better).
    pub score: f32,
}

/// What to search for.
#[derive(Clone, Copy)]
pub struct FlatParams<'a> {
    /// Metric used to score rows.
    pub metric: Metric,
    /// Number of neighbours per query (`topk`); fewer are returned when fewer rows qualify.
    pub k: usize,
    /// Only keys in this range qualify (range search); [`KeyRange::ALL`] for plain search.
    pub range: KeyRange,
    /// Allowed rows as a bitmap (`bit i` of `words[i / 64]` set = row `i` may be returned);
    /// `None` allows every row. Deleted and filtered-out rows are cleared by the caller.
    pub allowed: Option<&'a [u64]>,
    /// Order of rows with equal scores.
    pub tiebreak: TieBreak<'a>,
}

#[inline(always)]
pub(crate) fn is_allowed(allowed: Option<&[u64]>, row: usize) -> bool {
    match allowed {
        None => true,
        Some(w) => (w[row >> 6] >> (row & 63)) & 1 == 1,
    }
}

/// Scores one row against one prepared query (cosine queries are pre-normalised).
#[inline(always)]
pub(crate) fn row_key(
    metric: Metric,
    l2: distance::Kernel,
    dot: distance::Kernel,
    x: &[f32],
    q: &[f32],
) -> f32 {
    match metric {
        Metric::L2 => l2(x, q),
        Metric::Ip => -dot(x, q),
        Metric::Cosine => {
            let nx = dot(x, x).sqrt();
            if nx == 0.0 {
                -0.0
            } else {
                -(dot(x, q) / nx)
            }
        }
    }
}

/// Exact k-NN of `nq` queries over `n` vectors.
///
/// - `vectors`: `n × dim` row-major; `queries`: `nq × dim` row-major.
/// - Returns one list per query, best first, at most `k` long (shorter when fewer rows are
///   allowed or in range). Scores are in metric units (see [`Neighbor::score`]).
///
/// Panics if `dim == 0` or a slice length is not a multiple of `dim` (callers validate).
pub fn flat_search(
    vectors: &[f32],
    dim: usize,
    queries: &[f32],
    p: &FlatParams<'_>,
) -> Vec<Vec<Neighbor>> {
    assert!(dim > 0 && vectors.len().is_multiple_of(dim) && queries.len().is_multiple_of(dim));
    let n = vectors.len() / dim;
    let nq = queries.len() / dim;
    if nq == 0 {
        return Vec::new();
    }
    if n == 0 || p.k == 0 {
        return vec![Vec::new(); nq];
    }
    let prepared = prepare_queries(queries, dim, p.metric);
    let allowed_count = p.allowed.map(|w| count_allowed(w, n));
    let sparse = matches!(allowed_count, Some(c) if c * 16 < n);
    let packed = nq >= PACK_MIN_NQ && distance::isa() == Isa::Avx512 && !sparse;
    let keep = if packed { p.k + OVERSAMPLE } else { p.k };

    // Split rows into chunks for the thread pool; small jobs run inline.
    let work = n * nq * dim;
    let threads = rayon::current_num_threads().max(1);
    let chunk_rows = if work < 1 << 20 {
        n
    } else {
        let c = n.div_ceil(threads * 4).max(4096);
        c.div_ceil(TILE_ROWS) * TILE_ROWS
    };
    let chunks: Vec<(usize, usize)> = (0..n)
        .step_by(chunk_rows)
        .map(|s| (s, (s + chunk_rows).min(n)))
        .collect();
    let run = |&(s, e): &(usize, usize)| -> Vec<TopK> {
        let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(keep)).collect();
        if packed {
            #[cfg(target_arch = "x86_64")]
            packed_scan(vectors, dim, &prepared, nq, s, e, p, &mut tops);
        } else {
            row_scan(vectors, dim, &prepared, nq, s, e, p, sparse, &mut tops);
        }
        tops
    };
    let merge = |mut a: Vec<TopK>, b: Vec<TopK>| {
        for (x, y) in a.iter_mut().zip(b) {
            x.merge(y, p.tiebreak);
        }
        a
    };
    let tops = if chunks.len() == 1 {
        run(&chunks[0])
    } else {
        chunks
            .par_iter()
            .map(run)
            .reduce_with(merge)
            .unwrap_or_else(|| (0..nq).map(|_| TopK::new(keep)).collect())
    };

    let l2 = distance::l2_sq_kernel();
    let dot = distance::dot_kernel();
    tops.into_iter()
        .enumerate()
        .map(|(qi, t)| {
            let q = &prepared[qi * dim..(qi + 1) * dim];
            let mut cands: Vec<Candidate> = t.into_sorted(p.tiebreak);
            if packed {
                // Exact re-scoring with the row kernel, then the exact range and order.
                for c in &mut cands {
                    let r = c.row as usize;
                    c.key = row_key(p.metric, l2, dot, &vectors[r * dim..(r + 1) * dim], q);
                }
                cands.retain(|c| p.range.contains(c.key));
                cands.sort_by(|a, b| {
                    a.key
                        .total_cmp(&b.key)
                        .then_with(|| (p.tiebreak)(a.row, b.row))
                });
                cands.truncate(p.k);
            }
            neighbors(cands, p.metric)
        })
        .collect()
}

/// Runs `run(start)` on every chunk `start..start + chunk` of `0..rows` (on the rayon pool
/// when there is more than one) and merges the per-query selections chunk by chunk.
pub(crate) fn over_chunks<T: Send>(
    rows: usize,
    chunk: usize,
    run: impl Fn(usize) -> Vec<T> + Sync + Send,
    merge: impl Fn(&mut T, T) + Sync + Send,
) -> Vec<T> {
    let starts: Vec<usize> = (0..rows).step_by(chunk.max(1)).collect();
    if starts.len() <= 1 {
        return run(0);
    }
    starts
        .into_par_iter()
        .map(run)
        .reduce_with(|mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                merge(x, y);
            }
            a
        })
        .unwrap_or_default()
}

/// Results in metric units from selected candidates (best first).
pub(crate) fn neighbors(cands: Vec<Candidate>, metric: Metric) -> Vec<Neighbor> {
    cands
        .into_iter()
        .map(|c| Neighbor {
            row: c.row,
            score: metric.score(c.key),
        })
        .collect()
}

/// Calls `f(row)` for every allowed row in `start..end`, a 64-bit word at a time.
#[inline]
pub(crate) fn for_each_allowed(words: &[u64], start: usize, end: usize, mut f: impl FnMut(usize)) {
    let mut r = start;
    while r < end {
        let w = words[r >> 6] >> (r & 63);
        let span = (64 - (r & 63)).min(end - r);
        let mut bits = if span == 64 {
            w
        } else {
            w & ((1u64 << span) - 1)
        };
        while bits != 0 {
            f(r + bits.trailing_zeros() as usize);
            bits &= bits - 1;
        }
        r += span;
    }
}

/// True when every row of `start..end` is allowed.
fn block_all_allowed(allowed: Option<&[u64]>, start: usize, end: usize) -> bool {
    let Some(words) = allowed else { return true };
    let mut r = start;
    while r < end {
        let span = (64 - (r & 63)).min(end - r);
        let mask = if span == 64 {
            u64::MAX
        } else {
            (1u64 << span) - 1
        };
        if (words[r >> 6] >> (r & 63)) & mask != mask {
            return false;
        }
        r += span;
    }
    true
}

/// Number of rows of `0..n` set in the `allowed` bitmap (`bit i` of `words[i / 64]`).
pub fn count_allowed(words: &[u64], n: usize) -> usize {
    let full = n / 64;
    let mut c: usize = words[..full].iter().map(|w| w.count_ones() as usize).sum();
    if !n.is_multiple_of(64) {
        c += (words[full] & ((1u64 << (n % 64)) - 1)).count_ones() as usize;
    }
    c
}

/// Copies the queries; cosine queries are normalised to unit length (zero stays zero).
pub(crate) fn prepare_queries(queries: &[f32], dim: usize, metric: Metric) -> Vec<f32> {
    let mut q = queries.to_vec();
    if metric == Metric::Cosine {
        for row in q.chunks_exact_mut(dim) {
            let nrm = distance::norm(row);
            if nrm > 0.0 {
                row.iter_mut().for_each(|v| *v /= nrm);
            }
        }
    }
    q
}

/// Scores rows `start..end` with the row kernels. `sparse` (fewer than 1/16 of all rows
/// allowed) is decided once per search by the caller.
#[allow(clippy::too_many_arguments)]
fn row_scan(
    vectors: &[f32],
    dim: usize,
    queries: &[f32],
    nq: usize,
    start: usize,
    end: usize,
    p: &FlatParams<'_>,
    sparse: bool,
    tops: &mut [TopK],
) {
    let l2 = distance::l2_sq_kernel();
    let dot = distance::dot_kernel();
    let l2_rows = distance::l2_sq_rows_kernel();
    let dot_rows = distance::dot_rows_kernel();
    // Blocks of rows small enough to stay in L2 cache while every query passes over them;
    // scores go to a small buffer, then only those under the threshold reach the heap.
    let block = (256 * 1024 / (dim * 4)).clamp(16, 1024);
    let mut scores = vec![0f32; block];
    let mut norms = vec![0f32; block];
    let mut s = start;
    while s < end {
        let e = (s + block).min(end);
        let rows = &vectors[s * dim..e * dim];
        let m = e - s;
        // Rows of this block that may be returned: all, none, or some (scored one by one).
        let allowed_here = match p.allowed {
            None => m,
            Some(_) if !sparse && block_all_allowed(p.allowed, s, e) => m,
            Some(w) => {
                let mut any = 0;
                for_each_allowed(w, s, e, |_| any += 1);
                any
            }
        };
        if allowed_here == 0 {
            s = e;
            continue;
        }
        if allowed_here < m {
            if let Some(w) = p.allowed {
                for (qi, top) in tops.iter_mut().enumerate().take(nq) {
                    let q = &queries[qi * dim..(qi + 1) * dim];
                    for_each_allowed(w, s, e, |r| {
                        let key = row_key(p.metric, l2, dot, &vectors[r * dim..(r + 1) * dim], q);
                        if key <= top.threshold() && p.range.contains(key) {
                            top.push(key, r as u32, p.tiebreak);
                        }
                    });
                }
            }
            s = e;
            continue;
        }
        if p.metric == Metric::Cosine {
            for (i, x) in rows.chunks_exact(dim).enumerate() {
                let n2 = dot(x, x);
                // |x|; the key below is `-(dot / |x|)`, bit for bit `row_key`'s, so a row scores
                // the same whichever path reaches it (index candidates are re-scored by
                // `row_key`).
                norms[i] = n2.sqrt();
            }
        }
        for (qi, top) in tops.iter_mut().enumerate().take(nq) {
            let q = &queries[qi * dim..(qi + 1) * dim];
            let out = &mut scores[..m];
            match p.metric {
                Metric::L2 => l2_rows(rows, dim, q, out),
                Metric::Ip => {
                    dot_rows(rows, dim, q, out);
                    out.iter_mut().for_each(|v| *v = -*v);
                }
                Metric::Cosine => {
                    dot_rows(rows, dim, q, out);
                    out.iter_mut()
                        .zip(&norms[..m])
                        .for_each(|(v, n)| *v = if *n == 0.0 { -0.0 } else { -(*v / n) });
                }
            }
            for (i, &key) in out.iter().enumerate() {
                if key <= top.threshold() && p.range.contains(key) {
                    top.push(key, (s + i) as u32, p.tiebreak);
                }
            }
        }
        s = e;
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn packed_scan(
    vectors: &[f32],
    dim: usize,
    queries: &[f32],
    nq: usize,
    start: usize,
    end: usize,
    p: &FlatParams<'_>,
    tops: &mut [TopK],
) {
    // Queries transposed into tiles of 32: qp[t][j * 32 + lane] = query (t*32 + lane), coord j.
    // A last tile with at most 16 queries runs the 16-lane kernel (less padding work).
    let tiles = nq.div_ceil(TILE_LANES);
    let narrow_last = !nq.is_multiple_of(TILE_LANES) && nq % TILE_LANES <= 16;
    let mut qp = vec![0f32; tiles * dim * TILE_LANES];
    let mut qn2 = vec![0f32; tiles * TILE_LANES];
    let mut qnorm = vec![0f32; tiles * TILE_LANES];
    for (qi, q) in queries.chunks_exact(dim).enumerate() {
        let (t, lane) = (qi / TILE_LANES, qi % TILE_LANES);
        let width = if narrow_last && t + 1 == tiles {
            16
        } else {
            TILE_LANES
        };
        for (j, v) in q.iter().enumerate() {
            qp[t * dim * TILE_LANES + j * width + lane] = *v;
        }
        let n2 = distance::dot(q, q);
        qnorm[qi] = n2.sqrt();
        // |q|² enters the L2 key only; IP and COSINE keys have no query term.
        qn2[qi] = if p.metric == Metric::L2 { n2 } else { 0.0 };
    }
    // Per-query thresholds, as the kernel compares them; padding lanes never pass.
    let mut thr = vec![f32::NEG_INFINITY; tiles * TILE_LANES];
    let range_slack = p.range.hi.is_finite();
    let refresh = |thr: &mut [f32], qi: usize, top: &TopK| {
        // In range search a candidate's approximate key may sit just under `lo`.
        thr[qi] = if range_slack {
            top.threshold().max(p.range.lo)
        } else {
            top.threshold()
        };
    };
    for (qi, top) in tops.iter().enumerate().take(nq) {
        refresh(&mut thr, qi, top);
    }
    let mut tail = vec![0f32; TILE_ROWS * dim];
    let mut keys = [0f32; TILE_ROWS * TILE_LANES];
    let mut add = [0f32; TILE_ROWS];
    let mut mul = [0f32; TILE_ROWS];
    let mut xn2 = [0f32; TILE_ROWS];
    let mut s = start;
    while s < end {
        let rows = (end - s).min(TILE_ROWS);
        let mut live: u32 = (1u32 << rows) - 1;
        if p.allowed.is_some() {
            for l in 0..rows {
                if !is_allowed(p.allowed, s + l) {
                    live &= !(1 << l);
                }
            }
            if live == 0 {
                s += rows;
                continue;
            }
        }
        let xs: &[f32] = if rows == TILE_ROWS {
            &vectors[s * dim..(s + TILE_ROWS) * dim]
        } else {
            tail.fill(0.0);
            tail[..rows * dim].copy_from_slice(&vectors[s * dim..(s + rows) * dim]);
            &tail
        };
        for (l, x) in xs.chunks_exact(dim).enumerate() {
            let n2 = distance::dot(x, x);
            xn2[l] = n2;
            (add[l], mul[l]) = match p.metric {
                Metric::L2 => (n2, -2.0),
                Metric::Ip => (0.0, -1.0),
                Metric::Cosine if n2 > 0.0 => (0.0, -1.0 / n2.sqrt()),
                Metric::Cosine => (0.0, 0.0),
            };
        }
        for t in 0..tiles {
            let mut hits = [0u32; TILE_ROWS];
            // SAFETY: xs holds TILE_ROWS rows of dim; qp tile t holds dim x 32; qn2 and thr
            // hold 32 lanes from t*32; keys holds TILE_ROWS x 32. AVX-512F was detected.
            let kernel = if narrow_last && t + 1 == tiles {
                tile_6x16
            } else {
                tile_6x32
            };
            let width = if narrow_last && t + 1 == tiles {
                16
            } else {
                TILE_LANES
            };
            unsafe {
                kernel(
                    xs.as_ptr(),
                    dim,
                    qp.as_ptr().add(t * dim * TILE_LANES),
                    &add,
                    &mul,
                    qn2.as_ptr().add(t * TILE_LANES),
                    thr.as_ptr().add(t * TILE_LANES),
                    keys.as_mut_ptr(),
                    &mut hits,
                );
            }
            for (l, &h) in hits.iter().enumerate() {
                if live & (1 << l) == 0 {
                    continue;
                }
                let mut m = h;
                while m != 0 {
                    let lane = m.trailing_zeros() as usize;
                    m &= m - 1;
                    let qi = t * TILE_LANES + lane;
                    let key = keys[l * width + lane];
                    let tol = match p.metric {
                        Metric::L2 => 1e-5 * (xn2[l] + qn2[qi]),
                        Metric::Ip => 1e-5 * xn2[l].sqrt() * qnorm[qi],
                        Metric::Cosine => 1e-5,
                    };
                    let top = &mut tops[qi];
                    if key <= top.threshold() && key >= p.range.lo - tol && key < p.range.hi + tol {
                        top.push(key, (s + l) as u32, p.tiebreak);
                        refresh(&mut thr, qi, top);
                    }
                }
            }
        }
        s += rows;
    }
}

/// Generates a 6-row register-tile kernel over `$lanes` queries (`$v` AVX-512 vectors):
/// `keys[l * $lanes + lane] = add[l] + qn2[lane] + mul[l] * (x_l · q_lane)` and
/// `hits[l]` = lanes whose key is `<= thr[lane]`.
///
/// `x` holds 6 consecutive rows of `dim`; `qp` the queries transposed (`dim × $lanes`).
macro_rules! tile_kernel {
    ($name:ident, $lanes:literal, $v:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            x: *const f32,
            dim: usize,
            qp: *const f32,
            add: &[f32; TILE_ROWS],
            mul: &[f32; TILE_ROWS],
            qn2: *const f32,
            thr: *const f32,
            keys: *mut f32,
            hits: &mut [u32; TILE_ROWS],
        ) {
            use std::arch::x86_64::*;
            // SAFETY: the caller guarantees the buffer extents documented above.
            unsafe {
                let mut acc = [[_mm512_setzero_ps(); $v]; TILE_ROWS];
                for j in 0..dim {
                    let mut q = [_mm512_setzero_ps(); $v];
                    for (i, qv) in q.iter_mut().enumerate() {
                        *qv = _mm512_loadu_ps(qp.add(j * $lanes + i * 16));
                    }
                    for (l, a) in acc.iter_mut().enumerate() {
                        let b = _mm512_set1_ps(*x.add(l * dim + j));
                        for (i, qv) in q.iter().enumerate() {
                            a[i] = _mm512_fmadd_ps(b, *qv, a[i]);
                        }
                    }
                }
                for (l, a) in acc.iter().enumerate() {
                    let m = _mm512_set1_ps(mul[l]);
                    let ad = _mm512_set1_ps(add[l]);
                    let mut h = 0u32;
                    for (i, av) in a.iter().enumerate() {
                        let qn = _mm512_loadu_ps(qn2.add(i * 16));
                        let k = _mm512_fmadd_ps(*av, m, _mm512_add_ps(ad, qn));
                        _mm512_storeu_ps(keys.add(l * $lanes + i * 16), k);
                        let t = _mm512_loadu_ps(thr.add(i * 16));
                        h |= (_mm512_cmp_ps_mask::<_CMP_LE_OQ>(k, t) as u32) << (i * 16);
                    }
                    hits[l] = h;
                }
            }
        }
    };
}
tile_kernel!(tile_6x32, 32, 2);
tile_kernel!(tile_6x16, 16, 1);

/// Exact re-ranking of index candidates for one query.
///
/// `q` is the prepared query (cosine queries unit-normalised, see `prepare_queries`);
/// `rows` are candidate rows (duplicates are ignored, disallowed rows dropped). Every
/// candidate is re-scored with the `f32` row kernel, kept when in `range`, ordered by
/// (key, tie-break) and cut to `k`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn exact_rerank(
    metric: Metric,
    vectors: &[f32],
    dim: usize,
    q: &[f32],
    rows: impl IntoIterator<Item = u32>,
    k: usize,
    range: KeyRange,
    allowed: Option<&[u64]>,
    tiebreak: TieBreak<'_>,
) -> Vec<Neighbor> {
    let l2 = distance::l2_sq_kernel();
    let dot = distance::dot_kernel();
    let mut top = TopK::new(k);
    let mut seen = rustc_hash::FxHashSet::default();
    for r in rows {
        if !is_allowed(allowed, r as usize) || !seen.insert(r) {
            continue;
        }
        let ru = r as usize;
        let key = row_key(metric, l2, dot, &vectors[ru * dim..(ru + 1) * dim], q);
        if range.contains(key) && key <= top.threshold() {
            top.push(key, r, tiebreak);
        }
    }
    top.into_sorted(tiebreak)
        .into_iter()
        .map(|c| Neighbor {
            row: c.row,
            score: metric.score(c.key),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topk::by_row;
    use rand::{Rng, SeedableRng};

    fn reference(
        v: &[f32],
        dim: usize,
        q: &[f32],
        metric: Metric,
        k: usize,
        range: KeyRange,
        allowed: Option<&[u64]>,
    ) -> Vec<Vec<(u32, f64)>> {
        q.chunks_exact(dim)
            .map(|q| {
                let mut all: Vec<(u32, f64)> = v
                    .chunks_exact(dim)
                    .enumerate()
                    .filter(|(r, _)| is_allowed(allowed, *r))
                    .map(|(r, x)| {
                        let dot: f64 = x.iter().zip(q).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let key = match metric {
                            Metric::L2 => x
                                .iter()
                                .zip(q)
                                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                                .sum(),
                            Metric::Ip => -dot,
                            Metric::Cosine => {
                                let nx: f64 =
                                    x.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
                                let nq: f64 =
                                    q.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
                                if nx == 0.0 || nq == 0.0 {
                                    0.0
                                } else {
                                    -dot / (nx * nq)
                                }
                            }
                        };
                        (r as u32, key)
                    })
                    .filter(|(_, key)| *key >= range.lo as f64 && *key < range.hi as f64)
                    .collect();
                all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                all.truncate(k);
                all
            })
            .collect()
    }

    fn check(n: usize, dim: usize, nq: usize, k: usize, metric: Metric, seed: u64, filtered: bool) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let v: Vec<f32> = (0..n * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let q: Vec<f32> = (0..nq * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let words: Vec<u64> = (0..n.div_ceil(64)).map(|_| rng.gen::<u64>()).collect();
        let allowed = if filtered { Some(&words[..]) } else { None };
        let p = FlatParams {
            metric,
            k,
            range: KeyRange::ALL,
            allowed,
            tiebreak: &by_row,
        };
        let got = flat_search(&v, dim, &q, &p);
        let want = reference(&v, dim, &q, metric, k, KeyRange::ALL, allowed);
        assert_eq!(got.len(), nq);
        for (g, w) in got.iter().zip(&want) {
            let grows: Vec<u32> = g.iter().map(|x| x.row).collect();
            let wrows: Vec<u32> = w.iter().map(|x| x.0).collect();
            assert_eq!(grows, wrows, "n={n} dim={dim} nq={nq} k={k} {metric:?}");
            for (x, y) in g.iter().zip(w) {
                let want_score = metric.score_f64(y.1);
                assert!((x.score as f64 - want_score).abs() <= 1e-4 * want_score.abs().max(1.0));
            }
        }
    }

    #[test]
    fn equals_reference_on_both_paths_and_metrics() {
        for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
            for &(n, dim, nq, k) in &[
                (1000, 16, 1, 10),
                (3001, 33, 20, 7),
                (500, 128, 13, 50),
                (70, 5, 40, 100),
            ] {
                check(n, dim, nq, k, metric, 7, false);
                check(n, dim, nq, k, metric, 8, true);
            }
        }
    }

    #[test]
    fn large_parallel_scan_equals_reference() {
        check(40_000, 64, 3, 10, Metric::L2, 11, false);
        check(20_000, 64, 16, 10, Metric::Ip, 12, false);
    }

    #[test]
    fn range_search_bounds() {
        // 1-d points 0..10, query 0: squared L2 = r^2.
        let v: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let range = Metric::L2.key_range(Some(16.0), Some(1.0));
        let p = FlatParams {
            metric: Metric::L2,
            k: 100,
            range,
            allowed: None,
            tiebreak: &by_row,
        };
        let got = flat_search(&v, 1, &[0.0], &p);
        let rows: Vec<u32> = got[0].iter().map(|n| n.row).collect();
        assert_eq!(rows, vec![1, 2, 3]); // 1 <= d < 16
        let range = Metric::Ip.key_range(Some(2.0), Some(5.0));
        let p = FlatParams {
            metric: Metric::Ip,
            k: 100,
            range,
            allowed: None,
            tiebreak: &by_row,
        };
        let got = flat_search(&v, 1, &[1.0], &p);
        let rows: Vec<u32> = got[0].iter().map(|n| n.row).collect();
        assert_eq!(rows, vec![5, 4, 3]); // 2 < s <= 5, best first
    }

    #[test]
    fn ties_follow_tiebreak() {
        let v = vec![1.0f32; 8]; // 8 identical 1-d vectors
        let rev = |a: u32, b: u32| b.cmp(&a);
        for nq in [1, 12] {
            let q = vec![0.0f32; nq];
            let p = FlatParams {
                metric: Metric::L2,
                k: 3,
                range: KeyRange::ALL,
                allowed: None,
                tiebreak: &rev,
            };
            let got = flat_search(&v, 1, &q, &p);
            assert_eq!(
                got[0].iter().map(|n| n.row).collect::<Vec<_>>(),
                vec![7, 6, 5]
            );
        }
    }
}
