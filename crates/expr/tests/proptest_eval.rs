//! Random schemas, random columns and random well-typed expression trees: the bitmap from
//! parse -> check -> evaluate equals a naive per-row evaluation of the tree written here,
//! independently of the crate (its own LIKE matcher, its own literal coercion rules).

use facedb_expr::{compile, ArithOp, CmpOp, ColumnMap, ColumnView, FieldKind, KeySet, ScalarType};
use proptest::prelude::*;

const TYPES: [ScalarType; 8] = [
    ScalarType::Bool,
    ScalarType::Int8,
    ScalarType::Int16,
    ScalarType::Int32,
    ScalarType::Int64,
    ScalarType::Float,
    ScalarType::Double,
    ScalarType::VarChar,
];

#[derive(Debug, Clone)]
enum Col {
    Bool(Vec<bool>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    VarChar(Vec<String>),
}

/// A cell, widened.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    B(bool),
    I(i64),
    F32(f32),
    F64(f64),
    S(String),
}

impl Col {
    fn cell(&self, r: usize) -> Cell {
        match self {
            Col::Bool(v) => Cell::B(v[r]),
            Col::Int8(v) => Cell::I(i64::from(v[r])),
            Col::Int16(v) => Cell::I(i64::from(v[r])),
            Col::Int32(v) => Cell::I(i64::from(v[r])),
            Col::Int64(v) => Cell::I(v[r]),
            Col::Float(v) => Cell::F32(v[r]),
            Col::Double(v) => Cell::F64(v[r]),
            Col::VarChar(v) => Cell::S(v[r].clone()),
        }
    }

    fn view(&self) -> ColumnView<'_> {
        match self {
            Col::Bool(v) => ColumnView::Bool(v),
            Col::Int8(v) => ColumnView::Int8(v),
            Col::Int16(v) => ColumnView::Int16(v),
            Col::Int32(v) => ColumnView::Int32(v),
            Col::Int64(v) => ColumnView::Int64(v),
            Col::Float(v) => ColumnView::Float(v),
            Col::Double(v) => ColumnView::Double(v),
            Col::VarChar(v) => ColumnView::VarChar(v),
        }
    }
}

#[derive(Debug, Clone)]
enum Lit {
    B(bool),
    I(i64),
    F(f64),
    S(String),
}

#[derive(Debug, Clone)]
enum G {
    Cmp {
        f: usize,
        op: CmpOp,
        lit: Lit,
        flipped: bool,
    },
    Range {
        f: usize,
        lo: Lit,
        lo_incl: bool,
        hi: Lit,
        hi_incl: bool,
        upward: bool,
    },
    In {
        f: usize,
        lits: Vec<Lit>,
        negated: bool,
    },
    Like {
        f: usize,
        pattern: String,
    },
    FieldCmp {
        a: usize,
        op: CmpOp,
        b: usize,
    },
    Arith {
        f: usize,
        arith: ArithOp,
        c: Lit,
        field_left: bool,
        op: CmpOp,
        v: Lit,
    },
    BoolField(usize),
    Not(Box<G>),
    And(Vec<G>),
    Or(Vec<G>),
}

// ---------- generation ----------

fn small_alpha() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('b'),
            Just('%'),
            Just('_'),
            Just('é'),
            Just('\\'),
            Just('"'),
            Just('\'')
        ],
        0..4,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn int_value() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -6i64..6,
        1 => any::<i64>(),
        1 => prop_oneof![
            Just(i64::MIN), Just(i64::MAX), Just(127), Just(128), Just(-128), Just(-129),
            Just(32767), Just(32768), Just(i64::from(i32::MAX)), Just(i64::from(i32::MIN) - 1)
        ],
    ]
}

fn float_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-6i32..6).prop_map(|i| f64::from(i) * 0.5),
        1 => -1e6f64..1e6,
        1 => prop_oneof![Just(0.1), Just(1e30), Just(-1e-30), Just(16777217.0)],
    ]
}

