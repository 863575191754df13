//! 8-bit scalar quantisation (SQ8): codes, integer distance kernels, and the `SQ8` index (an
//! exhaustive scan of every row's codes followed by exact re-ranking).
//!
//! # Codes
//! Per dimension `j`, `min_j` and `max_j` are taken over every row the index is built from
//! (Faiss `ScalarQuantizer::QT_8bit` with `RS_minmax`), `step_j = (max_j - min_j) / 255`, and
//! a value is coded `c_j = round((x_j - min_j) / step_j)` in `0..=255`, decoded
//! `x̂_j = min_j + step_j c_j`; the error is at most `step_j / 2`. COSINE indexes code the
//! unit-normalised rows. A code row is `stride = dim` rounded up to 16 bytes (zero padded).
//!
//! # Distances
//! The query is folded into per-dimension weights `w_j = step_j q_j`, so
//! `x̂·q = min·q + Σ w_j c_j`; the weights are quantised to `i8` (`w_j ≈ α w8_j`,
//! `α = max |w_j| / 127`) and `Σ w8_j c_j` is an exact integer dot product of `u8` codes and
//! `i8` weights: AVX-512 VNNI (`vpdpbusd`, 64 products per instruction), AVX2
//! (`vpmaddwd` on widened codes) or scalar, chosen at run time. Integer sums are exact, so
//! every instruction set and every batch size computes the same candidate keys:
//!
//! - L2: `key = |x̂|² − 2 (min·q + α I) + |q|²` (`|x̂|²` stored per row);
//! - IP / COSINE: `key = −(min·q + α I)`.
//!
//! The best `k × rerank` candidates by that key are re-scored with the segment's `f32`
//! vectors (`flat::exact_rerank`), so returned scores are exact.
//!
//! # Range search
//! A candidate is dropped before re-ranking only when a rigorous bound on its exact key
//! (codec error `≤ step_j / 2` per dimension, weight rounding `≤ α / 2` per dimension) puts
//! it outside the range; the range is then applied to exact keys.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::ann::{AnnParams, IndexError, IndexSpec, VectorIndex};
use crate::blob::{BlobReader, BlobWriter, Pod, Slab};
use crate::distance::{self, Isa};
use crate::flat::{exact_rerank, is_allowed, over_chunks, prepare_queries, KeyRange, Neighbor};
use crate::topk::{Candidate, TieBreak};
use crate::Metric;

/// Default re-ranking factor of SQ8 and IVF_SQ8: `k × 2` candidates (at least `k + 16`)
/// are re-scored exactly. On the peers' face128 data (100k rows, `k = 10`) recall@1 and
/// @10 were the same with factors 1, 2 and 4 (SQ8: 1.0000 / 1.0000; IVF_SQ8 at
/// `nprobe = 384` of 1024: 1.0000 / 0.9946, equal to IVF_FLAT's): the integer keys rank
/// well enough that `k + 16` candidates hold the exact top `k`; 2 leaves a margin for
/// larger `k`.
pub const DEFAULT_RERANK: usize = 2;
/// Candidates re-scored are at least `k + MIN_EXTRA_CANDIDATES` (small `k` would otherwise
/// re-score too few for 8-bit keys to be safe).
pub const MIN_EXTRA_CANDIDATES: usize = 16;

/// Minimum number of queries for the batched register-tile scan.
const TILE_MIN_NQ: usize = 8;
/// Rows per register tile of the batched scan.
const TILE_ROWS: usize = 6;
/// Queries per register tile (two AVX-512 registers of 16 `i32` lanes).
const TILE_LANES: usize = 32;

/// The best `k` candidates by (key, tie-break), collected in a buffer of up to `2k` that is
/// cut back to `k` by a selection when full (amortised O(1) per offer, where a heap costs
/// O(log k) with unpredictable branches). Keeps exactly the candidates [`crate::TopK`]
/// would.
#[derive(Debug, Clone)]
pub(crate) struct Cands {
    k: usize,
    buf: Vec<Candidate>,
    /// Keys above this can never enter (the `k`-th best after the last cut).
    thr: f32,
}

impl Cands {
    pub fn new(k: usize) -> Cands {
        Cands {
            k,
            buf: Vec::with_capacity((2 * k).min(64)),
            thr: f32::INFINITY,
        }
    }

    /// Keys above this can never enter; a key equal to it may (tie-break decides).
    #[inline(always)]
    pub fn threshold(&self) -> f32 {
        self.thr
    }

    /// Candidates held (at least `min(k, offered)`).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Offers a candidate (callers skip keys above [`Cands::threshold`] first).
    #[inline]
    pub fn push(&mut self, key: f32, row: u32, tb: TieBreak<'_>) {
        if self.k == 0 || key > self.thr {
            return;
        }
        self.buf.push(Candidate { key, row });
        if self.buf.len() >= 2 * self.k {
            self.cut(tb);
        } else if self.buf.len() == self.k && self.thr == f32::INFINITY {
            // The first `k` offered: the worst of them bounds the final `k`-th best.
            self.thr = self.buf.iter().fold(f32::NEG_INFINITY, |m, c| m.max(c.key));
        }
    }

    fn cut(&mut self, tb: TieBreak<'_>) {
        let k = self.k;
        self.buf.select_nth_unstable_by(k - 1, |a, b| {
            a.key.total_cmp(&b.key).then_with(|| tb(a.row, b.row))
        });
        self.buf.truncate(k);
        self.thr = self.buf[k - 1].key;
    }

    /// Moves every candidate of `other` into `self`.
    pub fn merge(&mut self, other: Cands, tb: TieBreak<'_>) {
        for c in other.buf {
            self.push(c.key, c.row, tb);
        }
    }

    /// The best `k`, best first.
    pub fn into_sorted(mut self, tb: TieBreak<'_>) -> Vec<Candidate> {
        self.buf
            .sort_unstable_by(|a, b| a.key.total_cmp(&b.key).then_with(|| tb(a.row, b.row)));
        self.buf.truncate(self.k);
        self.buf
    }
}

