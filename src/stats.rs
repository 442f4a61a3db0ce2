//! Counters behind [`crate::Cache::stats`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A point-in-time copy of the cache's counters.
///
/// Every lookup counts exactly once as an exact hit, a semantic hit or a miss, so
/// `exact_hits + semantic_hits + misses` is the number of lookups (including the lookups inside
/// `get_or_insert_with`). `entries` and the index counts are read when `stats()` is called;
/// evictions and expirations the policy has decided may wait for its maintenance, which
/// [`Cache::run_pending_tasks`](crate::Cache::run_pending_tasks) runs at once.
///
/// ```
/// use paracache::{Cache, Scope};
/// let cache: Cache<u32> = Cache::builder(2).max_entries(10).build().unwrap();
/// let s = cache.stats();
/// assert_eq!(s.exact_hits + s.semantic_hits + s.misses, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Lookups answered by the exact tier (including `alias_hits`).
    pub exact_hits: u64,
    /// Exact-tier answers given through an alias: a phrasing that was earlier served a semantic
    /// hit (see [`CacheBuilder::alias_hits`](crate::CacheBuilder::alias_hits)).
    pub alias_hits: u64,
    /// Lookups answered by the semantic tier.
    pub semantic_hits: u64,
    /// Lookups answered by neither tier.
    pub misses: u64,
    /// Misses that the adaptive probe decided alone, its best find ending more than the
    /// [`adaptive_miss_margin`](crate::CacheBuilder::adaptive_miss_margin) below the threshold
    /// (0 with the default margin).
    pub probe_misses: u64,
    /// Entries inserted (including replacements).
    pub inserts: u64,
    /// Entries removed to stay within capacity.
    pub evicted_size: u64,
    /// Entries removed because their TTL or TTI passed.
    pub evicted_expired: u64,
    /// Entries removed by `invalidate`, `invalidate_scope` or `clear`.
    pub evicted_explicit: u64,
    /// Entries replaced by a newer insert under the same key.
    pub evicted_replaced: u64,
    /// Semantic candidates at or above the threshold that a [`Guard`](crate::Guard) turned away.
    pub guard_rejections: u64,
    /// Semantic candidates that passed the guards and that the [`PairCheck`](crate::PairCheck)
    /// turned away.
    pub pair_check_rejections: u64,
    /// Calls made to the [`Verifier`](crate::Verifier).
    pub verifier_calls: u64,
    /// Candidates the verifier turned away.
    pub verifier_rejections: u64,
    /// Calls made to the embedding function.
    pub embed_calls: u64,
    /// Calls made to the compute function of `get_or_insert_with*`.
    pub compute_calls: u64,
    /// Entries that exist (servable unless expired or dead and not yet retired).
    pub entries: u64,
    /// Vectors in the semantic index whose entry is live.
    pub index_live: u64,
    /// Vectors still in the index whose entry is gone (reclaimed by the next rebuild).
    pub index_dead: u64,
    /// Vectors in a graph partition that the background indexer has not linked into the graph
    /// yet: lookups find them by exact scan meanwhile. Bounded near 256 per partition (an
    /// insert waits beyond that); [`Cache::compact`](crate::Cache::compact) indexes them at once.
    pub index_pending: u64,
    /// Scopes whose graph was linked from the links a snapshot saved instead of being rebuilt
    /// ([`CacheBuilder::build_from_snapshot`](crate::CacheBuilder::build_from_snapshot)), until
    /// their next rebuild.
    pub graphs_restored: u64,
    /// Partition rebuilds completed (compactions and flat-to-graph promotions).
    pub rebuilds: u64,
    /// Periodic snapshots written.
    pub snapshots_saved: u64,
    /// Periodic snapshots that failed.
    pub snapshot_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) exact_hits: AtomicU64,
    pub(crate) alias_hits: AtomicU64,
    pub(crate) guard_rejections: AtomicU64,
    pub(crate) pair_check_rejections: AtomicU64,
    pub(crate) verifier_calls: AtomicU64,
    pub(crate) verifier_rejections: AtomicU64,
    pub(crate) semantic_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) probe_misses: AtomicU64,
    pub(crate) inserts: AtomicU64,
    pub(crate) evicted_size: AtomicU64,
    pub(crate) evicted_expired: AtomicU64,
    pub(crate) evicted_explicit: AtomicU64,
    pub(crate) evicted_replaced: AtomicU64,
    pub(crate) embed_calls: AtomicU64,
    pub(crate) compute_calls: AtomicU64,
    pub(crate) rebuilds: AtomicU64,
    pub(crate) snapshots_saved: AtomicU64,
    pub(crate) snapshot_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, entries: u64, index: crate::partitions::IndexTotals) -> Stats {
        Stats {
            exact_hits: self.exact_hits.load(Relaxed),
            alias_hits: self.alias_hits.load(Relaxed),
            guard_rejections: self.guard_rejections.load(Relaxed),
            pair_check_rejections: self.pair_check_rejections.load(Relaxed),
            verifier_calls: self.verifier_calls.load(Relaxed),
            verifier_rejections: self.verifier_rejections.load(Relaxed),
            semantic_hits: self.semantic_hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            probe_misses: self.probe_misses.load(Relaxed),
            inserts: self.inserts.load(Relaxed),
            evicted_size: self.evicted_size.load(Relaxed),
            evicted_expired: self.evicted_expired.load(Relaxed),
            evicted_explicit: self.evicted_explicit.load(Relaxed),
            evicted_replaced: self.evicted_replaced.load(Relaxed),
            embed_calls: self.embed_calls.load(Relaxed),
            compute_calls: self.compute_calls.load(Relaxed),
            entries,
            index_live: index.live,
            index_dead: index.dead,
            index_pending: index.pending,
            graphs_restored: index.restored,
            rebuilds: self.rebuilds.load(Relaxed),
            snapshots_saved: self.snapshots_saved.load(Relaxed),
            snapshot_errors: self.snapshot_errors.load(Relaxed),
        }
    }
}
