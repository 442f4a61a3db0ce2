//! The semantic tier's storage: one [`partition::Partition`] per scope, each holding a
//! [`segment::Segment`] (slot book + optional HNSW graph) that is rebuilt to drop tombstones.
//!
//! "Distance" lives only in this module; everything above it speaks of similarity.

pub(crate) mod beam;
pub(crate) mod code_dot;
pub(crate) mod codes;
pub(crate) mod distance;
pub(crate) mod frozen_graph;
pub(crate) mod half;
pub(crate) mod half_dot;
pub(crate) mod hnsw_graph;
pub(crate) mod link_graph;
pub(crate) mod partition;
pub(crate) mod prefetch;
pub(crate) mod saved_graph;
pub(crate) mod segment;
pub(crate) mod tail_codes;
pub(crate) mod validate;

use crate::config::GraphEngine;
use crate::key::Key;

/// A vector the index proposes for a query, before the store confirms it is still live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) key: Key,
    pub(crate) seq: u64,
    pub(crate) similarity: f32,
}

/// The similarity a probe's best find must exceed to say anything about where a query lies:
/// five standard deviations (`1/√dim` each) of the cosine of two unrelated unit vectors. A probe
/// that starts in the wrong cluster of well-separated ones compares only such vectors and ends
/// near 0, however close a stored paraphrase is (BENCHMARKS.md, "Deciding misses on the probe").
pub(crate) fn chance_similarity(dim: usize) -> f32 {
    5.0 / (dim.max(1) as f32).sqrt()
}

/// How hard the graph searches and when it widens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SearchParams {
    /// Graph beam width of the final (widest) search, which alone may decide a miss, unless the
    /// probe ended far below the threshold (`miss_margin`).
    pub(crate) ef_search: usize,
    /// Beam width of the first, cheap probe, whose hits are served at once; equal to
    /// `ef_search` disables adaptive search.
    pub(crate) ef_probe: usize,
    /// A probe whose most similar find is below `threshold - miss_margin` decides a miss without
    /// the full beam; 2 (cosine's whole range) never does.
    pub(crate) miss_margin: f32,
}

impl SearchParams {
    /// `ef_search` with the probe adaptive search starts from (a quarter of it, at least 8), or
    /// with no cheap probe at all.
    pub(crate) fn new(ef_search: usize, adaptive: bool, miss_margin: f32) -> Self {
        let ef_probe = if adaptive {
            (ef_search / 4).max(8).min(ef_search)
        } else {
            ef_search
        };
        SearchParams {
            ef_search,
            ef_probe,
            miss_margin,
        }
    }

    /// Everything in one word, so lookups read it with one atomic load (beam widths are at
    /// most 4096, well within 16 bits).
    pub(crate) fn pack(&self) -> u64 {
        ((self.ef_search as u64 & 0xFFFF) << 48)
            | ((self.ef_probe as u64 & 0xFFFF) << 32)
            | u64::from(self.miss_margin.to_bits())
    }

    pub(crate) fn unpack(word: u64) -> Self {
        SearchParams {
            ef_search: (word >> 48) as usize,
            ef_probe: ((word >> 32) & 0xFFFF) as usize,
            miss_margin: f32::from_bits(word as u32),
        }
    }
}

/// Parameters a partition needs to build and compact itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexParams {
    pub(crate) m: usize,
    pub(crate) ef_construction: usize,
    /// Live entries up to which a partition answers by exact scan instead of a graph.
    pub(crate) exact_scan_limit: usize,
    /// Share of dead slots above which a partition is rebuilt.
    pub(crate) max_dead_ratio: f32,
    /// Dead slots below which no rebuild is worth its cost.
    pub(crate) min_dead: usize,
    /// Rebuild graphs on a background thread (else inline, for deterministic tests).
    pub(crate) background: bool,
    pub(crate) engine: GraphEngine,
}

impl IndexParams {
    /// An empty graph of the configured engine, sized for about `expected` points.
    pub(crate) fn new_graph(&self, expected: usize) -> Box<dyn hnsw_graph::AnnGraph> {
        match self.engine {
            GraphEngine::HnswRs => Box::new(hnsw_graph::HnswGraph::new(
                self.m,
                self.ef_construction,
                expected,
            )),
            GraphEngine::Links => Box::new(link_graph::LinkGraph::new(
                self.m,
                self.ef_construction,
                expected,
            )),
        }
    }

    /// The graph `saved` describes over `live` (slot `i` holds `live[i]`), if this engine can
    /// restore links and they still fit (see [`link_graph::LinkGraph::restore`]).
    pub(crate) fn restore_graph(
        &self,
        saved: &saved_graph::SavedGraph,
        live: &[segment::LiveVector],
    ) -> Option<Box<dyn hnsw_graph::AnnGraph>> {
        if self.engine != GraphEngine::Links {
            return None;
        }
        let slot_of: std::collections::HashMap<Key, usize> =
            live.iter().enumerate().map(|(i, lv)| (lv.key, i)).collect();
        let vectors: Vec<half::HalfVector> = live.iter().map(|lv| lv.vector.clone()).collect();
        let graph = link_graph::LinkGraph::restore(
            self.m,
            self.ef_construction,
            saved,
            &|k| slot_of.get(k).copied(),
            &vectors,
        )?;
        Some(Box::new(graph))
    }
}

#[cfg(test)]
mod tests {
    use super::SearchParams;

    #[test]
    fn search_params_survive_their_one_word() {
        for (ef, adaptive, margin) in [(64, true, 0.1), (4096, false, 2.0), (1, true, 0.0)] {
            let p = SearchParams::new(ef, adaptive, margin);
            assert_eq!(SearchParams::unpack(p.pack()), p);
        }
        assert_eq!(SearchParams::new(64, true, 0.1).ef_probe, 16);
        assert_eq!(SearchParams::new(64, false, 0.1).ef_probe, 64);
    }
}