/// Number of exact re-ranking candidates for `k` results and re-ranking factor `rerank`.
pub(crate) fn candidates(k: usize, rerank: Option<usize>) -> usize {
    let r = rerank.unwrap_or(DEFAULT_RERANK).max(1);
    k.saturating_mul(r).max(k + MIN_EXTRA_CANDIDATES)
}

/// Which integer kernel scans the codes, detected once (follows [`distance::isa`], so
/// `FACEDB_ISA` lowers it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeIsa {
    Scalar,
    Avx2,
    Vnni512,
}

pub(crate) fn code_isa() -> CodeIsa {
    static ISA: OnceLock<CodeIsa> = OnceLock::new();
    *ISA.get_or_init(|| match distance::isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512
            if is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni") =>
        {
            CodeIsa::Vnni512
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 if is_x86_feature_detected!("avx2") => CodeIsa::Avx2,
        _ => CodeIsa::Scalar,
    })
}

/// Per-dimension 8-bit scalar quantiser.
#[derive(Clone, Debug)]
pub(crate) struct Sq8Codec {
    pub dim: usize,
    /// Bytes per code row: `dim` rounded up to 16.
    pub stride: usize,
    pub min: Slab<f32>,
    pub step: Slab<f32>,
}

/// Bytes per code row for dimension `dim`.
pub(crate) fn code_stride(dim: usize) -> usize {
    dim.div_ceil(16) * 16
}

/// Normalises `row` to unit length in place (zero stays zero), as `prepare_queries` does.
pub(crate) fn normalise(row: &mut [f32]) {
    let nrm = distance::norm(row);
    if nrm > 0.0 {
        row.iter_mut().for_each(|v| *v /= nrm);
    }
}

impl Sq8Codec {
    /// Trains min/step on every row of `data` (`n × dim`); `normalised` codes unit rows.
    pub fn train(data: &[f32], dim: usize, normalised: bool) -> Sq8Codec {
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        let mut buf = vec![0f32; dim];
        for x in data.chunks_exact(dim) {
            buf.copy_from_slice(x);
            if normalised {
                normalise(&mut buf);
            }
            for ((l, h), v) in lo.iter_mut().zip(hi.iter_mut()).zip(&buf) {
                *l = l.min(*v);
                *h = h.max(*v);
            }
        }
        let mut step = vec![0f32; dim];
        for j in 0..dim {
            if !lo[j].is_finite() {
                lo[j] = 0.0; // no rows
                hi[j] = 0.0;
            }
            step[j] = (hi[j] - lo[j]) / 255.0;
        }
        Sq8Codec {
            dim,
            stride: code_stride(dim),
            min: Slab::owned(lo),
            step: Slab::owned(step),
        }
    }

    /// Codes of one row into `out` (`stride` bytes; padding zeroed).
    pub fn encode(&self, x: &[f32], out: &mut [u8]) {
        let (min, step) = (&*self.min, &*self.step);
        for j in 0..self.dim {
            out[j] = if step[j] > 0.0 {
                ((x[j] - min[j]) / step[j]).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
        }
        out[self.dim..self.stride].fill(0);
    }

    /// Decoded values `min_j + step_j c_j` of one code row.
    #[cfg(test)]
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        let (min, step) = (&*self.min, &*self.step);
        for j in 0..self.dim {
            out[j] = min[j] + step[j] * code[j] as f32;
        }
    }

    /// `|x̂|²` of a code row, accumulated in f64.
    pub fn decoded_norm2(&self, code: &[u8]) -> f32 {
        let (min, step) = (&*self.min, &*self.step);
        (0..self.dim)
            .map(|j| {
                let v = (min[j] + step[j] * code[j] as f32) as f64;
                v * v
            })
            .sum::<f64>() as f32
    }

    /// Encodes every row of `data` (normalised first when `normalised`), in the order given
    /// by `order` (row numbers), into `stride`-byte codes and `|x̂|²` values.
    pub fn encode_rows(
        &self,
        data: &[f32],
        order: &[u32],
        normalised: bool,
    ) -> (Vec<u8>, Vec<f32>) {
        let dim = self.dim;
        let mut codes = vec![0u8; order.len() * self.stride];
        let mut norms = vec![0f32; order.len()];
        codes
            .par_chunks_mut(self.stride * 1024)
            .zip(norms.par_chunks_mut(1024))
            .zip(order.par_chunks(1024))
            .for_each(|((c, nr), ord)| {
                let mut buf = vec![0f32; dim];
                for ((code, n), &r) in c.chunks_exact_mut(self.stride).zip(nr).zip(ord) {
                    let r = r as usize;
                    buf.copy_from_slice(&data[r * dim..(r + 1) * dim]);
                    if normalised {
                        normalise(&mut buf);
                    }
                    self.encode(&buf, code);
                    *n = self.decoded_norm2(code);
                }
            });
        (codes, norms)
    }

    /// Folds a prepared query (`dim`; cosine queries already unit length) into integer
    /// weights and the constants of the candidate key.
    pub fn prepare(&self, q: &[f32], metric: Metric) -> Sq8Query {
        let (min, step) = (&*self.min, &*self.step);
        let mut w = vec![0f64; self.dim];
        let mut mq = 0f64;
        let mut amax = 0f64;
        let mut e_l2 = 0f64;
        let mut e_ip = 0f64;
        for j in 0..self.dim {
            w[j] = step[j] as f64 * q[j] as f64;
            mq += min[j] as f64 * q[j] as f64;
            amax = amax.max(w[j].abs());
            e_l2 += (step[j] as f64 / 2.0).powi(2);
            e_ip += step[j] as f64 / 2.0 * (q[j] as f64).abs();
        }
        let alpha = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        let mut w8 = vec![0i8; self.stride.div_ceil(64) * 64];
        // δ_j = w_j − α w8_j. Σ δ_j c_j = Σ δ_j (c_j − 128) + 128 Σ δ_j: the second term is
        // the same for every row and goes into the constant; the first is bounded by
        // 128 Σ |δ_j|.
        let (mut t, mut bias) = (0f64, 0f64);
        for j in 0..self.dim {
            let v = (w[j] / alpha).round().clamp(-127.0, 127.0);
            w8[j] = v as i8;
            let d = w[j] - alpha * v;
            t += d.abs() * 128.0;
            bias += d * 128.0;
        }
        let q2: f64 = q.iter().map(|v| (*v as f64) * (*v as f64)).sum();
        let l2 = metric == Metric::L2;
        let (c0, c1) = if l2 {
            (q2 - 2.0 * (mq + bias), -2.0 * alpha)
        } else {
            (-(mq + bias), -alpha)
        };
        let w4 = w8[..self.stride]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]))
            .collect();
        Sq8Query {
            w8,
            w4,
            c0: c0 as f32,
            c1: c1 as f32,
            l2,
            dot_err: t as f32,
            codec_err: if l2 { e_l2.sqrt() } else { e_ip } as f32,
        }
    }
}

