//! The one owner of entry state: which entries exist, by key, in sharded maps that both tiers
//! read.
//!
//! An entry exists exactly while it is in this map. Everything else follows it: the eviction
//! policy (moka, in [`crate::policy`]) only proposes which keys to drop and holds no entry, the
//! vector slots are tombstoned by whoever removes an entry from here, aliases name an entry by key
//! and insert sequence and answer only while that very entry is here and live. Removals take the
//! entry out under the shard lock and hand it back, so the caller retires its vector slot and
//! drops the user's value after the lock is released; entries the policy evicts wait in the
//! graveyard until a call with no lock held drops them (a value's `Drop` may call the cache).
//!
//! Reads are also logged here for the policy: moka's `get` records each read in a buffer that
//! the reading thread drains about once every 64 reads (0.27 µs p50 but 7.6 µs p99 on 10k
//! entries). Reading here costs one shard read lock instead, and the policy still learns of each
//! entry's use, sampled to at most one recorded read per entry per [`RECORD_EVERY`]: its recency
//! order is then exact to 100 ms, its frequency sketch still counts every entry in use, and its
//! idle timer is fed often enough (see [`record_interval`]). The sampled reads are handed to the
//! policy in batches, off the lookup path: by inserts and by the cache's read flusher thread.

use crate::entry::Entry;
use crate::key::Key;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const SHARDS: usize = 64;

/// Read logs, each locked on its own so concurrent lookups rarely meet.
const LOGS: usize = 16;

/// Logged reads that fill a log; the lookup that fills one hands it over itself.
pub(crate) const LOG_BATCH: usize = 1024;

/// At most one read per entry per this interval is recorded in the policy.
pub(crate) const RECORD_EVERY: Duration = Duration::from_millis(100);

/// The sampling interval for a cache whose idle timeout is `tti`: at most a sixteenth of it, so
/// an entry in use is never idle-expired by the policy for want of recorded reads.
pub(crate) fn record_interval(tti: Option<Duration>) -> u64 {
    let every = tti.map_or(RECORD_EVERY, |t| RECORD_EVERY.min(t / 16));
    every.as_nanos().min(u64::MAX as u128) as u64
}

type Shard<V> = RwLock<HashMap<Key, Arc<Entry<V>>, BuildHasherDefault<KeyHasher>>>;

pub(crate) struct Entries<V> {
    shards: Box<[Shard<V>]>,
    logs: Box<[Mutex<Vec<Key>>]>,
    /// The log the next insert drains.
    next_log: AtomicUsize,
    /// Entries removed where a lock may be held (the policy's listener), to drop later.
    graveyard: Mutex<Vec<Arc<Entry<V>>>>,
    buried: AtomicBool,
}

impl<V> Entries<V> {
    pub(crate) fn new() -> Self {
        Entries {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            logs: (0..LOGS).map(|_| Mutex::new(Vec::new())).collect(),
            next_log: AtomicUsize::new(0),
            graveyard: Mutex::new(Vec::new()),
            buried: AtomicBool::new(false),
        }
    }

    /// Log a read of `key` for the policy. Returns a full batch for the caller to hand over. A
    /// read that finds its log busy is dropped: moka's own read buffer is lossy the same
    /// way, and the next sampled read of the entry will be logged.
    pub(crate) fn log_read(&self, key: &Key) -> Option<Vec<Key>> {
        let mut log = self.logs[key[14] as usize % LOGS].try_lock()?;
        log.push(*key);
        (log.len() >= LOG_BATCH).then(|| std::mem::take(&mut *log))
    }

    /// The reads logged in one log (in turn), for an insert to hand over.
    pub(crate) fn take_reads(&self) -> Vec<Key> {
        let i = self.next_log.fetch_add(1, Ordering::Relaxed) % LOGS;
        self.logs[i]
            .try_lock()
            .map(|mut log| std::mem::take(&mut *log))
            .unwrap_or_default()
    }

    /// Every logged read (before the policy's maintenance is run on demand).
    pub(crate) fn take_all_reads(&self) -> Vec<Key> {
        self.logs
            .iter()
            .flat_map(|log| std::mem::take(&mut *log.lock()))
            .collect()
    }

    fn shard(&self, key: &Key) -> &Shard<V> {
        &self.shards[key[15] as usize % SHARDS]
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Entry<V>>> {
        self.shard(key).read().get(key).cloned()
    }

    /// Put `entry` under `key`; the entry it replaces is handed back for the caller to retire
    /// (and drop) once no lock is held.
    #[must_use = "the replaced entry must be retired"]
    pub(crate) fn insert(&self, key: Key, entry: Arc<Entry<V>>) -> Option<Arc<Entry<V>>> {
        self.shard(&key).write().insert(key, entry)
    }

    /// Take `key` out if it still maps to the entry with `seq` (a newer insert under the same key
    /// is left alone). The caller retires the entry it gets.
    #[must_use = "the removed entry must be retired"]
    pub(crate) fn remove_if_seq(&self, key: &Key, seq: u64) -> Option<Arc<Entry<V>>> {
        let mut shard = self.shard(key).write();
        if shard.get(key).is_some_and(|e| e.seq == seq) {
            return shard.remove(key);
        }
        None
    }

    /// Take every entry out, shard by shard (`clear`). An insert that lands in a shard after it
    /// was emptied stays: it overlapped the call.
    pub(crate) fn drain(&self) -> Vec<Arc<Entry<V>>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.write().drain().map(|(_, e)| e));
        }
        out
    }

    /// A reference to every entry, shard by shard (snapshots).
    pub(crate) fn all(&self) -> Vec<Arc<Entry<V>>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.read().values().cloned());
        }
        out
    }

    /// How many entries exist.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Keep a removed entry to drop later, outside whatever lock the caller is under.
    pub(crate) fn bury(&self, entry: Arc<Entry<V>>) {
        self.graveyard.lock().push(entry);
        self.buried.store(true, Ordering::Release);
    }

    /// Drop the buried entries. Call with no lock held: a value's `Drop` may call the cache.
    pub(crate) fn release_graveyard(&self) {
        if !self.buried.load(Ordering::Acquire) {
            return;
        }
        self.buried.store(false, Ordering::Release);
        let dead = std::mem::take(&mut *self.graveyard.lock());
        drop(dead);
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
    fn read_logs_hand_over_when_full_or_asked() {
        let index: Entries<()> = Entries::new();
        let key = [7u8; 16];
        for _ in 1..LOG_BATCH {
            assert!(index.log_read(&key).is_none());
        }
        assert_eq!(index.log_read(&key).unwrap().len(), LOG_BATCH, "full");
        assert!(index.log_read(&key).is_none());
        assert_eq!(index.take_all_reads(), vec![key]);
        assert!(index.take_reads().is_empty());
        assert!(index.log_read(&key).is_none());
        let taken: usize = (0..LOGS).map(|_| index.take_reads().len()).sum();
        assert_eq!(taken, 1, "inserts take the logs in turn");
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
