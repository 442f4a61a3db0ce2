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

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use super::beam::Beam;
use super::codes::{Quantized, quantize};
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

/// Slots per block of codes.
const BLOCK: usize = 4096;

/// The codes of up to [`BLOCK`] consecutive slots.
struct CodeBlock {
    /// `dim` codes per slot, slot after slot.
    codes: Box<[i8]>,
    /// What one code unit is worth for each slot; 0 where the slot has no vector.
    scales: Box<[f32]>,
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
        query.sim(codes, scale)
    }

    /// How far [`FrozenGraph::sim`] can lie from the similarity of the query as given and the
    /// stored vector (infinite for a slot without codes).
    fn error_bound(&self, query: &Quantized, slot: u32) -> f32 {
        self.code(slot)
            .map_or(f32::INFINITY, |(_, scale)| query.error_bound(scale))
    }

    /// Start fetching `slot`'s codes into the cache.
    #[inline]
    fn prefetch(&self, slot: u32) {
        // Without reading the scale: that read would wait for its line, the stall the prefetch
        // is there to hide.
        let slot = slot as usize;
        let Some(block) = self.blocks.get(slot / BLOCK) else {
            return;
        };
        let i = slot % BLOCK;
        if let Some(codes) = block.codes.get(i * self.dim..(i + 1) * self.dim) {
            super::prefetch::lines(codes);
        }
        if let Some(scale) = block.scales.get(i..=i) {
            super::prefetch::lines(scale);
        }
    }

    /// Start a walk towards `query`: descend the upper layers greedily to the layer-0 start.
    /// Nothing on layer 0 is searched until [`Walk::widen`].
    pub(crate) fn walk(self: &Arc<Self>, query: &[f32]) -> Walk {
        let mut walk = Walk {
            view: Arc::clone(self),
            query: Quantized::new(query),
            scratch: WalkScratch::take(),
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
        let scratch = &mut walk.scratch;
        scratch.visited.reset(self.covered);
        scratch.visited.insert(cur);
        scratch.beam.offer(Best(cur_sim, cur), usize::MAX);
        walk
    }
}

/// A slot a walk found, ranked on codes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Approximate {
    pub(crate) slot: usize,
    /// Similarity of the codes.
    pub(crate) sim: f32,
    /// The most the similarity of the query as given and the stored vector can be.
    pub(crate) ceiling: f32,
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
    /// Taken from this thread's reusable scratch; given back on drop.
    scratch: WalkScratch,
    ef: usize,
}

/// A walk's working memory. One per thread, reused by every walk on that thread, so a lookup
/// allocates none of it: the passed list alone grows to a few thousand entries at ef 64, and
/// growing it afresh each time cost a lookup a tenth of its time in malloc and memmove (perf).
#[derive(Default)]
struct WalkScratch {
    /// The `ef` most similar slots seen, and which of them are expanded.
    beam: Beam,
    /// Slots seen but not (or no longer) among the best at the beam width of the time.
    passed: Vec<Best>,
    /// The unvisited neighbours of the slot being expanded.
    fresh: Vec<u32>,
    /// Their approximate similarities (`-inf` for a slot without codes).
    sims: Vec<f32>,
    visited: Visited,
}

impl WalkScratch {
    /// This thread's scratch, emptied (a fresh one where the thread-local is gone or in use).
    fn take() -> Self {
        let mut s = SCRATCH.try_with(|v| v.take()).unwrap_or_default();
        s.beam.clear();
        s.passed.clear();
        s.fresh.clear();
        s.sims.clear();
        s
    }
}

impl Walk {
    /// Search layer 0 until the beam of width `ef` settles. A width at or below the current one
    /// changes nothing.
    pub(crate) fn widen(&mut self, ef: usize) {
        if ef <= self.ef {
            return;
        }
        self.ef = ef;
        let view = Arc::clone(&self.view);
        let query = &self.query;
        let s = &mut self.scratch;
        // What the narrower beam passed over is offered again; what the wider one passes over
        // too lands in a new list, which then moves into the old list's allocation.
        let mut passed = std::mem::take(&mut s.passed);
        for &b in &passed {
            s.offer(b, ef);
        }
        passed.clear();
        passed.append(&mut s.passed);
        s.passed = passed;
        while let Some(Best(_, slot)) = s.beam.expand_next() {
            // Three passes over the neighbours instead of one, so the unpredictable branches
            // (visited or not, in the beam or not) do not sit between the fetches and the dot
            // products: the unvisited ones are gathered without a branch, all their similarities
            // computed, then offered. perf on a small view (all in cache) had the one-pass loop
            // spend most of its time on mispredicted branches.
            let neighbours = view.neighbours(slot as usize);
            let mut fresh = std::mem::take(&mut s.fresh);
            fresh.clear();
            fresh.resize(neighbours.len(), 0);
            let mut len = 0;
            for &n in neighbours {
                fresh[len] = n;
                len += usize::from(s.visited.insert_unpredictable(n));
            }
            fresh.truncate(len);
            // Each neighbour's codes are on their way from memory a few dot products before
            // they are needed.
            let mut sims = std::mem::take(&mut s.sims);
            sims.clear();
            super::prefetch::each_ahead(
                &fresh,
                |&n| view.prefetch(n),
                |&n| sims.push(view.sim(query, n).unwrap_or(f32::NEG_INFINITY)),
            );
            for (&n, &sim) in fresh.iter().zip(&sims) {
                if sim > f32::NEG_INFINITY {
                    s.offer(Best(sim, n), ef);
                }
            }
            s.fresh = fresh;
            s.sims = sims;
        }
    }

