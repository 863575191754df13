//! HNSW against FLAT on clustered synthetic data: recall, exact scores, filters, range
//! search, metrics, serialisation, corrupt files and edge cases.
//!
//! `VectorIndex::search` may answer small or selective searches with an exact scan (its cost
//! model); the recall and range tests search one query at a time on 20k rows, which goes
//! through the graph, and `Hnsw::search_graph` forces it where needed. The graph's filtered
//! path is tested in `src/hnsw.rs` on its own. Sizes are reduced in debug builds; the
//! figures asserted hold for both.

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

use facedb_index::blob::{BlobReader, BlobWriter};
use facedb_index::hnsw::{Hnsw, DEFAULT_EF};
use facedb_index::{
    build_index, by_row, flat_search, load_index, AnnParams, FlatParams, IndexError, IndexSpec,
    KeyRange, Metric, Neighbor, SearchKnobs, TieBreak, VectorIndex,
};
use rand::{Rng, SeedableRng};

const DIM: usize = 32;

fn rows_for_test() -> usize {
    if cfg!(debug_assertions) {
        3000
    } else {
        20_000
    }
}

fn normal(rng: &mut impl Rng) -> f32 {
    // Box-Muller.
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen();
    ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
}

/// `n` rows in clusters of `per` samples (centre N(0, 1), spread 0.25 per coordinate),
/// plus `nq` queries: fresh samples of random clusters.
fn clustered(n: usize, per: usize, nq: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let nc = n.div_ceil(per);
    let centres: Vec<f32> = (0..nc * DIM).map(|_| normal(&mut rng)).collect();
    let sample = |c: usize, rng: &mut rand::rngs::StdRng| -> Vec<f32> {
        (0..DIM)
            .map(|j| centres[c * DIM + j] + 0.25 * normal(rng))
            .collect()
    };
    let mut base = Vec::with_capacity(n * DIM);
    for i in 0..n {
        base.extend(sample(i / per, &mut rng));
    }
    let mut q = Vec::with_capacity(nq * DIM);
    for _ in 0..nq {
        let c = rng.gen_range(0..nc);
        q.extend(sample(c, &mut rng));
    }
    (base, q)
}

fn params<'a>(k: usize, ef: Option<usize>, allowed: Option<&'a [u64]>) -> AnnParams<'a> {
    AnnParams {
        k,
        range: KeyRange::ALL,
        allowed,
        tiebreak: &by_row,
        knobs: SearchKnobs {
            ef,
            ..Default::default()
        },
    }
}

fn exact(
    base: &[f32],
    q: &[f32],
    metric: Metric,
    k: usize,
    range: KeyRange,
    allowed: Option<&[u64]>,
    tiebreak: TieBreak<'_>,
) -> Vec<Vec<Neighbor>> {
    flat_search(
        base,
        DIM,
        q,
        &FlatParams {
            metric,
            k,
            range,
            allowed,
            tiebreak,
        },
    )
}

fn recall(got: &[Vec<Neighbor>], want: &[Vec<Neighbor>]) -> f64 {
    let (mut hit, mut total) = (0, 0);
    for (g, w) in got.iter().zip(want) {
        total += w.len();
        hit += g
            .iter()
            .filter(|x| w.iter().any(|y| y.row == x.row))
            .count();
    }
    hit as f64 / total.max(1) as f64
}

/// The exact score of `row` for query `q`, as FLAT computes it.
fn exact_score(base: &[f32], q: &[f32], row: u32, metric: Metric) -> f32 {
    let one = exact(
        &base[row as usize * DIM..(row as usize + 1) * DIM],
        q,
        metric,
        1,
        KeyRange::ALL,
        None,
        &by_row,
    );
    one[0][0].score
}

/// One clustered data set (`rows_for_test()` rows, 300 queries) and its index per metric,
/// shared by the tests (M = 16, efConstruction = 100).
type Fixture = (Vec<f32>, Vec<f32>, Hnsw);

