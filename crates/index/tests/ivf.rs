//! IVF_FLAT, IVF_SQ8 and SQ8 against exact FLAT search, through the public interface.

use std::sync::Arc;

use facedb_index::blob::BlobWriter;
use facedb_index::ivf::default_nprobe;
use facedb_index::{
    build_index, by_row, flat_search, load_index, AnnParams, FlatParams, IndexError, IndexSpec,
    KeyRange, Metric, Neighbor, SearchKnobs,
};
use rand::{Rng, SeedableRng};

const METRICS: [Metric; 3] = [Metric::L2, Metric::Ip, Metric::Cosine];

fn normal(rng: &mut impl Rng) -> f32 {
    // Box-Muller.
    let u: f64 = rng.gen_range(1e-12..1.0);
    let v: f64 = rng.gen();
    ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
}

/// Face-like data: `ids` identities (centres with norm ~0.8), `per` samples each (noise
/// ~0.3 per sample), in identity-major order; queries are fresh samples of the first
/// `nq` identities (one each).
fn faces(ids: usize, per: usize, nq: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sc = 0.8 / (dim as f32).sqrt();
    let sn = 0.3 / (dim as f32).sqrt();
    let centres: Vec<f32> = (0..ids * dim).map(|_| normal(&mut rng) * sc).collect();
    let sample = |c: usize, rng: &mut rand::rngs::StdRng| -> Vec<f32> {
        (0..dim)
            .map(|j| centres[c * dim + j] + normal(rng) * sn)
            .collect()
    };
    let mut base = Vec::with_capacity(ids * per * dim);
    for c in 0..ids {
        for _ in 0..per {
            base.extend(sample(c, &mut rng));
        }
    }
    let mut q = Vec::new();
    for c in 0..nq {
        q.extend(sample(c * 7 % ids, &mut rng));
    }
    (base, q)
}

fn flat(
    v: &[f32],
    dim: usize,
    q: &[f32],
    metric: Metric,
    k: usize,
    range: KeyRange,
    allowed: Option<&[u64]>,
) -> Vec<Vec<Neighbor>> {
    let p = FlatParams {
        metric,
        k,
        range,
        allowed,
        tiebreak: &by_row,
    };
    flat_search(v, dim, q, &p)
}

fn params(k: usize, range: KeyRange, allowed: Option<&[u64]>, knobs: SearchKnobs) -> AnnParams<'_> {
    AnnParams {
        k,
        range,
        allowed,
        tiebreak: &by_row,
        knobs,
    }
}

/// Exact score of `row` for a query, with FLAT on that row alone.
fn exact_score(v: &[f32], dim: usize, q: &[f32], metric: Metric, row: u32) -> f32 {
    let n = v.len() / dim;
    let mut words = vec![0u64; n.div_ceil(64)];
    words[row as usize / 64] |= 1 << (row % 64);
    flat(v, dim, q, metric, 1, KeyRange::ALL, Some(&words))[0][0].score
}

fn random_bitmap(n: usize, keep_per_mille: u32, seed: u64) -> Vec<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut w = vec![0u64; n.div_ceil(64)];
    for r in 0..n {
        if rng.gen_range(0..1000) < keep_per_mille {
            w[r / 64] |= 1 << (r % 64);
        }
    }
    w
}

fn is_set(w: &[u64], r: u32) -> bool {
    (w[r as usize / 64] >> (r % 64)) & 1 == 1
}

fn recall(got: &[Vec<Neighbor>], want: &[Vec<Neighbor>], k: usize) -> f64 {
    let mut hit = 0;
    for (g, w) in got.iter().zip(want) {
        let truth: Vec<u32> = w.iter().take(k).map(|n| n.row).collect();
        hit += g.iter().take(k).filter(|n| truth.contains(&n.row)).count();
    }
    hit as f64 / (want.len() * k) as f64
}

