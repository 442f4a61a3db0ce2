//! A frozen copy of the HNSW graph's links in a flat layout, and the beam search over it.
//!
//! hnsw_rs builds and maintains the graph; searching it in place costs about ten times the
//! distance kernel per evaluation (each neighbour is an `Arc` behind a lock, every candidate
//! clones an `Arc`, the visited set is a SipHash map). The view copies the links into `u32`
//! arrays once per batch of inserts and searches them with a stamped visited array, so a lookup
//! pays for little besides the dot products. Slots added after the copy are scanned exactly by
//! the segment until the next copy (the tail), so nothing inserted is ever invisible.

use super::distance::similarity;
use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// One graph point as exported: its slot and its neighbour slots, layer 0 first.
pub(crate) struct ExportedPoint {
    pub(crate) slot: u32,
    pub(crate) layers: Vec<Vec<u32>>,
    /// hnsw_rs's copy of the vector, when the exporter was asked for it.
    pub(crate) vector: Option<Arc<[f32]>>,
}

/// The links of a whole graph, as an engine exports them.
pub(crate) struct GraphLinks {
    pub(crate) points: Vec<ExportedPoint>,
    /// Where every search starts (a point of the top layer).
    pub(crate) entry: Option<u32>,
}

/// The flat, immutable search structure over slots `0..covered`.
pub(crate) struct FlatView {
    covered: usize,
    /// By slot; `None` where the graph holds no point for the slot.
    vectors: Vec<Option<Arc<[f32]>>>,
    /// Layer 0 in CSR form: the neighbours of slot `s` are `links[offsets[s]..offsets[s + 1]]`.
    offsets: Vec<u32>,
    links: Vec<u32>,
    /// `upper[l - 1]` maps a slot present on layer `l` to its neighbours there.
    upper: Vec<HashMap<u32, Box<[u32]>>>,
    entry: Option<u32>,
}

impl FlatView {
    /// An empty view (covers nothing; the segment scans every slot).
    pub(crate) fn empty() -> Self {
        FlatView {
            covered: 0,
            vectors: Vec::new(),
            offsets: vec![0],
            links: Vec::new(),
            upper: Vec::new(),
            entry: None,
        }
    }

