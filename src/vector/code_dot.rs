//! Dot products of 8-bit codes with AVX-512 VNNI where the CPU has it.
//!
//! Every graph walk and tail scan step is one of these (~1 500 per lookup at ef 64). VNNI
//! multiplies unsigned by signed bytes and sums four products into a 32-bit lane in one
//! instruction (`vpdpbusd`), so a 384-d dot is six of them. Codes are signed: flipping a code's
//! top bit reads it as the unsigned `code + 128`, so `Σ (v + 128)·q = v·q + 128·Σq`, and the
//! query's `Σq` is known once per lookup. The result is the exact integer dot product either
//! way. simsimd's i8 kernel widens to 16 bits instead (perf put it at a fifth of a lookup).
//! std has no safe way to load a vector register from a slice, hence the `unsafe` here; where
//! VNNI is missing simsimd's kernel answers.
#![allow(unsafe_code)]

use simsimd::SpatialSimilarity;

/// `Σ q[i]·v[i]`, given `q_sum = Σ q[i]`; `None` if the lengths differ.
#[inline]
pub(crate) fn dot(q: &[i8], q_sum: i32, v: &[i8]) -> Option<i32> {
    if q.len() != v.len() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU has AVX-512F, BW and VNNI (VNNI implies F; both checked features
        // above), the features the kernel is compiled for, and the slices have equal lengths,
        // which is all it reads by.
        return Some(unsafe { x86::dot_vnni(q, q_sum, v) });
    }
    let _ = q_sum;
    <i8 as SpatialSimilarity>::dot(q, v).map(|d| d as i32)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F, BW and VNNI, and `q.len() == v.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn dot_vnni(q: &[i8], q_sum: i32, v: &[i8]) -> i32 {
        let full = q.len() / 64 * 64;
        let flip = _mm512_set1_epi8(i8::MIN);
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i < full {
            // SAFETY: i + 64 <= full <= len of both slices: 64 bytes readable from each;
            // `loadu` needs no alignment.
            let (x, y) = unsafe {
                (
                    _mm512_loadu_si512(v.as_ptr().add(i).cast()),
                    _mm512_loadu_si512(q.as_ptr().add(i).cast()),
                )
            };
            acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(x, flip), y);
            i += 64;
        }
        // Only the full blocks were read as `v + 128`: remove 128·Σq over those alone.
        let head_sum: i32 = q_sum - q[full..].iter().map(|&c| i32::from(c)).sum::<i32>();
        let rest: i32 = q[full..]
            .iter()
            .zip(&v[full..])
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum();
        _mm512_reduce_add_epi32(acc) - 128 * head_sum + rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length from 0 to 200 (full blocks, and blocks with a remainder), extreme codes
    /// included, against a plain loop.
    #[test]
    fn kernel_matches_a_plain_loop_at_every_length() {
        for n in 0..200usize {
            let q: Vec<i8> = (0..n).map(|i| ((i * 37 + 11) % 256) as u8 as i8).collect();
            let v: Vec<i8> = (0..n).map(|i| ((i * 101 + 3) % 256) as u8 as i8).collect();
            let want: i32 = q.iter().zip(&v).map(|(&a, &b)| a as i32 * b as i32).sum();
            let sum: i32 = q.iter().map(|&c| c as i32).sum();
            assert_eq!(dot(&q, sum, &v), Some(want), "len {n}");
        }
        let extreme = [i8::MIN; 64];
        assert_eq!(dot(&extreme, -128 * 64, &extreme), Some(128 * 128 * 64));
        assert_eq!(dot(&[1], 1, &[1, 2]), None);
    }
}
