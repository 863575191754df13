//! Filtered search, query, count and delete (facedb-expr in the store).

mod common;
use common::*;
use facedb_store::*;

fn ids(hits: &[Hit]) -> Vec<i64> {
    hits.iter()
        .map(|h| {
            if let PrimaryKey::Int(k) = h.pk {
                k
            } else {
                panic!()
            }
        })
        .collect()
}

fn people() -> (tempfile::TempDir, std::sync::Arc<Collection>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.create_collection(people_schema()).unwrap();
    c.insert(people_batch()).unwrap();
    (dir, c)
}

/// The real Milvus 2.3.5 answers of the seed example (`../shared/data/milvus-reference`).
#[test]
fn seed_filters_match_milvus() {
    let (_d, c) = people();
    c.flush().unwrap();
    let q = vec![vec![1.75f32, 72.0, 24.0]];
    let cases: [(&str, Vec<i64>, Vec<i64>); 5] = [
        ("id > 2", vec![5, 6, 4, 3], vec![3, 4, 6, 5]),
        (
            "name like 'xiao%'",
            vec![2, 5, 1, 6, 4, 3],
            vec![3, 4, 6, 1, 2, 5],
        ),
        ("name like 'xiaoz%'", vec![5, 6], vec![6, 5]),
        ("id in [2,4,6]", vec![2, 6, 4], vec![4, 6, 2]),
        ("id > 2 and name like \"xiaoz%\"", vec![5, 6], vec![6, 5]),
    ];
    for (expr, l2, ip) in cases {
        for (metric, want) in [(Metric::L2, l2), (Metric::Ip, ip)] {
            let mut r = SearchRequest::new(q.clone(), metric, 10);
            r.filter = Some(expr.into());
            assert_eq!(ids(&c.search(&r).unwrap()[0]), want, "{expr} {metric:?}");
        }
    }
    let rows = c
        .query(Some("id > 2"), &["id".into(), "name".into()], None, 0)
        .unwrap();
    let got: Vec<(Value, Value)> = rows
        .into_iter()
        .map(|r| (r[0].1.clone(), r[1].1.clone()))
        .collect();
    let want = [
        (3, "xiaowang"),
        (4, "xiaoli"),
        (5, "xiaozhang"),
        (6, "xiaozhao"),
    ];
    assert_eq!(
        got,
        want.iter()
            .map(|(i, n)| (Value::Int(*i), Value::String(n.to_string())))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        c.query(Some("name like 'xiao%'"), &["id".into()], None, 0)
            .unwrap()
            .len(),
        6
    );
    assert_eq!(c.count_where(Some("name like 'xiao%'")).unwrap(), 6);
    assert_eq!(c.count_where(Some("id in [1, 3, 99]")).unwrap(), 2);
}

#[test]
fn malformed_expressions_are_typed_errors_with_offsets() {
    let (_d, c) = people();
    for (expr, offset) in [
        ("id >", 4),
        ("age > 2", 0),
        ("name > 2", 7),
        ("name like xiao%", 10),
        ("(id > 2", 0),
    ] {
        let mut r = SearchRequest::new(vec![vec![1.0, 2.0, 3.0]], Metric::L2, 10);
        r.filter = Some(expr.into());
        match c.search(&r) {
            Err(StoreError::InvalidExpr(e)) => assert_eq!(e.offset(), offset, "{expr}: {e}"),
            other => panic!("{expr}: {other:?}"),
        }
        assert!(matches!(
            c.query(Some(expr), &[], None, 0),
            Err(StoreError::InvalidExpr(_))
        ));
        assert!(matches!(
            c.delete_where(expr),
            Err(StoreError::InvalidExpr(_))
        ));
    }
    assert_eq!(c.count(), 6);
}

