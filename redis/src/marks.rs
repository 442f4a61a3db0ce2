//! The latest stream position this replica has seen acted on, per key and per scope, so an
//! older event or a fetched copy never undoes a newer invalidation.
//!
//! An entry fetched from Redis, or a put read from the stream, goes in only if no delete, purge
//! or own put of its key or scope is newer. The check and the insert hold the key's stripe lock
//! (and purges the write side of `purge`), so a removal cannot land between them.

use super::wire::StreamId;
use crate::Key;
use paracache::Scope;
use parking_lot::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

const STRIPES: usize = 64;

pub(crate) struct Marks {
    keys: moka::sync::Cache<Key, StreamId>,
    scopes: moka::sync::Cache<Scope, StreamId>,
    stripes: Box<[Mutex<()>]>,
    pub(crate) purge: RwLock<()>,
}

impl Marks {
    /// Marks live as long as an entry can: past its TTL, whatever they guard against has
    /// expired anyway.
    pub(crate) fn new(capacity: u64, ttl: Duration) -> Marks {
        Marks {
            keys: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            scopes: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            purge: RwLock::new(()),
        }
    }

    pub(crate) fn lock(&self, key: &Key) -> MutexGuard<'_, ()> {
        self.stripes[key[0] as usize % STRIPES].lock()
    }

    /// Whether something after `id` has already decided this key's or scope's state. The put
    /// `id` itself does not: an entry evicted here may come back from Redis.
    /// Call with the key's stripe held.
    pub(crate) fn supersedes(&self, key: &Key, scope: &Scope, id: StreamId) -> bool {
        self.keys.get(key).is_some_and(|m| m > id) || self.scopes.get(scope).is_some_and(|m| m > id)
    }

    /// Record `id` for the key, keeping the later of the two. Call with the key's stripe held.
    pub(crate) fn mark_key(&self, key: Key, id: StreamId) {
        if self.keys.get(&key).is_none_or(|m| m < id) {
            self.keys.insert(key, id);
        }
    }

    /// Replace the key's mark (an own pending removal learning its real id).
    pub(crate) fn set_key(&self, key: Key, id: StreamId) {
        self.keys.insert(key, id);
    }

    /// Record `id` for the scope, keeping the later. Call with `purge` write-locked.
    pub(crate) fn mark_scope(&self, scope: &Scope, id: StreamId) {
        if self.scopes.get(scope).is_none_or(|m| m < id) {
            self.scopes.insert(scope.clone(), id);
        }
    }

    pub(crate) fn set_scope(&self, scope: &Scope, id: StreamId) {
        self.scopes.insert(scope.clone(), id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_mark_supersedes_earlier_events_only() {
        let m = Marks::new(100, Duration::from_secs(60));
        let (s, k) = (Scope::named("a"), [7u8; 16]);
        assert!(!m.supersedes(&k, &s, StreamId(5, 0)));
        m.mark_key(k, StreamId(5, 0));
        m.mark_key(k, StreamId(3, 0)); // an older mark never moves it back
        assert!(!m.supersedes(&k, &s, StreamId(5, 0)));
        assert!(m.supersedes(&k, &s, StreamId(4, 9)));
        assert!(!m.supersedes(&k, &s, StreamId(5, 1)));
        m.mark_scope(&s, StreamId(9, 0));
        assert!(m.supersedes(&[1u8; 16], &s, StreamId(8, 0)));
        assert!(!m.supersedes(&[1u8; 16], &Scope::named("b"), StreamId(8, 0)));
        m.set_key(k, StreamId::PENDING);
        assert!(m.supersedes(&k, &Scope::named("b"), StreamId(u64::MAX - 1, 0)));
    }
}
