//! The crate's own HNSW graph: hnswlib's algorithm over the segment's one copy of each vector.
//!
//! hnsw_rs keeps a second copy of every vector and links each neighbour through an `Arc` behind
//! a lock; on real 384-d sentence embeddings it built ~400 entries a second per core here, and
//! a 100k graph held ~3 KB per entry (BENCHMARKS.md). This graph holds the book's `Arc` of each
//! vector (no copy), layer-0 links in one flat `u32` array with room for `2m` per slot, and the
//! few upper-layer lists in a map. Construction is hnswlib's: a greedy descent through the upper
//! layers, a beam search of width `ef_construction` on each layer the new point joins, neighbours
//! kept by hnswlib's diversity heuristic, and reverse links pruned by the same heuristic.
//!
//! One writer at a time (the segment's indexer) and no reader: lookups search the
//! [`super::frozen_graph::FrozenGraph`] exported from it, so the graph needs no atomics.

use super::frozen_graph::{Best, ExportedPoint, GraphLinks, Visited};
use super::half::{Half, HalfVector, similarity};
use super::hnsw_graph::AnnGraph;
use super::saved_graph::{SavedGraph, SavedNode};
use crate::key::Key;
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Layers above 0 a point may join. With `m` >= 2 a 16th layer is reached about once in 2^16
/// points at the least; hnsw_rs caps at the same.
const MAX_LEVEL: usize = super::saved_graph::MAX_LAYERS - 1;

/// Share of a saved graph's nodes that must find their entry again for the links to be reused:
/// each missing node takes its links with it, and past a quarter of them a rebuild is the
/// safer graph.
const MIN_RESTORED: f64 = 0.75;

/// Points a bulk build adds between two checks that it is still wanted.
const BUILD_CHUNK: usize = 1024;

/// A bulk build links points in rounds: each round's searches run in parallel on the graph as
/// it stood before the round, then its points are linked one by one, each also offered the
/// round's earlier points directly. A round is at most this share of the graph (1/16), so what
/// its searches miss is a small part of what they would see one by one.
const ROUND_SHARE: usize = 16;

/// Most points in one round: enough to keep every core busy between the sequential steps.
const MAX_ROUND: usize = 256;

/// Most threads a round searches on. Each keeps a visited set of 4 bytes per slot between
/// rounds (so a batch of a few hundred points does not zero one per thread each time): with
/// 8 at most, that stays under 32 bytes per entry on any machine.
const MAX_BUILD_THREADS: usize = 8;

/// The graph behind a segment, built one point at a time by the segment's indexer.
pub(crate) struct LinkGraph {
    state: Mutex<State>,
}

struct State {
    /// Links kept per point on layers above 0 (layer 0 keeps twice as many).
    m: usize,
    ef_construction: usize,
    /// `1 / ln(m)`: a point's level is `floor(-ln(u) * level_factor)` for uniform `u`.
    level_factor: f64,
    /// splitmix64 state: levels are drawn deterministically, so a build is reproducible.
    rng: u64,
    /// Every slot offered so far; `None` for a slot never inserted (it died before its turn).
    vectors: Vec<Option<HalfVector>>,
    links: Links,
    /// Highest layer of each slot.
    levels: Vec<u8>,
    /// `1 + ` the slot whose insertion last changed this slot's links (0: never changed), so an
    /// export can re-read exactly the points changed since a given slot count.
    changed_at: Vec<u32>,
    entry: Option<u32>,
    top: usize,
    visited: Visited,
    /// A visited set for each thread a parallel round starts (the calling thread uses
    /// `visited`), kept between rounds.
    round_visited: Vec<Visited>,
}

/// A point of a parallel round: what the sequential step needs besides its searches.
struct RoundPoint {
    vector: HalfVector,
    slot: u32,
    level: usize,
}

/// Neighbour lists: layer 0 flat, `2m` places per slot; upper layers per slot that has them.
struct Links {
    m0: usize,
    layer0: Vec<u32>,
    len0: Vec<u16>,
    /// `upper[&slot][l - 1]` lists `slot`'s neighbours on layer `l`.
    upper: HashMap<u32, Box<[Vec<u32>]>>,
}

