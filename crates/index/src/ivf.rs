//! Inverted-file indexes: `IVF_FLAT` (`f32` copies of the vectors in the lists) and
//! `IVF_SQ8` (8-bit codes in the lists, exact re-ranking).
//!
//! Source: Jégou, Douze, Schmid, *Product quantization for nearest neighbor search*, TPAMI
//! 2011 (inverted file with a k-means coarse quantiser); Milvus's `IVF_FLAT` / `IVF_SQ8`
//! parameters (`nlist` at build, `nprobe` at search).
//!
//! # Build
//! `nlist` centroids are trained with [`crate::kmeans`] (seeded, 10 iterations, at most 64
//! training points per centroid) and every row goes to the list of its nearest centroid
//! (squared L2). A
//! segment with fewer rows than `nlist` gets one list per row: the effective
//! `nlist = min(nlist, rows)` (at least 1), which [`VectorIndex::spec`] reports. Within a
//! list, rows are in increasing order, stored contiguously with their row ids (`u32`):
//! IVF_FLAT copies the `f32` vectors (plus `|x|` per row for COSINE), IVF_SQ8 stores
//! [`crate::sq8`] codes. COSINE trains and assigns on unit-normalised rows.
//!
//! # Search
//! Each query probes the `nprobe` lists whose centroids are nearest (squared L2 for L2 and
//! COSINE, largest inner product for IP), `nprobe = knobs.nprobe` or [`default_nprobe`]
//! (`ceil(3 × nlist / 8)`: recall first), clamped to the effective `nlist`. IVF_FLAT scores every entry of those lists exactly (the
//! same kernels as FLAT, so with `nprobe = nlist` it returns exactly FLAT's answer); IVF_SQ8
//! ranks entries by 8-bit keys and re-scores the best `k × rerank` (at least `k + 16`) with
//! the segment's `f32` vectors.
//!
//! - **Filters**: entries whose row is not set in `allowed` are skipped. When only a
//!   fraction `f` of the rows is allowed, `nprobe` is scaled by `1 / f` (capped at `nlist`)
//!   so about as many allowed rows are visited as without a filter; and if fewer than `k`
//!   allowed rows were found, further lists are probed in centroid order until `k` are
//!   found or every list was probed.
//! - **Range search**: only rows whose exact key is in the range are returned; rows of lists
//!   that were not probed are never seen, so a range search is approximate beyond the
//!   probed lists (the `k`-filling extension above does not apply to range searches).
//! - **Threads**: many queries (`>= 8`) are processed list by list: the queries probing a
//!   list are scored together against it with register-tile kernels (6 rows × 32 queries;
//!   `f32` FMA for IVF_FLAT with exact re-scoring of every entry under the threshold,
//!   VNNI integer dot products for IVF_SQ8), lists in parallel, in two passes (each
//!   query's `nprobe / 16` nearest lists, at most 8, then the others, capped by the
//!   threshold the first pass reached). One query scans its probed lists nearest first,
//!   in parallel groups when they hold enough rows. Probe keys are one FMA chain per
//!   (query, centroid), bit-identical on every path and instruction set, so results never
//!   depend on the path, the batch or the thread count.

use rayon::prelude::*;

use crate::ann::{AnnParams, IndexError, IndexSpec, SearchKnobs, VectorIndex};
use crate::blob::{BlobReader, BlobWriter, Slab};
use crate::distance;
use crate::flat::{count_allowed, is_allowed, prepare_queries, KeyRange, Neighbor};
use crate::kmeans::{assign_with, kmeans, KMeansParams, Rng};
use crate::sq8::{
    self, candidates, check_input, checked_section, code_isa, code_stride, metric_code, metric_of,
    normalise, scan_block, Cands, CodeIsa, Sq8Codec, Sq8Query, SCAN_BLOCK,
};
use crate::Metric;

/// The `nprobe` used when a search gives none, for a segment with `nlist` (effective)
/// lists: `ceil(3 × nlist / 8)`.
///
/// Chosen for recall: on the peers' face128 data (`../shared/peers/ann/gen.py`, dlib-like,
/// one sample per identity, a pessimistic case for any partition), 100k rows and
/// `nlist = 1024`, recall@10 against exact search was 0.9789 at `nprobe = 256`, 0.9898 at
/// 320, 0.9928 at 352 and 0.9946 at 384 (= 3/8); with 5 samples per identity 0.9897 at
/// 256. The genuine mate (top-1 of an enrolled probe) was found as often as by FLAT from
/// `nprobe = 64` (`nlist / 16`) on: searches that only need the mate can set a much smaller
/// `nprobe`.
pub fn default_nprobe(nlist: usize) -> usize {
    (3 * nlist).div_ceil(8).max(1)
}

/// Queries from which a search runs list by list.
const BATCH_MIN_NQ: usize = 8;
/// Queries sharing a list from which the tile kernels run (fewer: one query at a time).
const TILE_MIN_QUERIES: usize = 4;
/// Probed entries from which one query's lists are scanned in parallel.
const PAR_MIN_ENTRIES: usize = 32 * 1024;
/// Batched search: the first pass covers each query's
/// `clamp(nprobe / FIRST_DIVISOR, 1, FIRST_MAX)` nearest lists.
const FIRST_DIVISOR: usize = 16;
/// See [`FIRST_DIVISOR`].
const FIRST_MAX: usize = 8;
/// Rows per register tile.
const TILE_ROWS: usize = 6;
/// Queries per register tile.
const TILE_LANES: usize = 32;

/// Centroids and inverted lists shared by both IVF indexes.
#[derive(Clone)]
struct Lists {
    metric: Metric,
    dim: usize,
    rows: usize,
    nlist: usize,
    /// `nlist × dim` centroids.
    centroids: Slab<f32>,
    /// `nlist + 1` entry offsets: list `l` is entries `offsets[l]..offsets[l + 1]`.
    offsets: Slab<u64>,
    /// Row id of every entry, list by list.
    ids: Slab<u32>,
    /// The centroids transposed for probing (derived, not stored).
    coarse: Coarse,
}

