//! Every error variant with its exact byte offset, and every malformed-expression case of
//! the real Milvus answers in `shared/data/milvus-reference/errors_*.txt`.

use std::path::PathBuf;

use facedb_expr::{compile, parse, ExprError, FieldKind, ScalarType};

fn schema() -> Vec<(&'static str, FieldKind)> {
    vec![
        // The seed's `people` collection...
        ("id", FieldKind::Scalar(ScalarType::Int64)),
        ("name", FieldKind::Scalar(ScalarType::VarChar)),
        ("metrics", FieldKind::Vector),
        // ...and a few more types.
        ("small", FieldKind::Scalar(ScalarType::Int8)),
        ("score", FieldKind::Scalar(ScalarType::Float)),
        ("flag", FieldKind::Scalar(ScalarType::Bool)),
        ("meta", FieldKind::Scalar(ScalarType::Json)),
    ]
}

fn err(expr: &str) -> ExprError {
    match compile(expr, schema().as_slice()) {
        Ok(c) => panic!("{expr:?} should fail, got {:?}", c.predicate()),
        Err(e) => {
            // Every message formats and names a position inside the input.
            assert!(e.offset() <= expr.len(), "{expr:?}: {e}");
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

/// Asserts the error's variant (by a predicate) and its offset.
#[track_caller]
fn expect(expr: &str, offset: usize, is: impl Fn(&ExprError) -> bool) {
    let e = err(expr);
    assert!(is(&e), "{expr:?}: unexpected error variant {e:?}");
    assert_eq!(e.offset(), offset, "{expr:?}: {e}");
}

#[test]
fn empty_input() {
    assert_eq!(parse(""), Err(ExprError::Empty { offset: 0 }));
    assert_eq!(parse(" \t\n "), Err(ExprError::Empty { offset: 0 }));
}

#[test]
fn lexical_errors() {
    assert_eq!(
        parse("id @ 2"),
        Err(ExprError::UnexpectedChar { offset: 3, ch: '@' })
    );
    assert_eq!(
        parse("id = 2"),
        Err(ExprError::UnexpectedChar { offset: 3, ch: '=' })
    );
    assert_eq!(
        parse("name == 'é' # x"),
        Err(ExprError::UnexpectedChar {
            offset: 13,
            ch: '#'
        })
    );
    assert_eq!(
        parse("name == '中"),
        Err(ExprError::UnterminatedString { offset: 8 })
    );
    assert_eq!(
        parse("name == \"ab\ncd\""),
        Err(ExprError::UnterminatedString { offset: 8 })
    );
    assert_eq!(
        parse("name == 'ab\\"),
        Err(ExprError::UnterminatedString { offset: 8 })
    );
    expect("id == 99999999999999999999", 6, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect("id == 0x8000000000000000", 6, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect("id == 09", 7, |e| matches!(e, ExprError::BadLiteral { .. }));
    expect("id == 0x", 6, |e| matches!(e, ExprError::BadLiteral { .. }));
    expect("id == 0b", 6, |e| matches!(e, ExprError::BadLiteral { .. }));
    expect("id == 1e", 6, |e| matches!(e, ExprError::BadLiteral { .. }));
    expect("id == 1e400", 6, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect("id == 0x1.8", 6, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect("id == 2abc", 6, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect("id == 1.2.3", 6, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect(r"name == 'a\qb'", 10, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect(r"name == '\xZZ'", 9, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect(r"name == '\x4'", 9, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect(r"name == '\777'", 9, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect(r"name == '\12'", 9, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect(r"name == '\u12'", 9, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect(r"name == '\uD800'", 9, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect(r"name == '\xff'", 8, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect("meta[x] > 1", 4, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect("meta[\"a\" > 1", 4, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
    expect("meta[01] > 1", 5, |e| {
        matches!(e, ExprError::BadLiteral { .. })
    });
}

#[test]
fn syntax_errors() {
    assert_eq!(
        parse("id >"),
        Err(ExprError::UnexpectedEnd {
            offset: 4,
            expected: "an operand (a field, a constant, '(' or '[')"
        })
    );
    expect("id > 2 and", 10, |e| {
        matches!(e, ExprError::UnexpectedEnd { .. })
    });
    expect("not", 3, |e| matches!(e, ExprError::UnexpectedEnd { .. }));
    expect("name like", 9, |e| {
        matches!(e, ExprError::UnexpectedEnd { .. })
    });
    expect(
        "name like xiao%",
        10,
        |e| matches!(e, ExprError::UnexpectedToken { expected, .. } if expected.contains("string")),
    );
    expect("name like 1", 10, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
    expect("id > 2 3", 7, |e| {
        matches!(e, ExprError::TrailingInput { .. })
    });
    expect("id > 2 name", 7, |e| {
        matches!(e, ExprError::TrailingInput { .. })
    });
    expect("id in 1", 6, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
    expect("id in [1 2]", 9, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
    expect("id in [1,,2]", 9, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
    expect("id > and", 5, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
    expect("(id > )", 6, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
    expect("(id > 1]", 7, |e| {
        matches!(e, ExprError::UnmatchedClose { close: ']', .. })
    });
    expect("[1, 2)", 5, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
    expect("id == not flag", 6, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
    expect("json_contains(meta 1)", 19, |e| {
        matches!(e, ExprError::UnexpectedToken { .. })
    });
}

#[test]
fn unbalanced_delimiters() {
    assert_eq!(
        parse("(id > 2"),
        Err(ExprError::UnclosedDelimiter {
            offset: 0,
            open: '('
        })
    );
    assert_eq!(
        parse("((id > 2)"),
        Err(ExprError::UnclosedDelimiter {
            offset: 0,
            open: '('
        })
    );
    assert_eq!(
        parse("id > 1 and (id < 5"),
        Err(ExprError::UnclosedDelimiter {
            offset: 11,
            open: '('
        })
    );
    assert_eq!(
        parse("id in [1, 2"),
        Err(ExprError::UnclosedDelimiter {
            offset: 6,
            open: '['
        })
    );
    assert_eq!(
        parse("json_contains(meta, 1"),
        Err(ExprError::UnclosedDelimiter {
            offset: 13,
            open: '('
        })
    );
    assert_eq!(
        parse("id > 2)"),
        Err(ExprError::UnmatchedClose {
            offset: 6,
            close: ')'
        })
    );
    assert_eq!(
        parse("(id > 2))"),
        Err(ExprError::UnmatchedClose {
            offset: 8,
            close: ')'
        })
    );
    assert_eq!(
        parse("id > ]"),
        Err(ExprError::UnmatchedClose {
            offset: 5,
            close: ']'
        })
    );
    assert_eq!(
        parse(")"),
        Err(ExprError::UnmatchedClose {
            offset: 0,
            close: ')'
        })
    );
}

#[test]
fn unsupported_constructs() {
    let unsupported = |e: &ExprError| matches!(e, ExprError::Unsupported { .. });
    expect("id >> 2", 3, unsupported);
    expect("id << 2 == 4", 3, unsupported);
    expect("id & 1 == 1", 3, unsupported);
    expect("id == 1 | 2", 8, unsupported);
    expect("id ^ 1 == 0", 3, unsupported);
    expect("~id == 1", 0, unsupported);
    expect("exists meta['a']", 0, unsupported);
    expect("1 < id > 0", 7, unsupported);
    expect("id < 5 < 6", 7, unsupported);
    expect("1 < id + 1 < 5", 11, unsupported);
    expect("id + name == 1", 3, unsupported);
    expect("(id + 1) * 2 == 4", 9, unsupported);
    expect("2 / id == 1", 2, unsupported);
    expect("id ** 2 == 4", 3, unsupported);
    expect("-id > 1", 0, unsupported);
    expect("meta['a'] + 1 == 2", 10, unsupported);
    expect("meta['a'] == id", 10, unsupported);
    expect("array_contains(meta, 1)", 0, unsupported);
    expect("lower(name) == 'a'", 0, unsupported);
}

#[test]
fn too_deep() {
    let deep = format!("{}id > 1{}", "(".repeat(150), ")".repeat(150));
    expect(&deep, 100, |e| {
        matches!(e, ExprError::TooDeep { limit: 100, .. })
    });
    let nots = format!("{}flag", "not ".repeat(150));
    expect(&nots, 400, |e| matches!(e, ExprError::TooDeep { .. }));
    let chain = format!("id == {}1", "1 + ".repeat(150));
    assert!(matches!(err(&chain), ExprError::TooDeep { .. }));
    // Within the limit everything works, also on a small thread stack.
    let ok = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let nested = format!("{}id > 1{}", "(".repeat(99), ")".repeat(99));
            // Alternating and / or nest instead of flattening: evaluation recurses too.
            let mut alt = String::from("id > 1");
            for i in 0..48 {
                let op = if i % 2 == 0 { "or" } else { "and" };
                alt = format!("(id == {i} {op} {alt})");
            }
            let ids: Vec<i64> = (0..100).collect();
            let cols =
                facedb_expr::ColumnMap::new(100).with("id", facedb_expr::ColumnView::Int64(&ids));
            compile(&nested, schema().as_slice()).is_ok()
                && compile(
                    &format!("id == {}1", "1 + ".repeat(90)),
                    schema().as_slice(),
                )
                .is_ok()
                && compile(&format!("{}flag", "not ".repeat(98)), schema().as_slice()).is_ok()
                && compile(&alt, schema().as_slice())
                    .and_then(|c| c.evaluate(&cols))
                    .is_ok()
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(ok);
    // Long `and` / `or` chains are flat, not deep.
    let long = vec!["id > 1"; 5000].join(" or ");
    assert!(compile(&long, schema().as_slice()).is_ok());
}

#[test]
fn schema_errors() {
    assert_eq!(
        err("age > 2"),
        ExprError::UnknownField {
            offset: 0,
            name: "age".into()
        }
    );
    assert_eq!(
        err("id > 1 and nope['x'] == 1"),
        ExprError::UnknownField {
            offset: 11,
            name: "nope".into()
        }
    );
    assert_eq!(
        err("metrics > 1"),
        ExprError::VectorField {
            offset: 0,
            name: "metrics".into()
        }
    );
    assert_eq!(
        err("name > 2"),
        ExprError::TypeMismatch {
            offset: 7,
            left: "VarChar".into(),
            right: "Int64".into()
        }
    );
    assert_eq!(
        err("2 < name"),
        ExprError::TypeMismatch {
            offset: 0,
            left: "VarChar".into(),
            right: "Int64".into()
        }
    );
    assert_eq!(
        err("id > 1.5"),
        ExprError::TypeMismatch {
            offset: 5,
            left: "Int64".into(),
            right: "Double".into()
        }
    );
    let mismatch = |e: &ExprError| matches!(e, ExprError::TypeMismatch { .. });
    expect("id == 2 ** 3", 6, mismatch); // `**` gives a float, as Milvus's math.Pow
    expect("id in [1, 'a']", 10, mismatch);
    expect("id in [1, 2.0]", 10, mismatch);
    expect("name in ['a', 1]", 14, mismatch);
    expect("flag in [true, 1]", 15, mismatch);
    expect("flag > 1", 7, mismatch);
    expect("score == 'x'", 9, mismatch);
    expect("id == flag", 6, mismatch);
    expect("name == id", 8, mismatch);
    expect("1 < id < 'z'", 9, mismatch);
    expect("id + 1.5 == 3", 5, mismatch);
    expect("id + 1 == 2.5", 10, mismatch);
    expect("'a' == 1", 7, mismatch);
    expect("meta['a'] > 1 and 1 < meta['b'] < 'x'", 34, mismatch);

    let invalid = |e: &ExprError| matches!(e, ExprError::InvalidOperand { .. });
    expect("id like 'a%'", 0, invalid);
    expect("id == [1]", 6, invalid);
    expect("[1] == id", 0, invalid);
    expect("name + 1 == 2", 0, invalid);
    expect("'a' + 1 == 2", 0, invalid);
    expect("true * 2 == 2", 0, invalid);
    expect("1.5 % 2 == 1", 0, invalid);
    expect("-'a' == 1", 1, invalid);
    expect("small[0] == 1", 0, invalid);
    expect("(id > 1) == true", 1, invalid);
    expect("1 in [1, 2]", 0, invalid);
    expect("json_contains(id, 1)", 14, invalid);
    expect("json_contains_all(meta, 1)", 24, invalid);
    expect("json_contains(meta)", 0, invalid);

    let not_bool = |e: &ExprError| matches!(e, ExprError::NotBoolean { .. });
    expect("id", 0, not_bool);
    expect("id + 1", 0, not_bool);
    expect("1", 0, not_bool);
    expect("'abc'", 0, not_bool);
    expect("name like 'a%' and id", 19, not_bool);
    expect("not id", 4, not_bool);
    expect("meta['a']", 0, not_bool);

    let non_const = |e: &ExprError| matches!(e, ExprError::NonConstant { .. });
    expect("id in [1, id]", 10, non_const);
    expect("id in [[1]]", 7, non_const);
    expect("name < id < 5", 0, non_const);
    expect("1 < id < small", 9, non_const);
    expect("json_contains(meta, id)", 20, non_const);

    assert_eq!(err("id / 0 == 1"), ExprError::DivisionByZero { offset: 5 });
    assert_eq!(err("id % 0 == 1"), ExprError::DivisionByZero { offset: 5 });
    assert_eq!(err("id == 1 / 0"), ExprError::DivisionByZero { offset: 10 });
    assert_eq!(
        err("id == 1 % (2 - 2)"),
        ExprError::DivisionByZero { offset: 11 }
    );
    assert_eq!(
        err("score == 1 / 0.0"),
        ExprError::DivisionByZero { offset: 13 }
    );
    assert_eq!(
        err("score / 0.0 > 1"),
        ExprError::DivisionByZero { offset: 8 }
    );
    assert_eq!(
        err("id == 9223372036854775807 + 1"),
        ExprError::Overflow { offset: 26 }
    );
    assert_eq!(
        err("id == -(-9223372036854775807 - 1)"),
        ExprError::Overflow { offset: 6 }
    );
    assert_eq!(err("score < 10 ** 400"), ExprError::Overflow { offset: 11 });
    assert_eq!(
        err("id == 4611686018427387904 * 2"),
        ExprError::Overflow { offset: 26 }
    );
}

/// The malformed expressions the real Milvus (2.3.5, via pymilvus 2.2.7 and 2.3.8)
/// rejected, with the error it gave. Where Milvus's ANTLR message gives a column
/// (`line 1:N`), our offset is the same N.
#[test]
fn milvus_reference_cases() {
    type Case = (&'static str, usize, fn(&ExprError) -> bool);
    let cases: [Case; 5] = [
        // "shift is not supported: id>>2"
        ("id >> 2", 3, |e| matches!(e, ExprError::Unsupported { .. })),
        // "line 1:4 no viable alternative at input '>'"
        ("id >", 4, |e| matches!(e, ExprError::UnexpectedEnd { .. })),
        // "field age not exist"
        ("age > 2", 0, |e| {
            matches!(e, ExprError::UnknownField { .. })
        }),
        // "comparisons between VarChar, element_type: None and Int64 ... are not supported"
        ("name > 2", 7, |e| {
            matches!(e, ExprError::TypeMismatch { left, right, .. }
                if left == "VarChar" && right == "Int64")
        }),
        // "line 1:10 mismatched input 'xiao' expecting StringLiteral"
        ("name like xiao%", 10, |e| {
            matches!(e, ExprError::UnexpectedToken { .. })
        }),
    ];
    let people = [
        ("id", FieldKind::Scalar(ScalarType::Int64)),
        ("name", FieldKind::Scalar(ScalarType::VarChar)),
        ("metrics", FieldKind::Vector),
    ];
    for (expr, offset, is) in cases {
        let e = compile(expr, &people).expect_err(expr);
        assert!(is(&e), "{expr:?}: {e:?}");
        assert_eq!(e.offset(), offset, "{expr:?}: {e}");
    }
    // And the expressions Milvus accepted in the same runs.
    for ok in ["id in [1]", "id == 1", "id > 0", "id == 2"] {
        assert!(compile(ok, &people).is_ok(), "{ok}");
    }
}

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/milvus-reference")
}

/// Reads the reference files themselves: every `=== ... expr '...'` block whose answer is
/// "cannot parse expression" must fail here too (at Milvus's column where it gives one),
/// and every block answered "OK" must compile.
#[test]
fn milvus_reference_files() {
    let dir = reference_dir();
    let people = [
        ("id", FieldKind::Scalar(ScalarType::Int64)),
        ("name", FieldKind::Scalar(ScalarType::VarChar)),
        ("metrics", FieldKind::Vector),
    ];
    let mut checked = 0;
    for file in ["errors_pymilvus2.2.7.txt", "errors_pymilvus2.3.8.txt"] {
        let path = dir.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping: {} not found", path.display());
            return;
        };
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(header) = line.strip_prefix("=== ") else {
                continue;
            };
            if !header.contains("expr") {
                continue;
            }
            // The expression is the first quoted string of the header.
            let Some(q) = header.find(['\'', '"']) else {
                continue;
            };
            let quote = header.as_bytes()[q] as char;
            let rest = &header[q + 1..];
            let Some(end) = rest.find(quote) else {
                continue;
            };
            let expr = &rest[..end];
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with("==="))
                .copied()
                .collect();
            let body = body.join("\n");
            let result = compile(expr, &people);
            if body.contains("cannot parse expression") {
                let e = result.expect_err(expr);
                if let Some(pos) = body.find("line 1:") {
                    let col: usize = body[pos + 7..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse()
                        .unwrap();
                    assert_eq!(e.offset(), col, "{expr:?}: {e}");
                }
                checked += 1;
            } else if body.contains("OK (no error)") {
                assert!(result.is_ok(), "{expr:?}: {result:?}");
                checked += 1;
            }
        }
    }
    // 5 malformed + 1 accepted (`delete expr 'id in [1]'`) per file.
    assert_eq!(checked, 12);
}
