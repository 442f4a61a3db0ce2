//! `get_or_insert_with` and its async twin: lookup, and on a miss compute once per key (or
//! paraphrase) across all concurrent callers.

use crate::cache::Cache;
use crate::error::{BoxError, Error, Result};
use crate::inflight::{LeaderGuard, Outcome, Role};
use crate::key::Key;
use crate::lookup::{Hit, Lookup, Source};
use crate::scope::Scope;
use crate::stats::Counters;
use std::future::Future;
use std::sync::Arc;

/// A miss waiting to be computed.
struct Pending<'s> {
    scope: &'s Scope,
    text: Box<str>,
    key: Key,
    vector: Arc<[f32]>,
    threshold: f32,
}

enum Start<'s, V> {
    Hit(Hit<V>),
    Miss(Pending<'s>),
}

impl<V: Send + Sync + 'static> Cache<V> {
    /// Return the cached answer for `prompt`, or compute, insert and return it.
    ///
    /// Concurrent callers that miss on the same prompt, or on a paraphrase (at the scope's threshold)
    /// of a prompt already being computed in the same scope, wait for that one computation instead
    /// of running their own. If `compute` (or `embed`) fails, nothing is cached and every waiting
    /// caller receives the error. A caller that waited counts as a miss in [`Cache::stats`] and
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
    pub fn get_or_insert_with<F, E1, C, E2>(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: F,
        compute: C,
    ) -> Result<Hit<V>>
    where
        F: FnOnce(&str) -> std::result::Result<Vec<f32>, E1>,
        E1: Into<BoxError>,
        C: FnOnce() -> std::result::Result<V, E2>,
        E2: Into<BoxError>,
    {
        // The async path with a future that is ready at once: the compute runs on this thread
        // and waiting for another caller's flight parks this thread.
        pollster::block_on(
            self.get_or_insert_with_async(scope, prompt, embed, || std::future::ready(compute())),
        )
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
    pub async fn get_or_insert_with_async<F, E1, C, Fut, E2>(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: F,
        compute: C,
    ) -> Result<Hit<V>>
    where
        F: FnOnce(&str) -> std::result::Result<Vec<f32>, E1>,
        E1: Into<BoxError>,
        C: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<V, E2>>,
        E2: Into<BoxError>,
    {
        let pending = match self.start(scope, prompt, embed)? {
            Start::Hit(hit) => return Ok(hit),
            Start::Miss(p) => p,
        };
        let guard = loop {
            match self.inner.inflight.join(
                pending.key,
                scope,
                &pending.text,
                &pending.vector,
                pending.threshold,
                self.inner.config.guards,
            ) {
                Role::Leader(guard) => break guard,
                Role::Follower(flight) => {
                    if let Some(answer) = self.after_wait(&pending, flight.wait_async().await) {
                        return answer;
                    }
                }
            }
        };
        if let Some(hit) = self.find_quiet(&pending) {
            guard.finish(Outcome::Done);
            return Ok(hit);
        }
        Counters::bump(&self.inner.counters.compute_calls);
        let value = compute().await.map_err(Error::compute);
        self.settle(pending, guard, value)
    }

    /// The counted lookup that begins a fetch; a miss becomes a pending computation.
    fn start<'s, F, E1>(&self, scope: &'s Scope, prompt: &str, embed: F) -> Result<Start<'s, V>>
    where
        F: FnOnce(&str) -> std::result::Result<Vec<f32>, E1>,
        E1: Into<BoxError>,
    {
        Ok(match self.lookup(scope, prompt, embed)? {
            Lookup::Hit(hit) => Start::Hit(hit),
            Lookup::Miss(miss) => Start::Miss(Pending {
                threshold: self.threshold_for(scope),
                scope,
                text: miss.prompt,
                key: miss.key,
                vector: miss.vector,
            }),
        })
    }

    /// What a follower does once its leader is done: `None` means try to lead.
    fn after_wait(&self, p: &Pending<'_>, outcome: Outcome) -> Option<Result<Hit<V>>> {
        match outcome {
            Outcome::Failed(e) => Some(Err(e)),
            Outcome::Done | Outcome::Abandoned => self.find_quiet(p).map(Ok),
        }
    }

    /// Both tiers again, without counting (the call was already counted as a miss).
    fn find_quiet(&self, p: &Pending<'_>) -> Option<Hit<V>> {
        if let Some(entry) = self.exact_entry(p.scope, &p.text, &p.key) {
            return Some(Hit {
                entry,
                source: Source::Exact,
                similarity: 1.0,
            });
        }
        self.semantic_search(p.scope, &p.text, &p.vector, p.threshold)
            .map(|(entry, similarity)| Hit {
                entry,
                source: Source::Semantic,
                similarity,
            })
    }

    fn settle(&self, p: Pending<'_>, guard: LeaderGuard<'_>, value: Result<V>) -> Result<Hit<V>> {
        let result = value.and_then(|v| self.insert_checked(p.scope, p.text, p.key, p.vector, v));
        guard.finish(match &result {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Failed(e.clone()),
        });
        result
    }
}
