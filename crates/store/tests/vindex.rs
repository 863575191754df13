//! Vector indexes inside the store: background builds per sealed segment, persistence next
//! to the segment, rebuild by compaction, deletes and filters, the planner, knob errors.

use facedb_store::*;
use std::collections::HashSet;
use std::time::Duration;

const DIM: usize = 16;

fn schema() -> CollectionSchema {
    CollectionSchema {
        name: "v".into(),
        description: String::new(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("bucket", DataType::Int64),
            FieldSchema::new("vec", DataType::FloatVector { dim: DIM as u32 }),
        ],
    }
}

/// Deterministic clustered vectors: 64 centres, points around them.
fn vectors(start: usize, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * DIM);
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let centres: Vec<f32> = (0..64 * DIM).map(|_| rnd() * 4.0).collect();
    // Burn the stream so different `start`s give different points.
    for _ in 0..start * DIM {
        rnd();
    }
    for i in 0..n {
        let c = (start + i) % 64;
        for d in 0..DIM {
            out.push(centres[c * DIM + d] + rnd() * 0.5);
        }
    }
    out
}

fn batch(start: usize, n: usize) -> Batch {
    Batch::new()
        .with(
            "id",
            ColumnData::Int64((start as i64..(start + n) as i64).collect()),
        )
        .with(
            "bucket",
            ColumnData::Int64((start..start + n).map(|i| (i % 100) as i64).collect()),
        )
        .with(
            "vec",
            ColumnData::FloatVector {
                dim: DIM,
                data: vectors(start, n),
            },
        )
}

fn queries(n: usize) -> Vec<Vec<f32>> {
    vectors(1_000_000, n)
        .chunks(DIM)
        .map(|c| c.iter().map(|x| x + 0.01).collect())
        .collect()
}

fn ids(hits: &[Vec<Hit>]) -> Vec<Vec<i64>> {
    hits.iter()
        .map(|q| {
            q.iter()
                .map(|h| match h.pk {
                    PrimaryKey::Int(k) => k,
                    _ => unreachable!(),
                })
                .collect()
        })
        .collect()
}

/// A collection with two sealed segments (6000 + 5000 rows) and 500 growing rows.
fn setup(dir: &std::path::Path) -> (Database, std::sync::Arc<Collection>) {
    let db = Database::open(dir).unwrap();
    let c = db.create_collection(schema()).unwrap();
    c.insert(batch(0, 6000)).unwrap();
    c.flush().unwrap();
    c.insert(batch(6000, 5000)).unwrap();
    c.flush().unwrap();
    c.insert(batch(11000, 500)).unwrap();
    (db, c)
}

fn search(
    c: &Collection,
    metric: Metric,
    knobs: SearchKnobs,
    filter: Option<&str>,
) -> Vec<Vec<i64>> {
    let mut r = SearchRequest::new(queries(50), metric, 10);
    r.knobs = knobs;
    r.filter = filter.map(str::to_string);
    ids(&c.search(&r).unwrap())
}

fn idx_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in walk(dir) {
        if e.extension().is_some_and(|x| x == "idx") {
            n += 1;
        }
    }
    n
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn ivf_flat_with_every_list_probed_equals_flat() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, c) = setup(dir.path());
    let exact = search(&c, Metric::L2, SearchKnobs::default(), None);
    c.create_index(IndexSpec::IvfFlat { nlist: 32 }, Metric::L2)
        .unwrap();
    let p = c.wait_for_index(Duration::from_secs(60));
    assert!(p.finished(), "{p:?}");
    assert_eq!(p.error, None);
    assert_eq!((p.indexed_rows, p.total_rows), (11000, 11000));
    assert_eq!(idx_files(dir.path()), 2);
    let all = SearchKnobs {
        nprobe: Some(32),
        ..Default::default()
    };
    assert_eq!(search(&c, Metric::L2, all, None), exact);
    // Default knobs: approximate, but almost always the same neighbours on clustered data.
    let approx = search(&c, Metric::L2, SearchKnobs::default(), None);
    let (mut hit, mut tot) = (0, 0);
    for (a, e) in approx.iter().zip(&exact) {
        let e: HashSet<_> = e.iter().collect();
        hit += a.iter().filter(|x| e.contains(x)).count();
        tot += e.len();
    }
    assert!(hit as f64 / tot as f64 >= 0.95, "recall {hit}/{tot}");
    // Distances are exact: equal to a brute-force search's for every returned row.
    let mut r = SearchRequest::new(queries(5), Metric::L2, 10);
    r.knobs = all;
    let got = c.search(&r).unwrap();
    let want = {
        c.drop_index().unwrap();
        c.search(&SearchRequest::new(queries(5), Metric::L2, 10))
            .unwrap()
    };
    assert_eq!(got, want);
    assert_eq!(idx_files(dir.path()), 0);
    assert_eq!(c.index_config(), None);
}

