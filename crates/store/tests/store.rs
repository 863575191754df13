//! Collection behaviour: the seed example, every bad input, durability across reopen.

mod common;
use common::*;
use facedb_store::*;

fn ids(hits: &[Hit]) -> Vec<i64> {
    hits.iter()
        .map(|h| match h.pk {
            PrimaryKey::Int(k) => k,
            _ => panic!("int keys"),
        })
        .collect()
}

#[test]
fn seed_people_example_l2_and_ip() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.create_collection(people_schema()).unwrap();
    assert_eq!(c.insert(people_batch()).unwrap().len(), 6);
    c.flush().unwrap();
    assert_eq!(c.count(), 6);
    let q = vec![vec![1.75, 72.0, 24.0]];
    let mut req = SearchRequest::new(q.clone(), Metric::L2, 10);
    req.output_fields = vec!["id".into(), "name".into()];
    let hits = &c.search(&req).unwrap()[0];
    assert_eq!(ids(hits), vec![2, 5, 1, 6, 4, 3]);
    let want = [4.0, 5.0, 10.0025, 41.0025, 72.0009, 80.0025];
    for (h, w) in hits.iter().zip(want) {
        assert!((h.distance - w).abs() < 1e-3, "{} vs {}", h.distance, w);
    }
    assert_eq!(
        hits[0].fields,
        vec![
            ("id".to_string(), Value::Int(2)),
            ("name".to_string(), Value::String("xiaoyue".into()))
        ]
    );
    let hits = &c
        .search(&SearchRequest::new(q.clone(), Metric::Ip, 10))
        .unwrap()[0];
    assert_eq!(ids(hits), vec![3, 4, 6, 1, 2, 5]);
    assert!((hits[0].distance - 6435.15).abs() < 1e-2);
    // limit 3, and the same answers from the growing segment before any flush
    let db2dir = tempfile::tempdir().unwrap();
    let db2 = Database::open(db2dir.path()).unwrap();
    let c2 = db2.create_collection(people_schema()).unwrap();
    c2.insert(people_batch()).unwrap();
    assert_eq!(
        ids(&c2.search(&SearchRequest::new(q, Metric::L2, 3)).unwrap()[0]),
        vec![2, 5, 1]
    );
}

#[test]
fn range_search_follows_milvus_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.create_collection(people_schema()).unwrap();
    c.insert(people_batch()).unwrap();
    let mut req = SearchRequest::new(vec![vec![1.75, 72.0, 24.0]], Metric::L2, 10);
    req.range = Some(RangeParams {
        radius: Some(41.0025),
        range_filter: Some(5.0),
    });
    // 5.0 <= d < 41.0025: ids 5 (5.0) and 1 (10.0025); 6 (41.0025) is excluded
    assert_eq!(ids(&c.search(&req).unwrap()[0]), vec![5, 1]);
    req.range = Some(RangeParams {
        radius: Some(5.0),
        range_filter: Some(41.0),
    });
    assert!(matches!(
        c.search(&req),
        Err(StoreError::InvalidParameter(_))
    ));
    let mut req = SearchRequest::new(vec![vec![1.75, 72.0, 24.0]], Metric::Ip, 10);
    req.range = Some(RangeParams {
        radius: Some(6003.0),
        range_filter: Some(6400.0),
    });
    // 6003 < s <= 6400: ids 4 (6339.1), 6 (6171.1), 1 (6003.15)
    assert_eq!(ids(&c.search(&req).unwrap()[0]), vec![4, 6, 1]);
}

#[test]
fn fewer_rows_than_topk_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.create_collection(people_schema()).unwrap();
    c.insert(people_batch()).unwrap();
    let mut req = SearchRequest::new(vec![vec![1.75, 72.0, 24.0]; 2], Metric::L2, 16384);
    let res = c.search(&req).unwrap();
    assert_eq!(res.len(), 2);
    assert_eq!(ids(&res[1]), vec![2, 5, 1, 6, 4, 3]);
    req.topk = 2;
    req.offset = 1;
    assert_eq!(ids(&c.search(&req).unwrap()[0]), vec![5, 1]);
}

