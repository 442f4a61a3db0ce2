//! Cosine via simsimd, as a similarity for the cache and a distance for hnsw_rs.

use hnsw_rs::anndists::dist::Distance;
use simsimd::SpatialSimilarity;

/// Cosine similarity of two equal-length, finite, non-zero vectors, in `[-1, 1]`.
///
/// simsimd returns the *distance* `1 - cos`; a length mismatch (never reached: vectors are
/// validated on the way in) counts as orthogonal rather than panicking.
#[inline]
pub(crate) fn similarity(a: &[f32], b: &[f32]) -> f32 {
    let d = <f32 as SpatialSimilarity>::cos(a, b).unwrap_or(1.0) as f32;
    if d.is_nan() {
        -1.0
    } else {
        (1.0 - d).clamp(-1.0, 1.0)
    }
}

/// The distance hnsw_rs sorts by: `1 - cos`, clamped to `[0, 2]`.
///
/// hnsw_rs panics on NaN and asserts non-negative distances, so rounding below zero is clamped and
/// NaN (impossible for validated vectors) maps to the farthest distance.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SimdCosine;

impl Distance<f32> for SimdCosine {
    #[inline]
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        1.0 - similarity(va, vb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_loop() {
        let a = [0.3f32, -1.0, 2.5, 0.0];
        let b = [1.0f32, 0.5, -0.25, 4.0];
        let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((similarity(&a, &b) - dot / (na * nb)).abs() < 1e-5);
        assert!((similarity(&a, &a) - 1.0).abs() < 1e-5);
        assert!(SimdCosine.eval(&a, &a) >= 0.0);
    }

    #[test]
    fn never_nan_never_negative_distance() {
        assert_eq!(similarity(&[1.0, 0.0], &[1.0]), 0.0);
        assert!(SimdCosine.eval(&[0.0, 0.0], &[0.0, 0.0]).is_finite());
    }
}
