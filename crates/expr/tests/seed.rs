//! The seed's `people` collection: the filters of the real Milvus run
//! (`shared/data/milvus-reference/seed_example_pymilvus2.2.7.txt`) select the same rows here.

use std::collections::BTreeSet;
use std::path::PathBuf;

use facedb_expr::{compile, ColumnMap, ColumnView, FieldKind, ScalarType};

const IDS: [i64; 6] = [1, 2, 3, 4, 5, 6];
const NAMES: [&str; 6] = [
    "xiaoming",
    "xiaoyue",
    "xiaowang",
    "xiaoli",
    "xiaozhang",
    "xiaozhao",
];

fn select(expr: &str) -> BTreeSet<i64> {
    let schema = [
        ("id", FieldKind::Scalar(ScalarType::Int64)),
        ("name", FieldKind::Scalar(ScalarType::VarChar)),
        ("metrics", FieldKind::Vector),
    ];
    let names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    let cols = ColumnMap::new(6)
        .with("id", ColumnView::Int64(&IDS))
        .with("name", ColumnView::VarChar(&names));
    let checked = compile(expr, &schema).unwrap_or_else(|e| panic!("{expr}: {e}"));
    checked
        .evaluate(&cols)
        .unwrap()
        .iter_ones()
        .map(|r| IDS[r])
        .collect()
}

/// The rows Milvus returned, as read off the reference file by hand.
#[test]
fn seed_filters() {
    let cases: [(&str, &[i64]); 5] = [
        ("id > 2", &[3, 4, 5, 6]),
        ("name like 'xiao%'", &[1, 2, 3, 4, 5, 6]),
        ("name like 'xiaoz%'", &[5, 6]),
        ("id in [2,4,6]", &[2, 4, 6]),
        (r#"id > 2 and name like "xiaoz%""#, &[5, 6]),
    ];
    for (expr, want) in cases {
        assert_eq!(
            select(expr),
            want.iter().copied().collect::<BTreeSet<_>>(),
            "{expr}"
        );
    }
}

/// The same, read from the reference file itself: every `--- ... expr=...` block lists the
/// ids of the hits of an unlimited (limit 10 > 6 rows) FLAT search, i.e. exactly the
/// matching rows; the `query` lines give ids and a count.
#[test]
fn seed_reference_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/milvus-reference/seed_example_pymilvus2.2.7.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} not found", path.display());
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("--- ") else {
            continue;
        };
        let Some(pos) = rest.find("expr=") else {
            continue;
        };
        // expr='...' or expr="..."
        let quoted = &rest[pos + 5..];
        let quote = quoted.chars().next().unwrap();
        let end = quoted[1..].find(quote).unwrap() + 1;
        let expr = &quoted[1..end];
        let got = select(expr);
        if rest.starts_with("query") {
            if let Some(c) = rest.find("count: ") {
                let count: usize = rest[c + 7..].trim().parse().unwrap();
                assert_eq!(got.len(), count, "{expr}");
            } else {
                // Next line: [{'name': 'xiaowang', 'id': 3}, ...]
                let want: BTreeSet<i64> = lines[i + 1]
                    .split("'id': ")
                    .skip(1)
                    .map(|s| {
                        s.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                            .parse()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(got, want, "{expr}");
            }
        } else {
            let want: BTreeSet<i64> = lines[i + 1..]
                .iter()
                .take_while(|l| l.starts_with("  id="))
                .map(|l| l[5..].split(' ').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(got, want, "{expr}");
        }
        blocks += 1;
    }
    // 5 filters x 2 metrics + 2 query lines.
    assert_eq!(blocks, 12);
}