/// A query folded for one codec (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Sq8Query {
    /// `i8` weights, padded with zeros to a multiple of 64.
    pub w8: Vec<i8>,
    /// The weights of each 4 dimensions as one little-endian `i32` (`stride / 4` values), as
    /// the tile kernel reads them.
    pub w4: Vec<i32>,
    /// Key constant (`|q|² − 2 min·q` for L2, `−min·q` otherwise).
    pub c0: f32,
    /// Key factor of the integer dot product (`−2α` for L2, `−α` otherwise).
    pub c1: f32,
    /// L2 keys add the row's `|x̂|²`.
    pub l2: bool,
    /// Bound on `|α I + 128 Σ δ_j − Σ w_j c_j|` (`δ_j = w_j − α w8_j`).
    pub dot_err: f32,
    /// Codec error bound: `|x̂ − x|` (L2) or `Σ step_j/2 |q_j|` (IP, COSINE).
    pub codec_err: f32,
}

impl Sq8Query {
    /// Candidate key of a row with `|x̂|² = xn2` and integer dot product `dot`:
    /// `(xn2 + c0) + c1 · dot`, rounded after each operation (no fused multiply-add, which
    /// is a slow library call without the FMA target feature); the tile kernel computes the
    /// same operations, so both give the same keys.
    #[inline(always)]
    pub fn key(&self, xn2: f32, dot: i32) -> f32 {
        let add = if self.l2 { xn2 + self.c0 } else { self.c0 };
        add + self.c1 * dot as f32
    }

    /// False only when the exact key of a row whose candidate key is `key` certainly lies
    /// outside `range` (bounds of the module docs, with a relative slack for f32 rounding).
    #[inline]
    pub fn may_be_in(&self, key: f32, range: &KeyRange) -> bool {
        if range.lo == f32::NEG_INFINITY && range.hi == f32::INFINITY {
            return true;
        }
        let (lo, hi) = if self.l2 {
            let d = 2.0 * self.dot_err;
            let kmin = (key - d).max(0.0).sqrt() - self.codec_err;
            let kmax = (key + d).max(0.0).sqrt() + self.codec_err;
            (kmin.max(0.0).powi(2), kmax * kmax)
        } else {
            let d = self.dot_err + self.codec_err;
            (key - d, key + d)
        };
        let slack = 1e-4 * (lo.abs().max(hi.abs())).max(1e-6);
        hi + slack >= range.lo && lo - slack < range.hi
    }
}

/// Integer dot products of `out.len()` code rows (`stride` bytes each) with the query
/// weights, on the given instruction set. Exact: every `isa` returns the same values.
pub(crate) fn dots(isa: CodeIsa, codes: &[u8], stride: usize, w8: &[i8], out: &mut [i32]) {
    assert!(codes.len() >= out.len() * stride && w8.len() >= stride && stride.is_multiple_of(16));
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: extents asserted above; the features were detected by `code_isa`.
        CodeIsa::Vnni512 => unsafe { x86::dots_vnni(codes, stride, w8, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        CodeIsa::Avx2 => unsafe { x86::dots_avx2(codes, stride, w8, out) },
        _ => dots_scalar(codes, stride, w8, out),
    }
}

fn dots_scalar(codes: &[u8], stride: usize, w8: &[i8], out: &mut [i32]) {
    for (o, c) in out.iter_mut().zip(codes.chunks_exact(stride)) {
        *o = c
            .iter()
            .zip(&w8[..stride])
            .map(|(a, b)| *a as i32 * *b as i32)
            .sum();
    }
}

/// Rows per block of the one-query scan (the `i32` buffer stays in L1).
pub(crate) const SCAN_BLOCK: usize = 256;

/// Scores a block of code rows for one query and offers candidates: entry `i` of the block
/// is row `row_of(i)`; rows not allowed, or certainly outside `range`, are skipped, and so
/// are keys above `cap` (a threshold known from elsewhere; `INFINITY` for none).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn scan_block(
    isa: CodeIsa,
    codes: &[u8],
    stride: usize,
    xn2: &[f32],
    q: &Sq8Query,
    row_of: impl Fn(usize) -> u32,
    allowed: Option<&[u64]>,
    range: &KeyRange,
    top: &mut Cands,
    cap: f32,
    tiebreak: TieBreak<'_>,
    buf: &mut [i32; SCAN_BLOCK],
) {
    let m = codes.len() / stride;
    let mut s = 0;
    while s < m {
        let e = (s + SCAN_BLOCK).min(m);
        let out = &mut buf[..e - s];
        dots(isa, &codes[s * stride..e * stride], stride, &q.w8, out);
        for (i, &d) in out.iter().enumerate() {
            let key = q.key(if q.l2 { xn2[s + i] } else { 0.0 }, d);
            if key <= top.threshold().min(cap) {
                let row = row_of(s + i);
                if is_allowed(allowed, row as usize) && q.may_be_in(key, range) {
                    top.push(key, row, tiebreak);
                }
            }
        }
        s = e;
    }
}