impl Lists {
    fn build(
        metric: Metric,
        vectors: &[f32],
        dim: usize,
        nlist: usize,
        seed: u64,
    ) -> Result<Lists, IndexError> {
        let rows = check_input(vectors, dim)?;
        let nl = nlist.min(rows).max(1);
        let cos = metric == Metric::Cosine;
        if rows == 0 {
            return Ok(Lists {
                metric,
                dim,
                rows,
                nlist: 1,
                centroids: Slab::owned(vec![0.0; dim]),
                offsets: Slab::owned(vec![0, 0]),
                ids: Slab::owned(Vec::new()),
                coarse: Coarse::new(&vec![0.0; dim], dim),
            });
        }
        let params = KMeansParams::new(nl, seed);
        let km = if cos {
            // Train on a normalised sample (k-means samples no further).
            let m = rows.min(nl * params.max_points_per_centroid);
            let mut idx = Rng::new(seed ^ 0x5eed_c051).sample(rows, m);
            idx.sort_unstable();
            let mut train = Vec::with_capacity(m * dim);
            for i in idx {
                let s = train.len();
                train.extend_from_slice(&vectors[i * dim..(i + 1) * dim]);
                normalise(&mut train[s..]);
            }
            kmeans(&train, dim, &params)?
        } else {
            kmeans(vectors, dim, &params)?
        };
        let labels = assign_with(vectors, &km.centroids, dim, |b| {
            if cos {
                b.chunks_exact_mut(dim).for_each(normalise);
            }
        });
        let mut offsets = vec![0u64; nl + 1];
        for &(l, _) in &labels {
            offsets[l as usize + 1] += 1;
        }
        for l in 0..nl {
            offsets[l + 1] += offsets[l];
        }
        let mut pos: Vec<u64> = offsets[..nl].to_vec();
        let mut ids = vec![0u32; rows];
        for (r, &(l, _)) in labels.iter().enumerate() {
            ids[pos[l as usize] as usize] = r as u32;
            pos[l as usize] += 1;
        }
        Ok(Lists {
            metric,
            dim,
            rows,
            nlist: nl,
            coarse: Coarse::new(&km.centroids, dim),
            centroids: Slab::owned(km.centroids),
            offsets: Slab::owned(offsets),
            ids: Slab::owned(ids),
        })
    }

    fn write(&self, w: &mut BlobWriter) {
        w.meta("metric", metric_code(self.metric))
            .meta("rows", self.rows as f64)
            .meta("dim", self.dim as f64)
            .meta("nlist", self.nlist as f64);
        w.section("centroids", &self.centroids)
            .section("offsets", &self.offsets)
            .section("ids", &self.ids);
    }

    fn load(r: &BlobReader) -> Result<Lists, IndexError> {
        let bad = |m: String| IndexError::Corrupt(m);
        let metric = metric_of(r.meta("metric")?)?;
        let rows = r.meta_usize("rows")?;
        let dim = r.meta_usize("dim")?;
        let nlist = r.meta_usize("nlist")?;
        if dim == 0
            || dim > sq8::MAX_DIM
            || rows > u32::MAX as usize
            || nlist == 0
            || nlist > rows.max(1)
        {
            return Err(bad(format!("rows {rows}, dim {dim}, nlist {nlist}")));
        }
        let nd = nlist
            .checked_mul(dim)
            .ok_or_else(|| bad("size".to_string()))?;
        let centroids = checked_section::<f32>(r, "centroids", nd)?;
        let offsets = checked_section::<u64>(r, "offsets", nlist + 1)?;
        let ids = checked_section::<u32>(r, "ids", rows)?;
        if offsets[0] != 0
            || offsets[nlist] != rows as u64
            || offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad("list offsets are inconsistent".into()));
        }
        if ids.iter().any(|&i| i as usize >= rows) {
            return Err(bad("row id out of range".into()));
        }
        if centroids.iter().any(|v| !v.is_finite()) {
            return Err(bad("non-finite centroid".into()));
        }
        Ok(Lists {
            metric,
            dim,
            rows,
            nlist,
            coarse: Coarse::new(&centroids, dim),
            centroids,
            offsets,
            ids,
        })
    }

    fn bytes(&self) -> usize {
        4 * self.centroids.len() + 8 * self.offsets.len() + 4 * self.ids.len()
    }

    /// Lists probed per query, given the search knobs and the number of allowed rows.
    fn nprobe(&self, knobs: &SearchKnobs, allowed_rows: usize) -> usize {
        let base = knobs
            .nprobe
            .unwrap_or_else(|| default_nprobe(self.nlist))
            .clamp(1, self.nlist);
        if allowed_rows >= self.rows || allowed_rows == 0 {
            return base;
        }
        let scaled = (base as u128 * self.rows as u128).div_ceil(allowed_rows as u128);
        scaled.min(self.nlist as u128) as usize
    }

    /// The `np` nearest lists of every prepared query, nearest first (ties: lower list).
    /// Keys come from [`Coarse::keys`], bit-identical whatever the batch or instruction
    /// set, so a query probes the same lists alone or in a batch.
    fn probe(&self, prepared: &[f32], np: usize) -> Vec<Vec<u32>> {
        let (dim, nlist) = (self.dim, self.nlist);
        let np = np.clamp(1, nlist);
        let ip = self.metric == Metric::Ip;
        let padded = self.coarse.padded;
        let select = |keys: &[f32]| -> Vec<u32> {
            // (order-preserving bits of the key, list) packed in a u64: ties by list.
            let mut v: Vec<u64> = keys[..nlist]
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let b = k.to_bits();
                    let o = if b >> 31 == 1 { !b } else { b | 0x8000_0000 };
                    (o as u64) << 32 | i as u64
                })
                .collect();
            if np < nlist {
                v.select_nth_unstable(np - 1);
                v.truncate(np);
            }
            v.sort_unstable();
            v.into_iter().map(|x| x as u32).collect()
        };
        // Groups of 4 queries share each load of the centroids (same keys as one by one).
        let group = |qs: &[f32]| -> Vec<Vec<u32>> {
            let mut keys = vec![0f32; 4 * padded];
            let m = qs.len() / dim;
            if m == 4 {
                self.coarse.keys4(qs, ip, &mut keys);
            } else {
                for (q, out) in qs.chunks_exact(dim).zip(keys.chunks_exact_mut(padded)) {
                    self.coarse.keys(q, ip, out);
                }
            }
            keys.chunks_exact(padded).take(m).map(select).collect()
        };
        if prepared.len() > 4 * dim {
            prepared.par_chunks(4 * dim).flat_map_iter(group).collect()
        } else {
            group(prepared)
        }
    }
}

/// The coarse quantiser laid out for probing: centroids transposed (`dim × padded`,
/// `padded` = `nlist` rounded up to 16; padding never selected) and `|c|²`.
#[derive(Clone)]
struct Coarse {
    padded: usize,
    ct: Vec<f32>,
    cn2: Vec<f32>,
}

