//! Stored vectors at half precision (IEEE binary16).
//!
//! Each entry's vector is kept once, shared by the entry, its index slot and the graph. At f32 a
//! 384-d vector took 1 552 bytes with its `Arc` counts, over half of what an entry cost at 81k
//! real entries (2 866 resident bytes, BENCHMARKS.md's first table); as f16 it takes 784, and
//! the entry 2 178-2 241 in all.
//!
//! The cost in precision is small against anything the cache decides on. A component keeps 11
//! significant bits, so it is within 2^-11 of itself, and by Cauchy-Schwarz the cosine of an f32
//! query with a stored unit vector is within 2^-11 of its cosine with the f32 original; in
//! practice ~1e-5 (both sides rounded: at most 6e-5 over 2 000 random 384-d pairs,
//! `cosine_moves_by_less_than_1e4`): about ten times what separates this crate's model from
//! onnxruntime's on the same text (cosine >= 0.999999, BENCHMARKS.md), and far below the
//! spacing of thresholds anyone tunes. Only a best match that close to the threshold can
//! change its decision: on dev-large, 3 of 47 759 lookups at 81k entries and none of 23 249 at 16k
//! (BENCHMARKS.md).
//!
//! Queries stay f32 wherever they are kept (a `Miss` hands its embedding back to be inserted).
//! A search ranks what it finds with the query narrowed once (half x half products), then scores
//! what it returns with the f32 query ([`similarity_to`]): the cosine a lookup decides on and
//! reports has only the stored side rounded.

use super::distance::cosine_of;
use half::slice::HalfFloatSliceExt;
use std::sync::Arc;

/// One component of a stored vector.
pub(crate) type Half = simsimd::f16;

/// A stored vector, shared by its entry, its index slot and the graph.
pub(crate) type HalfVector = Arc<[Half]>;

/// `v` at half precision, as a fresh buffer.
pub(crate) fn narrow_vec(v: &[f32]) -> Vec<Half> {
    let mut halves = vec![half::f16::ZERO; v.len()];
    // half converts with F16C where the CPU has it.
    halves.convert_from_f32_slice(v);
    halves
        .into_iter()
        .map(|h| simsimd::f16(h.to_bits()))
        .collect()
}

/// `v` at half precision, ready to store.
pub(crate) fn narrow(v: &[f32]) -> HalfVector {
    Arc::from(narrow_vec(v))
}

/// `v` back at single precision (exact: every f16 is an f32).
pub(crate) fn widen(v: &[Half]) -> Vec<f32> {
    let bits: Vec<half::f16> = v.iter().map(|h| half::f16::from_bits(h.0)).collect();
    let mut out = vec![0f32; v.len()];
    bits.convert_to_f32_slice(&mut out);
    out
}

/// Cosine similarity of two equal-length unit vectors at half precision, clamped to `[-1, 1]`;
/// a length mismatch (never reached: vectors are validated on the way in) counts as orthogonal.
#[inline]
pub(crate) fn similarity(a: &[Half], b: &[Half]) -> f32 {
    cosine_of(super::half_dot::dot(a, b))
}

/// Cosine similarity of an f32 query and a stored vector, with only the stored side rounded:
/// what the cache decides on and reports.
pub(crate) fn similarity_to(query: &[f32], stored: &[Half]) -> f32 {
    cosine_of(super::half_dot::dot_mixed(query, stored))
}

/// Bytes one stored vector of `dim` components takes, with its `Arc` counts.
pub(crate) fn stored_bytes(dim: usize) -> usize {
    dim * std::mem::size_of::<Half>() + 2 * std::mem::size_of::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::frozen_graph::tests::random_units;

    #[test]
    fn cosine_moves_by_less_than_1e4() {
        let vs = random_units(2001, 384, 7);
        let mut worst = 0f32;
        for pair in vs.windows(2) {
            let exact: f32 = pair[0].iter().zip(pair[1].iter()).map(|(a, b)| a * b).sum();
            let stored = similarity(&narrow(&pair[0]), &narrow(&pair[1]));
            worst = worst.max((exact - stored).abs());
        }
        assert!(worst < 1e-4, "worst cosine error {worst}");
        let one_side = vs
            .windows(2)
            .map(|p| {
                let exact: f32 = p[0].iter().zip(p[1].iter()).map(|(a, b)| a * b).sum();
                (exact - similarity_to(&p[0], &narrow(&p[1]))).abs()
            })
            .fold(0f32, f32::max);
        assert!(
            one_side < worst,
            "{one_side} against {worst} with both sides rounded"
        );
        assert!(
            worst > 0.0,
            "the kernel ran on halves, not on a copy of the f32s"
        );
    }

    #[test]
    fn narrowing_then_widening_keeps_each_component_to_11_bits() {
        let v = &random_units(1, 384, 3)[0];
        let back = widen(&narrow(v));
        for (a, b) in v.iter().zip(&back) {
            assert!(
                (a - b).abs() <= a.abs() / 2048.0 + 1e-7,
                "{a} came back as {b}"
            );
        }
        assert_eq!(widen(&narrow(&[0.0, 1.0, -0.5])), vec![0.0, 1.0, -0.5]);
        assert_eq!(
            narrow(&back)[..],
            narrow(v)[..],
            "a second round trip is exact"
        );
    }

    #[test]
    fn similarity_is_clamped_and_a_length_mismatch_is_orthogonal() {
        let one = narrow(&[1.0, 0.0]);
        assert_eq!(similarity(&one, &one), 1.0);
        assert_eq!(similarity(&one, &narrow(&[1.0])), 0.0);
        assert_eq!(stored_bytes(384), 768 + 16);
    }
}