    /// Build the view over slots `0..covered`. `base`, when given, is the previous view and
    /// covers slots `0..since`: its links stand for every point `graph` does not re-export, and
    /// its vectors for those slots are kept. `fresh` holds the vectors of slots `since..covered`
    /// (`None` for a dead slot, whose vector then comes from the export).
    pub(crate) fn build(
        base: Option<&FlatView>,
        since: usize,
        covered: usize,
        fresh: Vec<Option<Arc<[f32]>>>,
        graph: GraphLinks,
    ) -> Self {
        let since = base.map_or(0, |b| since.min(b.covered));
        let mut vectors: Vec<Option<Arc<[f32]>>> =
            base.map_or(Vec::new(), |b| b.vectors[..since].to_vec());
        vectors.extend(fresh);
        vectors.resize(covered, None);
        let mut upper = base.map_or(Vec::new(), |b| b.upper.clone());
        let mut layer0: Vec<Option<Vec<u32>>> = vec![None; covered];
        let inside = |s: &u32| (*s as usize) < covered;
        for p in graph.points {
            let slot = p.slot as usize;
            if slot >= covered {
                continue;
            }
            if vectors[slot].is_none() {
                vectors[slot] = p.vector;
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
        FlatView {
            covered,
            vectors,
            offsets,
            links,
            upper,
            entry,
        }
    }

    fn neighbours(&self, slot: usize) -> &[u32] {
        let (from, to) = (self.offsets[slot] as usize, self.offsets[slot + 1] as usize);
        &self.links[from..to]
    }

    /// Slots `0..covered()` are searched here; later ones belong to the segment's tail.
    pub(crate) fn covered(&self) -> usize {
        self.covered
    }

    fn sim(&self, query: &[f32], slot: u32) -> Option<f32> {
        let v = self.vectors.get(slot as usize)?.as_ref()?;
        Some(similarity(query, v))
    }

    /// Issue loads of the first lines of `slot`'s vector. They are independent of each other and
    /// of the dot products that follow, so the CPU keeps many in flight at once; std has no safe
    /// prefetch instruction, and this crate has no `unsafe`.
    #[inline]
    fn prefetch(&self, slot: u32) {
        if let Some(Some(v)) = self.vectors.get(slot as usize) {
            for line in (0..v.len()).step_by(16).take(PREFETCH_LINES) {
                std::hint::black_box(v[line]);
            }
        }
    }

    /// Up to `k` slots nearest `query`, best first, with a beam of `ef` on layer 0.
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        let Some(mut cur) = self.entry else {
            return Vec::new();
        };
        let Some(mut cur_sim) = self.sim(query, cur) else {
            return Vec::new();
        };
        for layer in self.upper.iter().rev() {
            loop {
                let mut moved = false;
                for &n in layer.get(&cur).map_or(&[][..], |l| &l[..]) {
                    if let Some(s) = self.sim(query, n)
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
        VISITED.with(|v| {
            let mut visited = v.borrow_mut();
            visited.reset(self.covered);
            self.beam(query, cur, cur_sim, ef.max(k), &mut visited, k)
        })
    }

    fn beam(
        &self,
        query: &[f32],
        start: u32,
        start_sim: f32,
        ef: usize,
        visited: &mut Visited,
        k: usize,
    ) -> Vec<(usize, f32)> {
        // `frontier` pops the most similar unexpanded slot; `best` pops the least similar kept.
        let mut frontier = BinaryHeap::with_capacity(ef * 4);
        let mut best: BinaryHeap<Reverse<Best>> = BinaryHeap::with_capacity(ef + 1);
        visited.insert(start);
        frontier.push(Best(start_sim, start));
        best.push(Reverse(Best(start_sim, start)));
        while let Some(Best(sim, slot)) = frontier.pop() {
            if best.len() >= ef && best.peek().is_some_and(|w| sim < w.0.0) {
                break;
            }
            let neighbours = self.neighbours(slot as usize);
            // Start every unvisited neighbour's vector on its way from memory before the first
            // dot product needs one: the loads overlap instead of queueing one after another.
            for &n in neighbours {
                if !visited.contains(n) {
                    self.prefetch(n);
                }
            }
            for &n in neighbours {
                if !visited.insert(n) {
                    continue;
                }
                let Some(s) = self.sim(query, n) else {
                    continue;
                };
                if best.len() < ef || best.peek().is_some_and(|w| s > w.0.0) {
                    frontier.push(Best(s, n));
                    best.push(Reverse(Best(s, n)));
                    if best.len() > ef {
                        best.pop();
                    }
                }
            }
        }
        let mut out: Vec<(usize, f32)> = best
            .into_iter()
            .map(|Reverse(Best(s, slot))| (slot as usize, s))
            .collect();
        out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        out.truncate(k);
        out
    }
}

/// Cache lines (16 f32 each) of each neighbour's vector to touch ahead; the hardware prefetcher
/// streams the rest.
const PREFETCH_LINES: usize = 4;

/// Orders by similarity, most similar on top of a max-heap (`Reverse` puts the least on top).
struct Best(f32, u32);

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
struct Visited {
    stamps: Vec<u32>,
    current: u32,
}

impl Visited {
    fn reset(&mut self, len: usize) {
        if self.stamps.len() < len {
            self.stamps.resize(len, 0);
        }
        self.current = self.current.wrapping_add(1);
        if self.current == 0 {
            self.stamps.fill(0);
            self.current = 1;
        }
    }

    fn contains(&self, slot: u32) -> bool {
        self.stamps
            .get(slot as usize)
            .is_none_or(|&s| s == self.current)
    }

    /// `true` if `slot` was not visited yet (and marks it).
    fn insert(&mut self, slot: u32) -> bool {
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
mod tests {
    use super::*;

    fn unit(angle: f32) -> Arc<[f32]> {
        Arc::from(vec![angle.cos(), angle.sin()])
    }

    /// A ring of 8 points on the unit circle, each linked to its two ring neighbours.
    fn ring() -> FlatView {
        let n = 8u32;
        let vectors = (0..n)
            .map(|i| Some(unit(i as f32 * std::f32::consts::TAU / n as f32)))
            .collect();
        let points = (0..n)
            .map(|i| ExportedPoint {
                slot: i,
                layers: vec![vec![(i + 1) % n, (i + n - 1) % n]],
                vector: None,
            })
            .collect();
        FlatView::build(
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
        let v = ring();
        let q = unit(4.0 * std::f32::consts::TAU / 8.0 + 0.1);
        let found = v.search(&q, 2, 2);
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
                vector: Some(unit(0.5)),
            },
        ];
        // Slot 1's vector comes from the export; slot 2 is beyond `covered`.
        let v = FlatView::build(
            None,
            0,
            2,
            vec![Some(unit(0.0)), None, Some(unit(1.0))],
            GraphLinks {
                points,
                entry: Some(0),
            },
        );
        assert_eq!(v.covered(), 2);
        let found = v.search(&unit(0.6), 3, 8);
        assert_eq!(
            found.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![1, 0],
            "slot 2 lies beyond the view"
        );
    }

    #[test]
    fn empty_view_finds_nothing() {
        assert!(FlatView::empty().search(&unit(0.0), 1, 4).is_empty());
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
