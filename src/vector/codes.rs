//! Vectors as 8-bit codes: what graph walks and tail scans rank with, and how far that ranking
//! can stray from the similarities the cache decides on.
//!
//! A walk only has to rank neighbours well enough to steer, and a scan only has to tell which
//! slots may reach the threshold; the segment rescores those with the stored vectors, so every
//! similarity the cache decides on is exact. Codes are a quarter of the bytes of `f32`, and a
//! walk at 100k entries is bound by fetching them from memory (BENCHMARKS.md). Each vector gets
//! its own scale (its largest component maps to 127), which keeps the rounding error of a 384-d
//! unit vector's dot product near 1e-3.

/// A vector as 8-bit codes and the value of one code unit.
pub(crate) struct Quantized {
    pub(crate) codes: Vec<i8>,
    pub(crate) scale: f32,
    /// `Σ codes`, which the VNNI kernel needs (src/vector/code_dot.rs).
    sum: i32,
}

impl Quantized {
    pub(crate) fn new(v: &[f32]) -> Self {
        let mut codes = vec![0i8; v.len()];
        let scale = quantize(v, &mut codes);
        let sum = codes.iter().map(|&c| i32::from(c)).sum();
        Quantized { codes, scale, sum }
    }

    /// Approximate similarity of this vector and the one whose codes and scale are given.
    #[inline]
    pub(crate) fn sim(&self, codes: &[i8], scale: f32) -> Option<f32> {
        let dot = super::code_dot::dot(&self.codes, self.sum, codes)? as f32;
        Some(dot * self.scale * scale)
    }

    /// How far [`Quantized::sim`] against a vector coded at `scale` can lie from the similarity
    /// of the unit vector these codes were made from and that stored vector.
    ///
    /// Rounding moves each component by at most half a code unit, so this vector's codes lie
    /// within `e_q = √dim·s_q/2` of it and the other's within `e_v = √dim·s_v/2` of the stored
    /// vector (Euclidean). Both are unit vectors (the stored one to within f16 rounding, hence
    /// 1.001), so by Cauchy-Schwarz the dot products differ by at most
    /// `e_v + 1.001·e_q + e_q·e_v`; `1e-4` covers the f32 arithmetic of both sides.
    pub(crate) fn error_bound(&self, scale: f32) -> f32 {
        let half_root = (self.codes.len() as f32).sqrt() / 2.0;
        let (e_q, e_v) = (half_root * self.scale, half_root * scale);
        e_v + 1.001 * e_q + e_q * e_v + 1e-4
    }
}

/// Write `v`'s codes into `out` and return the scale; 0 (and zero codes) for a vector with no
/// finite non-zero component, which validated vectors never are.
pub(crate) fn quantize(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if !(max > 0.0 && max.is_finite()) {
        return 0.0;
    }
    let unit = max / 127.0;
    for (o, x) in out.iter_mut().zip(v) {
        // `as` saturates, and |x / unit| <= 127 by construction.
        *o = (x / unit).round() as i8;
    }
    unit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::frozen_graph::tests::random_units;

    #[test]
    fn codes_estimate_the_dot_product_closely() {
        let vs = random_units(200, 384, 1);
        let mut worst = 0f32;
        for pair in vs.chunks(2) {
            let (a, b) = (Quantized::new(&pair[0]), Quantized::new(&pair[1]));
            let approx = a.sim(&b.codes, b.scale).unwrap();
            let exact: f32 = pair[0].iter().zip(&*pair[1]).map(|(x, y)| x * y).sum();
            worst = worst.max((approx - exact).abs());
            assert!((approx - exact).abs() <= a.error_bound(b.scale));
        }
        assert!(worst < 0.01, "worst error {worst}");
        assert_eq!(
            Quantized::new(&[1.0]).sim(&[1, 2], 1.0),
            None,
            "lengths differ"
        );
        assert_eq!(
            quantize(&[0.0, 0.0], &mut [0, 0]),
            0.0,
            "no scale for a zero vector"
        );
        assert_eq!(quantize(&[f32::INFINITY, 1.0], &mut [0, 0]), 0.0);
    }
}
