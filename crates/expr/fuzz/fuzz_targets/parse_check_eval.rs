//! Fuzzes the whole pipeline on a fixed schema and 70 rows of fixed columns:
//! parse -> check -> evaluate, plus invariants that must hold for any input:
//! - every error points inside the input (offset <= len) and formats;
//! - the bitmap has one bit per row and no bits past the end;
//! - `not (e)` selects exactly the complement of `e`;
//! - a primary-key hint covers every matching row (and exactly them when `exact`).
#![no_main]

use facedb_expr::{
    check, compile, parse, ColumnMap, ColumnView, FieldKind, KeySet, ScalarType,
};
use libfuzzer_sys::fuzz_target;

const N: usize = 70;

fn schema() -> [(&'static str, FieldKind); 9] {
    [
        ("id", FieldKind::Scalar(ScalarType::Int64)),
        ("age", FieldKind::Scalar(ScalarType::Int8)),
        ("n32", FieldKind::Scalar(ScalarType::Int32)),
        ("score", FieldKind::Scalar(ScalarType::Float)),
        ("weight", FieldKind::Scalar(ScalarType::Double)),
        ("name", FieldKind::Scalar(ScalarType::VarChar)),
        ("flag", FieldKind::Scalar(ScalarType::Bool)),
        ("meta", FieldKind::Scalar(ScalarType::Json)),
        ("vec", FieldKind::Vector),
    ]
}

struct Data {
    id: Vec<i64>,
    age: Vec<i8>,
    n32: Vec<i32>,
    score: Vec<f32>,
    weight: Vec<f64>,
    name: Vec<String>,
    flag: Vec<bool>,
    meta: Vec<Vec<u8>>,
}

fn data() -> Data {
    let words = ["xiaoming", "xiaoyue", "", "a%b", "a_b", "é", "Zz", "x\\y", "100%"];
    Data {
        id: (0..N as i64)
            .map(|i| match i {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => i * 3 - 50,
            })
            .collect(),
        age: (0..N).map(|i| (i as i64 * 37 % 256 - 128) as i8).collect(),
        n32: (0..N).map(|i| (i as i32 - 35) * 1_000_003).collect(),
        score: (0..N)
            .map(|i| match i {
                3 => f32::NAN,
                4 => f32::INFINITY,
                _ => i as f32 * 0.25 - 5.0,
            })
            .collect(),
        weight: (0..N)
            .map(|i| if i == 5 { f64::NAN } else { (i as f64).sin() * 100.0 })
            .collect(),
        name: (0..N).map(|i| format!("{}{}", words[i % words.len()], i % 4)).collect(),
        flag: (0..N).map(|i| i % 3 == 0).collect(),
        meta: (0..N)
            .map(|i| {
                match i % 5 {
                    0 => format!(r#"{{"a": {i}, "s": "v{i}", "arr": [1, 2, {i}]}}"#),
                    1 => format!(r#"{{"a": {}.5, "b": {{"c": true}}}}"#, i),
                    2 => "[1, \"two\", 3.0]".to_string(),
                    3 => "not json".to_string(),
                    _ => r#"{"a": "str", "arr": []}"#.to_string(),
                }
                .into_bytes()
            })
            .collect(),
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(input) = std::str::from_utf8(bytes) else {
        return;
    };
    let schema = schema();
    let d = data();
    let cols = ColumnMap::new(N)
        .with("id", ColumnView::Int64(&d.id))
        .with("age", ColumnView::Int8(&d.age))
        .with("n32", ColumnView::Int32(&d.n32))
        .with("score", ColumnView::Float(&d.score))
        .with("weight", ColumnView::Double(&d.weight))
        .with("name", ColumnView::VarChar(&d.name))
        .with("flag", ColumnView::Bool(&d.flag))
        .with("meta", ColumnView::Json(&d.meta));

    let ast = match parse(input) {
        Ok(ast) => ast,
        Err(e) => {
            assert!(e.offset() <= input.len(), "offset {} past input: {e}", e.offset());
            let _ = e.to_string();
            return;
        }
    };
    let checked = match check(&ast, &schema) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.offset() <= input.len(), "offset {} past input: {e}", e.offset());
            let _ = e.to_string();
            return;
        }
    };
    let bits = checked.evaluate(&cols).expect("columns match the schema");
    assert_eq!(bits.len(), N);
    assert!(bits.count_ones() <= N);
    assert!(bits.iter_ones().all(|r| r < N));

    if let Ok(neg) = compile(&format!("not ({input})"), &schema) {
        let nb = neg.evaluate(&cols).expect("columns match the schema");
        assert_eq!(nb, bits.not(), "not (e) must be the complement of e");
    }

    if let Some(hint) = checked.primary_key_hint("id") {
        let in_keys = |id: i64| match &hint.keys {
            KeySet::Ints(v) => v.binary_search(&id).is_ok(),
            KeySet::IntRange { lo, hi } => (*lo..=*hi).contains(&id),
            KeySet::Strs(_) => false,
        };
        for r in 0..N {
            let m = bits.get(r);
            if m {
                assert!(in_keys(d.id[r]), "matching row {r} outside the key hint");
            }
            if hint.exact {
                assert_eq!(m, in_keys(d.id[r]), "exact key hint differs at row {r}");
            }
        }
    }
});