/// Exact re-ranking of one query's candidates (`qv` prepared) with the segment's `f32`
/// vectors; the candidates' rows are prefetched first (they are scattered over the segment,
/// so their cache misses then overlap).
pub(crate) fn rerank(
    metric: Metric,
    vectors: &[f32],
    dim: usize,
    qv: &[f32],
    cands: Cands,
    p: &AnnParams<'_>,
) -> Vec<Neighbor> {
    let rows: Vec<u32> = cands
        .into_sorted(p.tiebreak)
        .into_iter()
        .map(|c| c.row)
        .collect();
    #[cfg(target_arch = "x86_64")]
    for &r in &rows {
        let x = &vectors[r as usize * dim..(r as usize + 1) * dim];
        for line in x.chunks(16) {
            // SAFETY: a prefetch of an address inside `vectors`; it never faults.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr() as *const i8
                )
            };
        }
    }
    exact_rerank(
        metric, vectors, dim, qv, rows, p.k, p.range, p.allowed, p.tiebreak,
    )
}

/// Metric number stored in index blobs.
pub(crate) fn metric_code(m: Metric) -> f64 {
    match m {
        Metric::L2 => 0.0,
        Metric::Ip => 1.0,
        Metric::Cosine => 2.0,
    }
}

/// Metric of a stored number.
pub(crate) fn metric_of(v: f64) -> Result<Metric, IndexError> {
    match v as i64 {
        0 if v == 0.0 => Ok(Metric::L2),
        1 if v == 1.0 => Ok(Metric::Ip),
        2 if v == 2.0 => Ok(Metric::Cosine),
        _ => Err(IndexError::Corrupt(format!("unknown metric {v}"))),
    }
}

/// A section of exactly `len` elements, aligned for `T` (copied when the blob is not).
pub(crate) fn checked_section<T: Pod>(
    r: &BlobReader,
    name: &str,
    len: usize,
) -> Result<Slab<T>, IndexError> {
    let s = r.section::<T>(name)?;
    let Slab::Shared {
        blob,
        offset,
        len: n,
    } = &s
    else {
        return Ok(s);
    };
    if *n != len {
        return Err(IndexError::Corrupt(format!(
            "section {name} holds {n} values, expected {len}"
        )));
    }
    let bytes = &(**blob).as_ref()[*offset..*offset + n * std::mem::size_of::<T>()];
    match bytemuck::try_cast_slice::<u8, T>(bytes) {
        Ok(_) => Ok(s),
        Err(_) => {
            let mut v = vec![T::zeroed(); *n];
            bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
            Ok(Slab::owned(v))
        }
    }
}

/// Largest dimension an index accepts (Milvus allows 32768; the integer dot products of
/// SQ8 stay exact in `i32` up to 66051 dimensions).
pub const MAX_DIM: usize = 65536;

/// Checks the shape of build input.
pub(crate) fn check_input(vectors: &[f32], dim: usize) -> Result<usize, IndexError> {
    if dim == 0 || dim > MAX_DIM || !vectors.len().is_multiple_of(dim) {
        return Err(IndexError::InvalidParameter(format!(
            "{} values are not rows of dimension {dim} (1..={MAX_DIM})",
            vectors.len()
        )));
    }
    let n = vectors.len() / dim;
    if n > u32::MAX as usize {
        return Err(IndexError::InvalidParameter(format!(
            "{n} rows exceed an index's 2^32 - 1 rows"
        )));
    }
    if let Some(i) = vectors.iter().position(|v| !v.is_finite()) {
        return Err(IndexError::InvalidParameter(format!(
            "vector {} has a NaN or infinite value",
            i / dim
        )));
    }
    Ok(n)
}

/// The `SQ8` index: every row's 8-bit codes in row order, scanned exhaustively, then
/// `k × rerank` candidates re-ranked exactly (see the module docs).
///
/// Memory: `stride + 4` bytes per row (`stride = dim` rounded up to 16, plus `|x̂|²` for L2).
/// Search: one query scans the rows in parallel chunks (every rayon thread); many queries
/// (`>= 8`, AVX-512 VNNI) run a register-tile kernel over 6 rows × 32 queries, so each code
/// row is read once per batch.
pub struct Sq8Index {
    metric: Metric,
    rows: usize,
    codec: Sq8Codec,
    codes: Slab<u8>,
    /// `|x̂|²` per row (L2 only; empty otherwise).
    xn2: Slab<f32>,
}

impl Sq8Index {
    /// Builds codes for `vectors` (`rows × dim`, row-major).
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] for `dim == 0`, a length not a multiple of `dim`,
    /// more than `2^32 - 1` rows, or a NaN / infinite value.
    pub fn build(metric: Metric, vectors: &[f32], dim: usize) -> Result<Sq8Index, IndexError> {
        let rows = check_input(vectors, dim)?;
        let cos = metric == Metric::Cosine;
        let codec = Sq8Codec::train(vectors, dim, cos);
        let order: Vec<u32> = (0..rows as u32).collect();
        let (codes, mut xn2) = codec.encode_rows(vectors, &order, cos);
        if metric != Metric::L2 {
            xn2 = Vec::new();
        }
        Ok(Sq8Index {
            metric,
            rows,
            codec,
            codes: Slab::owned(codes),
            xn2: Slab::owned(xn2),
        })
    }

    /// Opens an index written by [`VectorIndex::to_blob`], in place.
    ///
    /// # Errors
    /// [`IndexError::Corrupt`] for missing or inconsistent sections.
    pub fn load(r: &BlobReader) -> Result<Sq8Index, IndexError> {
        let metric = metric_of(r.meta("metric")?)?;
        let rows = r.meta_usize("rows")?;
        let dim = r.meta_usize("dim")?;
        if dim == 0 || dim > MAX_DIM || rows > u32::MAX as usize {
            return Err(IndexError::Corrupt(format!("rows {rows}, dim {dim}")));
        }
        let stride = code_stride(dim);
        let codec = Sq8Codec {
            dim,
            stride,
            min: checked_section(r, "sq_min", dim)?,
            step: checked_section(r, "sq_step", dim)?,
        };
        let codes = checked_section(
            r,
            "codes",
            rows.checked_mul(stride)
                .ok_or_else(|| IndexError::Corrupt("size".into()))?,
        )?;
        let xn2 = checked_section(r, "xn2", if metric == Metric::L2 { rows } else { 0 })?;
        Ok(Sq8Index {
            metric,
            rows,
            codec,
            codes,
            xn2,
        })
    }
}

