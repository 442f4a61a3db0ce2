//! One generation of a partition's index: the slot book (slot -> key, seq, vector, live bit) and,
//! above the exact scan limit, a graph over the same slots.
//!
//! Slots are append-only within a segment. A slot dies when its entry is evicted, expired,
//! invalidated or replaced; its vector is released at once, but the graph's copy stays until the
//! partition is rebuilt into a new segment.
//!
//! Searches of a graph segment run on a [`FrozenGraph`] of the graph, which covers the slots that
//! existed when it was frozen; slots added since (the tail) are scanned exactly, so a new vector
//! is findable from the moment it is inserted.
//!
//! Graph inserts cost milliseconds on real sentence embeddings, so with background indexing an
//! insert only appends its slot: one indexer thread at a time adds pending slots to the graph, in
//! slot order, and refreezes the view every [`TAIL_LIMIT`] slots. An insert waits only when the
//! graph has fallen [`BACKLOG_LIMIT`] slots behind, which bounds the exact tail every lookup scans.
//! A lookup never waits for the indexer: it reads the last view and scans the rest.

use super::Candidate;
use super::codes::Quantized;
use super::frozen_graph::{Approximate, FrozenGraph, Walk};
use super::half::{Half, HalfVector, narrow_vec, similarity, similarity_to, widen};
use super::hnsw_graph::AnnGraph;
use super::saved_graph::SavedGraph;
use super::tail_codes::TailCodes;
use crate::key::Key;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Indexed slots past the view after which the indexer refreezes it. The tail is scanned exactly
/// on every lookup (about 60 ns per slot at 384-d), so this bounds that scan near 8 µs, while a
/// freeze (a copy of the links that changed) is paid once per this many inserts.
pub(crate) const TAIL_LIMIT: usize = 128;

/// How far below the floor a slot's possible similarity must lie for a search to skip its exact
/// score: more than the 2^-11 by which a similarity at the stored precision may undershoot the
/// one reported (src/vector/half.rs).
const RESCORE_MARGIN: f32 = 1e-3;

/// Slots the graph may lag behind the book before inserts wait for the indexer. Every lookup
/// scans the backlog exactly, at ~60 ns per 384-d slot: 256 keeps that near 15 µs (1,024 cost
/// ~70 µs a lookup on the dev-large replay, where the indexer is always behind), while a burst
/// of 256 inserts still costs each a slot append whatever the graph's size.
pub(crate) const BACKLOG_LIMIT: usize = 256;

/// Most slots an indexer takes at once. `compact`, or the background indexer while inserts wait
/// for it and nobody searches, adds a batch of at least half this with all cores (rayon);
/// otherwise the background indexer adds slots one by one on its own thread: with all cores it
/// would take the CPU from the lookups it runs beside (measured: lookup p99 in ms on 2 cores).
const PARALLEL_BATCH: usize = 256;

/// Milliseconds without a search after which an indexer that inserts are waiting for may use
/// every core: long enough that a parallel batch (a few hundred ms on 2 cores) rarely lands on
/// lookups that merely paused, short enough that a bulk load gets the cores within a second.
const QUIET_MS: u64 = 1_000;

struct Slot {
    key: Key,
    seq: u64,
    /// `None` once dead.
    vector: Option<HalfVector>,
}

#[derive(Default)]
struct Book {
    slots: Vec<Slot>,
    /// Live slot of each key.
    by_key: HashMap<Key, u32>,
    dead: usize,
    /// While a rebuild copies this segment, removals are logged here so the copy can replay them.
    removal_log: Option<Vec<(Key, u64)>>,
    /// Codes of the slots the view does not cover (graph segments only).
    tail_codes: TailCodes,
}

/// A live vector with its identity, as copied into a new segment.
#[derive(Clone)]
pub(crate) struct LiveVector {
    pub(crate) key: Key,
    pub(crate) seq: u64,
    pub(crate) vector: HalfVector,
}