    /// The slots the beam holds, best first (the beam keeps them so), with approximate
    /// similarities and how high their exact ones can be: the caller rescores with the full
    /// vectors what may matter.
    pub(crate) fn found(&self) -> Vec<Approximate> {
        self.scratch
            .beam
            .iter()
            .map(|Best(sim, slot)| Approximate {
                slot: slot as usize,
                sim,
                ceiling: sim + self.view.error_bound(&self.query, slot),
            })
            .collect()
    }

    /// Slots `0..covered()` are searched by the walk; later ones belong to the segment's tail.
    pub(crate) fn covered(&self) -> usize {
        self.view.covered
    }

    /// The query's codes.
    pub(crate) fn query(&self) -> &Quantized {
        &self.query
    }
}

impl WalkScratch {
    /// Keep `b` if it ranks within a beam of width `ef` (and expand it later), else remember it
    /// as passed.
    fn offer(&mut self, b: Best, ef: usize) {
        if let Some(out) = self.beam.offer(b, ef) {
            self.passed.push(out);
        }
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        let scratch = std::mem::take(&mut self.scratch);
        // During thread teardown the slot may be gone; the scratch is then simply freed.
        let _ = SCRATCH.try_with(|v| *v.borrow_mut() = scratch);
    }
}

/// Orders by similarity, most similar on top of a max-heap (`Reverse` puts the least on top).
#[derive(Clone, Copy, Debug)]
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

    /// [`Visited::insert`] without a branch on the answer, for loops where it is a coin flip.
    #[inline]
    fn insert_unpredictable(&mut self, slot: u32) -> bool {
        match self.stamps.get_mut(slot as usize) {
            Some(s) => {
                let fresh = *s != self.current;
                *s = self.current;
                fresh
            }
            None => false,
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
    static SCRATCH: RefCell<WalkScratch> = RefCell::new(WalkScratch::default());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vector::half::narrow;

    /// The `k` best of a walk at beam width `ef`.
    fn find(v: FrozenGraph, q: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        let mut walk = Arc::new(v).walk(q);
        walk.widen(ef);
        let mut found: Vec<(usize, f32)> = walk.found().iter().map(|a| (a.slot, a.sim)).collect();
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
    fn a_found_slot_is_never_more_similar_than_its_ceiling() {
        // Random unit vectors, and spiky ones (one large component, so a coarse code unit),
        // whose rounding errors are the largest the codes make.
        let mut vs = random_units(300, 384, 9);
        for (i, v) in random_units(100, 384, 10).into_iter().enumerate() {
            let mut v = v.to_vec();
            v[i % 384] = 3.0;
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            vs.push(Arc::from(v.into_iter().map(|x| x / n).collect::<Vec<_>>()));
        }
        // And the worst case: components half a code unit minus a little from a code, so each
        // rounds by almost half a unit, queried along the sign of those errors (a query whose
        // components are all equal in size, so its own codes are exact). The codes then miss
        // the dot product by nearly the whole bound.
        let mut adversarial = Vec::new();
        for r in random_units(20, 384, 12) {
            let v: Vec<f32> = (0..384)
                .map(|j| match j {
                    0 => 127.0,
                    _ => (r[j] * 200.0).round().clamp(-100.0, 100.0) + 0.45 * r[j].signum(),
                })
                .collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let v: Vec<f32> = v.into_iter().map(|x| x / n).collect();
            let rounded = widen(&narrow(&v));
            let q = Quantized::new(&rounded);
            let signs: Vec<f32> = (0..384)
                .map(|j| (q.codes[j] as f32 * q.scale - rounded[j]).signum() / (384f32).sqrt())
                .collect();
            vs.push(Arc::from(v));
            adversarial.push((vs.len() - 1, Arc::<[f32]>::from(signs)));
        }
        let n = vs.len() as u32;
        let all: Vec<u32> = (0..n).collect();
        let view = Arc::new(FrozenGraph::build(
            None,
            0,
            vs.len(),
            vs.iter().map(|v| Some(narrow(v))).collect(),
            GraphLinks {
                points: (0..n)
                    .map(|slot| ExportedPoint {
                        slot,
                        layers: vec![all.clone()],
                        vector: None,
                    })
                    .collect(),
                entry: Some(0),
            },
        ));
        let mut widest = 0f32;
        for q in vs.iter().step_by(7).chain(&random_units(20, 384, 11)) {
            let mut walk = view.walk(q);
            walk.widen(vs.len());
            let found = walk.found();
            assert_eq!(found.len(), vs.len());
            for a in found {
                let exact = crate::vector::half::similarity_to(q, &narrow(&vs[a.slot]));
                let bound = a.ceiling - a.sim;
                assert!(
                    (exact - a.sim).abs() <= bound,
                    "slot {}: codes {} exact {exact} bound {bound}",
                    a.slot,
                    a.sim
                );
                widest = widest.max(bound);
            }
        }
        for (slot, q) in &adversarial {
            let mut walk = view.walk(q);
            walk.widen(vs.len());
            let a = walk.found().into_iter().find(|a| a.slot == *slot).unwrap();
            let exact = crate::vector::half::similarity_to(q, &narrow(&vs[a.slot]));
            let bound = a.ceiling - a.sim;
            assert!((exact - a.sim).abs() <= bound, "adversarial slot {slot}");
            assert!(
                (exact - a.sim).abs() > 0.8 * bound,
                "the case is as bad as it gets"
            );
        }
        assert!(
            widest < 0.2,
            "a bound that skips nothing helps nothing: {widest}"
        );
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
        // The branch-free form answers the same, and a slot beyond the set is never new.
        assert!(v.insert_unpredictable(1));
        assert!(!v.insert_unpredictable(1) && !v.insert_unpredictable(0));
        assert!(!v.insert_unpredictable(4) && !v.insert(4));
    }
}