#[test]
fn index_survives_reopen_and_is_rebuilt_by_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let exact;
    {
        let (_db, c) = setup(dir.path());
        exact = search(&c, Metric::L2, SearchKnobs::default(), None);
        c.create_index(IndexSpec::IvfFlat { nlist: 16 }, Metric::L2)
            .unwrap();
        assert!(c.wait_for_index(Duration::from_secs(60)).finished());
    }
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("v").unwrap();
    // Loaded from the index files on open: nothing to build.
    let p = c.index_progress();
    assert_eq!((p.indexed_rows, p.pending_segments), (11000, 0), "{p:?}");
    assert_eq!(
        c.index_config(),
        Some(IndexConfig {
            spec: IndexSpec::IvfFlat { nlist: 16 },
            metric: Metric::L2
        })
    );
    let all = SearchKnobs {
        nprobe: Some(16),
        ..Default::default()
    };
    assert_eq!(search(&c, Metric::L2, all, None), exact);

    // Delete the current best answers: they are never returned, by the index either.
    let first: Vec<PrimaryKey> = exact.iter().map(|q| PrimaryKey::Int(q[0])).collect();
    c.delete(&first).unwrap();
    let gone: HashSet<i64> = exact.iter().map(|q| q[0]).collect();
    for knobs in [all, SearchKnobs::default()] {
        for q in search(&c, Metric::L2, knobs, None) {
            assert!(q.iter().all(|id| !gone.contains(id)));
        }
    }
    let after_delete = search(&c, Metric::L2, all, None);
    c.compact().unwrap();
    let p = c.wait_for_index(Duration::from_secs(60));
    assert!(p.finished() && p.error.is_none(), "{p:?}");
    assert_eq!(p.indexed_rows, p.total_rows);
    assert_eq!(search(&c, Metric::L2, all, None), after_delete);
    // The compacted-away segments' index files are gone; every live segment has one.
    assert_eq!(idx_files(dir.path()), c.sealed_segments());
}

#[test]
fn filters_and_the_planner_give_exact_filtered_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, c) = setup(dir.path());
    let all = SearchKnobs {
        nprobe: Some(32),
        ..Default::default()
    };
    let filters = ["bucket < 50", "bucket == 7", "id in [3, 5, 6001, 11003]"];
    let exact: Vec<_> = filters
        .iter()
        .map(|f| search(&c, Metric::L2, SearchKnobs::default(), Some(f)))
        .collect();
    c.create_index(IndexSpec::IvfFlat { nlist: 32 }, Metric::L2)
        .unwrap();
    assert!(c.wait_for_index(Duration::from_secs(60)).finished());
    for (f, e) in filters.iter().zip(&exact) {
        assert_eq!(&search(&c, Metric::L2, all, Some(f)), e, "{f}");
    }
    // 1% and fewer: the planner scans the matching rows exactly, whatever the knobs.
    let one = SearchKnobs {
        nprobe: Some(1),
        ..Default::default()
    };
    assert_eq!(&search(&c, Metric::L2, one, Some("bucket == 7")), &exact[1]);
    assert_eq!(
        &search(&c, Metric::L2, one, Some("id in [3, 5, 6001, 11003]")),
        &exact[2]
    );
}