fn column(ty: ScalarType, n: usize) -> BoxedStrategy<Col> {
    use proptest::collection::vec;
    match ty {
        ScalarType::Bool => vec(any::<bool>(), n).prop_map(Col::Bool).boxed(),
        ScalarType::Int8 => vec(int_value(), n)
            .prop_map(|v| Col::Int8(v.into_iter().map(|x| x as i8).collect()))
            .boxed(),
        ScalarType::Int16 => vec(int_value(), n)
            .prop_map(|v| Col::Int16(v.into_iter().map(|x| x as i16).collect()))
            .boxed(),
        ScalarType::Int32 => vec(int_value(), n)
            .prop_map(|v| Col::Int32(v.into_iter().map(|x| x as i32).collect()))
            .boxed(),
        ScalarType::Int64 => vec(int_value(), n).prop_map(Col::Int64).boxed(),
        ScalarType::Float => vec(
            prop_oneof![9 => float_value(), 1 => Just(f64::NAN), 1 => Just(f64::INFINITY)],
            n,
        )
        .prop_map(|v| Col::Float(v.into_iter().map(|x| x as f32).collect()))
        .boxed(),
        ScalarType::Double => vec(prop_oneof![9 => float_value(), 1 => Just(f64::NAN)], n)
            .prop_map(Col::Double)
            .boxed(),
        _ => vec(small_alpha(), n).prop_map(Col::VarChar).boxed(),
    }
}

fn literal(ty: ScalarType) -> BoxedStrategy<Lit> {
    match ty {
        ScalarType::Bool => any::<bool>().prop_map(Lit::B).boxed(),
        t if t.is_integer() => int_value().prop_map(Lit::I).boxed(),
        t if t.is_float() => {
            prop_oneof![int_value().prop_map(Lit::I), float_value().prop_map(Lit::F)].boxed()
        }
        _ => small_alpha().prop_map(Lit::S).boxed(),
    }
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ]
}

fn leaf(types: Vec<ScalarType>) -> BoxedStrategy<G> {
    let n = types.len();
    let t2 = types.clone();
    let t3 = types.clone();
    let t4 = types.clone();
    let t5 = types.clone();
    let t6 = types.clone();
    let cmp = (0..n, cmp_op(), any::<bool>())
        .prop_flat_map(move |(f, op, flipped)| {
            literal(types[f]).prop_map(move |lit| G::Cmp {
                f,
                op,
                lit,
                flipped,
            })
        })
        .boxed();
    let range = (0..n, any::<bool>(), any::<bool>(), any::<bool>())
        .prop_flat_map(move |(f, lo_incl, hi_incl, upward)| {
            (literal(t2[f]), literal(t2[f])).prop_map(move |(lo, hi)| G::Range {
                f,
                lo,
                lo_incl,
                hi,
                hi_incl,
                upward,
            })
        })
        .boxed();
    let term = (0..n, any::<bool>())
        .prop_flat_map(move |(f, negated)| {
            proptest::collection::vec(literal(t3[f]), 0..12).prop_map(move |lits| G::In {
                f,
                lits,
                negated,
            })
        })
        .boxed();
    let mut options: Vec<BoxedStrategy<G>> = vec![cmp, range, term];
    let strings: Vec<usize> = (0..n).filter(|&i| t4[i] == ScalarType::VarChar).collect();
    if !strings.is_empty() {
        options.push(
            (proptest::sample::select(strings), small_alpha())
                .prop_map(|(f, pattern)| G::Like { f, pattern })
                .boxed(),
        );
    }
    // Field pairs that may be compared: both numeric, or the same type.
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (0..n).map(move |b| (a, b)))
        .filter(|&(a, b)| (t5[a].is_numeric() && t5[b].is_numeric()) || t5[a] == t5[b])
        .collect();
    options.push(
        (proptest::sample::select(pairs), cmp_op())
            .prop_map(|((a, b), op)| G::FieldCmp { a, op, b })
            .boxed(),
    );
    let numeric: Vec<usize> = (0..n).filter(|&i| t6[i].is_numeric()).collect();
    if !numeric.is_empty() {
        let t7 = t6.clone();
        options.push(
            (
                proptest::sample::select(numeric),
                prop_oneof![
                    Just(ArithOp::Add),
                    Just(ArithOp::Sub),
                    Just(ArithOp::Mul),
                    Just(ArithOp::Div),
                    Just(ArithOp::Mod)
                ],
                any::<bool>(),
                cmp_op(),
            )
                .prop_flat_map(move |(f, arith, left, op)| {
                    let field_left = left || matches!(arith, ArithOp::Div | ArithOp::Mod);
                    let ty = t7[f];
                    let c = if ty.is_integer() {
                        if matches!(arith, ArithOp::Div | ArithOp::Mod) {
                            prop_oneof![-4i64..-1, 1i64..5, Just(i64::MIN), Just(i64::MAX)]
                                .prop_map(Lit::I)
                                .boxed()
                        } else {
                            int_value().prop_map(Lit::I).boxed()
                        }
                    } else if matches!(arith, ArithOp::Div | ArithOp::Mod) {
                        prop_oneof![Just(Lit::F(0.5)), Just(Lit::I(3)), Just(Lit::F(-2.0))].boxed()
                    } else {
                        literal(ty)
                    };
                    let v = if ty.is_integer() {
                        int_value().prop_map(Lit::I).boxed()
                    } else {
                        literal(ty)
                    };
                    (c, v).prop_map(move |(c, v)| G::Arith {
                        f,
                        arith,
                        c,
                        field_left,
                        op,
                        v,
                    })
                })
                .boxed(),
        );
    }
    let bools: Vec<usize> = (0..n).filter(|&i| t6[i] == ScalarType::Bool).collect();
    if !bools.is_empty() {
        options.push(
            proptest::sample::select(bools)
                .prop_map(G::BoolField)
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

fn tree(types: Vec<ScalarType>) -> BoxedStrategy<G> {
    leaf(types)
        .prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|g| G::Not(Box::new(g))),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(G::And),
                proptest::collection::vec(inner, 2..4).prop_map(G::Or),
            ]
        })
        .boxed()
}

