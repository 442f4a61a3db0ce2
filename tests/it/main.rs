//! The core's integration tests, one module per area, in one binary (one link instead of one per
//! file), with the helpers they share in [`support`].
//!
//! Tests that need something the repository does not hold (the internal dev data set, the model
//! that `bash .ci/fetch-model` fetches) are `#[ignore]`d with the reason, so a plain `cargo test`
//! lists them as ignored; CI runs them with
//! `cargo test --release --features bert -p paracache --test it -- --ignored --skip _child`,
//! where a test missing its resource fails, naming where it looked and how to get it. Tests named
//! `*_child` are the child halves of multi-process tests: their parent test starts them, and run
//! on their own they do nothing, hence the `--skip`.

mod support;

/// The checks the cargo-fuzz targets run, replayed here on stable. The fuzz crate stays outside
/// the workspace (cargo-fuzz's flags, its own lock file), so its targets and these tests include
/// the same files by path.
#[path = "../../fuzz/checks"]
mod fuzz_checks {
    pub(crate) mod normalize;
    pub(crate) mod ops;
    pub(crate) mod snapshot;
}

mod aliases;
mod bad_input;
#[cfg(feature = "bert")]
mod bert_embedder;
#[cfg(feature = "bert")]
mod bert_model_files;
mod calibration;
mod concurrency;
mod fuzz_corpus;
mod history;
mod lifecycle;
mod model;
mod persist_crash;
mod persistence;
mod promises;
mod rebuild;
mod relevance;
mod scopes;
mod semantic_accuracy;
mod single_flight;
mod tiers;
