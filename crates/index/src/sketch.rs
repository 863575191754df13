//! Exact FLAT search that reads a quarter of the bytes: an 8-bit *sketch* of the rows
//! bounds every row's exact key from below, and only rows whose bound could still beat the
//! `k`-th best exact key so far are scored on their `f32` vectors. This is the VA-file
//! (Weber, Schek & Blott, "A quantitative analysis and performance study for
//! similarity-search methods in high-dimensional spaces", VLDB 1998) with the codes of
//! [`crate::sq8`].
//!
//! A FLAT scan of `n × d` `f32` rows is bound by memory bandwidth at one or a few queries
//! (1M × 128 rows are 512 MB). The sketch is `d` bytes per row (`d` rounded up to 16) plus
//! 4 bytes of `|x̂|²`, and its integer kernel runs at the same bandwidth, so a scan costs
//! about a quarter; the exact re-scoring touches the few rows near the top.
//!
//! # Exactness
//! [`FlatSketch::search`] returns what [`crate::flat_search`] returns, row for row and bit
//! for bit (scores come from the same `f32` kernels, ties are broken the same way). A row is
//! skipped only when a rigorous lower bound on its exact key exceeds the current `k`-th
//! exact key (or the range's upper end):
//!
//! - L2: `|q − x| ≥ |q − x̂| − |x − x̂|`, with `|q − x̂|²` within `2 ε_dot` of the candidate
//!   key (weight rounding) and `|x − x̂| ≤ ε_codec` (half a step per dimension);
//! - IP: `|q·x − q·x̂| ≤ Σ |q_j| step_j / 2`, plus the same weight rounding.
//!
//! Each bound carries a slack for `f32` rounding, of the candidate key and of the exact
//! kernels (relative `(d + 8) · 2⁻²³`), so the pruning never drops a row the full scan
//! would return. COSINE searches (keys divide by `|x|`) are not sketched.

use crate::ann::IndexError;
use crate::distance;
use crate::flat::{
    count_allowed, flat_search, is_allowed, neighbors, over_chunks, prepare_queries, row_key,
    FlatParams, Neighbor, PACK_MIN_NQ,
};
use crate::sq8::{check_input, code_isa, dots, Sq8Codec, Sq8Query, SCAN_BLOCK};
use crate::topk::TopK;
use crate::Metric;

/// An 8-bit sketch of `rows × dim` vectors (SQ8 codes of the raw rows and `|x̂|²`), for
/// exact FLAT search with L2 or IP. Built in memory from the rows it sketches; it is only
/// valid with those same rows.
///
/// Memory: `stride + 4` bytes per row (`stride = dim` rounded up to 16).
#[derive(Debug, Clone)]
pub struct FlatSketch {
    codec: Sq8Codec,
    rows: usize,
    codes: Vec<u8>,
    /// `|x̂|²` per row.
    xn2: Vec<f32>,
    /// Largest `|x̂|²`.
    xn2_max: f32,
    /// Per dimension, the largest `|x_j|` any row can have (`max(|min_j|, |max_j|)`).
    xabs: Vec<f32>,
    /// `|xabs|`: bounds the rounding of codes.
    xabs_norm: f64,
}

/// Per-query constants of the pruned scan.
struct Bounds {
    q: Sq8Query,
    metric: Metric,
    /// Absolute slack of a candidate key (its `f32` rounding).
    key_slack: f64,
    /// Bound on `|x − x̂|` (L2) or `|q·x − q·x̂|` (IP), with rounding slack.
    codec: f64,
    /// Exact keys are at least `rel ×` the true squared distance (L2), or within
    /// `ip_slack` of the true inner product (IP).
    rel: f64,
    ip_slack: f64,
}

impl Bounds {
    /// The largest candidate key a row may have when its exact key is at most `thr`
    /// (`INFINITY` when nothing can be excluded).
    fn cut(&self, thr: f32) -> f32 {
        if thr == f32::INFINITY {
            return f32::INFINITY;
        }
        let thr = thr as f64;
        let c = match self.metric {
            Metric::L2 => {
                let d = (thr.max(0.0) / self.rel).sqrt() + self.codec;
                d * d + 2.0 * self.q.dot_err as f64 + self.key_slack
            }
            _ => thr + self.ip_slack + self.codec + self.q.dot_err as f64 + self.key_slack,
        };
        let c = (c * (1.0 + 1e-6) + 1e-30) as f32;
        if c.is_nan() {
            f32::INFINITY
        } else {
            c
        }
    }
}

