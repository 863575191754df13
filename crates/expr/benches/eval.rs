//! Evaluation throughput over one segment of 1M rows (rows/s = criterion's elem/s).
//!
//! `cargo bench -p facedb-expr --bench eval`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use facedb_expr::{compile, ColumnMap, ColumnView, FieldKind, ScalarType};

const ROWS: usize = 1_000_000;
const SEED: u64 = 0x5eed_f00d;
const SAMPLES: usize = 10;
const MEASURE_SECS: u64 = 3;

struct Segment {
    id: Vec<i64>,
    age: Vec<i32>,
    score: Vec<f32>,
    name: Vec<String>,
}

fn segment() -> Segment {
    let mut state = SEED;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut seg = Segment {
        id: Vec::with_capacity(ROWS),
        age: Vec::with_capacity(ROWS),
        score: Vec::with_capacity(ROWS),
        name: Vec::with_capacity(ROWS),
    };
    for i in 0..ROWS {
        seg.id.push(i as i64);
        seg.age.push((next() % 100) as i32);
        seg.score.push((next() % 1_000_000) as f32 / 1_000_000.0);
        let r = next();
        let name: String = (0..8)
            .map(|k| (b'a' + ((r >> (k * 5)) % 26) as u8) as char)
            .collect();
        seg.name.push(name);
    }
    seg
}

fn bench(c: &mut Criterion) {
    let seg = segment();
    let schema = [
        ("id", FieldKind::Scalar(ScalarType::Int64)),
        ("age", FieldKind::Scalar(ScalarType::Int32)),
        ("score", FieldKind::Scalar(ScalarType::Float)),
        ("name", FieldKind::Scalar(ScalarType::VarChar)),
    ];
    let cols = ColumnMap::new(ROWS)
        .with("id", ColumnView::Int64(&seg.id))
        .with("age", ColumnView::Int32(&seg.age))
        .with("score", ColumnView::Float(&seg.score))
        .with("name", ColumnView::VarChar(&seg.name));
    let in100: Vec<String> = (0..100).map(|i| (i * 9_973 % ROWS).to_string()).collect();
    let in100_age: Vec<String> = (0..100).map(|i| (i * 7).to_string()).collect();
    let cases = [
        ("int_compare", "age > 50".to_string()),
        ("int_range", "10 <= age < 60".to_string()),
        ("int64_range", "100000 <= id < 600000".to_string()),
        ("float_range", "0.25 < score <= 0.75".to_string()),
        ("in_100_sparse", format!("id in [{}]", in100.join(","))),
        ("in_100_dense", format!("age in [{}]", in100_age.join(","))),
        ("like_prefix", "name like 'ab%'".to_string()),
        ("like_infix", "name like '%ab%'".to_string()),
        ("like_general", "name like 'a_c%'".to_string()),
        (
            "and_range_like",
            "10 <= age < 60 and name like 'ab%'".to_string(),
        ),
        (
            "or_and_combo",
            "age < 10 or (score > 0.5 and name like '%xy') or id in [1, 2, 3]".to_string(),
        ),
        ("arith", "age * 3 > 100".to_string()),
    ];
    let mut group = c.benchmark_group("evaluate_1M");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(SAMPLES);
    group.measurement_time(std::time::Duration::from_secs(MEASURE_SECS));
    for (name, expr) in &cases {
        let checked = compile(expr, &schema).expect("bench expressions compile");
        let hits = checked.evaluate(&cols).expect("columns match").count_ones();
        eprintln!("{name}: {expr:.80} -> {hits} of {ROWS} rows");
        group.bench_with_input(BenchmarkId::from_parameter(name), &checked, |b, e| {
            b.iter(|| black_box(e.evaluate(&cols).expect("columns match")))
        });
    }
    group.finish();

    let mut parse = c.benchmark_group("compile");
    parse.sample_size(SAMPLES);
    let long = cases[4].1.clone();
    parse.bench_function("in_100_list", |b| {
        b.iter(|| black_box(compile(&long, &schema).expect("compiles")))
    });
    parse.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
