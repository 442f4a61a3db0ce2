//! # paracache-redis: replicas share one semantic cache through Redis
//!
//! Built on the core's public [`SecondTier`](paracache::SecondTier) hook only: a local exact miss
//! asks Redis, and the other replicas' puts and removals are applied with
//! [`Cache::insert_shared`](paracache::Cache::insert_shared),
//! [`Cache::invalidate`](paracache::Cache::invalidate) and
//! [`Cache::invalidate_scope`](paracache::Cache::invalidate_scope). Another engine (Valkey, a
//! key-value store) would need nothing more from the core.
//!
//! Each replica keeps its own [`Cache`] as the fast path. Around it, [`SharedCache`] writes every
//! insert and invalidation to Redis (the entry under a key with a Redis-side TTL, and an event on
//! its scope's bucket stream, in one script), asks Redis on a local exact miss, and runs a
//! follower thread that applies the other replicas' events to the local tiers, so their
//! paraphrases become local semantic hits. See the README's "Scale-out" section for what this
//! guarantees and what it does not.

mod core;
mod follower;
mod layout;
mod link;
mod marks;
mod options;
mod scripts;
mod stats;
mod wire;

pub use options::RedisOptions;
pub use stats::SharedStats;

use self::core::{Core, Removal};
use paracache::{
    BoxError, Cache, EmbedFn, Error, ExactKey, Hit, Lookup, Miss, Result, Scope, Source, normalize,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The exact tier's key as bytes: Redis key names and marks are made from it.
type Key = [u8; 16];

fn exact_key(scope: &Scope, normalized: &str) -> Key {
    *ExactKey::new(scope, normalized).as_bytes()
}

/// A [`Cache`] whose entries are shared with other replicas through Redis.
///
/// - An insert on one replica is an exact hit on every other at once (a local exact miss asks
///   Redis), and a semantic hit there once its follower has applied the event (milliseconds;
///   see [`SharedStats::lag_p99_us`]).
/// - An invalidation or scope purge removes locally before it returns, and is never served by
///   another replica once that replica has applied it. Entries expire everywhere when their Redis
///   key does: replicas age them from the inserting replica's wall clock.
/// - Redis down or slow: no call waits past [`RedisOptions::timeout`] (calls never connect:
///   connections are opened off the call path); the replica works local-only, counts the
///   errors, keeps its invalidations to publish later, and catches up (or reloads) when Redis is
///   back.
/// - Redis back with older data (restarted from an RDB or AOF that lacks its last writes): each
///   replica writes again the removals it knows of that the server lost, and no replica takes
///   entries from a server that restarted from disk until it has been up 2 ×
///   [`RedisOptions::retry_after`] + 1 s; see [`SharedStats::rewinds`] and the README's "Scale-out"
///   section for the exact guarantee.
///
/// The cache must have a TTL ([`CacheBuilder::time_to_live`](paracache::CacheBuilder::time_to_live)): Redis keys expire
/// with it, which bounds Redis memory and lets every replica honour the same expiry.
///
/// ```no_run
/// use paracache::{Cache, Scope};
/// use paracache_redis::{RedisOptions, SharedCache};
/// use std::time::Duration;
/// let local: Cache<String> = Cache::builder(384).time_to_live(Duration::from_secs(3600)).build()?;
/// let cache = SharedCache::connect(local, RedisOptions::new("redis://127.0.0.1:6379/"))?;
/// let scope = Scope::builder().tenant("acme").model("gpt-4o").build();
/// cache.insert(&scope, "What is Rust?", vec![0.1; 384], "A language.".into())?;
/// # Ok::<(), paracache::Error>(())
/// ```
pub struct SharedCache<V: Serialize + DeserializeOwned + Send + Sync + 'static> {
    handle: Arc<Handle<V>>,
}

/// Stops the follower when the last clone goes.
struct Handle<V: Serialize + DeserializeOwned + Send + Sync + 'static> {
    core: Arc<Core<V>>,
}

impl<V: Serialize + DeserializeOwned + Send + Sync + 'static> Drop for Handle<V> {
    fn drop(&mut self) {
        self.core.stop.store(true, Ordering::Relaxed);
    }
}

