//! Crash safety: SIGKILL a writer at random moments, reopen, find every acknowledged batch
//! whole and no partial batch; torn and corrupt WAL tails.

mod common;
use common::*;
use facedb_store::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BATCH: i64 = 50;
const DIM: usize = 16;

fn schema() -> CollectionSchema {
    CollectionSchema {
        name: "crash".into(),
        description: String::new(),
        fields: vec![
            FieldSchema::primary("id", DataType::Int64, false),
            FieldSchema::new("batch", DataType::Int64),
            FieldSchema::new("v", DataType::FloatVector { dim: DIM as u32 }),
        ],
    }
}

fn batch_rows(b: i64) -> Batch {
    let ids: Vec<i64> = (0..BATCH).map(|i| b * BATCH + i).collect();
    Batch::new()
        .with("batch", ColumnData::Int64(vec![b; BATCH as usize]))
        .with(
            "v",
            ColumnData::FloatVector {
                dim: DIM,
                data: ids
                    .iter()
                    .flat_map(|i| (0..DIM).map(move |d| (*i as f32) + d as f32))
                    .collect(),
            },
        )
        .with("id", ColumnData::Int64(ids))
}

/// The child: runs only when FACEDB_CRASH_DIR is set (spawned by the parent below).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("FACEDB_CRASH_DIR") else {
        return;
    };
    // Small segments so that kills also land in sealing and manifest writes.
    let opts = Options {
        fsync: true,
        seal_bytes: 7 * BATCH as usize * DIM * 4,
    };
    let db = Database::open_with(&dir, opts).unwrap();
    let c = if db.has_collection("crash") {
        db.collection("crash").unwrap()
    } else {
        db.create_collection(schema()).unwrap()
    };
    let start: i64 = std::env::var("FACEDB_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    let mut out = std::io::stdout();
    for b in start.. {
        c.insert(batch_rows(b)).unwrap();
        if b % 5 == 0 {
            c.delete(&[PrimaryKey::Int(b * BATCH)]).unwrap();
        }
        if b % 11 == 0 {
            c.flush().unwrap();
        }
        if b % 23 == 0 {
            c.compact().unwrap();
        }
        use std::io::Write;
        writeln!(out, "ACK {b}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: i64 = -1;
    let mut acked_set = std::collections::HashSet::new();
    let mut next: i64 = 0;
    let mut rng_state = 0x2545F4914F6CDD1Du64;
    for cycle in 0..24 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("FACEDB_CRASH_DIR", dir.path())
            .env("FACEDB_CRASH_START", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let wait_ms = 20 + rng_state % 400;
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(b) = line.strip_prefix("ACK ") {
                    got.push(b.parse::<i64>().unwrap());
                }
            }
            got
        });
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(wait_ms) {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let got = reader.join().unwrap();
        acked = acked.max(got.iter().copied().max().unwrap_or(-1));
        acked_set.extend(got);
        // Reopen and check: every acknowledged batch whole, no partial batch at all.
        let db = Database::open(dir.path()).unwrap();
        if !db.has_collection("crash") {
            assert_eq!(acked, -1, "cycle {cycle}: collection lost");
            continue;
        }
        let c = db.collection("crash").unwrap();
        let rows = c
            .query(None, &["id".into(), "batch".into()], None, 0)
            .unwrap();
        let mut per_batch = std::collections::BTreeMap::<i64, usize>::new();
        for r in &rows {
            let Value::Int(b) = r[1].1 else { panic!() };
            *per_batch.entry(b).or_default() += 1;
        }
        let max_batch = per_batch.keys().max().copied().unwrap_or(-1);
        for b in 0..=max_batch.max(acked) {
            let want = if b % 5 == 0 { BATCH - 1 } else { BATCH } as usize;
            let got = per_batch.get(&b).copied().unwrap_or(0);
            if acked_set.contains(&b) {
                // acknowledged: whole, with its acknowledged delete applied
                assert_eq!(got, want, "cycle {cycle}: acknowledged batch {b}");
            } else {
                // never acknowledged: absent, or whole (with or without its delete)
                assert!(
                    got == 0 || got == want || got == BATCH as usize,
                    "cycle {cycle}: partial batch {b} ({got} rows)"
                );
            }
        }
        // the vector of every row is intact
        let q = vec![(0..DIM)
            .map(|d| (BATCH + 1) as f32 + d as f32)
            .collect::<Vec<f32>>()];
        if acked >= 1 {
            let hits = c.search(&SearchRequest::new(q, Metric::L2, 1)).unwrap();
            assert_eq!(hits[0][0].pk, PrimaryKey::Int(BATCH + 1));
            assert_eq!(hits[0][0].distance, 0.0);
        }
        next = max_batch.max(acked) + 1;
    }
    assert!(
        acked > 10,
        "the child made progress ({acked} batches acknowledged)"
    );
}

