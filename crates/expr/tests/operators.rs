//! Every operator on a small table, with the exact rows each expression selects.

use facedb_expr::{
    compile, parse, ColumnMap, ColumnView, Columns, ExprKind, FieldKind, KeySet, Predicate,
    PrimaryKeyHint, ScalarType, Value,
};

fn schema() -> Vec<(&'static str, FieldKind)> {
    vec![
        ("id", FieldKind::Scalar(ScalarType::Int64)),
        ("age", FieldKind::Scalar(ScalarType::Int8)),
        ("n16", FieldKind::Scalar(ScalarType::Int16)),
        ("n32", FieldKind::Scalar(ScalarType::Int32)),
        ("score", FieldKind::Scalar(ScalarType::Float)),
        ("w", FieldKind::Scalar(ScalarType::Double)),
        ("name", FieldKind::Scalar(ScalarType::VarChar)),
        ("tag", FieldKind::Scalar(ScalarType::VarChar)),
        ("flag", FieldKind::Scalar(ScalarType::Bool)),
        ("meta", FieldKind::Scalar(ScalarType::Json)),
        ("vec", FieldKind::Vector),
    ]
}

struct Table {
    id: Vec<i64>,
    age: Vec<i8>,
    n16: Vec<i16>,
    n32: Vec<i32>,
    score: Vec<f32>,
    w: Vec<f64>,
    name: Vec<String>,
    tag: Vec<String>,
    flag: Vec<bool>,
    meta: Vec<Vec<u8>>,
}

fn table() -> Table {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Table {
        id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        age: vec![10, 20, 30, 40, 50, -128, 127, 0],
        n16: vec![100, -100, 30, 40, 50, 0, 7, 8],
        n32: vec![1, 2, 30, 4, 50, 6, 7, 80],
        score: vec![0.1, 0.5, 1.5, -2.0, f32::NAN, 3.25, 100.0, 0.0],
        w: vec![0.1, 0.5, 1.5, -2.0, f64::NAN, 3.25, 100.0, 0.0],
        name: s(&[
            "xiaoming",
            "xiaoyue",
            "xiaowang",
            "xiaoli",
            "xiaozhang",
            "xiaozhao",
            "",
            "a%b_c",
        ]),
        tag: s(&["xiaoming", "b", "xiaowang", "c", "a", "z", "", "a%b_c"]),
        flag: vec![true, false, true, false, true, false, true, false],
        meta: [
            r#"{"a": 1, "s": "red", "arr": [1, 2, 3], "o": {"x": true}}"#,
            r#"{"a": 2.5, "s": "green", "arr": ["x", 2]}"#,
            r#"{"a": "3", "s": "blue"}"#,
            r#"{"b": 1}"#,
            r#"[10, 20, {"k": "v"}]"#,
            r#"not json"#,
            r#"{"a": 9223372036854775807, "arr": []}"#,
            r#"{"a": -1, "s": "reddish", "arr": [3, 4]}"#,
        ]
        .iter()
        .map(|d| d.as_bytes().to_vec())
        .collect(),
    }
}

fn columns(t: &Table) -> ColumnMap<'_> {
    ColumnMap::new(t.id.len())
        .with("id", ColumnView::Int64(&t.id))
        .with("age", ColumnView::Int8(&t.age))
        .with("n16", ColumnView::Int16(&t.n16))
        .with("n32", ColumnView::Int32(&t.n32))
        .with("score", ColumnView::Float(&t.score))
        .with("w", ColumnView::Double(&t.w))
        .with("name", ColumnView::VarChar(&t.name))
        .with("tag", ColumnView::VarChar(&t.tag))
        .with("flag", ColumnView::Bool(&t.flag))
        .with("meta", ColumnView::Json(&t.meta))
}

/// The ids of the rows `expr` selects.
fn ids(expr: &str) -> Vec<i64> {
    let t = table();
    let cols = columns(&t);
    let checked = compile(expr, schema().as_slice())
        .unwrap_or_else(|e| panic!("{expr:?} should compile: {e}"));
    let bits = checked
        .evaluate(&cols)
        .unwrap_or_else(|e| panic!("{expr:?} should evaluate: {e}"));
    assert_eq!(bits.len(), cols.num_rows());
    bits.iter_ones().map(|r| t.id[r]).collect()
}

