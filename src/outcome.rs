//! What a lookup answers: a hit (with its provenance) or a miss (with the embedding it computed).

use crate::entry::Entry;
use crate::key::Key;
use crate::relevance::Rejection;
use crate::scope::Scope;
use crate::vector::half::widen;
use std::fmt;
use std::sync::Arc;

/// Which path produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Tier 1: the same normalized prompt in the same scope.
    Exact,
    /// Tier 2: a stored prompt whose embedding is at least the threshold similar.
    Semantic,
    /// Tier 1 through an alias: this exact phrasing was served a semantic hit by the same,
    /// still-live entry before (see [`CacheBuilder::alias_hits`](crate::CacheBuilder::alias_hits)).
    /// The similarity is that of the semantic hit.
    Alias,
    /// Tier 1 on another replica: the same prompt in the same scope, found by a
    /// [`SecondTier`](crate::SecondTier) after a local exact miss (the `paracache-redis` crate's
    /// shared tier), or applied with [`Cache::insert_shared`](crate::Cache::insert_shared).
    Shared,
    /// Not cached: `get_or_insert_with` ran the compute function (or waited for another caller's).
    Computed,
}

impl Source {
    /// The lower-case name used in headers and metrics (`exact`, `semantic`, `alias`, `shared`, `computed`).
    ///
    /// ```
    /// assert_eq!(paracache::Source::Semantic.as_str(), "semantic");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Exact => "exact",
            Source::Semantic => "semantic",
            Source::Alias => "alias",
            Source::Shared => "shared",
            Source::Computed => "computed",
        }
    }
}

/// A cached answer. Holds the entry alive (one reference count), so reading it copies nothing.
///
/// ```
/// use paracache::{Cache, Lookup, Scope, Source};
/// let cache: Cache<&str> = Cache::builder(2).build().unwrap();
/// cache.insert(&Scope::global(), "Hi there", vec![1.0, 0.0], "hello!").unwrap();
/// let Lookup::Hit(hit) = cache.lookup(&Scope::global(), " Hi  there ", |_| Ok::<_, std::io::Error>(vec![1.0, 0.0])).unwrap()
/// else { panic!() };
/// assert_eq!((hit.source(), *hit.value(), hit.matched_prompt()), (Source::Exact, "hello!", "Hi there"));
/// ```
pub struct Hit<V> {
    pub(crate) entry: Arc<Entry<V>>,
    pub(crate) source: Source,
    pub(crate) similarity: f32,
}

impl<V> Hit<V> {
    /// The cached value.
    ///
    /// ```
    /// # use paracache::{Cache, Scope};
    /// # let c: Cache<u32> = Cache::builder(1).build().unwrap();
    /// let hit = c.insert(&Scope::global(), "q", vec![1.0], 7).unwrap();
    /// assert_eq!(*hit.value(), 7);
    /// ```
    pub fn value(&self) -> &V {
        &self.entry.value
    }

    /// Which tier answered (or `Computed` for a fresh insert).
    ///
    /// ```
    /// # use paracache::{Cache, Scope, Source};
    /// # let c: Cache<u32> = Cache::builder(1).build().unwrap();
    /// assert_eq!(c.insert(&Scope::global(), "q", vec![1.0], 7).unwrap().source(), Source::Computed);
    /// ```
    pub fn source(&self) -> Source {
        self.source
    }

    /// Cosine similarity between the query and the matched prompt (1.0 for exact hits).
    ///
    /// ```
    /// # use paracache::{Cache, Scope};
    /// # let c: Cache<u32> = Cache::builder(1).build().unwrap();
    /// assert_eq!(c.insert(&Scope::global(), "q", vec![1.0], 7).unwrap().similarity(), 1.0);
    /// ```
    pub fn similarity(&self) -> f32 {
        self.similarity
    }

    /// The stored (normalized) prompt this answer was cached for.
    ///
    /// ```
    /// # use paracache::{Cache, Scope};
    /// # let c: Cache<u32> = Cache::builder(1).build().unwrap();
    /// assert_eq!(c.insert(&Scope::global(), " q ", vec![1.0], 7).unwrap().matched_prompt(), "q");
    /// ```
    pub fn matched_prompt(&self) -> &str {
        &self.entry.prompt
    }

    /// The stored embedding of the matched prompt, at unit length. The cache stores embeddings
    /// at half precision (11 significant bits a component); this is that copy, widened.
    ///
    /// ```
    /// # use paracache::{Cache, Scope};
    /// # let c: Cache<u32> = Cache::builder(2).build().unwrap();
    /// assert_eq!(c.insert(&Scope::global(), "q", vec![0.0, 2.0], 7).unwrap().embedding(), [0.0, 1.0]);
    /// let e = c.insert(&Scope::global(), "r", vec![0.6, 0.8], 8).unwrap().embedding();
    /// assert!((e[0] - 0.6).abs() < 1e-3 && (e[1] - 0.8).abs() < 1e-3);
    /// ```
    pub fn embedding(&self) -> Vec<f32> {
        widen(&self.entry.vector)
    }

    /// The scope the entry lives in (always the scope that was looked up).
    ///
    /// ```
    /// # use paracache::{Cache, Scope};
    /// # let c: Cache<u32> = Cache::builder(1).build().unwrap();
    /// let s = Scope::named("t");
    /// assert_eq!(c.insert(&s, "q", vec![1.0], 7).unwrap().scope(), &s);
    /// ```
    pub fn scope(&self) -> &Scope {
        &self.entry.scope
    }
}