impl Links {
    fn get(&self, slot: u32, layer: usize) -> &[u32] {
        if layer == 0 {
            let s = slot as usize;
            let len = self.len0.get(s).map_or(0, |&l| l as usize);
            self.layer0
                .get(s * self.m0..s * self.m0 + len)
                .unwrap_or(&[])
        } else {
            self.upper
                .get(&slot)
                .and_then(|ls| ls.get(layer - 1))
                .map_or(&[], |l| &l[..])
        }
    }

    fn set(&mut self, slot: u32, layer: usize, list: &[u32]) {
        if layer == 0 {
            let s = slot as usize;
            let len = list.len().min(self.m0);
            if let Some(place) = self.layer0.get_mut(s * self.m0..s * self.m0 + len) {
                place.copy_from_slice(&list[..len]);
                self.len0[s] = len as u16;
            }
        } else if let Some(l) = self
            .upper
            .get_mut(&slot)
            .and_then(|ls| ls.get_mut(layer - 1))
        {
            l.clear();
            l.extend_from_slice(list);
        }
    }
}

impl LinkGraph {
    /// A graph keeping `m` links per point (`2m` on layer 0), built with beam `ef_construction`.
    pub(crate) fn new(m: usize, ef_construction: usize, expected: usize) -> Self {
        LinkGraph {
            state: Mutex::new(State::new(m, ef_construction, expected)),
        }
    }

    /// The graph `saved` describes, over the slots `slot_of` gives its nodes' keys (`vectors[slot]`
    /// is that slot's vector), with no distance computed. Nodes without a slot are left out with
    /// their links. `None` (the caller builds afresh) if the graph was built with another `m`, or
    /// fewer than [`MIN_RESTORED`] of its nodes have a slot. The links are checked again here
    /// (the loader checked them too): every index below is then in range.
    pub(crate) fn restore(
        m: usize,
        ef_construction: usize,
        saved: &SavedGraph,
        slot_of: &dyn Fn(&Key) -> Option<usize>,
        vectors: &[HalfVector],
    ) -> Option<Self> {
        if saved.m as usize != m || saved.check().is_err() {
            return None;
        }
        let mut taken = vec![false; vectors.len()];
        let slots: Vec<Option<u32>> = saved
            .nodes
            .iter()
            .map(|n| {
                let slot = slot_of(n.key.as_ref()?).filter(|&s| s < vectors.len())?;
                // Two nodes under one key (never saved so): the first keeps the slot.
                (!std::mem::replace(&mut taken[slot], true)).then_some(slot as u32)
            })
            .collect();
        let kept = slots.iter().flatten().count();
        if kept == 0 || (kept as f64) < MIN_RESTORED * saved.nodes.len() as f64 {
            return None;
        }
        let mut st = State::new(m, ef_construction, vectors.len());
        if let Some(&last) = slots.iter().flatten().max() {
            st.grow_to(last as usize);
        }
        for (node, slot) in saved.nodes.iter().zip(&slots) {
            let Some(slot) = *slot else { continue };
            let s = slot as usize;
            let level = node.layers.len() - 1;
            st.vectors[s] = Some(vectors[s].clone());
            st.levels[s] = level as u8;
            if level > 0 {
                st.links
                    .upper
                    .insert(slot, vec![Vec::new(); level].into_boxed_slice());
            }
            for (layer, list) in node.layers.iter().enumerate() {
                let mapped: Vec<u32> = list.iter().filter_map(|&n| slots[n as usize]).collect();
                st.links.set(slot, layer, &mapped);
            }
            if st
                .entry
                .is_none_or(|e| level > st.levels[e as usize] as usize)
            {
                (st.entry, st.top) = (Some(slot), level);
            }
        }
        // The saved entry, if its entry is still there; else the highest node left (above).
        if let Some(Some(e)) = slots.get(saved.entry as usize) {
            (st.entry, st.top) = (Some(*e), st.levels[*e as usize] as usize);
        }
        Some(LinkGraph {
            state: Mutex::new(st),
        })
    }
}