fn fixture(metric: Metric) -> &'static Fixture {
    static F: [OnceLock<Fixture>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    F[metric as usize].get_or_init(|| {
        let (base, q) = clustered(rows_for_test(), 8, 300, 1);
        let idx = Hnsw::build(metric, &base, DIM, 16, 100, 7).unwrap();
        (base, q, idx)
    })
}

fn check_metric(metric: Metric) {
    let n = rows_for_test();
    let (base, q, idx) = fixture(metric);
    let (base, q) = (&base[..], &q[..]);
    assert_eq!(idx.rows(), n);
    assert_eq!(idx.metric(), metric);
    // One query at a time (the graph path; batches of small segments may be scanned).
    let got: Vec<Vec<Neighbor>> = q
        .chunks_exact(DIM)
        .flat_map(|qv| idx.search(base, qv, &params(10, None, None)))
        .collect();
    let want = exact(base, q, metric, 10, KeyRange::ALL, None, &by_row);
    let r = recall(&got, &want);
    // The batch call gives the same guarantees, whichever plan it picks.
    let batch = idx.search(base, q, &params(10, None, None));
    assert!(recall(&batch, &want) >= 0.99);
    assert!(r >= 0.99, "{metric:?}: recall@10 {r}");
    for (qi, res) in got.iter().enumerate() {
        assert_eq!(res.len(), 10);
        let qv = &q[qi * DIM..(qi + 1) * DIM];
        for (a, b) in res.iter().zip(res.iter().skip(1)) {
            assert!(metric.key(a.score) <= metric.key(b.score), "not best first");
        }
        for x in res {
            let s = exact_score(base, qv, x.row, metric);
            // L2 and IP: the same kernel as FLAT, bit for bit. COSINE: FLAT's two scan
            // paths round the division differently (1 ulp).
            if metric == Metric::Cosine {
                assert!((x.score - s).abs() <= 1e-6, "{} vs {s}", x.score);
            } else {
                assert_eq!(x.score, s, "row {}", x.row);
            }
        }
        // Returned rows that FLAT also returns carry FLAT's score.
        for x in res {
            if let Some(y) = want[qi].iter().find(|y| y.row == x.row) {
                assert!((x.score - y.score).abs() <= 1e-6 * y.score.abs().max(1.0));
            }
        }
    }
}

#[test]
fn recall_and_exact_scores_l2() {
    check_metric(Metric::L2);
}

#[test]
fn recall_and_exact_scores_ip() {
    check_metric(Metric::Ip);
}

#[test]
fn recall_and_exact_scores_cosine() {
    check_metric(Metric::Cosine);
}

#[test]
fn default_ef_is_used_and_raised_to_k() {
    let (base, q) = clustered(2000, 8, 20, 2);
    let idx = Hnsw::build(Metric::L2, &base, DIM, 8, 64, 1).unwrap();
    // k above the default ef: ef becomes k, every list is k long.
    let k = DEFAULT_EF + 36;
    let got = idx.search_graph(&base, &q, &params(k, None, None));
    assert!(got.iter().all(|r| r.len() == k));
    let want = exact(&base, &q, Metric::L2, k, KeyRange::ALL, None, &by_row);
    assert!(recall(&got, &want) >= 0.95);
    // No ef: DEFAULT_EF. rerank raises ef to k × rerank.
    assert_eq!(
        idx.search_graph(&base, &q, &params(10, None, None)),
        idx.search_graph(&base, &q, &params(10, Some(DEFAULT_EF), None))
    );
    let p = AnnParams {
        knobs: SearchKnobs {
            ef: Some(10),
            rerank: Some(30),
            nprobe: None,
        },
        ..params(10, None, None)
    };
    assert_eq!(
        idx.search_graph(&base, &q, &p),
        idx.search_graph(&base, &q, &params(10, Some(300), None))
    );
    assert_ne!(
        idx.search_graph(&base, &q, &params(1, Some(1), None)),
        idx.search_graph(&base, &q, &params(1, Some(300), None)),
        "ef makes no difference: the test data is too easy"
    );
}

