//! The entry store (moka): the one source of truth for liveness, its removal listener, and the
//! rules that decide whether an entry may still be served.

use crate::cache::{Cache, Inner};
use crate::config::{Capacity, Config};
use crate::entry::{Entry, RemovalHint};
use crate::key::Key;
use crate::key_index::KeyIndex;
use crate::partitions::Partitions;
use crate::stats::Counters;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) type Store<V> = moka::sync::Cache<Key, Arc<Entry<V>>>;

/// Whether an entry may still be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Live,
    /// Past its TTL or TTI.
    Expired,
    /// Invalidated with its scope or by `clear`.
    Dead,
}

impl<V> Inner<V> {
    /// The rule both tiers and snapshots apply; no side effects.
    pub(crate) fn liveness(&self, e: &Entry<V>, now: u64) -> Liveness {
        if e.epoch != self.epoch.load(Ordering::Acquire)
            || e.generation != e.scope_state.generation.load(Ordering::Acquire)
        {
            return Liveness::Dead;
        }
        let last_access = e.last_access_ns.load(Ordering::Relaxed);
        if self.config.is_expired(e.created_ns, last_access, now) {
            Liveness::Expired
        } else {
            Liveness::Live
        }
    }
}

impl<V: Send + Sync + 'static> Inner<V> {
    pub(crate) fn real_ns(&self) -> u64 {
        self.started.elapsed().as_nanos().min(u64::MAX as u128) as u64
    }

    /// The entry under `key`, for serving: the read is logged for the store, sampled per entry.
    /// Also says whether a read was logged.
    pub(crate) fn read(&self, key: &Key) -> (Option<Arc<Entry<V>>>, bool) {
        let Some(e) = self.keys.get(key) else {
            return (None, false);
        };
        let now = self.real_ns();
        let last = e.last_recorded_ns.load(Ordering::Relaxed);
        let sampled = now.saturating_sub(last) >= self.record_every_ns
            && e.last_recorded_ns
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if sampled && let Some(batch) = self.keys.log_read(key) {
            self.record_reads(batch);
        }
        (Some(e), sampled)
    }

    /// Tell the store of logged reads (each counts as a use of the entry).
    pub(crate) fn record_reads(&self, keys: Vec<Key>) {
        for key in keys {
            let _ = self.store.get(&key);
        }
    }
}

impl<V: Send + Sync + 'static> Cache<V> {
    /// [`Inner::read`], starting the read flusher on the first logged read.
    pub(crate) fn read(&self, key: &Key) -> Option<Arc<Entry<V>>> {
        let (entry, logged) = self.inner.read(key);
        if logged && !self.inner.flusher_started.load(Ordering::Relaxed) {
            self.start_flusher();
        }
        entry
    }

    /// A thread that hands logged reads to the store every half sampling interval, for as long
    /// as the cache lives. If none can be started, full logs are still handed over by lookups.
    fn start_flusher(&self) {
        if self
            .inner
            .flusher_started
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let period = std::time::Duration::from_nanos(self.inner.record_every_ns / 2)
            .max(std::time::Duration::from_millis(1));
        let _ = std::thread::Builder::new()
            .name("paracache-reads".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(period);
                    let Some(inner) = weak.upgrade() else { return };
                    inner.record_reads(inner.keys.take_all_reads());
                }
            });
    }

    /// Whether an entry may be served now; touches it for TTI and reclaims it if it expired.
    pub(crate) fn servable(&self, e: &Arc<Entry<V>>, now: u64) -> bool {
        match self.inner.liveness(e, now) {
            Liveness::Dead => false,
            Liveness::Expired => {
                self.remove_if_seq(e.key, e.seq, RemovalHint::Expired);
                false
            }
            Liveness::Live => {
                if self.inner.config.tti.is_some() {
                    e.last_access_ns.fetch_max(now, Ordering::Relaxed);
                }
                true
            }
        }
    }

    pub(crate) fn remove_exact(&self, e: &Arc<Entry<V>>) -> bool {
        self.remove_if_seq(e.key, e.seq, RemovalHint::None)
    }

    /// Remove `key` from the store only if it still holds the entry with `seq` (a newer insert
    /// under the same key is left alone).
    pub(crate) fn remove_if_seq(&self, key: Key, seq: u64, hint: RemovalHint) -> bool {
        let mut removed = false;
        self.inner
            .store
            .entry(key)
            .and_compute_with(|cur| match cur {
                Some(cur) if cur.value().seq == seq => {
                    cur.value()
                        .removal_hint
                        .store(hint as u8, Ordering::Release);
                    removed = true;
                    Op::Remove
                }
                _ => Op::Nop,
            });
        removed
    }
}

pub(crate) fn build_store<V: Send + Sync + 'static>(
    config: &Config<V>,
    counters: Arc<Counters>,
    partitions: Arc<Partitions>,
    keys: Arc<KeyIndex<V>>,
) -> Store<V> {
    let params = config.index;
    let listener = move |key: Arc<Key>, e: Arc<Entry<V>>, cause: RemovalCause| {
        keys.remove(&key, e.seq);
        let counter = match (e.hint(), cause) {
            (RemovalHint::Expired, _) | (_, RemovalCause::Expired) => &counters.evicted_expired,
            (_, RemovalCause::Size) => &counters.evicted_size,
            (_, RemovalCause::Replaced) => &counters.evicted_replaced,
            (_, RemovalCause::Explicit) => &counters.evicted_explicit,
        };
        Counters::bump(counter);
        if let Some(p) = e.partition.upgrade() {
            p.remove(&e.key, e.seq);
            if !p.is_retired() {
                partitions.maintain(&e.scope, &p, &params, &counters);
            }
        }
    };
    let mut b = moka::sync::Cache::builder().eviction_listener(listener);
    b = match config.capacity {
        Capacity::Entries(n) => b.max_capacity(n),
        Capacity::Bytes(n) => b
            .max_capacity(n)
            .weigher(|_k: &Key, e: &Arc<Entry<V>>| e.weight),
    };
    if let Some(ttl) = config.ttl {
        b = b.time_to_live(ttl);
    }
    if let Some(tti) = config.tti {
        b = b.time_to_idle(tti);
    }
    b.build()
}
