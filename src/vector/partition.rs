//! A scope's slice of the semantic tier, and its rebuild: copy the live vectors into a fresh
//! segment while lookups and inserts go on against the old one, replay what changed meanwhile,
//! then swap.
//!
//! Lock order: `Partition::segment` before the segment's book. Neither is ever held while the
//! eviction policy or user code is called.

use super::IndexParams;
use super::half::HalfVector;
use super::saved_graph::SavedGraph;
use super::segment::{AfterInsert, LiveVector, SearchActivity, Segment};
use crate::key::Key;
use crate::sync::{AtomicBool, AtomicU64, RwLock};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Per-scope validity shared with every entry of the scope: bumping the generation kills them all
/// at once, in both tiers, before their memory is reclaimed.
#[derive(Debug, Default)]
pub(crate) struct ScopeState {
    pub(crate) generation: AtomicU64,
}

pub(crate) struct Partition {
    segment: RwLock<Arc<Segment>>,
    /// Links a snapshot saved for this scope, used by the next graph build instead of building.
    seed: RwLock<Option<SavedGraph>>,
    /// The current graph came from saved links (until the next rebuild).
    restored: AtomicBool,
    /// The cache's lookup activity, handed to every segment of this partition.
    activity: Arc<SearchActivity>,
    pub(crate) state: Arc<ScopeState>,
    rebuilding: AtomicBool,
    retired: AtomicBool,
}

/// Why (or whether) a partition should be rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rebuild {
    None,
    /// Too many tombstones.
    Compact,
    /// Grew past the exact scan limit: build a graph.
    Promote,
}

impl Partition {
    pub(crate) fn new(activity: Arc<SearchActivity>) -> Self {
        Partition {
            segment: RwLock::new(Arc::new(Segment::flat(activity.clone()))),
            seed: RwLock::new(None),
            restored: AtomicBool::new(false),
            activity,
            state: Arc::new(ScopeState::default()),
            rebuilding: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        }
    }

    pub(crate) fn segment(&self) -> Arc<Segment> {
        self.segment.read().clone()
    }

    /// Have the next graph build link the scope's vectors as `saved` says (a snapshot's links).
    pub(crate) fn seed(&self, saved: SavedGraph) {
        *self.seed.write() = Some(saved);
    }

    /// Whether the current graph was restored from saved links.
    pub(crate) fn is_restored(&self) -> bool {
        self.restored.load(Ordering::Acquire)
    }

    /// The current graph's links for a snapshot, under this scope's encoding.
    pub(crate) fn save_graph(&self, scope: &[u8]) -> Option<SavedGraph> {
        let mut saved = self.segment().save_graph()?;
        saved.scope = scope.to_vec();
        Some(saved)
    }

    /// Add a vector. Returns the scope generation it was added under, or `None` if this partition
    /// was retired (the caller fetches the scope's new partition and tries again).
    /// When the graph has fallen too far behind, waits for its indexer, with no lock held.
    pub(crate) fn insert(&self, key: Key, seq: u64, vector: HalfVector) -> Option<u64> {
        let (generation, seg, after) = {
            // Held across the insert so a rebuild's final catch-up cannot miss it.
            let seg = self.segment.read();
            if self.retired.load(Ordering::Acquire) {
                return None;
            }
            let generation = self.state.generation.load(Ordering::Acquire);
            let after = seg.insert(key, seq, vector);
            (generation, Arc::clone(&seg), after)
        };
        match after {
            AfterInsert::Done => {}
            AfterInsert::Spawn => seg.spawn_indexer(),
            AfterInsert::Wait => seg.wait_for_backlog(),
        }
        Some(generation)
    }