impl Coarse {
    fn new(centroids: &[f32], dim: usize) -> Coarse {
        let nlist = centroids.len() / dim;
        let padded = nlist.div_ceil(16) * 16;
        let mut ct = vec![0f32; dim * padded];
        let mut cn2 = vec![f32::INFINITY; padded];
        for (c, x) in centroids.chunks_exact(dim).enumerate() {
            let mut s = 0f32;
            for (j, v) in x.iter().enumerate() {
                ct[j * padded + c] = *v;
                s = v.mul_add(*v, s);
            }
            cn2[c] = s;
        }
        Coarse { padded, ct, cn2 }
    }

    /// [`Coarse::keys`] of 4 queries (`qs`: `4 × dim`; `out`: `4 × padded`), each load of
    /// the centroids serving all 4 (AVX-512); identical keys.
    fn keys4(&self, qs: &[f32], ip: bool, out: &mut [f32]) {
        let dim = qs.len() / 4;
        assert!(out.len() == 4 * self.padded && self.ct.len() == dim * self.padded);
        #[cfg(target_arch = "x86_64")]
        if distance::isa() == distance::Isa::Avx512 {
            // SAFETY: extents asserted above; AVX-512F detected.
            unsafe { x86::coarse_keys4_avx512(&self.ct, self.padded, qs, &self.cn2, ip, out) };
            return;
        }
        for (q, o) in qs.chunks_exact(dim).zip(out.chunks_exact_mut(self.padded)) {
            self.keys(q, ip, o);
        }
    }

    /// Probe keys of every list for one query (`out`: `padded` values): `|c|² − 2 q·c`
    /// (L2, COSINE) or `−q·c` (IP), where `q·c` is one FMA chain over the dimensions in
    /// order, so the AVX-512, AVX2 and scalar versions agree bit for bit.
    fn keys(&self, q: &[f32], ip: bool, out: &mut [f32]) {
        assert!(out.len() == self.padded && self.ct.len() == q.len() * self.padded);
        match distance::isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: extents asserted above; AVX-512F detected.
            distance::Isa::Avx512 => unsafe {
                x86::coarse_keys_avx512(&self.ct, self.padded, q, &self.cn2, ip, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; AVX2 + FMA detected.
            distance::Isa::Avx2 => unsafe {
                x86::coarse_keys_avx2(&self.ct, self.padded, q, &self.cn2, ip, out)
            },
            _ => {
                for (c, o) in out.iter_mut().enumerate() {
                    let mut acc = 0f32;
                    for (j, qj) in q.iter().enumerate() {
                        acc = qj.mul_add(self.ct[j * self.padded + c], acc);
                    }
                    // `0 − acc` as the SIMD versions compute it (`−0.0` would differ).
                    *o = if ip {
                        0.0 - acc
                    } else {
                        acc.mul_add(-2.0, self.cn2[c])
                    };
                }
            }
        }
    }
}

/// Entries of list `l`.
#[inline]
fn span(offsets: &[u64], l: u32) -> (usize, usize) {
    (
        offsets[l as usize] as usize,
        offsets[l as usize + 1] as usize,
    )
}

/// What the two IVF indexes store in their lists and how they score it.
trait Store: Sync {
    /// A query prepared for this store.
    type Query: Sync + Send;
    fn lists(&self) -> &Lists;
    /// Candidates kept per query before [`Store::finish`].
    fn heap(&self, p: &AnnParams<'_>) -> usize;
    fn query(&self, q: &[f32]) -> Self::Query;
    /// Offers entries `s..e` (one list) to `top` for one query (`qv`: prepared `f32`);
    /// keys above `cap` (a threshold known from lists scanned elsewhere) are skipped.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        q: &Self::Query,
        qv: &[f32],
        s: usize,
        e: usize,
        p: &AnnParams<'_>,
        top: &mut Cands,
        cap: f32,
    );
    /// Offers entries `s..e` to the queries `qsel` (indices into `qs`, `tops`, `caps`).
    #[allow(clippy::too_many_arguments)]
    fn scan_batch(
        &self,
        qs: &[Self::Query],
        prepared: &[f32],
        qsel: &[u32],
        s: usize,
        e: usize,
        p: &AnnParams<'_>,
        tops: &mut [Cands],
        caps: &[f32],
    );
    /// The final neighbours of one query from its candidates.
    fn finish(&self, vectors: &[f32], qv: &[f32], top: Cands, p: &AnnParams<'_>) -> Vec<Neighbor>;
}

/// Searches an IVF store (see the module docs).
fn search_ivf<S: Store>(
    st: &S,
    vectors: &[f32],
    queries: &[f32],
    p: &AnnParams<'_>,
) -> Vec<Vec<Neighbor>> {
    let l = st.lists();
    let dim = l.dim;
    assert!(
        vectors.len() == l.rows * dim && queries.len().is_multiple_of(dim),
        "IVF search: vectors must be the {} x {dim} rows the index was built from",
        l.rows
    );
    let nq = queries.len() / dim;
    if l.rows == 0 || p.k == 0 {
        return vec![Vec::new(); nq];
    }
    let allowed_rows = p.allowed.map_or(l.rows, |w| count_allowed(w, l.rows));
    if allowed_rows == 0 {
        return vec![Vec::new(); nq];
    }
    let np = l.nprobe(&p.knobs, allowed_rows);
    let prepared = prepare_queries(queries, dim, l.metric);
    let qs: Vec<S::Query> = prepared.chunks_exact(dim).map(|q| st.query(q)).collect();
    let probes = l.probe(&prepared, np);
    let heap = st.heap(p);
    let offsets: &[u64] = &l.offsets;

    let mut tops: Vec<Cands> = if nq >= BATCH_MIN_NQ {
        // List by list, in two passes: every query's nearest lists first, whose threshold
        // then caps what the other lists may offer (lists are visited in list order, not
        // nearest first, so without the cap most entries would be offered).
        let np_q = probes.first().map_or(0, |p| p.len());
        let first = (np_q / FIRST_DIVISOR).clamp(1, FIRST_MAX).min(np_q);
        let mut tops: Vec<Cands> = (0..nq).map(|_| Cands::new(heap)).collect();
        for (lo, hi) in [(0, first), (first, np_q)] {
            if lo >= hi {
                continue;
            }
            let caps: Vec<f32> = tops.iter().map(|t| t.threshold()).collect();
            let mut by_list: Vec<Vec<u32>> = vec![Vec::new(); l.nlist];
            for (qi, pr) in probes.iter().enumerate() {
                for &li in &pr[lo..hi.min(pr.len())] {
                    by_list[li as usize].push(qi as u32);
                }
            }
            let work: Vec<u32> = (0..l.nlist as u32)
                .filter(|&li| {
                    let (s, e) = span(offsets, li);
                    e > s && !by_list[li as usize].is_empty()
                })
                .collect();
            let fresh = || (0..nq).map(|_| Cands::new(heap)).collect::<Vec<_>>();
            // Few, large splits: every split carries one candidate list per query.
            let min_len = work.len().div_ceil(4 * rayon::current_num_threads()).max(1);
            let found = work
                .par_iter()
                .with_min_len(min_len)
                .fold(fresh, |mut tops, &li| {
                    let (s, e) = span(offsets, li);
                    let qsel = &by_list[li as usize];
                    st.scan_batch(&qs, &prepared, qsel, s, e, p, &mut tops, &caps);
                    tops
                })
                .reduce(fresh, |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        x.merge(y, p.tiebreak);
                    }
                    a
                });
            for (x, y) in tops.iter_mut().zip(found) {
                x.merge(y, p.tiebreak);
            }
        }
        tops
    } else {
        let one = |qi: usize| -> Cands {
            let qv = &prepared[qi * dim..(qi + 1) * dim];
            scan_lists(st, &qs[qi], qv, &probes[qi], heap, p)
        };
        if nq == 1 {
            vec![one(0)]
        } else {
            (0..nq).into_par_iter().map(one).collect()
        }
    };