pub(crate) struct Segment {
    book: RwLock<Book>,
    graph: Option<Box<dyn AnnGraph>>,
    view: RwLock<Arc<FrozenGraph>>,
    /// Slots below this have been offered to the graph (in slot order; a dead one is skipped).
    indexed: AtomicUsize,
    /// Held by whoever adds slots to the graph or freezes it: one indexer at a time, and a view
    /// never covers a slot whose graph insert is still running.
    indexer: Mutex<()>,
    /// A background indexer is scheduled or running.
    indexing: AtomicBool,
    /// Wakes inserts held back by a full backlog.
    progress: Condvar,
    /// Inserts waiting for the backlog.
    waiters: AtomicUsize,
    progress_lock: Mutex<()>,
    /// When the cache's lookups last searched: while they run, the indexer stays on one core.
    activity: Arc<SearchActivity>,
    /// Index in a background thread (else on the inserting thread, for deterministic tests).
    background: bool,
    /// Set once the segment is replaced or its partition retired: a background indexer stops.
    abandoned: AtomicBool,
    /// Slots covered by the last full export; incremental ones re-read only what changed.
    full_at: AtomicUsize,
}

/// When a cache's lookups last searched any of its segments, shared by all of them: indexing
/// competes with lookups of every scope for the same cores.
#[derive(Debug)]
pub(crate) struct SearchActivity {
    born: Instant,
    /// Milliseconds since `born` of the latest search.
    last_ms: AtomicU64,
}

impl Default for SearchActivity {
    fn default() -> Self {
        SearchActivity {
            born: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl SearchActivity {
    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Record that a lookup searches now. Read first: at most one write per millisecond, so
    /// concurrent lookups do not pass the cache line between cores on every search.
    pub(crate) fn note_search(&self) {
        let now = self.now_ms();
        if self.last_ms.load(Ordering::Relaxed) != now {
            self.last_ms.store(now, Ordering::Relaxed);
        }
    }

    /// Whether a lookup searched within the last `ms` milliseconds (or the cache is younger than
    /// that: a new cache is assumed busy).
    pub(crate) fn searched_within(&self, ms: u64) -> bool {
        self.now_ms()
            .saturating_sub(self.last_ms.load(Ordering::Relaxed))
            < ms
    }
}

/// What an insert leaves to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterInsert {
    /// Nothing.
    Done,
    /// Start a background indexer ([`Segment::spawn_indexer`]); no other is running.
    Spawn,
    /// The graph is [`BACKLOG_LIMIT`] behind: call [`Segment::wait_for_backlog`] (with no lock
    /// held) after starting an indexer if one is due.
    Wait,
}

/// One query's search of a segment: the graph walk, kept between widenings.
pub(crate) struct SegmentSearch<'a> {
    segment: &'a Segment,
    query: &'a [f32],
    /// The query at the precision of the stored vectors, to rank what the walk and the tail find.
    narrowed: Vec<Half>,
    /// `None` for a segment without a graph, which is scanned whole.
    walk: Option<Walk>,
    /// Similarities of the live slots the view does not cover (from codes where it has them),
    /// computed by the first `find` and reused when it widens: the tail can be hundreds of
    /// slots, and a miss searches twice.
    tail: Option<Vec<Approximate>>,
}

impl SegmentSearch<'_> {
    /// Up to `k` candidates with similarity >= `floor`, best first, with the graph walked at a
    /// beam of at least `ef` (continuing from where a narrower call stopped) and the slots the
    /// view does not cover scanned exactly.
    pub(crate) fn find(&mut self, k: usize, ef: usize, floor: f32) -> Found {
        let (raw, from) = match &mut self.walk {
            Some(walk) => {
                walk.widen(ef.max(k));
                (walk.found(), walk.covered())
            }
            None => (Vec::new(), 0),
        };
        let codes = self.walk.as_ref().map(Walk::query);
        let tail = self
            .tail
            .get_or_insert_with(|| self.segment.scan_tail(codes, &self.narrowed, from));
        self.segment
            .merge(k, floor, raw, tail, (self.query, &self.narrowed))
    }
}

/// What one search of a segment found.
pub(crate) struct Found {
    /// Live (per the book) candidates at or above the floor, best first.
    pub(crate) candidates: Vec<Candidate>,
    /// How many results the engine returned before dead and below-floor ones were dropped.
    pub(crate) raw_len: usize,
    /// Similarity of the last (worst) of those results.
    pub(crate) raw_worst: f32,
    /// Similarity of the first (best) of them, dead or alive (-1 if none).
    pub(crate) raw_best: f32,
}

impl Segment {
    pub(crate) fn flat(activity: Arc<SearchActivity>) -> Self {
        Segment::with(Book::default(), None, false, activity)
    }