    pub(crate) fn remove(&self, key: &Key, seq: u64) {
        self.segment.read().remove(key, seq);
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Retire an empty partition so its map slot can be dropped; bumps the generation so nothing
    /// that still points at it can be served.
    pub(crate) fn try_retire(&self) -> bool {
        let seg = self.segment.write();
        if seg.counts().0 != 0 || self.rebuilding.load(Ordering::Acquire) {
            return false;
        }
        self.retire_locked(&seg);
        true
    }

    /// Retire unconditionally (scope invalidation, clear).
    pub(crate) fn retire(&self) {
        let seg = self.segment.write();
        self.retire_locked(&seg);
    }

    fn retire_locked(&self, seg: &Segment) {
        seg.abandon();
        self.retired.store(true, Ordering::Release);
        self.state.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn wanted_rebuild(&self, p: &IndexParams) -> Rebuild {
        let seg = self.segment();
        let (live, dead) = seg.counts();
        if !seg.has_graph() && live > p.exact_scan_limit {
            Rebuild::Promote
        } else if dead >= p.min_dead && dead as f32 > p.max_dead_ratio * (live + dead) as f32 {
            Rebuild::Compact
        } else {
            Rebuild::None
        }
    }

    /// Claim the right to rebuild; `false` if another rebuild is running.
    pub(crate) fn claim_rebuild(&self) -> bool {
        self.rebuilding
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Claim the right to rebuild if a rebuild is wanted, asking again once claimed: the first
    /// answer may have read a segment that a rebuild releasing the claim meanwhile replaced,
    /// and would start a second rebuild of the new one (seen as two promotions of one scope).
    pub(crate) fn claim_wanted_rebuild(&self, p: &IndexParams) -> bool {
        if self.wanted_rebuild(p) == Rebuild::None || !self.claim_rebuild() {
            return false;
        }
        if self.wanted_rebuild(p) == Rebuild::None {
            self.release_claim();
            return false;
        }
        true
    }

    /// Give up a claim without rebuilding.
    pub(crate) fn release_claim(&self) {
        self.rebuilding.store(false, Ordering::Release);
    }

    /// Rebuild from live vectors and swap. Call only after a successful [`Self::claim_rebuild`].
    /// Returns whether a new segment was swapped in.
    pub(crate) fn rebuild(&self, p: &IndexParams) -> bool {
        let swapped = self.rebuild_claimed(p);
        self.rebuilding.store(false, Ordering::Release);
        swapped
    }

    fn rebuild_claimed(&self, p: &IndexParams) -> bool {
        let old = self.segment();
        let (live, mut end) = old.begin_copy();
        let seed = self.seed.write().take();
        let mut restored = false;
        let graph = (live.len() > p.exact_scan_limit).then(|| {
            let from_seed = seed.and_then(|s| p.restore_graph(&s, &live));
            restored = from_seed.is_some();
            from_seed.unwrap_or_else(|| p.new_graph(live.len() * 2))
        });
        // A retired partition (its scope purged, the cache cleared or dropped) stops building.
        let retired = || self.retired.load(Ordering::Acquire);
        let Some(fresh) =
            Segment::build(live, graph, p.background, self.activity.clone(), &retired)
        else {
            old.end_copy();
            return false;
        };
        // Catch up without blocking anyone until little is left, so the final catch-up under the
        // write lock (which lookups wait behind) is short even while writers keep inserting. The
        // catch-up only appends: what it adds is scanned exactly until the indexer started after
        // the swap links it into the graph, so inserting faster than a graph can take them never
        // keeps a rebuild from finishing.
        for _ in 0..CATCH_UP_ROUNDS {
            let (added, new_end, removed) = old.copy_since(end);
            end = new_end;
            let small = added.len() < CATCH_UP_SMALL;
            replay(&fresh, added, removed);
            if small {
                break;
            }
        }
        let mut slot = self.segment.write();
        if self.retired.load(Ordering::Acquire) || !Arc::ptr_eq(&slot, &old) {
            old.end_copy();
            return false;
        }
        let (added, _, removed) = old.copy_since(end);
        // Under the lock lookups wait behind: slots are appended, never indexed here.
        replay(&fresh, added, removed);
        old.end_copy();
        let fresh = Arc::new(fresh);
        *slot = fresh.clone();
        self.restored.store(restored, Ordering::Release);
        drop(slot);
        old.abandon();
        fresh.start_indexer();
        true
    }
}

/// Unlocked catch-up passes before the locked one, and the remainder that counts as small.
const CATCH_UP_ROUNDS: usize = 16;
const CATCH_UP_SMALL: usize = 32;

/// Apply what changed in the old segment to the new one's book; the caller has it indexed.
fn replay(fresh: &Segment, added: Vec<LiveVector>, removed: Vec<(Key, u64)>) {
    for lv in added {
        fresh.append(lv.key, lv.seq, lv.vector);
    }
    for (key, seq) in removed {
        fresh.remove(&key, seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GraphEngine;

    fn params(exact_scan_limit: usize) -> IndexParams {
        IndexParams {
            m: 8,
            ef_construction: 32,
            exact_scan_limit,
            max_dead_ratio: 0.25,
            min_dead: 1,
            background: false,
            engine: GraphEngine::Links,
        }
    }

    fn unit(i: usize) -> HalfVector {
        // 0.1 rad apart: neighbours differ by 5e-3 in cosine, far above half precision's 1e-4.
        let a = i as f32 * 0.1;
        crate::vector::half::narrow(&[a.cos(), a.sin()])
    }

    fn key(i: usize) -> Key {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&(i as u64).to_le_bytes());
        k
    }

    #[test]
    fn compaction_drops_dead_and_keeps_live() {
        let p = Partition::new(Default::default());
        for i in 0..10 {
            p.insert(key(i), i as u64, unit(i)).unwrap();
        }
        for i in 0..5 {
            p.remove(&key(i), i as u64);
        }
        assert_eq!(p.wanted_rebuild(&params(100)), Rebuild::Compact);
        assert!(p.claim_rebuild());
        assert!(p.rebuild(&params(100)));
        assert_eq!(p.segment().counts(), (5, 0));
    }

    #[test]
    fn promotion_builds_a_graph_that_finds_its_points() {
        let p = Partition::new(Default::default());
        for i in 0..50 {
            p.insert(key(i), i as u64, unit(i)).unwrap();
        }
        assert_eq!(p.wanted_rebuild(&params(10)), Rebuild::Promote);
        assert!(p.claim_rebuild() && p.rebuild(&params(10)));
        let seg = p.segment();
        assert!(seg.has_graph());
        let found = seg.search(&crate::vector::half::widen(&unit(20)), 1, 32, 0.0);
        assert_eq!(found.candidates[0].seq, 20);
    }

    #[test]
    fn a_claim_is_kept_only_while_a_rebuild_is_still_wanted() {
        let p = Partition::new(Default::default());
        for i in 0..50 {
            p.insert(key(i), i as u64, unit(i)).unwrap();
        }
        assert!(p.claim_wanted_rebuild(&params(10)));
        // Claimed: nobody else may claim until this rebuild ends.
        assert!(!p.claim_wanted_rebuild(&params(10)));
        assert!(p.rebuild(&params(10)));
        // Promoted: asked after the swap, nothing is wanted, and the claim is given back.
        assert!(!p.claim_wanted_rebuild(&params(10)));
        assert!(p.claim_rebuild());
    }

    #[test]
    fn retired_partition_refuses_inserts_and_bumps_generation() {
        let p = Partition::new(Default::default());
        assert!(p.try_retire());
        assert!(p.insert(key(1), 1, unit(1)).is_none());
        assert_eq!(p.state.generation.load(Ordering::Acquire), 1);
    }
}
