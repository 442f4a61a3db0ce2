//! A trained [`PairCheck`] as a JSON file, so the replay can run a check fitted on another split
//! than the one shipped in the crate (`train_pair_check --json FILE`, `replay --pair-check FILE`).

use paracache::{PairCheck, PairFeatures};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The weights file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairModel {
    /// Weights, in the order of `Feature::ALL`.
    pub weights: Vec<f32>,
    /// Weights of the vectors' element-wise product, then absolute difference (or empty).
    pub vector_weights: Vec<f32>,
    /// The vector features' means on the training pairs.
    pub vector_means: Vec<f32>,
    /// The bias (intercept).
    pub bias: f32,
    /// Each feature's mean on the training pairs.
    pub means: Vec<f32>,
    /// The probability threshold.
    pub threshold: f32,
    /// What it was trained on.
    pub data: String,
    /// FNV-1a 64 of the training files.
    pub data_hash: String,
}

impl PairModel {
    /// The check this model describes.
    pub fn check(&self) -> Result<PairCheck, String> {
        let arr = |v: &[f32], what: &str| -> Result<[f32; PairFeatures::LEN], String> {
            v.try_into().map_err(|_| {
                format!(
                    "{what}: {} values, the check has {} features",
                    v.len(),
                    PairFeatures::LEN
                )
            })
        };
        Ok(PairCheck::new(
            arr(&self.weights, "weights")?,
            self.vector_weights.clone(),
            self.bias,
            arr(&self.means, "means")?,
            self.vector_means.clone(),
            self.threshold,
        ))
    }

    /// Read a model written by `train_pair_check --json`.
    pub fn load(path: &Path) -> Result<PairModel, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// `shipped` (the crate's default check), `none`, or a JSON model file: the `--pair-check` flag.
pub fn parse_flag(spec: &str) -> Result<Option<PairCheck>, String> {
    match spec {
        "shipped" => Ok(Some(PairCheck::default())),
        "none" => Ok(None),
        file => PairModel::load(Path::new(file))?.check().map(Some),
    }
}

/// FNV-1a 64 of `bytes`, continuing from `h` (start at [`FNV_START`]).
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV-1a 64's offset basis.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;