    // Too few allowed rows found: probe further lists, nearest first (not for ranges).
    if p.range == KeyRange::ALL && np < l.nlist {
        let short: Vec<usize> = (0..nq).filter(|&qi| tops[qi].len() < p.k).collect();
        let extended: Vec<(usize, Cands)> = short
            .into_par_iter()
            .map(|qi| {
                let qv = &prepared[qi * dim..(qi + 1) * dim];
                let mut top = tops[qi].clone();
                let order = &l.probe(qv, l.nlist)[0];
                for &li in &order[np..] {
                    let (s, e) = span(offsets, li);
                    st.scan(&qs[qi], qv, s, e, p, &mut top, f32::INFINITY);
                    if top.len() >= p.k {
                        break;
                    }
                }
                (qi, top)
            })
            .collect();
        for (qi, top) in extended {
            tops[qi] = top;
        }
    }

    let finish =
        |(qi, t): (usize, Cands)| st.finish(vectors, &prepared[qi * dim..(qi + 1) * dim], t, p);
    if nq > 1 {
        tops.into_par_iter().enumerate().map(finish).collect()
    } else {
        tops.into_iter().enumerate().map(finish).collect()
    }
}

/// One query over its probed lists; in parallel groups of lists when they are large.
fn scan_lists<S: Store>(
    st: &S,
    q: &S::Query,
    qv: &[f32],
    lists: &[u32],
    heap: usize,
    p: &AnnParams<'_>,
) -> Cands {
    let l = st.lists();
    let offsets: &[u64] = &l.offsets;
    let total: usize = lists
        .iter()
        .map(|&li| {
            let (s, e) = span(offsets, li);
            e - s
        })
        .sum();
    let threads = rayon::current_num_threads();
    let seq = |group: &[u32], cap: f32| {
        let mut top = Cands::new(heap);
        for &li in group {
            let (s, e) = span(offsets, li);
            st.scan(q, qv, s, e, p, &mut top, cap);
        }
        top
    };
    if threads <= 1 || total < PAR_MIN_ENTRIES || lists.len() < 3 {
        return seq(lists, f32::INFINITY);
    }
    // The nearest list first; its threshold caps the others, scanned in parallel in
    // contiguous groups of about equal entry counts.
    let first = seq(&lists[..1], f32::INFINITY);
    let cap = first.threshold();
    let rest = &lists[1..];
    let groups = (threads * 2).min(rest.len());
    let per = total.div_ceil(groups);
    let mut cuts = vec![0];
    let mut acc = 0;
    for (i, &li) in rest.iter().enumerate() {
        let (s, e) = span(offsets, li);
        acc += e - s;
        if acc >= per && i + 1 < rest.len() {
            cuts.push(i + 1);
            acc = 0;
        }
    }
    cuts.push(rest.len());
    cuts.windows(2)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|w| seq(&rest[w[0]..w[1]], cap))
        .reduce_with(|mut a, b| {
            a.merge(b, p.tiebreak);
            a
        })
        .map_or(first.clone(), |mut a| {
            a.merge(first, p.tiebreak);
            a
        })
}

/// `IVF_FLAT`: inverted lists holding `f32` copies of the vectors (see the module docs).
///
/// Memory: `4 × dim + 4` bytes per row (`+ 4` for COSINE's norms) plus `nlist × dim × 4`
/// for the centroids.
pub struct IvfFlatIndex {
    lists: Lists,
    /// Entries' vectors, list by list (`rows × dim`).
    vectors: Slab<f32>,
    /// `|x|` per entry (COSINE only; empty otherwise).
    norms: Slab<f32>,
}

impl IvfFlatIndex {
    /// Builds an IVF_FLAT index over `vectors` (`rows × dim`, row-major) with at most
    /// `nlist` lists, deterministically for `seed`.
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] for `nlist` outside `1..=65536`, `dim == 0`, a length
    /// not a multiple of `dim`, more than `2^32 - 1` rows, or a NaN / infinite value.
    pub fn build(
        metric: Metric,
        vectors: &[f32],
        dim: usize,
        nlist: usize,
        seed: u64,
    ) -> Result<IvfFlatIndex, IndexError> {
        IndexSpec::IvfFlat { nlist }.validate()?;
        let lists = Lists::build(metric, vectors, dim, nlist, seed)?;
        let mut v = vec![0f32; lists.rows * dim];
        v.par_chunks_mut(dim * 1024)
            .zip(lists.ids.par_chunks(1024))
            .for_each(|(out, ids)| {
                for (o, &r) in out.chunks_exact_mut(dim).zip(ids) {
                    let r = r as usize;
                    o.copy_from_slice(&vectors[r * dim..(r + 1) * dim]);
                }
            });
        let norms: Vec<f32> = if metric == Metric::Cosine {
            let dot = distance::dot_kernel();
            v.par_chunks(dim).map(|x| dot(x, x).sqrt()).collect()
        } else {
            Vec::new()
        };
        Ok(IvfFlatIndex {
            lists,
            vectors: Slab::owned(v),
            norms: Slab::owned(norms),
        })
    }

    /// Opens an index written by [`VectorIndex::to_blob`], in place.
    ///
    /// # Errors
    /// [`IndexError::Corrupt`] for missing or inconsistent sections.
    pub fn load(r: &BlobReader) -> Result<IvfFlatIndex, IndexError> {
        let lists = Lists::load(r)?;
        let n = lists.rows;
        // rows < 2^32 and dim <= MAX_DIM: no overflow.
        let vectors = checked_section(r, "vectors", n * lists.dim)?;
        let norms = checked_section(
            r,
            "norms",
            if lists.metric == Metric::Cosine { n } else { 0 },
        )?;
        Ok(IvfFlatIndex {
            lists,
            vectors,
            norms,
        })
    }

    /// Exact key of entry `e` (same kernels and formula as FLAT's re-scoring).
    #[inline(always)]
    fn key(&self, kern: &Kernels, x: &[f32], q: &[f32], norms: &[f32], e: usize) -> f32 {
        match self.lists.metric {
            Metric::L2 => (kern.l2)(x, q),
            Metric::Ip => -(kern.dot)(x, q),
            Metric::Cosine => {
                let nx = norms[e];
                if nx == 0.0 {
                    -0.0
                } else {
                    -((kern.dot)(x, q) / nx)
                }
            }
        }
    }
}

