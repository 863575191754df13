//! Distance kernels: squared L2 and inner product between two `f32` vectors.
//!
//! Every kernel has a scalar reference ([`l2_sq_scalar`], [`dot_scalar`]) used by the tests,
//! and SIMD versions (AVX-512F, AVX2 + FMA) chosen once at run time by CPU detection
//! ([`l2_sq`], [`dot`]). Results of the SIMD and scalar versions agree to within f32
//! rounding (the summation order differs).
//!
//! Conventions (as Faiss and Milvus):
//! - squared L2: `sum_i (a_i - b_i)^2`, smaller is better;
//! - inner product: `sum_i a_i * b_i`, larger is better;
//! - cosine: `dot(a, b) / (|a| |b|)`, larger is better, 0 when either norm is 0.

use std::sync::OnceLock;

/// A kernel over two equal-length slices.
pub type Kernel = fn(&[f32], &[f32]) -> f32;

/// Which instruction set the kernels run on, detected once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable scalar code.
    Scalar,
    /// x86-64 AVX2 with FMA (8 lanes).
    Avx2,
    /// x86-64 AVX-512F (16 lanes).
    Avx512,
}

/// The instruction set detected on this CPU (`FACEDB_ISA=scalar|avx2` forces a lower one).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let forced = std::env::var("FACEDB_ISA").unwrap_or_default();
        let detected = detect();
        match forced.as_str() {
            "scalar" => Isa::Scalar,
            "avx2" if detected != Isa::Scalar => Isa::Avx2,
            _ => detected,
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    if is_x86_feature_detected!("avx512f") {
        Isa::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Isa::Avx2
    } else {
        Isa::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Scalar
}

/// Scalar reference of squared L2 distance. Panics in debug builds if lengths differ.
pub fn l2_sq_scalar(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            let d = a[c * 8 + l] - b[c * 8 + l];
            acc[l] += d * d;
        }
    }
    let mut s = 0f32;
    for i in chunks * 8..a.len() {
        let d = a[i] - b[i];
        s += d * d;
    }
    acc.iter().sum::<f32>() + s
}

/// Scalar reference of the inner product.
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s = 0f32;
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    acc.iter().sum::<f32>() + s
}

/// The squared-L2 kernel for this CPU.
pub fn l2_sq_kernel() -> Kernel {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => |a, b| unsafe { x86::l2_sq_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => |a, b| unsafe { x86::l2_sq_avx2(a, b) },
        _ => l2_sq_scalar,
    }
}

/// The inner-product kernel for this CPU.
pub fn dot_kernel() -> Kernel {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => |a, b| unsafe { x86::dot_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => |a, b| unsafe { x86::dot_avx2(a, b) },
        _ => dot_scalar,
    }
}

/// A kernel scoring many rows against one query: `out[r] = f(rows[r*dim..], q)`.
pub type RowsKernel = fn(rows: &[f32], dim: usize, q: &[f32], out: &mut [f32]);

fn l2_rows_scalar(rows: &[f32], dim: usize, q: &[f32], out: &mut [f32]) {
    for (o, x) in out.iter_mut().zip(rows.chunks_exact(dim)) {
        *o = l2_sq_scalar(x, q);
    }
}

fn dot_rows_scalar(rows: &[f32], dim: usize, q: &[f32], out: &mut [f32]) {
    for (o, x) in out.iter_mut().zip(rows.chunks_exact(dim)) {
        *o = dot_scalar(x, q);
    }
}

/// Squared L2 of every row of `rows` (`out.len() × dim`) against `q`, for this CPU.
pub fn l2_sq_rows_kernel() -> RowsKernel {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => |r, d, q, o| unsafe { x86::l2_rows_avx512(r, d, q, o) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => |r, d, q, o| unsafe { x86::l2_rows_avx2(r, d, q, o) },
        _ => l2_rows_scalar,
    }
}

/// Inner product of every row of `rows` (`out.len() × dim`) with `q`, for this CPU.
pub fn dot_rows_kernel() -> RowsKernel {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => |r, d, q, o| unsafe { x86::dot_rows_avx512(r, d, q, o) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => |r, d, q, o| unsafe { x86::dot_rows_avx2(r, d, q, o) },
        _ => dot_rows_scalar,
    }
}

/// Squared L2 distance `sum (a_i - b_i)^2` with the fastest kernel of this CPU.
///
/// `a` and `b` must have the same length (checked in debug builds only).
#[inline]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_sq: length mismatch");
    (l2_sq_kernel())(a, b)
}

/// Inner product `sum a_i b_i` with the fastest kernel of this CPU.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    (dot_kernel())(a, b)
}