impl State {
    fn new(m: usize, ef_construction: usize, expected: usize) -> Self {
        let m = m.clamp(2, u16::MAX as usize / 2);
        let expected = expected.min(1 << 20);
        State {
            m,
            ef_construction: ef_construction.max(m),
            level_factor: 1.0 / (m as f64).ln(),
            rng: 0x9E37_79B9_7F4A_7C15,
            vectors: Vec::with_capacity(expected),
            links: Links {
                m0: 2 * m,
                layer0: Vec::with_capacity(expected * 2 * m),
                len0: Vec::with_capacity(expected),
                upper: HashMap::new(),
            },
            levels: Vec::with_capacity(expected),
            changed_at: Vec::with_capacity(expected),
            entry: None,
            top: 0,
            visited: Visited::default(),
            round_visited: Vec::new(),
        }
    }
}

impl AnnGraph for LinkGraph {
    fn insert(&self, vector: &HalfVector, slot: usize) -> bool {
        let Ok(slot) = u32::try_from(slot) else {
            return false;
        };
        let mut state = self.state.lock();
        // Nothing here should panic; if something did, the cache falls back to its exact scan
        // for this slot instead of unwinding into the caller.
        catch_unwind(AssertUnwindSafe(|| state.insert(vector, slot))).unwrap_or(false)
    }

    fn insert_batch(&self, items: &[(HalfVector, usize)], cancelled: &dyn Fn() -> bool) -> bool {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.insert_rounds(items, cancelled, threads.min(MAX_BUILD_THREADS))
    }

    fn export(&self, since: usize, copy_vector: &dyn Fn(usize) -> bool) -> Option<GraphLinks> {
        let state = self.state.lock();
        catch_unwind(AssertUnwindSafe(|| state.export(since, copy_vector))).ok()
    }

    fn save(&self, key_of: &dyn Fn(usize) -> Option<Key>) -> Option<SavedGraph> {
        let state = self.state.lock();
        catch_unwind(AssertUnwindSafe(|| state.save(key_of)))
            .ok()
            .flatten()
    }
}

impl LinkGraph {
    /// [`AnnGraph::insert_batch`] with `threads` searching each round. The graph comes out the
    /// same whatever `threads` is (a build is reproducible on any machine): a round's searches
    /// read only the graph as it stood before the round, and its points are linked in order.
    fn insert_rounds(
        &self,
        items: &[(HalfVector, usize)],
        cancelled: &dyn Fn() -> bool,
        threads: usize,
    ) -> bool {
        let mut all = true;
        for chunk in items.chunks(BUILD_CHUNK) {
            if cancelled() {
                return false;
            }
            let mut rest = chunk;
            while !rest.is_empty() {
                let mut state = self.state.lock();
                let round = (state.vectors.len() / ROUND_SHARE).clamp(1, MAX_ROUND);
                let (now, later) = rest.split_at(round.min(rest.len()));
                rest = later;
                if now.len() < 2 || state.entry.is_none() {
                    for (v, slot) in now {
                        let Ok(slot) = u32::try_from(*slot) else {
                            all = false;
                            continue;
                        };
                        all &= catch_unwind(AssertUnwindSafe(|| state.insert(v, slot)))
                            .unwrap_or(false);
                    }
                } else {
                    all &= catch_unwind(AssertUnwindSafe(|| state.insert_round(now, threads)))
                        .unwrap_or(false);
                }
            }
        }
        all
    }
}

impl State {
    fn next_level(&mut self) -> usize {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // Uniform in (0, 1]: never ln(0).
        let u = ((z >> 11) + 1) as f64 / (1u64 << 53) as f64;
        ((-u.ln() * self.level_factor) as usize).min(MAX_LEVEL)
    }