/// The row kernels of this CPU.
struct Kernels {
    l2: distance::Kernel,
    dot: distance::Kernel,
    l2_rows: distance::RowsKernel,
    dot_rows: distance::RowsKernel,
}

impl Kernels {
    fn get() -> Kernels {
        Kernels {
            l2: distance::l2_sq_kernel(),
            dot: distance::dot_kernel(),
            l2_rows: distance::l2_sq_rows_kernel(),
            dot_rows: distance::dot_rows_kernel(),
        }
    }
}

impl Store for IvfFlatIndex {
    type Query = ();
    fn lists(&self) -> &Lists {
        &self.lists
    }
    fn heap(&self, p: &AnnParams<'_>) -> usize {
        p.k
    }
    fn query(&self, _q: &[f32]) {}

    fn scan(
        &self,
        _q: &(),
        qv: &[f32],
        s: usize,
        e: usize,
        p: &AnnParams<'_>,
        top: &mut Cands,
        cap: f32,
    ) {
        let dim = self.lists.dim;
        let kern = Kernels::get();
        let ids: &[u32] = &self.lists.ids;
        let vecs: &[f32] = &self.vectors;
        let norms: &[f32] = &self.norms;
        if p.allowed.is_some() {
            for i in s..e {
                let row = ids[i];
                if !is_allowed(p.allowed, row as usize) {
                    continue;
                }
                let key = self.key(&kern, &vecs[i * dim..(i + 1) * dim], qv, norms, i);
                if key <= top.threshold().min(cap) && p.range.contains(key) {
                    top.push(key, row, p.tiebreak);
                }
            }
            return;
        }
        let mut buf = [0f32; 256];
        let mut b = s;
        while b < e {
            let be = (b + buf.len()).min(e);
            let out = &mut buf[..be - b];
            let rows = &vecs[b * dim..be * dim];
            match self.lists.metric {
                Metric::L2 => (kern.l2_rows)(rows, dim, qv, out),
                Metric::Ip => {
                    (kern.dot_rows)(rows, dim, qv, out);
                    out.iter_mut().for_each(|v| *v = -*v);
                }
                Metric::Cosine => {
                    (kern.dot_rows)(rows, dim, qv, out);
                    for (v, &nx) in out.iter_mut().zip(&norms[b..be]) {
                        *v = if nx == 0.0 { -0.0 } else { -(*v / nx) };
                    }
                }
            }
            for (i, &key) in out.iter().enumerate() {
                if key <= top.threshold().min(cap) && p.range.contains(key) {
                    top.push(key, ids[b + i], p.tiebreak);
                }
            }
            b = be;
        }
    }

    fn scan_batch(
        &self,
        _qs: &[()],
        prepared: &[f32],
        qsel: &[u32],
        s: usize,
        e: usize,
        p: &AnnParams<'_>,
        tops: &mut [Cands],
        caps: &[f32],
    ) {
        let dim = self.lists.dim;
        #[cfg(target_arch = "x86_64")]
        if qsel.len() >= TILE_MIN_QUERIES && distance::isa() == distance::Isa::Avx512 {
            self.tile_scan(prepared, qsel, s, e, p, tops, caps);
            return;
        }
        for &qi in qsel {
            let qi = qi as usize;
            let qv = &prepared[qi * dim..(qi + 1) * dim];
            let cap = caps.get(qi).copied().unwrap_or(f32::INFINITY);
            self.scan(&(), qv, s, e, p, &mut tops[qi], cap);
        }
    }

    fn finish(&self, _v: &[f32], _qv: &[f32], top: Cands, p: &AnnParams<'_>) -> Vec<Neighbor> {
        let m = self.lists.metric;
        top.into_sorted(p.tiebreak)
            .into_iter()
            .map(|c| Neighbor {
                row: c.row,
                score: m.score(c.key),
            })
            .collect()
    }
}

