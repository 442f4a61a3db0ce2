//! Cosine via simsimd, as a similarity for the cache and a distance for hnsw_rs.
//!
//! Every vector the cache holds or searches with has passed [`super::validate::unit_vector`], so
//! cosine is the dot product: simsimd's f32 dot kernel skips the two norms that its cosine kernel
//! computes, and costs about three quarters as much per 384-d pair here (BENCHMARKS.md).

use hnsw_rs::anndists::dist::Distance;
use simsimd::SpatialSimilarity;

/// Cosine similarity of two equal-length unit vectors, clamped to `[-1, 1]`.
///
/// A length mismatch (never reached: vectors are validated on the way in) counts as orthogonal
/// rather than panicking.
#[inline]
pub(crate) fn similarity(a: &[f32], b: &[f32]) -> f32 {
    cosine_of(<f32 as SpatialSimilarity>::dot(a, b).map(|d| d as f32))
}

/// A dot product of unit vectors as a cosine: NaN as opposite, rounding past ±1 cut back,
/// a length mismatch (`None`) as orthogonal.
#[inline]
pub(crate) fn cosine_of(dot: Option<f32>) -> f32 {
    match dot {
        Some(d) if d.is_nan() => -1.0,
        Some(d) => d.clamp(-1.0, 1.0),
        None => 0.0,
    }
}

/// The distance hnsw_rs sorts by: `1 - cos`, in `[0, 2]`.
///
/// hnsw_rs panics on NaN and asserts non-negative distances; the clamp in [`similarity`] keeps
/// rounding above 1 from producing a negative distance.
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

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn matches_cosine_of_a_plain_loop() {
        let raw_a = [0.3f32, -1.0, 2.5, 0.0];
        let raw_b = [1.0f32, 0.5, -0.25, 4.0];
        let dot: f32 = raw_a.iter().zip(&raw_b).map(|(x, y)| x * y).sum();
        let na: f32 = raw_a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = raw_b.iter().map(|x| x * x).sum::<f32>().sqrt();
        let (a, b) = (unit(&raw_a), unit(&raw_b));
        assert!((similarity(&a, &b) - dot / (na * nb)).abs() < 1e-5);
        assert!((similarity(&a, &a) - 1.0).abs() < 1e-5);
        assert!(SimdCosine.eval(&a, &a) >= 0.0);
        assert!((SimdCosine.eval(&a, &b) - (1.0 - dot / (na * nb))).abs() < 1e-5);
    }

    #[test]
    fn never_nan_never_negative_distance() {
        assert_eq!(similarity(&[1.0, 0.0], &[1.0]), 0.0);
        assert!(SimdCosine.eval(&[0.0, 0.0], &[0.0, 0.0]).is_finite());
        // Rounding can push a unit vector's dot with itself just above 1.
        let v = [1.000_001f32, 0.0];
        assert!(SimdCosine.eval(&v, &v) >= 0.0);
    }
}