    /// Make room for `slot` in every per-slot array.
    fn grow_to(&mut self, slot: usize) {
        if self.vectors.len() <= slot {
            self.vectors.resize(slot + 1, None);
            self.levels.resize(slot + 1, 0);
            self.changed_at.resize(slot + 1, 0);
            self.links.len0.resize(slot + 1, 0);
            self.links.layer0.resize((slot + 1) * self.links.m0, 0);
        }
    }

    fn insert(&mut self, vector: &HalfVector, slot: u32) -> bool {
        let s = slot as usize;
        if let Some(Some(v)) = self.vectors.get(s) {
            // Already linked (a restored graph): the same vector is a no-op, another a refusal.
            return Arc::ptr_eq(v, vector) || **v == **vector;
        }
        self.grow_to(s);
        let level = self.next_level();
        let found = match self.entry {
            Some(entry) => {
                let mut visited = std::mem::take(&mut self.visited);
                let found = self.candidates(vector, level, entry, &mut visited);
                self.visited = visited;
                found
            }
            None => Vec::new(),
        };
        let point = RoundPoint {
            vector: vector.clone(),
            slot,
            level,
        };
        self.link_point(&point, found, &[]);
        true
    }

    /// Put `p` into the graph: its links on each layer it joins chosen by the heuristic among
    /// `found` (its candidates per layer, searched before) and `earlier` (points of its round
    /// already linked, offered directly), and the reverse links. The first point becomes the
    /// entry, as does one above the top layer.
    fn link_point(&mut self, p: &RoundPoint, mut found: Vec<Vec<Best>>, earlier: &[RoundPoint]) {
        let s = p.slot as usize;
        self.vectors[s] = Some(p.vector.clone());
        self.levels[s] = p.level as u8;
        self.changed_at[s] = p.slot + 1;
        if p.level > 0 {
            self.links
                .upper
                .insert(p.slot, vec![Vec::new(); p.level].into_boxed_slice());
        }
        for layer in (0..=p.level).rev() {
            let mut candidates = found.get_mut(layer).map(std::mem::take).unwrap_or_default();
            candidates.extend(
                earlier
                    .iter()
                    .filter(|e| e.level >= layer)
                    .map(|e| Best(similarity(&p.vector, &e.vector), e.slot)),
            );
            candidates.sort_unstable_by(|a, b| b.cmp(a));
            candidates.truncate(self.ef_construction);
            let chosen = self.diverse(&candidates, self.m);
            let ids: Vec<u32> = chosen.iter().map(|b| b.1).collect();
            self.links.set(p.slot, layer, &ids);
            for b in &chosen {
                self.link_back(b.1, p.slot, b.0, layer);
            }
        }
        if self.entry.is_none() || p.level > self.top {
            (self.entry, self.top) = (Some(p.slot), p.level);
        }
    }

    /// Link `items` as one parallel round (see [`ROUND_SHARE`]). The graph must have an entry.
    fn insert_round(&mut self, items: &[(HalfVector, usize)], threads: usize) -> bool {
        let mut all = true;
        let mut points: Vec<RoundPoint> = Vec::with_capacity(items.len());
        for (v, slot) in items {
            let Ok(slot) = u32::try_from(*slot) else {
                all = false;
                continue;
            };
            if let Some(Some(old)) = self.vectors.get(slot as usize) {
                all &= Arc::ptr_eq(old, v) || **old == **v;
                continue;
            }
            if points.iter().any(|p| p.slot == slot) {
                all &= points.iter().any(|p| p.slot == slot && *p.vector == **v);
                continue;
            }
            self.grow_to(slot as usize);
            let level = self.next_level();
            points.push(RoundPoint {
                vector: v.clone(),
                slot,
                level,
            });
        }
        if points.is_empty() {
            return all;
        }
        let Some(found) = self.search_round(&points, threads) else {
            // A search thread failed: link the round one by one instead.
            for p in &points {
                all &= self.insert(&p.vector, p.slot);
            }
            return all;
        };
        for (i, (p, found)) in points.iter().zip(found).enumerate() {
            self.link_point(p, found, &points[..i]);
        }
        all
    }