    fn with(
        book: Book,
        graph: Option<Box<dyn AnnGraph>>,
        background: bool,
        activity: Arc<SearchActivity>,
    ) -> Self {
        let indexed = book.slots.len();
        Segment {
            book: RwLock::new(book),
            graph,
            view: RwLock::new(Arc::new(FrozenGraph::empty())),
            indexed: AtomicUsize::new(indexed),
            indexer: Mutex::new(()),
            indexing: AtomicBool::new(false),
            progress: Condvar::new(),
            waiters: AtomicUsize::new(0),
            activity,
            progress_lock: Mutex::new(()),
            background,
            abandoned: AtomicBool::new(false),
            full_at: AtomicUsize::new(0),
        }
    }

    /// A segment holding `live`, with a graph when `graph` is given (built here, in parallel);
    /// `None` if `cancelled` says the build is no longer wanted (its partition was retired).
    /// With `background`, later inserts are indexed by a background thread.
    pub(crate) fn build(
        live: Vec<LiveVector>,
        graph: Option<Box<dyn AnnGraph>>,
        background: bool,
        activity: Arc<SearchActivity>,
        cancelled: &dyn Fn() -> bool,
    ) -> Option<Self> {
        let mut book = Book::default();
        for (i, lv) in live.iter().enumerate() {
            book.by_key.insert(lv.key, i as u32);
        }
        let graph: Option<Box<dyn AnnGraph>> = graph.and_then(|g| {
            let items: Vec<(HalfVector, usize)> = live
                .iter()
                .enumerate()
                .map(|(i, lv)| (lv.vector.clone(), i))
                .collect();
            g.insert_batch(&items, cancelled).then_some(g)
        });
        if cancelled() {
            return None;
        }
        book.slots = live
            .into_iter()
            .map(|lv| Slot {
                key: lv.key,
                seq: lv.seq,
                vector: Some(lv.vector),
            })
            .collect();
        let segment = Segment::with(book, graph, background, activity);
        segment.freeze(&segment.indexer.lock());
        Some(segment)
    }

    pub(crate) fn has_graph(&self) -> bool {
        self.graph.is_some()
    }

