//! Validated configuration, fixed at build time.

use crate::clock::Clock;
use crate::persist::auto::AutoSnapshot;
use crate::relevance::{Guards, PairCheck, VerifyBand};
use crate::scope::Scope;
use crate::vector::{IndexParams, SearchParams};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How a cache's capacity is counted ([`CacheBuilder::max_entries`](crate::CacheBuilder::max_entries)
/// or [`CacheBuilder::max_bytes`](crate::CacheBuilder::max_bytes)), as
/// [`Cache::capacity`](crate::Cache::capacity) reports it.
///
/// ```
/// use paracache::{Cache, Capacity};
/// let c = Cache::<u8>::builder(4).max_bytes(1 << 20).build().unwrap();
/// assert_eq!(c.capacity(), Capacity::Bytes(1 << 20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capacity {
    /// At most this many entries.
    Entries(u64),
    /// At most this many estimated bytes (prompt, value, vector and bookkeeping).
    Bytes(u64),
}

/// Which graph indexes a scope's vectors once it outgrows the exact scan
/// ([`CacheBuilder::graph_engine`](crate::CacheBuilder::graph_engine)).
///
/// Both build an HNSW graph with the same `m` and `ef_construction`, and lookups search either
/// through the same flat view, rescoring with the exact vectors, so they differ in build speed
/// and memory, not in what a lookup may serve.
///
/// ```
/// use paracache::{Cache, GraphEngine};
/// let c = Cache::<u8>::builder(4).graph_engine(GraphEngine::HnswRs).build().unwrap();
/// assert_eq!(c.graph_engine(), GraphEngine::HnswRs);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GraphEngine {
    /// The crate's own graph (hnswlib's algorithm) over the cache's one copy of each vector. On
    /// real 384-d embeddings it builds several times faster than hnsw_rs and holds about
    /// 150 bytes per entry besides the vector (BENCHMARKS.md, "Graph engines").
    #[default]
    Links,
    /// The `hnsw_rs` crate, which keeps its own copy of each vector.
    HnswRs,
}

pub(crate) type Weigher<V> = Arc<dyn Fn(&V) -> usize + Send + Sync>;

pub(crate) struct Config<V> {
    pub(crate) dimension: usize,
    pub(crate) capacity: Capacity,
    pub(crate) ttl: Option<Duration>,
    pub(crate) tti: Option<Duration>,
    pub(crate) threshold: f32,
    pub(crate) scope_thresholds: HashMap<Scope, f32>,
    pub(crate) index: IndexParams,
    pub(crate) search: SearchParams,
    pub(crate) weigher: Weigher<V>,
    pub(crate) max_value_bytes: usize,
    pub(crate) max_prompt_bytes: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) auto: AutoSnapshot<V>,
    pub(crate) guards: Guards,
    pub(crate) pair_check: Option<PairCheck>,
    pub(crate) verify: Option<VerifyBand>,
    pub(crate) alias_hits: bool,
    /// The user's schema version for `V`, written into snapshots.
    pub(crate) snapshot_schema: u32,
}

impl<V> Config<V> {
    pub(crate) fn threshold_for(&self, scope: &Scope) -> f32 {
        if self.scope_thresholds.is_empty() {
            return self.threshold;
        }
        self.scope_thresholds
            .get(scope)
            .copied()
            .unwrap_or(self.threshold)
    }

    /// Whether an entry created and last used at these times (clock nanoseconds) has passed its
    /// TTL or TTI at `now`: the one expiry rule for serving, saving and loading.
    pub(crate) fn is_expired(&self, created_ns: u64, last_access_ns: u64, now: u64) -> bool {
        let past = |start: u64, d: Option<std::time::Duration>| {
            d.is_some_and(|d| now >= start.saturating_add(crate::clock::nanos(d)))
        };
        past(created_ns, self.ttl) || past(last_access_ns, self.tti)
    }

    /// Estimated resident bytes of one entry: prompt, value, the entry's vector at half
    /// precision (and hnsw_rs's own f32 copy of it where that engine is chosen), the graph's
    /// links (the crate's graph: 2·M `u32`s at layer 0; hnsw_rs: 2·M neighbours of ~16 bytes),
    /// the frozen graph's copy of those links (2·M × 4 bytes) and its one-byte codes of the
    /// vector, and fixed overhead (entry, store and key-index slots). BENCHMARKS.md's first table
    /// has the resident bytes measured on dev-large (2.18-2.24 KB per entry at 81k, prompts included,
    /// against this estimate's ~1.9 KB).
    pub(crate) fn entry_weight(&self, prompt_bytes: usize, value_bytes: usize) -> u64 {
        const OVERHEAD: usize = 400;
        let stored = crate::vector::half::stored_bytes(self.dimension);
        let (vectors, links_per_m) = match self.index.engine {
            GraphEngine::Links => (stored, 16),
            GraphEngine::HnswRs => (stored + self.dimension * std::mem::size_of::<f32>(), 40),
        };
        [
            prompt_bytes,
            value_bytes,
            vectors,
            self.dimension,
            links_per_m * self.index.m,
            OVERHEAD,
        ]
        .into_iter()
        .fold(0u64, |sum, b| sum.saturating_add(b as u64))
    }
}