impl<V: Serialize + DeserializeOwned + Send + Sync + 'static> Clone for SharedCache<V> {
    fn clone(&self) -> Self {
        SharedCache {
            handle: self.handle.clone(),
        }
    }
}

impl<V: Serialize + DeserializeOwned + Send + Sync + 'static> std::fmt::Debug for SharedCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("local", &self.core().cache)
            .field("namespace", &self.core().options.namespace)
            .finish_non_exhaustive()
    }
}

impl<V: Serialize + DeserializeOwned + Send + Sync + 'static> SharedCache<V> {
    /// Attach `local` to the Redis that `options` names and start following the other
    /// replicas. Redis need not be up: the cache starts local-only and loads the shared entries
    /// once it is reachable.
    ///
    /// Errors: invalid options or URL, or a cache without a TTL.
    ///
    /// ```
    /// use paracache::Cache;
    /// use paracache_redis::{RedisOptions, SharedCache};
    /// let no_ttl: Cache<String> = Cache::builder(4).build().unwrap();
    /// let err = SharedCache::connect(no_ttl, RedisOptions::new("redis://127.0.0.1:1/")).unwrap_err();
    /// assert!(err.to_string().contains("TTL"));
    /// ```
    pub fn connect(local: Cache<V>, options: RedisOptions) -> Result<SharedCache<V>> {
        options.validate()?;
        let Some(ttl) = local.time_to_live() else {
            return Err(Error::InvalidConfig(
                "a shared cache needs a TTL: Redis keys expire with it".into(),
            ));
        };
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| Error::InvalidConfig(format!("redis url: {e}")))?;
        let link = link::Link::new(client, options.timeout, options.retry_after)
            .map_err(|e| Error::Io(Arc::new(e)))?;
        let core = Arc::new(Core::new(local, options, link, ttl));
        follower::spawn(core.clone()).map_err(|e| Error::Io(Arc::new(e)))?;
        Ok(SharedCache {
            handle: Arc::new(Handle { core }),
        })
    }

    fn core(&self) -> &Core<V> {
        &self.handle.core
    }

    /// The local cache underneath (its own stats, search settings, snapshots). Changes made on it
    /// directly are not shared.
    pub fn local(&self) -> &Cache<V> {
        &self.core().cache
    }

    /// Look a prompt up: the local exact tier, then Redis (an entry another replica inserted,
    /// answered with [`Source::Shared`] and kept locally), then `embed`
    /// and the local semantic tier. As [`Cache::lookup`] otherwise.
    pub fn lookup(&self, scope: &Scope, prompt: &str, embed: impl EmbedFn) -> Result<Lookup<V>> {
        let core = self.core();
        core.cache.lookup_through(scope, prompt, embed, core)
    }

    /// Return the cached answer for `prompt` (local tiers, then Redis, as [`lookup`](Self::lookup)),
    /// or compute it, insert it and share it. As [`Cache::get_or_insert_with`]: concurrent callers
    /// on this replica that miss on the same prompt (or a paraphrase of one being computed) wait
    /// for one computation, and only the caller that computed publishes the entry.
    ///
    /// Single-flight is per replica: two replicas that miss on the same prompt at the same moment
    /// both compute (the later put wins in Redis); see the README's "Scale-out" section for what
    /// coalescing across replicas would take.
    ///
    /// ```
    /// use paracache::{Cache, Embedder, HashEmbedder, Scope, Source};
    /// use paracache_redis::{RedisOptions, SharedCache};
    /// use std::time::Duration;
    /// let local: Cache<String> = Cache::builder(64).time_to_live(Duration::from_secs(3600)).build()?;
    /// // No server on port 1: the replica works local-only (sharing starts once Redis is there).
    /// let cache = SharedCache::connect(local, RedisOptions::new("redis://127.0.0.1:1/"))?;
    /// let e = HashEmbedder::new(64);
    /// let scope = Scope::named("acme");
    /// let hit = cache.get_or_insert_with(&scope, "What is Rust?", e.embed_fn(), || {
    ///     Ok::<_, std::io::Error>("A language.".to_string()) // the model call
    /// })?;
    /// assert_eq!(hit.source(), Source::Computed);
    /// let again = cache.get_or_insert_with(&scope, "What is Rust?", e.embed_fn(), || {
    ///     Err::<String, _>(std::io::Error::other("not called: the answer is cached"))
    /// })?;
    /// assert_eq!((again.source(), again.value().as_str()), (Source::Exact, "A language."));
    /// # Ok::<(), paracache::Error>(())
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
        let core = self.core();
        let hit = core
            .cache
            .get_or_insert_with_through(scope, prompt, embed, core, compute)?;
        self.share_computed(&hit);
        Ok(hit)
    }

    /// [`get_or_insert_with`](Self::get_or_insert_with) for async code, as
    /// [`Cache::get_or_insert_with_async`]: only the leading caller awaits `compute`, the others
    /// wait without blocking their executor. The Redis calls (the lookup's one round trip, the
    /// computed entry's publish) are the blocking client's, each bounded by
    /// [`RedisOptions::timeout`], and run on the calling task's thread. The future is `Send` when
    /// `V`, `C` and its future are.
    ///
    /// ```
    /// use paracache::{Cache, Embedder, HashEmbedder, Scope, Source};
    /// use paracache_redis::{RedisOptions, SharedCache};
    /// use std::time::Duration;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let local: Cache<String> = Cache::builder(64).time_to_live(Duration::from_secs(3600)).build()?;
    /// let cache = SharedCache::connect(local, RedisOptions::new("redis://127.0.0.1:1/"))?;
    /// let e = HashEmbedder::new(64);
    /// let hit = cache
    ///     .get_or_insert_with_async(&Scope::global(), "What is Rust?", e.embed_fn(), || async {
    ///         Ok::<_, std::io::Error>("A language.".to_string()) // the model call
    ///     })
    ///     .await?;
    /// assert_eq!(hit.source(), Source::Computed);
    /// # Ok::<(), paracache::Error>(())
    /// # }).unwrap();
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
        let core = self.core();
        let hit = core
            .cache
            .get_or_insert_with_async_through(scope, prompt, embed, core, compute)
            .await?;
        self.share_computed(&hit);
        Ok(hit)
    }

    /// A hit this call computed is new: share it. Waiters get the leader's entry as an exact or
    /// semantic hit, so each computation is published once.
    fn share_computed(&self, hit: &Hit<V>) {
        if hit.source() == Source::Computed {
            self.core().publish_put(hit);
        }
    }

    /// Insert locally, then share it. As [`Cache::insert`]; an entry that cannot be shared
    /// (Redis away) stays local and is counted in [`SharedStats::unshared_inserts`].
    pub fn insert(
        &self,
        scope: &Scope,
        prompt: &str,
        embedding: Vec<f32>,
        value: V,
    ) -> Result<Hit<V>> {
        let hit = self.core().cache.insert(scope, prompt, embedding, value)?;
        self.core().publish_put(&hit);
        Ok(hit)
    }

    /// Insert the answer for a prompt that just missed, and share it. As [`Cache::insert_miss`].
    pub fn insert_miss(&self, miss: Miss, value: V) -> Result<Hit<V>> {
        let hit = self.core().cache.insert_miss(miss, value)?;
        self.core().publish_put(&hit);
        Ok(hit)
    }

    /// Remove the entry for `prompt` in `scope` here at once and on every replica once it has
    /// applied the event. Returns whether this replica held it. Made while Redis is away, the
    /// invalidation is kept and published when it is back.
    pub fn invalidate(&self, scope: &Scope, prompt: &str) -> bool {
        let text = normalize(prompt);
        if text.is_empty() {
            return false;
        }
        let key = exact_key(scope, &text);
        self.core().remove(Removal::Key {
            scope: scope.clone(),
            prompt: text.into(),
            key,
        })
    }

    /// Remove every entry of `scope`, here at once and on every replica once it has applied the
    /// event, and delete the scope's entries from Redis.
    pub fn invalidate_scope(&self, scope: &Scope) {
        self.core().remove(Removal::Scope(scope.clone()));
    }

    /// What the shared tier has done. The local tiers' counters are in
    /// [`local().stats()`](Cache::stats); lookups answered by Redis count there as exact hits.
    pub fn shared_stats(&self) -> SharedStats {
        let core = self.core();
        core.counters
            .snapshot(core.pending_len(), core.connected.load(Ordering::Relaxed))
    }
}
