//! Whether an entry may still be served (the one rule both tiers and snapshots apply), the read
//! path that feeds the policy, and how an entry is retired: taken out of
//! [`crate::entries::Entries`], counted, its vector slot tombstoned, its policy ticket dropped.

use crate::cache::{Cache, Inner};
use crate::entry::Entry;
use crate::key::Key;
use crate::partitions::Partitions;
use crate::policy::forget;
use crate::stats::Counters;
use crate::vector::IndexParams;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Why an entry left the cache, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Past its TTL or TTI.
    Expired,
    /// Pushed out to stay within capacity.
    Evicted,
    /// `invalidate`, `invalidate_scope`, `clear`, or found dead after one of them.
    Explicit,
    /// A newer insert under the same key.
    Replaced,
}

/// Count the removal and tombstone the entry's vector slot. Call once per entry: by whoever took
/// it out of `Entries`.
pub(crate) fn retire<V>(
    e: &Entry<V>,
    removal: Removal,
    partitions: &Partitions,
    params: &IndexParams,
    counters: &Arc<Counters>,
) {
    let counter = match removal {
        Removal::Expired => &counters.evicted_expired,
        Removal::Evicted => &counters.evicted_size,
        Removal::Explicit => &counters.evicted_explicit,
        Removal::Replaced => &counters.evicted_replaced,
    };
    Counters::bump(counter);
    if let Some(p) = e.partition.upgrade() {
        p.remove(&e.key, e.seq);
        if !p.is_retired() {
            partitions.maintain(&e.scope, &p, params, counters);
        }
    }
}

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

    /// The entry under `key`, for serving: the read is logged for the policy, sampled per entry.
    /// Also says whether a read was logged.
    pub(crate) fn read(&self, key: &Key) -> (Option<Arc<Entry<V>>>, bool) {
        let Some(e) = self.entries.get(key) else {
            return (None, false);
        };
        let now = self.real_ns();
        let last = e.last_recorded_ns.load(Ordering::Relaxed);
        let sampled = now.saturating_sub(last) >= self.record_every_ns
            && e.last_recorded_ns
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if sampled && let Some(batch) = self.entries.log_read(key) {
            self.record_reads(batch);
        }
        (Some(e), sampled)
    }

    /// Tell the policy of logged reads (each counts as a use of the entry).
    pub(crate) fn record_reads(&self, keys: Vec<Key>) {
        for key in keys {
            let _ = self.policy.get(&key);
        }
    }

    /// Take out, retire and bury the entry under `key` if it is still insert `seq`; then drop its
    /// policy ticket. Whether this call removed it.
    pub(crate) fn remove_if_seq(&self, key: Key, seq: u64, removal: Removal) -> bool {
        let Some(e) = self.entries.remove_if_seq(&key, seq) else {
            return false;
        };
        self.retire(&e, removal);
        forget(&self.policy, key, seq);
        self.entries.bury(e);
        true
    }

    /// [`retire`] with this cache's partitions, index parameters and counters.
    pub(crate) fn retire(&self, e: &Entry<V>, removal: Removal) {
        retire(
            e,
            removal,
            &self.partitions,
            &self.config.index,
            &self.counters,
        );
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

    /// A thread that hands logged reads to the policy every half sampling interval, for as long
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
                    inner.record_reads(inner.entries.take_all_reads());
                }
            });
    }

    /// Whether an entry may be served now; touches it for TTI, and retires it if it expired or
    /// died with its scope or a `clear` (it is buried: the caller may be inside a search).
    pub(crate) fn servable(&self, e: &Arc<Entry<V>>, now: u64) -> bool {
        match self.inner.liveness(e, now) {
            Liveness::Dead => {
                self.inner.remove_if_seq(e.key, e.seq, Removal::Explicit);
                false
            }
            Liveness::Expired => {
                self.inner.remove_if_seq(e.key, e.seq, Removal::Expired);
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
}
