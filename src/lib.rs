//! # paracache — an embeddable two-tier semantic cache for LLM prompts
//!
//! Put it in front of a model: a repeated prompt is answered in about a microsecond without calling
//! the embedding model, a paraphrase in well under a millisecond, and everything else goes to the
//! model once (even when many callers ask at the same time).
//!
//! ```
//! use paracache::{Cache, Embedder, HashEmbedder, Lookup, Scope};
//!
//! let embedder = HashEmbedder::new(256); // offline and lexical; use a real model in production
//! let cache: Cache<String> = Cache::builder(embedder.dimension()).threshold(0.8).build()?;
//! let scope = Scope::builder().tenant("acme").model("gpt-4o").build();
//!
//! let answer = cache.get_or_insert_with(&scope, "How do I reset my password?",
//!     embedder.embed_fn(),
//!     || Ok::<_, std::io::Error>("Settings > Security > Reset.".to_string()))?;
//! assert_eq!(answer.source(), paracache::Source::Computed);
//!
//! match cache.lookup(&scope, "how can I reset my password", embedder.embed_fn())? {
//!     Lookup::Hit(hit) => assert_eq!(hit.value(), "Settings > Security > Reset."),
//!     _ => unreachable!("a rewording that shares most words"),
//! }
//! # Ok::<(), paracache::Error>(())
//! ```
//!
//! ## How a lookup works
//!
//! 1. The prompt is [normalized](normalize) (NFC, whitespace collapsed, trimmed).
//! 2. **Exact tier**: the key is MD5 of `scope encoding ‖ length ‖ prompt` (both length-prefixed). The stored scope and
//!    prompt are compared on every hit, so an MD5 collision is a miss, never a wrong answer. No
//!    embedding is computed.
//! 3. Only on an exact miss is the embedding function called. The vector is validated (dimension,
//!    finite, non-zero) and scaled to unit length.
//! 4. **Semantic tier**: the scope's own index is searched — an exact SIMD scan for small scopes,
//!    an HNSW graph above [`CacheBuilder::exact_scan_limit`]: the crate's own graph builds it
//!    ([`GraphEngine`]; hnsw_rs is the alternative), and lookups search a
//!    frozen copy of its links and of the vectors as 8-bit codes (vectors inserted since the last
//!    copy are scanned exactly), then rescores what it found with the full vectors using simsimd
//!    dot products, so every similarity a decision rests on is exact. The graph is walked with a
//!    cheap beam first, whose hits are served; a walk that finds no hit goes on to the full beam
//!    from where it stopped, unless it ended far below the threshold among related prompts, which
//!    decides the miss ([`Cache::set_search`] and [`Cache::set_adaptive_miss_margin`] change that
//!    effort at run time).
//! 5. Every candidate is confirmed live in the entry store before it is served; dead ones are
//!    skipped and never hide a live neighbour behind them. Both tiers read entries from a sharded
//!    key index kept in step with the store (moka), which hears of reads in sampled batches off
//!    the lookup path, so its bookkeeping never lands on a lookup.
//!
//! ## Guarantees
//!
//! - **Scopes never leak.** Each [`Scope`] (tenant, model, system prompt, sampling parameters) has
//!   its own index and its own keys; scope equality compares the full encoding.
//! - **Nothing dead is served.** Evicted, expired, invalidated, replaced or cleared entries are
//!   never returned by either tier, from the moment the removing call returns (expiry: from the
//!   moment the [`Clock`] passes it).
//! - **Bounded memory.** Capacity by entries or estimated bytes; dead vectors are tombstoned and a
//!   scope's index is rebuilt from live vectors (while lookups go on) once dead vectors pass
//!   [`CacheBuilder::max_dead_ratio`]. Empty scopes are dropped.
//! - **Bad input is an error, not a panic**, and a failed call changes nothing.
//! - **Concurrency.** `Cache` is `Send + Sync` and `Clone` (shared state). No lock is held while
//!   calling your embed or compute function; concurrent misses on one prompt compute once.
//!
//! ## Consistency
//!
//! Entry counts in [`Stats`] come from the store and settle after its maintenance runs
//! ([`Cache::run_pending_tasks`]); what is *served* never depends on that.
//!
//! ## Features and companion crates
//!
//! | feature / crate | what it adds |
//! | --- | --- |
//! | `bert` | [`BertEmbedder`](https://docs.rs/paracache/latest/paracache/struct.BertEmbedder.html): all-MiniLM-L6-v2-style models on the CPU in pure Rust (its own BERT forward pass over the `gemm` crate), loaded from a directory |
//! | `paracache-redis` | `SharedCache`: replicas share one cache through Redis, built on [`SecondTier`] |
//! | `paracache-gateway` | an OpenAI-compatible caching proxy |
//!
//! MSRV: Rust 1.89 (edition 2024); the README says how that was determined.

// No unsafe code, but for the one call into gemm's raw-pointer matrix product under the `bert`
// feature (src/embed/bert/matmul.rs), the prefetch hint of graph walks and builds
// (src/vector/prefetch.rs), the AVX-512 loads of half-precision vectors (src/vector/half_dot.rs)
// and of 8-bit codes (src/vector/code_dot.rs), each with its SAFETY argument.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod alias;
mod builder;
mod cache;
mod calibrate;
mod clock;
mod config;
mod embed;
mod entries;
mod entry;
mod error;
mod get_or_insert;
mod inflight;
mod key;
mod liveness;
mod outcome;
mod partitions;
mod persist;
mod policy;
mod relevance;
mod scope;
mod stats;
mod sync;
mod tier;
mod tiers;
mod vector;

pub use builder::{CacheBuilder, DEFAULT_MAX_ENTRIES, DEFAULT_MISS_MARGIN, DEFAULT_THRESHOLD};
pub use cache::Cache;
pub use calibrate::{Calibration, CalibrationError, CurvePoint};
pub use clock::{Clock, MockClock, SystemClock};
pub use config::{Capacity, GraphEngine};
#[cfg(feature = "bert")]
#[cfg_attr(docsrs, doc(cfg(feature = "bert")))]
pub use embed::BertEmbedder;
pub use embed::{BatchCounts, EmbedFn, Embedder, HashEmbedder, MicroBatcher};
pub use error::{BoxError, Error, Result};
pub use key::normalize;
pub use outcome::{Hit, Lookup, Miss, Source};
pub use persist::SnapshotReport;
pub use persist::auto::MIN_SNAPSHOT_INTERVAL;
pub use relevance::{
    CheckRejection, Feature, Guard, Guards, PairCheck, PairFeatures, Rejection, Verifier,
};
pub use scope::{Scope, ScopeBuilder};
pub use stats::Stats;
pub use tier::{ExactKey, ExactProbe, SecondTier};

/// The README's code blocks run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
