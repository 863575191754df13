//! Calibrated face-like data: a Gaussian identity model fitted on real labelled dlib
//! descriptors, and a seeded sampler of galleries and probes for recall tests and
//! benchmarks. Pure math: no files (the callers read descriptors and write datasets).
//!
//! # Model
//!
//! A descriptor of identity `i` is `x = c_i + s_i · w` with
//! - identity centre `c_i ~ N(mu, Sigma_c)`,
//! - within-identity variation `w ~ N(0, Sigma_w)`,
//! - a per-identity noise scale `s_i = exp(sigma · g − sigma²)`, `g ~ N(0, 1)` (lognormal,
//!   `E[s²] = 1`): some people are photographed under more varied conditions than others.
//!
//! Fitted by moments ([`FaceModel::fit`]):
//! - `Sigma_w`: pooled scatter of the deviations from their identity mean, over identities
//!   with at least two samples (`sum_i (n_i − 1)` degrees of freedom);
//! - `Sigma_c = Cov(identity means) − mean_i(1/n_i) · Sigma_w` (the covariance of a mean of
//!   `n_i` samples is `Sigma_c + Sigma_w / n_i`), `mu` the mean of the identity means;
//! - both shrunk toward their diagonal with the intensity of Schäfer & Strimmer, *A shrinkage
//!   approach to large-scale covariance matrix estimation* (Stat. Appl. Genet. Mol. Biol.,
//!   2005), target "D" (diagonal, unequal variances): real data has far fewer samples than the
//!   `128 × 129 / 2` entries of a covariance;
//! - negative eigenvalues (the difference of two estimates need not be positive
//!   semi-definite) clipped to zero (cyclic Jacobi eigendecomposition);
//! - `sigma` from the spread of the per-identity within-scatter ratios beyond what sampling
//!   alone gives (`Var(log r_i) ≈ 4 sigma² + 2 / ((n_i − 1) k_eff)`, `k_eff` the effective
//!   dimension `tr(Sigma_w)² / tr(Sigma_w²)`).
//!
//! # Reproducibility
//!
//! The random numbers come from this module's own xoshiro256** generator (Blackman & Vigna,
//! *Scrambled linear pseudorandom number generators*, ACM TOMS 2021) seeded by splitmix64,
//! with Box–Muller normals, so a seed gives the same data whatever the versions of other
//! crates and whatever the number of threads (every identity has its own stream). Only the
//! platform's `ln`, `exp`, `sin`, `cos` could differ in the last bit between C libraries.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::IndexError;

// ---------------------------------------------------------------- random numbers

/// A seeded xoshiro256** generator with Box–Muller standard normals.
///
/// The sequence of a seed is fixed by this code alone (no dependency's algorithm).
#[derive(Debug, Clone)]
pub struct Rng {
    /// The xoshiro256** core, shared with k-means.
    core: crate::kmeans::Rng,
    spare: Option<f64>,
}