fn wal_file(dir: &std::path::Path) -> std::path::PathBuf {
    let cdir = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let mut logs: Vec<_> = std::fs::read_dir(cdir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn two_batches(dir: &std::path::Path) -> u64 {
    let db = Database::open(dir).unwrap();
    let c = db.create_collection(people_schema()).unwrap();
    c.insert(people_batch()).unwrap();
    let len_after_first = std::fs::metadata(wal_file(dir)).unwrap().len();
    let b = Batch::new()
        .with("id", ColumnData::Int64(vec![7, 8]))
        .with("name", ColumnData::VarChar(vec!["a".into(), "b".into()]))
        .with(
            "metrics",
            ColumnData::FloatVector {
                dim: 3,
                data: vec![0.0; 6],
            },
        );
    c.insert(b).unwrap();
    len_after_first
}

#[test]
fn torn_last_record_is_dropped_with_a_warning() {
    for cut in [1u64, 5, 17, 40] {
        let dir = tempfile::tempdir().unwrap();
        let first = two_batches(dir.path());
        let wal = wal_file(dir.path());
        let len = std::fs::metadata(&wal).unwrap().len();
        assert!(len - cut > first);
        let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
        f.set_len(len - cut).unwrap();
        drop(f);
        let db = Database::open(dir.path()).unwrap();
        let c = db.collection("people").unwrap();
        assert_eq!(c.count(), 6, "cut {cut}");
        assert_eq!(c.recovery().warnings.len(), 1);
        // the log is usable again: a new write lands and survives another reopen
        c.insert(batch_one(9)).unwrap();
        drop(c);
        drop(db);
        let db = Database::open(dir.path()).unwrap();
        let c = db.collection("people").unwrap();
        assert_eq!(c.count(), 7);
        assert!(c.recovery().warnings.is_empty());
    }
}

fn batch_one(id: i64) -> Batch {
    Batch::new()
        .with("id", ColumnData::Int64(vec![id]))
        .with("name", ColumnData::VarChar(vec!["z".into()]))
        .with(
            "metrics",
            ColumnData::FloatVector {
                dim: 3,
                data: vec![1.0; 3],
            },
        )
}

#[test]
fn corrupt_last_record_is_dropped_and_corrupt_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path());
    let wal = wal_file(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff; // inside the last record's payload
    std::fs::write(&wal, &bytes).unwrap();
    let db = Database::open(dir.path()).unwrap();
    let c = db.collection("people").unwrap();
    assert_eq!(c.count(), 6);
    assert!(c.recovery().warnings[0].contains("checksum"));
    drop(c);
    drop(db);

    let dir = tempfile::tempdir().unwrap();
    let first = two_batches(dir.path());
    let wal = wal_file(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[first as usize - 3] ^= 0xff; // inside the FIRST record, with a valid one after it
    std::fs::write(&wal, &bytes).unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert!(matches!(
        db.collection("people"),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn garbage_appended_to_the_wal_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path());
    let wal = wal_file(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
    std::fs::write(&wal, &bytes).unwrap();
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.collection("people").unwrap().count(), 8);
}