#[test]
fn ivf_flat_with_every_list_probed_equals_flat() {
    let dim = 24;
    let (v, q) = faces(300, 4, 20, dim, 1);
    let n = v.len() / dim;
    let allowed = random_bitmap(n, 600, 2);
    for metric in METRICS {
        let idx = build_index(&IndexSpec::IvfFlat { nlist: 40 }, metric, &v, dim, 7).unwrap();
        assert_eq!(idx.spec(), IndexSpec::IvfFlat { nlist: 40 });
        let knobs = SearchKnobs {
            nprobe: Some(40),
            ..Default::default()
        };
        let exact = flat(&v, dim, &q, metric, 10, KeyRange::ALL, None);
        // A range that cuts inside the top 10 (between the 3rd and the 8th score).
        let s3 = exact[0][2].score;
        let s8 = exact[0][7].score;
        let range = metric.key_range(Some(s8), Some(s3));
        for (range, allowed) in [
            (KeyRange::ALL, None),
            (KeyRange::ALL, Some(&allowed[..])),
            (range, None),
            (range, Some(&allowed[..])),
        ] {
            let want = flat(&v, dim, &q, metric, 10, range, allowed);
            // nq = 20 runs list by list (tile kernels); one query at a time the other path.
            let got = idx.search(&v, &q, &params(10, range, allowed, knobs));
            assert_eq!(got, want, "{metric:?} batch");
            for (qi, w) in want.iter().enumerate() {
                let one = idx.search(
                    &v,
                    &q[qi * dim..(qi + 1) * dim],
                    &params(10, range, allowed, knobs),
                );
                assert_eq!(&one[0], w, "{metric:?} query {qi}");
            }
        }
        let in_range = &flat(&v, dim, &q, metric, 10, range, None)[0];
        assert!(!in_range.is_empty() && in_range.len() < 10);
    }
}

#[test]
fn recall_at_defaults_on_face_like_data() {
    // 20k rows of 1k identities (20 samples each), nlist 256, default nprobe and rerank.
    let dim = 32;
    let (v, q) = faces(1000, 20, 200, dim, 3);
    for metric in [Metric::L2, Metric::Cosine] {
        let want = flat(&v, dim, &q, metric, 10, KeyRange::ALL, None);
        for spec in [
            IndexSpec::IvfFlat { nlist: 256 },
            IndexSpec::IvfSq8 { nlist: 256 },
            IndexSpec::Sq8,
        ] {
            let idx = build_index(&spec, metric, &v, dim, 11).unwrap();
            let got = idx.search(
                &v,
                &q,
                &params(10, KeyRange::ALL, None, SearchKnobs::default()),
            );
            let r10 = recall(&got, &want, 10);
            let r1 = recall(&got, &want, 1);
            assert!(r10 >= 0.99, "{spec} {metric:?}: recall@10 {r10}");
            assert!(r1 >= 0.995, "{spec} {metric:?}: recall@1 {r1}");
            // Returned scores are exact.
            for (qi, g) in got.iter().enumerate().take(20) {
                for nb in g {
                    let s = exact_score(&v, dim, &q[qi * dim..(qi + 1) * dim], metric, nb.row);
                    assert_eq!(nb.score, s, "{spec} {metric:?}");
                }
            }
        }
    }
    assert_eq!(default_nprobe(256), 96);
    assert_eq!(default_nprobe(1024), 384);
    assert_eq!(default_nprobe(1), 1);
}

#[test]
fn sq8_indexes_return_exact_scores_and_match_flat_with_full_rerank() {
    let dim = 40;
    let (v, q) = faces(200, 5, 12, dim, 4);
    let n = v.len() / dim;
    let allowed = random_bitmap(n, 500, 5);
    for metric in METRICS {
        for spec in [IndexSpec::Sq8, IndexSpec::IvfSq8 { nlist: 16 }] {
            let idx = build_index(&spec, metric, &v, dim, 3).unwrap();
            // Every list probed and a large re-rank factor: FLAT's exact answer.
            let knobs = SearchKnobs {
                nprobe: Some(16),
                rerank: Some(20),
                ..Default::default()
            };
            for allowed in [None, Some(&allowed[..])] {
                let want = flat(&v, dim, &q, metric, 5, KeyRange::ALL, allowed);
                let got = idx.search(&v, &q, &params(5, KeyRange::ALL, allowed, knobs));
                assert_eq!(got, want, "{spec} {metric:?}");
                let one = idx.search(&v, &q[..dim], &params(5, KeyRange::ALL, allowed, knobs));
                assert_eq!(one[0], want[0], "{spec} {metric:?} one query");
            }
        }
    }
}

#[test]
fn disallowed_rows_are_never_returned_and_sparse_filters_fill_k() {
    let dim = 16;
    let (v, q) = faces(500, 10, 30, dim, 6);
    let n = v.len() / dim;
    for spec in [
        IndexSpec::IvfFlat { nlist: 64 },
        IndexSpec::IvfSq8 { nlist: 64 },
        IndexSpec::Sq8,
    ] {
        let idx = build_index(&spec, Metric::L2, &v, dim, 1).unwrap();
        for keep in [900, 100, 3] {
            let allowed = random_bitmap(n, keep, keep as u64);
            let knobs = SearchKnobs {
                nprobe: Some(1),
                ..Default::default()
            };
            let total = allowed
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>();
            for nq in [1, 30] {
                let got = idx.search(
                    &v,
                    &q[..nq * dim],
                    &params(10, KeyRange::ALL, Some(&allowed), knobs),
                );
                for g in &got {
                    assert!(g.iter().all(|nb| is_set(&allowed, nb.row)), "{spec}");
                    // Even with nprobe = 1, k allowed rows are found.
                    assert_eq!(g.len(), 10.min(total), "{spec} keep {keep}");
                }
            }
        }
        // Nothing allowed: nothing returned.
        let none = vec![0u64; n.div_ceil(64)];
        let got = idx.search(
            &v,
            &q,
            &params(10, KeyRange::ALL, Some(&none), SearchKnobs::default()),
        );
        assert!(got.iter().all(|g| g.is_empty()));
    }
}

