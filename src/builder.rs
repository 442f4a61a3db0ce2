//! The consuming builder that validates everything before a cache exists.

use crate::cache::Cache;
use crate::clock::{Clock, SystemClock};
use crate::config::{Capacity, Config, GraphEngine, Weigher};
use crate::error::{Error, Result};
use crate::persist::auto::{AutoSnapshot, start_periodic};
use crate::relevance::{Guards, PairCheck, Verifier, VerifyBand};
use crate::scope::Scope;
use crate::vector::{IndexParams, SearchParams};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Largest `ef_search` or `ef_construction` accepted.
const MAX_EF: usize = 4096;

/// Whether `ef` is an acceptable `ef_search` or `ef_construction`.
pub(crate) fn valid_ef(ef: usize) -> bool {
    (1..=MAX_EF).contains(&ef)
}

/// How far below the threshold a probe's best find must end for the probe to decide a miss
/// ([`CacheBuilder::adaptive_miss_margin`]): 0.1. A probe that ends more than 0.1 below the
/// threshold, yet clearly above chance (`5/√dim`, so it found the query's neighbourhood rather
/// than getting lost in an unrelated one), decides a miss without the full beam; a wider beam
/// on a navigable graph rarely lifts the best find by that much. Measured (BENCHMARKS.md,
/// "Deciding misses on the probe"): every decision equal to an exact scan's on real sentence
/// embeddings (dev-large at 16k and 74k, and all 47 759 decisions of the 81k replay) and on
/// clustered synthetic vectors at 100k, with a miss's p50 about halved on the real ones. Set 2
/// for misses decided by the full beam alone.
pub const DEFAULT_MISS_MARGIN: f32 = 0.1;

/// Whether `m` is an acceptable miss margin.
pub(crate) fn valid_miss_margin(m: f32) -> bool {
    (0.0..=2.0).contains(&m)
}

/// What a rejected miss margin is told.
pub(crate) const MISS_MARGIN_RANGE: &str = "the adaptive miss margin must be in 0..=2";

/// What a rejected `ef_search` or `ef_construction` is told.
pub(crate) const EF_RANGE: &str = "ef_search and ef_construction must be in 1..=4096";

/// Default cosine threshold for a semantic hit.
///
/// With all-MiniLM-L6-v2 on the dev replay (EVALUATION.md), `cos >= 0.90` with the default guards
/// serves 40% of paraphrases at 94.1% precision and gives 0.3% of new prompts a wrong answer;
/// at 0.85 wrong answers to new prompts grow fivefold. Every embedding model has its own scale,
/// so calibrate for yours ([`crate::Calibration`]).
pub const DEFAULT_THRESHOLD: f32 = 0.90;
/// Default capacity when neither `max_entries` nor `max_bytes` is given.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// Configures and builds a [`Cache`]. Every setter consumes and returns the builder; `build`
/// checks all parameters together and returns a typed error instead of panicking.
///
/// ```
/// use paracache::{Cache, Scope};
/// use std::time::Duration;
/// let cache: Cache<String> = Cache::builder(384)
///     .max_bytes(256 << 20)
///     .time_to_live(Duration::from_secs(3600))
///     .threshold(0.92)
///     .scope_threshold(Scope::named("strict-tenant"), 0.97)
///     .hnsw(16, 200, 64)
///     .build()
///     .unwrap();
/// assert_eq!(cache.dimension(), 384);
/// ```
#[must_use]
pub struct CacheBuilder<V> {
    pub(crate) dimension: usize,
    capacity: Option<Capacity>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    threshold: f32,
    scope_thresholds: HashMap<Scope, f32>,
    m: usize,
    ef_construction: usize,
    graph_engine: GraphEngine,
    ef_search: usize,
    adaptive: bool,
    miss_margin: f32,
    exact_scan_limit: usize,
    max_dead_ratio: f32,
    background_rebuild: bool,
    weigher: Option<Weigher<V>>,
    max_value_bytes: Option<usize>,
    max_prompt_bytes: usize,
    clock: Arc<dyn Clock>,
    pub(crate) auto: AutoSnapshot<V>,
    guards: Guards,
    pair_check: Option<PairCheck>,
    verify: Option<VerifyBand>,
    alias_hits: bool,
    pub(crate) snapshot_schema: u32,
}

