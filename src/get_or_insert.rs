//! `get_or_insert_with` and its async twin: lookup, and on a miss compute once per key (or
//! paraphrase) across all concurrent callers.

use crate::cache::Cache;
use crate::embed::EmbedFn;
use crate::error::{BoxError, Error, Result};
use crate::inflight::{LeaderGuard, Outcome, Role};
use crate::key::Key;
use crate::outcome::{Hit, Lookup, Source};
use crate::scope::Scope;
use crate::stats::Counters;
use crate::tier::SecondTier;
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
    /// The body of [`Cache::get_or_insert_with_async`] (and, through `pollster`, of
    /// [`Cache::get_or_insert_with`], and of their `_through` variants): a counted lookup (through
    /// `tier`), then one computation per flight.
    pub(crate) async fn compute_once<T, C, Fut, E2>(
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
        let pending = match self.start(scope, prompt, embed, tier)? {
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
                self.inner.config.pair_check.as_ref(),
            ) {
                Role::Leader(guard) => break guard,
                Role::Follower(flight) => {
                    if let Some(answer) = self.after_wait(&pending, flight.wait_async().await) {
                        return answer;
                    }
                }
                Role::Alone => {
                    // Called from inside the compute it would wait for: compute, unshared.
                    Counters::bump(&self.inner.counters.compute_calls);
                    let value = compute().await.map_err(Error::compute)?;
                    let Pending {
                        scope,
                        text,
                        key,
                        vector,
                        ..
                    } = pending;
                    return self.insert_checked(scope, text, key, vector, value);
                }
            }
        };
        if let Some(hit) = self.find_quiet(&pending) {
            guard.finish(Outcome::Done);
            return Ok(hit);
        }
        Counters::bump(&self.inner.counters.compute_calls);
        let value = guard.leading(compute()).await.map_err(Error::compute);
        self.settle(pending, guard, value)
    }

    /// The counted lookup that begins a get_or_insert_with; a miss becomes a pending computation.
    fn start<'s, T: SecondTier<V> + ?Sized>(
        &self,
        scope: &'s Scope,
        prompt: &str,
        embed: impl EmbedFn,
        tier: &T,
    ) -> Result<Start<'s, V>> {
        Ok(match self.lookup_through(scope, prompt, embed, tier)? {
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
        self.semantic_search(p.scope, &p.text, &p.vector, p.threshold, &mut None)
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