fn bitmap(n: usize, sel: f64, seed: u64) -> Vec<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut w = vec![0u64; n.div_ceil(64)];
    for r in 0..n {
        if rng.gen_bool(sel) {
            w[r / 64] |= 1 << (r % 64);
        }
    }
    w
}

fn allowed(w: &[u64], r: u32) -> bool {
    w[r as usize / 64] >> (r % 64) & 1 == 1
}

#[test]
fn filtered_search_never_returns_disallowed_rows() {
    let n = rows_for_test();
    let (base, q, idx) = fixture(Metric::L2);
    let (base, q) = (&base[..], &q[..]);
    for sel in [0.1, 0.05] {
        let w = bitmap(n, sel, 9);
        let got = idx.search(base, q, &params(10, None, Some(&w)));
        let want = exact(base, q, Metric::L2, 10, KeyRange::ALL, Some(&w), &by_row);
        let mut same_top1 = 0;
        for (g, e) in got.iter().zip(&want) {
            assert!(
                g.iter().all(|x| allowed(&w, x.row)),
                "disallowed row returned"
            );
            assert_eq!(g.len(), 10);
            same_top1 += usize::from(g[0].row == e[0].row);
        }
        let frac = same_top1 as f64 / got.len() as f64;
        assert!(frac >= 0.99, "selectivity {sel}: top-1 = exact on {frac}");
        assert!(recall(&got, &want) >= 0.98, "selectivity {sel}");
    }
    // Fewer allowed rows than ef: scored exactly, equal to FLAT.
    let mut w = vec![0u64; n.div_ceil(64)];
    for r in (0..n).step_by(n / 30) {
        w[r / 64] |= 1 << (r % 64);
    }
    let got = idx.search(base, q, &params(10, None, Some(&w)));
    let want = exact(base, q, Metric::L2, 10, KeyRange::ALL, Some(&w), &by_row);
    assert_eq!(got, want);
    // Nothing allowed: nothing returned.
    let none = vec![0u64; n.div_ceil(64)];
    let got = idx.search(base, q, &params(10, None, Some(&none)));
    assert!(got.iter().all(|r| r.is_empty()));
}

#[test]
fn range_search_returns_only_rows_in_range() {
    for metric in [Metric::L2, Metric::Ip] {
        let (base, q, idx) = fixture(metric);
        let q = &q[..100 * DIM];
        let all = exact(base, q, metric, 50, KeyRange::ALL, None, &by_row);
        let (mut hits, mut total) = (0, 0);
        for (qi, a) in all.iter().enumerate() {
            // Between the 3rd and the 20th neighbour's score: the 17 rows in between.
            let (s3, s20) = (a[2].score, a[19].score);
            let range = metric.key_range(Some(s20), Some(s3));
            let qv = &q[qi * DIM..(qi + 1) * DIM];
            let p = AnnParams {
                range,
                ..params(30, None, None)
            };
            let got = &idx.search(base, qv, &p)[0];
            let want = &exact(base, qv, metric, 30, range, None, &by_row)[0];
            assert!(got.iter().all(|x| range.contains(metric.key(x.score))));
            assert!(got.len() <= want.len());
            assert!(got.iter().all(|x| want.contains(x)));
            hits += got.len();
            total += want.len();
        }
        assert!(
            hits as f64 >= 0.98 * total as f64,
            "{metric:?}: {hits} of {total}"
        );
    }
}

#[test]
fn blob_round_trip_gives_identical_results() {
    let (base, q) = clustered(3000, 8, 50, 5);
    for metric in [Metric::L2, Metric::Cosine] {
        let spec = IndexSpec::Hnsw {
            m: 12,
            ef_construction: 80,
        };
        let idx = build_index(&spec, metric, &base, DIM, 3).unwrap();
        assert_eq!(idx.spec(), spec);
        let blob = idx.to_blob();
        let loaded = load_index(Arc::new(blob.clone())).unwrap();
        assert_eq!(loaded.spec(), spec);
        assert_eq!(loaded.metric(), metric);
        assert_eq!((loaded.rows(), loaded.dim()), (3000, DIM));
        assert_eq!(loaded.bytes(), idx.bytes());
        assert_eq!(loaded.to_blob(), blob);
        let w = bitmap(3000, 0.3, 1);
        for p in [params(10, Some(40), None), params(5, None, Some(&w))] {
            assert_eq!(idx.search(&base, &q, &p), loaded.search(&base, &q, &p));
        }
    }
}

