//! End-to-end tests with the real Python clients: pymilvus 2.2.7 and 2.3.8 (installed by
//! `scripts/setup-milvus-tests.sh`) against a facedb server on a free loopback port.
//!
//! The seed's own script `../shared/peers/milvus/seed_example.py` must print what the real
//! Milvus 2.3.5 printed (`../shared/data/milvus-reference/seed_example_pymilvus*.txt`): same
//! ids, names and distances (1e-5 relative), every section, filtered ones included.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{pythons, run_python, shared_dir, TestServer};

const TIMEOUT: Duration = Duration::from_secs(300);

/// Lines of each `--- ` section (and a few single lines) of the seed example's output.
fn sections(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("--- ") {
            // "--- query expr=... count: 6" carries its value on the header line
            if let Some((head, value)) = h.split_once(" count:") {
                out.insert(format!("{head} count"), vec![value.trim().to_string()]);
                current = None;
            } else {
                out.insert(h.to_string(), vec![]);
                current = Some(h.to_string());
            }
        } else if let (true, Some(c)) = (line.starts_with("  "), &current) {
            if let Some(v) = out.get_mut(c) {
                v.push(line.trim().to_string());
            }
        } else {
            current = None;
            for key in ["num_entities after flush:", "index (L2):", "index (IP):"] {
                if let Some(v) = line.strip_prefix(key) {
                    out.insert(key.to_string(), vec![v.trim().to_string()]);
                }
            }
        }
    }
    out
}

/// `id=2 name='xiaoyue' distance=4.0` -> (2, "xiaoyue", 4.0)
fn parse_hit(line: &str) -> Option<(i64, String, f64)> {
    let rest = line.strip_prefix("id=")?;
    let (id, rest) = rest.split_once(" name='")?;
    let (name, rest) = rest.split_once("' distance=")?;
    Some((
        id.parse().ok()?,
        name.to_string(),
        rest.trim().parse().ok()?,
    ))
}

/// `[{'name': 'xiaowang', 'id': 3}, ...]` -> sorted (id, name) pairs, whatever the key order.
fn parse_query_rows(line: &str) -> Option<Vec<(i64, String)>> {
    if !(line.starts_with('[') && line.ends_with(']')) {
        return None;
    }
    let mut rows = Vec::new();
    for chunk in line.split('{').skip(1) {
        let body = chunk.split('}').next()?;
        let mut id = None;
        let mut name = None;
        for part in body.split(", ") {
            let (k, v) = part.split_once(": ")?;
            match k.trim_matches('\'') {
                "id" => id = v.trim().parse::<i64>().ok(),
                "name" => name = Some(v.trim().trim_matches('\'').to_string()),
                _ => return None,
            }
        }
        rows.push((id?, name?));
    }
    rows.sort();
    Some(rows)
}

fn same_section(ours: &[String], reference: &[String]) -> Result<(), String> {
    if ours.len() != reference.len() {
        return Err(format!(
            "{} lines, reference has {}",
            ours.len(),
            reference.len()
        ));
    }
    for (o, r) in ours.iter().zip(reference) {
        if let (Some(a), Some(b)) = (parse_hit(o), parse_hit(r)) {
            let tol = 1e-5 * b.2.abs().max(1e-30);
            if a.0 != b.0 || a.1 != b.1 || (a.2 - b.2).abs() > tol {
                return Err(format!("hit {o:?} differs from reference {r:?}"));
            }
        } else if let (Some(a), Some(b)) = (parse_query_rows(o), parse_query_rows(r)) {
            if a != b {
                return Err(format!("rows {a:?} differ from reference {b:?}"));
            }
        } else if o != r {
            return Err(format!("{o:?} differs from reference {r:?}"));
        }
    }
    Ok(())
}

