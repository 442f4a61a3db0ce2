//! Both tiers' read path to entries: every entry the store holds, by key, in sharded maps.
//!
//! moka's `get` records each read in a buffer that the reading thread drains about once every
//! 64 reads (BENCHMARKS.md measures `get` alone at 0.27 µs p50 but 7.6 µs p99 on 10k entries).
//! Reading here costs one shard read lock instead, and the store still learns of each entry's
//! use, sampled to at most one recorded read per entry per [`RECORD_EVERY`]: its recency order
//! is then exact to 100 ms, which is ample for prompts that live minutes to hours, its frequency
//! sketch still counts every entry in use, and its idle timer is fed often enough (see
//! [`record_interval`]).
//!
//! The store stays the one source of truth: an entry enters this index inside the store's
//! per-key insert, and leaves it from the store's removal listener (by `seq`, so removing a
//! replaced entry never drops its successor).

use crate::entry::Entry;
use crate::key::Key;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

const SHARDS: usize = 64;

/// At most one read per entry per this interval is recorded in the store.
pub(crate) const RECORD_EVERY: Duration = Duration::from_millis(100);

/// The sampling interval for a cache whose idle timeout is `tti`: at most a sixteenth of it, so
/// an entry in use is never idle-expired by the store for want of recorded reads.
pub(crate) fn record_interval(tti: Option<Duration>) -> u64 {
    let every = tti.map_or(RECORD_EVERY, |t| RECORD_EVERY.min(t / 16));
    every.as_nanos().min(u64::MAX as u128) as u64
}

type Shard<V> = RwLock<HashMap<Key, Arc<Entry<V>>, BuildHasherDefault<KeyHasher>>>;

pub(crate) struct KeyIndex<V> {
    shards: Box<[Shard<V>]>,
}

impl<V> KeyIndex<V> {
    pub(crate) fn new() -> Self {
        KeyIndex {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    fn shard(&self, key: &Key) -> &Shard<V> {
        &self.shards[key[15] as usize % SHARDS]
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Entry<V>>> {
        self.shard(key).read().get(key).cloned()
    }

    pub(crate) fn insert(&self, key: Key, entry: Arc<Entry<V>>) {
        self.shard(&key).write().insert(key, entry);
    }

    /// Remove `key` if it still maps to the entry with `seq`.
    pub(crate) fn remove(&self, key: &Key, seq: u64) {
        let mut shard = self.shard(key).write();
        if shard.get(key).is_some_and(|e| e.seq == seq) {
            shard.remove(key);
        }
    }

    /// Drop every entry `keep` rejects (after `clear`, whose removals the store reports late).
    pub(crate) fn retain(&self, keep: impl Fn(&Entry<V>) -> bool) {
        for shard in self.shards.iter() {
            shard.write().retain(|_, e| keep(e));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }
}

/// Keys are MD5 digests, already uniform: hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_interval_stays_under_a_sixteenth_of_the_idle_timeout() {
        assert_eq!(record_interval(None), 100_000_000);
        assert_eq!(record_interval(Some(Duration::from_secs(60))), 100_000_000);
        assert_eq!(record_interval(Some(Duration::from_micros(160))), 10_000);
    }

    #[test]
    fn key_hasher_spreads_keys_that_differ_in_any_byte() {
        let hash = |k: Key| {
            let mut h = KeyHasher::default();
            h.write(&k);
            h.finish()
        };
        let base = hash([0; 16]);
        for i in 0..16 {
            let mut k = [0u8; 16];
            k[i] = 1;
            assert_ne!(hash(k), base, "byte {i}");
        }
    }
}
