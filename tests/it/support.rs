//! Helpers shared by the integration tests: seeded clustered vectors and an exact-scan oracle.
#![allow(dead_code)]

pub(crate) mod redis_server;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::convert::Infallible;

/// An embed closure that returns a fixed vector.
pub(crate) fn fixed(v: &[f32]) -> impl FnOnce(&str) -> Result<Vec<f32>, Infallible> + '_ {
    move |_| Ok(v.to_vec())
}

/// An embed closure that fails the test if it is called.
pub(crate) fn never(_: &str) -> Result<Vec<f32>, std::io::Error> {
    panic!("embed must not be called on an exact hit")
}

pub(crate) fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

pub(crate) fn cos(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

pub(crate) fn random_unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    unit((0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
}

/// `v` moved by Gaussian-ish noise of the given scale, at unit length.
pub(crate) fn jitter(rng: &mut StdRng, v: &[f32], scale: f32) -> Vec<f32> {
    unit(
        v.iter()
            .map(|x| x + scale * (rng.gen_range(-1.0f32..1.0) + rng.gen_range(-1.0f32..1.0)))
            .collect(),
    )
}

/// `clusters` centres with `per` members each, spread around their centre.
pub(crate) fn clustered(
    seed: u64,
    clusters: usize,
    per: usize,
    dim: usize,
    spread: f32,
) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| random_unit(&mut rng, dim)).collect();
    let mut out = Vec::with_capacity(clusters * per);
    for c in &centres {
        for _ in 0..per {
            out.push(jitter(&mut rng, c, spread));
        }
    }
    out
}

/// Exact nearest neighbour by scan: (index, similarity).
pub(crate) fn brute_best(
    data: &[Vec<f32>],
    live: impl Fn(usize) -> bool,
    q: &[f32],
) -> Option<(usize, f32)> {
    data.iter()
        .enumerate()
        .filter(|(i, _)| live(*i))
        .map(|(i, v)| (i, cos(v, q)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The all-MiniLM-L6-v2 directory `.ci/fetch-model` fills (or `$PARACACHE_MODEL_DIR`). `None`,
/// with a note on stderr, when it is absent, unless `$PARACACHE_REQUIRE_MODEL` is set (CI), in
/// which case a missing model fails the test.
pub(crate) fn model_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("PARACACHE_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/models/all-MiniLM-L6-v2")
        });
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("PARACACHE_REQUIRE_MODEL").is_none(),
        "no model in {}: run .ci/fetch-model",
        dir.display()
    );
    eprintln!(
        "skipped: no model in {} (run .ci/fetch-model)",
        dir.display()
    );
    None
}

/// The dev data set (`../shared/data/dev`, or `$PARACACHE_DEV_DATA`). `None`, with a note on
/// stderr, when it is absent: it is internal data that never ships with the crate.
pub(crate) fn dev_data() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("PARACACHE_DEV_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/dev")
        });
    if dir.join("texts.jsonl").exists() {
        return Some(dir);
    }
    eprintln!("skipped: no dev data in {}", dir.display());
    None
}
