//! The approximate-nearest-neighbour graph behind large partitions.
//!
//! Kept behind [`AnnGraph`] so another engine can be measured beside hnsw_rs on the same benchmark.
//! hnsw_rs has no deletion: dead points stay in the graph (they still route searches) until the
//! partition is rebuilt from live vectors.

use super::distance::SimdCosine;
use super::frozen_graph::{ExportedPoint, GraphLinks};
use super::half::{HalfVector, narrow, widen};
use super::saved_graph::SavedGraph;
use crate::key::Key;
use hnsw_rs::hnsw::{Hnsw, Point};
use parking_lot::Mutex;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// An ANN graph over slot ids, maintained by its engine and searched through a
/// [`super::frozen_graph::FrozenGraph`] of its exported links.
pub(crate) trait AnnGraph: Send + Sync {
    /// Add one vector under `slot`. `false` if the engine failed (the caller falls back to a scan).
    fn insert(&self, vector: &HalfVector, slot: usize) -> bool;
    /// Add many vectors using all cores, a chunk at a time so that a build nobody wants any more
    /// (`cancelled`) stops within one chunk instead of running on for minutes. Whether every
    /// vector went in.
    fn insert_batch(&self, items: &[(HalfVector, usize)], cancelled: &dyn Fn() -> bool) -> bool;
    /// The links (and, where `copy_vector(slot)`, the vector) of every point whose links may
    /// have changed since the graph held only slots `0..since`: the points added since and their
    /// neighbours. `since == 0` exports every point. Call with no insert in flight. `None` on
    /// failure.
    fn export(&self, since: usize, copy_vector: &dyn Fn(usize) -> bool) -> Option<GraphLinks>;
    /// The links for a snapshot, nodes named by `key_of(slot)` (`None`: a dead slot), or `None`
    /// where the engine cannot restore links (the caller's scope then rebuilds on load). Call
    /// with no insert in flight.
    fn save(&self, key_of: &dyn Fn(usize) -> Option<Key>) -> Option<SavedGraph>;
}

/// hnsw_rs with simsimd cosine. It keeps its own f32 copy of every vector, widened from the
/// stored halves.
pub(crate) struct HnswGraph {
    inner: Hnsw<'static, f32, SimdCosine>,
    known: Mutex<KnownPoints>,
}

/// hnsw_rs's points by slot, so an export reads only the points it needs.
#[derive(Default)]
struct KnownPoints {
    by_slot: Vec<Option<Arc<Point<'static, f32>>>>,
    /// Points of each layer already recorded (hnsw_rs appends to its layers, never reorders).
    seen: Vec<usize>,
}

/// Vectors a bulk build inserts between two checks that its cache still exists.
const BUILD_CHUNK: usize = 2048;

/// hnsw_rs never builds more layers than this.
const MAX_LAYERS: usize = 16;

impl HnswGraph {
    /// `m` must be at most 256 (hnsw_rs exits the process above that); the builder allows 2..=128.
    pub(crate) fn new(m: usize, ef_construction: usize, expected: usize) -> Self {
        debug_assert!((2..=256).contains(&m));
        HnswGraph {
            inner: Hnsw::new(m, expected.max(1), MAX_LAYERS, ef_construction, SimdCosine),
            known: Mutex::new(KnownPoints::default()),
        }
    }
}

impl AnnGraph for HnswGraph {
    fn insert_batch(&self, items: &[(HalfVector, usize)], cancelled: &dyn Fn() -> bool) -> bool {
        for chunk in items.chunks(BUILD_CHUNK) {
            if cancelled() {
                return false;
            }
            let wide: Vec<Vec<f32>> = chunk.iter().map(|(v, _)| widen(v)).collect();
            let batch: Vec<(&[f32], usize)> = wide
                .iter()
                .zip(chunk)
                .map(|(v, (_, s))| (&v[..], *s))
                .collect();
            if catch_unwind(AssertUnwindSafe(|| {
                self.inner.parallel_insert_slice(&batch)
            }))
            .is_err()
            {
                return false;
            }
        }
        true
    }

    fn insert(&self, vector: &HalfVector, slot: usize) -> bool {
        let wide = widen(vector);
        // hnsw_rs asserts internally; a panic there must not reach the caller of the cache.
        catch_unwind(AssertUnwindSafe(|| self.inner.insert_slice((&wide, slot)))).is_ok()
    }

    fn save(&self, _key_of: &dyn Fn(usize) -> Option<Key>) -> Option<SavedGraph> {
        // hnsw_rs can only load its own two-file dump, not links handed to it.
        None
    }

    fn export(&self, since: usize, copy_vector: &dyn Fn(usize) -> bool) -> Option<GraphLinks> {
        catch_unwind(AssertUnwindSafe(|| {
            let mut known = self.known.lock();
            let index = self.inner.get_point_indexation();
            let top = index.get_max_level_observed() as usize;
            known.seen.resize(top + 1, 0);
            for level in 0..=top {
                let layer = index.get_layer_iterator(level).skip(known.seen[level]);
                for p in layer {
                    known.seen[level] += 1;
                    let slot = p.get_origin_id();
                    if known.by_slot.len() <= slot {
                        known.by_slot.resize(slot + 1, None);
                    }
                    known.by_slot[slot] = Some(p);
                }
            }
            // Per layer, never the whole-index iterator: that one re-locks the layer table while
            // holding it, which can deadlock behind a queued writer.
            let entry = index
                .get_layer_iterator(top)
                .next()
                .map(|p| p.get_origin_id() as u32);
            let export = |p: &Point<'static, f32>| {
                let slot = p.get_origin_id();
                let level = p.get_point_id().0 as usize;
                let mut layers: Vec<Vec<u32>> = p
                    .get_neighborhood_id()
                    .into_iter()
                    .map(|l| l.into_iter().map(|n| n.d_id as u32).collect())
                    .collect();
                layers.truncate(level + 1);
                ExportedPoint {
                    slot: slot as u32,
                    layers,
                    vector: copy_vector(slot).then(|| narrow(p.get_v())),
                }
            };
            let since = since.min(known.by_slot.len());
            let mut points: Vec<ExportedPoint> = known.by_slot[since..]
                .iter()
                .flatten()
                .map(|p| export(p))
                .collect();
            if since > 0 {
                // Inserting a point links its neighbours back to it: re-read those older points.
                let mut touched = vec![false; since];
                for p in &points {
                    for &n in p.layers.iter().flatten() {
                        if let Some(t) = touched.get_mut(n as usize) {
                            *t = true;
                        }
                    }
                }
                let older = touched.iter().enumerate().filter(|(_, t)| **t);
                for (slot, _) in older {
                    if let Some(p) = &known.by_slot[slot] {
                        points.push(export(p));
                    }
                }
            }
            GraphLinks { points, entry }
        }))
        .ok()
    }
}
