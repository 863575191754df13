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
const PACK_MIN_NQ: usize = 12;
/// Rows per packed block (two AVX-512 registers).
const BLOCK_ROWS: usize = 32;
/// Queries per register tile.
const TILE_Q: usize = 6;
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

    #[inline(always)]
    fn contains(&self, key: f32) -> bool {
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
fn is_allowed(allowed: Option<&[u64]>, row: usize) -> bool {
    match allowed {
        None => true,
        Some(w) => (w[row >> 6] >> (row & 63)) & 1 == 1,
    }
}

/// Scores one row against one prepared query (cosine queries are pre-normalised).
#[inline(always)]
fn row_key(
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
        c.div_ceil(BLOCK_ROWS) * BLOCK_ROWS
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
            row_scan(vectors, dim, &prepared, nq, s, e, p, &mut tops);
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
            cands
                .into_iter()
                .map(|c| Neighbor {
                    row: c.row,
                    score: p.metric.score(c.key),
                })
                .collect()
        })
        .collect()
}

fn count_allowed(words: &[u64], n: usize) -> usize {
    let full = n / 64;
    let mut c: usize = words[..full].iter().map(|w| w.count_ones() as usize).sum();
    if !n.is_multiple_of(64) {
        c += (words[full] & ((1u64 << (n % 64)) - 1)).count_ones() as usize;
    }
    c
}

