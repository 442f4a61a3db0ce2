//! A frozen copy of the HNSW graph's links in a flat layout, and the beam search over it.
//!
//! A graph engine (src/vector/link_graph.rs, or hnsw_rs) builds and maintains the graph, and
//! takes one writer at a time. Searching hnsw_rs in place cost about ten times the distance
//! kernel per evaluation (each neighbour an `Arc` behind a lock, every candidate an `Arc` clone,
//! a SipHash visited set); searching either engine in place would also wait on its writer. The
//! view copies the links into `u32` arrays and the vectors into contiguous 8-bit codes once per
//! batch of inserts, and searches
//! them with a stamped visited array, so a lookup pays for little besides fetching codes and the
//! dot products. The segment rescores what the walk found with the full vectors. Slots added
//! after the copy are scanned exactly by the segment until the next copy (the tail), so nothing
//! inserted is ever invisible.

use simsimd::SpatialSimilarity;
use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use super::half::{HalfVector, widen};

/// One graph point as exported: its slot and its neighbour slots, layer 0 first.
pub(crate) struct ExportedPoint {
    pub(crate) slot: u32,
    pub(crate) layers: Vec<Vec<u32>>,
    /// The engine's handle on the vector (hnsw_rs: a copy), when the exporter was asked for it.
    pub(crate) vector: Option<HalfVector>,
}

/// The links of a whole graph, as an engine exports them.
pub(crate) struct GraphLinks {
    pub(crate) points: Vec<ExportedPoint>,
    /// Where every search starts (a point of the top layer).
    pub(crate) entry: Option<u32>,
}

/// The flat, immutable search structure over slots `0..covered`.
pub(crate) struct FrozenGraph {
    covered: usize,
    /// Length of every vector the view holds codes for; 0 while it holds none.
    dim: usize,
    /// The slots' vectors as 8-bit codes, [`BLOCK`] slots per block. A rebuilt view shares every
    /// full block with the view before it, so a refreeze re-quantizes only the last one.
    blocks: Vec<Arc<CodeBlock>>,
    /// Layer 0 in CSR form: the neighbours of slot `s` are `links[offsets[s]..offsets[s + 1]]`.
    offsets: Vec<u32>,
    links: Vec<u32>,
    /// `upper[l - 1]` maps a slot present on layer `l` to its neighbours there.
    upper: Vec<HashMap<u32, Box<[u32]>>>,
    entry: Option<u32>,
}

/// Neighbours whose codes are requested ahead of the one being compared: far enough for a fetch
/// from memory to finish behind a few dot products, near enough that the lines are still in L1.
const PREFETCH_AHEAD: usize = 4;

/// Slots per block of codes.
const BLOCK: usize = 4096;

/// The codes of up to [`BLOCK`] consecutive slots.
struct CodeBlock {
    /// `dim` codes per slot, slot after slot.
    codes: Box<[i8]>,
    /// What one code unit is worth for each slot; 0 where the slot has no vector.
    scales: Box<[f32]>,
}

/// A vector as 8-bit codes and the value of one code unit.
///
/// The graph walk only has to rank neighbours well enough to steer; the segment rescores what it
/// returns with the full vectors, so every similarity the cache decides on is exact. Codes are a
/// quarter of the bytes of `f32`, and a walk at 100k entries is bound by fetching them from
/// memory (BENCHMARKS.md). Each vector gets its own scale (its largest component maps to 127),
/// which keeps the rounding error of a 384-d unit vector's dot product near 1e-3.
struct Quantized {
    codes: Vec<i8>,
    scale: f32,
}

impl Quantized {
    fn new(v: &[f32]) -> Self {
        let mut codes = vec![0i8; v.len()];
        let scale = quantize(v, &mut codes);
        Quantized { codes, scale }
    }
}

/// Write `v`'s codes into `out` and return the scale; 0 (and zero codes) for a vector with no
/// finite non-zero component, which validated vectors never are.
fn quantize(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if !(max > 0.0 && max.is_finite()) {
        return 0.0;
    }
    let unit = max / 127.0;
    for (o, x) in out.iter_mut().zip(v) {
        // `as` saturates, and |x / unit| <= 127 by construction.
        *o = (x / unit).round() as i8;
    }
    unit
}

impl FrozenGraph {
    /// An empty view (covers nothing; the segment scans every slot).
    pub(crate) fn empty() -> Self {
        FrozenGraph {
            covered: 0,
            dim: 0,
            blocks: Vec::new(),
            offsets: vec![0],
            links: Vec::new(),
            upper: Vec::new(),
            entry: None,
        }
    }