#[test]
fn same_seed_on_one_thread_builds_the_same_graph() {
    let (base, _) = clustered(2000, 8, 0, 6);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let a = pool.install(|| Hnsw::build(Metric::L2, &base, DIM, 8, 50, 11).unwrap());
    let b = pool.install(|| Hnsw::build(Metric::L2, &base, DIM, 8, 50, 11).unwrap());
    let c = pool.install(|| Hnsw::build(Metric::L2, &base, DIM, 8, 50, 12).unwrap());
    assert_eq!(a.to_blob(), b.to_blob());
    assert_ne!(a.to_blob(), c.to_blob());
}

fn corrupt(f: impl FnOnce(&mut BlobWriter)) -> Result<Box<dyn VectorIndex>, IndexError> {
    let mut w = BlobWriter::new("HNSW");
    w.meta("rows", 2.0)
        .meta("dim", 2.0)
        .meta("m", 4.0)
        .meta("ef_construction", 8.0)
        .meta("metric", 0.0)
        .meta("entry", 0.0)
        .meta("max_level", 0.0);
    f(&mut w);
    load_index(Arc::new(w.finish()))
}

#[test]
fn corrupt_blobs_are_errors() {
    let (base, _) = clustered(500, 8, 0, 7);
    let idx = Hnsw::build(Metric::L2, &base, DIM, 8, 50, 1).unwrap();
    let blob = idx.to_blob();
    // Any flipped byte (header or section) fails the CRC; a cut blob fails the bounds.
    for pos in [20, 300, blob.len() / 4, blob.len() / 2] {
        let mut b = blob.clone();
        b[pos] ^= 0x40;
        assert!(
            matches!(load_index(Arc::new(b)), Err(IndexError::Corrupt(_))),
            "{pos}"
        );
    }
    assert!(load_index(Arc::new(blob[..blob.len() / 2].to_vec())).is_err());
    // CRC-valid blobs with inconsistent contents.
    let ok_links = [1u32, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(corrupt(|w| {
        w.section("links0", &ok_links)
            .section("upper_off", &[0u32, 0, 0])
            .section::<u32>("upper", &[])
            .section::<f32>("inv_norms", &[]);
    })
    .is_ok());
    let mut out_of_range = ok_links;
    out_of_range[1] = 7;
    let mut too_many = ok_links;
    too_many[0] = 9;
    for links in [&out_of_range[..], &too_many[..], &ok_links[..5]] {
        let r = corrupt(|w| {
            w.section("links0", links)
                .section("upper_off", &[0u32, 0, 0])
                .section::<u32>("upper", &[])
                .section::<f32>("inv_norms", &[]);
        });
        assert!(matches!(r, Err(IndexError::Corrupt(_))));
    }
    // Entry level above the recorded maximum, missing section.
    let r = corrupt(|w| {
        w.section("links0", &ok_links)
            .section("upper_off", &[0u32, 1, 1])
            .section::<u32>("upper", &[0; 5])
            .section::<f32>("inv_norms", &[]);
    });
    assert!(matches!(r, Err(IndexError::Corrupt(_))));
    // Row 0 has layer 1 and links there to row 1, which has no layer 1.
    let r = corrupt(|w| {
        w.meta("max_level", 1.0)
            .section("links0", &ok_links)
            .section("upper_off", &[0u32, 1, 1])
            .section::<u32>("upper", &[1, 1, 0, 0, 0])
            .section::<f32>("inv_norms", &[]);
    });
    assert!(matches!(r, Err(IndexError::Corrupt(_))));
    let r = corrupt(|w| {
        w.meta("max_level", 1.0)
            .section("links0", &ok_links)
            .section("upper_off", &[0u32, 1, 1])
            .section::<u32>("upper", &[0, 0, 0, 0, 0])
            .section::<f32>("inv_norms", &[]);
    });
    assert!(r.is_ok());
    let r = corrupt(|w| {
        w.section("links0", &ok_links);
    });
    assert!(matches!(r, Err(IndexError::Corrupt(_))));
    // The reader itself.
    let r = BlobReader::open(Arc::new(blob.clone())).unwrap();
    assert!(Hnsw::load(&r).is_ok());
}

#[test]
fn k_above_rows_returns_every_row_in_exact_order() {
    let (base, q) = clustered(50, 5, 5, 8);
    let idx = Hnsw::build(Metric::L2, &base, DIM, 4, 8, 1).unwrap();
    let got = idx.search(&base, &q, &params(100, None, None));
    let want = exact(&base, &q, Metric::L2, 100, KeyRange::ALL, None, &by_row);
    assert!(got.iter().all(|r| r.len() == 50));
    assert_eq!(got, want);
}

#[test]
fn zero_and_one_row() {
    let idx = Hnsw::build(Metric::L2, &[], DIM, 16, 100, 1).unwrap();
    assert_eq!(idx.rows(), 0);
    let q = vec![0.5f32; 2 * DIM];
    assert_eq!(
        idx.search(&[], &q, &params(10, None, None)),
        vec![Vec::new(); 2]
    );
    let loaded = load_index(Arc::new(idx.to_blob())).unwrap();
    assert_eq!(loaded.rows(), 0);

    let one = vec![1.0f32; DIM];
    for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
        let idx = Hnsw::build(metric, &one, DIM, 16, 100, 1).unwrap();
        let got = idx.search(&one, &q, &params(10, None, None));
        assert_eq!(got.len(), 2);
        for r in got {
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].row, 0);
        }
    }
    // k = 0 and no queries.
    let idx = Hnsw::build(Metric::L2, &one, DIM, 16, 100, 1).unwrap();
    assert_eq!(
        idx.search(&one, &q, &params(0, None, None)),
        vec![Vec::new(); 2]
    );
    assert!(idx.search(&one, &[], &params(1, None, None)).is_empty());
}

