#![allow(dead_code)]
use facedb_store::*;

pub fn people_schema() -> CollectionSchema {
    CollectionSchema {
        name: "people".into(),
        description: "people".into(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("name", DataType::VarChar { max_length: 200 }),
            FieldSchema::new("metrics", DataType::FloatVector { dim: 3 }),
        ],
    }
}

pub fn people_batch() -> Batch {
    let names = [
        "xiaoming",
        "xiaoyue",
        "xiaowang",
        "xiaoli",
        "xiaozhang",
        "xiaozhao",
    ];
    let metrics = [
        [1.8, 75.0, 25.0],
        [1.75, 70.0, 24.0],
        [1.8, 80.0, 28.0],
        [1.78, 78.0, 30.0],
        [1.75, 70.0, 23.0],
        [1.8, 76.0, 29.0],
    ];
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
        )
}