#[test]
fn ties_are_broken_by_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.create_collection(people_schema()).unwrap();
    let b = |ids: Vec<i64>| {
        let n = ids.len();
        Batch::new()
            .with("id", ColumnData::Int64(ids))
            .with("name", ColumnData::VarChar(vec!["x".into(); n]))
            .with(
                "metrics",
                ColumnData::FloatVector {
                    dim: 3,
                    data: vec![1.0; 3 * n],
                },
            )
    };
    c.insert(b(vec![50, 7, 30])).unwrap();
    c.flush().unwrap();
    c.insert(b(vec![3, 90])).unwrap();
    let hits = &c
        .search(&SearchRequest::new(vec![vec![0.0; 3]], Metric::L2, 4))
        .unwrap()[0];
    assert_eq!(ids(hits), vec![3, 7, 30, 50]);
}

#[test]
fn bad_inputs_give_typed_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.create_collection(people_schema()).unwrap();
    c.insert(people_batch()).unwrap();
    let one = |id: i64, name: &str, v: Vec<f32>| {
        Batch::new()
            .with("id", ColumnData::Int64(vec![id]))
            .with("name", ColumnData::VarChar(vec![name.into()]))
            .with(
                "metrics",
                ColumnData::FloatVector {
                    dim: v.len(),
                    data: v,
                },
            )
    };
    let e = c.insert(one(10, "a", vec![1.0, 2.0])).unwrap_err();
    assert_eq!(e.to_string(), "expected dim 3, got 2 at row 0");
    // row-wise: the row number is the failing row
    let rows: Vec<Vec<(String, Value)>> = (0..3)
        .map(|i| {
            vec![
                ("id".to_string(), Value::Int(100 + i)),
                ("name".to_string(), Value::String("r".into())),
                (
                    "metrics".to_string(),
                    Value::FloatVector(if i == 2 { vec![1.0; 2] } else { vec![1.0; 3] }),
                ),
            ]
        })
        .collect();
    assert_eq!(
        Batch::from_rows(c.schema(), &rows).unwrap_err().to_string(),
        "expected dim 3, got 2 at row 2"
    );
    assert!(matches!(
        c.insert(one(10, "a", vec![1.0, f32::NAN, 2.0])),
        Err(StoreError::NonFinite { row: 0, .. })
    ));
    assert!(matches!(
        c.insert(one(10, "a", vec![1.0, f32::INFINITY, 2.0])),
        Err(StoreError::NonFinite { .. })
    ));
    assert!(matches!(
        c.insert(one(10, &"x".repeat(201), vec![1.0; 3])),
        Err(StoreError::VarCharTooLong {
            len: 201,
            max_length: 200,
            ..
        })
    ));
    let missing = Batch::new().with("id", ColumnData::Int64(vec![10])).with(
        "metrics",
        ColumnData::FloatVector {
            dim: 3,
            data: vec![1.0; 3],
        },
    );
    assert!(
        matches!(c.insert(missing), Err(StoreError::MissingField { ref name }) if name == "name")
    );
    let unknown = one(10, "a", vec![1.0; 3]).with("age", ColumnData::Int64(vec![3]));
    assert!(
        matches!(c.insert(unknown), Err(StoreError::UnknownField { ref name }) if name == "age")
    );
    // duplicate key, in the collection and within a batch: nothing of the batch is written
    let mut dup = one(10, "a", vec![1.0; 3]);
    dup.columns[0].1 = ColumnData::Int64(vec![10]);
    let two = Batch::new()
        .with("id", ColumnData::Int64(vec![11, 3]))
        .with("name", ColumnData::VarChar(vec!["a".into(), "b".into()]))
        .with(
            "metrics",
            ColumnData::FloatVector {
                dim: 3,
                data: vec![1.0; 6],
            },
        );
    assert!(matches!(
        c.insert(two),
        Err(StoreError::DuplicatePrimaryKey {
            key: PrimaryKey::Int(3)
        })
    ));
    let twice = Batch::new()
        .with("id", ColumnData::Int64(vec![12, 12]))
        .with("name", ColumnData::VarChar(vec!["a".into(), "b".into()]))
        .with(
            "metrics",
            ColumnData::FloatVector {
                dim: 3,
                data: vec![1.0; 6],
            },
        );
    assert!(matches!(
        c.insert(twice),
        Err(StoreError::DuplicatePrimaryKey {
            key: PrimaryKey::Int(12)
        })
    ));
    assert_eq!(c.count(), 6);
    assert!(c
        .get(&[PrimaryKey::Int(11), PrimaryKey::Int(12)], &[])
        .unwrap()
        .is_empty());
    // search errors
    let q = || SearchRequest::new(vec![vec![1.0, 2.0, 3.0]], Metric::L2, 10);
    let mut r = q();
    r.topk = 0;
    assert!(matches!(
        c.search(&r),
        Err(StoreError::TopkOutOfRange { topk: 0 })
    ));
    r.topk = 16385;
    assert!(matches!(
        c.search(&r),
        Err(StoreError::TopkOutOfRange { topk: 16385 })
    ));
    let mut r = q();
    r.vectors = vec![];
    assert!(matches!(
        c.search(&r),
        Err(StoreError::NqOutOfRange { nq: 0 })
    ));
    r.vectors = vec![vec![0.0; 3]; 16385];
    assert!(matches!(
        c.search(&r),
        Err(StoreError::NqOutOfRange { nq: 16385 })
    ));
    let mut r = q();
    r.vectors = vec![vec![0.0; 3], vec![0.0; 4]];
    assert_eq!(
        c.search(&r).unwrap_err().to_string(),
        "expected dim 3, got 4 at row 1"
    );
    r.vectors = vec![vec![0.0, f32::NAN, 0.0]];
    assert!(matches!(c.search(&r), Err(StoreError::NonFinite { .. })));
    let mut r = q();
    r.output_fields = vec!["nope".into()];
    assert!(matches!(c.search(&r), Err(StoreError::UnknownField { .. })));
    assert!(matches!(
        db.collection("nope"),
        Err(StoreError::CollectionNotFound { .. })
    ));
    assert!(matches!(
        db.create_collection(people_schema()),
        Err(StoreError::CollectionExists { .. })
    ));
    // wrong primary-key type in delete
    assert!(c.delete(&[PrimaryKey::Str("1".into())]).is_err());
    assert_eq!(c.count(), 6);
}