impl VectorIndex for Sq8Index {
    fn spec(&self) -> IndexSpec {
        IndexSpec::Sq8
    }
    fn metric(&self) -> Metric {
        self.metric
    }
    fn rows(&self) -> usize {
        self.rows
    }
    fn dim(&self) -> usize {
        self.codec.dim
    }

    fn search(&self, vectors: &[f32], queries: &[f32], p: &AnnParams<'_>) -> Vec<Vec<Neighbor>> {
        let dim = self.codec.dim;
        assert!(
            vectors.len() == self.rows * dim && queries.len().is_multiple_of(dim),
            "SQ8 search: vectors must be the {} x {dim} rows the index was built from",
            self.rows
        );
        let nq = queries.len() / dim;
        if self.rows == 0 || p.k == 0 {
            return vec![Vec::new(); nq];
        }
        let prepared = prepare_queries(queries, dim, self.metric);
        let qs: Vec<Sq8Query> = prepared
            .chunks_exact(dim)
            .map(|q| self.codec.prepare(q, self.metric))
            .collect();
        let cand = candidates(p.k, p.knobs.rerank);
        let tops = scan_all(
            code_isa(),
            &self.codes,
            self.codec.stride,
            &self.xn2,
            self.rows,
            &qs,
            cand,
            p,
        );
        let rerank = |(qi, t): (usize, Cands)| {
            rerank(
                self.metric,
                vectors,
                dim,
                &prepared[qi * dim..(qi + 1) * dim],
                t,
                p,
            )
        };
        if nq > 1 {
            tops.into_par_iter().enumerate().map(rerank).collect()
        } else {
            tops.into_iter().enumerate().map(rerank).collect()
        }
    }

    fn to_blob(&self) -> Vec<u8> {
        let mut w = BlobWriter::new("SQ8");
        w.meta("metric", metric_code(self.metric))
            .meta("rows", self.rows as f64)
            .meta("dim", self.codec.dim as f64);
        w.section("sq_min", &self.codec.min)
            .section("sq_step", &self.codec.step)
            .section("codes", &self.codes)
            .section("xn2", &self.xn2);
        w.finish()
    }

    fn bytes(&self) -> usize {
        self.codes.len() + 4 * (self.xn2.len() + 2 * self.codec.dim)
    }
}

/// Candidate top-`cand` lists of every query over all `rows` code rows (row order),
/// parallel over row chunks; the batched tile kernel runs when it applies.
#[allow(clippy::too_many_arguments)]
fn scan_all(
    isa: CodeIsa,
    codes: &[u8],
    stride: usize,
    xn2: &[f32],
    rows: usize,
    qs: &[Sq8Query],
    cand: usize,
    p: &AnnParams<'_>,
) -> Vec<Cands> {
    let nq = qs.len();
    let tiles = isa == CodeIsa::Vnni512 && nq >= TILE_MIN_NQ;
    let all: Vec<u32> = (0..nq as u32).collect();
    let threads = rayon::current_num_threads().max(1);
    let work = rows * nq * stride;
    let chunk = if work < 1 << 21 {
        rows
    } else {
        rows.div_ceil(threads * 4).max(8192).div_ceil(TILE_ROWS) * TILE_ROWS
    };
    #[cfg(target_arch = "x86_64")]
    let packed = if tiles {
        Some(TileQueries::new(qs, &all, stride))
    } else {
        None
    };
    let run = |s: usize| -> Vec<Cands> {
        let e = (s + chunk).min(rows);
        let mut tops: Vec<Cands> = (0..nq).map(|_| Cands::new(cand)).collect();
        #[cfg(target_arch = "x86_64")]
        if let Some(tq) = &packed {
            let xn = if xn2.is_empty() { xn2 } else { &xn2[s..e] };
            let codes = &codes[s * stride..e * stride];
            tile_scan(
                codes,
                stride,
                xn,
                |i| (s + i) as u32,
                qs,
                &all,
                tq,
                p,
                &mut tops,
                &[],
            );
            return tops;
        }
        // Blocks of rows that stay in the L2 cache while every query passes over them.
        let block = (128 * 1024 / stride).max(SCAN_BLOCK);
        let mut buf = [0i32; SCAN_BLOCK];
        let mut b = s;
        while b < e {
            let be = (b + block).min(e);
            for (q, top) in qs.iter().zip(tops.iter_mut()) {
                scan_block(
                    isa,
                    &codes[b * stride..be * stride],
                    stride,
                    if q.l2 { &xn2[b..be] } else { &[] },
                    q,
                    |i| (b + i) as u32,
                    p.allowed,
                    &p.range,
                    top,
                    f32::INFINITY,
                    p.tiebreak,
                    &mut buf,
                );
            }
            b = be;
        }
        tops
    };
    over_chunks(rows, chunk, run, |a, b| a.merge(b, p.tiebreak))
}

/// Selected queries' weights transposed for the tile kernel: tile `t`, 4-byte group `g`,
/// lane `l` at `w[(t * groups + g) * 32 + l]` (4 consecutive `i8` weights as one `i32`),
/// with the key constants per lane. Lane `l` of tile `t` is query `qsel[t * 32 + l]`.
#[cfg(target_arch = "x86_64")]
pub(crate) struct TileQueries {
    groups: usize,
    tiles: usize,
    w: Vec<i32>,
    c0: Vec<f32>,
    c1: Vec<f32>,
}

