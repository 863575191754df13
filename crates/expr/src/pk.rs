//! Primary-key constraints extracted from a checked expression.

use std::ops::Bound;

use crate::ast::CmpOp;
use crate::checked::{CheckedExpr, FieldRef, Predicate, Value, ValueSet};

/// A set of primary keys the matching rows must lie in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySet {
    /// These integer keys (sorted, no duplicates; may be empty: no row can match).
    Ints(Vec<i64>),
    /// These string keys (sorted, no duplicates; may be empty).
    Strs(Vec<String>),
    /// Integer keys in `lo..=hi` (`lo <= hi`).
    IntRange {
        /// Smallest key.
        lo: i64,
        /// Largest key.
        hi: i64,
    },
}

/// What [`CheckedExpr::primary_key_hint`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKeyHint {
    /// Every matching row has its primary key in this set.
    pub keys: KeySet,
    /// `true` when the expression is exactly "the key is in `keys`": the store can answer by
    /// key lookup alone. `false` when other conditions remain: the store looks the keys up and
    /// then evaluates the expression on those rows.
    pub exact: bool,
}

impl CheckedExpr {
    /// Where the expression constrains the primary key `pk_field` to a set or a range
    /// (`id == 5`, `id in [1, 2]`, `10 <= id < 20`, `id in [..] and name like "a%"`, `or`s
    /// of such), the keys the matching rows must have; `None` when it does not (for
    /// example `id != 5`, `not (id in [..])`, or an `or` with a branch on another field).
    pub fn primary_key_hint(&self, pk_field: &str) -> Option<PrimaryKeyHint> {
        hint(&self.predicate, pk_field)
    }
}

fn is_pk(f: &FieldRef, pk: &str) -> bool {
    f.name == pk
}

fn hint(p: &Predicate, pk: &str) -> Option<PrimaryKeyHint> {
    let exact = |keys| Some(PrimaryKeyHint { keys, exact: true });
    match p {
        Predicate::Const(false) => exact(KeySet::Ints(Vec::new())),
        Predicate::Compare { field, op, value } if is_pk(field, pk) => match (op, value) {
            (CmpOp::Eq, Value::Int(v)) => exact(KeySet::Ints(vec![*v])),
            (CmpOp::Eq, Value::Str(s)) => exact(KeySet::Strs(vec![s.clone()])),
            (CmpOp::Lt, Value::Int(v)) => range(Some(i64::MIN), v.checked_sub(1)),
            (CmpOp::Le, Value::Int(v)) => range(Some(i64::MIN), Some(*v)),
            (CmpOp::Gt, Value::Int(v)) => range(v.checked_add(1), Some(i64::MAX)),
            (CmpOp::Ge, Value::Int(v)) => range(Some(*v), Some(i64::MAX)),
            _ => None,
        },
        Predicate::Range {
            field,
            lower,
            upper,
        } if is_pk(field, pk) => {
            let lo = match lower {
                Bound::Unbounded => Some(i64::MIN),
                Bound::Included(Value::Int(v)) => Some(*v),
                Bound::Excluded(Value::Int(v)) => v.checked_add(1),
                _ => return None,
            };
            let hi = match upper {
                Bound::Unbounded => Some(i64::MAX),
                Bound::Included(Value::Int(v)) => Some(*v),
                Bound::Excluded(Value::Int(v)) => v.checked_sub(1),
                _ => return None,
            };
            range(lo, hi)
        }
        Predicate::In {
            field,
            set,
            negated: false,
        } if is_pk(field, pk) => match set {
            ValueSet::Int(v) => exact(KeySet::Ints(v.clone())),
            ValueSet::Str(v) => exact(KeySet::Strs(v.clone())),
            _ => None,
        },
        Predicate::And(items) => {
            let mut acc: Option<PrimaryKeyHint> = None;
            let mut all_exact = true;
            for item in items {
                match hint(item, pk) {
                    None => all_exact = false,
                    Some(h) => {
                        acc = Some(match acc {
                            None => h,
                            Some(a) => PrimaryKeyHint {
                                keys: intersect(a.keys, h.keys)?,
                                exact: a.exact && h.exact,
                            },
                        })
                    }
                }
            }
            acc.map(|mut h| {
                h.exact &= all_exact;
                h
            })
        }
        Predicate::Or(items) => {
            let mut acc: Option<PrimaryKeyHint> = None;
            for item in items {
                let h = hint(item, pk)?;
                acc = Some(match acc {
                    None => h,
                    Some(a) => PrimaryKeyHint {
                        keys: union(a.keys, h.keys)?,
                        exact: a.exact && h.exact,
                    },
                });
            }
            acc
        }
        _ => None,
    }
}