#[test]
fn upsert_delete_get_survive_reopen_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let c = db.create_collection(people_schema()).unwrap();
        c.insert(people_batch()).unwrap();
        c.flush().unwrap();
        assert_eq!(
            c.delete(&[PrimaryKey::Int(2), PrimaryKey::Int(99)])
                .unwrap(),
            1
        );
        let up = Batch::new()
            .with("id", ColumnData::Int64(vec![5]))
            .with("name", ColumnData::VarChar(vec!["renamed".into()]))
            .with(
                "metrics",
                ColumnData::FloatVector {
                    dim: 3,
                    data: vec![1.75, 72.0, 24.0],
                },
            );
        c.upsert(up).unwrap();
        assert_eq!(c.count(), 5);
    }
    let check = |c: &Collection| {
        assert_eq!(c.count(), 5);
        let hits = &c
            .search(&SearchRequest::new(
                vec![vec![1.75, 72.0, 24.0]],
                Metric::L2,
                10,
            ))
            .unwrap()[0];
        assert_eq!(ids(hits), vec![5, 1, 6, 4, 3]);
        assert_eq!(hits[0].distance, 0.0);
        let got = c
            .get(&[PrimaryKey::Int(5), PrimaryKey::Int(2)], &["name".into()])
            .unwrap();
        assert_eq!(
            got,
            vec![vec![("name".to_string(), Value::String("renamed".into()))]]
        );
    };
    {
        let db = Database::open(dir.path()).unwrap();
        let c = db.collection("people").unwrap();
        assert!(c.recovery().replayed >= 2);
        check(&c);
        c.compact().unwrap();
        check(&c);
    }
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("people").unwrap();
    check(&c);
    assert!(c.verify());
    db.drop_collection("people").unwrap();
    assert!(!db.has_collection("people"));
    drop(c);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert!(db.list_collections().is_empty());
}