    /// (live, dead) slot counts.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let b = self.book.read();
        (b.slots.len() - b.dead, b.dead)
    }

    /// Slots not yet offered to the graph (0 without a graph).
    pub(crate) fn backlog(&self) -> usize {
        if self.graph.is_none() {
            return 0;
        }
        let len = self.book.read().slots.len();
        len.saturating_sub(self.indexed.load(Ordering::Acquire))
    }

    /// Add a vector; a live slot of the same key dies (it is being replaced). Without background
    /// indexing the graph takes it before this returns; with it, the caller follows the returned
    /// [`AfterInsert`].
    pub(crate) fn insert(&self, key: Key, seq: u64, vector: HalfVector) -> AfterInsert {
        let len = self.append(key, seq, vector);
        if self.graph.is_none() {
            return AfterInsert::Done;
        }
        if !self.background {
            self.index_now();
            return AfterInsert::Done;
        }
        if len.saturating_sub(self.indexed.load(Ordering::Acquire)) > BACKLOG_LIMIT {
            // The waiter starts an indexer itself if none runs, once its locks are released.
            return AfterInsert::Wait;
        }
        if self.indexing.swap(true, Ordering::AcqRel) {
            AfterInsert::Done
        } else {
            AfterInsert::Spawn
        }
    }

    /// Add a vector to the book only, leaving it to the next indexer (a rebuild's catch-up).
    /// Returns the number of slots.
    pub(crate) fn append(&self, key: Key, seq: u64, vector: HalfVector) -> usize {
        // Coded before the lock: the tail scan of every lookup reads these.
        let codes = self
            .graph
            .is_some()
            .then(|| Quantized::new(&widen(&vector)));
        let mut b = self.book.write();
        if let Some(&old) = b.by_key.get(&key) {
            let old_seq = b.slots[old as usize].seq;
            b.kill(old as usize, key, old_seq);
        }
        let slot = b.slots.len();
        if let Some(codes) = codes {
            b.tail_codes.push(slot, codes);
        }
        b.slots.push(Slot {
            key,
            seq,
            vector: Some(vector),
        });
        b.by_key.insert(key, slot as u32);
        slot + 1
    }

    /// Index the backlog on this thread (long backlogs with every core: for `compact`).
    pub(crate) fn index_now(&self) {
        if self.graph.is_some() {
            self.index_pending(&self.indexer.lock(), true);
        }
    }

    /// Have the backlog indexed: by a background indexer (started unless one runs), or here
    /// without background indexing.
    pub(crate) fn start_indexer(self: &Arc<Self>) {
        if self.backlog() == 0 {
            return;
        }
        if !self.background {
            self.index_now();
        } else if !self.indexing.swap(true, Ordering::AcqRel) {
            self.spawn_indexer();
        }
    }

    /// Index the backlog on a new thread (on this one if no thread can be started). Call only
    /// with the `indexing` claim taken.
    pub(crate) fn spawn_indexer(self: &Arc<Self>) {
        let seg = self.clone();
        let job = move || seg.run_indexer();
        if std::thread::Builder::new()
            .name("paracache-index".into())
            .spawn(job)
            .is_err()
        {
            self.run_indexer();
        }
    }

    /// Block until the graph is less than [`BACKLOG_LIMIT`] slots behind (or the segment is
    /// abandoned), starting an indexer if none runs. Call with no lock held.
    pub(crate) fn wait_for_backlog(self: &Arc<Self>) {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        self.wait_until_caught_up();
        self.waiters.fetch_sub(1, Ordering::AcqRel);
    }

    fn wait_until_caught_up(self: &Arc<Self>) {
        loop {
            if self.abandoned.load(Ordering::Acquire) || self.backlog() <= BACKLOG_LIMIT {
                return;
            }
            self.start_indexer();
            let mut g = self.progress_lock.lock();
            if self.backlog() > BACKLOG_LIMIT && !self.abandoned.load(Ordering::Acquire) {
                // Timed, so a wake-up lost between the check and the wait costs 1 ms, not a hang.
                self.progress
                    .wait_for(&mut g, std::time::Duration::from_millis(1));
            }
        }
    }

    /// The background indexer: drain the backlog, then give up the claim; if an insert slipped
    /// in between, take the claim back and go on.
    fn run_indexer(&self) {
        loop {
            {
                let held = self.indexer.lock();
                // One core: the others stay with the callers, whose lookups it must not slow
                // (all cores only while inserts wait and nobody searches, see index_pending).
                self.index_pending(&held, false);
            }
            self.indexing.store(false, Ordering::Release);
            self.progress.notify_all();
            if self.abandoned.load(Ordering::Acquire)
                || self.backlog() == 0
                || self.indexing.swap(true, Ordering::AcqRel)
            {
                return;
            }
        }
    }

    /// Stop background indexing: the segment was replaced or its partition retired.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
        self.progress.notify_all();
    }

    /// Offer every pending slot to the graph, in slot order, refreezing the view every
    /// [`TAIL_LIMIT`] slots; `parallel` lets long backlogs use every core. `held` proves the
    /// caller is the one indexer.
    fn index_pending(&self, held: &parking_lot::MutexGuard<'_, ()>, parallel: bool) {
        let Some(graph) = &self.graph else { return };
        loop {
            if self.abandoned.load(Ordering::Acquire) {
                return;
            }
            let from = self.indexed.load(Ordering::Acquire);
            let (end, batch) = {
                let b = self.book.read();
                let end = b.slots.len().min(from + PARALLEL_BATCH);
                let batch: Vec<(usize, HalfVector)> = (from..end)
                    .filter_map(|slot| Some((slot, b.slots[slot].vector.clone()?)))
                    .collect();
                (end, batch)
            };
            if end == from {
                return;
            }
            // A failed graph insert leaves the vector reachable only through the exact tier until
            // the next rebuild; it is never served wrongly.
            // While inserts wait for the indexer and nobody searches (a bulk load), every core
            // helps. While lookups run, one core, even with inserts waiting: spreading over every
            // core then let inserts run at 610-695 a second instead of 550-650 (real vectors, 2
            // cores), but raised lookups' p99 6-15x (to 1.2-4.2 ms), against 1.1-1.5x this way
            // (BENCHMARKS.md, "Lookups during inserts").
            let parallel = parallel
                || (self.waiters.load(Ordering::Acquire) > 0
                    && !self.activity.searched_within(QUIET_MS));
            if parallel && batch.len() >= PARALLEL_BATCH / 2 {
                let items: Vec<(HalfVector, usize)> =
                    batch.iter().map(|(slot, v)| (v.clone(), *slot)).collect();
                let _ = graph.insert_batch(&items, &|| self.abandoned.load(Ordering::Acquire));
                self.indexed.store(end, Ordering::Release);
            } else {
                for (slot, v) in &batch {
                    let _ = graph.insert(v, *slot);
                    self.indexed.store(slot + 1, Ordering::Release);
                    self.progress.notify_all();
                }
                self.indexed.store(end, Ordering::Release);
            }
            self.progress.notify_all();
            // Checked per batch, not per slot: a refreeze allocates a new copy of every link,
            // and twice as many of them raised the 81k replay's resident memory by 0.1-0.3 KB
            // per entry (allocator churn) for no lookup time measurable once the tail was
            // scanned as codes.
            if end - self.view.read().covered() >= TAIL_LIMIT {
                self.freeze(held);
            }
        }
    }

    /// Copy the graph's links into a new view covering every indexed slot: only what changed
    /// since the last view, or everything once the graph has grown by a quarter since the last
    /// full copy (hnsw_rs's incremental export can miss a link that a later insert in the same
    /// batch pruned away, and the full copy bounds that drift; the crate's graph tracks every
    /// change exactly). `_held` proves no graph insert is running.
    fn freeze(&self, _held: &parking_lot::MutexGuard<'_, ()>) {
        let Some(graph) = &self.graph else { return };
        let base = self.view.read().clone();
        let covered = self.indexed.load(Ordering::Acquire);
        let full_at = self.full_at.load(Ordering::Acquire);
        let since = if covered >= full_at + full_at / 4 {
            0
        } else {
            base.covered()
        };
        let fresh: Vec<Option<HalfVector>> = {
            let book = self.book.read();
            book.slots[since.min(covered)..covered.min(book.slots.len())]
                .iter()
                .map(|s| s.vector.clone())
                .collect()
        };
        // Dead slots still route searches; their vectors come from the graph's own copy.
        let links = graph.export(since, &|slot| {
            slot >= since && fresh.get(slot - since).is_none_or(Option::is_none)
        });
        if let Some(links) = links {
            let base = (since > 0).then_some(&*base);
            *self.view.write() = Arc::new(FrozenGraph::build(base, since, covered, fresh, links));
            self.book.write().tail_codes.drop_below(covered);
            if since == 0 {
                self.full_at.store(covered, Ordering::Release);
            }
        }
    }

    /// The graph's links for a snapshot, nodes named by their live keys (`None` without a graph,
    /// or with an engine that cannot restore links). Slots not linked yet are left out; a
    /// restore links them afresh.
    pub(crate) fn save_graph(&self) -> Option<SavedGraph> {
        let graph = self.graph.as_ref()?;
        let _held = self.indexer.lock();
        // The keys are copied out so inserts (which write the book) wait only for this copy,
        // not for the whole export.
        let keys: Vec<Option<Key>> = {
            let book = self.book.read();
            let live = |s: &Slot| s.vector.is_some().then_some(s.key);
            book.slots.iter().map(live).collect()
        };
        graph.save(&|slot| keys.get(slot).copied().flatten())
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

    /// A search for `query` that can be widened step by step (see [`SegmentSearch::find`]).
    pub(crate) fn searcher<'a>(&'a self, query: &'a [f32]) -> SegmentSearch<'a> {
        // Flat scans count too: they need the cores as much as graph walks do.
        self.activity.note_search();
        let walk = self
            .graph
            .as_ref()
            .map(|_| self.view.read().clone().walk(query));
        SegmentSearch {
            segment: self,
            query,
            narrowed: narrow_vec(query),
            walk,
            tail: None,
        }
    }

    /// Up to `k` candidates with similarity >= `floor`, best first, at beam width `ef`.
    #[cfg(test)]
    pub(crate) fn search(&self, query: &[f32], k: usize, ef: usize, floor: f32) -> Found {
        self.searcher(query).find(k, ef, floor)
    }

    /// Similarities of the live slots from `from` on, in slot order: from their codes where
    /// the query's are given and the slot has some (a slot the view came to cover since the
    /// caller took it has none any more), else exact at the stored precision.
    fn scan_tail(
        &self,
        codes: Option<&Quantized>,
        narrowed: &[Half],
        from: usize,
    ) -> Vec<Approximate> {
        let b = self.book.read();
        let tail = b.slots.get(from..).unwrap_or(&[]);
        let mut out = Vec::with_capacity(tail.len());
        for (i, s) in tail.iter().enumerate() {
            let slot = from + i;
            let Some(v) = s.vector.as_ref() else { continue };
            let coded = codes.and_then(|q| {
                let (c, scale) = b.tail_codes.get(slot)?;
                let sim = q.sim(c, scale)?;
                Some((sim, sim + q.error_bound(scale)))
            });
            let (sim, ceiling) = coded.unwrap_or_else(|| {
                let exact = similarity(narrowed, v);
                (exact, exact + RESCORE_MARGIN)
            });
            out.push(Approximate { slot, sim, ceiling });
        }
        out
    }

    /// Merge `raw` (graph results, dead ones included) with `tail`, all with approximate
    /// similarities, keep the best `k`, and drop dead and below-floor ones.
    fn merge(
        &self,
        k: usize,
        floor: f32,
        raw: Vec<Approximate>,
        tail: &[Approximate],
        (query, narrowed): (&[f32], &[Half]),
    ) -> Found {
        let b = self.book.read();
        // The decision is made on exact similarities. A slot whose exact similarity cannot
        // reach the floor is not rescored: its estimate stays, and is still below every
        // rescored slot at or above the floor (those may sit up to 2^-11 below it at the
        // stored precision, hence the margin). A miss, whose beam and tail are all such slots,
        // then reads no stored vector. A dead slot keeps its estimate: it is only counted,
        // never returned.
        let mut top: Vec<(usize, f32)> = raw
            .iter()
            .chain(tail)
            .map(|a| {
                let exact = (a.ceiling >= floor - RESCORE_MARGIN)
                    .then(|| b.slots.get(a.slot)?.vector.as_ref())
                    .flatten()
                    .map(|v| similarity(narrowed, v));
                (a.slot, exact.unwrap_or(a.sim))
            })
            .collect();
        let by_sim = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1);
        if top.len() > k && k > 0 {
            top.select_nth_unstable_by(k - 1, by_sim);
        }
        top.truncate(k);
        // What is returned is scored against the query as given, only the stored side rounded.
        for (slot, sim) in &mut top {
            if *sim >= floor - RESCORE_MARGIN
                && let Some(v) = b.slots.get(*slot).and_then(|s| s.vector.as_ref())
            {
                *sim = similarity_to(query, v);
            }
        }
        top.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        let raw_len = top.len();
        let raw_worst = top.last().map_or(-1.0, |r| r.1);
        let raw_best = top.first().map_or(-1.0, |r| r.1);
        let candidates = top
            .into_iter()
            .filter(|&(_, sim)| sim >= floor)
            .filter_map(|(slot, similarity)| {
                let s = b.slots.get(slot)?;
                // Dead since the tail was scanned: skipped, like any dead slot.
                s.vector.as_ref()?;
                Some(Candidate {
                    key: s.key,
                    seq: s.seq,
                    similarity,
                })
            })
            .collect();
        Found {
            candidates,
            raw_len,
            raw_worst,
            raw_best,
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
    use crate::vector::half::narrow;
    use crate::vector::link_graph::LinkGraph;

    fn v(x: f32, y: f32) -> HalfVector {
        narrow(&[x, y])
    }

    /// The similarity the segment returns: the query as given, the vector as stored.
    fn sim(q: &[f32], v: &[f32]) -> f32 {
        similarity_to(q, &narrow(v))
    }

    #[test]
    fn search_activity_counts_a_new_cache_and_a_recent_search_as_busy() {
        let a = SearchActivity::default();
        assert!(a.searched_within(60_000), "a new cache is assumed busy");
        assert!(!a.searched_within(0), "nothing is within zero milliseconds");
        let later = SearchActivity {
            born: Instant::now() - std::time::Duration::from_secs(5),
            last_ms: AtomicU64::new(0),
        };
        assert!(!later.searched_within(QUIET_MS), "no search for 5 s: quiet");
        later.note_search();
        assert!(later.searched_within(QUIET_MS), "a search just now: busy");
    }

    #[test]
    fn replace_and_remove_track_seq() {
        let s = Segment::flat(Default::default());
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
        let s = Segment::flat(Default::default());
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

    /// Deterministic pseudo-random unit vectors (xorshift), so the test needs no RNG crate.
    fn random_units(n: usize, dim: usize, mut seed: u64) -> Vec<Arc<[f32]>> {
        (0..n)
            .map(|_| {
                let raw: Vec<f32> = (0..dim)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        (seed % 2001) as f32 / 1000.0 - 1.0
                    })
                    .collect();
                let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
                Arc::from(raw.iter().map(|x| x / norm).collect::<Vec<_>>())
            })
            .collect()
    }

    fn key_of(i: usize) -> Key {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&(i as u64).to_le_bytes());
        k
    }

    fn graph_segment(vectors: &[Arc<[f32]>]) -> Segment {
        let live = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| LiveVector {
                key: key_of(i),
                seq: i as u64,
                vector: narrow(v),
            })
            .collect();
        Segment::build(
            live,
            Some(Box::new(LinkGraph::new(16, 100, vectors.len() * 2))),
            false,
            Default::default(),
            &|| false,
        )
        .expect("not cancelled")
    }

    fn exact_best(vectors: &[Arc<[f32]>], q: &[f32], live: impl Fn(usize) -> bool) -> usize {
        (0..vectors.len())
            .filter(|&i| live(i))
            .max_by(|&a, &b| sim(q, &vectors[a]).total_cmp(&sim(q, &vectors[b])))
            .unwrap()
    }

    #[test]
    fn graph_view_agrees_with_an_exact_scan() {
        let vectors = random_units(2000, 24, 7);
        let seg = graph_segment(&vectors);
        assert_eq!(
            seg.view.read().covered(),
            2000,
            "built segments start frozen"
        );
        let queries = random_units(200, 24, 99);
        let agree = queries
            .iter()
            .filter(|q| {
                let found = seg.search(q, 1, 64, -1.0);
                let c = found.candidates[0];
                // The walk ranks by 8-bit codes; what the segment returns is exact.
                assert_eq!(c.similarity, sim(q, &vectors[c.seq as usize]));
                c.seq as usize == exact_best(&vectors, q, |_| true)
            })
            .count();
        assert!(agree >= 190, "recall@1 {agree}/200 at ef 64");
    }

    #[test]
    fn a_floor_skips_rescoring_without_changing_what_is_found() {
        // Queries near stored vectors (a hit at most floors) and far from every one (a miss):
        // with a floor, slots whose possible similarity is below it keep their estimates; the
        // candidates must be exactly those of a search that rescores everything, then filters.
        let vectors = random_units(2000, 48, 5);
        let seg = graph_segment(&vectors);
        let noise = random_units(300, 48, 77);
        let queries = noise.iter().enumerate().map(|(i, n)| {
            let near = &vectors[i * 7 % vectors.len()];
            let w = (i % 6) as f32 * 0.15;
            let v: Vec<f32> = near.iter().zip(n.iter()).map(|(a, b)| a + w * b).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        });
        let mut served = 0;
        for q in queries {
            let all = seg.search(&q, 4, 64, -1.0);
            for floor in [0.5f32, 0.8, 0.9, 0.97] {
                let kept: Vec<_> = all
                    .candidates
                    .iter()
                    .filter(|c| c.similarity >= floor)
                    .map(|c| (c.seq, c.similarity))
                    .collect();
                let found = seg.search(&q, 4, 64, floor);
                let got: Vec<_> = found
                    .candidates
                    .iter()
                    .map(|c| (c.seq, c.similarity))
                    .collect();
                assert_eq!(got, kept, "floor {floor}");
                let all_above = all.raw_len == 4 && all.raw_worst >= floor;
                assert_eq!(found.raw_len == 4 && found.raw_worst >= floor, all_above);
                served += got.len();
            }
        }
        assert!(
            served > 300,
            "the queries must exercise hits too ({served})"
        );
    }

    #[test]
    fn a_widened_probe_finds_what_a_wide_search_finds() {
        let vectors = random_units(3000, 24, 17);
        let seg = graph_segment(&vectors);
        let queries = random_units(200, 24, 31);
        let mut agree = 0;
        for q in &queries {
            let mut search = seg.searcher(q);
            let probe = search.find(4, 8, -1.0).candidates[0];
            let widened = search.find(4, 64, -1.0).candidates[0];
            let fresh = seg.search(q, 4, 64, -1.0).candidates[0];
            assert!(
                widened.similarity >= probe.similarity,
                "widening never loses ground"
            );
            agree += usize::from(widened.seq == fresh.seq);
        }
        assert!(
            agree >= 196,
            "widened and fresh wide searches agree on {agree}/200"
        );
    }

    #[test]
    fn tail_inserts_are_found_at_once_and_fold_into_the_view() {
        let mut vectors = random_units(1500, 24, 3);
        let seg = graph_segment(&vectors[..1000]);
        for (i, v) in vectors.iter().enumerate().skip(1000).take(TAIL_LIMIT - 1) {
            seg.insert(key_of(i), i as u64, narrow(v));
            // A vector is its own nearest neighbour the moment it is in.
            assert_eq!(seg.search(v, 1, 16, 0.0).candidates[0].seq, i as u64);
        }
        assert_eq!(
            seg.view.read().covered(),
            1000,
            "still below the tail limit"
        );
        let i = 1000 + TAIL_LIMIT - 1;
        seg.insert(key_of(i), i as u64, narrow(&vectors[i]));
        assert_eq!(seg.view.read().covered(), 1000 + TAIL_LIMIT, "refrozen");
        vectors.truncate(1000 + TAIL_LIMIT);
        for (i, v) in vectors.iter().enumerate().skip(990) {
            assert_eq!(seg.search(v, 1, 16, 0.0).candidates[0].seq, i as u64);
        }
    }

    #[test]
    fn background_indexing_finds_inserts_at_once_and_bounds_the_backlog() {
        let vectors = random_units(1000 + 3 * BACKLOG_LIMIT, 24, 23);
        let live = (0..1000)
            .map(|i| LiveVector {
                key: key_of(i),
                seq: i as u64,
                vector: narrow(&vectors[i]),
            })
            .collect();
        let seg = Arc::new(
            Segment::build(
                live,
                Some(Box::new(LinkGraph::new(16, 100, 8000))),
                true,
                Default::default(),
                &|| false,
            )
            .expect("not cancelled"),
        );
        let mut max_backlog = 0;
        for (i, v) in vectors.iter().enumerate().skip(1000) {
            match seg.insert(key_of(i), i as u64, narrow(v)) {
                AfterInsert::Done => {}
                AfterInsert::Spawn => seg.spawn_indexer(),
                AfterInsert::Wait => seg.wait_for_backlog(),
            }
            max_backlog = max_backlog.max(seg.backlog());
            // Findable the moment insert returns, indexed or not.
            assert_eq!(seg.search(v, 1, 16, 0.0).candidates[0].seq, i as u64);
        }
        assert!(
            max_backlog <= BACKLOG_LIMIT + 1,
            "an insert waits once the graph is {BACKLOG_LIMIT} behind: saw {max_backlog}"
        );
        // The indexer drains the rest and folds it into the view.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while seg.backlog() > 0 || seg.indexing.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "indexer never caught up"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let covered = seg.view.read().covered();
        assert!(
            covered + TAIL_LIMIT > vectors.len(),
            "view covers {covered}"
        );
        let found = vectors
            .iter()
            .enumerate()
            .filter(|(i, v)| seg.search(v, 1, 64, 0.0).candidates[0].seq == *i as u64)
            .count();
        assert!(found >= vectors.len() * 99 / 100, "self-recall {found}");
    }

    #[test]
    fn an_abandoned_segment_stops_indexing_and_releases_waiters() {
        let vectors = random_units(3000, 24, 29);
        let seg = Arc::new(
            Segment::build(
                Vec::new(),
                Some(Box::new(LinkGraph::new(16, 100, 4000))),
                true,
                Default::default(),
                &|| false,
            )
            .expect("not cancelled"),
        );
        seg.abandon();
        for (i, v) in vectors.iter().enumerate() {
            if let AfterInsert::Wait = seg.insert(key_of(i), i as u64, narrow(v)) {
                seg.wait_for_backlog();
            }
        }
        assert!(
            seg.backlog() > BACKLOG_LIMIT,
            "nothing indexes an abandoned segment"
        );
        // Still searchable by its exact tail until it is dropped.
        assert_eq!(seg.search(&vectors[7], 1, 16, 0.0).candidates[0].seq, 7);
    }

    #[test]
    fn dead_slots_route_but_are_never_returned() {
        let vectors = random_units(1500, 24, 11);
        let seg = graph_segment(&vectors);
        for i in (0..1500).step_by(2) {
            assert!(seg.remove(&key_of(i), i as u64));
        }
        // A full refreeze with half the slots dead: their vectors now come from the graph's copy.
        seg.full_at.store(0, Ordering::Release);
        seg.freeze(&seg.indexer.lock());
        assert_eq!(seg.full_at.load(Ordering::Acquire), 1500);
        for (i, q) in random_units(100, 24, 5).iter().enumerate() {
            let found = seg.search(q, 32, 64, -1.0);
            assert!(found.candidates.iter().all(|c| c.seq % 2 == 1), "query {i}");
            assert!(!found.candidates.is_empty());
        }
        for i in (1..1500).step_by(2).take(100) {
            assert_eq!(
                seg.search(&vectors[i], 1, 64, 0.0).candidates[0].seq,
                i as u64
            );
        }
    }

    #[test]
    fn copy_logs_removals_made_during_a_rebuild() {
        let s = Segment::flat(Default::default());
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
