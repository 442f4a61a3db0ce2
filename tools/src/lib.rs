//! Bench and evaluation tools for paracache, and the code they share.
//!
//! The binaries in `src/bin` (stress, soak, replay, tune_search, calibrate, snapshot_bench,
//! shared_replay) are thin command lines over this library: the synthetic workload
//! ([`workload`]), the readers of the internal dev data set ([`dev_data`], [`stream`],
//! [`dev_pairs`], [`embeddings`]), latency percentiles ([`latency`]), resident memory ([`memory`]) and progress on
//! stderr ([`progress`]). The core's criterion benches use the same workload, so a bench and a tool
//! always measure the same thing.

pub mod cli;
pub mod dev_data;
pub mod dev_pairs;
pub mod embeddings;
pub mod history;
pub mod latency;
pub mod memory;
pub mod pair_model;
pub mod progress;
pub mod stream;
pub mod workload;