impl<V: Clone> Hit<V> {
    /// A clone of the value (store `Arc<T>` as `V` to make this cheap).
    ///
    /// ```
    /// # use paracache::{Cache, Scope};
    /// # let c: Cache<String> = Cache::builder(1).build().unwrap();
    /// let v: String = c.insert(&Scope::global(), "q", vec![1.0], "a".into()).unwrap().into_value();
    /// assert_eq!(v, "a");
    /// ```
    pub fn into_value(self) -> V {
        self.entry.value.clone()
    }
}

impl<V> Clone for Hit<V> {
    fn clone(&self) -> Self {
        Hit {
            entry: self.entry.clone(),
            source: self.source,
            similarity: self.similarity,
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for Hit<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hit")
            .field("source", &self.source)
            .field("similarity", &self.similarity)
            .field("matched_prompt", &self.matched_prompt())
            .field("value", self.value())
            .finish()
    }
}

/// A lookup that found nothing. Carries the validated embedding (scaled to unit length) so the
/// insert that usually follows does not embed, normalize or hash again: see [`crate::Cache::insert_miss`].
///
/// ```
/// use paracache::{Cache, Lookup, Scope};
/// let cache: Cache<u32> = Cache::builder(2).build().unwrap();
/// let Lookup::Miss(miss) = cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![3.0, 4.0])).unwrap()
/// else { panic!() };
/// assert_eq!(miss.embedding(), &[0.6, 0.8]);
/// ```
#[derive(Clone)]
pub struct Miss {
    pub(crate) scope: Scope,
    pub(crate) prompt: Box<str>,
    pub(crate) key: Key,
    pub(crate) vector: Arc<[f32]>,
    /// Why the most similar candidate at or above the threshold was turned away, if one was.
    pub(crate) rejected: Option<Rejection>,
}

impl Miss {
    /// Why the most similar candidate at or above the threshold was turned away: a guard, the
    /// pair check (with the features that weighed most) or the verifier. `None` when no
    /// candidate reached the threshold.
    ///
    /// ```
    /// use paracache::{Cache, Guard, Lookup, Rejection, Scope};
    /// let cache: Cache<u8> = Cache::builder(2).build().unwrap();
    /// let s = Scope::global();
    /// cache.insert(&s, "How do I enable dark mode?", vec![1.0, 0.0], 1).unwrap();
    /// let near = |_: &str| Ok::<_, std::io::Error>(vec![1.0, 0.05]);
    /// let Lookup::Miss(m) = cache.lookup(&s, "How do I disable dark mode?", near).unwrap() else { panic!() };
    /// assert_eq!(m.rejected_by(), Some(&Rejection::Guard(Guard::Negation)));
    /// let far = |_: &str| Ok::<_, std::io::Error>(vec![0.0, 1.0]);
    /// let Lookup::Miss(m) = cache.lookup(&s, "Something else", far).unwrap() else { panic!() };
    /// assert_eq!(m.rejected_by(), None);
    /// ```
    pub fn rejected_by(&self) -> Option<&Rejection> {
        self.rejected.as_ref()
    }

    /// The embedding computed for the prompt, at unit length.
    ///
    /// ```
    /// # use paracache::{Cache, Lookup, Scope};
    /// # let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// # let Lookup::Miss(m) = cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![2.0])).unwrap() else { panic!() };
    /// assert_eq!(m.embedding(), &[1.0]);
    /// ```
    pub fn embedding(&self) -> &[f32] {
        &self.vector
    }

    /// The normalized prompt that missed.
    ///
    /// ```
    /// # use paracache::{Cache, Lookup, Scope};
    /// # let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// # let Lookup::Miss(m) = cache.lookup(&Scope::global(), " a  b ", |_| Ok::<_, std::io::Error>(vec![1.0])).unwrap() else { panic!() };
    /// assert_eq!(m.prompt(), "a b");
    /// ```
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// The scope that was looked up.
    ///
    /// ```
    /// # use paracache::{Cache, Lookup, Scope};
    /// # let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// # let Lookup::Miss(m) = cache.lookup(&Scope::named("s"), "q", |_| Ok::<_, std::io::Error>(vec![1.0])).unwrap() else { panic!() };
    /// assert_eq!(m.scope(), &Scope::named("s"));
    /// ```
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
}

impl fmt::Debug for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Miss")
            .field("prompt", &self.prompt)
            .field("scope", &self.scope)
            .field("rejected_by", &self.rejected)
            .finish()
    }
}

/// The answer of [`crate::Cache::lookup`].
///
/// ```
/// # use paracache::{Cache, Scope};
/// # let cache: Cache<u32> = Cache::builder(1).build().unwrap();
/// let r = cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![1.0])).unwrap();
/// assert!(!r.is_hit() && r.hit().is_none());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Lookup<V> {
    /// Served from the cache.
    Hit(Hit<V>),
    /// Not in the cache.
    Miss(Miss),
}

impl<V> Lookup<V> {
    /// Whether the cache answered.
    ///
    /// ```
    /// # use paracache::{Cache, Scope};
    /// # let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// # cache.insert(&Scope::global(), "q", vec![1.0], 1).unwrap();
    /// assert!(cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![1.0])).unwrap().is_hit());
    /// ```
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit(_))
    }

    /// The hit, if any.
    ///
    /// ```
    /// # use paracache::{Cache, Scope};
    /// # let cache: Cache<u32> = Cache::builder(1).build().unwrap();
    /// # cache.insert(&Scope::global(), "q", vec![1.0], 1).unwrap();
    /// let r = cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![1.0])).unwrap();
    /// assert_eq!(r.hit().map(|h| *h.value()), Some(1));
    /// ```
    pub fn hit(&self) -> Option<&Hit<V>> {
        match self {
            Lookup::Hit(h) => Some(h),
            Lookup::Miss(_) => None,
        }
    }
}
