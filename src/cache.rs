//! The public handle: a cheap `Clone` over shared state.

use crate::alias::Aliases;
use crate::builder::{CacheBuilder, EF_RANGE, valid_ef};
use crate::config::{Capacity, Config};
use crate::embed::EmbedFn;
use crate::entries::{Entries, record_interval};
use crate::entry::Entry;
use crate::error::{BoxError, Error, Result};
use crate::inflight::InFlight;
use crate::key::{Key, exact_key, normalize};
use crate::liveness::Removal;
use crate::outcome::{Hit, Lookup, Miss, Source};
use crate::partitions::Partitions;
use crate::persist::SnapshotReport;
use crate::persist::snapshot;
use crate::policy::{Policy, Ticket, build_policy, forget};
use crate::scope::Scope;
use crate::stats::{Counters, Stats};
use crate::tier::{ExactProbe, NoSecondTier, SecondTier};
use crate::vector::SearchParams;
use crate::vector::half::narrow;
use crate::vector::validate::unit_vector;
use moka::ops::compute::Op;
use serde::Serialize;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The two-tier semantic cache. See the [crate docs](crate) for the design and guarantees.
///
/// `Cache` is `Send + Sync`; clones share the same entries (cloning is one reference count), so
/// hand a clone to every thread or task.
///
/// ```
/// use paracache::{Cache, Lookup, Scope};
/// let cache: Cache<String> = Cache::builder(2).threshold(0.9).build().unwrap();
/// let scope = Scope::builder().tenant("acme").model("m1").build();
/// cache.insert(&scope, "What is Rust?", vec![1.0, 0.1], "A language.".into()).unwrap();
///
/// // A paraphrase with a close embedding is a semantic hit.
/// let r = cache.lookup(&scope, "Tell me what Rust is", |_| Ok::<_, std::io::Error>(vec![1.0, 0.12])).unwrap();
/// assert_eq!(r.hit().unwrap().value(), "A language.");
/// // Another tenant never sees it.
/// let other = Scope::builder().tenant("evil").model("m1").build();
/// assert!(!cache.lookup(&other, "What is Rust?", |_| Ok::<_, std::io::Error>(vec![1.0, 0.1])).unwrap().is_hit());
/// ```
pub struct Cache<V> {
    pub(crate) inner: Arc<Inner<V>>,
}

pub(crate) struct Inner<V> {
    pub(crate) config: Config<V>,
    /// The one owner of entry state: an entry exists while it is here.
    pub(crate) entries: Arc<Entries<V>>,
    /// Which keys to drop for capacity and TTL/TTI (moka, one ticket per entry).
    pub(crate) policy: Policy,
    /// Real time origin for sampling which reads are recorded in the policy.
    pub(crate) started: Instant,
    pub(crate) record_every_ns: u64,
    pub(crate) flusher_started: AtomicBool,
    /// [`crate::vector::SearchParams`] packed, changeable at run time by [`Cache::set_search`].
    pub(crate) search: AtomicU64,
    pub(crate) partitions: Arc<Partitions>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) seq: AtomicU64,
    pub(crate) epoch: AtomicU64,
    pub(crate) inflight: InFlight,
    /// Present when [`CacheBuilder::alias_hits`] is on.
    pub(crate) aliases: Option<Aliases>,
}

impl<V> std::fmt::Debug for Cache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("dimension", &self.inner.config.dimension)
            .field("capacity", &self.inner.config.capacity)
            .field("threshold", &self.inner.config.threshold)
            .field("entries", &self.inner.entries.len())
            .finish_non_exhaustive()
    }
}

impl<V> Clone for Cache<V> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