/// An exact hint for keys in `lo..=hi`; `None` bounds (overflowed exclusive bounds) or
/// `lo > hi` give the empty set.
fn range(lo: Option<i64>, hi: Option<i64>) -> Option<PrimaryKeyHint> {
    let keys = match (lo, hi) {
        (Some(lo), Some(hi)) if lo <= hi => KeySet::IntRange { lo, hi },
        _ => KeySet::Ints(Vec::new()),
    };
    Some(PrimaryKeyHint { keys, exact: true })
}

fn intersect(a: KeySet, b: KeySet) -> Option<KeySet> {
    Some(match (a, b) {
        (KeySet::Ints(x), KeySet::Ints(y)) => KeySet::Ints(
            x.into_iter()
                .filter(|v| y.binary_search(v).is_ok())
                .collect(),
        ),
        (KeySet::Strs(x), KeySet::Strs(y)) => KeySet::Strs(
            x.into_iter()
                .filter(|v| y.binary_search(v).is_ok())
                .collect(),
        ),
        (KeySet::Ints(x), KeySet::IntRange { lo, hi })
        | (KeySet::IntRange { lo, hi }, KeySet::Ints(x)) => {
            KeySet::Ints(x.into_iter().filter(|v| (lo..=hi).contains(v)).collect())
        }
        (KeySet::IntRange { lo: a, hi: b }, KeySet::IntRange { lo: c, hi: d }) => {
            let (lo, hi) = (a.max(c), b.min(d));
            if lo <= hi {
                KeySet::IntRange { lo, hi }
            } else {
                KeySet::Ints(Vec::new())
            }
        }
        // An empty set of either kind stays empty.
        (KeySet::Ints(x), _) | (_, KeySet::Ints(x)) if x.is_empty() => KeySet::Ints(x),
        _ => return None,
    })
}

fn union(a: KeySet, b: KeySet) -> Option<KeySet> {
    Some(match (a, b) {
        (KeySet::Ints(x), KeySet::Ints(y)) => {
            let mut v: Vec<i64> = x.into_iter().chain(y).collect();
            v.sort_unstable();
            v.dedup();
            KeySet::Ints(v)
        }
        (KeySet::Strs(x), KeySet::Strs(y)) => {
            let mut v: Vec<String> = x.into_iter().chain(y).collect();
            v.sort_unstable();
            v.dedup();
            KeySet::Strs(v)
        }
        (KeySet::Ints(x), other) | (other, KeySet::Ints(x)) if x.is_empty() => other,
        (KeySet::IntRange { lo: a, hi: b }, KeySet::IntRange { lo: c, hi: d }) => {
            // Overlapping or adjacent ranges merge; others are not representable.
            let (lo1, hi1, lo2, hi2) = if a <= c { (a, b, c, d) } else { (c, d, a, b) };
            if lo2 <= hi1.saturating_add(1) {
                KeySet::IntRange {
                    lo: lo1,
                    hi: hi1.max(hi2),
                }
            } else {
                return None;
            }
        }
        (KeySet::Ints(x), KeySet::IntRange { lo, hi })
        | (KeySet::IntRange { lo, hi }, KeySet::Ints(x))
            if x.iter().all(|v| (lo..=hi).contains(v)) =>
        {
            KeySet::IntRange { lo, hi }
        }
        _ => return None,
    })
}