impl Rng {
    /// A generator whose 256-bit state is four splitmix64 outputs of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng {
            core: crate::kmeans::Rng::new(seed),
            spare: None,
        }
    }

    /// An independent stream `stream` of `seed` (e.g. one per identity), so data can be
    /// generated in parallel and still not depend on the thread count.
    pub fn stream(seed: u64, stream: u64) -> Rng {
        let mut sm = seed ^ 0x6A09_E667_F3BC_C908;
        let a = crate::kmeans::splitmix64(&mut sm);
        let mut sm2 = stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ a;
        Rng::new(crate::kmeans::splitmix64(&mut sm2))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.core.next_u64()
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`; multiply-shift, bias below `n / 2^64`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A standard normal (Box–Muller: two normals per two uniforms, the second kept).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

// ---------------------------------------------------------------- small linear algebra

/// Eigendecomposition of a symmetric `n × n` matrix (row-major, overwritten) by cyclic
/// Jacobi rotations. Returns the eigenvalues and the eigenvectors as the columns of an
/// `n × n` row-major matrix.
fn sym_eigen(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// Schäfer–Strimmer shrinkage intensity toward the diagonal for a covariance built from
/// `S = Y^T Y / dof` (the `rows × d` centred rows `y`): `s` is the estimate whose
/// off-diagonal entries are shrunk, `var_scale` the factor from `Var(S_ij)` to
/// `Var(s_ij)` (1 when `s = S`). Clipped to `[0, 1]`.
fn shrinkage_intensity(y: &[f64], d: usize, dof: f64, var_scale: f64, s: &[f64]) -> f64 {
    let rows = y.len() / d;
    if rows < 2 || dof <= 0.0 {
        return 1.0;
    }
    let nf = rows as f64;
    // sum_k w_kij and sum_k w_kij^2 with w_kij = y_ki y_kj
    let mut sw = vec![0.0; d * d];
    let mut sw2 = vec![0.0; d * d];
    for r in y.chunks_exact(d) {
        for i in 0..d {
            for j in i + 1..d {
                let w = r[i] * r[j];
                sw[i * d + j] += w;
                sw2[i * d + j] += w * w;
            }
        }
    }
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..d {
        for j in i + 1..d {
            let mean = sw[i * d + j] / nf;
            let ss = (sw2[i * d + j] - nf * mean * mean).max(0.0);
            num += var_scale * nf / (dof * dof * (nf - 1.0)) * ss;
            den += s[i * d + j] * s[i * d + j];
        }
    }
    if den <= 0.0 {
        1.0
    } else {
        (num / den).clamp(0.0, 1.0)
    }
}

/// A covariance's factor: `x = F z` with `z ~ N(0, I_r)` has covariance `F F^T`.
#[derive(Debug, Clone)]
struct Factor {
    /// `r` columns of length `d`, column-major `f32` (each column an eigenvector times the
    /// square root of its eigenvalue; zero eigenvalues dropped).
    cols: Vec<f32>,
    /// Sum of the eigenvalues clipped from below to zero (lost trace).
    clipped: f64,
    eigenvalues: Vec<f64>,
}

impl Factor {
    fn of(mut cov: Vec<f64>, d: usize) -> Factor {
        let (vals, vecs) = sym_eigen(&mut cov, d);
        let mut cols = Vec::new();
        let mut clipped = 0.0;
        let mut kept = Vec::new();
        for (k, &lam) in vals.iter().enumerate() {
            if lam <= 0.0 {
                clipped -= lam;
                continue;
            }
            let sq = lam.sqrt();
            cols.extend((0..d).map(|i| (vecs[i * d + k] * sq) as f32));
            kept.push(lam);
        }
        kept.sort_by(|a, b| b.total_cmp(a));
        Factor {
            cols,
            clipped,
            eigenvalues: kept,
        }
    }

    /// `out += scale · F z` with `rank` fresh normals `z` from `rng`.
    fn add_sample(&self, rng: &mut Rng, scale: f32, out: &mut [f32]) {
        let d = out.len();
        for c in self.cols.chunks_exact(d) {
            let z = rng.normal() as f32 * scale;
            for (o, f) in out.iter_mut().zip(c) {
                *o += z * f;
            }
        }
    }

    fn trace(&self) -> f64 {
        self.eigenvalues.iter().sum()
    }

    fn effective_dim(&self) -> f64 {
        let t = self.trace();
        let t2: f64 = self.eigenvalues.iter().map(|l| l * l).sum();
        if t2 > 0.0 {
            t * t / t2
        } else {
            0.0
        }
    }
}

// ---------------------------------------------------------------- statistics

/// Quantiles (5%, 50%, 95%, linear interpolation as numpy's default) of the L2 distances of
/// genuine pairs (two samples of one identity) and impostor pairs (two identities).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistanceQuantiles {
    /// Genuine L2 distance at 5%, 50%, 95%.
    pub genuine: [f64; 3],
    /// Impostor L2 distance at 5%, 50%, 95%.
    pub impostor: [f64; 3],
    /// Genuine pairs measured.
    pub genuine_pairs: usize,
    /// Impostor pairs measured.
    pub impostor_pairs: usize,
    /// Share of genuine pairs with L2 below 0.6 (dlib's usual tolerance).
    pub genuine_below_0_6: f64,
    /// Share of impostor pairs with L2 below 0.6.
    pub impostor_below_0_6: f64,
    /// Mean squared impostor distance.
    pub impostor_d2_mean: f64,
    /// Variance of the squared impostor distance.
    pub impostor_d2_var: f64,
    /// `2 mean² / variance` of the squared impostor distance: the degrees of freedom of a
    /// scaled chi-square with the same two moments (the effective dimension of the
    /// identity space as distances see it).
    pub impostor_effective_dim: f64,
}

/// The `p`-quantile (`p` in `[0, 1]`) of ascending `sorted` values by linear interpolation
/// between the two nearest ranks (numpy's default); `NaN` when empty.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn summarize(mut gen: Vec<f64>, mut imp: Vec<f64>) -> DistanceQuantiles {
    let sq: Vec<f64> = imp.iter().map(|x| x * x).collect();
    let m = sq.iter().sum::<f64>() / sq.len().max(1) as f64;
    let v = variance(&sq);
    gen.sort_by(f64::total_cmp);
    imp.sort_by(f64::total_cmp);
    let q = |v: &[f64]| [quantile(v, 0.05), quantile(v, 0.5), quantile(v, 0.95)];
    let below = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.partition_point(|&x| x < 0.6) as f64 / v.len() as f64
        }
    };
    DistanceQuantiles {
        genuine: q(&gen),
        impostor: q(&imp),
        genuine_pairs: gen.len(),
        impostor_pairs: imp.len(),
        genuine_below_0_6: below(&gen),
        impostor_below_0_6: below(&imp),
        impostor_d2_mean: m,
        impostor_d2_var: v,
        impostor_effective_dim: if v > 0.0 { 2.0 * m * m / v } else { f64::NAN },
    }
}

fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = *x as f64 - *y as f64;
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// L2 distances of every genuine and every impostor pair of labelled descriptors.
fn pair_distances(samples: &[(String, Vec<f32>)]) -> (Vec<f64>, Vec<f64>) {
    let mut gen = Vec::new();
    let mut imp = Vec::new();
    for (i, (la, a)) in samples.iter().enumerate() {
        for (lb, b) in &samples[..i] {
            if la == lb {
                gen.push(l2(a, b));
            } else {
                imp.push(l2(a, b));
            }
        }
    }
    (gen, imp)
}

/// Genuine and impostor L2 distance statistics of labelled descriptors: every pair of
/// samples (`O(n²)`; meant for the few hundred to few thousand real descriptors a model is
/// fitted on). Labels compare as strings.
pub fn pair_quantiles(samples: &[(String, Vec<f32>)]) -> DistanceQuantiles {
    let (gen, imp) = pair_distances(samples);
    summarize(gen, imp)
}

// ---------------------------------------------------------------- the model

/// How [`FaceModel::fit_with`] regularises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Shrinkage of `Sigma_w` toward its diagonal, in `[0, 1]`; `None`: Schäfer–Strimmer.
    pub within_shrinkage: Option<f64>,
    /// Shrinkage of `Sigma_c` toward its diagonal, in `[0, 1]`; `None`: the intensity at
    /// which the model's impostor squared-distance variance equals the real one (the
    /// effective dimension of the identity space), Schäfer–Strimmer where none in `[0, 1]`
    /// does.
    pub center_shrinkage: Option<f64>,
    /// Fit the lognormal noise scales per identity and per sample (otherwise all 1).
    pub noise_scales: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            within_shrinkage: None,
            center_shrinkage: None,
            noise_scales: true,
        }
    }
}

/// What a fit found, for reports (variances in squared descriptor units).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitStats {
    /// Descriptors fitted.
    pub samples: usize,
    /// Distinct labels.
    pub identities: usize,
    /// Labels with at least two samples (they give the within-identity part).
    pub identities_multi: usize,
    /// Degrees of freedom of the pooled within-identity scatter, `sum (n_i − 1)`.
    pub within_dof: usize,
    /// Shrinkage intensity used for `Sigma_w`.
    pub shrinkage_within: f64,
    /// Shrinkage intensity used for `Sigma_c`.
    pub shrinkage_center: f64,
    /// How the centre shrinkage was chosen: `impostor-variance`, `schafer-strimmer` or
    /// `fixed`.
    pub shrinkage_center_method: String,
    /// `tr(Sigma_w)`: half the mean squared genuine distance.
    pub trace_within: f64,
    /// `tr(Sigma_c)`.
    pub trace_center: f64,
    /// Trace of `Sigma_c` lost by clipping negative eigenvalues to zero.
    pub clipped_center: f64,
    /// Effective dimension `tr² / tr(Σ²)` of `Sigma_w`.
    pub effective_dim_within: f64,
    /// Effective dimension of `Sigma_c`.
    pub effective_dim_center: f64,
    /// Log-standard deviation of the per-identity noise scale (0 = none).
    pub id_log_sigma: f64,
    /// Log-standard deviation of the per-sample noise scale (0 = none).
    pub sample_log_sigma: f64,
    /// Mean L2 norm of the fitted descriptors.
    pub mean_norm: f64,
    /// Genuine / impostor distance statistics of the fitted (real) descriptors.
    pub real: DistanceQuantiles,
}

/// A fitted face-descriptor model (see the module docs); [`FaceModel::sample`] draws
/// galleries and probes from it.
#[derive(Debug, Clone)]
pub struct FaceModel {
    dim: usize,
    mean: Vec<f32>,
    center: Factor,
    within: Factor,
    id_log_sigma: f64,
    sample_log_sigma: f64,
    stats: FitStats,
}

/// A generated gallery with probes.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceData {
    /// Dimension `d`.
    pub dim: usize,
    /// `n × d` row-major gallery vectors, `n = n_identities × per_id`; the samples of one
    /// identity are consecutive rows.
    pub base: Vec<f32>,
    /// Identity of every gallery row (`0..n_identities`, `per_id` rows each).
    pub base_ids: Vec<i64>,
    /// `nq × d` row-major probes: fresh samples of enrolled identities and samples of
    /// never-enrolled identities, interleaved in a seeded random order.
    pub queries: Vec<f32>,
    /// Identity of every probe; `-1` for probes of never-enrolled identities (open set).
    pub query_ids: Vec<i64>,
}

impl FaceData {
    /// Gallery rows `n`.
    pub fn rows(&self) -> usize {
        self.base_ids.len()
    }
}

fn invalid(msg: String) -> IndexError {
    IndexError::InvalidParameter(msg)
}

/// `d × d` scatter `Y^T Y / dof` of the rows of `y`.
fn scatter(y: &[f64], d: usize, dof: f64) -> Vec<f64> {
    let mut s = vec![0.0; d * d];
    for r in y.chunks_exact(d) {
        for i in 0..d {
            let ri = r[i];
            for j in i..d {
                s[i * d + j] += ri * r[j];
            }
        }
    }
    for i in 0..d {
        for j in i..d {
            s[i * d + j] /= dof;
            s[j * d + i] = s[i * d + j];
        }
    }
    s
}

/// Sample variance of `v`.
fn variance(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64
}

/// The centre shrinkage at which the model's impostor squared-distance variance equals
/// `target`, or `None` when no intensity in `[0, 1]` reaches it.
///
/// Impostor difference `y = c_a − c_b + s_a u_a w_a − s_b u_b w_b` is, given the scales,
/// `N(0, 2 Sigma_c + alpha Sigma_w)` with `alpha = s_a² u_a² + s_b² u_b²`, so
/// `Var(|y|²) = 8 tr(Sigma_c²) + 16 tr(Sigma_c Sigma_w) + 2 E[alpha²] tr(Sigma_w²)
/// + Var(alpha) tr(Sigma_w)²`, with `E[alpha] = 2`, `E[alpha²] = 2 m + 2`,
/// `m = E[s⁴] E[u⁴] = exp(4 sigma_id² + 4 sigma_sample²)`. Shrinking scales the
/// off-diagonal part of `Sigma_c` by `1 − lambda`.
fn match_impostor_variance(
    c: &[f64],
    w: &[f64],
    d: usize,
    id_sigma: f64,
    sample_sigma: f64,
    target: f64,
) -> Option<f64> {
    let (mut a, mut b, mut cd, mut co, mut ww, mut tw) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..d {
        for j in 0..d {
            let (cij, wij) = (c[i * d + j], w[i * d + j]);
            ww += wij * wij;
            if i == j {
                a += cij * cij;
                cd += cij * wij;
                tw += wij;
            } else {
                b += cij * cij;
                co += cij * wij;
            }
        }
    }
    let m = (4.0 * id_sigma * id_sigma + 4.0 * sample_sigma * sample_sigma).exp();
    let k0 = 2.0 * (2.0 * m + 2.0) * ww + (2.0 * m - 2.0) * tw * tw;
    // x = 1 - lambda
    let f = |x: f64| 8.0 * (a + x * x * b) + 16.0 * (cd + x * co) + k0 - target;
    let (f0, f1) = (f(0.0), f(1.0));
    if f0 == 0.0 {
        return Some(1.0);
    }
    if f0.signum() == f1.signum() {
        return None;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if f(mid).signum() == f0.signum() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(1.0 - 0.5 * (lo + hi))
}

impl FaceModel {
    /// Fits the model on labelled descriptors with [`FitOptions::default`].
    ///
    /// `samples`: `(label, descriptor)`; all descriptors of one length `d`; a label is an
    /// identity (samples with the same label are the same person).
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] when descriptors are empty, of different lengths or
    /// not finite, or when fewer than 2 identities, or no identity with two samples, exist.
    pub fn fit(samples: &[(String, Vec<f32>)]) -> Result<FaceModel, IndexError> {
        FaceModel::fit_with(samples, &FitOptions::default())
    }

    /// [`FaceModel::fit`] with explicit options.
    ///
    /// # Errors
    /// As [`FaceModel::fit`]; also a shrinkage outside `[0, 1]`.
    pub fn fit_with(
        samples: &[(String, Vec<f32>)],
        options: &FitOptions,
    ) -> Result<FaceModel, IndexError> {
        let d = samples.first().map_or(0, |s| s.1.len());
        if d == 0 {
            return Err(invalid("no descriptors to fit".into()));
        }
        for l in [options.within_shrinkage, options.center_shrinkage]
            .into_iter()
            .flatten()
        {
            if !(0.0..=1.0).contains(&l) {
                return Err(invalid(format!("shrinkage {l} should be in [0, 1]")));
            }
        }
        for (label, x) in samples {
            if x.len() != d {
                return Err(invalid(format!(
                    "descriptor of {label:?} has {} values, expected {d}",
                    x.len()
                )));
            }
            if x.iter().any(|v| !v.is_finite()) {
                return Err(invalid(format!("descriptor of {label:?} is not finite")));
            }
        }
        let mut groups: BTreeMap<&str, Vec<&[f32]>> = BTreeMap::new();
        for (label, x) in samples {
            groups.entry(label.as_str()).or_default().push(x);
        }
        let k = groups.len();
        let multi = groups.values().filter(|g| g.len() >= 2).count();
        if k < 2 || multi == 0 {
            return Err(invalid(format!(
                "need at least 2 identities and one with 2 samples, got {k} identities, {multi} with 2 or more"
            )));
        }

        // identity means and within deviations
        let n_total = samples.len() as f64;
        let grand: Vec<f64> = (0..d)
            .map(|j| samples.iter().map(|(_, x)| x[j] as f64).sum::<f64>() / n_total)
            .collect();
        let mut weighted_means = Vec::with_capacity(k * d); // sqrt(n_i) (m_i - grand)
        let mut dev = Vec::new();
        let mut sum_n2 = 0.0;
        let mut per_id_ss = Vec::new(); // (sum of squared deviations, n_i)
        let mut per_sample = Vec::new(); // (|dev|² / (SS_i / n_i), n_i) for n_i >= 3
        for g in groups.values() {
            let n = g.len() as f64;
            let m: Vec<f64> = (0..d)
                .map(|j| g.iter().map(|x| x[j] as f64).sum::<f64>() / n)
                .collect();
            if g.len() >= 2 {
                let start = dev.len();
                for x in g {
                    dev.extend(x.iter().zip(&m).map(|(v, mj)| *v as f64 - mj));
                }
                let norms: Vec<f64> = dev[start..]
                    .chunks_exact(d)
                    .map(|r| r.iter().map(|v| v * v).sum())
                    .collect();
                let ss: f64 = norms.iter().sum();
                per_id_ss.push((ss, g.len()));
                if g.len() >= 3 && ss > 0.0 {
                    per_sample.extend(norms.iter().map(|q| (q / (ss / n), g.len())));
                }
            }
            sum_n2 += n * n;
            weighted_means.extend(m.iter().zip(&grand).map(|(a, b)| n.sqrt() * (a - b)));
        }
        let within_dof: usize = per_id_ss.iter().map(|(_, n)| n - 1).sum();

        // Sigma_w: pooled within scatter (MSW), shrunk
        let mut sw = scatter(&dev, d, within_dof as f64);
        let lam_w = options
            .within_shrinkage
            .unwrap_or_else(|| shrinkage_intensity(&dev, d, within_dof as f64, 1.0, &sw));
        shrink(&mut sw, d, lam_w);
        let within = Factor::of(sw.clone(), d);
        let tr_w = within.trace();
        let k_eff = within.effective_dim().max(1.0);

        // noise scales (method of moments on log scatter ratios)
        let (mut id_sigma, mut sample_sigma) = (0.0, 0.0);
        if options.noise_scales && tr_w > 0.0 {
            if per_id_ss.len() >= 2 {
                let logs: Vec<f64> = per_id_ss
                    .iter()
                    .map(|(ss, n)| (ss / ((*n - 1) as f64 * tr_w)).max(1e-12).ln())
                    .collect();
                let noise = per_id_ss
                    .iter()
                    .map(|(_, n)| 2.0 / ((*n - 1) as f64 * k_eff))
                    .sum::<f64>()
                    / per_id_ss.len() as f64;
                id_sigma = ((variance(&logs) - noise) / 4.0).max(0.0).sqrt();
            }
            if per_sample.len() >= 2 {
                // |dev_j|² carries u_j² with weight (1 - 1/n)², and chi-square noise
                // of variance about 2 (1 - 1/n) / k_eff on the log scale
                let logs: Vec<f64> = per_sample.iter().map(|(r, _)| r.max(1e-12).ln()).collect();
                let cnt = per_sample.len() as f64;
                let noise = per_sample
                    .iter()
                    .map(|(_, n)| 2.0 * (1.0 - 1.0 / *n as f64) / k_eff)
                    .sum::<f64>()
                    / cnt;
                let gain = per_sample
                    .iter()
                    .map(|(_, n)| (1.0 - 1.0 / *n as f64).powi(2))
                    .sum::<f64>()
                    / cnt;
                sample_sigma = ((variance(&logs) - noise) / (4.0 * gain)).max(0.0).sqrt();
            }
        }

        // Sigma_c = (MSB - MSW) / n0 (unbalanced one-way random effects), shrunk
        let msb = scatter(&weighted_means, d, (k - 1) as f64);
        let n0 = (n_total - sum_n2 / n_total) / (k - 1) as f64;
        let mut sc: Vec<f64> = msb.iter().zip(&sw).map(|(b, w)| (b - w) / n0).collect();
        let (gen_d, imp_d) = pair_distances(samples);
        let real = summarize(gen_d, imp_d);
        let (lam_c, method) = match options.center_shrinkage {
            Some(l) => (l, "fixed"),
            None => match match_impostor_variance(
                &sc,
                &sw,
                d,
                id_sigma,
                sample_sigma,
                real.impostor_d2_var,
            ) {
                Some(l) => (l, "impostor-variance"),
                None => (
                    shrinkage_intensity(&weighted_means, d, (k - 1) as f64, 1.0 / (n0 * n0), &sc),
                    "schafer-strimmer",
                ),
            },
        };
        shrink(&mut sc, d, lam_c);
        for i in 0..d {
            sc[i * d + i] = sc[i * d + i].max(0.0);
        }
        let center = Factor::of(sc, d);

        let mean_norm = samples
            .iter()
            .map(|(_, x)| x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt())
            .sum::<f64>()
            / n_total;
        let stats = FitStats {
            samples: samples.len(),
            identities: k,
            identities_multi: multi,
            within_dof,
            shrinkage_within: lam_w,
            shrinkage_center: lam_c,
            shrinkage_center_method: method.to_string(),
            trace_within: tr_w,
            trace_center: center.trace(),
            clipped_center: center.clipped,
            effective_dim_within: within.effective_dim(),
            effective_dim_center: center.effective_dim(),
            id_log_sigma: id_sigma,
            sample_log_sigma: sample_sigma,
            mean_norm,
            real,
        };
        Ok(FaceModel {
            dim: d,
            mean: grand.iter().map(|v| *v as f32).collect(),
            center,
            within,
            id_log_sigma: id_sigma,
            sample_log_sigma: sample_sigma,
            stats,
        })
    }

    /// Descriptor dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// What the fit found, including the real data's distance statistics.
    pub fn stats(&self) -> &FitStats {
        &self.stats
    }

    /// Identity `id` of stream `seed`: its centre, its noise scale and the generator its
    /// samples continue from.
    fn identity(&self, seed: u64, id: u64) -> (Vec<f32>, f32, Rng) {
        let mut rng = Rng::stream(seed, id);
        let mut c = self.mean.clone();
        self.center.add_sample(&mut rng, 1.0, &mut c);
        let s = self.id_log_sigma;
        let scale = (s * rng.normal() - s * s).exp() as f32;
        (c, scale, rng)
    }

    /// One sample of an identity: `c + s · u · w` with a fresh per-sample scale `u`.
    fn draw(&self, c: &[f32], scale: f32, rng: &mut Rng, out: &mut [f32]) {
        let su = self.sample_log_sigma;
        let u = (su * rng.normal() - su * su).exp() as f32;
        out.copy_from_slice(c);
        self.within.add_sample(rng, scale * u, out);
    }

    /// Draws a gallery of `n_identities × per_id` descriptors and `n_probe_enrolled +
    /// n_probe_open` probes.
    ///
    /// Enrolled probes are fresh samples of distinct enrolled identities (chosen at random);
    /// open probes are samples of `n_probe_open` further identities that have no gallery
    /// row (id `-1`). The same arguments give the same data (every identity has its own
    /// random stream, so the thread count does not matter).
    ///
    /// # Errors
    /// [`IndexError::InvalidParameter`] when `n_identities` or `per_id` is 0, when
    /// `n_probe_enrolled > n_identities`, or when the gallery would exceed `2^32` rows.
    pub fn sample(
        &self,
        n_identities: usize,
        per_id: usize,
        n_probe_enrolled: usize,
        n_probe_open: usize,
        seed: u64,
    ) -> Result<FaceData, IndexError> {
        if n_identities == 0 || per_id == 0 {
            return Err(invalid(format!(
                "n_identities ({n_identities}) and per_id ({per_id}) must be at least 1"
            )));
        }
        if n_probe_enrolled > n_identities {
            return Err(invalid(format!(
                "n_probe_enrolled ({n_probe_enrolled}) must be at most n_identities ({n_identities})"
            )));
        }
        let n = n_identities
            .checked_mul(per_id)
            .filter(|n| *n <= u32::MAX as usize)
            .ok_or_else(|| invalid("gallery larger than 2^32 rows".into()))?;
        let d = self.dim;
        let mut base = vec![0f32; n * d];
        let probes_of = |ids: &[u64]| -> Vec<f32> {
            let mut q = vec![0f32; ids.len() * d];
            q.par_chunks_mut(d).zip(ids).for_each(|(out, &id)| {
                let (c, s, mut rng) = self.identity(seed, id);
                let mut tmp = vec![0f32; d];
                for _ in 0..per_id {
                    self.draw(&c, s, &mut rng, &mut tmp);
                }
                self.draw(&c, s, &mut rng, out);
            });
            q
        };
        base.par_chunks_mut(per_id * d)
            .enumerate()
            .for_each(|(id, rows)| {
                let (c, s, mut rng) = self.identity(seed, id as u64);
                for out in rows.chunks_exact_mut(d) {
                    self.draw(&c, s, &mut rng, out);
                }
            });
        let base_ids: Vec<i64> = (0..n).map(|r| (r / per_id) as i64).collect();

        // probes: Floyd's sample of distinct enrolled identities, then the open identities
        let mut rng = Rng::stream(seed, u64::MAX);
        let mut chosen = rustc_hash::FxHashSet::default();
        let mut enrolled = Vec::with_capacity(n_probe_enrolled);
        for j in (n_identities - n_probe_enrolled)..n_identities {
            let t = rng.below(j as u64 + 1);
            let pick = if chosen.insert(t) {
                t
            } else {
                chosen.insert(j as u64);
                j as u64
            };
            enrolled.push(pick);
        }
        let open: Vec<u64> = (0..n_probe_open as u64)
            .map(|j| n_identities as u64 + j)
            .collect();
        let mut ids: Vec<u64> = enrolled.iter().chain(&open).copied().collect();
        let mut labels: Vec<i64> = enrolled
            .iter()
            .map(|&i| i as i64)
            .chain(open.iter().map(|_| -1))
            .collect();
        // interleave (Fisher–Yates)
        for i in (1..ids.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            ids.swap(i, j);
            labels.swap(i, j);
        }
        let queries = probes_of(&ids);
        Ok(FaceData {
            dim: d,
            base,
            base_ids,
            queries,
            query_ids: labels,
        })
    }

    /// Genuine and impostor distance quantiles of the model itself: `pairs` identities with
    /// two samples each (genuine pairs) and `pairs` pairs of samples of two different
    /// identities (impostor pairs), drawn with `seed`.
    pub fn pair_quantiles(&self, pairs: usize, seed: u64) -> DistanceQuantiles {
        let d = self.dim;
        let res: Vec<(f64, f64)> = (0..pairs as u64)
            .into_par_iter()
            .map(|i| {
                let (c, s, mut rng) = self.identity(seed, 2 * i);
                let (mut a, mut b) = (vec![0f32; d], vec![0f32; d]);
                self.draw(&c, s, &mut rng, &mut a);
                self.draw(&c, s, &mut rng, &mut b);
                let g = l2(&a, &b);
                let (c2, s2, mut rng2) = self.identity(seed, 2 * i + 1);
                self.draw(&c2, s2, &mut rng2, &mut b);
                (g, l2(&a, &b))
            })
            .collect();
        summarize(
            res.iter().map(|r| r.0).collect(),
            res.iter().map(|r| r.1).collect(),
        )
    }
}

/// `S ← (1 − λ) S + λ diag(S)` for a symmetric `d × d` matrix.
fn shrink(s: &mut [f64], d: usize, lambda: f64) {
    for i in 0..d {
        for j in 0..d {
            if i != j {
                s[i * d + j] *= 1.0 - lambda;
            }
        }
    }
}

/// Labels the faces of face_recognition's reference encodings
/// (`shared/data/reference/face_recognition_encodings.json`: face_recognition 1.3.0's test
/// images and dlib's example images) by identity.
///
/// `faces`: `(image name, face number in the image, descriptor)`. Rules:
/// - `johns/<person>/<file>`: the person folder (dlib's `examples/johns`);
/// - `obama.jpg`, `obama2.jpg`, `obama3.jpg`, `obama_partial_face*.jpg`, `32bit.png`: one
///   identity `obama` (face_recognition's tests; pairwise distances 0.04–0.43);
/// - `bald_guys.jpg`: dlib's `dnn_face_recognition_ex` clusters its faces into 4 people by
///   linking faces closer than 0.6; the same rule (connected components) labels them here;
/// - every other face its own identity (`<image>#<face>`).
pub fn label_reference_faces(faces: &[(String, usize, Vec<f32>)]) -> Vec<(String, Vec<f32>)> {
    const OBAMA: [&str; 4] = ["obama.jpg", "obama2.jpg", "obama3.jpg", "32bit.png"];
    let mut out: Vec<(String, Vec<f32>)> = faces
        .iter()
        .map(|(image, i, x)| {
            let label = if let Some(rest) = image.strip_prefix("johns/") {
                rest.split('/').next().unwrap_or(rest).to_string()
            } else if OBAMA.contains(&image.as_str()) || image.starts_with("obama_partial_face") {
                "obama".to_string()
            } else {
                format!("{image}#{i}")
            };
            (label, x.clone())
        })
        .collect();
    // bald_guys.jpg: connected components at L2 < 0.6
    let bald: Vec<usize> = (0..faces.len())
        .filter(|&i| faces[i].0 == "bald_guys.jpg")
        .collect();
    let mut parent: Vec<usize> = (0..bald.len()).collect();
    fn root(p: &mut [usize], mut a: usize) -> usize {
        while p[a] != a {
            p[a] = p[p[a]];
            a = p[a];
        }
        a
    }
    for a in 0..bald.len() {
        for b in 0..a {
            if l2(&faces[bald[a]].2, &faces[bald[b]].2) < 0.6 {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    for (a, &i) in bald.iter().enumerate() {
        let r = root(&mut parent, a);
        out[i].0 = format!("bald_guys.jpg#person{}", faces[bald[r]].1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sequence_matches_an_independent_implementation() {
        // Values from a separate Python implementation of splitmix64 seeding,
        // xoshiro256** and Box-Muller (cos first, then sin).
        let mut r = Rng::new(1);
        let u: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            u,
            vec![
                12966619160104079557,
                9600361134598540522,
                10590380919521690900
            ]
        );
        let mut r = Rng::new(1);
        let z: Vec<f64> = (0..4).map(|_| r.normal()).collect();
        let want = [
            -1.5452228371402943,
            -0.19951530557849143,
            -1.0136476397283942,
            0.8244068374882674,
        ];
        for (a, b) in z.iter().zip(want) {
            assert!((a - b).abs() < 1e-14, "{z:?}");
        }
    }

    #[test]
    fn normals_have_unit_variance() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.01, "mean {m}");
        assert!((v - 1.0).abs() < 0.01, "variance {v}");
    }

    #[test]
    fn jacobi_reconstructs_a_symmetric_matrix() {
        let n = 12;
        let mut r = Rng::new(3);
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let x = r.normal();
                a[i * n + j] = x;
                a[j * n + i] = x;
            }
        }
        let (vals, v) = sym_eigen(&mut a.clone(), n);
        for i in 0..n {
            for j in 0..n {
                let rec: f64 = (0..n).map(|k| v[i * n + k] * vals[k] * v[j * n + k]).sum();
                assert!((rec - a[i * n + j]).abs() < 1e-9, "({i},{j}) {rec}");
                let dot: f64 = (0..n).map(|k| v[k * n + i] * v[k * n + j]).sum();
                assert!((dot - f64::from(u8::from(i == j))).abs() < 1e-9);
            }
        }
    }

    fn toy(seed: u64) -> Vec<(String, Vec<f32>)> {
        // 40 identities x 5 samples in 8-d: centres N(0, 1), noise N(0, 0.01)
        let mut r = Rng::new(seed);
        let mut out = Vec::new();
        for id in 0..40 {
            let c: Vec<f64> = (0..8).map(|_| r.normal()).collect();
            for _ in 0..5 {
                out.push((
                    format!("p{id}"),
                    c.iter().map(|v| (v + 0.1 * r.normal()) as f32).collect(),
                ));
            }
        }
        out
    }

    #[test]
    fn fit_recovers_toy_traces() {
        let m = FaceModel::fit(&toy(1)).unwrap();
        let st = m.stats();
        // tr(Sigma_w) = 8 * 0.01 = 0.08, tr(Sigma_c) = 8
        assert!((st.trace_within - 0.08).abs() < 0.015, "{st:?}");
        assert!((st.trace_center - 8.0).abs() < 2.5, "{st:?}");
        assert_eq!(st.identities, 40);
        assert_eq!(st.within_dof, 160);
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let m = FaceModel::fit(&toy(2)).unwrap();
        let a = m.sample(50, 3, 10, 10, 9).unwrap();
        let b = m.sample(50, 3, 10, 10, 9).unwrap();
        assert_eq!(a, b);
        let c = m.sample(50, 3, 10, 10, 10).unwrap();
        assert_ne!(a.base, c.base);
        assert_eq!(a.base.len(), 150 * 8);
        assert_eq!(a.queries.len(), 20 * 8);
        assert_eq!(a.query_ids.iter().filter(|&&q| q < 0).count(), 10);
        let mut enrolled: Vec<i64> = a.query_ids.iter().copied().filter(|&q| q >= 0).collect();
        enrolled.sort_unstable();
        enrolled.dedup();
        assert_eq!(enrolled.len(), 10, "distinct enrolled identities");
        assert!(enrolled.iter().all(|&q| q < 50));
        // an enrolled probe is closest to its own identity's samples (toy: noise 0.1 << 1)
        for (q, &id) in a.query_ids.iter().enumerate() {
            if id < 0 {
                continue;
            }
            let qv = &a.queries[q * 8..(q + 1) * 8];
            let best = (0..150)
                .min_by(|&x, &y| {
                    l2(qv, &a.base[x * 8..(x + 1) * 8])
                        .total_cmp(&l2(qv, &a.base[y * 8..(y + 1) * 8]))
                })
                .unwrap();
            assert_eq!(a.base_ids[best], id);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let m = FaceModel::fit(&toy(3)).unwrap();
        assert!(m.sample(0, 3, 0, 0, 1).is_err());
        assert!(m.sample(5, 0, 0, 0, 1).is_err());
        assert!(m.sample(5, 2, 6, 0, 1).is_err());
        assert!(FaceModel::fit(&[]).is_err());
        let one = vec![("a".to_string(), vec![0.0f32; 4])];
        assert!(FaceModel::fit(&one).is_err());
        let mixed = vec![
            ("a".to_string(), vec![0.0f32; 4]),
            ("a".to_string(), vec![0.0f32; 3]),
        ];
        assert!(FaceModel::fit(&mixed).is_err());
        let nan = vec![
            ("a".to_string(), vec![f32::NAN; 4]),
            ("b".to_string(), vec![0.0f32; 4]),
        ];
        assert!(FaceModel::fit(&nan).is_err());
    }
}