#[cfg(target_arch = "x86_64")]
impl TileQueries {
    pub(crate) fn new(qs: &[Sq8Query], qsel: &[u32], stride: usize) -> TileQueries {
        let groups = stride / 4;
        let tiles = qsel.len().div_ceil(TILE_LANES);
        let mut w = vec![0i32; tiles * groups * TILE_LANES];
        let mut c0 = vec![0f32; tiles * TILE_LANES];
        let mut c1 = vec![0f32; tiles * TILE_LANES];
        for (t, (tile, sel)) in w
            .chunks_exact_mut(groups * TILE_LANES)
            .zip(qsel.chunks(TILE_LANES))
            .enumerate()
        {
            let rows: Vec<&[i32]> = sel.iter().map(|&qi| &qs[qi as usize].w4[..]).collect();
            for (g, out) in tile.chunks_exact_mut(TILE_LANES).enumerate() {
                for (o, r) in out.iter_mut().zip(&rows) {
                    *o = r[g];
                }
            }
            for (lane, &qi) in sel.iter().enumerate() {
                c0[t * TILE_LANES + lane] = qs[qi as usize].c0;
                c1[t * TILE_LANES + lane] = qs[qi as usize].c1;
            }
        }
        TileQueries {
            groups,
            tiles,
            w,
            c0,
            c1,
        }
    }
}