#[derive(Debug, Clone)]
struct Case {
    types: Vec<ScalarType>,
    cols: Vec<Col>,
    expr: G,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(proptest::sample::select(TYPES.to_vec()), 1..6),
        0usize..150,
    )
        .prop_flat_map(|(types, n)| {
            let cols: Vec<BoxedStrategy<Col>> = types.iter().map(|&t| column(t, n)).collect();
            (Just(types.clone()), cols, tree(types))
        })
        .prop_map(|(types, cols, expr)| Case { types, cols, expr })
}

// ---------- rendering ----------

fn lit_text(l: &Lit) -> String {
    match l {
        Lit::B(b) => if *b { "true" } else { "False" }.to_string(),
        Lit::I(i64::MIN) => "(-9223372036854775807 - 1)".to_string(),
        Lit::I(i) => i.to_string(),
        Lit::F(f) => format!("{f:?}"),
        Lit::S(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

fn arith_sym(a: ArithOp) -> &'static str {
    a.symbol()
}

fn render(g: &G) -> String {
    match g {
        G::Cmp {
            f,
            op,
            lit,
            flipped,
        } => {
            if *flipped {
                format!("{} {} f{f}", lit_text(lit), op.flip().symbol())
            } else {
                format!("f{f} {} {}", op.symbol(), lit_text(lit))
            }
        }
        G::Range {
            f,
            lo,
            lo_incl,
            hi,
            hi_incl,
            upward,
        } => {
            if *upward {
                let a = if *lo_incl { "<=" } else { "<" };
                let b = if *hi_incl { "<=" } else { "<" };
                format!("{} {a} f{f} {b} {}", lit_text(lo), lit_text(hi))
            } else {
                let a = if *hi_incl { ">=" } else { ">" };
                let b = if *lo_incl { ">=" } else { ">" };
                format!("{} {a} f{f} {b} {}", lit_text(hi), lit_text(lo))
            }
        }
        G::In { f, lits, negated } => {
            let items: Vec<String> = lits.iter().map(lit_text).collect();
            format!(
                "f{f} {} [{}]",
                if *negated { "not in" } else { "in" },
                items.join(", ")
            )
        }
        G::Like { f, pattern } => format!("f{f} like {}", lit_text(&Lit::S(pattern.clone()))),
        G::FieldCmp { a, op, b } => format!("f{a} {} f{b}", op.symbol()),
        G::Arith {
            f,
            arith,
            c,
            field_left,
            op,
            v,
        } => {
            if *field_left {
                format!(
                    "f{f} {} {} {} {}",
                    arith_sym(*arith),
                    lit_text(c),
                    op.symbol(),
                    lit_text(v)
                )
            } else {
                format!(
                    "{} {} f{f} {} {}",
                    lit_text(c),
                    arith_sym(*arith),
                    op.symbol(),
                    lit_text(v)
                )
            }
        }
        G::BoolField(f) => format!("f{f}"),
        G::Not(inner) => format!("not ({})", render(inner)),
        G::And(items) => items
            .iter()
            .map(|g| format!("({})", render(g)))
            .collect::<Vec<_>>()
            .join(" and "),
        G::Or(items) => items
            .iter()
            .map(|g| format!("({})", render(g)))
            .collect::<Vec<_>>()
            .join(" || "),
    }
}

// ---------- the reference ----------

/// A literal against a cell of the field's type: the literal coerced as a user of Milvus
/// expects (to f32 for FLOAT, to f64 for DOUBLE, integers exactly).
fn cmp_cell(cell: &Cell, op: CmpOp, lit: &Lit) -> bool {
    match (cell, lit) {
        (Cell::B(x), Lit::B(y)) => op.apply(x, y),
        (Cell::I(x), Lit::I(y)) => op.apply(x, y),
        (Cell::F32(x), Lit::I(y)) => op.apply(x, &(*y as f32)),
        (Cell::F32(x), Lit::F(y)) => op.apply(x, &(*y as f32)),
        (Cell::F64(x), Lit::I(y)) => op.apply(x, &(*y as f64)),
        (Cell::F64(x), Lit::F(y)) => op.apply(x, y),
        (Cell::S(x), Lit::S(y)) => op.apply(x, y),
        other => panic!("ill-typed case {other:?}"),
    }
}

/// SQL LIKE with `%`, `_` and backslash escapes, by plain recursion over characters.
fn like_ref(s: &[char], p: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('%') => (0..=s.len()).any(|k| like_ref(&s[k..], &p[1..])),
        Some('_') => !s.is_empty() && like_ref(&s[1..], &p[1..]),
        Some('\\') if matches!(p.get(1), Some('%' | '_' | '\\')) => {
            s.first() == p.get(1) && like_ref(&s[1..], &p[2..])
        }
        Some(c) => s.first() == Some(c) && like_ref(&s[1..], &p[1..]),
    }
}

fn num(c: &Cell) -> f64 {
    match c {
        Cell::I(x) => *x as f64,
        Cell::F32(x) => f64::from(*x),
        Cell::F64(x) => *x,
        _ => panic!("not numeric"),
    }
}

fn eval_ref(g: &G, cols: &[Col], r: usize) -> bool {
    match g {
        G::Cmp { f, op, lit, .. } => cmp_cell(&cols[*f].cell(r), *op, lit),
        G::Range {
            f,
            lo,
            lo_incl,
            hi,
            hi_incl,
            ..
        } => {
            let c = cols[*f].cell(r);
            cmp_cell(&c, if *lo_incl { CmpOp::Ge } else { CmpOp::Gt }, lo)
                && cmp_cell(&c, if *hi_incl { CmpOp::Le } else { CmpOp::Lt }, hi)
        }
        G::In { f, lits, negated } => {
            let c = cols[*f].cell(r);
            lits.iter().any(|l| cmp_cell(&c, CmpOp::Eq, l)) != *negated
        }
        G::Like { f, pattern } => {
            let Cell::S(s) = cols[*f].cell(r) else {
                panic!()
            };
            let s: Vec<char> = s.chars().collect();
            let p: Vec<char> = pattern.chars().collect();
            like_ref(&s, &p)
        }
        G::FieldCmp { a, op, b } => match (cols[*a].cell(r), cols[*b].cell(r)) {
            (Cell::I(x), Cell::I(y)) => op.apply(&x, &y),
            (Cell::B(x), Cell::B(y)) => op.apply(&x, &y),
            (Cell::S(x), Cell::S(y)) => op.apply(&x, &y),
            (x, y) => op.apply(&num(&x), &num(&y)),
        },
        G::Arith {
            f,
            arith,
            c,
            field_left,
            op,
            v,
        } => match cols[*f].cell(r) {
            Cell::I(x) => {
                let (Lit::I(c), Lit::I(v)) = (c, v) else {
                    panic!()
                };
                let (x, c) = (i128::from(x), i128::from(*c));
                let y = match (arith, field_left) {
                    (ArithOp::Add, _) => x + c,
                    (ArithOp::Mul, _) => x * c,
                    (ArithOp::Sub, true) => x - c,
                    (ArithOp::Sub, false) => c - x,
                    (ArithOp::Div, _) => x / c,
                    (ArithOp::Mod, _) => x % c,
                    _ => unreachable!(),
                };
                op.apply(&y, &i128::from(*v))
            }
            Cell::F32(x) => {
                let c = lit_f64(c) as f32;
                let v = lit_f64(v) as f32;
                op.apply(&float_arith(x, *arith, c, *field_left), &v)
            }
            Cell::F64(x) => op.apply(
                &float_arith(x, *arith, lit_f64(c), *field_left),
                &lit_f64(v),
            ),
            _ => panic!(),
        },
        G::BoolField(f) => cols[*f].cell(r) == Cell::B(true),
        G::Not(inner) => !eval_ref(inner, cols, r),
        G::And(items) => items.iter().all(|g| eval_ref(g, cols, r)),
        G::Or(items) => items.iter().any(|g| eval_ref(g, cols, r)),
    }
}

fn lit_f64(l: &Lit) -> f64 {
    match l {
        Lit::I(i) => *i as f64,
        Lit::F(f) => *f,
        _ => panic!(),
    }
}

fn float_arith<T>(x: T, a: ArithOp, c: T, field_left: bool) -> T
where
    T: std::ops::Add<Output = T>
        + std::ops::Sub<Output = T>
        + std::ops::Mul<Output = T>
        + std::ops::Div<Output = T>
        + std::ops::Rem<Output = T>
        + Copy,
{
    match (a, field_left) {
        (ArithOp::Add, _) => x + c,
        (ArithOp::Mul, _) => x * c,
        (ArithOp::Sub, true) => x - c,
        (ArithOp::Sub, false) => c - x,
        (ArithOp::Div, _) => x / c,
        (ArithOp::Mod, _) => x % c,
        _ => unreachable!(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bitmap_equals_per_row_reference(c in case()) {
        let schema: Vec<(String, FieldKind)> = c
            .types
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("f{i}"), FieldKind::Scalar(*t)))
            .collect();
        let schema: Vec<(&str, FieldKind)> =
            schema.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        let names: Vec<String> = (0..c.cols.len()).map(|i| format!("f{i}")).collect();
        let n = match &c.cols[0] {
            Col::Bool(v) => v.len(),
            Col::Int8(v) => v.len(),
            Col::Int16(v) => v.len(),
            Col::Int32(v) => v.len(),
            Col::Int64(v) => v.len(),
            Col::Float(v) => v.len(),
            Col::Double(v) => v.len(),
            Col::VarChar(v) => v.len(),
        };
        let mut map = ColumnMap::new(n);
        for (name, col) in names.iter().zip(&c.cols) {
            map = map.with(name, col.view());
        }
        let text = render(&c.expr);
        let checked = compile(&text, schema.as_slice())
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        let bits = checked.evaluate(&map).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(bits.len(), n);
        for r in 0..n {
            prop_assert_eq!(
                bits.get(r),
                eval_ref(&c.expr, &c.cols, r),
                "row {} of {:?}", r, text
            );
        }
        prop_assert_eq!(bits.count_ones(), (0..n).filter(|&r| eval_ref(&c.expr, &c.cols, r)).count());

        // Key hints on f0 (as if it were the primary key) must cover every match.
        if let Some(hint) = checked.primary_key_hint("f0") {
            for r in 0..n {
                let inside = match (&hint.keys, c.cols[0].cell(r)) {
                    (KeySet::Ints(v), Cell::I(x)) => v.binary_search(&x).is_ok(),
                    (KeySet::IntRange { lo, hi }, Cell::I(x)) => (*lo..=*hi).contains(&x),
                    (KeySet::Strs(v), Cell::S(s)) => v.binary_search(&s).is_ok(),
                    (KeySet::Ints(v), _) => { prop_assert!(v.is_empty()); false }
                    (k, cell) => return Err(TestCaseError::fail(format!("{k:?} for {cell:?}"))),
                };
                if bits.get(r) {
                    prop_assert!(inside, "row {} matches {:?} outside the key hint", r, text);
                }
                if hint.exact {
                    prop_assert_eq!(bits.get(r), inside, "exact hint, row {} of {:?}", r, text);
                }
            }
        }
    }
}