#[test]
fn selective_filter_returns_exactly_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut s = people_schema();
    s.fields[2].data_type = DataType::FloatVector { dim: 8 };
    let c = db.create_collection(s).unwrap();
    let n = 10_000i64;
    let names: Vec<String> = (0..n)
        .map(|i| {
            if i % 2000 == 7 {
                "rare".into()
            } else {
                format!("p{i}")
            }
        })
        .collect();
    let data: Vec<f32> = (0..n * 8)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    c.insert(
        Batch::new()
            .with("id", ColumnData::Int64((0..n).collect()))
            .with("name", ColumnData::VarChar(names))
            .with("metrics", ColumnData::FloatVector { dim: 8, data }),
    )
    .unwrap();
    c.flush().unwrap();
    for nq in [1, 20] {
        let mut r = SearchRequest::new(vec![vec![0.5; 8]; nq], Metric::L2, 3);
        r.filter = Some("name == 'rare'".into());
        let res = c.search(&r).unwrap();
        for hits in &res {
            assert_eq!(hits.len(), 3);
            assert!(ids(hits).iter().all(|i| i % 2000 == 7));
        }
        r.topk = 10;
        assert_eq!(
            c.search(&r).unwrap()[0].len(),
            5,
            "min(limit, matching rows)"
        );
    }
}

#[test]
fn delete_where_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let c = db.create_collection(people_schema()).unwrap();
        c.insert(people_batch()).unwrap();
        c.flush().unwrap();
        assert_eq!(c.delete_where("name like 'xiaoz%' or id == 1").unwrap(), 3);
        assert_eq!(c.delete_where("id in [1, 2]").unwrap(), 1);
        assert!(matches!(
            c.delete_where(" "),
            Err(StoreError::InvalidParameter(_))
        ));
    }
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("people").unwrap();
    let rows = c.query(None, &["id".into()], None, 0).unwrap();
    assert_eq!(
        rows,
        vec![
            vec![("id".to_string(), Value::Int(3))],
            vec![("id".to_string(), Value::Int(4))]
        ]
    );
}

/// Selective filters answered through scalar indexes on sealed segments equal the full
/// column scan on a growing segment with the same rows.
#[test]
fn scalar_indexes_equal_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let schema = |name: &str| CollectionSchema {
        name: name.into(),
        description: String::new(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("bucket", DataType::Int16),
            FieldSchema::new("name", DataType::VarChar { max_length: 32 }),
            FieldSchema::new("v", DataType::FloatVector { dim: 4 }),
        ],
    };
    let sealed = db.create_collection(schema("sealed")).unwrap();
    let growing = db.create_collection(schema("growing")).unwrap();
    let n = 20_000i64;
    for c in [&sealed, &growing] {
        c.insert(
            Batch::new()
                .with("id", ColumnData::Int64((0..n).collect()))
                .with(
                    "bucket",
                    ColumnData::Int16((0..n).map(|i| (i * 7919 % 10_000) as i16).collect()),
                )
                .with(
                    "name",
                    ColumnData::VarChar((0..n).map(|i| format!("p{}", i % 5000)).collect()),
                )
                .with(
                    "v",
                    ColumnData::FloatVector {
                        dim: 4,
                        data: (0..n * 4).map(|i| (i % 97) as f32).collect(),
                    },
                ),
        )
        .unwrap();
        c.delete(&[PrimaryKey::Int(3), PrimaryKey::Int(5003)])
            .unwrap();
    }
    sealed.flush().unwrap();
    assert_eq!(sealed.sealed_segments(), 1);
    for expr in [
        "bucket == 7",
        "bucket in [3, 99, 5000]",
        "10 < bucket <= 12",
        "bucket < 2 and name like \"p1%\"",
        "name == \"p3\"",
        "name in [\"p1\", \"p2\", \"nobody\"] and bucket > 100",
        "bucket >= 9998 or name == \"p4\"",
        "bucket < 5000",
        "bucket == 7 and id != 3",
    ] {
        let a = sealed
            .query(
                Some(expr),
                &["id".into(), "bucket".into(), "name".into()],
                None,
                0,
            )
            .unwrap();
        let b = growing
            .query(
                Some(expr),
                &["id".into(), "bucket".into(), "name".into()],
                None,
                0,
            )
            .unwrap();
        assert_eq!(a, b, "{expr}");
        let mut r = SearchRequest::new(vec![vec![1.0, 2.0, 3.0, 4.0]], Metric::L2, 5);
        r.filter = Some(expr.into());
        assert_eq!(
            sealed.search(&r).unwrap(),
            growing.search(&r).unwrap(),
            "{expr}"
        );
    }
    // p3 is at ids 3, 5003, 10003, 15003; 3 and 5003 are deleted
    assert_eq!(sealed.count_where(Some("name == \"p3\"")).unwrap(), 2);
}