#[test]
fn results_do_not_depend_on_batch_or_threads() {
    let dim = 32;
    let (v, q) = faces(400, 10, 40, dim, 8);
    for metric in METRICS {
        for spec in [
            IndexSpec::IvfFlat { nlist: 50 },
            IndexSpec::IvfSq8 { nlist: 50 },
            IndexSpec::Sq8,
        ] {
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        let idx = build_index(&spec, metric, &v, dim, 5).unwrap();
                        let p = params(10, KeyRange::ALL, None, SearchKnobs::default());
                        let batch = idx.search(&v, &q, &p);
                        let single: Vec<Vec<Neighbor>> = q
                            .chunks_exact(dim)
                            .map(|qq| idx.search(&v, qq, &p).remove(0))
                            .collect();
                        (idx.to_blob(), batch, single)
                    })
            };
            let (b1, r1, s1) = run(1);
            let (b2, r2, s2) = run(2);
            assert!(
                b1 == b2,
                "{spec} {metric:?}: index bytes differ across thread counts"
            );
            assert_eq!(r1, r2);
            assert_eq!(r1, s1, "{spec} {metric:?}: batch vs one query");
            assert_eq!(s1, s2);
        }
    }
}

/// Bytes at an odd address, as a memory map at an odd offset would give.
struct Shifted(Vec<u8>);
impl AsRef<[u8]> for Shifted {
    fn as_ref(&self) -> &[u8] {
        &self.0[1..]
    }
}

#[test]
fn blob_round_trip_gives_identical_results() {
    let dim = 20;
    let (v, q) = faces(100, 8, 10, dim, 9);
    for metric in METRICS {
        for spec in [
            IndexSpec::IvfFlat { nlist: 30 },
            IndexSpec::IvfSq8 { nlist: 30 },
            IndexSpec::Sq8,
        ] {
            let idx = build_index(&spec, metric, &v, dim, 2).unwrap();
            let bytes = idx.to_blob();
            assert!(idx.bytes() > 0 && idx.bytes() <= bytes.len());
            let p = params(7, KeyRange::ALL, None, SearchKnobs::default());
            let want = idx.search(&v, &q, &p);
            let loaded = load_index(Arc::new(bytes.clone())).unwrap();
            assert_eq!(loaded.spec(), idx.spec());
            assert_eq!(loaded.metric(), metric);
            assert_eq!((loaded.rows(), loaded.dim()), (800, dim));
            assert_eq!(loaded.bytes(), idx.bytes());
            assert_eq!(loaded.search(&v, &q, &p), want, "{spec} {metric:?}");
            assert!(loaded.to_blob() == bytes);
            let mut shifted = vec![0u8];
            shifted.extend_from_slice(&bytes);
            let odd = load_index(Arc::new(Shifted(shifted))).unwrap();
            assert_eq!(odd.search(&v, &q, &p), want, "{spec} {metric:?} unaligned");
        }
    }
}

