//! The encoder's element-wise steps: layer normalisation, the exact (erf) GELU and the softmax.
//! `exp` and `erf` are branch-free polynomials rather than libm calls, so that the compiler turns
//! the loops over them into vector code: with libm's `erff` and `expf` the GELU alone took about a
//! tenth of candle's forward pass (perf, batch 1).

use rayon::prelude::*;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
const LN_2_HI: f32 = 0.693_145_75; // ln 2 split in two, so that n · ln 2 is exact for |n| ≤ 128
const LN_2_LO: f32 = 1.428_606_8e-6;
/// Adding and then subtracting 1.5 · 2²³ rounds an f32 below 2²² to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// e^x to a relative error of about 2e-7 for x in [-87, 88] (clamped outside, so it never
/// returns infinity or a subnormal; NaN stays NaN).
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // t's low mantissa bits hold round(x · log2 e) as an integer: reading it from the bits
    // avoids a float-to-int conversion, whose saturating semantics kept the loop scalar.
    let t = x * LOG2_E + ROUND;
    let n = t - ROUND;
    let power = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - n * LN_2_HI - n * LN_2_LO; // |r| <= ln2 / 2
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits((power.wrapping_add(127) as u32) << 23)
}

/// erf(x) to an absolute error of about 2e-7 (Abramowitz and Stegun 7.1.26).
#[inline(always)]
pub(super) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// GELU as BERT defines it, 0.5 · x · (1 + erf(x / √2)), in place.
pub(super) fn gelu(values: &mut [f32]) {
    for v in values {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Normalises each `gamma.len()`-wide row of `rows` to mean 0 and variance 1, then scales by
/// `gamma` and shifts by `beta`.
pub(super) fn layer_norm(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    // A batch's rows on all threads; a single text's ~16 rows are not worth the hand-off.
    const ROWS_PER_TASK: usize = 64;
    if rows.len() > ROWS_PER_TASK * width {
        rows.par_chunks_mut(ROWS_PER_TASK * width)
            .for_each(|chunk| layer_norm(chunk, gamma, beta, eps));
        return;
    }
    for row in rows.chunks_exact_mut(width) {
        let mean = row.iter().sum::<f32>() / width as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// Each `width`-wide row of `rows` becomes a probability distribution: exp(v - max) / sum.
pub(super) fn softmax_rows(rows: &mut [f32], width: usize) {
    for row in rows.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = exp(*v - max);
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_the_standard_library_across_their_range() {
        let mut worst_exp = 0.0f64;
        let mut worst_erf = 0.0f64;
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.004; // -80 .. 80
            let want = (x as f64).exp();
            worst_exp = worst_exp.max(((exp(x) as f64 - want) / want).abs());
            let z = x / 16.0; // -5 .. 5, where erf saturates
            let want = libm_erf(z as f64);
            worst_erf = worst_erf.max((erf(z) as f64 - want).abs());
        }
        assert!(worst_exp < 5e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 5e-7, "erf absolute error {worst_erf}");
        assert_eq!(exp(-1000.0), exp(-87.0), "clamped below");
        assert!(exp(1000.0).is_finite() && exp(f32::NAN).is_nan());
    }

    /// erf in f64 by its Taylor series (|x| <= 5 converges in under 100 terms).
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 5.0 {
            return x.signum();
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 3.0 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn layer_norm_and_softmax_normalise_each_row() {
        let mut rows = vec![1.0, 2.0, 3.0, 4.0, -5.0, 0.0, 5.0, 10.0];
        layer_norm(&mut rows, &[1.0; 4], &[0.5; 4], 1e-12);
        for row in rows.chunks(4) {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!((mean - 0.5).abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        }
        let mut p = vec![1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0];
        softmax_rows(&mut p, 3);
        assert!((p[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1] && p[1] > p[0]);
        assert!((p[3] - 0.5).abs() < 1e-6 && p[5] < 1e-30, "{p:?}");
    }

    #[test]
    fn gelu_is_x_times_the_normal_cdf() {
        let mut v = vec![-3.0, -1.0, 0.0, 1.0, 3.0];
        gelu(&mut v);
        let want = [-0.004_049_7, -0.158_655_26, 0.0, 0.841_344_7, 2.995_950_3];
        for (g, w) in v.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
    }
}