#[test]
fn auto_id_and_varchar_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut s = people_schema();
    s.name = "auto".into();
    s.fields[0].auto_id = true;
    let c = db.create_collection(s).unwrap();
    let b = || {
        Batch::new()
            .with("name", ColumnData::VarChar(vec!["a".into(), "b".into()]))
            .with(
                "metrics",
                ColumnData::FloatVector {
                    dim: 3,
                    data: vec![0.0; 6],
                },
            )
    };
    let k1 = c.insert(b()).unwrap();
    let k2 = c.insert(b()).unwrap();
    assert_eq!(k1.len(), 2);
    assert!(k1.iter().all(|k| !k2.contains(k)));
    assert!(c
        .insert(b().with("id", ColumnData::Int64(vec![1, 2])))
        .is_err());
    drop(c);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("auto").unwrap();
    let k3 = c.insert(b()).unwrap();
    assert!(
        k3.iter().all(|k| !k1.contains(k) && !k2.contains(k)),
        "auto ids are not reused after reopen"
    );

    let s = CollectionSchema {
        name: "strs".into(),
        description: String::new(),
        fields: vec![
            FieldSchema::primary("pk", DataType::VarChar { max_length: 16 }, false),
            FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
            FieldSchema::new("age", DataType::Int8),
        ],
    };
    let c = db.create_collection(s).unwrap();
    let b = Batch::new()
        .with("pk", ColumnData::VarChar(vec!["b".into(), "a".into()]))
        .with(
            "v",
            ColumnData::FloatVector {
                dim: 2,
                data: vec![0.0, 0.0, 0.0, 0.0],
            },
        )
        .with("age", ColumnData::Int64(vec![3, 300]));
    assert!(matches!(
        c.insert(b.clone()),
        Err(StoreError::InvalidValue { row: 1, .. })
    ));
    let b = Batch::new()
        .with("pk", ColumnData::VarChar(vec!["b".into(), "a".into()]))
        .with(
            "v",
            ColumnData::FloatVector {
                dim: 2,
                data: vec![0.0, 0.0, 0.0, 0.0],
            },
        )
        .with("age", ColumnData::Int32(vec![3, 4]));
    c.insert(b).unwrap();
    let hits = &c
        .search(&SearchRequest::new(vec![vec![0.0, 0.0]], Metric::L2, 2))
        .unwrap()[0];
    assert_eq!(
        hits.iter().map(|h| h.pk.clone()).collect::<Vec<_>>(),
        vec![PrimaryKey::Str("a".into()), PrimaryKey::Str("b".into())]
    );
    let rows = c.query(None, &["*".into()], None, 0).unwrap();
    assert_eq!(
        rows[1],
        vec![
            ("pk".to_string(), Value::String("a".into())),
            ("age".to_string(), Value::Int(4))
        ]
    );
}