    /// Build the view over slots `0..covered`. `base`, when given, is the previous view and
    /// covers slots `0..since`: its links stand for every point `graph` does not re-export, and
    /// its codes for those slots are kept. `fresh` holds the vectors of slots `since..covered`
    /// (`None` for a dead slot, whose vector then comes from the export).
    pub(crate) fn build(
        base: Option<&FrozenGraph>,
        since: usize,
        covered: usize,
        fresh: Vec<Option<HalfVector>>,
        graph: GraphLinks,
    ) -> Self {
        let since = base.map_or(0, |b| since.min(b.covered));
        let mut vectors = fresh;
        vectors.resize(covered.saturating_sub(since), None);
        let mut upper = base.map_or(Vec::new(), |b| b.upper.clone());
        let mut layer0: Vec<Option<Vec<u32>>> = vec![None; covered];
        let inside = |s: &u32| (*s as usize) < covered;
        for p in graph.points {
            let slot = p.slot as usize;
            if slot >= covered {
                continue;
            }
            if let Some(v) = slot.checked_sub(since).and_then(|i| vectors.get_mut(i))
                && v.is_none()
            {
                *v = p.vector;
            }
            for (layer, list) in p.layers.into_iter().enumerate() {
                let list: Vec<u32> = list.into_iter().filter(inside).collect();
                if layer == 0 {
                    layer0[slot] = Some(list);
                } else {
                    if upper.len() < layer {
                        upper.resize_with(layer, HashMap::new);
                    }
                    upper[layer - 1].insert(p.slot, list.into_boxed_slice());
                }
            }
        }
        let mut offsets = Vec::with_capacity(covered + 1);
        let mut links =
            Vec::with_capacity(base.map_or(0, |b| b.links.len()) + 32 * (covered - since));
        offsets.push(0u32);
        for (slot, list) in layer0.into_iter().enumerate() {
            match (list, base) {
                (Some(list), _) => links.extend(list),
                (None, Some(b)) if slot < since => links.extend_from_slice(b.neighbours(slot)),
                (None, _) => {}
            }
            offsets.push(links.len() as u32);
        }
        let entry = graph.entry.filter(inside);
        // The top layer is the highest one holding the entry point.
        while let Some(top) = upper.last() {
            if entry.is_some_and(|e| top.contains_key(&e)) {
                break;
            }
            upper.pop();
        }
        let dim = base
            .map_or(0, |b| b.dim)
            .max(vectors.iter().flatten().next().map_or(0, |v| v.len()));
        let blocks = Self::code_blocks(base, since, covered, dim, &vectors);
        FrozenGraph {
            covered,
            dim,
            blocks,
            offsets,
            links,
            upper,
            entry,
        }
    }

    /// The code blocks for slots `0..covered`: `base`'s blocks that lie wholly below `since`
    /// shared, the rest built from `base`'s codes below `since` and `vectors` (slots
    /// `since..covered`) above it.
    fn code_blocks(
        base: Option<&FrozenGraph>,
        since: usize,
        covered: usize,
        dim: usize,
        vectors: &[Option<HalfVector>],
    ) -> Vec<Arc<CodeBlock>> {
        let shared = since / BLOCK;
        let mut blocks: Vec<Arc<CodeBlock>> = base.map_or(Vec::new(), |b| {
            b.blocks.iter().take(shared).cloned().collect()
        });
        for first in (shared * BLOCK..covered).step_by(BLOCK) {
            let len = BLOCK.min(covered - first);
            let mut codes = vec![0i8; len * dim].into_boxed_slice();
            let mut scales = vec![0f32; len].into_boxed_slice();
            for i in 0..len {
                let slot = first + i;
                let out = &mut codes[i * dim..(i + 1) * dim];
                if slot < since {
                    if let Some((c, s)) = base.and_then(|b| b.code(slot as u32)) {
                        out.copy_from_slice(c);
                        scales[i] = s;
                    }
                } else if let Some(Some(v)) = vectors.get(slot - since)
                    && v.len() == dim
                {
                    scales[i] = quantize(&widen(v), out);
                }
            }
            blocks.push(Arc::new(CodeBlock { codes, scales }));
        }
        blocks
    }

    fn neighbours(&self, slot: usize) -> &[u32] {
        let (from, to) = (self.offsets[slot] as usize, self.offsets[slot + 1] as usize);
        &self.links[from..to]
    }

    /// Slots `0..covered()` are searched here; later ones belong to the segment's tail.
    pub(crate) fn covered(&self) -> usize {
        self.covered
    }