impl IvfFlatIndex {
    /// Entries `s..e` against the queries `qsel` with the `f32` tile kernel: approximate keys
    /// (`|x|² + |q|² − 2 q·x`, `−q·x`, `−q·x / |x|`) select entries within a rounding bound
    /// of each query's threshold, which are then scored exactly (as [`Store::scan`] does), so
    /// the candidates are exactly those of the one-query path.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    fn tile_scan(
        &self,
        prepared: &[f32],
        qsel: &[u32],
        s: usize,
        e: usize,
        p: &AnnParams<'_>,
        tops: &mut [Cands],
        caps: &[f32],
    ) {
        let cap = |qi: usize| caps.get(qi).copied().unwrap_or(f32::INFINITY);
        let dim = self.lists.dim;
        let metric = self.lists.metric;
        let kern = Kernels::get();
        let ids: &[u32] = &self.lists.ids;
        let vecs: &[f32] = &self.vectors[s * dim..e * dim];
        let norms: &[f32] = &self.norms;
        let m = e - s;
        // |x|² per entry, and the largest, for the keys and the rounding bound.
        let xn2: Vec<f32> = vecs.chunks_exact(dim).map(|x| (kern.dot)(x, x)).collect();
        let xmax2 = xn2.iter().fold(0f32, |a, &b| a.max(b));
        // Relative rounding bound of an f32 dot product / squared distance of `dim` terms.
        let eps = (4 * dim + 16) as f32 * f32::EPSILON;
        let tiles = qsel.len().div_ceil(TILE_LANES);
        let mut qp = vec![0f32; tiles * dim * TILE_LANES];
        let mut qn2 = vec![0f32; tiles * TILE_LANES];
        let mut tol = vec![0f32; tiles * TILE_LANES];
        for (i, &qi) in qsel.iter().enumerate() {
            let q = &prepared[qi as usize * dim..(qi as usize + 1) * dim];
            let (t, lane) = (i / TILE_LANES, i % TILE_LANES);
            for (j, v) in q.iter().enumerate() {
                qp[t * dim * TILE_LANES + j * TILE_LANES + lane] = *v;
            }
            let n2 = (kern.dot)(q, q);
            (qn2[i], tol[i]) = match metric {
                Metric::L2 => (n2, eps * (xmax2 + n2)),
                Metric::Ip => (0.0, eps * (xmax2 * n2).sqrt()),
                Metric::Cosine => (0.0, eps * n2.sqrt()),
            };
        }
        let mut thr = vec![f32::NEG_INFINITY; tiles * TILE_LANES];
        let refresh = |thr: &mut [f32], i: usize, qi: usize, top: &Cands| {
            thr[i] = top.threshold().min(cap(qi)).min(p.range.hi) + tol[i];
        };
        for (i, &qi) in qsel.iter().enumerate() {
            refresh(&mut thr, i, qi as usize, &tops[qi as usize]);
        }
        let mut tail = vec![0f32; TILE_ROWS * dim];
        let mut keys = [0f32; TILE_ROWS * TILE_LANES];
        let mut add = [0f32; TILE_ROWS];
        let mut mul = [0f32; TILE_ROWS];
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(TILE_ROWS);
            let mut live: u32 = 0;
            for l in 0..rows {
                if is_allowed(p.allowed, ids[s + r + l] as usize) {
                    live |= 1 << l;
                }
            }
            if live == 0 {
                r += rows;
                continue;
            }
            let xs: &[f32] = if rows == TILE_ROWS {
                &vecs[r * dim..(r + TILE_ROWS) * dim]
            } else {
                tail.fill(0.0);
                tail[..rows * dim].copy_from_slice(&vecs[r * dim..(r + rows) * dim]);
                &tail
            };
            for l in 0..TILE_ROWS {
                (add[l], mul[l]) = if l >= rows {
                    (0.0, 0.0)
                } else {
                    match metric {
                        Metric::L2 => (xn2[r + l], -2.0),
                        Metric::Ip => (0.0, -1.0),
                        Metric::Cosine => {
                            let nx = norms[s + r + l];
                            (0.0, if nx == 0.0 { 0.0 } else { -1.0 / nx })
                        }
                    }
                };
            }
            for t in 0..tiles {
                let mut hits = [0u32; TILE_ROWS];
                // SAFETY: xs holds TILE_ROWS rows of dim; qp tile t holds dim × 32; qn2 and
                // thr hold 32 lanes from t * 32; keys TILE_ROWS × 32. AVX-512F was detected.
                unsafe {
                    x86::tile_6x32_f32(
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
                    let mut mask = if live & (1 << l) != 0 { h } else { 0 };
                    while mask != 0 {
                        let lane = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        let i = t * TILE_LANES + lane;
                        let Some(&qi) = qsel.get(i) else { continue };
                        let qi = qi as usize;
                        let ent = s + r + l;
                        let qv = &prepared[qi * dim..(qi + 1) * dim];
                        let x = &vecs[(r + l) * dim..(r + l + 1) * dim];
                        let key = self.key(&kern, x, qv, norms, ent);
                        let top = &mut tops[qi];
                        if key <= top.threshold().min(cap(qi)) && p.range.contains(key) {
                            top.push(key, ids[ent], p.tiebreak);
                            refresh(&mut thr, i, qi, top);
                        }
                    }
                }
            }
            r += rows;
        }
    }
}

impl VectorIndex for IvfFlatIndex {
    fn spec(&self) -> IndexSpec {
        IndexSpec::IvfFlat {
            nlist: self.lists.nlist,
        }
    }
    fn metric(&self) -> Metric {
        self.lists.metric
    }
    fn rows(&self) -> usize {
        self.lists.rows
    }
    fn dim(&self) -> usize {
        self.lists.dim
    }
    fn search(&self, vectors: &[f32], queries: &[f32], p: &AnnParams<'_>) -> Vec<Vec<Neighbor>> {
        search_ivf(self, vectors, queries, p)
    }
    fn to_blob(&self) -> Vec<u8> {
        let mut w = BlobWriter::new("IVF_FLAT");
        self.lists.write(&mut w);
        w.section("vectors", &self.vectors)
            .section("norms", &self.norms);
        w.finish()
    }
    fn bytes(&self) -> usize {
        self.lists.bytes() + 4 * (self.vectors.len() + self.norms.len())
    }
}

/// `IVF_SQ8`: inverted lists holding 8-bit codes; candidates re-ranked exactly (see the
/// module docs and [`crate::sq8`]).
///
/// Memory: `stride + 4 + 4` bytes per row (codes, row id, `|x̂|²` for L2; `stride = dim`
/// rounded up to 16) plus the centroids.
pub struct IvfSq8Index {
    lists: Lists,
    codec: Sq8Codec,
    /// Entries' codes, list by list (`rows × stride`).
    codes: Slab<u8>,
    /// `|x̂|²` per entry (L2 only; empty otherwise).
    xn2: Slab<f32>,
}

impl IvfSq8Index {
    /// Builds an IVF_SQ8 index over `vectors` (`rows × dim`, row-major) with at most `nlist`
    /// lists, deterministically for `seed`.
    ///
    /// # Errors
    /// As [`IvfFlatIndex::build`].
    pub fn build(
        metric: Metric,
        vectors: &[f32],
        dim: usize,
        nlist: usize,
        seed: u64,
    ) -> Result<IvfSq8Index, IndexError> {
        IndexSpec::IvfSq8 { nlist }.validate()?;
        let lists = Lists::build(metric, vectors, dim, nlist, seed)?;
        let cos = metric == Metric::Cosine;
        let codec = Sq8Codec::train(vectors, dim, cos);
        let (codes, mut xn2) = codec.encode_rows(vectors, &lists.ids, cos);
        if metric != Metric::L2 {
            xn2 = Vec::new();
        }
        Ok(IvfSq8Index {
            lists,
            codec,
            codes: Slab::owned(codes),
            xn2: Slab::owned(xn2),
        })
    }

    /// Opens an index written by [`VectorIndex::to_blob`], in place.
    ///
    /// # Errors
    /// [`IndexError::Corrupt`] for missing or inconsistent sections.
    pub fn load(r: &BlobReader) -> Result<IvfSq8Index, IndexError> {
        let lists = Lists::load(r)?;
        let (n, dim) = (lists.rows, lists.dim);
        let stride = code_stride(dim);
        let codec = Sq8Codec {
            dim,
            stride,
            min: checked_section(r, "sq_min", dim)?,
            step: checked_section(r, "sq_step", dim)?,
        };
        // rows < 2^32 and dim <= MAX_DIM: no overflow.
        let codes = checked_section(r, "codes", n * stride)?;
        let xn2 = checked_section(r, "xn2", if lists.metric == Metric::L2 { n } else { 0 })?;
        Ok(IvfSq8Index {
            lists,
            codec,
            codes,
            xn2,
        })
    }
}