/// Copies the queries; cosine queries are normalised to unit length (zero stays zero).
fn prepare_queries(queries: &[f32], dim: usize, metric: Metric) -> Vec<f32> {
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

#[allow(clippy::too_many_arguments)]
fn row_scan(
    vectors: &[f32],
    dim: usize,
    queries: &[f32],
    nq: usize,
    start: usize,
    end: usize,
    p: &FlatParams<'_>,
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
    let sparse = p
        .allowed
        .is_some_and(|w| count_allowed(w, vectors.len() / dim) * 16 < vectors.len() / dim);
    let mut s = start;
    while s < end {
        let e = (s + block).min(end);
        let rows = &vectors[s * dim..e * dim];
        let m = e - s;
        if sparse {
            // Few allowed rows: score only those.
            for (qi, top) in tops.iter_mut().enumerate().take(nq) {
                let q = &queries[qi * dim..(qi + 1) * dim];
                for r in s..e {
                    if is_allowed(p.allowed, r) {
                        let key = row_key(p.metric, l2, dot, &vectors[r * dim..(r + 1) * dim], q);
                        if key <= top.threshold() && p.range.contains(key) {
                            top.push(key, r as u32, p.tiebreak);
                        }
                    }
                }
            }
            s = e;
            continue;
        }
        if p.metric == Metric::Cosine {
            for (i, x) in rows.chunks_exact(dim).enumerate() {
                let n2 = dot(x, x);
                norms[i] = if n2 > 0.0 { -1.0 / n2.sqrt() } else { 0.0 };
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
                        .for_each(|(v, n)| *v = if *n == 0.0 { -0.0 } else { *v * n });
                }
            }
            for (i, &key) in out.iter().enumerate() {
                if key <= top.threshold() && p.range.contains(key) && is_allowed(p.allowed, s + i) {
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
    // Queries padded with zero rows to a multiple of the tile height.
    let nq_pad = nq.div_ceil(TILE_Q) * TILE_Q;
    let mut qbuf = vec![0f32; nq_pad * dim];
    qbuf[..nq * dim].copy_from_slice(queries);
    // |q|² enters the L2 key only; IP and COSINE keys have no query term.
    let qn2: Vec<f32> = qbuf
        .chunks_exact(dim)
        .map(|q| {
            if p.metric == Metric::L2 {
                distance::dot(q, q)
            } else {
                0.0
            }
        })
        .collect();
    let qnorm: Vec<f32> = qbuf.chunks_exact(dim).map(distance::norm).collect();
    let mut packed = vec![0f32; dim * BLOCK_ROWS];
    let mut pre = RowTerms::new(p.metric);
    let mut keys = [0f32; TILE_Q * BLOCK_ROWS];
    let mut s = start;
    while s < end {
        let rows = (end - s).min(BLOCK_ROWS);
        // Transpose rows s..s+rows into packed[j * 32 + l]; zero the missing lanes.
        for l in 0..BLOCK_ROWS {
            if l < rows {
                let x = &vectors[(s + l) * dim..(s + l + 1) * dim];
                for (j, v) in x.iter().enumerate() {
                    packed[j * BLOCK_ROWS + l] = *v;
                }
                pre.set(l, distance::dot(x, x));
            } else {
                pre.set(l, 0.0);
                for j in 0..dim {
                    packed[j * BLOCK_ROWS + l] = 0.0;
                }
            }
        }
        let mut mask: u32 = if rows == 32 {
            u32::MAX
        } else {
            (1u32 << rows) - 1
        };
        if let Some(w) = p.allowed {
            let mut m = 0u32;
            for l in 0..rows {
                if is_allowed(Some(w), s + l) {
                    m |= 1 << l;
                }
            }
            mask &= m;
        }
        if mask != 0 {
            for t in 0..nq_pad / TILE_Q {
                let mut thr = [f32::NEG_INFINITY; TILE_Q];
                for (i, th) in thr.iter_mut().enumerate() {
                    if let Some(top) = tops.get(t * TILE_Q + i) {
                        *th = top.threshold();
                        if p.range.hi.is_finite() {
                            // Range search: a candidate's key may be under-estimated by tol.
                            *th = th.max(p.range.lo);
                        }
                    }
                }
                let mut hits = [0u32; TILE_Q];
                // SAFETY: packed is dim x 32, qbuf holds TILE_Q rows of dim from t*TILE_Q,
                // keys holds TILE_Q x 32; AVX-512F was detected by the caller.
                unsafe {
                    keys_6x32(
                        packed.as_ptr(),
                        qbuf.as_ptr().add(t * TILE_Q * dim),
                        dim,
                        &pre,
                        &qn2[t * TILE_Q..(t + 1) * TILE_Q],
                        &thr,
                        keys.as_mut_ptr(),
                        &mut hits,
                    );
                }
                for i in 0..TILE_Q {
                    let qi = t * TILE_Q + i;
                    if qi >= nq {
                        break;
                    }
                    let mut m = hits[i] & mask;
                    if m == 0 {
                        continue;
                    }
                    let top = &mut tops[qi];
                    let k = &keys[i * BLOCK_ROWS..(i + 1) * BLOCK_ROWS];
                    while m != 0 {
                        let l = m.trailing_zeros() as usize;
                        m &= m - 1;
                        let key = k[l];
                        let tol = match p.metric {
                            Metric::L2 => 1e-5 * (pre.xn2[l] + qn2[qi]),
                            Metric::Ip => 1e-5 * pre.xn2[l].sqrt() * qnorm[qi],
                            Metric::Cosine => 1e-5,
                        };
                        if key <= top.threshold()
                            && key >= p.range.lo - tol
                            && key < p.range.hi + tol
                        {
                            top.push(key, (s + l) as u32, p.tiebreak);
                        }
                    }
                }
            }
        }
        s += rows;
    }
}

/// Per-row terms of the key formula `key = add[l] + qn2[q] + mul[l] * (q · x_l)`:
/// L2: `add = |x|², mul = -2` (with `qn2 = |q|²`); IP: `add = 0, mul = -1`;
/// COSINE: `add = 0, mul = -1/|x|` (0 for a zero row).
struct RowTerms {
    metric: Metric,
    xn2: [f32; BLOCK_ROWS],
    add: [f32; BLOCK_ROWS],
    mul: [f32; BLOCK_ROWS],
}

impl RowTerms {
    fn new(metric: Metric) -> Self {
        RowTerms {
            metric,
            xn2: [0.0; BLOCK_ROWS],
            add: [0.0; BLOCK_ROWS],
            mul: [0.0; BLOCK_ROWS],
        }
    }

    fn set(&mut self, l: usize, xn2: f32) {
        self.xn2[l] = xn2;
        (self.add[l], self.mul[l]) = match self.metric {
            Metric::L2 => (xn2, -2.0),
            Metric::Ip => (0.0, -1.0),
            Metric::Cosine if xn2 > 0.0 => (0.0, -1.0 / xn2.sqrt()),
            Metric::Cosine => (0.0, 0.0),
        };
    }
}

/// 6 queries × 32 packed rows: `keys[i * 32 + l]` = key of row `l` for query `i`, and
/// `hits[i]` = bitmask of rows whose key is `<= thr[i]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn keys_6x32(
    packed: *const f32,
    q: *const f32,
    dim: usize,
    pre: &RowTerms,
    qn2: &[f32],
    thr: &[f32; TILE_Q],
    keys: *mut f32,
    hits: &mut [u32; TILE_Q],
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller guarantees the buffer extents documented above.
    unsafe {
        let z = _mm512_setzero_ps();
        let (mut a00, mut a01, mut a10, mut a11, mut a20, mut a21) = (z, z, z, z, z, z);
        let (mut a30, mut a31, mut a40, mut a41, mut a50, mut a51) = (z, z, z, z, z, z);
        for j in 0..dim {
            let p0 = _mm512_loadu_ps(packed.add(j * 32));
            let p1 = _mm512_loadu_ps(packed.add(j * 32 + 16));
            let b = _mm512_set1_ps(*q.add(j));
            a00 = _mm512_fmadd_ps(b, p0, a00);
            a01 = _mm512_fmadd_ps(b, p1, a01);
            let b = _mm512_set1_ps(*q.add(dim + j));
            a10 = _mm512_fmadd_ps(b, p0, a10);
            a11 = _mm512_fmadd_ps(b, p1, a11);
            let b = _mm512_set1_ps(*q.add(2 * dim + j));
            a20 = _mm512_fmadd_ps(b, p0, a20);
            a21 = _mm512_fmadd_ps(b, p1, a21);
            let b = _mm512_set1_ps(*q.add(3 * dim + j));
            a30 = _mm512_fmadd_ps(b, p0, a30);
            a31 = _mm512_fmadd_ps(b, p1, a31);
            let b = _mm512_set1_ps(*q.add(4 * dim + j));
            a40 = _mm512_fmadd_ps(b, p0, a40);
            a41 = _mm512_fmadd_ps(b, p1, a41);
            let b = _mm512_set1_ps(*q.add(5 * dim + j));
            a50 = _mm512_fmadd_ps(b, p0, a50);
            a51 = _mm512_fmadd_ps(b, p1, a51);
        }
        let add0 = _mm512_loadu_ps(pre.add.as_ptr());
        let add1 = _mm512_loadu_ps(pre.add.as_ptr().add(16));
        let mul0 = _mm512_loadu_ps(pre.mul.as_ptr());
        let mul1 = _mm512_loadu_ps(pre.mul.as_ptr().add(16));
        let accs = [
            (a00, a01),
            (a10, a11),
            (a20, a21),
            (a30, a31),
            (a40, a41),
            (a50, a51),
        ];
        for (i, (lo, hi)) in accs.into_iter().enumerate() {
            let qn = _mm512_set1_ps(qn2[i]);
            let k0 = _mm512_fmadd_ps(lo, mul0, _mm512_add_ps(add0, qn));
            let k1 = _mm512_fmadd_ps(hi, mul1, _mm512_add_ps(add1, qn));
            _mm512_storeu_ps(keys.add(i * 32), k0);
            _mm512_storeu_ps(keys.add(i * 32 + 16), k1);
            let t = _mm512_set1_ps(thr[i]);
            let m0 = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(k0, t) as u32;
            let m1 = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(k1, t) as u32;
            hits[i] = m0 | (m1 << 16);
        }
    }
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
