//! Where the gateway keeps its answers: a local [`Cache`], or one shared with other gateway
//! processes through Redis ([`SharedCache`], the `--redis URL` option).

use crate::completion::Completion;
use paracache::{BoxError, Cache, EmbedFn, Hit, Lookup, Result, Scope};
use paracache_redis::SharedCache;
use std::future::Future;

/// The cache behind a [`Gateway`](crate::app::Gateway): this process's own, or the shared tier.
#[derive(Debug, Clone)]
pub enum Store {
    /// A cache of this process alone.
    Local(Cache<Completion>),
    /// This process's cache, sharing its entries with every other gateway on the same Redis: an
    /// answer stored by one is an exact hit on the others at once, and a semantic hit there once
    /// their followers have applied it (milliseconds).
    Shared(SharedCache<Completion>),
}

impl From<Cache<Completion>> for Store {
    fn from(cache: Cache<Completion>) -> Self {
        Store::Local(cache)
    }
}

impl From<SharedCache<Completion>> for Store {
    fn from(cache: SharedCache<Completion>) -> Self {
        Store::Shared(cache)
    }
}

impl Store {
    /// The process's own cache (its settings, stats and snapshots).
    pub fn local(&self) -> &Cache<Completion> {
        match self {
            Store::Local(c) => c,
            Store::Shared(s) => s.local(),
        }
    }

    pub(crate) async fn get_or_insert_with_async<C, Fut, E2>(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: impl EmbedFn,
        compute: C,
    ) -> Result<Hit<Completion>>
    where
        C: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Completion, E2>>,
        E2: Into<BoxError>,
    {
        match self {
            Store::Local(c) => {
                c.get_or_insert_with_async(scope, prompt, embed, compute)
                    .await
            }
            Store::Shared(s) => {
                s.get_or_insert_with_async(scope, prompt, embed, compute)
                    .await
            }
        }
    }

    pub(crate) fn lookup(
        &self,
        scope: &Scope,
        prompt: &str,
        embed: impl EmbedFn,
    ) -> Result<Lookup<Completion>> {
        match self {
            Store::Local(c) => c.lookup(scope, prompt, embed),
            Store::Shared(s) => s.lookup(scope, prompt, embed),
        }
    }

    pub(crate) fn insert(
        &self,
        scope: &Scope,
        prompt: &str,
        embedding: Vec<f32>,
        value: Completion,
    ) -> Result<Hit<Completion>> {
        match self {
            Store::Local(c) => c.insert(scope, prompt, embedding, value),
            Store::Shared(s) => s.insert(scope, prompt, embedding, value),
        }
    }

    pub(crate) fn invalidate(&self, scope: &Scope, prompt: &str) -> bool {
        match self {
            Store::Local(c) => c.invalidate(scope, prompt),
            Store::Shared(s) => s.invalidate(scope, prompt),
        }
    }
}