impl<V: Send + Sync + 'static> Cache<V> {
    /// Start configuring a cache for embeddings of `dimension` components.
    ///
    /// ```
    /// let cache: paracache::Cache<u64> = paracache::Cache::builder(384).build().unwrap();
    /// assert_eq!(cache.dimension(), 384);
    /// ```
    pub fn builder(dimension: usize) -> CacheBuilder<V> {
        CacheBuilder::new(dimension)
    }

    pub(crate) fn from_config(config: Config<V>) -> Self {
        let counters = Arc::new(Counters::default());
        let partitions = Arc::new(Partitions::new());
        let entries = Arc::new(Entries::new());
        let policy = build_policy(
            &config,
            entries.clone(),
            partitions.clone(),
            counters.clone(),
        );
        let aliases = config
            .alias_hits
            .then(|| Aliases::new(config.capacity, config.ttl, config.tti));
        Cache {
            inner: Arc::new(Inner {
                aliases,
                record_every_ns: record_interval(config.tti),
                flusher_started: AtomicBool::new(false),
                search: AtomicU64::new(config.search.pack()),
                started: Instant::now(),
                entries,
                config,
                policy,
                partitions,
                counters,
                seq: AtomicU64::new(0),
                epoch: AtomicU64::new(0),
                inflight: InFlight::default(),
            }),
        }
    }

    /// Change the graph search effort of a running cache: `ef_search` is the widest beam (as in
    /// [`CacheBuilder::hnsw`]) and `adaptive` whether a cheap probe at a quarter of it comes first
    /// (as in [`CacheBuilder::adaptive_search`]). Takes effect from the next lookup; the index is
    /// not rebuilt. A gateway can trade recall for latency under load this way.
    ///
    /// ```
    /// let c = paracache::Cache::<u8>::builder(4).build().unwrap();
    /// c.set_search(128, false).unwrap();
    /// assert!(c.set_search(0, true).is_err());
    /// ```
    pub fn set_search(&self, ef_search: usize, adaptive: bool) -> Result<()> {
        if !valid_ef(ef_search) {
            return Err(Error::InvalidConfig(EF_RANGE.into()));
        }
        let margin = SearchParams::unpack(self.inner.search.load(Ordering::Relaxed)).miss_margin;
        let params = SearchParams::new(ef_search, adaptive, margin);
        self.inner.search.store(params.pack(), Ordering::Relaxed);
        Ok(())
    }

    /// Change the adaptive miss margin of a running cache (as in
    /// [`CacheBuilder::adaptive_miss_margin`]); takes effect from the next lookup.
    ///
    /// ```
    /// let c = paracache::Cache::<u8>::builder(4).build().unwrap();
    /// c.set_adaptive_miss_margin(2.0).unwrap();
    /// assert!(c.set_adaptive_miss_margin(f32::NAN).is_err());
    /// ```
    pub fn set_adaptive_miss_margin(&self, margin: f32) -> Result<()> {
        if !crate::builder::valid_miss_margin(margin) {
            return Err(Error::InvalidConfig(
                crate::builder::MISS_MARGIN_RANGE.into(),
            ));
        }
        let mut params = SearchParams::unpack(self.inner.search.load(Ordering::Relaxed));
        params.miss_margin = margin;
        self.inner.search.store(params.pack(), Ordering::Relaxed);
        Ok(())
    }

    /// The embedding dimension this cache accepts.
    ///
    /// ```
    /// assert_eq!(paracache::Cache::<u8>::builder(8).build().unwrap().dimension(), 8);
    /// ```
    pub fn dimension(&self) -> usize {
        self.inner.config.dimension
    }

    /// How the cache's capacity is counted, and the bound.
    ///
    /// ```
    /// use paracache::{Cache, Capacity};
    /// let c = Cache::<u8>::builder(8).max_entries(500).build().unwrap();
    /// assert_eq!(c.capacity(), Capacity::Entries(500));
    /// ```
    pub fn capacity(&self) -> Capacity {
        self.inner.config.capacity
    }

    /// The graph engine that indexes large scopes ([`CacheBuilder::graph_engine`](crate::CacheBuilder::graph_engine)).
    ///
    /// ```
    /// let c = paracache::Cache::<u8>::builder(4).build().unwrap();
    /// assert_eq!(c.graph_engine(), paracache::GraphEngine::Links);
    /// ```
    pub fn graph_engine(&self) -> crate::GraphEngine {
        self.inner.config.index.engine
    }

    /// The time to live of every entry, if one is set.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = paracache::Cache::<u8>::builder(8).time_to_live(Duration::from_secs(9)).build().unwrap();
    /// assert_eq!(c.time_to_live(), Some(Duration::from_secs(9)));
    /// ```
    pub fn time_to_live(&self) -> Option<Duration> {
        self.inner.config.ttl
    }

    /// The time to idle of every entry, if one is set.
    ///
    /// ```
    /// assert_eq!(paracache::Cache::<u8>::builder(8).build().unwrap().time_to_idle(), None);
    /// ```
    pub fn time_to_idle(&self) -> Option<Duration> {
        self.inner.config.tti
    }

    /// The similarity threshold that applies to `scope`.
    ///
    /// ```
    /// let c = paracache::Cache::<u8>::builder(8).threshold(0.8).build().unwrap();
    /// assert_eq!(c.threshold_for(&paracache::Scope::global()), 0.8);
    /// ```
    pub fn threshold_for(&self, scope: &Scope) -> f32 {
        self.inner.config.threshold_for(scope)
    }

    /// Look a prompt up: exact tier first, then, only if that misses, `embed` is called once and
    /// the semantic tier is searched within `scope`.
    ///
    /// `embed` receives the normalized prompt: a closure or an [`Embedder`](crate::Embedder)'s
    /// [`embed_fn`](crate::Embedder::embed_fn) (see [`EmbedFn`]). An exact hit never calls it. A
    /// miss returns the validated embedding so you can [`insert_miss`](Self::insert_miss) without
    /// embedding again. Errors (bad prompt, failing or invalid embedding) change nothing and are
    /// not counted as lookups.
    ///
    /// ```
    /// use paracache::{Cache, Lookup, Scope};
    /// let cache: Cache<u32> = Cache::builder(2).build().unwrap();
    /// let scope = Scope::global();
    /// let r = cache.lookup(&scope, "q", |_| Ok::<_, std::io::Error>(vec![1.0, 0.0])).unwrap();
    /// let Lookup::Miss(miss) = r else { unreachable!() };
    /// cache.insert_miss(miss, 42).unwrap();
    /// // The repeat is answered without embedding: this closure would fail if it ran.
    /// let r = cache.lookup(&scope, "q", |_| Err::<Vec<f32>, _>(std::io::Error::other("not called"))).unwrap();
    /// assert_eq!(r.hit().map(|h| *h.value()), Some(42));
    /// ```
    pub fn lookup(&self, scope: &Scope, prompt: &str, embed: impl EmbedFn) -> Result<Lookup<V>> {
        self.lookup_through(scope, prompt, embed, &NoSecondTier)
    }

    /// [`lookup`](Self::lookup) with a [`SecondTier`] asked between the exact and the semantic
    /// tier: after a local exact miss and before `embed` is called. A hit it returns counts as an
    /// exact hit in [`Stats`]. See [`SecondTier`] for an example.
    pub fn lookup_through<T: SecondTier<V> + ?Sized>(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: impl EmbedFn,
        tier: &T,
    ) -> Result<Lookup<V>> {
        let text = self.check_prompt(prompt)?;
        let key = exact_key(scope, &text);
        if let Some(hit) = self.exact_hit(scope, &text, &key) {
            return Ok(Lookup::Hit(hit));
        }
        if let Some(hit) = tier.lookup(&ExactProbe::with_key(scope, &text, key)) {
            Counters::bump(&self.inner.counters.exact_hits);
            return Ok(Lookup::Hit(hit));
        }
        let vector = self.embed_checked(&text, embed)?;
        Ok(self.semantic_lookup(scope, text.into(), key, vector))
    }

    /// Return the cached answer for `prompt`, or compute, insert and return it.
    ///
    /// Concurrent callers that miss on the same prompt, or on a paraphrase (at the scope's threshold)
    /// of a prompt already being computed in the same scope, wait for that one computation instead
    /// of running their own. If `compute` fails, nothing is cached and every waiting caller
    /// receives the error; an `embed` failure is returned to its own caller only (it fails before
    /// the call joins a flight). A caller that waited counts as a miss in [`Cache::stats`] and
    /// gets the other caller's entry as an exact or semantic hit.
    ///
    /// ```
    /// use paracache::{Cache, Scope, Source};
    /// let cache: Cache<String> = Cache::builder(2).build().unwrap();
    /// let embed = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.0]);
    /// let first = cache.get_or_insert_with(&Scope::global(), "q", embed, || Ok::<_, std::io::Error>("a".to_string())).unwrap();
    /// assert_eq!(first.source(), Source::Computed);
    /// let again = cache.get_or_insert_with(&Scope::global(), "q", embed, || -> Result<String, std::io::Error> { unreachable!() }).unwrap();
    /// assert_eq!((again.source(), again.value().as_str()), (Source::Exact, "a"));
    /// ```
    pub fn get_or_insert_with<C, E2>(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: impl EmbedFn,
        compute: C,
    ) -> Result<Hit<V>>
    where
        C: FnOnce() -> std::result::Result<V, E2>,
        E2: Into<BoxError>,
    {
        self.get_or_insert_with_through(scope, prompt, embed, &NoSecondTier, compute)
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) for async code: `compute` returns a future
    /// (a model call) that only the leading caller awaits; the others wait without blocking their
    /// executor. Dropping the leader's future releases the waiters, one of which then computes.
    ///
    /// The returned future is `Send` when `V`, `C` and its future are, so it runs on a
    /// multi-threaded runtime.
    ///
    /// ```
    /// use paracache::{Cache, Scope, Source};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache: Cache<String> = Cache::builder(2).build().unwrap();
    /// let embed = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.0]);
    /// let hit = cache.get_or_insert_with_async(&Scope::global(), "q", embed, || async {
    ///     Ok::<_, std::io::Error>("from the model".to_string())
    /// }).await.unwrap();
    /// assert_eq!(hit.source(), Source::Computed);
    /// # });
    /// ```
    pub async fn get_or_insert_with_async<C, Fut, E2>(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: impl EmbedFn,
        compute: C,
    ) -> Result<Hit<V>>
    where
        C: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<V, E2>>,
        E2: Into<BoxError>,
    {
        self.get_or_insert_with_async_through(scope, prompt, embed, &NoSecondTier, compute)
            .await
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) whose lookup goes
    /// [through](Self::lookup_through) a [`SecondTier`]: a repeat that tier answers is neither
    /// embedded nor computed. The caller that computed gets a [`Source::Computed`] hit (a shared
    /// tier publishes that one).
    ///
    /// ```
    /// use paracache::{Cache, ExactProbe, Hit, Scope, SecondTier, Source};
    /// struct Empty;
    /// impl SecondTier<String> for Empty {
    ///     fn lookup(&self, _: &ExactProbe<'_>) -> Option<Hit<String>> { None }
    /// }
    /// let cache: Cache<String> = Cache::builder(2).build().unwrap();
    /// let embed = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.0]);
    /// let hit = cache.get_or_insert_with_through(&Scope::global(), "q", embed, &Empty, || {
    ///     Ok::<_, std::io::Error>("a".to_string())
    /// }).unwrap();
    /// assert_eq!(hit.source(), Source::Computed);
    /// ```
    pub fn get_or_insert_with_through<T, C, E2>(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: impl EmbedFn,
        tier: &T,
        compute: C,
    ) -> Result<Hit<V>>
    where
        T: SecondTier<V> + ?Sized,
        C: FnOnce() -> std::result::Result<V, E2>,
        E2: Into<BoxError>,
    {
        // The async path with a future that is ready at once: the compute runs on this thread
        // and waiting for another caller's flight parks this thread. `compute` runs when the
        // future is polled, inside the flight it leads (so a compute that calls back in for the
        // same prompt is recognised as re-entrant).
        pollster::block_on(
            self.compute_once(scope, prompt, embed, tier, move || async move { compute() }),
        )
    }

    /// [`get_or_insert_with_async`](Self::get_or_insert_with_async) through a [`SecondTier`], as
    /// [`get_or_insert_with_through`](Self::get_or_insert_with_through). The tier is asked on the
    /// caller's thread, before the first await.
    ///
    /// ```
    /// use paracache::{Cache, ExactProbe, Hit, Scope, SecondTier, Source};
    /// struct Empty;
    /// impl SecondTier<String> for Empty {
    ///     fn lookup(&self, _: &ExactProbe<'_>) -> Option<Hit<String>> { None }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache: Cache<String> = Cache::builder(2).build().unwrap();
    /// let embed = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.0]);
    /// let hit = cache.get_or_insert_with_async_through(&Scope::global(), "q", embed, &Empty, || async {
    ///     Ok::<_, std::io::Error>("a".to_string())
    /// }).await.unwrap();
    /// assert_eq!(hit.source(), Source::Computed);
    /// # });
    /// ```
    pub async fn get_or_insert_with_async_through<T, C, Fut, E2>(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: impl EmbedFn,
        tier: &T,
        compute: C,
    ) -> Result<Hit<V>>
    where
        T: SecondTier<V> + ?Sized,
        C: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<V, E2>>,
        E2: Into<BoxError>,
    {
        self.compute_once(scope, prompt, embed, tier, compute).await
    }

    /// Insert (or replace) the answer for `prompt` in `scope`, with its embedding.
    ///
    /// Validates everything first: on error nothing changes. Returns the new entry as a hit with
    /// [`Source::Computed`].
    ///
    /// ```
    /// use paracache::{Cache, Error, Scope};
    /// let cache: Cache<u32> = Cache::builder(2).build().unwrap();
    /// assert_eq!(cache.insert(&Scope::global(), "  ", vec![1.0, 0.0], 1).unwrap_err(), Error::EmptyPrompt);
    /// assert_eq!(cache.insert(&Scope::global(), "q", vec![0.0, 0.0], 1).unwrap_err(), Error::ZeroVector);
    /// assert_eq!(*cache.insert(&Scope::global(), "q", vec![1.0, 0.0], 1).unwrap().value(), 1);
    /// ```
    pub fn insert(
        &self,
        scope: &Scope,
        prompt: &str,
        embedding: Vec<f32>,
        value: V,
    ) -> Result<Hit<V>> {
        self.insert_aged(scope, prompt, embedding, value, Duration::ZERO)
    }

    /// Insert the answer for a prompt that just missed, reusing the miss's normalized prompt, key
    /// and embedding.
    ///
    /// ```
    /// use paracache::{Cache, Lookup, Scope};
    /// let cache: Cache<&str> = Cache::builder(2).build().unwrap();
    /// if let Lookup::Miss(m) = cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![0.0, 1.0])).unwrap() {
    ///     cache.insert_miss(m, "answer").unwrap();
    /// }
    /// assert!(cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![0.0, 1.0])).unwrap().is_hit());
    /// ```
    pub fn insert_miss(&self, miss: Miss, value: V) -> Result<Hit<V>> {
        // A miss from another cache (another dimension or prompt limit) is checked like any
        // insert: a vector of the wrong length would make every later snapshot unloadable.
        let expected = self.inner.config.dimension;
        if miss.vector.len() != expected {
            return Err(Error::DimensionMismatch {
                expected,
                got: miss.vector.len(),
            });
        }
        self.check_prompt(&miss.prompt)?;
        self.insert_checked(&miss.scope, miss.prompt, miss.key, miss.vector, value)
    }

    /// Insert an entry that another replica (or a [`SecondTier`]) created `age` ago: it expires
    /// (time to live and time to idle) as if it had been inserted here then, and the returned
    /// hit's source is [`Source::Shared`]. Validates like [`insert`](Self::insert); an entry older
    /// than the time to live is inserted already expired, so it is never served.
    ///
    /// ```
    /// use paracache::{Cache, Scope, Source};
    /// use std::time::Duration;
    /// let cache: Cache<u32> = Cache::builder(2).time_to_live(Duration::from_secs(60)).build()?;
    /// let s = Scope::named("acme");
    /// let hit = cache.insert_shared(&s, "q", vec![1.0, 0.0], 7, Duration::from_secs(5))?;
    /// assert_eq!(hit.source(), Source::Shared);
    /// // Older than the TTL: stored dead, never served.
    /// cache.insert_shared(&s, "old", vec![0.0, 1.0], 8, Duration::from_secs(61))?;
    /// assert!(!cache.lookup(&s, "old", |_| Ok::<_, std::io::Error>(vec![0.0, 1.0]))?.is_hit());
    /// # Ok::<(), paracache::Error>(())
    /// ```
    pub fn insert_shared(
        &self,
        scope: &Scope,
        prompt: &str,
        embedding: Vec<f32>,
        value: V,
        age: Duration,
    ) -> Result<Hit<V>> {
        let hit = self.insert_aged(scope, prompt, embedding, value, age)?;
        Ok(Hit {
            source: Source::Shared,
            ..hit
        })
    }

    /// Validate, then insert an entry created `age` ago (`insert` is age zero).
    fn insert_aged(
        &self,
        scope: &Scope,
        prompt: &str,
        embedding: Vec<f32>,
        value: V,
        age: Duration,
    ) -> Result<Hit<V>> {
        let text = self.check_prompt(prompt)?;
        let vector = unit_vector(&embedding, self.inner.config.dimension)?;
        let key = exact_key(scope, &text);
        let now = self.now();
        let age_ns = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        let created = now.saturating_sub(age_ns);
        self.insert_entry(scope, text.into(), key, vector, value, (created, now), true)
    }

    /// Remove the entry for `prompt` in `scope`. Returns whether one was removed. Once this returns,
    /// neither tier serves it.
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// cache.insert(&Scope::global(), "q", vec![1.0], 1).unwrap();
    /// assert!(cache.invalidate(&Scope::global(), "q"));
    /// assert!(!cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![1.0])).unwrap().is_hit());
    /// ```
    pub fn invalidate(&self, scope: &Scope, prompt: &str) -> bool {
        let text = normalize(prompt);
        let key = exact_key(scope, &text);
        if let Some(aliases) = &self.inner.aliases {
            aliases.remove(&key);
        }
        let removed = match self.inner.entries.get(&key) {
            Some(e) if e.scope == *scope && *e.prompt == *text => {
                self.inner.remove_if_seq(key, e.seq, Removal::Explicit)
            }
            _ => false,
        };
        self.inner.entries.release_graveyard();
        removed
    }

    /// Remove every entry of `scope`, in both tiers, and free its index. Once this returns, nothing
    /// inserted in the scope before the call is served.
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// let (a, b) = (Scope::named("a"), Scope::named("b"));
    /// cache.insert(&a, "q", vec![1.0], 1).unwrap();
    /// cache.insert(&b, "q", vec![1.0], 2).unwrap();
    /// cache.invalidate_scope(&a);
    /// let embed = |_: &str| Ok::<_, std::io::Error>(vec![1.0]);
    /// assert!(!cache.lookup(&a, "q", embed).unwrap().is_hit());
    /// assert!(cache.lookup(&b, "q", embed).unwrap().is_hit());
    /// ```
    pub fn invalidate_scope(&self, scope: &Scope) {
        if let Some(p) = self.inner.partitions.remove(scope) {
            for (key, seq) in p.segment().live_keys() {
                self.inner.remove_if_seq(key, seq, Removal::Explicit);
            }
        }
        self.inner.entries.release_graveyard();
    }

    /// Remove everything. Once this returns, nothing inserted before is served.
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// cache.insert(&Scope::global(), "q", vec![1.0], 1).unwrap();
    /// cache.clear();
    /// assert!(!cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![1.0])).unwrap().is_hit());
    /// ```
    pub fn clear(&self) {
        let inner = &self.inner;
        // Entries inserted before this bump and landing after the drain below are dead by epoch.
        inner.epoch.fetch_add(1, Ordering::AcqRel);
        inner.partitions.drain();
        if let Some(aliases) = &inner.aliases {
            aliases.clear();
        }
        // Each entry leaves the owner map, then the policy, by its own insert sequence: an
        // insert racing with this call is either taken out here or stays whole in both, never
        // in one of them only (which is what moka's `invalidate_all` would allow).
        let dead = inner.entries.drain();
        for e in &dead {
            inner.retire(e, Removal::Explicit);
            forget(&inner.policy, e.key, e.seq);
        }
        drop(dead);
        inner.entries.release_graveyard();
    }

    /// A copy of the counters. See [`Stats`] for what adds up to what.
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// cache.insert(&Scope::global(), "q", vec![1.0], 1).unwrap();
    /// let _ = cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![1.0])).unwrap();
    /// cache.run_pending_tasks();
    /// let s = cache.stats();
    /// assert_eq!((s.inserts, s.exact_hits, s.entries, s.index_live), (1, 1, 1, 1));
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot(
            self.inner.entries.len() as u64,
            self.inner.partitions.totals(),
        )
    }

    /// Run the eviction policy's pending maintenance now (evictions and expirations it has
    /// decided), so that `stats()` and index counts are exact. The policy does this by itself as
    /// the cache is used.
    ///
    /// ```
    /// let c = paracache::Cache::<u8>::builder(1).build().unwrap();
    /// c.run_pending_tasks();
    /// ```
    pub fn run_pending_tasks(&self) {
        self.inner.record_reads(self.inner.entries.take_all_reads());
        self.inner.policy.run_pending_tasks();
        self.inner.entries.release_graveyard();
    }

    /// Rebuild, on this thread, every partition that has passed its dead-share bound or the exact
    /// scan limit, first waiting for any background rebuild of it to finish, then link into the
    /// graph every vector the background indexer has not reached yet
    /// ([`Stats::index_pending`]). Rebuilds and indexing otherwise happen by themselves in the
    /// background; call this to settle the index now (e.g. before measuring memory or latency,
    /// or saving).
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let c: Cache<u32> = Cache::builder(2).exact_scan_limit(8).build().unwrap();
    /// for i in 0..200u32 {
    ///     let a = i as f32 * 0.01;
    ///     c.insert(&Scope::global(), &format!("q{i}"), vec![a.cos(), a.sin()], i).unwrap();
    /// }
    /// c.compact();
    /// let s = c.stats();
    /// assert_eq!((s.index_live, s.index_pending), (200, 0));
    /// assert!(s.rebuilds >= 1, "promoted to a graph");
    /// ```
    pub fn compact(&self) {
        let params = self.inner.config.index;
        for (_, p) in self.inner.partitions.all() {
            while !p.claim_rebuild() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if p.wanted_rebuild(&params) == crate::vector::partition::Rebuild::None {
                p.release_claim();
            } else if p.rebuild(&params) {
                Counters::bump(&self.inner.counters.rebuilds);
            }
            // Vectors the background indexer has not linked yet go in now, on this thread.
            p.segment().index_now();
        }
    }

    /// Number of scopes that currently hold indexed vectors.
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// cache.insert(&Scope::named("a"), "q", vec![1.0], 1).unwrap();
    /// assert_eq!(cache.scope_count(), 1);
    /// ```
    pub fn scope_count(&self) -> usize {
        self.inner.partitions.len()
    }

    /// Normalize and check a prompt as every lookup and insert does: the [normalized](crate::normalize)
    /// text, or [`Error::EmptyPrompt`] / [`Error::PromptTooLarge`].
    ///
    /// ```
    /// use paracache::{Cache, Error};
    /// let c = Cache::<u8>::builder(2).max_prompt_bytes(8).build().unwrap();
    /// assert_eq!(c.check_prompt("  a   b ").unwrap(), "a b");
    /// assert_eq!(c.check_prompt(" \n").unwrap_err(), Error::EmptyPrompt);
    /// assert!(matches!(c.check_prompt("far too long"), Err(Error::PromptTooLarge { .. })));
    /// ```
    pub fn check_prompt<'p>(&self, prompt: &'p str) -> Result<std::borrow::Cow<'p, str>> {
        let text = normalize(prompt);
        if text.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let max = self.inner.config.max_prompt_bytes;
        if text.len() > max {
            return Err(Error::PromptTooLarge {
                bytes: text.len(),
                max,
            });
        }
        Ok(text)
    }

    pub(crate) fn embed_checked(&self, text: &str, embed: impl EmbedFn) -> Result<Arc<[f32]>> {
        Counters::bump(&self.inner.counters.embed_calls);
        let v = embed(text).map_err(Error::embed)?;
        unit_vector(&v, self.inner.config.dimension)
    }

    pub(crate) fn check_value(&self, value: &V) -> Result<usize> {
        let bytes = (self.inner.config.weigher)(value);
        let max = self.inner.config.max_value_bytes;
        if bytes > max {
            return Err(Error::ValueTooLarge {
                weight: bytes as u64,
                max: max as u64,
            });
        }
        Ok(bytes)
    }

    pub(crate) fn insert_checked(
        &self,
        scope: &Scope,
        prompt: Box<str>,
        key: Key,
        vector: Arc<[f32]>,
        value: V,
    ) -> Result<Hit<V>> {
        let now = self.now();
        self.insert_entry(scope, prompt, key, vector, value, (now, now), true)
    }

    /// Insert with given `(created, last access)` times; `maintain: false` defers rebuilds (a bulk
    /// load maintains every partition once at the end instead).
    #[expect(
        clippy::too_many_arguments,
        reason = "internal; every argument is a distinct part of an entry"
    )]
    pub(crate) fn insert_entry(
        &self,
        scope: &Scope,
        prompt: Box<str>,
        key: Key,
        vector: Arc<[f32]>,
        value: V,
        (created_ns, last_access_ns): (u64, u64),
        maintain: bool,
    ) -> Result<Hit<V>> {
        let value_bytes = self.check_value(&value)?;
        let vector = narrow(&vector);
        let inner = &self.inner;
        let weight = inner
            .config
            .entry_weight(prompt.len(), value_bytes)
            .min(u32::MAX as u64) as u32;
        let epoch = inner.epoch.load(Ordering::Acquire);
        let seq = inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
        // The vector goes in before the entry: whoever retires the entry must find its slot.
        let (partition, generation) = loop {
            let p = inner.partitions.get_or_create(scope);
            if let Some(generation) = p.insert(key, seq, vector.clone()) {
                break (p, generation);
            }
        };
        let entry = Arc::new(Entry {
            key,
            scope: scope.clone(),
            prompt,
            vector,
            value,
            seq,
            epoch,
            generation,
            scope_state: partition.state.clone(),
            partition: Arc::downgrade(&partition),
            created_ns,
            last_access_ns: AtomicU64::new(last_access_ns),
            last_recorded_ns: AtomicU64::new(inner.real_ns()),
        });
        Counters::bump(&inner.counters.inserts);
        // Inside the policy's per-key compute, so concurrent inserts of one key leave the owner
        // map and the policy naming the same insert. The entry it replaces comes out of the
        // closure and is retired and dropped after it, with no lock held.
        let mut replaced = None;
        inner.policy.entry(key).and_compute_with(|_| {
            replaced = inner.entries.insert(key, entry.clone());
            Op::Put(Ticket { seq, weight })
        });
        if let Some(old) = replaced {
            inner.retire(&old, Removal::Replaced);
            drop(old);
        }
        inner.record_reads(inner.entries.take_reads());
        inner.entries.release_graveyard();
        if maintain {
            inner
                .partitions
                .maintain(scope, &partition, &inner.config.index, &inner.counters);
        }
        Ok(Hit {
            entry,
            source: Source::Computed,
            similarity: 1.0,
        })
    }
}