    /// Each point's candidates on each layer it joins (index = layer; none above the graph's
    /// top), searched on the graph as it stands, `threads` at a time. `None` if a thread failed.
    fn search_round(
        &mut self,
        points: &[RoundPoint],
        threads: usize,
    ) -> Option<Vec<Vec<Vec<Best>>>> {
        let entry = self.entry?;
        let threads = threads.max(1);
        let mut own = std::mem::take(&mut self.visited);
        let mut pool = std::mem::take(&mut self.round_visited);
        pool.resize_with(threads - 1, Visited::default);
        let per = points.len().div_ceil(threads).max(1);
        let state = &*self;
        let search = |part: &[RoundPoint], visited: &mut Visited| -> Vec<Vec<Vec<Best>>> {
            part.iter()
                .map(|p| state.candidates(&p.vector, p.level, entry, visited))
                .collect()
        };
        let found = std::thread::scope(|scope| {
            let mut parts = points.chunks(per);
            let mine = parts.next();
            let spawned: Vec<_> = parts
                .zip(pool.iter_mut())
                .map(|(part, visited)| {
                    std::thread::Builder::new()
                        .name("paracache-build".into())
                        .spawn_scoped(scope, move || search(part, visited))
                        .map_err(|_| part)
                })
                .collect();
            let mut out = mine.map_or_else(Vec::new, |part| search(part, &mut own));
            let mut failed = false;
            for handle in spawned {
                match handle {
                    Ok(h) => match h.join() {
                        Ok(found) => out.extend(found),
                        Err(_) => failed = true,
                    },
                    // No thread to be had: search that part here.
                    Err(part) => out.extend(search(part, &mut own)),
                }
            }
            (!failed).then_some(out)
        });
        (self.visited, self.round_visited) = (own, pool);
        found
    }

    /// What one-by-one insertion of `q` at `level` would search: the greedy descent from `entry`
    /// to the point's top layer, then a beam of `ef_construction` on each layer below.
    fn candidates(
        &self,
        q: &[Half],
        level: usize,
        entry: u32,
        visited: &mut Visited,
    ) -> Vec<Vec<Best>> {
        let mut cur = Best(self.sim(q, entry), entry);
        for layer in (level + 1..=self.top).rev() {
            cur = self.greedy(q, cur, layer);
        }
        let joined = level.min(self.top);
        let mut out = vec![Vec::new(); joined + 1];
        let mut starts = vec![cur];
        for layer in (0..=joined).rev() {
            let found = search_layer(
                &self.links,
                &self.vectors,
                visited,
                q,
                &starts,
                self.ef_construction,
                layer,
            );
            out[layer] = found.clone();
            starts = found;
        }
        out
    }

    fn sim(&self, q: &[Half], slot: u32) -> f32 {
        match self.vectors.get(slot as usize) {
            Some(Some(v)) => similarity(q, v),
            _ => -1.0,
        }
    }