impl<V: Send + Sync + 'static> CacheBuilder<V> {
    pub(crate) fn new(dimension: usize) -> Self {
        CacheBuilder {
            dimension,
            capacity: None,
            ttl: None,
            tti: None,
            threshold: DEFAULT_THRESHOLD,
            scope_thresholds: HashMap::new(),
            m: 16,
            ef_construction: 200,
            graph_engine: GraphEngine::default(),
            ef_search: 64,
            adaptive: true,
            miss_margin: DEFAULT_MISS_MARGIN,
            exact_scan_limit: 1024,
            max_dead_ratio: 0.25,
            background_rebuild: true,
            weigher: None,
            max_value_bytes: None,
            max_prompt_bytes: 1 << 20,
            clock: Arc::new(SystemClock),
            auto: AutoSnapshot::default(),
            guards: Guards::default(),
            pair_check: Some(PairCheck::default()).filter(|c| c.dimension() == Some(dimension)),
            verify: None,
            alias_hits: true,
            snapshot_schema: 0,
        }
    }

    /// Bound the cache by number of entries (default 10 000).
    ///
    /// ```
    /// let c: paracache::Cache<u8> = paracache::Cache::builder(4).max_entries(100).build().unwrap();
    /// # let _ = c;
    /// ```
    pub fn max_entries(mut self, n: u64) -> Self {
        self.capacity = Some(Capacity::Entries(n));
        self
    }

    /// Bound the cache by estimated bytes: prompt + value (see [`Self::weigher`]) + the vector
    /// twice (entry and graph) + its one-byte codes in the frozen graph + graph links + ~400
    /// bytes of bookkeeping per entry.
    ///
    /// ```
    /// let c: paracache::Cache<u8> = paracache::Cache::builder(4).max_bytes(1 << 20).build().unwrap();
    /// # let _ = c;
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.capacity = Some(Capacity::Bytes(bytes));
        self
    }

    /// Entries are not served (and are reclaimed) this long after insertion.
    ///
    /// ```
    /// let _ = paracache::Cache::<u8>::builder(4).time_to_live(std::time::Duration::from_secs(60));
    /// ```
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Entries are not served (and are reclaimed) this long after their last hit.
    ///
    /// ```
    /// let _ = paracache::Cache::<u8>::builder(4).time_to_idle(std::time::Duration::from_secs(60));
    /// ```
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// Cosine similarity at or above which the semantic tier answers (default
    /// [`DEFAULT_THRESHOLD`]); must lie in `[-1, 1]`.
    ///
    /// ```
    /// let err = paracache::Cache::<u8>::builder(4).threshold(1.5).build().unwrap_err();
    /// assert_eq!(err, paracache::Error::InvalidThreshold(1.5));
    /// ```
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// A threshold for one scope, overriding the default (a strict tenant, a code model...).
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let c: Cache<u8> = Cache::builder(4).scope_threshold(Scope::named("t"), 0.99).build().unwrap();
    /// assert_eq!(c.threshold_for(&Scope::named("t")), 0.99);
    /// assert_eq!(c.threshold_for(&Scope::global()), paracache::DEFAULT_THRESHOLD);
    /// ```
    pub fn scope_threshold(mut self, scope: Scope, threshold: f32) -> Self {
        self.scope_thresholds.insert(scope, threshold);
        self
    }

    /// HNSW graph parameters: `m` links per node (2..=128, default 16), `ef_construction`
    /// (default 200) and `ef_search`, the widest search beam (default 64).
    ///
    /// ```
    /// let err = paracache::Cache::<u8>::builder(4).hnsw(300, 200, 64).build().unwrap_err();
    /// assert!(matches!(err, paracache::Error::InvalidConfig(_)));
    /// ```
    pub fn hnsw(mut self, m: usize, ef_construction: usize, ef_search: usize) -> Self {
        self.m = m;
        self.ef_construction = ef_construction;
        self.ef_search = ef_search;
        self
    }

    /// Which graph indexes scopes past the exact scan limit (default [`GraphEngine::Links`]).
    ///
    /// ```
    /// use paracache::{Cache, GraphEngine};
    /// let c = Cache::<u8>::builder(4).build().unwrap();
    /// assert_eq!(c.graph_engine(), GraphEngine::Links);
    /// ```
    pub fn graph_engine(mut self, engine: GraphEngine) -> Self {
        self.graph_engine = engine;
        self
    }

    /// Search cheaply first (beam `ef_search / 4`) and serve a hit found there at once; a probe
    /// that finds no hit goes on to the full `ef_search` beam from where it stopped, unless it
    /// ended far enough below the threshold to decide the miss itself
    /// ([`CacheBuilder::adaptive_miss_margin`]). Hits then cost the probe, and misses at most
    /// what a plain `ef_search` search costs. On by default; `false` always searches at
    /// `ef_search`.
    ///
    /// ```
    /// let _ = paracache::Cache::<u8>::builder(4).adaptive_search(false).build().unwrap();
    /// ```
    pub fn adaptive_search(mut self, on: bool) -> Self {
        self.adaptive = on;
        self
    }

    /// With adaptive search, a probe whose most similar find is below `threshold - margin`
    /// decides a miss without the full beam: a prompt unlike anything stored (the common miss)
    /// then costs what a hit costs. A hit is never decided this way, and a probe ending within
    /// `margin` of the threshold, or no more similar than unrelated vectors are by chance
    /// (`5/√dim`: a probe lost in an unrelated region), still goes on to the full beam. `margin`
    /// is a cosine distance in `0..=2`; 2 always widens (a miss decided by the full beam alone).
    /// Default [`DEFAULT_MISS_MARGIN`].
    ///
    /// ```
    /// let c = paracache::Cache::<u8>::builder(4).adaptive_miss_margin(2.0).build().unwrap();
    /// assert!(paracache::Cache::<u8>::builder(4).adaptive_miss_margin(-0.1).build().is_err());
    /// ```
    pub fn adaptive_miss_margin(mut self, margin: f32) -> Self {
        self.miss_margin = margin;
        self
    }

    /// Scopes with at most this many live entries answer by exact SIMD scan instead of a graph
    /// (default 1024). Measured on 384-d vectors (`flat_vs_graph` bench, a miss, which the graph
    /// then decided only at its full beam): at 1024 entries the scan costs 0.91× a graph search
    /// (69 vs 75 µs) while being exact, needing no graph memory, and inserting in microseconds
    /// instead of the milliseconds of a graph insert; at 2048 it costs 1.3× (125 vs 96 µs), at
    /// 4096 2.1×.
    ///
    /// ```
    /// let _ = paracache::Cache::<u8>::builder(4).exact_scan_limit(2048).build().unwrap();
    /// ```
    pub fn exact_scan_limit(mut self, n: usize) -> Self {
        self.exact_scan_limit = n;
        self
    }

    /// Rebuild a scope's index when dead vectors pass this share of it (default 0.25, in (0, 1)).
    ///
    /// ```
    /// assert!(paracache::Cache::<u8>::builder(4).max_dead_ratio(0.0).build().is_err());
    /// ```
    pub fn max_dead_ratio(mut self, ratio: f32) -> Self {
        self.max_dead_ratio = ratio;
        self
    }

    /// Build graphs, and add inserted vectors to them, on background threads (default), or
    /// inline in the call that triggered them (deterministic; for tests).
    ///
    /// In the background, an `insert` into a graph partition costs a slot append: the vector is
    /// found by an exact scan of the not-yet-indexed tail until an indexer thread links it into
    /// the graph. An insert waits only when the graph has fallen 256 vectors behind, which
    /// bounds the scan every lookup pays; a lookup never waits for the indexer.
    ///
    /// ```
    /// let _ = paracache::Cache::<u8>::builder(4).background_rebuild(false).build().unwrap();
    /// ```
    pub fn background_rebuild(mut self, on: bool) -> Self {
        self.background_rebuild = on;
        self
    }

    /// How many bytes a value holds (default `size_of::<V>()`), for byte capacity and the value cap.
    ///
    /// ```
    /// let c: paracache::Cache<String> =
    ///     paracache::Cache::builder(4).weigher(|v: &String| v.len()).build().unwrap();
    /// # let _ = c;
    /// ```
    pub fn weigher(mut self, weigher: impl Fn(&V) -> usize + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// Refuse values heavier than this (default 16 MiB, and at most 1/16 of a byte capacity).
    ///
    /// ```
    /// use paracache::{Cache, Error, Scope};
    /// let c: Cache<String> = Cache::builder(2).weigher(|v: &String| v.len())
    ///     .max_value_bytes(4).build().unwrap();
    /// let err = c.insert(&Scope::global(), "q", vec![1.0, 0.0], "too long".into()).unwrap_err();
    /// assert!(matches!(err, Error::ValueTooLarge { .. }));
    /// ```
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = Some(bytes);
        self
    }

    /// Refuse prompts longer than this after normalization (default 1 MiB).
    ///
    /// ```
    /// let _ = paracache::Cache::<u8>::builder(4).max_prompt_bytes(64 << 10).build().unwrap();
    /// ```
    pub fn max_prompt_bytes(mut self, bytes: usize) -> Self {
        self.max_prompt_bytes = bytes;
        self
    }

    /// The clock that decides expiry (default: the system clock). See [`crate::MockClock`].
    ///
    /// ```
    /// let _ = paracache::Cache::<u8>::builder(4).clock(paracache::MockClock::new()).build().unwrap();
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The lexical checks a semantic candidate must pass before it is served (default
    /// [`Guards::default`]: all on). See [`Guards`] for what each catches and EVALUATION.md for
    /// what each costs and gains on real paraphrase data.
    ///
    /// ```
    /// use paracache::{Cache, Guards, Scope};
    /// let c: Cache<u8> = Cache::builder(2).guards(Guards::all().entities(false)).build().unwrap();
    /// c.insert(&Scope::global(), "How do I enable dark mode?", vec![1.0, 0.0], 1).unwrap();
    /// let near = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.01]);
    /// assert!(!c.lookup(&Scope::global(), "How do I disable dark mode?", near).unwrap().is_hit());
    /// assert!(c.lookup(&Scope::global(), "how can I enable dark mode", near).unwrap().is_hit());
    /// assert_eq!(c.stats().guard_rejections, 1);
    /// ```
    pub fn guards(mut self, guards: Guards) -> Self {
        self.guards = guards;
        self
    }

    /// The learned check a semantic candidate must pass after the guards. The default is the
    /// shipped [`PairCheck::default`] (trained on all-MiniLM-L6-v2 vectors) when the cache's
    /// dimension is its 384, else none. `None` serves on the threshold and the guards alone. A
    /// check whose vector weights are for another dimension is refused by `build`. See
    /// [`PairCheck`] and EVALUATION.md.
    ///
    /// ```
    /// use paracache::{Cache, Feature, Lookup, PairCheck, PairFeatures, Rejection, Scope};
    /// let mut w = [0.0; PairFeatures::LEN];
    /// w[0] = 40.0;
    /// w[11] = -4.0; // Feature::AddedWords: a modifier the longer prompt adds
    /// let check = PairCheck::new(w, Vec::new(), -36.0, [0.0; PairFeatures::LEN], Vec::new(), 0.5);
    /// let s = Scope::global();
    /// let near = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.2]); // cosine 0.98
    /// for check in [Some(check), None] {
    ///     let c: Cache<u8> = Cache::builder(2).pair_check(check.clone()).build().unwrap();
    ///     c.insert(&s, "What do Russian Americans think about Putin?", vec![1.0, 0.0], 1).unwrap();
    ///     let r = c.lookup(&s, "What do Russians think about Putin?", near).unwrap();
    ///     assert_eq!(r.is_hit(), check.is_none());
    ///     if let Lookup::Miss(m) = r {
    ///         let Some(Rejection::PairCheck(why)) = m.rejected_by() else { panic!() };
    ///         assert_eq!(why.reasons[0].0, Feature::AddedWords);
    ///         assert_eq!(c.stats().pair_check_rejections, 1);
    ///     }
    /// }
    /// assert!(Cache::<u8>::builder(2).pair_check(Some(PairCheck::default())).build().is_err());
    /// ```
    pub fn pair_check(mut self, check: Option<PairCheck>) -> Self {
        self.pair_check = check;
        self
    }

    /// Ask `verifier` about every semantic candidate whose similarity is at least the threshold
    /// and below `below`, after the guards pass it; candidates at `below` or above are served
    /// without asking. Put an expensive check (a cross-encoder, a small judge model) here so it
    /// runs only on the uncertain few. `below` must be in `(-1, 1.0001]` (above 1 asks about
    /// every candidate).
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let c: Cache<u8> = Cache::builder(2).threshold(0.8)
    ///     .verifier(0.95, |query: &str, matched: &str, _sim: f32| query.len() == matched.len())
    ///     .build().unwrap();
    /// c.insert(&Scope::global(), "abc", vec![1.0, 0.0], 1).unwrap();
    /// let close = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.5]); // cosine 0.89: asked
    /// assert!(!c.lookup(&Scope::global(), "abcd", close).unwrap().is_hit());
    /// assert!(c.lookup(&Scope::global(), "xyz", close).unwrap().is_hit());
    /// let sure = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.1]); // cosine 0.995: not asked
    /// assert!(c.lookup(&Scope::global(), "abcdef", sure).unwrap().is_hit());
    /// assert_eq!(c.stats().verifier_calls, 2);
    /// ```
    pub fn verifier(mut self, below: f32, verifier: impl Verifier) -> Self {
        self.verify = Some(VerifyBand {
            below,
            verifier: Arc::new(verifier),
        });
        self
    }

    /// The version of your value type's serialized form, written into snapshots (default 0).
    /// A snapshot is loaded only by a cache of the same value type (checked by its type name)
    /// and the same schema version: bump it when `V`'s serde form changes incompatibly, and an
    /// old snapshot is refused with [`Error::SnapshotValueType`] instead of loading garbage.
    ///
    /// ```
    /// use paracache::{Cache, Error};
    /// let bytes = Cache::<String>::builder(2).snapshot_schema(1).build()?.to_snapshot_bytes()?;
    /// let err = Cache::<String>::builder(2).snapshot_schema(2).build_from_snapshot_bytes(&bytes).unwrap_err();
    /// assert!(matches!(err, Error::SnapshotValueType(_)));
    /// let err = Cache::<Vec<u64>>::builder(2).snapshot_schema(1).build_from_snapshot_bytes(&bytes).unwrap_err();
    /// assert!(matches!(err, Error::SnapshotValueType(_)));
    /// # Ok::<(), paracache::Error>(())
    /// ```
    pub fn snapshot_schema(mut self, version: u32) -> Self {
        self.snapshot_schema = version;
        self
    }

    /// Remember each phrasing that is served a semantic hit as an alias of the entry that
    /// answered it, so its next repeat is an exact-tier hit ([`Source::Alias`](crate::Source))
    /// that skips the embedding model (default on). An alias answers only while that same entry
    /// is live: eviction, expiry, invalidation or replacement of the entry ends its aliases too.
    /// Aliases are kept in their own bounded map (as many as the entry capacity, or an eighth of
    /// a byte capacity) and are not saved in snapshots.
    ///
    /// ```
    /// use paracache::{Cache, Scope, Source};
    /// let c: Cache<u8> = Cache::builder(2).build().unwrap();
    /// c.insert(&Scope::global(), "What is Rust?", vec![1.0, 0.0], 1).unwrap();
    /// let embed = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.05]);
    /// let first = c.lookup(&Scope::global(), "Tell me what Rust is", embed).unwrap();
    /// assert_eq!(first.hit().unwrap().source(), Source::Semantic);
    /// let no_embed = |_: &str| Err::<Vec<f32>, _>(std::io::Error::other("not called"));
    /// let again = c.lookup(&Scope::global(), "Tell me what Rust is", no_embed).unwrap();
    /// assert_eq!(again.hit().unwrap().source(), Source::Alias);
    /// ```
    pub fn alias_hits(mut self, on: bool) -> Self {
        self.alias_hits = on;
        self
    }

    /// Check every parameter and build the cache.
    ///
    /// ```
    /// assert!(paracache::Cache::<u8>::builder(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<Cache<V>> {
        let bad = |msg: &str| Err(Error::InvalidConfig(msg.to_string()));
        if self.dimension == 0 || self.dimension > 1 << 16 {
            return bad("dimension must be in 1..=65536");
        }
        for t in std::iter::once(self.threshold).chain(self.scope_thresholds.values().copied()) {
            if !(-1.0..=1.0).contains(&t) {
                return Err(Error::InvalidThreshold(t));
            }
        }
        if !(2..=128).contains(&self.m) {
            return bad("hnsw m must be in 2..=128");
        }
        if !valid_miss_margin(self.miss_margin) {
            return Err(Error::InvalidConfig(MISS_MARGIN_RANGE.into()));
        }
        if !valid_ef(self.ef_search) || !valid_ef(self.ef_construction) {
            return bad(EF_RANGE);
        }
        if let Some(d) = self.pair_check.as_ref().and_then(PairCheck::dimension)
            && d != self.dimension
        {
            return bad("the pair check's vector weights are for another dimension");
        }
        if let Some(band) = &self.verify
            && !(band.below > -1.0 && band.below <= 1.0001)
        {
            return bad("the verifier's band must end in (-1, 1.0001]");
        }
        if self
            .auto
            .every
            .as_ref()
            .is_some_and(|(_, every)| *every < crate::persist::auto::MIN_SNAPSHOT_INTERVAL)
        {
            return bad("snapshot_every's interval must be at least 10 ms");
        }
        if !(self.max_dead_ratio > 0.0 && self.max_dead_ratio < 1.0) {
            return bad("max_dead_ratio must be in (0, 1)");
        }
        // The store refuses (panics on) expirations past 1000 years; refuse them here instead.
        const MAX_EXPIRY: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);
        if self
            .ttl
            .into_iter()
            .chain(self.tti)
            .any(|d| d > MAX_EXPIRY || d.is_zero())
        {
            return bad("time_to_live and time_to_idle must be in (0, 1000 years]");
        }
        let capacity = self
            .capacity
            .unwrap_or(Capacity::Entries(DEFAULT_MAX_ENTRIES));
        // moka turns itself off at capacity 0 (it then never evicts and never reports a
        // removal): a cache that stores nothing is not a cache, so it is refused.
        if matches!(capacity, Capacity::Entries(0) | Capacity::Bytes(0)) {
            return bad("capacity must be at least 1 (max_entries or max_bytes)");
        }
        let max_value_bytes = match (self.max_value_bytes, capacity) {
            (Some(b), _) => b,
            (None, Capacity::Bytes(b)) => (b / 16).min(16 << 20) as usize,
            (None, Capacity::Entries(_)) => 16 << 20,
        };
        let config = Config {
            dimension: self.dimension,
            capacity,
            ttl: self.ttl,
            tti: self.tti,
            threshold: self.threshold,
            scope_thresholds: self.scope_thresholds,
            index: IndexParams {
                m: self.m,
                ef_construction: self.ef_construction,
                exact_scan_limit: self.exact_scan_limit,
                max_dead_ratio: self.max_dead_ratio,
                min_dead: 64,
                background: self.background_rebuild,
                engine: self.graph_engine,
            },
            search: SearchParams::new(self.ef_search, self.adaptive, self.miss_margin),
            weigher: self
                .weigher
                .unwrap_or_else(|| Arc::new(|_: &V| std::mem::size_of::<V>())),
            max_value_bytes,
            max_prompt_bytes: self.max_prompt_bytes,
            clock: self.clock,
            auto: self.auto,
            guards: self.guards,
            pair_check: self.pair_check,
            verify: self.verify,
            alias_hits: self.alias_hits,
            snapshot_schema: self.snapshot_schema,
        };
        let cache = Cache::from_config(config);
        start_periodic(Arc::downgrade(&cache.inner));
        Ok(cache)
    }
}
