//! `facedb demo`: the seed's `people` example (Milvus + pymilvus in the blog post) through
//! the embedded store.

use anyhow::Result;
use facedb_store::*;
use std::path::PathBuf;

pub fn run(data: Option<PathBuf>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let temporary = data.is_none();
    let dir = data.unwrap_or_else(|| tmp.path().to_path_buf());
    let db = Database::open(&dir)?;
    if db.has_collection("people") {
        db.drop_collection("people")?;
    }
    let people = db.create_collection(CollectionSchema {
        name: "people".into(),
        description: "people".into(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("name", DataType::VarChar { max_length: 200 }),
            FieldSchema::new("metrics", DataType::FloatVector { dim: 3 }),
        ],
    })?;
    let names = [
        "xiaoming",
        "xiaoyue",
        "xiaowang",
        "xiaoli",
        "xiaozhang",
        "xiaozhao",
    ];
    let metrics: [[f32; 3]; 6] = [
        [1.8, 75.0, 25.0],
        [1.75, 70.0, 24.0],
        [1.8, 80.0, 28.0],
        [1.78, 78.0, 30.0],
        [1.75, 70.0, 23.0],
        [1.8, 76.0, 29.0],
    ];
    let keys = people.insert(
        Batch::new()
            .with("id", ColumnData::Int64(vec![1, 2, 3, 4, 5, 6]))
            .with(
                "name",
                ColumnData::VarChar(names.iter().map(|s| s.to_string()).collect()),
            )
            .with(
                "metrics",
                ColumnData::FloatVector {
                    dim: 3,
                    data: metrics.iter().flatten().copied().collect(),
                },
            ),
    )?;
    people.flush()?;
    println!(
        "database: {}{}",
        dir.display(),
        if temporary {
            " (temporary, removed on exit; --data DIR keeps it)"
        } else {
            ""
        }
    );
    println!(
        "inserted {} rows, {} after flush",
        keys.len(),
        people.count()
    );
    let q = vec![1.75f32, 72.0, 24.0];
    for (metric, limit) in [(Metric::L2, 10), (Metric::Ip, 10), (Metric::L2, 3)] {
        let mut req = SearchRequest::new(vec![q.clone()], metric, limit);
        req.output_fields = vec!["id".into(), "name".into()];
        let t = std::time::Instant::now();
        let hits = people.search(&req)?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        println!(
            "--- FLAT {} search {:?} limit={limit} ({us:.0} µs, strongly consistent)",
            metric.name(),
            q
        );
        for h in &hits[0] {
            let name = h
                .fields
                .iter()
                .find(|(n, _)| n == "name")
                .map(|(_, v)| v.clone());
            let name = match name {
                Some(Value::String(s)) => s,
                _ => String::new(),
            };
            println!("  id={} name={name:?} distance={}", h.pk, h.distance);
        }
    }
    Ok(())
}