fn seed_example(python: &Path, reference_name: &str) {
    let Some(shared) = shared_dir() else {
        eprintln!("../shared is absent: skipping the seed example comparison");
        return;
    };
    let script = shared.join("peers/milvus/seed_example.py");
    let reference = shared.join("data/milvus-reference").join(reference_name);
    if !script.is_file() || !reference.is_file() {
        eprintln!(
            "seed example or reference missing under {}: skipping",
            shared.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    let run = run_python(python, &script, &[&server.host(), &server.port()], TIMEOUT);
    assert!(
        run.ok,
        "seed_example.py failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    let ours = sections(&run.stdout);
    let theirs = sections(&std::fs::read_to_string(&reference).unwrap());
    let exact = [
        "num_entities after flush:",
        "index (L2):",
        "index (IP):",
        "FLAT L2 search [1.75,72,24] limit=10",
        "FLAT L2 limit=3",
        "FLAT IP search [1.75,72,24] limit=10",
        "FLAT IP limit=3",
    ];
    assert!(
        theirs.len() > exact.len(),
        "reference not parsed: {theirs:?}"
    );
    for (key, want) in &theirs {
        let got = ours
            .get(key)
            .unwrap_or_else(|| panic!("section {key:?} missing from our output:\n{}", run.stdout));
        if let Err(why) = same_section(got, want) {
            panic!("section {key:?}: {why}\nours: {got:?}\nreference: {want:?}");
        }
    }
    eprintln!("{reference_name}: all {} sections identical", theirs.len());
}

fn py_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

fn run_ok(python: &Path, script: &str, server: &TestServer) {
    let run = run_python(
        python,
        &py_script(script),
        &[&server.host(), &server.port()],
        TIMEOUT,
    );
    assert!(
        run.ok && run.stdout.trim_end().ends_with("OK"),
        "{script} with {}:\n{}\n{}",
        python.display(),
        run.stdout,
        run.stderr
    );
}

#[test]
fn seed_example_pymilvus_2_2_7() {
    let Some((py22, _)) = pythons() else { return };
    seed_example(py22, "seed_example_pymilvus2.2.7.txt");
}

#[test]
fn seed_example_pymilvus_2_3_8() {
    let Some((_, py23)) = pythons() else { return };
    seed_example(py23, "seed_example_pymilvus2.3.8.txt");
}

#[test]
fn milvus_client_quickstart_pymilvus_2_3_8() {
    let Some((_, py23)) = pythons() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    run_ok(py23, "quickstart.py", &server);
}

#[test]
fn error_cases_pymilvus_2_2_7() {
    let Some((py22, _)) = pythons() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    run_ok(py22, "errors.py", &server);
}

#[test]
fn error_cases_pymilvus_2_3_8() {
    let Some((_, py23)) = pythons() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), None);
    run_ok(py23, "errors.py", &server);
}

#[test]
fn parsers_of_the_seed_output() {
    let s = sections(
        "num_entities after flush: 6\n--- FLAT L2 limit=3\n  id=2 name='xiaoyue' distance=4.0\n\
         --- query expr='id > 2' output_fields=['name']:\n  [{'name': 'b', 'id': 3}, {'id': 1, 'name': 'a'}]\n\
         --- query expr=\"name like 'xiao%'\" count: 6\n",
    );
    assert_eq!(s["num_entities after flush:"], vec!["6"]);
    assert_eq!(
        parse_hit(&s["FLAT L2 limit=3"][0]),
        Some((2, "xiaoyue".into(), 4.0))
    );
    assert_eq!(
        parse_query_rows(&s["query expr='id > 2' output_fields=['name']:"][0]),
        Some(vec![(1, "a".into()), (3, "b".into())])
    );
    assert_eq!(s["query expr=\"name like 'xiao%'\" count"], vec!["6"]);
    assert_eq!(parse_query_rows("ERROR MilvusException: x"), None);
    assert!(same_section(&["ERROR x".into()], &["6".into()]).is_err());
    assert!(same_section(
        &["id=2 name='x' distance=4.0001".into()],
        &["id=2 name='x' distance=4.0".into()]
    )
    .is_err());
    assert!(same_section(
        &["id=2 name='x' distance=4.000001".into()],
        &["id=2 name='x' distance=4.0".into()]
    )
    .is_ok());
}