    /// The codes and scale of `slot`, if the view holds its vector.
    #[inline]
    fn code(&self, slot: u32) -> Option<(&[i8], f32)> {
        let slot = slot as usize;
        let block = self.blocks.get(slot / BLOCK)?;
        let i = slot % BLOCK;
        let scale = *block.scales.get(i)?;
        if scale == 0.0 {
            return None;
        }
        Some((block.codes.get(i * self.dim..(i + 1) * self.dim)?, scale))
    }

    /// Approximate similarity of the query and `slot`'s vector.
    #[inline]
    fn sim(&self, query: &Quantized, slot: u32) -> Option<f32> {
        let (codes, scale) = self.code(slot)?;
        let dot = <i8 as SpatialSimilarity>::dot(&query.codes, codes)? as f32;
        Some(dot * query.scale * scale)
    }

    /// Start fetching `slot`'s codes into the cache.
    #[inline]
    fn prefetch(&self, slot: u32) {
        if let Some((codes, _)) = self.code(slot) {
            super::prefetch::lines(codes);
        }
    }

    /// Start a walk towards `query`: descend the upper layers greedily to the layer-0 start.
    /// Nothing on layer 0 is searched until [`Walk::widen`].
    pub(crate) fn walk(self: &Arc<Self>, query: &[f32]) -> Walk {
        let mut walk = Walk {
            view: Arc::clone(self),
            query: Quantized::new(query),
            frontier: BinaryHeap::new(),
            best: BinaryHeap::new(),
            passed: Vec::new(),
            fresh: Vec::new(),
            visited: VISITED.try_with(|v| v.take()).unwrap_or_default(),
            ef: 0,
        };
        let start = (query.len() == self.dim)
            .then_some(self.entry)
            .flatten()
            .and_then(|e| Some((e, self.sim(&walk.query, e)?)));
        let Some((mut cur, mut cur_sim)) = start else {
            return walk;
        };
        for layer in self.upper.iter().rev() {
            loop {
                let mut moved = false;
                for &n in layer.get(&cur).map_or(&[][..], |l| &l[..]) {
                    if let Some(s) = self.sim(&walk.query, n)
                        && s > cur_sim
                    {
                        (cur, cur_sim, moved) = (n, s, true);
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        walk.visited.reset(self.covered);
        walk.visited.insert(cur);
        walk.frontier.push(Best(cur_sim, cur));
        walk.best.push(Reverse(Best(cur_sim, cur)));
        walk
    }
}

/// A beam search over one view that can be widened where it stopped.
///
/// Adaptive search probes with a narrow beam and, when that finds no hit, needs the answer of a
/// wide one. Widening keeps everything the probe computed: the slots it kept, the ones it passed
/// over (they may belong in the wider beam) and the visited set. The wide answer then costs
/// only the evaluations a wide search from scratch would have made beyond the probe's.
pub(crate) struct Walk {
    view: Arc<FrozenGraph>,
    query: Quantized,
    /// Pops the most similar unexpanded slot.
    frontier: BinaryHeap<Best>,
    /// The `ef` most similar slots seen; pops the least similar.
    best: BinaryHeap<Reverse<Best>>,
    /// Slots seen but not (or no longer) among the best at the beam width of the time.
    passed: Vec<Best>,
    /// The unvisited neighbours of the slot being expanded (kept to reuse its allocation).
    fresh: Vec<u32>,
    /// Taken from this thread's reusable set; given back on drop.
    visited: Visited,
    ef: usize,
}

impl Walk {
    /// Search layer 0 until the beam of width `ef` settles. A width at or below the current one
    /// changes nothing.
    pub(crate) fn widen(&mut self, ef: usize) {
        if ef <= self.ef {
            return;
        }
        self.ef = ef;
        for b in std::mem::take(&mut self.passed) {
            self.offer(b);
        }
        let view = Arc::clone(&self.view);
        while let Some(&Best(sim, slot)) = self.frontier.peek() {
            if self.best.len() >= self.ef && self.best.peek().is_some_and(|w| sim < w.0.0) {
                break;
            }
            self.frontier.pop();
            let mut fresh = std::mem::take(&mut self.fresh);
            fresh.clear();
            fresh.extend(
                view.neighbours(slot as usize)
                    .iter()
                    .copied()
                    .filter(|&n| self.visited.insert(n)),
            );
            // Each neighbour's codes are on their way from memory a few dot products before
            // they are needed, so fetches overlap the arithmetic instead of queueing.
            for &n in fresh.iter().take(PREFETCH_AHEAD) {
                view.prefetch(n);
            }
            for (i, &n) in fresh.iter().enumerate() {
                if let Some(&ahead) = fresh.get(i + PREFETCH_AHEAD) {
                    view.prefetch(ahead);
                }
                if let Some(s) = view.sim(&self.query, n) {
                    self.offer(Best(s, n));
                }
            }
            self.fresh = fresh;
        }
    }

    /// Keep `b` if it ranks within the beam (and expand it later), else remember it as passed.
    fn offer(&mut self, b: Best) {
        if self.best.len() < self.ef || self.best.peek().is_some_and(|w| b.0 > w.0.0) {
            self.frontier.push(b);
            self.best.push(Reverse(b));
            if self.best.len() > self.ef
                && let Some(Reverse(out)) = self.best.pop()
            {
                self.passed.push(out);
            }
        } else {
            self.passed.push(b);
        }
    }

    /// The slots the beam holds, best first, with approximate similarities: the caller rescores
    /// them with the full vectors.
    pub(crate) fn found(&self) -> Vec<(usize, f32)> {
        let mut out: Vec<(usize, f32)> = self
            .best
            .iter()
            .map(|Reverse(Best(s, slot))| (*slot as usize, *s))
            .collect();
        out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// Slots `0..covered()` are searched by the walk; later ones belong to the segment's tail.
    pub(crate) fn covered(&self) -> usize {
        self.view.covered
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        let visited = std::mem::take(&mut self.visited);
        // During thread teardown the slot may be gone; the set is then simply freed.
        let _ = VISITED.try_with(|v| *v.borrow_mut() = visited);
    }
}

/// Orders by similarity, most similar on top of a max-heap (`Reverse` puts the least on top).
#[derive(Clone, Copy)]
pub(crate) struct Best(pub(crate) f32, pub(crate) u32);

impl PartialEq for Best {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Best {}
impl PartialOrd for Best {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Best {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// A visited set that clears in O(1): a slot is visited when its stamp equals the current one.
/// One per thread, reused by every search of every view on that thread.
#[derive(Default)]
pub(crate) struct Visited {
    stamps: Vec<u32>,
    current: u32,
}

impl Visited {
    pub(crate) fn reset(&mut self, len: usize) {
        if self.stamps.len() < len {
            self.stamps.resize(len, 0);
        }
        self.current = self.current.wrapping_add(1);
        if self.current == 0 {
            self.stamps.fill(0);
            self.current = 1;
        }
    }

    /// `true` if `slot` was not visited yet (and marks it).
    pub(crate) fn insert(&mut self, slot: u32) -> bool {
        match self.stamps.get_mut(slot as usize) {
            Some(s) if *s != self.current => {
                *s = self.current;
                true
            }
            _ => false,
        }
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vector::half::narrow;

    /// The `k` best of a walk at beam width `ef`.
    fn find(v: FrozenGraph, q: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        let mut walk = Arc::new(v).walk(q);
        walk.widen(ef);
        let mut found = walk.found();
        found.truncate(k);
        found
    }

    fn unit(angle: f32) -> Arc<[f32]> {
        Arc::from(vec![angle.cos(), angle.sin()])
    }

    /// A ring of 8 points on the unit circle, each linked to its two ring neighbours.
    fn ring() -> FrozenGraph {
        let n = 8u32;
        let vectors = (0..n)
            .map(|i| Some(narrow(&unit(i as f32 * std::f32::consts::TAU / n as f32))))
            .collect();
        let points = (0..n)
            .map(|i| ExportedPoint {
                slot: i,
                layers: vec![vec![(i + 1) % n, (i + n - 1) % n]],
                vector: None,
            })
            .collect();
        FrozenGraph::build(
            None,
            0,
            n as usize,
            vectors,
            GraphLinks {
                points,
                entry: Some(0),
            },
        )
    }

    #[test]
    fn beam_walks_the_ring_to_the_nearest_slot() {
        let q = unit(4.0 * std::f32::consts::TAU / 8.0 + 0.1);
        let found = find(ring(), &q, 2, 2);
        assert_eq!(found[0].0, 4);
        assert_eq!(found[1].0, 5);
        assert!(found[0].1 > found[1].1);
    }

    #[test]
    fn links_beyond_covered_are_dropped_and_missing_vectors_skipped() {
        let points = vec![
            ExportedPoint {
                slot: 0,
                layers: vec![vec![1, 2]],
                vector: None,
            },
            ExportedPoint {
                slot: 1,
                layers: vec![vec![0, 2]],
                vector: Some(narrow(&unit(0.5))),
            },
        ];
        // Slot 1's vector comes from the export; slot 2 is beyond `covered`.
        let v = FrozenGraph::build(
            None,
            0,
            2,
            vec![Some(narrow(&unit(0.0))), None, Some(narrow(&unit(1.0)))],
            GraphLinks {
                points,
                entry: Some(0),
            },
        );
        assert_eq!(v.covered(), 2);
        let found = find(v, &unit(0.6), 3, 8);
        assert_eq!(
            found.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![1, 0],
            "slot 2 lies beyond the view"
        );
    }

    /// Deterministic pseudo-random unit vectors (shared with the other vector modules' tests).
    pub(crate) fn random_units(n: usize, dim: usize, seed: u64) -> Vec<Arc<[f32]>> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                    })
                    .collect();
                let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
                Arc::from(v.into_iter().map(|a| a / n).collect::<Vec<_>>())
            })
            .collect()
    }

    #[test]
    fn codes_estimate_the_dot_product_closely() {
        let vs = random_units(200, 384, 1);
        let mut worst = 0f32;
        for pair in vs.chunks(2) {
            let (a, b) = (Quantized::new(&pair[0]), Quantized::new(&pair[1]));
            let approx = <i8 as SpatialSimilarity>::dot(&a.codes, &b.codes).unwrap() as f32
                * a.scale
                * b.scale;
            let exact: f32 = pair[0].iter().zip(&*pair[1]).map(|(x, y)| x * y).sum();
            worst = worst.max((approx - exact).abs());
        }
        assert!(worst < 0.01, "worst error {worst}");
        assert_eq!(
            quantize(&[0.0, 0.0], &mut [0, 0]),
            0.0,
            "no scale for a zero vector"
        );
        assert_eq!(quantize(&[f32::INFINITY, 1.0], &mut [0, 0]), 0.0);
    }

    /// A chain over `vs` entered at `entry`: slot i links to i - 1 and i + 1.
    fn chain(vs: &[Arc<[f32]>], from: usize, entry: u32) -> GraphLinks {
        let n = vs.len() as u32;
        GraphLinks {
            points: (from as u32..n)
                .map(|i| ExportedPoint {
                    slot: i,
                    layers: vec![vec![i.saturating_sub(1), (i + 1).min(n - 1)]],
                    vector: None,
                })
                .collect(),
            entry: Some(entry),
        }
    }

    #[test]
    fn incremental_builds_share_full_code_blocks_and_keep_their_codes() {
        let vs = random_units(BLOCK * 2 + 100, 8, 3);
        let first = BLOCK + 50;
        let fresh = |r: std::ops::Range<usize>| vs[r].iter().map(|v| Some(narrow(v))).collect();
        let a = FrozenGraph::build(None, 0, first, fresh(0..first), chain(&vs[..first], 0, 0));
        let b = FrozenGraph::build(
            Some(&a),
            first,
            vs.len(),
            fresh(first..vs.len()),
            chain(&vs, first, (BLOCK + 69) as u32),
        );
        assert!(
            Arc::ptr_eq(&a.blocks[0], &b.blocks[0]),
            "the full block is shared"
        );
        assert!(
            !Arc::ptr_eq(&a.blocks[1], &b.blocks[1]),
            "the partial one is rebuilt"
        );
        assert_eq!(b.blocks.len(), 3);
        for slot in [0, BLOCK - 1, BLOCK, first - 1, first, vs.len() - 1] {
            let mut codes = vec![0i8; 8];
            let scale = quantize(&widen(&narrow(&vs[slot])), &mut codes);
            assert_eq!(
                b.code(slot as u32),
                Some((&codes[..], scale)),
                "slot {slot}"
            );
        }
        // Searched on the rebuilt block's codes, the query's own slot is the best next door.
        let found = find(b, &vs[BLOCK + 70], 1, 16);
        assert_eq!(found[0].0, BLOCK + 70);
    }

    #[test]
    fn empty_view_finds_nothing() {
        assert!(find(FrozenGraph::empty(), &unit(0.0), 1, 4).is_empty());
    }

    #[test]
    fn visited_stamps_survive_wraparound() {
        let mut v = Visited {
            stamps: vec![u32::MAX; 4],
            current: u32::MAX - 1,
        };
        v.reset(4);
        assert!(!v.insert(0), "stamp u32::MAX is current");
        v.reset(4);
        assert!(v.insert(0), "after wrap every slot is unvisited");
        assert!(!v.insert(0));
    }
}
