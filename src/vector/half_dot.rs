//! Dot products over half-precision vectors with AVX-512 where the CPU has it.
//!
//! simsimd's f16 kernels need AVX-512 FP16 (Sapphire Rapids) for 512-bit registers; elsewhere,
//! including AMD's AVX-512 CPUs, it converts eight halves at a time with 256-bit F16C. On the
//! dev machine (AMD EPYC, AVX-512F) that made a 384-d f16 dot 46 ns against 27 ns for f32, so
//! graph builds, which are dot products, slowed by a quarter when vectors became halves.
//! AVX-512F alone converts sixteen halves per instruction (`vcvtph2ps`). std has no safe way
//! to load a vector register from a slice, hence the `unsafe` here; where AVX-512F is missing
//! the portable kernels (simsimd's, or a widened copy) answer instead.
#![allow(unsafe_code)]

use super::half::Half;
use simsimd::SpatialSimilarity;

/// `Σ a[i]·b[i]` of two stored vectors; `None` if their lengths differ.
#[inline]
pub(crate) fn dot(a: &[Half], b: &[Half]) -> Option<f32> {
    if a.len() != b.len() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above), the one feature the kernel is
        // compiled for, and the slices have equal lengths, which is all it reads by.
        return Some(unsafe { x86::dot_halves(a, b) });
    }
    <Half as SpatialSimilarity>::dot(a, b).map(|d| d as f32)
}

/// `Σ q[i]·v[i]` of an f32 query and a stored vector; `None` if their lengths differ.
#[inline]
pub(crate) fn dot_mixed(q: &[f32], v: &[Half]) -> Option<f32> {
    if q.len() != v.len() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: as in `dot`: AVX-512F is present and the lengths are equal.
        return Some(unsafe { x86::dot_mixed(q, v) });
    }
    <f32 as SpatialSimilarity>::dot(q, &super::half::widen(v)).map(|d| d as f32)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Half;
    use std::arch::x86_64::*;

    /// Sixteen halves from `p`, widened.
    ///
    /// # Safety
    /// `p` must point at 16 readable halves, and the CPU must have AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const Half) -> __m512 {
        // SAFETY: the caller guarantees 32 readable bytes at `p`; `loadu` needs no alignment.
        _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(p.cast::<__m256i>()) })
    }

    /// The scalar product of the components past the last full 16.
    fn tail(a: impl Iterator<Item = f32>, b: &[Half]) -> f32 {
        a.zip(b).map(|(x, y)| x * y.to_f32()).sum()
    }

    /// # Safety
    /// The CPU must have AVX-512F and `a.len() == b.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_halves(a: &[Half], b: &[Half]) -> f32 {
        let full = a.len() / 16 * 16;
        let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i + 32 <= full {
            // SAFETY: i + 32 <= full <= len of both slices: 32 halves readable from each.
            unsafe {
                let p = (a.as_ptr().add(i), b.as_ptr().add(i));
                acc0 = _mm512_fmadd_ps(load16(p.0), load16(p.1), acc0);
                acc1 = _mm512_fmadd_ps(load16(p.0.add(16)), load16(p.1.add(16)), acc1);
            }
            i += 32;
        }
        if i < full {
            // SAFETY: i + 16 == full <= len of both slices.
            unsafe {
                let p = (a.as_ptr().add(i), b.as_ptr().add(i));
                acc0 = _mm512_fmadd_ps(load16(p.0), load16(p.1), acc0);
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
            + tail(a[full..].iter().map(|h| h.to_f32()), &b[full..])
    }

    /// # Safety
    /// The CPU must have AVX-512F and `q.len() == v.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_mixed(q: &[f32], v: &[Half]) -> f32 {
        let full = q.len() / 16 * 16;
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 16 <= full <= len of both slices: 16 floats and 16 halves readable.
            unsafe {
                let x = _mm512_loadu_ps(q.as_ptr().add(i));
                acc = _mm512_fmadd_ps(x, load16(v.as_ptr().add(i)), acc);
            }
            i += 16;
        }
        _mm512_reduce_add_ps(acc) + tail(q[full..].iter().copied(), &v[full..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::half::{narrow, widen};

    /// Every length from 0 to 100 (full registers, pairs of them, and tails) against a plain
    /// loop over the widened halves.
    #[test]
    fn kernels_match_a_plain_loop_at_every_length() {
        for n in 0..100usize {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0).collect();
            let (ha, hb) = (narrow(&a), narrow(&b));
            let (wa, wb) = (widen(&ha), widen(&hb));
            let want: f32 = wa.iter().zip(&wb).map(|(x, y)| x * y).sum();
            let got = dot(&ha, &hb).unwrap();
            assert!((got - want).abs() < 1e-4, "len {n}: {got} against {want}");
            let want_mixed: f32 = a.iter().zip(&wb).map(|(x, y)| x * y).sum();
            let got_mixed = dot_mixed(&a, &hb).unwrap();
            assert!((got_mixed - want_mixed).abs() < 1e-4, "len {n}: mixed");
        }
        assert_eq!(dot(&narrow(&[1.0]), &narrow(&[1.0, 0.0])), None);
        assert_eq!(dot_mixed(&[1.0], &narrow(&[1.0, 0.0])), None);
    }
}
