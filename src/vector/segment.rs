//! One generation of a partition's index: the slot book (slot -> key, seq, vector, live bit) and,
//! above the flat limit, a graph over the same slots.
//!
//! Slots are append-only within a segment. A slot dies when its entry is evicted, expired,
//! invalidated or replaced; its vector is released at once, but the graph's copy stays until the
//! partition is rebuilt into a new segment.

use super::Candidate;
use super::distance::similarity;
use super::graph::{AnnGraph, HnswGraph};
use crate::key::Key;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

struct Slot {
    key: Key,
    seq: u64,
    /// `None` once dead.
    vector: Option<Arc<[f32]>>,
}

#[derive(Default)]
struct Book {
    slots: Vec<Slot>,
    /// Live slot of each key.
    by_key: HashMap<Key, u32>,
    dead: usize,
    /// While a rebuild copies this segment, removals are logged here so the copy can replay them.
    removal_log: Option<Vec<(Key, u64)>>,
}

/// A live vector with its identity, as copied into a new segment.
#[derive(Clone)]
pub(crate) struct LiveVector {
    pub(crate) key: Key,
    pub(crate) seq: u64,
    pub(crate) vector: Arc<[f32]>,
}

pub(crate) struct Segment {
    book: RwLock<Book>,
    graph: Option<Box<dyn AnnGraph>>,
}

/// What one search of a segment found.
pub(crate) struct Found {
    /// Live (per the book) candidates at or above the floor, best first.
    pub(crate) candidates: Vec<Candidate>,
    /// How many results the engine returned before dead and below-floor ones were dropped.
    pub(crate) raw_len: usize,
    /// Similarity of the last (worst) of those results.
    pub(crate) raw_worst: f32,
}

impl Segment {
    pub(crate) fn flat() -> Self {
        Segment {
            book: RwLock::new(Book::default()),
            graph: None,
        }
    }

    /// A segment holding `live`, with a graph when `graph` is given (built here, in parallel).
    pub(crate) fn build(live: Vec<LiveVector>, graph: Option<HnswGraph>) -> Self {
        let mut book = Book::default();
        for (i, lv) in live.iter().enumerate() {
            book.by_key.insert(lv.key, i as u32);
        }
        let graph: Option<Box<dyn AnnGraph>> = graph.and_then(|g| {
            let items: Vec<(&[f32], usize)> = live
                .iter()
                .enumerate()
                .map(|(i, lv)| (&*lv.vector, i))
                .collect();
            g.insert_batch(&items)
                .then(|| Box::new(g) as Box<dyn AnnGraph>)
        });
        book.slots = live
            .into_iter()
            .map(|lv| Slot {
                key: lv.key,
                seq: lv.seq,
                vector: Some(lv.vector),
            })
            .collect();
        Segment {
            book: RwLock::new(book),
            graph,
        }
    }

    pub(crate) fn has_graph(&self) -> bool {
        self.graph.is_some()
    }