    /// Walk `layer` from `cur` to a local best for `q`.
    fn greedy(&self, q: &[Half], mut cur: Best, layer: usize) -> Best {
        loop {
            let mut moved = false;
            for &n in self.links.get(cur.1, layer) {
                let s = self.sim(q, n);
                if s > cur.0 {
                    (cur, moved) = (Best(s, n), true);
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// hnswlib's heuristic: take candidates best first, keeping one only if it is closer to the
    /// query than to every one kept, so the links point in different directions.
    fn diverse(&self, candidates: &[Best], m: usize) -> Vec<Best> {
        let mut kept: Vec<Best> = Vec::with_capacity(m);
        for c in candidates {
            if kept.len() >= m {
                break;
            }
            let Some(Some(cv)) = self.vectors.get(c.1 as usize) else {
                continue;
            };
            if kept.iter().all(|r| self.sim(cv, r.1) <= c.0) {
                kept.push(*c);
            }
        }
        kept
    }

    /// Add `new` to `to`'s list on `layer` (`sim` apart); a full list is re-chosen by the
    /// heuristic among its links and `new`.
    fn link_back(&mut self, to: u32, new: u32, sim: f32, layer: usize) {
        let cap = if layer == 0 { self.links.m0 } else { self.m };
        let current = self.links.get(to, layer);
        if current.contains(&new) {
            return;
        }
        let list: Vec<u32> = if current.len() < cap {
            let mut l = current.to_vec();
            l.push(new);
            l
        } else {
            let Some(Some(tv)) = self.vectors.get(to as usize) else {
                return;
            };
            let tv = tv.clone();
            let mut candidates: Vec<Best> = current
                .iter()
                .map(|&n| Best(self.sim(&tv, n), n))
                .chain(std::iter::once(Best(sim, new)))
                .collect();
            candidates.sort_unstable_by(|a, b| b.cmp(a));
            self.diverse(&candidates, cap).iter().map(|b| b.1).collect()
        };
        self.links.set(to, layer, &list);
        if let Some(c) = self.changed_at.get_mut(to as usize) {
            *c = new + 1;
        }
    }

    /// Nodes in slot order, links as node indices; `None` for an empty graph.
    fn save(&self, key_of: &dyn Fn(usize) -> Option<Key>) -> Option<SavedGraph> {
        let entry = self.entry?;
        let mut node_of = vec![u32::MAX; self.vectors.len()];
        let mut count = 0u32;
        for (slot, v) in self.vectors.iter().enumerate() {
            if v.is_some() {
                node_of[slot] = count;
                count += 1;
            }
        }
        let nodes = (0..self.vectors.len())
            .filter(|&slot| self.vectors[slot].is_some())
            .map(|slot| SavedNode {
                key: key_of(slot),
                layers: (0..=self.levels[slot] as usize)
                    .map(|l| {
                        let list = self.links.get(slot as u32, l);
                        list.iter().map(|&n| node_of[n as usize]).collect()
                    })
                    .collect(),
            })
            .collect();
        Some(SavedGraph {
            scope: Vec::new(),
            m: self.m as u32,
            entry: node_of[entry as usize],
            nodes,
        })
    }

    fn export(&self, since: usize, copy_vector: &dyn Fn(usize) -> bool) -> GraphLinks {
        let points = self
            .vectors
            .iter()
            .enumerate()
            .filter(|(slot, v)| {
                v.is_some() && (*slot >= since || self.changed_at[*slot] as usize > since)
            })
            .map(|(slot, v)| ExportedPoint {
                slot: slot as u32,
                layers: (0..=self.levels[slot] as usize)
                    .map(|l| self.links.get(slot as u32, l).to_vec())
                    .collect(),
                vector: v.clone().filter(|_| copy_vector(slot)),
            })
            .collect();
        GraphLinks {
            points,
            entry: self.entry,
        }
    }
}

/// The `ef` points most similar to `q` that a beam search of `layer` from `starts` finds, best
/// first.
fn search_layer(
    links: &Links,
    vectors: &[Option<HalfVector>],
    visited: &mut Visited,
    q: &[Half],
    starts: &[Best],
    ef: usize,
    layer: usize,
) -> Vec<Best> {
    visited.reset(vectors.len());
    let mut frontier: BinaryHeap<Best> = BinaryHeap::with_capacity(ef * 2);
    let mut best: BinaryHeap<Reverse<Best>> = BinaryHeap::with_capacity(ef + 1);
    for &b in starts {
        if visited.insert(b.1) {
            frontier.push(b);
            best.push(Reverse(b));
            if best.len() > ef {
                best.pop();
            }
        }
    }
    let mut fresh: Vec<(u32, &HalfVector)> = Vec::with_capacity(64);
    while let Some(c) = frontier.pop() {
        if best.len() >= ef && best.peek().is_some_and(|w| c.0 < w.0.0) {
            break;
        }
        fresh.clear();
        for &n in links.get(c.1, layer) {
            if visited.insert(n)
                && let Some(Some(v)) = vectors.get(n as usize)
            {
                fresh.push((n, v));
            }
        }
        // Each vector is its own allocation, at a large graph mostly out of cache: the ones a
        // few places ahead are fetched while this one is compared (as the lookups' walk does).
        let hint = |(_, v): &(u32, &HalfVector)| super::prefetch::lines(v);
        super::prefetch::each_ahead(&fresh, hint, |&(n, v)| {
            let s = similarity(q, v);
            if best.len() < ef || best.peek().is_some_and(|w| s > w.0.0) {
                frontier.push(Best(s, n));
                best.push(Reverse(Best(s, n)));
                if best.len() > ef {
                    best.pop();
                }
            }
        });
    }
    let mut out: Vec<Best> = best.into_iter().map(|Reverse(b)| b).collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::half::narrow;
    use std::collections::BTreeMap;

    /// Deterministic unit vectors in clusters, like sentence embeddings of related prompts.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<HalfVector> {
        let mut s = seed;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..n / 20 + 1)
            .map(|_| (0..dim).map(|_| next()).collect())
            .collect();
        (0..n)
            .map(|i| {
                let c = &centres[i % centres.len()];
                let v: Vec<f32> = c.iter().map(|x| x + 0.35 * next()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                narrow(&v.iter().map(|x| x / norm).collect::<Vec<f32>>())
            })
            .collect()
    }

    /// Each vector under its index as slot.
    fn slotted(vectors: &[HalfVector]) -> Vec<(HalfVector, usize)> {
        vectors
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, v)| (v, i))
            .collect()
    }

    fn built(vectors: &[HalfVector]) -> LinkGraph {
        let g = LinkGraph::new(8, 64, vectors.len());
        assert!(g.insert_batch(&slotted(vectors), &|| false));
        g
    }

    /// Every point's links by slot, as an export lists them.
    fn by_slot(links: GraphLinks) -> BTreeMap<u32, Vec<Vec<u32>>> {
        links
            .points
            .into_iter()
            .map(|p| (p.slot, p.layers))
            .collect()
    }

    /// The best slot for `q` that a beam of `ef` finds, descending as a lookup does.
    fn nearest(g: &LinkGraph, q: &[Half], ef: usize) -> Option<u32> {
        let mut st = g.state.lock();
        let entry = st.entry?;
        let mut cur = Best(st.sim(q, entry), entry);
        for layer in (1..=st.top).rev() {
            cur = st.greedy(q, cur, layer);
        }
        let st = &mut *st;
        let found = search_layer(&st.links, &st.vectors, &mut st.visited, q, &[cur], ef, 0);
        found.first().map(|b| b.1)
    }

    #[test]
    fn finds_the_exact_nearest_neighbour_for_nearly_every_query() {
        let vectors = clustered(3000, 32, 7);
        let g = built(&vectors[..2500]);
        let mut right = 0;
        for q in &vectors[2500..] {
            let exact = (0..2500)
                .max_by(|&a, &b| similarity(q, &vectors[a]).total_cmp(&similarity(q, &vectors[b])))
                .unwrap() as u32;
            right += usize::from(nearest(&g, q, 64) == Some(exact));
        }
        assert!(right >= 490, "recall@1 {right}/500");
    }

    #[test]
    fn lists_stay_within_their_caps_and_point_at_inserted_slots() {
        let vectors = clustered(1500, 16, 3);
        let g = LinkGraph::new(6, 40, 0);
        // Every third slot died before its turn and is never offered.
        for (i, v) in vectors.iter().enumerate().filter(|(i, _)| i % 3 != 1) {
            assert!(g.insert(v, i));
        }
        assert!(g.insert(&vectors[0], 0), "the same vector again is a no-op");
        assert!(!g.insert(&vectors[3], 0), "a slot holds one vector");
        let links = by_slot(g.export(0, &|_| false).unwrap());
        assert_eq!(links.len(), 1000);
        for (slot, layers) in &links {
            assert_ne!(slot % 3, 1);
            for (layer, list) in layers.iter().enumerate() {
                let cap = if layer == 0 { 12 } else { 6 };
                assert!(
                    list.len() <= cap,
                    "slot {slot} layer {layer}: {}",
                    list.len()
                );
                for n in list {
                    assert_ne!(n, slot);
                    assert!(links[n].len() > layer, "{n} is not on layer {layer}");
                }
            }
        }
        assert!(links.values().all(|l| !l[0].is_empty()));
    }

    #[test]
    fn an_incremental_export_brings_a_full_one_up_to_date() {
        let vectors = clustered(1200, 16, 11);
        let g = built(&vectors[..800]);
        let mut view = by_slot(g.export(0, &|_| false).unwrap());
        for (i, v) in vectors.iter().enumerate().skip(800) {
            assert!(g.insert(v, i));
        }
        let fresh = g.export(800, &|slot| slot >= 1000).unwrap();
        assert!(
            fresh
                .points
                .iter()
                .all(|p| p.vector.is_some() == (p.slot >= 1000))
        );
        assert!(fresh.points.len() < 1200, "only the changed points");
        view.extend(by_slot(fresh));
        assert_eq!(view, by_slot(g.export(0, &|_| false).unwrap()));
    }

    #[test]
    fn a_cancelled_build_stops_and_an_empty_graph_exports_nothing() {
        let g = LinkGraph::new(8, 32, 0);
        let e = g.export(0, &|_| true).unwrap();
        assert!(e.points.is_empty() && e.entry.is_none());
        let vectors = clustered(3000, 8, 5);
        assert!(!g.insert_batch(&slotted(&vectors), &|| true));
        assert!(g.export(0, &|_| false).unwrap().points.is_empty());
    }

    /// Recall@1 of `g` for `queries` over `stored`, at beam 64.
    fn recall(g: &LinkGraph, stored: &[HalfVector], queries: &[HalfVector]) -> usize {
        queries
            .iter()
            .filter(|q| {
                let exact = (0..stored.len())
                    .max_by(|&a, &b| {
                        similarity(q, &stored[a]).total_cmp(&similarity(q, &stored[b]))
                    })
                    .map(|i| i as u32);
                nearest(g, q, 64) == exact
            })
            .count()
    }

    #[test]
    fn a_build_in_rounds_is_the_same_on_any_number_of_threads() {
        let vectors = clustered(2000, 16, 13);
        let exports: Vec<_> = [1, 2, 3]
            .iter()
            .map(|&threads| {
                let g = LinkGraph::new(8, 64, 0);
                assert!(g.insert_rounds(&slotted(&vectors), &|| false, threads));
                let e = g.export(0, &|_| false).unwrap();
                (e.entry, by_slot(e))
            })
            .collect();
        assert_eq!(exports[0].1.len(), 2000);
        assert!(exports.iter().all(|e| *e == exports[0]));
    }

    #[test]
    fn rounds_link_about_as_well_as_one_by_one_inserts() {
        let vectors = clustered(4000, 32, 17);
        let (stored, queries) = vectors.split_at(3500);
        let rounds = LinkGraph::new(8, 64, 0);
        assert!(rounds.insert_rounds(&slotted(stored), &|| false, 2));
        let one_by_one = LinkGraph::new(8, 64, 0);
        for (i, v) in stored.iter().enumerate() {
            assert!(one_by_one.insert(v, i));
        }
        let (r, o) = (
            recall(&rounds, stored, queries),
            recall(&one_by_one, stored, queries),
        );
        assert!(
            r + 5 >= o,
            "recall@1 {r}/500 in rounds against {o}/500 one by one"
        );
        assert!(r >= 490, "recall@1 {r}/500");
        let slots_again: Vec<_> = slotted(&stored[..10]);
        assert!(
            rounds.insert_rounds(&slots_again, &|| false, 2),
            "the same vectors again are no-ops"
        );
    }

    #[test]
    fn an_out_of_range_slot_is_refused() {
        let g = LinkGraph::new(8, 32, 0);
        assert!(!g.insert(&narrow(&[1.0, 0.0]), u32::MAX as usize + 1));
    }
}
