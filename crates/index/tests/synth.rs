//! The calibrated generator against the real reference descriptors
//! (`shared/data/reference/face_recognition_encodings.json`; skipped where absent).

mod common;

use facedb_index::synth::{pair_quantiles, FaceModel};

/// Largest allowed |generated − real| of the genuine and impostor L2 medians.
const MEDIAN_TOL: f64 = 0.03;
/// Largest allowed |generated − real| of the 5% and 95% quantiles.
const TAIL_TOL: f64 = 0.04;

#[test]
fn fit_matches_reference_distances() {
    let Some(samples) = common::reference_samples() else {
        return;
    };
    // the labelling rules give the expected identities
    let labels: std::collections::BTreeSet<&str> = samples.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(samples.len(), 137);
    assert_eq!(labels.len(), 62);
    assert_eq!(samples.iter().filter(|s| s.0 == "obama").count(), 6);
    assert_eq!(
        labels.iter().filter(|l| l.starts_with("bald_guys")).count(),
        4
    );

    let m = FaceModel::fit(&samples).unwrap();
    let st = m.stats();
    let gen = m.pair_quantiles(20_000, 1);
    let real = &st.real;
    println!("fit: {}", serde_json::to_string(st).unwrap());
    println!("generated: {}", serde_json::to_string(&gen).unwrap());
    for (what, r, g) in [
        ("genuine", real.genuine, gen.genuine),
        ("impostor", real.impostor, gen.impostor),
    ] {
        assert!(
            (r[1] - g[1]).abs() <= MEDIAN_TOL,
            "{what} median: real {} generated {}",
            r[1],
            g[1]
        );
        for i in [0, 2] {
            assert!(
                (r[i] - g[i]).abs() <= TAIL_TOL,
                "{what} quantile {i}: real {r:?} generated {g:?}"
            );
        }
    }
    // the identity space has the real data's effective dimension (within 10%)
    let ratio = gen.impostor_effective_dim / real.impostor_effective_dim;
    assert!((0.9..=1.1).contains(&ratio), "effective dim ratio {ratio}");
    // dlib's rule of thumb holds on both: genuine pairs mostly below 0.6, impostors above
    assert!(gen.genuine_below_0_6 > 0.95 && gen.impostor_below_0_6 < 0.01);
}

#[test]
fn same_seed_same_data() {
    let Some(m) = common::reference_model() else {
        return;
    };
    let a = m.sample(2000, 4, 100, 100, 5).unwrap();
    let b = m.sample(2000, 4, 100, 100, 5).unwrap();
    assert!(a == b, "same seed, different data");
    let c = m.sample(2000, 4, 100, 100, 6).unwrap();
    assert!(a.base != c.base && a.queries != c.queries);
    // a second fit of the same descriptors is the same model
    let m2 = common::reference_model().unwrap();
    assert!(m2.sample(2000, 4, 100, 100, 5).unwrap() == a);
}

#[test]
fn fit_recovers_its_own_parameters() {
    // Data drawn from a fitted model, refitted: the traces and scales come back.
    let Some(m) = common::reference_model() else {
        return;
    };
    let truth = m.stats().clone();
    let data = m.sample(250, 6, 0, 0, 3).unwrap();
    let samples: Vec<(String, Vec<f32>)> = data
        .base
        .chunks_exact(data.dim)
        .zip(&data.base_ids)
        .map(|(x, id)| (id.to_string(), x.to_vec()))
        .collect();
    let refit = FaceModel::fit(&samples).unwrap();
    let st = refit.stats();
    println!("truth: {}", serde_json::to_string(&truth).unwrap());
    println!("refit: {}", serde_json::to_string(st).unwrap());
    let rel = |a: f64, b: f64| (a - b).abs() / b;
    assert!(
        rel(st.trace_within, truth.trace_within) < 0.05,
        "tr(Sigma_w)"
    );
    assert!(
        rel(st.trace_center, truth.trace_center) < 0.15,
        "tr(Sigma_c)"
    );
    assert!(
        (st.id_log_sigma - truth.id_log_sigma).abs() < 0.05,
        "id sigma"
    );
    assert!(
        (st.sample_log_sigma - truth.sample_log_sigma).abs() < 0.05,
        "sample sigma"
    );
    let gen = pair_quantiles(&samples);
    assert!((gen.genuine[1] - truth.real.genuine[1]).abs() < MEDIAN_TOL);
}
