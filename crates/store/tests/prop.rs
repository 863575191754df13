//! Property test: search equals a brute-force f64 reference over a model of the collection,
//! with inserts, upserts, deletes, flushes, compactions and reopens mixed in.

use facedb_store::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const DIM: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<(i64, Vec<i8>)>),
    Upsert(Vec<(i64, Vec<i8>)>),
    Delete(Vec<i64>),
    Flush,
    Compact,
    Reopen,
    Search(Vec<Vec<i8>>, u8, usize, Option<(u8, i64)>),
}

fn rows() -> impl Strategy<Value = Vec<(i64, Vec<i8>)>> {
    prop::collection::vec((0i64..400, prop::collection::vec(-4i8..5, DIM)), 1..40)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => rows().prop_map(Op::Insert),
        2 => rows().prop_map(Op::Upsert),
        2 => prop::collection::vec(0i64..400, 1..30).prop_map(Op::Delete),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        4 => (prop::collection::vec(prop::collection::vec(-4i8..5, DIM), 1..20), 0u8..3, 1usize..30,
              prop::option::of((0u8..4, 0i64..400)))
            .prop_map(|(q, m, k, f)| Op::Search(q, m, k, f)),
    ]
}

fn schema() -> CollectionSchema {
    CollectionSchema {
        name: "p".into(),
        description: String::new(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("tag", DataType::Int32),
            FieldSchema::new("v", DataType::FloatVector { dim: DIM as u32 }),
        ],
    }
}

fn batch(rows: &[(i64, Vec<i8>)]) -> Batch {
    Batch::new()
        .with("id", ColumnData::Int64(rows.iter().map(|r| r.0).collect()))
        .with(
            "tag",
            ColumnData::Int32(rows.iter().map(|r| r.0 as i32 * 2).collect()),
        )
        .with(
            "v",
            ColumnData::FloatVector {
                dim: DIM,
                data: rows
                    .iter()
                    .flat_map(|r| r.1.iter().map(|x| *x as f32))
                    .collect(),
            },
        )
}

/// A filter template and the same predicate in Rust (`tag` is `2 * id`).
#[allow(clippy::type_complexity)]
fn filter(f: Option<(u8, i64)>) -> (Option<String>, Box<dyn Fn(i64) -> bool>) {
    match f {
        None => (None, Box::new(|_| true)),
        Some((0, c)) => (Some(format!("id < {c}")), Box::new(move |id| id < c)),
        Some((1, c)) => (
            Some(format!("tag >= {} and tag % 3 == 0", 2 * c)),
            Box::new(move |id| 2 * id >= 2 * c && (2 * id) % 3 == 0),
        ),
        Some((2, c)) => (
            Some(format!("id in [{}, {}, {}]", c, c + 1, c + 7)),
            Box::new(move |id| id == c || id == c + 1 || id == c + 7),
        ),
        Some((_, c)) => (
            Some(format!("not (id > {c} or tag == 10)")),
            Box::new(move |id| !(id > c || 2 * id == 10)),
        ),
    }
}

fn reference(
    model: &BTreeMap<i64, Vec<f32>>,
    q: &[f32],
    metric: Metric,
    k: usize,
    keep: &dyn Fn(i64) -> bool,
) -> Vec<(i64, f64)> {
    let mut all: Vec<(i64, f64)> = model
        .iter()
        .filter(|(id, _)| keep(**id))
        .map(|(id, x)| {
            let dot: f64 = x.iter().zip(q).map(|(a, b)| *a as f64 * *b as f64).sum();
            let key = match metric {
                Metric::L2 => x
                    .iter()
                    .zip(q)
                    .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                    .sum(),
                Metric::Ip => -dot,
                Metric::Cosine => {
                    let nx = x.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
                    let nq = q.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
                    if nx == 0.0 || nq == 0.0 {
                        0.0
                    } else {
                        -dot / (nx * nq)
                    }
                }
            };
            (*id, key)
        })
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn search_equals_reference_through_any_history(ops in prop::collection::vec(op(), 1..40), small_segments in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options { fsync: false, seal_bytes: if small_segments { 64 * DIM * 4 } else { 256 << 20 } };
        let mut db = Database::open_with(dir.path(), opts.clone()).unwrap();
        let mut c = db.create_collection(schema()).unwrap();
        let mut model: BTreeMap<i64, Vec<f32>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(rows) => {
                    let mut seen = std::collections::HashSet::new();
                    let dup = rows.iter().any(|r| model.contains_key(&r.0) || !seen.insert(r.0));
                    let res = c.insert(batch(&rows));
                    prop_assert_eq!(res.is_err(), dup);
                    if !dup {
                        for (id, v) in rows { model.insert(id, v.iter().map(|x| *x as f32).collect()); }
                    }
                }
                Op::Upsert(rows) => {
                    let mut seen = std::collections::HashSet::new();
                    let dup = rows.iter().any(|r| !seen.insert(r.0));
                    let res = c.upsert(batch(&rows));
                    prop_assert_eq!(res.is_err(), dup);
                    if !dup {
                        for (id, v) in rows { model.insert(id, v.iter().map(|x| *x as f32).collect()); }
                    }
                }
                Op::Delete(ids) => {
                    let mut uniq = ids.clone(); uniq.sort(); uniq.dedup();
                    let want = uniq.iter().filter(|i| model.contains_key(i)).count();
                    let pks: Vec<PrimaryKey> = ids.iter().map(|i| PrimaryKey::Int(*i)).collect();
                    prop_assert_eq!(c.delete(&pks).unwrap(), want);
                    for i in ids { model.remove(&i); }
                }
                Op::Flush => c.flush().unwrap(),
                Op::Compact => c.compact().unwrap(),
                Op::Reopen => {
                    drop(c);
                    drop(db);
                    db = Database::open_with(dir.path(), opts.clone()).unwrap();
                    c = db.collection("p").unwrap();
                }
                Op::Search(qs, m, k, f) => {
                    let (expr, keep) = filter(f);
                    let metric = [Metric::L2, Metric::Ip, Metric::Cosine][m as usize];
                    let qs: Vec<Vec<f32>> = qs.iter().map(|q| q.iter().map(|x| *x as f32).collect()).collect();
                    let mut req = SearchRequest::new(qs.clone(), metric, k);
                    req.output_fields = vec!["tag".into()];
                    req.filter = expr.clone();
                    let res = c.search(&req).unwrap();
                    for (q, hits) in qs.iter().zip(&res) {
                        let want = reference(&model, q, metric, k, &*keep);
                        prop_assert_eq!(hits.len(), want.len());
                        for (h, (id, key)) in hits.iter().zip(&want) {
                            let score = metric.score_f64(*key);
                            prop_assert!((h.distance as f64 - score).abs() <= 1e-5 * score.abs().max(1.0), "{} vs {}", h.distance, score);
                            if metric != Metric::Cosine {
                                // integer data: L2 and IP are exact, so ids (ties by key) must match
                                prop_assert_eq!(&h.pk, &PrimaryKey::Int(*id));
                            }
                            let PrimaryKey::Int(hid) = h.pk else { panic!() };
                            prop_assert_eq!(&h.fields, &vec![("tag".to_string(), Value::Int(hid * 2))]);
                        }
                    }
                }
            }
            prop_assert_eq!(c.count(), model.len());
            let live_even = model.keys().filter(|id| (2 * **id) % 3 == 0).count();
            prop_assert_eq!(c.count_where(Some("tag % 3 == 0")).unwrap(), live_even);
        }
    }
}