impl Store for IvfSq8Index {
    type Query = Sq8Query;
    fn lists(&self) -> &Lists {
        &self.lists
    }
    fn heap(&self, p: &AnnParams<'_>) -> usize {
        candidates(p.k, p.knobs.rerank)
    }
    fn query(&self, q: &[f32]) -> Sq8Query {
        self.codec.prepare(q, self.lists.metric)
    }

    fn scan(
        &self,
        q: &Sq8Query,
        _qv: &[f32],
        s: usize,
        e: usize,
        p: &AnnParams<'_>,
        top: &mut Cands,
        cap: f32,
    ) {
        let stride = self.codec.stride;
        let ids: &[u32] = &self.lists.ids;
        let xn2: &[f32] = &self.xn2;
        let mut buf = [0i32; SCAN_BLOCK];
        scan_block(
            code_isa(),
            &self.codes[s * stride..e * stride],
            stride,
            if q.l2 { &xn2[s..e] } else { &[] },
            q,
            |i| ids[s + i],
            p.allowed,
            &p.range,
            top,
            cap,
            p.tiebreak,
            &mut buf,
        );
    }

    fn scan_batch(
        &self,
        qs: &[Sq8Query],
        prepared: &[f32],
        qsel: &[u32],
        s: usize,
        e: usize,
        p: &AnnParams<'_>,
        tops: &mut [Cands],
        caps: &[f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if qsel.len() >= TILE_MIN_QUERIES && code_isa() == CodeIsa::Vnni512 {
            let stride = self.codec.stride;
            let ids: &[u32] = &self.lists.ids;
            let xn2: &[f32] = &self.xn2;
            let tq = sq8::TileQueries::new(qs, qsel, stride);
            sq8::tile_scan(
                &self.codes[s * stride..e * stride],
                stride,
                if xn2.is_empty() { xn2 } else { &xn2[s..e] },
                |i| ids[s + i],
                qs,
                qsel,
                &tq,
                p,
                tops,
                caps,
            );
            return;
        }
        let dim = self.lists.dim;
        for &qi in qsel {
            let qi = qi as usize;
            let cap = caps.get(qi).copied().unwrap_or(f32::INFINITY);
            let qv = &prepared[qi * dim..(qi + 1) * dim];
            self.scan(&qs[qi], qv, s, e, p, &mut tops[qi], cap);
        }
    }

    fn finish(&self, vectors: &[f32], qv: &[f32], top: Cands, p: &AnnParams<'_>) -> Vec<Neighbor> {
        sq8::rerank(self.lists.metric, vectors, self.lists.dim, qv, top, p)
    }
}

impl VectorIndex for IvfSq8Index {
    fn spec(&self) -> IndexSpec {
        IndexSpec::IvfSq8 {
            nlist: self.lists.nlist,
        }
    }
    fn metric(&self) -> Metric {
        self.lists.metric
    }
    fn rows(&self) -> usize {
        self.lists.rows
    }
    fn dim(&self) -> usize {
        self.lists.dim
    }
    fn search(&self, vectors: &[f32], queries: &[f32], p: &AnnParams<'_>) -> Vec<Vec<Neighbor>> {
        search_ivf(self, vectors, queries, p)
    }
    fn to_blob(&self) -> Vec<u8> {
        let mut w = BlobWriter::new("IVF_SQ8");
        self.lists.write(&mut w);
        w.section("sq_min", &self.codec.min)
            .section("sq_step", &self.codec.step)
            .section("codes", &self.codes)
            .section("xn2", &self.xn2);
        w.finish()
    }
    fn bytes(&self) -> usize {
        self.lists.bytes() + self.codes.len() + 4 * (self.xn2.len() + 2 * self.codec.dim)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::Coarse::keys`] on AVX-512: 8 blocks of 16 lists per pass.
    /// Caller: `ct` holds `q.len() × padded`, `cn2` and `out` `padded` (a multiple of 16).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn coarse_keys_avx512(
        ct: &[f32],
        padded: usize,
        q: &[f32],
        cn2: &[f32],
        ip: bool,
        out: &mut [f32],
    ) {
        const B: usize = 8;
        let (pc, pn, po) = (ct.as_ptr(), cn2.as_ptr(), out.as_mut_ptr());
        let m2 = _mm512_set1_ps(-2.0);
        let mut c = 0;
        // SAFETY: every load reads 16 lanes at j * padded + c + 16 i < (j + 1) * padded.
        unsafe {
            while c < padded {
                let blocks = ((padded - c) / 16).min(B);
                let mut acc = [_mm512_setzero_ps(); B];
                for (j, &qj) in q.iter().enumerate() {
                    let qv = _mm512_set1_ps(qj);
                    let row = pc.add(j * padded + c);
                    if blocks == B {
                        for (i, a) in acc.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(qv, _mm512_loadu_ps(row.add(i * 16)), *a);
                        }
                    } else {
                        for (i, a) in acc.iter_mut().enumerate().take(blocks) {
                            *a = _mm512_fmadd_ps(qv, _mm512_loadu_ps(row.add(i * 16)), *a);
                        }
                    }
                }
                for (i, a) in acc.iter().enumerate().take(blocks) {
                    let k = if ip {
                        _mm512_sub_ps(_mm512_setzero_ps(), *a)
                    } else {
                        _mm512_fmadd_ps(*a, m2, _mm512_loadu_ps(pn.add(c + i * 16)))
                    };
                    _mm512_storeu_ps(po.add(c + i * 16), k);
                }
                c += blocks * 16;
            }
        }
    }

    /// [`super::Coarse::keys4`] on AVX-512: 2 blocks of 16 lists × 4 queries per pass.
    /// Caller: `ct` holds `dim × padded`, `qs` `4 × dim`, `cn2` `padded`, `out` `4 × padded`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn coarse_keys4_avx512(
        ct: &[f32],
        padded: usize,
        qs: &[f32],
        cn2: &[f32],
        ip: bool,
        out: &mut [f32],
    ) {
        let dim = qs.len() / 4;
        let (pc, pn, po, pq) = (ct.as_ptr(), cn2.as_ptr(), out.as_mut_ptr(), qs.as_ptr());
        let m2 = _mm512_set1_ps(-2.0);
        let mut c = 0;
        // SAFETY: loads of 16 lanes at j * padded + c (+ 16) < (j + 1) * padded; the query
        // reads stay in 4 × dim; stores in 4 × padded.
        unsafe {
            while c < padded {
                let blocks = ((padded - c) / 16).min(2);
                let mut a0 = [_mm512_setzero_ps(); 4];
                let mut a1 = [_mm512_setzero_ps(); 4];
                for j in 0..dim {
                    let row = pc.add(j * padded + c);
                    let x0 = _mm512_loadu_ps(row);
                    let x1 = if blocks == 2 {
                        _mm512_loadu_ps(row.add(16))
                    } else {
                        _mm512_setzero_ps()
                    };
                    for qi in 0..4 {
                        let qv = _mm512_set1_ps(*pq.add(qi * dim + j));
                        a0[qi] = _mm512_fmadd_ps(qv, x0, a0[qi]);
                        a1[qi] = _mm512_fmadd_ps(qv, x1, a1[qi]);
                    }
                }
                for (b, accs) in [a0, a1].iter().enumerate().take(blocks) {
                    let n2 = _mm512_loadu_ps(pn.add(c + b * 16));
                    for (qi, a) in accs.iter().enumerate() {
                        let k = if ip {
                            _mm512_sub_ps(_mm512_setzero_ps(), *a)
                        } else {
                            _mm512_fmadd_ps(*a, m2, n2)
                        };
                        _mm512_storeu_ps(po.add(qi * padded + c + b * 16), k);
                    }
                }
                c += blocks * 16;
            }
        }
    }

    /// [`super::Coarse::keys`] on AVX2 + FMA: 8 blocks of 8 lists per pass. Caller: as
    /// [`coarse_keys_avx512`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn coarse_keys_avx2(
        ct: &[f32],
        padded: usize,
        q: &[f32],
        cn2: &[f32],
        ip: bool,
        out: &mut [f32],
    ) {
        const B: usize = 8;
        let (pc, pn, po) = (ct.as_ptr(), cn2.as_ptr(), out.as_mut_ptr());
        let m2 = _mm256_set1_ps(-2.0);
        let mut c = 0;
        // SAFETY: every load reads 8 lanes at j * padded + c + 8 i < (j + 1) * padded.
        unsafe {
            while c < padded {
                let blocks = ((padded - c) / 8).min(B);
                let mut acc = [_mm256_setzero_ps(); B];
                for (j, &qj) in q.iter().enumerate() {
                    let qv = _mm256_set1_ps(qj);
                    let row = pc.add(j * padded + c);
                    for (i, a) in acc.iter_mut().enumerate().take(blocks) {
                        *a = _mm256_fmadd_ps(qv, _mm256_loadu_ps(row.add(i * 8)), *a);
                    }
                }
                for (i, a) in acc.iter().enumerate().take(blocks) {
                    let k = if ip {
                        _mm256_sub_ps(_mm256_setzero_ps(), *a)
                    } else {
                        _mm256_fmadd_ps(*a, m2, _mm256_loadu_ps(pn.add(c + i * 8)))
                    };
                    _mm256_storeu_ps(po.add(c + i * 8), k);
                }
                c += blocks * 8;
            }
        }
    }

    /// 6 rows × 32 queries of `f32` inner products:
    /// `keys[l * 32 + lane] = add[l] + qn2[lane] + mul[l] * (x_l · q_lane)`, `hits[l]` the
    /// lanes with `key <= thr[lane]`.
    ///
    /// Caller: `x` holds 6 rows of `dim`, `qp` the queries transposed (`dim × 32`), `qn2`
    /// and `thr` 32 lanes, `keys` 6 × 32.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_6x32_f32(
        x: *const f32,
        dim: usize,
        qp: *const f32,
        add: &[f32; 6],
        mul: &[f32; 6],
        qn2: *const f32,
        thr: *const f32,
        keys: *mut f32,
        hits: &mut [u32; 6],
    ) {
        // SAFETY: the caller guarantees the extents above.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; 6];
            for j in 0..dim {
                let q0 = _mm512_loadu_ps(qp.add(j * 32));
                let q1 = _mm512_loadu_ps(qp.add(j * 32 + 16));
                for (l, a) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*x.add(l * dim + j));
                    a[0] = _mm512_fmadd_ps(b, q0, a[0]);
                    a[1] = _mm512_fmadd_ps(b, q1, a[1]);
                }
            }
            for (l, a) in acc.iter().enumerate() {
                let m = _mm512_set1_ps(mul[l]);
                let ad = _mm512_set1_ps(add[l]);
                let mut h = 0u32;
                for (i, av) in a.iter().enumerate() {
                    let qn = _mm512_loadu_ps(qn2.add(i * 16));
                    let k = _mm512_fmadd_ps(*av, m, _mm512_add_ps(ad, qn));
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

    #[test]
    fn probe_keys_agree_bit_for_bit_on_every_path() {
        let mut rng = Rng::new(3);
        let mut f = || (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        for (nlist, dim) in [(37, 16), (300, 128), (16, 5)] {
            let centroids: Vec<f32> = (0..nlist * dim).map(|_| f()).collect();
            let qs: Vec<f32> = (0..4 * dim).map(|_| f()).collect();
            let c = Coarse::new(&centroids, dim);
            for ip in [false, true] {
                // Reference: one sequential FMA chain per (query, list).
                let mut want = vec![0f32; 4 * c.padded];
                for (qi, q) in qs.chunks_exact(dim).enumerate() {
                    for l in 0..nlist {
                        let mut acc = 0f32;
                        for j in 0..dim {
                            acc = q[j].mul_add(centroids[l * dim + j], acc);
                        }
                        want[qi * c.padded + l] = if ip {
                            0.0 - acc
                        } else {
                            acc.mul_add(-2.0, c.cn2[l])
                        };
                    }
                }
                let mut one = vec![0f32; 4 * c.padded];
                for (q, o) in qs.chunks_exact(dim).zip(one.chunks_exact_mut(c.padded)) {
                    c.keys(q, ip, o);
                }
                let mut four = vec![0f32; 4 * c.padded];
                c.keys4(&qs, ip, &mut four);
                for qi in 0..4 {
                    let r = qi * c.padded..qi * c.padded + nlist;
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&one[r.clone()]),
                        bits(&want[r.clone()]),
                        "{nlist} {dim}"
                    );
                    assert_eq!(bits(&four[r.clone()]), bits(&want[r]), "{nlist} {dim} x4");
                }
                #[cfg(target_arch = "x86_64")]
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    let mut avx2 = vec![0f32; c.padded];
                    // SAFETY: AVX2 + FMA detected; extents as Coarse::keys asserts.
                    unsafe {
                        x86::coarse_keys_avx2(&c.ct, c.padded, &qs[..dim], &c.cn2, ip, &mut avx2)
                    };
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&avx2[..nlist]), bits(&want[..nlist]), "avx2");
                }
            }
        }
    }
}