impl FlatSketch {
    /// Sketches `vectors` (`rows × dim`, row-major).
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] for `dim == 0` or above 32,768, a length not a
    /// multiple of `dim`, more than `2^32 - 1` rows, or a NaN / infinite value.
    pub fn build(vectors: &[f32], dim: usize) -> Result<FlatSketch, IndexError> {
        let rows = check_input(vectors, dim)?;
        let codec = Sq8Codec::train(vectors, dim, false);
        let order: Vec<u32> = (0..rows as u32).collect();
        let (codes, xn2) = codec.encode_rows(vectors, &order, false);
        let xn2_max = xn2.iter().fold(0f32, |m, v| m.max(*v));
        let xabs: Vec<f32> = (0..dim)
            .map(|j| {
                let lo = codec.min[j];
                lo.abs().max((lo + 255.0 * codec.step[j]).abs())
            })
            .collect();
        let xabs_norm = xabs.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        Ok(FlatSketch {
            codec,
            rows,
            codes,
            xn2,
            xn2_max,
            xabs,
            xabs_norm,
        })
    }

    /// Rows sketched.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Dimension of the sketched rows.
    pub fn dim(&self) -> usize {
        self.codec.dim
    }

    /// Bytes held (codes, norms and codec).
    pub fn bytes(&self) -> usize {
        self.codes.len() + 4 * (self.xn2.len() + 3 * self.codec.dim)
    }

    /// True when [`FlatSketch::search`] reads the sketch for `nq` queries with these
    /// parameters: L2 or IP, fewer than 12 queries (larger batches are compute-bound and
    /// take FLAT's register-tiled scan), and no filter so selective that scoring only the
    /// allowed rows is cheaper.
    pub fn applies(&self, nq: usize, p: &FlatParams<'_>) -> bool {
        p.metric != Metric::Cosine
            && nq < PACK_MIN_NQ
            && p.allowed
                .is_none_or(|w| count_allowed(w, self.rows) * 16 >= self.rows)
    }

    fn bounds(&self, q: &[f32], metric: Metric) -> Bounds {
        let sq = self.codec.prepare(q, metric);
        let dim = self.codec.dim;
        let eps = f32::EPSILON as f64;
        let imax: f64 = sq.w8.iter().map(|w| (*w as f64).abs() * 255.0).sum();
        let mag = (sq.c0 as f64).abs()
            + (sq.c1 as f64).abs() * imax
            + if sq.l2 { self.xn2_max as f64 } else { 0.0 };
        let qx: f64 = q
            .iter()
            .zip(&self.xabs)
            .map(|(a, b)| (*a as f64).abs() * *b as f64)
            .sum();
        let rel_err = (dim as f64 + 8.0) * eps;
        let codec = match metric {
            Metric::L2 => sq.codec_err as f64 * 1.001 + 1e-5 * self.xabs_norm,
            _ => sq.codec_err as f64 * 1.001 + 1e-5 * qx,
        };
        Bounds {
            metric,
            key_slack: 1e-5 * mag,
            codec,
            rel: (1.0 - rel_err).max(0.5),
            ip_slack: rel_err * qx,
            q: sq,
        }
    }

    /// Exact k-NN of `nq` queries over the sketched rows, identical to
    /// [`crate::flat_search`]`(vectors, dim, queries, p)`.
    ///
    /// - `vectors`: the `rows × dim` rows this sketch was built from; `queries`: `nq × dim`.
    /// - Falls back to [`crate::flat_search`] when [`FlatSketch::applies`] is false.
    ///
    /// Panics if `vectors` does not hold `rows × dim` values or `queries` is not a multiple
    /// of `dim` (callers validate).
    pub fn search(
        &self,
        vectors: &[f32],
        queries: &[f32],
        p: &FlatParams<'_>,
    ) -> Vec<Vec<Neighbor>> {
        let dim = self.codec.dim;
        assert!(
            vectors.len() == self.rows * dim && queries.len().is_multiple_of(dim),
            "sketch search: vectors must be the {} x {dim} rows the sketch was built from",
            self.rows
        );
        let nq = queries.len() / dim;
        if !self.applies(nq, p) {
            return flat_search(vectors, dim, queries, p);
        }
        if nq == 0 {
            return Vec::new();
        }
        if self.rows == 0 || p.k == 0 {
            return vec![Vec::new(); nq];
        }
        let prepared = prepare_queries(queries, dim, p.metric);
        let bounds: Vec<Bounds> = prepared
            .chunks_exact(dim)
            .map(|q| self.bounds(q, p.metric))
            .collect();
        let threads = rayon::current_num_threads().max(1);
        let chunk = if self.rows * self.codec.stride < 1 << 20 {
            self.rows
        } else {
            self.rows.div_ceil(threads * 4).max(8192)
        };
        let run = |s: usize| -> Vec<TopK> {
            let e = (s + chunk).min(self.rows);
            let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(p.k)).collect();
            self.scan(vectors, &prepared, &bounds, s, e, p, &mut tops);
            tops
        };
        let tops = over_chunks(self.rows, chunk, run, |a, b| a.merge(b, p.tiebreak));
        tops.into_iter()
            .map(|t| neighbors(t.into_sorted(p.tiebreak), p.metric))
            .collect()
    }

    /// Rows `start..end` for every query: integer candidate keys a block at a time, exact
    /// keys for the rows under each query's cut.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        vectors: &[f32],
        queries: &[f32],
        bounds: &[Bounds],
        start: usize,
        end: usize,
        p: &FlatParams<'_>,
        tops: &mut [TopK],
    ) {
        let dim = self.codec.dim;
        let stride = self.codec.stride;
        let isa = code_isa();
        let l2 = distance::l2_sq_kernel();
        let dot = distance::dot_kernel();
        let limit = |t: &TopK| t.threshold().min(p.range.hi);
        let mut cuts: Vec<f32> = tops
            .iter()
            .zip(bounds)
            .map(|(t, b)| b.cut(limit(t)))
            .collect();
        let mut buf = [0i32; SCAN_BLOCK];
        let mut s = start;
        while s < end {
            let e = (s + SCAN_BLOCK).min(end);
            let codes = &self.codes[s * stride..e * stride];
            for (qi, b) in bounds.iter().enumerate() {
                let out = &mut buf[..e - s];
                dots(isa, codes, stride, &b.q.w8, out);
                let q = &queries[qi * dim..(qi + 1) * dim];
                for (i, &d) in out.iter().enumerate() {
                    let r = s + i;
                    let key = b.q.key(self.xn2[r], d);
                    // `!(key > cut)`: a NaN key is scored exactly, never skipped.
                    if key > cuts[qi] || !is_allowed(p.allowed, r) {
                        continue;
                    }
                    let exact = row_key(p.metric, l2, dot, &vectors[r * dim..(r + 1) * dim], q);
                    let top = &mut tops[qi];
                    if exact <= top.threshold() && p.range.contains(exact) {
                        top.push(exact, r as u32, p.tiebreak);
                        cuts[qi] = b.cut(limit(top));
                    }
                }
            }
            s = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::KeyRange;
    use crate::topk::by_row;

    /// Deterministic values in `[0, 1)` (splitmix64).
    fn uniform(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    }

    /// Asserts that the sketched search equals FLAT's, rows and score bits.
    fn same_as_flat(vectors: &[f32], dim: usize, queries: &[f32], p: &FlatParams<'_>) -> usize {
        let sk = FlatSketch::build(vectors, dim).unwrap();
        assert!(sk.applies(queries.len() / dim, p));
        let want = flat_search(vectors, dim, queries, p);
        let got = sk.search(vectors, queries, p);
        assert_eq!(got.len(), want.len());
        for (qi, (g, w)) in got.iter().zip(&want).enumerate() {
            let g: Vec<(u32, u32)> = g.iter().map(|n| (n.row, n.score.to_bits())).collect();
            let w: Vec<(u32, u32)> = w.iter().map(|n| (n.row, n.score.to_bits())).collect();
            assert_eq!(g, w, "query {qi}, metric {:?}, k {}", p.metric, p.k);
        }
        want.iter().map(|w| w.len()).sum()
    }

    fn params(metric: Metric, k: usize) -> FlatParams<'static> {
        FlatParams {
            metric,
            k,
            range: KeyRange::ALL,
            allowed: None,
            tiebreak: &by_row,
        }
    }

    #[test]
    fn uniform_rows_give_flats_results_for_l2_and_ip() {
        let dim = 128;
        let x = uniform(20_000 * dim, 1);
        let q = uniform(5 * dim, 2);
        for metric in [Metric::L2, Metric::Ip] {
            for k in [1, 10, 100] {
                assert_eq!(same_as_flat(&x, dim, &q, &params(metric, k)), 5 * k);
                assert_eq!(same_as_flat(&x, dim, &q[..dim], &params(metric, k)), k);
            }
        }
    }

    #[test]
    fn copies_ties_and_queries_equal_to_rows_come_out_as_flats() {
        // 300 distinct rows, each stored 7 times, in an odd dimension with a constant
        // coordinate; the queries are rows themselves (distance 0, 7-way ties).
        let dim = 37;
        let base = uniform(300 * dim, 3);
        let mut x = Vec::new();
        for c in 0..7 {
            for r in 0..300 {
                let mut row = base[r * dim..(r + 1) * dim].to_vec();
                row[5] = 0.25;
                if c == 6 && r % 2 == 0 {
                    row[0] += 1e-6; // near-copies
                }
                x.extend_from_slice(&row);
            }
        }
        let q: Vec<f32> = [0usize, 17, 299]
            .iter()
            .flat_map(|&r| x[r * dim..(r + 1) * dim].to_vec())
            .collect();
        for metric in [Metric::L2, Metric::Ip] {
            for k in [1, 3, 7, 8, 50] {
                same_as_flat(&x, dim, &q, &params(metric, k));
            }
        }
    }

    #[test]
    fn rows_far_from_the_origin_keep_exact_order() {
        // Large norms, small distances: the candidate key cancels |x|² against 2 q·x.
        let dim = 64;
        let x: Vec<f32> = uniform(5_000 * dim, 4)
            .iter()
            .map(|v| 1000.0 + v * 0.01)
            .collect();
        let q: Vec<f32> = uniform(2 * dim, 5)
            .iter()
            .map(|v| 1000.0 + v * 0.01)
            .collect();
        for metric in [Metric::L2, Metric::Ip] {
            same_as_flat(&x, dim, &q, &params(metric, 10));
        }
    }

    #[test]
    fn allowed_rows_and_ranges_are_honoured() {
        let dim = 48;
        let n = 12_000;
        let x = uniform(n * dim, 6);
        let q = uniform(3 * dim, 7);
        // Every third row allowed.
        let mut words = vec![0u64; n.div_ceil(64)];
        for r in (0..n).step_by(3) {
            words[r / 64] |= 1 << (r % 64);
        }
        let mut p = params(Metric::L2, 20);
        p.allowed = Some(&words);
        assert_eq!(same_as_flat(&x, dim, &q, &p), 60);
        // L2 range: radius 5.0, range_filter 4.5 (keys in [4.5, 5.0)).
        let mut p = params(Metric::L2, 1000);
        p.range = Metric::L2.key_range(Some(5.0), Some(4.5));
        let hits = same_as_flat(&x, dim, &q, &p);
        assert!(hits > 0 && hits < 3000, "{hits} range hits");
        // IP range: scores in (11.0, 11.5].
        let mut p = params(Metric::Ip, 1000);
        p.range = Metric::Ip.key_range(Some(11.0), Some(11.5));
        let hits = same_as_flat(&x, dim, &q, &p);
        assert!(hits > 0 && hits < 3000, "{hits} range hits");
    }

    #[test]
    fn cosine_and_selective_filters_fall_back_to_flat() {
        let dim = 16;
        let x = uniform(1000 * dim, 8);
        let sk = FlatSketch::build(&x, dim).unwrap();
        assert!(!sk.applies(1, &params(Metric::Cosine, 5)));
        assert!(!sk.applies(PACK_MIN_NQ, &params(Metric::L2, 5)));
        let words = vec![1u64; 1000usize.div_ceil(64)]; // 16 of 1000 rows
        let mut p = params(Metric::L2, 5);
        p.allowed = Some(&words);
        assert!(!sk.applies(1, &p));
        let q = uniform(dim, 9);
        assert_eq!(sk.search(&x, &q, &p), flat_search(&x, dim, &q, &p));
        let p = params(Metric::Cosine, 5);
        assert_eq!(sk.search(&x, &q, &p), flat_search(&x, dim, &q, &p));
        assert!(FlatSketch::build(&[1.0, f32::NAN], 2).is_err());
    }
}
