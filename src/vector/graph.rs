//! The approximate-nearest-neighbour graph behind large partitions.
//!
//! Kept behind [`AnnGraph`] so another engine can be measured beside hnsw_rs on the same benchmark.
//! hnsw_rs has no deletion: dead points stay in the graph (they still route searches) until the
//! partition is rebuilt from live vectors.

use super::distance::SimdCosine;
use hnsw_rs::hnsw::Hnsw;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// An ANN index over slot ids. Searches return `(slot, similarity)`, best first.
pub(crate) trait AnnGraph: Send + Sync {
    /// Add one vector under `slot`. `false` if the engine failed (the caller falls back to a scan).
    fn insert(&self, vector: &[f32], slot: usize) -> bool;
    /// Up to `k` neighbours of `query`, best first, exploring `ef` candidates. `None` on failure.
    fn search(&self, query: &[f32], k: usize, ef: usize) -> Option<Vec<(usize, f32)>>;
}

/// hnsw_rs with simsimd cosine.
pub(crate) struct HnswGraph {
    inner: Hnsw<'static, f32, SimdCosine>,
}

/// hnsw_rs never builds more layers than this.
const MAX_LAYERS: usize = 16;

impl HnswGraph {
    /// `m` must be at most 256 (hnsw_rs exits the process above that); the builder validates it.
    pub(crate) fn new(m: usize, ef_construction: usize, expected: usize) -> Self {
        debug_assert!((2..=256).contains(&m));
        HnswGraph {
            inner: Hnsw::new(m, expected.max(1), MAX_LAYERS, ef_construction, SimdCosine),
        }
    }

    /// Insert many vectors using all cores (rayon), for rebuilds.
    pub(crate) fn insert_batch(&self, items: &[(&[f32], usize)]) -> bool {
        let batch: Vec<(&[f32], usize)> = items.to_vec();
        catch_unwind(AssertUnwindSafe(|| {
            self.inner.parallel_insert_slice(&batch)
        }))
        .is_ok()
    }
}

impl AnnGraph for HnswGraph {
    fn insert(&self, vector: &[f32], slot: usize) -> bool {
        // hnsw_rs asserts internally; a panic there must not reach the caller of the cache.
        catch_unwind(AssertUnwindSafe(|| self.inner.insert_slice((vector, slot)))).is_ok()
    }

    fn search(&self, query: &[f32], k: usize, ef: usize) -> Option<Vec<(usize, f32)>> {
        let found =
            catch_unwind(AssertUnwindSafe(|| self.inner.search(query, k, ef.max(k)))).ok()?;
        Some(
            found
                .into_iter()
                .map(|n| (n.d_id, 1.0 - n.distance))
                .collect(),
        )
    }
}