#[test]
fn ties_follow_the_tiebreak() {
    // 20 copies of one vector among clustered rows; the query is that vector.
    let (mut base, _) = clustered(3000, 8, 0, 9);
    let dup: Vec<f32> = base[..DIM].to_vec();
    for r in (0..3000).step_by(150) {
        base[r * DIM..(r + 1) * DIM].copy_from_slice(&dup);
    }
    let idx = Hnsw::build(Metric::L2, &base, DIM, 16, 100, 1).unwrap();
    let rev = |a: u32, b: u32| b.cmp(&a);
    let tb: TieBreak<'_> = &rev;
    let p = AnnParams {
        tiebreak: tb,
        ..params(5, None, None)
    };
    let got = idx.search(&base, &dup, &p);
    let want = exact(&base, &dup, Metric::L2, 5, KeyRange::ALL, None, tb);
    assert_eq!(got, want);
    assert_eq!(
        got[0].iter().map(|x| x.row).collect::<Vec<_>>(),
        vec![2850, 2700, 2550, 2400, 2250]
    );
    assert_eq!(rev(1, 2), Ordering::Greater);
}

#[test]
fn invalid_builds_are_errors() {
    let v = vec![0.0f32; 10 * DIM];
    assert!(matches!(
        Hnsw::build(Metric::L2, &v, DIM, 3, 100, 1),
        Err(IndexError::InvalidParameter(_))
    ));
    assert!(matches!(
        Hnsw::build(Metric::L2, &v, DIM, 16, 513, 1),
        Err(IndexError::InvalidParameter(_))
    ));
    assert!(Hnsw::build(Metric::L2, &v[..DIM + 1], DIM, 16, 100, 1).is_err());
    assert!(Hnsw::build(Metric::L2, &v, 0, 16, 100, 1).is_err());
}