#[test]
fn corrupt_blobs_are_errors_not_panics() {
    let dim = 8;
    let (v, _) = faces(50, 4, 1, dim, 10);
    for spec in [
        IndexSpec::IvfFlat { nlist: 10 },
        IndexSpec::IvfSq8 { nlist: 10 },
        IndexSpec::Sq8,
    ] {
        let bytes = build_index(&spec, Metric::L2, &v, dim, 1)
            .unwrap()
            .to_blob();
        for i in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            // Flips in padding between sections are harmless; anything else is an error.
            if let Ok(idx) = load_index(Arc::new(b)) {
                assert_eq!(idx.rows(), 200);
            }
        }
        for len in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(load_index(Arc::new(bytes[..len].to_vec())).is_err());
        }
    }
    // Consistent CRCs but inconsistent contents.
    let ivf = |ids: &[u32], offsets: &[u64], rows: f64| {
        let mut w = BlobWriter::new("IVF_FLAT");
        w.meta("metric", 0.0)
            .meta("rows", rows)
            .meta("dim", 2.0)
            .meta("nlist", 2.0);
        w.section("centroids", &[0f32, 0.0, 1.0, 1.0])
            .section("offsets", offsets)
            .section("ids", ids)
            .section("vectors", &[0f32; 6])
            .section("norms", &[0f32; 0]);
        load_index(Arc::new(w.finish()))
    };
    assert!(ivf(&[0, 1, 2], &[0, 1, 3], 3.0).is_ok());
    for bad in [
        ivf(&[0, 1, 3], &[0, 1, 3], 3.0), // row id out of range
        ivf(&[0, 1, 2], &[0, 2, 1], 3.0), // offsets not monotone
        ivf(&[0, 1, 2], &[0, 1, 2], 3.0), // offsets do not cover the rows
        ivf(&[0, 1], &[0, 1, 2], 3.0),    // ids too short
        ivf(&[0, 1, 2], &[0, 1, 3], 4.0), // vectors too short
    ] {
        assert!(
            matches!(bad, Err(IndexError::Corrupt(_))),
            "{:?}",
            bad.err()
        );
    }
    let mut w = BlobWriter::new("NOPE");
    w.meta("x", 1.0);
    assert!(matches!(
        load_index(Arc::new(w.finish())),
        Err(IndexError::Corrupt(_))
    ));
}

#[test]
fn tiny_and_empty_segments() {
    let dim = 4;
    let p = params(3, KeyRange::ALL, None, SearchKnobs::default());
    let q = [0.1f32, 0.2, 0.3, 0.4];
    for metric in METRICS {
        for spec in [
            IndexSpec::IvfFlat { nlist: 1024 },
            IndexSpec::IvfSq8 { nlist: 1024 },
            IndexSpec::Sq8,
        ] {
            // n = 0.
            let idx = build_index(&spec, metric, &[], dim, 0).unwrap();
            assert_eq!(idx.rows(), 0);
            assert_eq!(idx.search(&[], &q, &p), vec![Vec::<Neighbor>::new()]);
            let re = load_index(Arc::new(idx.to_blob())).unwrap();
            assert_eq!(re.search(&[], &q, &p), vec![Vec::<Neighbor>::new()]);
            // n = 1.
            let one = [1.0f32, 0.0, 0.0, 0.0];
            let idx = build_index(&spec, metric, &one, dim, 0).unwrap();
            let got = idx.search(&one, &q, &p);
            assert_eq!(got[0].len(), 1);
            assert_eq!(got[0][0].row, 0);
            assert_eq!(got[0][0].score, exact_score(&one, dim, &q, metric, 0));
            // nlist > n: one list per row; every row found with the default nprobe.
            let v: Vec<f32> = (0..5 * dim).map(|i| (i * 7 % 11) as f32 - 5.0).collect();
            let idx = build_index(&spec, metric, &v, dim, 0).unwrap();
            if spec != IndexSpec::Sq8 {
                assert_eq!(idx.spec().to_string(), format!("{}(nlist=5)", spec.name()));
            }
            let p5 = params(5, KeyRange::ALL, None, SearchKnobs::default());
            // (FLAT's one-query COSINE path scales by a reciprocal norm, a last-bit
            // difference: compare rows, and scores with FLAT's re-scoring formula.)
            let want = flat(&v, dim, &q, metric, 5, KeyRange::ALL, None);
            let got = idx.search(&v, &q, &p5);
            let rows = |r: &[Neighbor]| r.iter().map(|n| n.row).collect::<Vec<_>>();
            assert_eq!(rows(&got[0]), rows(&want[0]), "{spec} {metric:?}");
            for nb in &got[0] {
                assert_eq!(nb.score, exact_score(&v, dim, &q, metric, nb.row));
            }
            // k = 0 and no queries.
            assert_eq!(
                idx.search(
                    &v,
                    &q,
                    &params(0, KeyRange::ALL, None, SearchKnobs::default())
                ),
                vec![vec![]]
            );
            assert!(idx.search(&v, &[], &p).is_empty());
        }
    }
    // Bad input is an error.
    for spec in [IndexSpec::IvfFlat { nlist: 4 }, IndexSpec::Sq8] {
        assert!(build_index(&spec, Metric::L2, &[1.0, 2.0, 3.0], 2, 0).is_err());
        assert!(build_index(&spec, Metric::L2, &[1.0, f32::NAN], 2, 0).is_err());
        assert!(build_index(&spec, Metric::L2, &[1.0, 2.0], 0, 0).is_err());
    }
    assert!(build_index(&IndexSpec::IvfFlat { nlist: 0 }, Metric::L2, &[1.0], 1, 0).is_err());
}