#[test]
fn knobs_are_checked_and_other_metrics_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, c) = setup(dir.path());
    let exact_ip = search(&c, Metric::Ip, SearchKnobs::default(), None);
    c.create_index(IndexSpec::IvfFlat { nlist: 8 }, Metric::L2)
        .unwrap();
    assert!(c.wait_for_index(Duration::from_secs(60)).finished());
    let mut r = SearchRequest::new(queries(1), Metric::L2, 10);
    r.knobs.nprobe = Some(9);
    let e = c.search(&r).unwrap_err();
    assert!(
        e.to_string()
            .contains("param 'nprobe' (9) should be in range [1, 8]"),
        "{e}"
    );
    r.knobs.nprobe = Some(0);
    assert!(matches!(c.search(&r), Err(StoreError::InvalidParameter(_))));
    r.knobs.nprobe = None;
    r.knobs.rerank = Some(65);
    assert!(matches!(c.search(&r), Err(StoreError::InvalidParameter(_))));
    // IP is not what the index was built for: answered exactly, knobs ignored.
    assert_eq!(
        search(
            &c,
            Metric::Ip,
            SearchKnobs {
                nprobe: Some(1000),
                ..Default::default()
            },
            None
        ),
        exact_ip
    );
    // Bad build parameters are refused and change nothing.
    assert!(matches!(
        c.create_index(IndexSpec::IvfFlat { nlist: 0 }, Metric::L2),
        Err(StoreError::InvalidParameter(_))
    ));
    assert!(matches!(
        c.create_index(
            IndexSpec::Hnsw {
                m: 65,
                ef_construction: 100
            },
            Metric::L2
        ),
        Err(StoreError::InvalidParameter(_))
    ));
    assert_eq!(
        c.index_config().map(|c| c.spec),
        Some(IndexSpec::IvfFlat { nlist: 8 })
    );
}

#[test]
fn a_damaged_index_file_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let exact;
    {
        let (_db, c) = setup(dir.path());
        c.create_index(IndexSpec::IvfFlat { nlist: 16 }, Metric::L2)
            .unwrap();
        assert!(c.wait_for_index(Duration::from_secs(60)).finished());
        exact = search(
            &c,
            Metric::L2,
            SearchKnobs {
                nprobe: Some(16),
                ..Default::default()
            },
            None,
        );
    }
    let files: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    assert_eq!(files.len(), 2);
    let mut b = std::fs::read(&files[0]).unwrap();
    let l = b.len();
    b[l / 2] ^= 0xff;
    std::fs::write(&files[0], &b).unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("v").unwrap();
    let p = c.wait_for_index(Duration::from_secs(60));
    assert!(p.finished() && p.error.is_none(), "{p:?}");
    assert_eq!(p.indexed_rows, 11000);
    let got = search(
        &c,
        Metric::L2,
        SearchKnobs {
            nprobe: Some(16),
            ..Default::default()
        },
        None,
    );
    assert_eq!(got, exact);
}

#[test]
fn every_index_type_builds_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, c) = setup(dir.path());
    let exact = search(&c, Metric::L2, SearchKnobs::default(), None);
    for spec in [
        IndexSpec::IvfSq8 { nlist: 16 },
        IndexSpec::Sq8,
        IndexSpec::Hnsw {
            m: 16,
            ef_construction: 100,
        },
    ] {
        c.create_index(spec, Metric::L2).unwrap();
        let p = c.wait_for_index(Duration::from_secs(120));
        assert!(p.finished() && p.error.is_none(), "{spec}: {p:?}");
        assert_eq!(p.indexed_rows, 11000, "{spec}");
        let got = search(&c, Metric::L2, SearchKnobs::default(), None);
        let (mut hit, mut tot) = (0, 0);
        for (a, e) in got.iter().zip(&exact) {
            let e: HashSet<_> = e.iter().collect();
            hit += a.iter().filter(|x| e.contains(x)).count();
            tot += e.len();
        }
        assert!(
            hit as f64 / tot as f64 >= 0.98,
            "{spec}: recall {hit}/{tot}"
        );
    }
}