impl<V: Serialize + Send + Sync + 'static> Cache<V> {
    /// Save every live entry to `path`, atomically (temp file, fsync, rename, fsync directory).
    /// Concurrent lookups and inserts go on; entries changed during the save may or may not be in it.
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("cache.snapshot");
    /// let cache: Cache<String> = Cache::builder(2).build().unwrap();
    /// cache.insert(&Scope::global(), "q", vec![1.0, 0.0], "a".into()).unwrap();
    /// assert_eq!(cache.save(&path).unwrap().entries, 1);
    /// let (restored, report) = Cache::<String>::builder(2).build_from_snapshot(&path).unwrap();
    /// assert_eq!(report.entries, 1);
    /// assert!(restored.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![1.0, 0.0])).unwrap().is_hit());
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<SnapshotReport> {
        snapshot::save_inner(&self.inner, path.as_ref())
    }

    /// The snapshot as bytes (same format as [`Cache::save`]), e.g. for object storage.
    ///
    /// ```
    /// let cache: paracache::Cache<u8> = paracache::Cache::builder(2).build().unwrap();
    /// assert_eq!(&cache.to_snapshot_bytes().unwrap()[..8], b"PARACACH");
    /// ```
    pub fn to_snapshot_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        snapshot::write_snapshot(&self.inner, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(v: [f32; 2]) -> impl FnOnce(&str) -> std::result::Result<Vec<f32>, std::io::Error> {
        move |_| Ok(v.to_vec())
    }

    /// The policy holds a ticket for exactly the entries that exist, naming the same insert,
    /// whatever removed the others: capacity eviction, replacement by threads racing on the
    /// same keys, invalidation and `clear`.
    #[test]
    fn the_policy_stays_in_step_with_the_entries() {
        let c: Cache<u64> = Cache::builder(2).max_entries(50).build().unwrap();
        let s = Scope::global();
        std::thread::scope(|t| {
            for w in 0..8u64 {
                let c = c.clone();
                let s = s.clone();
                t.spawn(move || {
                    for i in 0..400u64 {
                        let a = (i % 97) as f32;
                        c.insert(&s, &format!("p{}", i % 97), vec![a.cos(), a.sin()], w)
                            .unwrap();
                    }
                });
            }
        });
        c.invalidate(&s, "p1");
        c.run_pending_tasks();
        let same = |c: &Cache<u64>| {
            let tickets: Vec<(Key, u64)> =
                c.inner.policy.iter().map(|(k, t)| (*k, t.seq)).collect();
            assert_eq!(tickets.len(), c.inner.entries.len());
            for (k, seq) in tickets {
                assert_eq!(c.inner.entries.get(&k).map(|e| e.seq), Some(seq));
            }
        };
        same(&c);
        assert!(c.inner.entries.len() <= 50);
        c.clear();
        c.run_pending_tasks();
        same(&c);
        assert_eq!(c.inner.entries.len(), 0);
    }

    /// MD5 collisions can be manufactured; simulate one by filing an entry under another key.
    #[test]
    fn a_hash_collision_is_a_miss_not_a_wrong_answer() {
        let c: Cache<&str> = Cache::builder(2).build().unwrap();
        let s = Scope::global();
        let a = c
            .insert(&s, "prompt a", vec![1.0, 0.0], "answer a")
            .unwrap();
        let _ = c
            .inner
            .entries
            .insert(exact_key(&s, "prompt b"), a.entry.clone());
        let r = c.lookup(&s, "prompt b", embed([0.0, 1.0])).unwrap();
        assert!(!r.is_hit(), "text mismatch must be a miss");
        // The same text under a colliding key of another scope is a miss too.
        let t = Scope::named("t");
        let _ = c
            .inner
            .entries
            .insert(exact_key(&t, "prompt a"), a.entry.clone());
        assert!(
            !c.lookup(&t, "prompt a", embed([1.0, 0.0]))
                .unwrap()
                .is_hit()
        );
        assert_eq!(c.stats().exact_hits, 0);
    }
}
