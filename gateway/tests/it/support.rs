//! Helpers of the gateway's integration tests.

use std::path::PathBuf;

/// The all-MiniLM-L6-v2 directory that `bash .ci/fetch-model` fills: `$PARACACHE_MODEL_DIR`, else
/// `target/models/all-MiniLM-L6-v2` under the workspace root.
///
/// # Panics
///
/// When the directory holds no model: a test that needs it is `#[ignore]`d, so it only runs when
/// asked for (`-- --ignored`), and then a missing model is a failure, not a skip.
pub(crate) fn model_dir() -> PathBuf {
    let dir = std::env::var_os("PARACACHE_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .join("target/models/all-MiniLM-L6-v2")
        });
    assert!(
        dir.join("model.safetensors").exists(),
        "no model in {}: run bash .ci/fetch-model (or point $PARACACHE_MODEL_DIR at one)",
        dir.display()
    );
    dir
}

/// The cosine similarity of `a` and `b`.
#[cfg(feature = "bert")]
pub(crate) fn cos(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
