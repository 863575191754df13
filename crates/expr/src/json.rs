//! Tests on values inside JSON documents.

use std::cmp::Ordering;
use std::ops::Bound;

use serde_json::Value as J;

use crate::checked::{JsonTest, Value};

/// Follows a JSON-pointer-like path: object keys, or array indexes written as decimals.
fn lookup<'v>(doc: &'v J, path: &[String]) -> Option<&'v J> {
    let mut cur = doc;
    for key in path {
        cur = match cur {
            J::Object(m) => m.get(key)?,
            J::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Orders a JSON value against a constant; `None` when the types do not compare
/// (numbers compare with numbers, integers exactly; strings with strings; bools with bools).
fn cmp(j: &J, v: &Value) -> Option<Ordering> {
    match (j, v) {
        (J::Number(n), Value::Int(i)) => {
            if let Some(x) = n.as_i64() {
                Some(x.cmp(i))
            } else if n.as_u64().is_some() {
                Some(Ordering::Greater)
            } else {
                n.as_f64()?.partial_cmp(&(*i as f64))
            }
        }
        (J::Number(n), Value::Float(f)) => {
            if let Some(x) = n.as_i64() {
                (x as f64).partial_cmp(f)
            } else {
                n.as_f64()?.partial_cmp(f)
            }
        }
        (J::String(s), Value::Str(t)) => Some(s.as_str().cmp(t.as_str())),
        (J::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn eq(j: &J, v: &Value) -> bool {
    cmp(j, v) == Some(Ordering::Equal)
}

fn lower_ok(j: &J, b: &Bound<Value>) -> bool {
    match b {
        Bound::Unbounded => true,
        Bound::Included(v) => matches!(cmp(j, v), Some(Ordering::Greater | Ordering::Equal)),
        Bound::Excluded(v) => cmp(j, v) == Some(Ordering::Greater),
    }
}

fn upper_ok(j: &J, b: &Bound<Value>) -> bool {
    match b {
        Bound::Unbounded => true,
        Bound::Included(v) => matches!(cmp(j, v), Some(Ordering::Less | Ordering::Equal)),
        Bound::Excluded(v) => cmp(j, v) == Some(Ordering::Less),
    }
}

/// Whether the JSON document `doc` (UTF-8 JSON text) satisfies `test` at `path`.
/// A document that does not parse, or lacks the path, satisfies nothing.
pub(crate) fn matches(doc: &[u8], path: &[String], test: &JsonTest) -> bool {
    let Ok(root) = serde_json::from_slice::<J>(doc) else {
        return false;
    };
    let Some(j) = lookup(&root, path) else {
        return false;
    };
    match test {
        JsonTest::Compare { op, value } => match cmp(j, value) {
            Some(o) => op.apply(&o, &Ordering::Equal),
            None => false,
        },
        JsonTest::Range { lower, upper } => lower_ok(j, lower) && upper_ok(j, upper),
        JsonTest::In(values) => values.iter().any(|v| eq(j, v)),
        JsonTest::Like(p) => j.as_str().is_some_and(|s| p.matches(s)),
        JsonTest::Contains(v) => j.as_array().is_some_and(|a| a.iter().any(|e| eq(e, v))),
        JsonTest::ContainsAll(vs) => j
            .as_array()
            .is_some_and(|a| vs.iter().all(|v| a.iter().any(|e| eq(e, v)))),
        JsonTest::ContainsAny(vs) => j
            .as_array()
            .is_some_and(|a| vs.iter().any(|v| a.iter().any(|e| eq(e, v)))),
    }
}