/// Batched scan of the code rows in `codes` (`m × stride`; entry `i` is row `row_of(i)`,
/// `xn2` its `|x̂|²` for L2) for the queries `qsel` (indices into `qs` and `tops`) with the
/// 6 × 32 VNNI tile kernel. Offers exactly the candidates [`scan_block`] offers; `caps[qi]`
/// (when present) is query `qi`'s `cap`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile_scan(
    codes: &[u8],
    stride: usize,
    xn2: &[f32],
    row_of: impl Fn(usize) -> u32,
    qs: &[Sq8Query],
    qsel: &[u32],
    tq: &TileQueries,
    p: &AnnParams<'_>,
    tops: &mut [Cands],
    caps: &[f32],
) {
    let m = codes.len() / stride;
    let l2 = qs.first().is_some_and(|q| q.l2);
    let cap = |qi: usize| caps.get(qi).copied().unwrap_or(f32::INFINITY);
    let mut thr = vec![f32::NEG_INFINITY; tq.tiles * TILE_LANES];
    for (t, &qi) in thr.iter_mut().zip(qsel) {
        *t = tops[qi as usize].threshold().min(cap(qi as usize));
    }
    let mut tail = vec![0u8; TILE_ROWS * stride];
    let mut keys = [0f32; TILE_ROWS * TILE_LANES];
    let mut add = [0f32; TILE_ROWS];
    let mut row = [0u32; TILE_ROWS];
    let mut r = 0;
    while r < m {
        let rows = (m - r).min(TILE_ROWS);
        let mut live: u32 = 0;
        for (l, rl) in row.iter_mut().enumerate().take(rows) {
            *rl = row_of(r + l);
            if is_allowed(p.allowed, *rl as usize) {
                live |= 1 << l;
            }
        }
        if live == 0 {
            r += rows;
            continue;
        }
        let xs: &[u8] = if rows == TILE_ROWS {
            &codes[r * stride..(r + TILE_ROWS) * stride]
        } else {
            tail.fill(0);
            tail[..rows * stride].copy_from_slice(&codes[r * stride..(r + rows) * stride]);
            &tail
        };
        for (l, a) in add.iter_mut().enumerate() {
            *a = if l2 && l < rows { xn2[r + l] } else { 0.0 };
        }
        for t in 0..tq.tiles {
            let mut hits = [0u32; TILE_ROWS];
            // SAFETY: xs holds TILE_ROWS rows of `stride` bytes; tile t of tq.w holds
            // groups × 32 i32; c0, c1, thr hold 32 lanes from t * 32; keys TILE_ROWS × 32.
            // AVX-512 BW + VNNI were detected (code_isa).
            unsafe {
                x86::tile_6x32_vnni(
                    xs.as_ptr(),
                    stride,
                    tq.w.as_ptr().add(t * tq.groups * TILE_LANES),
                    tq.groups,
                    &add,
                    l2,
                    tq.c0.as_ptr().add(t * TILE_LANES),
                    tq.c1.as_ptr().add(t * TILE_LANES),
                    thr.as_ptr().add(t * TILE_LANES),
                    keys.as_mut_ptr(),
                    &mut hits,
                );
            }
            for (l, &h) in hits.iter().enumerate() {
                let mut mask = if live & (1 << l) != 0 { h } else { 0 };
                while mask != 0 {
                    let lane = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let i = t * TILE_LANES + lane;
                    let Some(&qi) = qsel.get(i) else { continue };
                    let key = keys[l * TILE_LANES + lane];
                    let (qi, c) = (qi as usize, cap(qi as usize));
                    let top = &mut tops[qi];
                    if key <= top.threshold().min(c) && qs[qi].may_be_in(key, &p.range) {
                        top.push(key, row[l], p.tiebreak);
                        thr[i] = top.threshold().min(c);
                    }
                }
            }
        }
        r += rows;
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    /// VNNI dot products, 4 rows at a time. Caller: `codes` holds `out.len() × stride`
    /// bytes, `w8` at least `stride` rounded up to 64, `stride % 16 == 0`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dots_vnni(codes: &[u8], stride: usize, w8: &[i8], out: &mut [i32]) {
        let full = stride / 64;
        let rem = stride % 64;
        let mask: __mmask64 = if rem == 0 { 0 } else { (1u64 << rem) - 1 };
        let pc = codes.as_ptr();
        let pw = w8.as_ptr();
        let m = out.len();
        let mut r = 0;
        // SAFETY: row r spans [r * stride, (r + 1) * stride) within `codes`; loads are full
        // 64-byte chunks inside the row or masked to the row's tail; w8 is padded to 64.
        unsafe {
            while r + 4 <= m {
                let mut acc = [_mm512_setzero_si512(); 4];
                for c in 0..full {
                    let w = _mm512_loadu_si512(pw.add(c * 64) as *const _);
                    for (i, a) in acc.iter_mut().enumerate() {
                        let x = _mm512_loadu_si512(pc.add((r + i) * stride + c * 64) as *const _);
                        *a = _mm512_dpbusd_epi32(*a, x, w);
                    }
                }
                if rem != 0 {
                    let w = _mm512_loadu_si512(pw.add(full * 64) as *const _);
                    for (i, a) in acc.iter_mut().enumerate() {
                        let x = _mm512_maskz_loadu_epi8(
                            mask,
                            pc.add((r + i) * stride + full * 64) as *const _,
                        );
                        *a = _mm512_dpbusd_epi32(*a, x, w);
                    }
                }
                for (i, a) in acc.iter().enumerate() {
                    out[r + i] = _mm512_reduce_add_epi32(*a);
                }
                r += 4;
            }
            while r < m {
                let mut a = _mm512_setzero_si512();
                for c in 0..full {
                    let w = _mm512_loadu_si512(pw.add(c * 64) as *const _);
                    let x = _mm512_loadu_si512(pc.add(r * stride + c * 64) as *const _);
                    a = _mm512_dpbusd_epi32(a, x, w);
                }
                if rem != 0 {
                    let w = _mm512_loadu_si512(pw.add(full * 64) as *const _);
                    let x =
                        _mm512_maskz_loadu_epi8(mask, pc.add(r * stride + full * 64) as *const _);
                    a = _mm512_dpbusd_epi32(a, x, w);
                }
                out[r] = _mm512_reduce_add_epi32(a);
                r += 1;
            }
        }
    }

    /// AVX2 dot products: codes widened to `i16`, `vpmaddwd` with the widened weights.
    /// Caller: as [`dots_vnni`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn dots_avx2(codes: &[u8], stride: usize, w8: &[i8], out: &mut [i32]) {
        let pc = codes.as_ptr();
        let pw = w8.as_ptr();
        // SAFETY: loads of 16 bytes at offsets c * 16 < stride inside each row and w8.
        unsafe {
            for (r, o) in out.iter_mut().enumerate() {
                let mut acc = _mm256_setzero_si256();
                for c in 0..stride / 16 {
                    let x = _mm256_cvtepu8_epi16(_mm_loadu_si128(
                        pc.add(r * stride + c * 16) as *const _
                    ));
                    let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(pw.add(c * 16) as *const _));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, w));
                }
                let s = _mm_add_epi32(
                    _mm256_castsi256_si128(acc),
                    _mm256_extracti128_si256(acc, 1),
                );
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
                let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
                *o = _mm_cvtsi128_si32(s);
            }
        }
    }

    /// 6 rows × 32 queries: `keys[l * 32 + lane] = (add[l] + c0[lane]) + c1[lane] * I` (L2;
    /// `c0[lane]` alone otherwise) with `I` the integer dot product, `hits[l]` the lanes
    /// with `key <= thr[lane]`.
    ///
    /// Caller: `x` holds 6 rows of `stride` bytes (`stride = 4 × groups`), `w` holds
    /// `groups × 32` `i32`, `c0`/`c1`/`thr` 32 lanes, `keys` 6 × 32.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_6x32_vnni(
        x: *const u8,
        stride: usize,
        w: *const i32,
        groups: usize,
        add: &[f32; 6],
        l2: bool,
        c0: *const f32,
        c1: *const f32,
        thr: *const f32,
        keys: *mut f32,
        hits: &mut [u32; 6],
    ) {
        // SAFETY: the caller guarantees the extents above.
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); 2]; 6];
            for g in 0..groups {
                let q0 = _mm512_loadu_si512(w.add(g * 32) as *const _);
                let q1 = _mm512_loadu_si512(w.add(g * 32 + 16) as *const _);
                for (l, a) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_epi32(
                        (x.add(l * stride + g * 4) as *const i32).read_unaligned(),
                    );
                    a[0] = _mm512_dpbusd_epi32(a[0], b, q0);
                    a[1] = _mm512_dpbusd_epi32(a[1], b, q1);
                }
            }
            for (l, a) in acc.iter().enumerate() {
                let mut h = 0u32;
                for (i, av) in a.iter().enumerate() {
                    let k0 = _mm512_loadu_ps(c0.add(i * 16));
                    let ad = if l2 {
                        _mm512_add_ps(_mm512_set1_ps(add[l]), k0)
                    } else {
                        k0
                    };
                    // As Sq8Query::key: a product, then a sum, each rounded.
                    let k = _mm512_add_ps(
                        ad,
                        _mm512_mul_ps(_mm512_cvtepi32_ps(*av), _mm512_loadu_ps(c1.add(i * 16))),
                    );
                    _mm512_storeu_ps(keys.add(l * 32 + i * 16), k);
                    let t = _mm512_loadu_ps(thr.add(i * 16));
                    h |= (_mm512_cmp_ps_mask::<_CMP_LE_OQ>(k, t) as u32) << (i * 16);
                }
                hits[l] = h;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::Rng;

    fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n * dim)
            .map(|i| {
                let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                u * (1.0 + (i % dim) as f32 * 0.1) + (i % dim) as f32 * 0.01
            })
            .collect()
    }

    #[test]
    fn codes_round_trip_within_half_a_step() {
        for (dim, cos) in [(128, false), (37, false), (16, true)] {
            let v = data(500, dim, dim as u64);
            let c = Sq8Codec::train(&v, dim, cos);
            assert_eq!(c.stride % 16, 0);
            assert!(c.stride >= dim && c.stride < dim + 16);
            let mut code = vec![0u8; c.stride];
            let mut back = vec![0f32; dim];
            let mut worst = 0f32;
            for x in v.chunks_exact(dim) {
                let mut x = x.to_vec();
                if cos {
                    normalise(&mut x);
                }
                c.encode(&x, &mut code);
                assert!(code[dim..].iter().all(|&b| b == 0));
                c.decode(&code, &mut back);
                for j in 0..dim {
                    let err = (back[j] - x[j]).abs();
                    let bound = c.step[j] / 2.0 * (1.0 + 1e-4) + 1e-7;
                    assert!(err <= bound, "dim {j}: {err} > {bound}");
                    worst = worst.max(err / c.step[j]);
                }
            }
            // The bound is tight: some value is coded with almost half a step of error.
            assert!(worst > 0.45, "{worst}");
            let n2 = c.decoded_norm2(&code);
            let want: f32 = back.iter().map(|v| v * v).sum();
            assert!((n2 - want).abs() <= 1e-5 * want);
        }
        // A constant dimension codes to 0 and decodes exactly.
        let c = Sq8Codec::train(&[2.0, 1.0, 2.0, 3.0], 2, false);
        let mut code = vec![0u8; 16];
        c.encode(&[2.0, 3.0], &mut code);
        assert_eq!(&code[..2], &[0, 255]);
    }

    #[test]
    fn integer_dots_agree_on_every_isa() {
        let mut rng = Rng::new(5);
        for dim in [16usize, 48, 64, 100, 128, 200] {
            let stride = code_stride(dim);
            let n = 37;
            let codes: Vec<u8> = (0..n * stride)
                .map(|i| {
                    if i % stride < dim {
                        rng.next_u64() as u8
                    } else {
                        0
                    }
                })
                .collect();
            let mut w8 = vec![0i8; stride.div_ceil(64) * 64];
            for w in &mut w8[..dim] {
                *w = (rng.below(255) as i32 - 127) as i8;
            }
            let want: Vec<i32> = codes
                .chunks_exact(stride)
                .map(|c| (0..dim).map(|j| c[j] as i32 * w8[j] as i32).sum())
                .collect();
            let mut isas = vec![CodeIsa::Scalar];
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx2") {
                    isas.push(CodeIsa::Avx2);
                }
                if is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni") {
                    isas.push(CodeIsa::Vnni512);
                }
            }
            for isa in isas {
                let mut out = vec![0i32; n];
                dots(isa, &codes, stride, &w8, &mut out);
                assert_eq!(out, want, "{isa:?} dim {dim}");
            }
        }
    }

    #[test]
    fn candidate_buffer_keeps_what_a_heap_keeps() {
        use crate::topk::{by_row, TopK};
        let mut rng = Rng::new(11);
        let rev = |a: u32, b: u32| b.cmp(&a);
        for round in 0..200 {
            let k = 1 + rng.below(30) as usize;
            let n = rng.below(300) as usize;
            // Few distinct keys: many ties, decided by the tie-break.
            let keys: Vec<(f32, u32)> = (0..n).map(|i| (rng.below(20) as f32, i as u32)).collect();
            let tb: crate::topk::TieBreak<'_> = if round % 2 == 0 { &by_row } else { &rev };
            let mut heap = TopK::new(k);
            let mut a = Cands::new(k);
            let mut b = Cands::new(k);
            for (i, &(key, row)) in keys.iter().enumerate() {
                heap.push(key, row, tb);
                if key <= a.threshold() {
                    a.push(key, row, tb);
                }
                // Half into a second buffer, merged at the end.
                if i % 2 == 0 && key <= b.threshold() {
                    b.push(key, row, tb);
                }
            }
            let mut c = Cands::new(k);
            for &(key, row) in keys.iter().skip(1).step_by(2) {
                c.push(key, row, tb);
            }
            b.merge(c, tb);
            let want: Vec<(f32, u32)> = heap
                .into_sorted(tb)
                .iter()
                .map(|c| (c.key, c.row))
                .collect();
            let got: Vec<(f32, u32)> = a.into_sorted(tb).iter().map(|c| (c.key, c.row)).collect();
            let merged: Vec<(f32, u32)> =
                b.into_sorted(tb).iter().map(|c| (c.key, c.row)).collect();
            assert_eq!(got, want, "k {k} n {n}");
            assert_eq!(merged, want, "k {k} n {n} merged");
        }
    }

    #[test]
    fn candidate_keys_and_range_bounds_hold() {
        let dim = 64;
        let v = data(400, dim, 9);
        let q = data(5, dim, 10);
        for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
            let cos = metric == Metric::Cosine;
            let c = Sq8Codec::train(&v, dim, cos);
            let order: Vec<u32> = (0..400).collect();
            let (codes, xn2) = c.encode_rows(&v, &order, cos);
            let pq = prepare_queries(&q, dim, metric);
            for qv in pq.chunks_exact(dim) {
                let sq = c.prepare(qv, metric);
                let mut out = vec![0i32; 400];
                dots(CodeIsa::Scalar, &codes, c.stride, &sq.w8, &mut out);
                for (r, x) in v.chunks_exact(dim).enumerate() {
                    let approx = sq.key(xn2[r], out[r]);
                    let exact = match metric {
                        Metric::L2 => distance::l2_sq(x, qv),
                        Metric::Ip => -distance::dot(x, qv),
                        Metric::Cosine => -distance::dot(x, qv) / distance::norm(x),
                    };
                    // The exact key lies inside the bounds: a range around it keeps the row,
                    // a range just beyond the bounds on either side drops it.
                    let eps = 1e-6f32.max(exact.abs() * 1e-6);
                    let around = KeyRange {
                        lo: exact - eps,
                        hi: exact + eps,
                    };
                    assert!(sq.may_be_in(approx, &around), "{metric:?} row {r}");
                    // The error is within the documented bounds.
                    let bound = if metric == Metric::L2 {
                        2.0 * sq.dot_err
                            + 2.0 * sq.codec_err * exact.sqrt()
                            + sq.codec_err * sq.codec_err
                    } else {
                        sq.dot_err + sq.codec_err
                    };
                    assert!((approx - exact).abs() <= bound * 1.001, "{approx} {exact}");
                    let far = KeyRange {
                        lo: approx + 2.0 * bound + 1e-3,
                        hi: f32::INFINITY,
                    };
                    assert!(!sq.may_be_in(approx, &far));
                    let below = KeyRange {
                        lo: f32::NEG_INFINITY,
                        hi: approx - 2.0 * bound - 1e-3,
                    };
                    assert!(!sq.may_be_in(approx, &below));
                }
            }
        }
    }
}
