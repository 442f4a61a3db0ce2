//! Embedding validation: the only way a vector enters the index.

use crate::error::{Error, Result};
use std::sync::Arc;

/// Check an embedding and scale it to unit length.
///
/// Unit length makes cosine well-conditioned for vectors of any magnitude (a tiny but non-zero
/// vector is fine; its direction is what counts).
pub(crate) fn unit_vector(v: &[f32], dimension: usize) -> Result<Arc<[f32]>> {
    if v.len() != dimension {
        return Err(Error::DimensionMismatch {
            expected: dimension,
            got: v.len(),
        });
    }
    if let Some(index) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteVector { index });
    }
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if !(norm.is_normal() && norm > 0.0) {
        return Err(Error::ZeroVector);
    }
    let unit: Arc<[f32]> = v.iter().map(|&x| (f64::from(x) / norm) as f32).collect();
    // Scaling a subnormal-heavy vector can still underflow to all zeros.
    if unit.iter().all(|&x| x == 0.0) {
        return Err(Error::ZeroVector);
    }
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_vectors() {
        assert_eq!(
            unit_vector(&[1.0], 2).unwrap_err(),
            Error::DimensionMismatch {
                expected: 2,
                got: 1
            }
        );
        assert_eq!(
            unit_vector(&[1.0, f32::NAN], 2).unwrap_err(),
            Error::NonFiniteVector { index: 1 }
        );
        assert_eq!(
            unit_vector(&[f32::INFINITY, 0.0], 2).unwrap_err(),
            Error::NonFiniteVector { index: 0 }
        );
        assert_eq!(unit_vector(&[0.0, 0.0], 2).unwrap_err(), Error::ZeroVector);
        assert_eq!(unit_vector(&[-0.0, 0.0], 2).unwrap_err(), Error::ZeroVector);
    }

    #[test]
    fn scales_to_unit_length() {
        let u = unit_vector(&[3.0, 4.0], 2).unwrap();
        assert!((u[0] - 0.6).abs() < 1e-6 && (u[1] - 0.8).abs() < 1e-6);
        let tiny = unit_vector(&[1e-30, 1e-30], 2).unwrap();
        assert!((tiny[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        let huge = unit_vector(&[f32::MAX, f32::MAX], 2).unwrap();
        assert!(huge[0].is_finite());
    }
}