/// Euclidean norm `sqrt(sum a_i^2)`.
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// Cosine similarity `dot(a, b) / (|a| |b|)`; 0 when either vector is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let na = norm(a);
    let nb = norm(b);
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot(a, b) / (na * nb)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn l2_sq_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: every load reads [i, i+16) with i + 16 <= n, or a masked tail.
        unsafe {
            while i + 32 <= n {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                let d1 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                );
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
                acc1 = _mm512_fmadd_ps(d1, d1, acc1);
                i += 32;
            }
            while i + 16 <= n {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
                i += 16;
            }
            if i < n {
                let m: __mmask16 = ((1u32 << (n - i)) - 1) as u16;
                let d0 = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                );
                acc1 = _mm512_fmadd_ps(d0, d0, acc1);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY: as in l2_sq_avx512.
        unsafe {
            while i + 32 <= n {
                acc0 =
                    _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i + 16)),
                    _mm512_loadu_ps(pb.add(i + 16)),
                    acc1,
                );
                i += 32;
            }
            while i + 16 <= n {
                acc0 =
                    _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
                i += 16;
            }
            if i < n {
                let m: __mmask16 = ((1u32 << (n - i)) - 1) as u16;
                acc1 = _mm512_fmadd_ps(
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                    acc1,
                );
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    macro_rules! rows_kernel {
        ($name:ident, $feat:literal, $one:ident) => {
            #[target_feature(enable = $feat)]
            pub unsafe fn $name(rows: &[f32], dim: usize, q: &[f32], out: &mut [f32]) {
                for (o, x) in out.iter_mut().zip(rows.chunks_exact(dim)) {
                    // SAFETY: same target features as the caller.
                    *o = unsafe { $one(x, q) };
                }
            }
        };
    }
    rows_kernel!(l2_rows_avx512, "avx512f", l2_sq_avx512);
    rows_kernel!(dot_rows_avx512, "avx512f", dot_avx512);
    rows_kernel!(l2_rows_avx2, "avx2,fma", l2_sq_avx2);
    rows_kernel!(dot_rows_avx2, "avx2,fma", dot_avx2);

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_sq_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: every load reads [i, i+8) with i + 8 <= n; the tail is scalar.
        unsafe {
            while i + 16 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                );
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                acc1 = _mm256_fmadd_ps(d1, d1, acc1);
                i += 16;
            }
            while i + 8 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                i += 8;
            }
        }
        let mut s = unsafe { hsum256(_mm256_add_ps(acc0, acc1)) };
        while i < n {
            let d = a[i] - b[i];
            s += d * d;
            i += 1;
        }
        s
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: as in l2_sq_avx2.
        unsafe {
            while i + 16 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
                i += 16;
            }
            while i + 8 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                i += 8;
            }
        }
        let mut s = unsafe { hsum256(_mm256_add_ps(acc0, acc1)) };
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f64_l2(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum()
    }
    fn f64_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    proptest! {
        #[test]
        fn kernels_match_f64_reference(
            (a, b) in (0usize..300).prop_flat_map(|n| (
                prop::collection::vec(-100f32..100.0, n),
                prop::collection::vec(-100f32..100.0, n)))
        ) {
            let l2 = f64_l2(&a, &b);
            let ip = f64_dot(&a, &b);
            let scale_l2 = l2.abs().max(1.0);
            let scale_ip: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum::<f64>().max(1.0);
            for v in [l2_sq(&a, &b), l2_sq_scalar(&a, &b)] {
                prop_assert!(((v as f64) - l2).abs() <= 1e-5 * scale_l2, "l2 {} vs {}", v, l2);
            }
            for v in [dot(&a, &b), dot_scalar(&a, &b)] {
                prop_assert!(((v as f64) - ip).abs() <= 1e-5 * scale_ip, "ip {} vs {}", v, ip);
            }
        }
    }

    #[test]
    fn every_isa_on_every_length() {
        // Exercise each compiled kernel directly, whatever isa() picked.
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| (i * 7 % 11) as f32).collect();
            let want_l2 = f64_l2(&a, &b);
            let want_ip = f64_dot(&a, &b);
            let mut got = vec![(l2_sq_scalar(&a, &b), dot_scalar(&a, &b))];
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f") {
                    got.push(unsafe { (x86::l2_sq_avx512(&a, &b), x86::dot_avx512(&a, &b)) });
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    got.push(unsafe { (x86::l2_sq_avx2(&a, &b), x86::dot_avx2(&a, &b)) });
                }
            }
            for (l2, ip) in got {
                assert!(
                    (l2 as f64 - want_l2).abs() <= 1e-4 * want_l2.max(1.0),
                    "n={n}"
                );
                assert!(
                    (ip as f64 - want_ip).abs() <= 1e-4 * want_ip.abs().max(1.0),
                    "n={n}"
                );
            }
        }
    }

    #[test]
    fn cosine_of_zero_vector_is_zero() {
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
    }
}