#[test]
fn concurrent_writers_and_readers_see_every_acknowledged_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.create_collection(people_schema()).unwrap();
    let threads = 6;
    let per = 40;
    std::thread::scope(|s| {
        for t in 0..threads {
            let c = &c;
            s.spawn(move || {
                for i in 0..per {
                    let id = (t * 1000 + i) as i64;
                    c.insert(
                        Batch::new()
                            .with("id", ColumnData::Int64(vec![id]))
                            .with("name", ColumnData::VarChar(vec![format!("t{t}")]))
                            .with(
                                "metrics",
                                ColumnData::FloatVector {
                                    dim: 3,
                                    data: vec![id as f32, 0.0, 0.0],
                                },
                            ),
                    )
                    .unwrap();
                    // read-your-writes: the acknowledged row is found at distance 0
                    let hits = c
                        .search(&SearchRequest::new(
                            vec![vec![id as f32, 0.0, 0.0]],
                            Metric::L2,
                            1,
                        ))
                        .unwrap();
                    assert_eq!(hits[0][0].pk, PrimaryKey::Int(id));
                    if i == per / 2 && t == 0 {
                        c.flush().unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(c.count(), threads * per);
    drop(c);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.collection("people").unwrap().count(), threads * per);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.create_collection(people_schema()).unwrap();
    assert!(matches!(
        Database::open(dir.path()),
        Err(StoreError::Locked { .. })
    ));
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert!(db.has_collection("people"));
}

/// Vector of person `id` in its generation `gen` (each upsert is a new generation).
fn vec_of(id: i64, gen: i64) -> [f32; 3] {
    [id as f32, (id % 7) as f32, gen as f32]
}

/// A batch of people `ids`, generation `gen`: names `p<id>-<gen>`, vectors [`vec_of`].
fn people_gen_batch(ids: std::ops::Range<i64>, gen: i64) -> Batch {
    Batch::new()
        .with("id", ColumnData::Int64(ids.clone().collect()))
        .with(
            "name",
            ColumnData::VarChar(ids.clone().map(|i| format!("p{i}-{gen}")).collect()),
        )
        .with(
            "metrics",
            ColumnData::FloatVector {
                dim: 3,
                data: ids.flat_map(|i| vec_of(i, gen)).collect(),
            },
        )
}

/// Checks a people collection (ids below 6000) against `model` (id -> generation of its live
/// row): the count, every key found by `get`, and every 37th row its own nearest neighbour
/// at distance 0 with its name.
fn check_people(c: &Collection, model: &std::collections::BTreeMap<i64, i64>, when: &str) {
    assert_eq!(c.count(), model.len(), "{when}: count");
    let all: Vec<PrimaryKey> = (0..6000).map(PrimaryKey::Int).collect();
    let rows = c.get(&all, &["name".into()]).unwrap();
    assert_eq!(rows.len(), model.len(), "{when}: rows found by key");
    for (id, gen) in model.iter().step_by(37) {
        let q = vec![vec_of(*id, *gen).to_vec()];
        let mut req = SearchRequest::new(q, Metric::L2, 1);
        req.output_fields = vec!["name".into()];
        let h = &c.search(&req).unwrap()[0][0];
        assert_eq!(h.pk, PrimaryKey::Int(*id), "{when}: nearest of {id}");
        assert_eq!(h.distance, 0.0, "{when}: distance of {id}");
        assert_eq!(
            h.fields,
            vec![("name".to_string(), Value::String(format!("p{id}-{gen}")))],
            "{when}: fields of {id}"
        );
    }
}

/// Options for the people collection (3-d vectors) sealing a segment per 100 rows, fsync on.
fn segment_per_100_rows() -> Options {
    Options {
        fsync: true,
        seal_bytes: 100 * 3 * 4,
    }
}

/// Waits (at most 60 s) until the background writer has written every sealed segment's file.
fn wait_for_segment_files(c: &Collection) {
    let t0 = std::time::Instant::now();
    while !c.segments().iter().all(|s| !s.sealed || s.persisted) {
        assert!(t0.elapsed().as_secs() < 60, "segment files not written");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Rows of segments sealed in the background: deletes and upserts made while their files are
/// still being written, then a close (which leaves pending files to the WAL) and reopens.
#[test]
fn segments_sealed_in_the_background_keep_every_write_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = segment_per_100_rows();
    // The model: id -> generation of its live row.
    let mut model = std::collections::BTreeMap::new();
    {
        let db = Database::open_with(dir.path(), opts.clone()).unwrap();
        let c = db.create_collection(people_schema()).unwrap();
        for b in 0..30 {
            c.insert(people_gen_batch(b * 100..(b + 1) * 100, 0))
                .unwrap();
            model.extend((b * 100..(b + 1) * 100).map(|i| (i, 0)));
        }
        // Right away, while files are being written: deletes and upserts across segments.
        let dels: Vec<PrimaryKey> = (0..3000).step_by(9).map(PrimaryKey::Int).collect();
        assert_eq!(c.delete(&dels).unwrap(), dels.len());
        (0..3000).step_by(9).for_each(|i| {
            model.remove(&i);
        });
        c.upsert(people_gen_batch(1000..1150, 1)).unwrap();
        model.extend((1000..1150).map(|i| (i, 1)));
        assert!(c.segments().iter().filter(|s| s.sealed).count() >= 30);
        check_people(&c, &model, "before close");
    } // close: the writer stops after its current file; the rest replays from the WAL
    {
        let db = Database::open_with(dir.path(), opts.clone()).unwrap();
        let c = db.collection("people").unwrap();
        check_people(&c, &model, "after reopen");
        c.insert(people_gen_batch(5000..5250, 2)).unwrap();
        model.extend((5000..5250).map(|i| (i, 2)));
        c.flush().unwrap();
        assert!(
            c.segments().iter().all(|s| !s.sealed || s.persisted),
            "flush writes every pending segment"
        );
        check_people(&c, &model, "after flush");
    }
    let db = Database::open_with(dir.path(), opts).unwrap();
    let c = db.collection("people").unwrap();
    check_people(&c, &model, "after second reopen");
    c.compact().unwrap();
    check_people(&c, &model, "after compaction");
}

/// Rows replayed from the WAL at open seal where the writes sealed them: segments whose
/// files were never written (here: logged under a larger seal size) are sealed and written
/// again, not replayed at every open into one growing segment.
#[test]
fn replayed_rows_seal_at_the_seal_size_and_are_not_replayed_again() {
    let dir = tempfile::tempdir().unwrap();
    let small = segment_per_100_rows();
    let mut model = std::collections::BTreeMap::new();
    {
        // Nothing seals: all 12 records stay in the WAL.
        let db = Database::open_with(dir.path(), Options::default()).unwrap();
        let c = db.create_collection(people_schema()).unwrap();
        for b in 0..10 {
            c.insert(people_gen_batch(b * 100..(b + 1) * 100, 0))
                .unwrap();
            model.extend((b * 100..(b + 1) * 100).map(|i| (i, 0)));
        }
        let dels: Vec<PrimaryKey> = (0..1000).step_by(7).map(PrimaryKey::Int).collect();
        assert_eq!(c.delete(&dels).unwrap(), dels.len());
        (0..1000).step_by(7).for_each(|i| {
            model.remove(&i);
        });
        c.upsert(people_gen_batch(150..200, 1)).unwrap();
        model.extend((150..200).map(|i| (i, 1)));
        assert_eq!(c.sealed_segments(), 0);
    }
    {
        let db = Database::open_with(dir.path(), small.clone()).unwrap();
        let c = db.collection("people").unwrap();
        assert_eq!(c.recovery().replayed, 12);
        let segs = c.segments();
        let sealed: Vec<usize> = segs.iter().filter(|s| s.sealed).map(|s| s.rows).collect();
        assert_eq!(
            sealed,
            vec![100; 10],
            "one sealed segment per 100 replayed rows"
        );
        assert_eq!(segs.last().map(|s| (s.sealed, s.rows)), Some((false, 50)));
        check_people(&c, &model, "after replay");
        // The segments' files are written in the background.
        wait_for_segment_files(&c);
    }
    let db = Database::open_with(dir.path(), small).unwrap();
    let c = db.collection("people").unwrap();
    // Only the delete and the upsert, after the last replayed seal, replay again.
    assert_eq!(c.recovery().replayed, 2);
    assert_eq!(c.sealed_segments(), 10);
    check_people(&c, &model, "after second reopen");
}

/// A segment sealed before a crash and replayed at open: once its file is written, the WAL
/// files holding only its records are removed (the writes rotated the log at its seal), and
/// the next open replays only what came after it.
#[test]
fn wal_files_of_a_replayed_seal_are_removed_once_its_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let small = segment_per_100_rows();
    let cdir = dir.path().join("c000001_people");
    let wal_files = || {
        let mut v: Vec<String> = std::fs::read_dir(cdir.join("wal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let mut model = std::collections::BTreeMap::new();
    {
        let db = Database::open_with(dir.path(), small.clone()).unwrap();
        let c = db.create_collection(people_schema()).unwrap();
        // The segment file cannot be written (a file stands where its directory was), as
        // after a crash while it waited.
        std::fs::remove_dir(cdir.join("segments")).unwrap();
        std::fs::write(cdir.join("segments"), b"").unwrap();
        c.insert(people_gen_batch(0..100, 0)).unwrap(); // seals: the log rotates
        model.extend((0..100).map(|i| (i, 0)));
        assert!(c.segments().iter().all(|s| !s.persisted));
    }
    assert_eq!(wal_files(), ["00000000.log", "00000001.log"]);
    std::fs::remove_file(cdir.join("segments")).unwrap();
    {
        let db = Database::open_with(dir.path(), small.clone()).unwrap();
        let c = db.collection("people").unwrap();
        assert_eq!(c.recovery().replayed, 1);
        c.insert(people_gen_batch(100..150, 0)).unwrap();
        model.extend((100..150).map(|i| (i, 0)));
        wait_for_segment_files(&c);
        assert_eq!(c.sealed_segments(), 1);
        assert_eq!(
            wal_files(),
            ["00000001.log"],
            "the sealed rows' WAL file is gone"
        );
        check_people(&c, &model, "after replay");
    }
    let db = Database::open_with(dir.path(), small).unwrap();
    let c = db.collection("people").unwrap();
    assert_eq!(
        c.recovery().replayed,
        1,
        "only the insert after the seal replays"
    );
    check_people(&c, &model, "after second reopen");
}

/// Batches of at least 1 MiB of vectors take the staged path (vectors copied into the
/// growing segment while the WAL record is written): inserts and upserts across seals,
/// a refused batch, and a reopen keep exactly the acknowledged rows.
#[test]
fn large_batches_written_beside_their_wal_record_keep_every_row() {
    const DIM: usize = 64;
    const ROWS: i64 = 4500; // 4500 x 64 x 4 = 1.15 MB of vectors per batch
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        fsync: true,
        seal_bytes: 3 * ROWS as usize * DIM * 4, // a segment per 3 batches
    };
    let schema = CollectionSchema {
        name: "big".into(),
        description: String::new(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("tag", DataType::VarChar { max_length: 32 }),
            FieldSchema::new("v", DataType::FloatVector { dim: DIM as u32 }),
        ],
    };
    let vec_of = |id: i64, gen: i64| {
        let mut v = vec![0f32; DIM];
        v[0] = id as f32;
        v[1] = gen as f32;
        v[2] = (id % 13) as f32;
        v
    };
    let batch = |ids: std::ops::Range<i64>, gen: i64| {
        Batch::new()
            .with("id", ColumnData::Int64(ids.clone().collect()))
            .with(
                "tag",
                ColumnData::VarChar(ids.clone().map(|i| format!("t{i}-{gen}")).collect()),
            )
            .with(
                "v",
                ColumnData::FloatVector {
                    dim: DIM,
                    data: ids.flat_map(|i| vec_of(i, gen)).collect(),
                },
            )
    };
    let mut model = std::collections::BTreeMap::new();
    let check = |c: &Collection, model: &std::collections::BTreeMap<i64, i64>, when: &str| {
        assert_eq!(c.count(), model.len(), "{when}: count");
        for (id, gen) in model.iter().step_by(211) {
            let mut req = SearchRequest::new(vec![vec_of(*id, *gen)], Metric::L2, 1);
            req.output_fields = vec!["tag".into()];
            let h = &c.search(&req).unwrap()[0][0];
            assert_eq!(
                (&h.pk, h.distance),
                (&PrimaryKey::Int(*id), 0.0),
                "{when}: {id}"
            );
            assert_eq!(
                h.fields,
                vec![("tag".to_string(), Value::String(format!("t{id}-{gen}")))],
                "{when}: fields of {id}"
            );
        }
    };
    {
        let db = Database::open_with(dir.path(), opts.clone()).unwrap();
        let c = db.create_collection(schema.clone()).unwrap();
        for b in 0..7 {
            let ids = b * ROWS..(b + 1) * ROWS;
            c.insert(batch(ids.clone(), 0)).unwrap();
            model.extend(ids.map(|i| (i, 0)));
        }
        // An upsert replacing a whole batch's keys, across a seal.
        let ids = 2 * ROWS + 100..3 * ROWS + 100;
        c.upsert(batch(ids.clone(), 1)).unwrap();
        model.extend(ids.map(|i| (i, 1)));
        // A large batch with one existing key is refused whole.
        let err = c.insert(batch(7 * ROWS - 1..8 * ROWS - 1, 2)).unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicatePrimaryKey { .. }),
            "{err}"
        );
        // A small batch (the unstaged path) after the staged ones.
        c.insert(batch(8 * ROWS..8 * ROWS + 10, 3)).unwrap();
        model.extend((8 * ROWS..8 * ROWS + 10).map(|i| (i, 3)));
        assert!(c.sealed_segments() >= 2, "{} sealed", c.sealed_segments());
        check(&c, &model, "before reopen");
    }
    let db = Database::open_with(dir.path(), opts).unwrap();
    let c = db.collection("big").unwrap();
    check(&c, &model, "after reopen");
}