    /// (live, dead) slot counts.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let b = self.book.read();
        (b.slots.len() - b.dead, b.dead)
    }

    /// Add a vector; a live slot of the same key dies (it is being replaced).
    pub(crate) fn insert(&self, key: Key, seq: u64, vector: Arc<[f32]>) {
        let slot = {
            let mut b = self.book.write();
            if let Some(&old) = b.by_key.get(&key) {
                let old_seq = b.slots[old as usize].seq;
                b.kill(old as usize, key, old_seq);
            }
            let slot = b.slots.len();
            b.slots.push(Slot {
                key,
                seq,
                vector: Some(vector.clone()),
            });
            b.by_key.insert(key, slot as u32);
            slot
        };
        if let Some(g) = &self.graph {
            // A failed graph insert leaves the vector reachable only through the exact tier until
            // the next rebuild; it is never served wrongly.
            let _ = g.insert(&vector, slot);
        }
    }

    /// Mark the slot of `(key, seq)` dead. A newer seq under the same key is left alone.
    pub(crate) fn remove(&self, key: &Key, seq: u64) -> bool {
        let mut b = self.book.write();
        match b.by_key.get(key) {
            Some(&slot) if b.slots[slot as usize].seq == seq => {
                b.kill(slot as usize, *key, seq);
                true
            }
            _ => false,
        }
    }

    /// Up to `k` candidates with similarity >= `floor`, best first.
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize, floor: f32) -> Found {
        match self.graph.as_ref().and_then(|g| g.search(query, k, ef)) {
            Some(raw) => {
                let raw_len = raw.len();
                let raw_worst = raw.last().map_or(-1.0, |r| r.1);
                let b = self.book.read();
                let candidates = raw
                    .into_iter()
                    .filter(|&(_, sim)| sim >= floor)
                    .filter_map(|(slot, sim)| {
                        let s = b.slots.get(slot)?;
                        s.vector.as_ref()?;
                        Some(Candidate {
                            key: s.key,
                            seq: s.seq,
                            similarity: sim,
                        })
                    })
                    .collect();
                Found {
                    candidates,
                    raw_len,
                    raw_worst,
                }
            }
            None => self.scan(query, k, floor),
        }
    }

    /// Exact scan of every live slot: small partitions, and the fallback if the graph fails.
    fn scan(&self, query: &[f32], k: usize, floor: f32) -> Found {
        let b = self.book.read();
        let mut top: Vec<Candidate> = Vec::with_capacity(k + 1);
        for s in &b.slots {
            let Some(v) = &s.vector else { continue };
            let similarity = similarity(query, v);
            if similarity < floor || (top.len() == k && similarity <= top[k - 1].similarity) {
                continue;
            }
            let at = top.partition_point(|c| c.similarity >= similarity);
            top.insert(
                at,
                Candidate {
                    key: s.key,
                    seq: s.seq,
                    similarity,
                },
            );
            top.truncate(k);
        }
        let raw_worst = top.last().map_or(-1.0, |c| c.similarity);
        Found {
            raw_len: top.len(),
            raw_worst,
            candidates: top,
        }
    }

    /// Copy the live vectors and start logging removals, atomically.
    pub(crate) fn begin_copy(&self) -> (Vec<LiveVector>, usize) {
        let mut b = self.book.write();
        b.removal_log = Some(Vec::new());
        let live = b.live_from(0);
        (live, b.slots.len())
    }

    /// Live vectors appended at or after `from`, the new end, and removals logged since last call.
    pub(crate) fn copy_since(&self, from: usize) -> (Vec<LiveVector>, usize, Vec<(Key, u64)>) {
        let mut b = self.book.write();
        let removed = b
            .removal_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        (b.live_from(from), b.slots.len(), removed)
    }

    /// Stop logging removals (a rebuild ended).
    pub(crate) fn end_copy(&self) {
        self.book.write().removal_log = None;
    }

    /// Every live `(key, seq)`, for invalidating a whole scope.
    pub(crate) fn live_keys(&self) -> Vec<(Key, u64)> {
        let b = self.book.read();
        b.slots
            .iter()
            .filter(|s| s.vector.is_some())
            .map(|s| (s.key, s.seq))
            .collect()
    }
}

impl Book {
    fn kill(&mut self, slot: usize, key: Key, seq: u64) {
        if self.slots[slot].vector.take().is_some() {
            self.dead += 1;
            self.by_key.remove(&key);
            if let Some(log) = &mut self.removal_log {
                log.push((key, seq));
            }
        }
    }

    fn live_from(&self, from: usize) -> Vec<LiveVector> {
        self.slots[from.min(self.slots.len())..]
            .iter()
            .filter_map(|s| {
                Some(LiveVector {
                    key: s.key,
                    seq: s.seq,
                    vector: s.vector.clone()?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f32, y: f32) -> Arc<[f32]> {
        Arc::from(vec![x, y])
    }

    #[test]
    fn replace_and_remove_track_seq() {
        let s = Segment::flat();
        s.insert([1; 16], 1, v(1.0, 0.0));
        s.insert([1; 16], 2, v(0.0, 1.0));
        assert_eq!(s.counts(), (1, 1));
        assert!(
            !s.remove(&[1; 16], 1),
            "stale seq must not kill the newer slot"
        );
        assert!(s.remove(&[1; 16], 2));
        assert_eq!(s.counts(), (0, 2));
    }

    #[test]
    fn scan_is_best_first_and_skips_dead() {
        let s = Segment::flat();
        s.insert([1; 16], 1, v(1.0, 0.0));
        s.insert([2; 16], 2, v(0.8, 0.6));
        s.insert([3; 16], 3, v(0.0, 1.0));
        let f = s.search(&[1.0, 0.0], 2, 0, -1.0);
        assert_eq!(
            f.candidates.iter().map(|c| c.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        s.remove(&[1; 16], 1);
        let f = s.search(&[1.0, 0.0], 2, 0, 0.5);
        assert_eq!(
            f.candidates.iter().map(|c| c.seq).collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[test]
    fn copy_logs_removals_made_during_a_rebuild() {
        let s = Segment::flat();
        s.insert([1; 16], 1, v(1.0, 0.0));
        let (live, end) = s.begin_copy();
        assert_eq!((live.len(), end), (1, 1));
        s.insert([2; 16], 2, v(0.0, 1.0));
        s.remove(&[1; 16], 1);
        let (added, end, removed) = s.copy_since(end);
        assert_eq!(added.len(), 1);
        assert_eq!(end, 2);
        assert_eq!(removed, vec![([1; 16], 1)]);
        s.end_copy();
    }
}
