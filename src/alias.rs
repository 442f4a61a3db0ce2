//! Hit aliasing: a phrasing that was served a semantic hit is remembered as an exact-tier key
//! pointing at the entry that answered it, so its next repeat skips the embedding model.
//!
//! An alias holds no value and keeps nothing alive: it names its target by key and insert
//! sequence, so it answers only while that very entry is servable. An entry that is evicted,
//! expired, invalidated or replaced takes its aliases with it at once.

use crate::config::Capacity;
use crate::key::Key;
use crate::scope::Scope;
use std::sync::Arc;
use std::time::Duration;

/// Fixed bytes of one alias besides its prompt and scope: the map slot, the `Arc` and fields.
const ALIAS_OVERHEAD: usize = 96;

pub(crate) struct Alias {
    pub(crate) scope: Scope,
    pub(crate) prompt: Box<str>,
    /// The entry that answered this phrasing, and which insert of it.
    pub(crate) target: Key,
    pub(crate) seq: u64,
    /// The similarity of the semantic hit that made the alias.
    pub(crate) similarity: f32,
}

/// The bounded map of aliases, kept apart from the entries so it can never push one out.
pub(crate) struct Aliases {
    map: moka::sync::Cache<Key, Arc<Alias>>,
}

impl Aliases {
    /// As many aliases as entries under an entry capacity; under a byte capacity, aliases
    /// weighing at most an eighth of it (an alias is a prompt and a few words, far smaller than
    /// an entry). Aliases live no longer than entries do.
    pub(crate) fn new(capacity: Capacity, ttl: Option<Duration>, tti: Option<Duration>) -> Self {
        let mut b = moka::sync::Cache::builder();
        b = match capacity {
            Capacity::Entries(n) => b.max_capacity(n),
            Capacity::Bytes(bytes) => b.max_capacity(bytes / 8).weigher(|_, a: &Arc<Alias>| {
                let bytes = a.prompt.len() + a.scope.encoding().len() + ALIAS_OVERHEAD;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            }),
        };
        if let Some(ttl) = ttl {
            b = b.time_to_live(ttl);
        }
        if let Some(tti) = tti {
            b = b.time_to_idle(tti);
        }
        Aliases { map: b.build() }
    }

    /// The alias stored under `key`, if it is for exactly this scope and prompt (an MD5 collision
    /// is a miss here as in the exact tier).
    pub(crate) fn get(&self, key: &Key, scope: &Scope, prompt: &str) -> Option<Arc<Alias>> {
        self.map
            .get(key)
            .filter(|a| a.scope == *scope && *a.prompt == *prompt)
    }

    pub(crate) fn insert(&self, key: Key, alias: Alias) {
        self.map.insert(key, Arc::new(alias));
    }

    pub(crate) fn remove(&self, key: &Key) {
        self.map.invalidate(key);
    }

    pub(crate) fn clear(&self) {
        self.map.invalidate_all();
    }
}