#[track_caller]
fn sel(expr: &str, expected: &[i64]) {
    assert_eq!(ids(expr), expected, "rows selected by {expr:?}");
}

#[test]
fn comparisons_on_integers() {
    sel("id == 3", &[3]);
    sel("id != 3", &[1, 2, 4, 5, 6, 7, 8]);
    sel("id < 3", &[1, 2]);
    sel("id <= 3", &[1, 2, 3]);
    sel("id > 6", &[7, 8]);
    sel("id >= 6", &[6, 7, 8]);
    sel("3 > id", &[1, 2]);
    sel("3 == id", &[3]);
    sel("age >= 40", &[4, 5, 7]);
    sel("age < 0", &[6]);
    sel("n16 < 0", &[2]);
    sel("n32 >= 30", &[3, 5, 8]);
    // Integer constants in every notation.
    sel("id == 0x3", &[3]);
    sel("id == 0b11", &[3]);
    sel("id == 010", &[8]);
    sel("id == 0X8 or id == 0B1", &[1, 8]);
}

#[test]
fn out_of_range_literals_fold() {
    sel("age > 200", &[]);
    sel("age < 200", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("age == 1000", &[]);
    sel("age != 1000", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("age >= -129", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("age <= -129", &[]);
    sel("age in [1000, 10, -500]", &[1]);
    sel("age not in [1000, 10]", &[2, 3, 4, 5, 6, 7, 8]);
    sel("-1000 < age < 1000", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("200 < age < 1000", &[]);
    sel("age == 127", &[7]);
    sel("age == -128", &[6]);
    sel("n16 > 40000", &[]);
    sel("n32 < 3000000000", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("id < -9223372036854775807 - 1 + 1", &[]);
    let c = compile("age > 200", schema().as_slice()).unwrap();
    assert_eq!(c.predicate(), &Predicate::Const(false));
}

#[test]
fn comparisons_on_floats() {
    // Literals are rounded to f32 for FLOAT fields, so 0.1 finds the stored 0.1f32.
    sel("score == 0.1", &[1]);
    sel("w == 0.1", &[1]);
    sel("score > 1", &[3, 6, 7]);
    sel("score < 0", &[4]);
    sel("score != 0.5", &[1, 3, 4, 5, 6, 7, 8]); // NaN != x holds
    sel("score >= 100", &[7]);
    sel("w < 1.5e0", &[1, 2, 4, 8]);
    sel("w > .5", &[3, 6, 7]);
    sel("w >= 1.", &[3, 6, 7]);
    sel("w == 0x1.ap1", &[6]); // 1.625 * 2 = 3.25
    sel("score == 3.25 and w == 13 / 4.0", &[6]);
    sel("score in [0.5, 100, 7]", &[2, 7]);
    sel("score not in [0.5, 100]", &[1, 3, 4, 5, 6, 8]);
}

#[test]
fn comparisons_on_strings_and_bools() {
    sel("name == 'xiaoli'", &[4]);
    sel("name == \"xiaoli\"", &[4]);
    sel("name != 'xiaoli'", &[1, 2, 3, 5, 6, 7, 8]);
    sel("name < 'xiaol'", &[7, 8]);
    sel("name > 'xiaoy'", &[2, 5, 6]);
    sel("name == ''", &[7]);
    sel("name in ['xiaoli', 'xiaoyue', 'nobody']", &[2, 4]);
    sel("name not in ['xiaoli', 'xiaoyue']", &[1, 3, 5, 6, 7, 8]);
    sel(
        "name in ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'xiaoli']",
        &[4],
    );
    sel("'xiaom' < name <= 'xiaoz'", &[1, 2, 3]);
    sel("flag", &[1, 3, 5, 7]);
    sel("not flag", &[2, 4, 6, 8]);
    sel("!flag", &[2, 4, 6, 8]);
    sel("flag == true", &[1, 3, 5, 7]);
    sel("flag == False", &[2, 4, 6, 8]);
    sel("flag != TRUE", &[2, 4, 6, 8]);
    sel("flag in [false]", &[2, 4, 6, 8]);
    sel("flag in [true, false]", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("flag not in [true]", &[2, 4, 6, 8]);
    sel("flag > false", &[1, 3, 5, 7]);
}

#[test]
fn string_escapes() {
    sel(r#"name == "a%b_c""#, &[8]);
    sel(r#"name == 'a\x25b\137c'"#, &[8]); // \x25 = %, \137 = _
    sel(r#"name == 'a\u0025b_c'"#, &[8]);
    sel(r#"name == "xiao\"li" or name == 'xiao\'li'"#, &[]);
    sel(r#"name == "xiao\U0000006Ci""#, &[4]);
    let e = parse(r#"'a\tb\n\\\"'"#).unwrap();
    assert_eq!(e.kind, ExprKind::Str("a\tb\n\\\"".into()));
    let e = parse(r#""\a\b\f\v\?\r""#).unwrap();
    assert_eq!(e.kind, ExprKind::Str("\x07\x08\x0c\x0b?\r".into()));
    let e = parse("'é中'").unwrap();
    assert_eq!(e.kind, ExprKind::Str("é中".into()));
}

#[test]
fn ranges() {
    sel("1 < id <= 5", &[2, 3, 4, 5]);
    sel("1 <= id < 5", &[1, 2, 3, 4]);
    sel("1 < id < 5", &[2, 3, 4]);
    sel("1 <= id <= 5", &[1, 2, 3, 4, 5]);
    sel("5 > id > 1", &[2, 3, 4]);
    sel("5 >= id >= 1", &[1, 2, 3, 4, 5]);
    sel("5 >= id > 1", &[2, 3, 4, 5]);
    sel("5 < id < 1", &[]);
    sel("0.1 <= score < 1.5", &[1, 2]);
    sel("-2 < w <= 0.5", &[1, 2, 8]);
    sel("1 + 1 < id < 2 * 3", &[3, 4, 5]);
    sel(
        "-9223372036854775807 - 1 <= id <= 9223372036854775807",
        &[1, 2, 3, 4, 5, 6, 7, 8],
    );
}

#[test]
fn in_lists() {
    sel("id in [2, 4, 6]", &[2, 4, 6]);
    sel("id not in [2, 4, 6]", &[1, 3, 5, 7, 8]);
    sel("id in [2, 4, 6,]", &[2, 4, 6]);
    sel("id in []", &[]);
    sel("id not in []", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("id in [ ]", &[]);
    sel("id in [1 + 1, 2 * 2, 12 / 2]", &[2, 4, 6]);
    sel("id in [3, 3, 3]", &[3]);
    // Large lists: the bit table and the sorted-search paths.
    let list: Vec<String> = (0..100).map(|i| (i * 3).to_string()).collect();
    sel(&format!("id in [{}]", list.join(",")), &[3, 6]);
    let far: Vec<String> = (0..50)
        .map(|i| (i * 1_000_000_007i64).to_string())
        .chain(["7".to_string()])
        .collect();
    sel(&format!("id in [{}]", far.join(",")), &[7]);
    sel(
        &format!("id not in [{}]", far.join(",")),
        &[1, 2, 3, 4, 5, 6, 8],
    );
    let floats: Vec<String> = (0..20).map(|i| format!("{}.25", i)).collect();
    sel(&format!("w in [{}]", floats.join(",")), &[6]);
}

#[test]
fn like_patterns() {
    sel("name like 'xiao%'", &[1, 2, 3, 4, 5, 6]);
    sel("name LIKE 'xiaoz%'", &[5, 6]);
    sel("name like '%ng'", &[1, 3, 5]);
    sel("name like '%ao%'", &[1, 2, 3, 4, 5, 6]);
    sel("name like '%zha%'", &[5, 6]);
    sel("name like 'xiaoli'", &[4]);
    sel("name like '%'", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("name like ''", &[7]);
    sel("name like 'x%o%g'", &[1, 3, 5]);
    sel("name like 'xiao_i'", &[4]);
    sel("name like '_iao%'", &[1, 2, 3, 4, 5, 6]);
    sel(r"name like 'a\%b%'", &[8]);
    sel(r"name like 'a\\%b%'", &[8]);
    sel(r"name like '%\_c'", &[8]);
    sel(r"name like '%b\_%'", &[8]);
    sel("not name like 'xiao%'", &[7, 8]);
}

#[test]
fn logic() {
    sel("id > 2 and id < 5", &[3, 4]);
    sel("id > 2 && id < 5", &[3, 4]);
    sel("id > 2 AND id < 5", &[3, 4]);
    sel("id < 2 or id > 7", &[1, 8]);
    sel("id < 2 || id > 7", &[1, 8]);
    sel("id < 2 OR id > 7", &[1, 8]);
    sel("not id > 2", &[1, 2]);
    sel("NOT (id > 2)", &[1, 2]);
    sel("!(id > 2)", &[1, 2]);
    sel("not not id > 2", &[3, 4, 5, 6, 7, 8]);
    sel("id < 3 or id > 6 and flag", &[1, 2, 7]);
    sel("(id < 3 or id > 6) and flag", &[1, 7]);
    sel("not (id < 3 or id > 6) and not flag", &[4, 6]);
    sel("id > 2 and true", &[3, 4, 5, 6, 7, 8]);
    sel("id > 2 or true", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("false", &[]);
    sel("1 < 2", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("'a' == 'b' or id == 1", &[1]);
    sel("((((id == 1))))", &[1]);
    sel(
        "id > 0 and id > 1 and id > 2 and id > 3 and id > 4",
        &[5, 6, 7, 8],
    );
}

#[test]
fn arithmetic_on_constants() {
    sel("id == 1 + 2", &[3]);
    sel("id == 10 - 7", &[3]);
    sel("id == 2 * 3", &[6]);
    sel("id == 7 / 2", &[3]); // integer division truncates
    sel("id == -7 / 2 + 7", &[4]); // -3 + 7
    sel("id == 7 % 4", &[3]);
    sel("id == -7 % 4 + 5", &[2]); // remainder takes the dividend's sign: -3 + 5
    sel("w == 2 ** -1", &[2]);
    sel("w == 2 ** 2 ** 0.5 * 0 + 0.5", &[2]);
    sel("id == -(-3)", &[3]);
    sel("id == +3", &[3]);
    sel("id == 1 + 2 * 3", &[7]);
    sel("id == (1 + 2) * 2", &[6]);
    sel("score > 10 / 4.0", &[6, 7]);
}

#[test]
fn arithmetic_on_fields() {
    sel("id + 2 > 7", &[6, 7, 8]);
    sel("id + 2 == 5", &[3]);
    sel("2 + id == 5", &[3]);
    sel("id - 2 < 1", &[1, 2]);
    sel("10 - id == 3", &[7]);
    sel("id * 3 == 12", &[4]);
    sel("3 * id >= 21", &[7, 8]);
    sel("id / 3 == 2", &[6, 7, 8]);
    sel("id % 3 == 0", &[3, 6]);
    sel("id % 3 != 0", &[1, 2, 4, 5, 7, 8]);
    sel("id / -1 == -5", &[5]);
    sel("id % -1 == 0", &[1, 2, 3, 4, 5, 6, 7, 8]);
    sel("10 < id + 5", &[6, 7, 8]);
    // Exact: no wrap-around for 8-bit fields or near the i64 limits.
    sel("age + 100 > 200", &[7]);
    sel("age * 2 == 254", &[7]);
    sel("age - 1 == -129", &[6]);
    sel("id + 9223372036854775807 < 0", &[]);
    sel("id * 4611686018427387904 > 0", &[1, 2, 3, 4, 5, 6, 7, 8]);
    // Floats compute in the field's precision.
    sel("score * 2 == 1", &[2]);
    sel("w + 0.5 > 3", &[6, 7]);
    sel("w - 0.5 <= -2.5", &[4]);
    sel("w / 2 == 1.625", &[6]);
    sel("w % 2 == 1.25", &[6]);
    sel("1 - w == 0.5", &[2]);
}

#[test]
fn field_to_field() {
    sel("name == tag", &[1, 3, 7, 8]);
    sel("name != tag", &[2, 4, 5, 6]);
    sel("id == n32", &[1, 2, 4, 6, 7]);
    sel("id < n32", &[3, 5, 8]);
    sel("n16 > age", &[1, 6, 8]);
    sel("score == w", &[2, 3, 4, 6, 7, 8]); // 0.1f32 != 0.1f64; NaN != NaN
    sel("id >= score", &[1, 2, 3, 4, 6, 8]);
    sel("flag == flag", &[1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn json_paths() {
    sel(r#"meta["a"] == 1"#, &[1]);
    sel(r#"meta["a"] > 1"#, &[2, 7]);
    sel(r#"meta["a"] < 2"#, &[1, 8]);
    sel(r#"meta["a"] == 2.5"#, &[2]);
    sel(r#"meta["a"] == "3""#, &[3]);
    sel(r#"meta["a"] != 1"#, &[2, 3, 4, 5, 6, 7, 8]);
    sel(r#"meta["a"] == 9223372036854775807"#, &[7]);
    sel(r#"meta["s"] like "red%""#, &[1, 8]);
    sel(r#"meta["s"] in ["green", "blue"]"#, &[2, 3]);
    sel(r#"meta["s"] not in ["green", "blue"]"#, &[1, 4, 5, 6, 7, 8]);
    sel(r#"0 <= meta["a"] < 3"#, &[1, 2]);
    sel(r#"meta["o"]["x"] == true"#, &[1]);
    sel(r#"meta['arr'][1] == 2"#, &[1, 2]);
    sel(r#"meta[0] == 10"#, &[5]);
    sel(r#"meta[2]["k"] == "v""#, &[5]);
    sel(r#"json_contains(meta["arr"], 3)"#, &[1, 8]);
    sel(r#"JSON_CONTAINS(meta["arr"], "x")"#, &[2]);
    sel(r#"json_contains_all(meta["arr"], [1, 2])"#, &[1]);
    sel(r#"json_contains_any(meta["arr"], [4, "x"])"#, &[2, 8]);
    sel(r#"json_contains(meta, 20)"#, &[5]);
}

#[test]
fn dynamic_field() {
    struct Dyn;
    impl facedb_expr::SchemaView for Dyn {
        fn field_type(&self, name: &str) -> Option<FieldKind> {
            match name {
                "id" => Some(FieldKind::Scalar(ScalarType::Int64)),
                "$meta" => Some(FieldKind::Scalar(ScalarType::Json)),
                _ => None,
            }
        }
        fn dynamic_field(&self) -> Option<&str> {
            Some("$meta")
        }
    }
    let t = table();
    let cols = ColumnMap::new(8)
        .with("id", ColumnView::Int64(&t.id))
        .with("$meta", ColumnView::Json(&t.meta));
    for (expr, want) in [
        ("s == 'red'", vec![1]),
        (r#"o["x"]"#, vec![]),
        (r#"$meta["s"] == 'blue'"#, vec![3]),
        ("a > 1 and id < 5", vec![2]),
    ] {
        match compile(expr, &Dyn) {
            Ok(c) => {
                let got: Vec<i64> = c
                    .evaluate(&cols)
                    .unwrap()
                    .iter_ones()
                    .map(|r| t.id[r])
                    .collect();
                assert_eq!(got, want, "{expr}");
            }
            Err(e) => {
                assert!(want.is_empty(), "{expr}: {e}");
                assert!(matches!(
                    e,
                    facedb_expr::ExprError::NotBoolean { offset: 0 }
                ));
            }
        }
    }
}

#[test]
fn precedence() {
    // `like` binds tighter than everything, `in` tighter than comparisons, `not` looser.
    let e = parse("not a == 1 and b in [1] or c like 'x%'").unwrap();
    let ExprKind::Or(items) = e.kind else {
        panic!()
    };
    assert_eq!(items.len(), 2);
    let ExprKind::And(ref ands) = items[0].kind else {
        panic!()
    };
    assert!(matches!(ands[0].kind, ExprKind::Not(_)));
    assert!(matches!(ands[1].kind, ExprKind::In { .. }));
    assert!(matches!(items[1].kind, ExprKind::Like { .. }));
    // `**` is left-associative (as ANTLR builds `expr POW expr`) and binds tighter than
    // unary minus: -2 ** 2 = -(2 ** 2).
    sel("w == -2 ** 2 + 4.5", &[2]); // -4 + 4.5 = 0.5
    sel("w == 2 ** 3 ** 0 - 0.5", &[2]); // (2 ** 3) ** 0 = 1; right-assoc would give 1.5
    sel("id == 2 + 3 * 2 - 1", &[7]);
    sel("id == 2 * 3 % 4", &[2]); // (2 * 3) % 4
}

#[test]
fn constant_folding_in_the_checked_tree() {
    let c = compile("id > 2 * 3 - 1", schema().as_slice()).unwrap();
    let Predicate::Compare { field, op, value } = c.predicate() else {
        panic!("{:?}", c.predicate())
    };
    assert_eq!(field.name, "id");
    assert_eq!(*op, facedb_expr::CmpOp::Gt);
    assert_eq!(*value, Value::Int(5));
    let c = compile("score == 0.1", schema().as_slice()).unwrap();
    let Predicate::Compare { value, .. } = c.predicate() else {
        panic!()
    };
    assert_eq!(*value, Value::Float(f64::from(0.1f32)));
    assert_eq!(
        compile(
            "3 < id and name like 'x%' or score > w",
            schema().as_slice()
        )
        .unwrap()
        .fields(),
        vec!["id", "name", "score", "w"]
    );
}

#[test]
fn primary_key_hints() {
    let hint = |e: &str| {
        compile(e, schema().as_slice())
            .unwrap()
            .primary_key_hint("id")
    };
    let exact = |keys| Some(PrimaryKeyHint { keys, exact: true });
    assert_eq!(hint("id == 5"), exact(KeySet::Ints(vec![5])));
    assert_eq!(
        hint("id in [6, 2, 4, 2]"),
        exact(KeySet::Ints(vec![2, 4, 6]))
    );
    assert_eq!(
        hint("3 <= id < 7"),
        exact(KeySet::IntRange { lo: 3, hi: 6 })
    );
    assert_eq!(
        hint("id > 10"),
        exact(KeySet::IntRange {
            lo: 11,
            hi: i64::MAX
        })
    );
    assert_eq!(
        hint("id <= 10"),
        exact(KeySet::IntRange {
            lo: i64::MIN,
            hi: 10
        })
    );
    assert_eq!(
        hint("id == 1 or id in [3, 2]"),
        exact(KeySet::Ints(vec![1, 2, 3]))
    );
    assert_eq!(
        hint("id in [1, 5, 9] and id > 3"),
        exact(KeySet::Ints(vec![5, 9]))
    );
    assert_eq!(hint("id > 3 and id < 3"), exact(KeySet::Ints(vec![])));
    assert_eq!(
        hint("id > 3 and id < 10"),
        exact(KeySet::IntRange { lo: 4, hi: 9 })
    );
    assert_eq!(
        hint("id in [1, 2] and name like 'x%'"),
        Some(PrimaryKeyHint {
            keys: KeySet::Ints(vec![1, 2]),
            exact: false
        })
    );
    assert_eq!(hint("id in [1, 2] or name like 'x%'"), None);
    assert_eq!(hint("id != 5"), None);
    assert_eq!(hint("not id in [1]"), None);
    assert_eq!(hint("name == 'x'"), None);
    assert_eq!(hint("false"), exact(KeySet::Ints(vec![])));
    let s = compile("name in ['b', 'a'] or name == 'c'", schema().as_slice())
        .unwrap()
        .primary_key_hint("name");
    assert_eq!(
        s,
        exact(KeySet::Strs(vec!["a".into(), "b".into(), "c".into()]))
    );
}

#[test]
fn evaluation_errors() {
    use facedb_expr::ExprError;
    let t = table();
    let c = compile("  age > 1", schema().as_slice()).unwrap();
    let missing = ColumnMap::new(8).with("id", ColumnView::Int64(&t.id));
    assert_eq!(
        c.evaluate(&missing),
        Err(ExprError::MissingColumn {
            offset: 2,
            field: "age".into()
        })
    );
    let wrong = ColumnMap::new(8).with("age", ColumnView::Int64(&t.id));
    assert!(matches!(
        c.evaluate(&wrong),
        Err(ExprError::ColumnTypeMismatch { offset: 2, .. })
    ));
    let short = ColumnMap::new(9).with("age", ColumnView::Int8(&t.age));
    assert_eq!(
        c.evaluate(&short),
        Err(ExprError::ColumnLength {
            offset: 2,
            field: "age".into(),
            expected: 9,
            found: 8
        })
    );
}

#[test]
fn large_segments_cross_word_boundaries() {
    let n = 1000;
    let ids: Vec<i64> = (0..n).collect();
    let cols = ColumnMap::new(n as usize).with("id", ColumnView::Int64(&ids));
    let s = [("id", FieldKind::Scalar(ScalarType::Int64))];
    let count = |e: &str| {
        compile(e, &s)
            .unwrap()
            .evaluate(&cols)
            .unwrap()
            .count_ones()
    };
    assert_eq!(count("id % 7 == 0"), 143);
    assert_eq!(count("not (id % 7 == 0)"), 857);
    assert_eq!(count("100 <= id < 200 or id >= 990"), 110);
    assert_eq!(count("id > 999"), 0);
}