/// Brute force in the test: the `k` ids nearest to `q` (squared L2 or negated IP, ties by
/// id) and their scores.
fn brute(rows: &[(i64, Vec<f32>)], q: &[f32], metric: Metric, k: usize) -> Vec<(i64, f32)> {
    let mut all: Vec<(f32, i64)> = rows
        .iter()
        .map(|(id, x)| {
            let key = match metric {
                Metric::L2 => x.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(),
                _ => -x.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(),
            };
            (key, *id)
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    let sign = if metric == Metric::L2 { 1.0 } else { -1.0 };
    all.into_iter().map(|(key, id)| (id, sign * key)).collect()
}

#[test]
fn sealed_segments_without_an_index_are_sketched_and_searched_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, c) = setup(dir.path());
    let p = c.wait_for_index(Duration::from_secs(60));
    assert!(p.finished() && p.error.is_none(), "{p:?}");
    assert_eq!(c.search_ready_percent(), 100);
    let sketched = |c: &Collection| -> Vec<(bool, bool)> {
        c.segments()
            .iter()
            .map(|s| (s.sealed, s.sketched))
            .collect()
    };
    // Both sealed segments (6000 and 5000 rows) have their sketch; the growing one never.
    assert_eq!(
        sketched(&c),
        vec![(true, true), (true, true), (false, false)]
    );
    let rows: Vec<(i64, Vec<f32>)> = vectors(0, 11500)
        .chunks(DIM)
        .enumerate()
        .map(|(i, v)| (i as i64, v.to_vec()))
        .collect();
    let qs = queries(8);
    for metric in [Metric::L2, Metric::Ip] {
        let got = c
            .search(&SearchRequest::new(qs.clone(), metric, 25))
            .unwrap();
        for (q, hits) in qs.iter().zip(&got) {
            let want = brute(&rows, q, metric, 25);
            let ids: Vec<i64> = hits
                .iter()
                .map(|h| match h.pk {
                    PrimaryKey::Int(k) => k,
                    _ => unreachable!(),
                })
                .collect();
            assert_eq!(
                ids,
                want.iter().map(|w| w.0).collect::<Vec<_>>(),
                "{metric:?}"
            );
            for (h, w) in hits.iter().zip(&want) {
                assert!(
                    (h.distance - w.1).abs() <= 1e-4 * w.1.abs().max(1.0),
                    "{metric:?}"
                );
            }
        }
    }
    // Deletes and filters apply to sketched segments: the exact answer over what is left.
    let gone: Vec<i64> = (0..11500).filter(|i| i % 3 == 0).collect();
    c.delete(&gone.iter().map(|i| PrimaryKey::Int(*i)).collect::<Vec<_>>())
        .unwrap();
    let left: Vec<(i64, Vec<f32>)> = rows
        .iter()
        .filter(|(id, _)| id % 3 != 0 && id % 100 < 50)
        .cloned()
        .collect();
    let mut r = SearchRequest::new(qs.clone(), Metric::L2, 10);
    r.filter = Some("bucket < 50".into());
    let got = ids(&c.search(&r).unwrap());
    let want: Vec<Vec<i64>> = qs
        .iter()
        .map(|q| {
            brute(&left, q, Metric::L2, 10)
                .into_iter()
                .map(|w| w.0)
                .collect()
        })
        .collect();
    assert_eq!(got, want);
    // An index replaces the sketches; dropping it brings them back.
    c.create_index(IndexSpec::IvfFlat { nlist: 16 }, Metric::L2)
        .unwrap();
    c.wait_for_index(Duration::from_secs(60));
    assert_eq!(
        sketched(&c),
        vec![(true, false), (true, false), (false, false)]
    );
    c.drop_index().unwrap();
    c.wait_for_index(Duration::from_secs(60));
    assert_eq!(
        sketched(&c),
        vec![(true, true), (true, true), (false, false)]
    );
    assert_eq!(ids(&c.search(&r).unwrap()), want);
}
