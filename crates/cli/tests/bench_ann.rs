//! `facedb bench facegen` and `facedb bench ann` through the real binary: a small calibrated
//! dataset from the face_recognition reference encodings (skipped where absent), then FLAT
//! through `bench ann`, whose top-10 must equal the dataset's float64 ground truth.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn facedb(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_facedb"))
        .args(args)
        .output()
        .expect("run facedb");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "facedb {args:?} failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn npy_i64(path: &Path) -> (Vec<u64>, Vec<i64>) {
    let bytes = std::fs::read(path).unwrap();
    let f = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<i64>().unwrap())
}

#[test]
fn facegen_then_flat_reproduces_the_ground_truth() {
    let reference = repo().join("../shared/data/reference/face_recognition_encodings.json");
    if !reference.is_file() {
        eprintln!("SKIPPED: {} is absent", reference.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("data/facecal_3000");
    let out = facedb(&[
        "bench",
        "facegen",
        "--fit",
        reference.to_str().unwrap(),
        "--n",
        "3000",
        "--per-id",
        "3",
        "--queries",
        "60",
        "--seed",
        "4",
        "--out",
        ds.to_str().unwrap(),
    ]);
    assert!(
        out.contains("real genuine") && out.contains("synth impostor"),
        "{out}"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["dataset"], "facecal");
    assert_eq!(meta["metric"], "l2");
    assert_eq!(meta["threshold"], 0.55);
    assert_eq!(meta["n"], 3000);
    let (shape, qids) = npy_i64(&ds.join("query_ids.npy"));
    assert_eq!(shape, vec![60]);
    assert_eq!(qids.iter().filter(|&&q| q < 0).count(), 30);
    let (shape, bids) = npy_i64(&ds.join("base_ids.npy"));
    assert_eq!(shape, vec![3000]);
    assert_eq!(bids[..4], [0, 0, 0, 1]);
    let (gshape, gt) = npy_i64(&ds.join("gt_I.npy"));
    assert_eq!(gshape, vec![60, 100]);

    let res = tmp.path().join("res");
    facedb(&[
        "bench",
        "ann",
        "--dataset",
        ds.to_str().unwrap(),
        "--index",
        "FLAT",
        "--out",
        res.to_str().unwrap(),
        "--single-budget",
        "0.05",
        "--split-budget",
        "0.05",
    ]);
    let (shape, ids) = npy_i64(&res.join("ids.npy"));
    assert_eq!(shape, vec![60, 10]);
    let same = (0..60)
        .flat_map(|q| (0..10).map(move |j| (q, j)))
        .filter(|&(q, j)| ids[q * 10 + j] == gt[q * 100 + j])
        .count();
    assert!(
        same >= 598,
        "{same} of 600 top-10 entries equal the f64 ground truth"
    );
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(res.join("timings.json")).unwrap()).unwrap();
    for key in [
        "build_s",
        "bytes_per_vec",
        "qps_batch_allT",
        "single_1T",
        "single_allT",
        "open_vs_enrolled_1T",
    ] {
        assert!(!t[key].is_null(), "timings.json lacks {key}");
    }
    assert_eq!(t["bytes_per_vec"], 512.0);
}

#[test]
fn ann_rejects_bad_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_facedb"))
            .args(args)
            .output()
            .unwrap()
    };
    // missing dataset
    let o = run(&[
        "bench",
        "ann",
        "--dataset",
        tmp.path().to_str().unwrap(),
        "--index",
        "FLAT",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("meta.json"));
}
