//! The eviction policy: moka, holding one small ticket per entry and no entry.
//!
//! moka decides *which* key to drop when the cache is over capacity or past a TTL/TTI (its
//! TinyLFU admission and LRU eviction, its timer wheels), and nothing else: whether an entry
//! exists is decided by [`crate::entries::Entries`], whether it may be served by
//! [`crate::liveness`]. Its listener retires the entry a ticket names, if that very insert is
//! still the current one, and buries it for a later drop: the listener may run while moka holds
//! a lock, and a user's value must never be dropped there.

use crate::config::{Capacity, Config};
use crate::entries::Entries;
use crate::key::Key;
use crate::liveness::{Removal, retire};
use crate::partitions::Partitions;
use crate::stats::Counters;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use std::sync::Arc;

/// What the policy knows of an entry: which insert it is and what it weighs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    pub(crate) seq: u64,
    pub(crate) weight: u32,
}

pub(crate) type Policy = moka::sync::Cache<Key, Ticket>;

pub(crate) fn build_policy<V: Send + Sync + 'static>(
    config: &Config<V>,
    entries: Arc<Entries<V>>,
    partitions: Arc<Partitions>,
    counters: Arc<Counters>,
) -> Policy {
    let params = config.index;
    let listener = move |key: Arc<Key>, ticket: Ticket, cause: RemovalCause| {
        let removal = match cause {
            // The insert that replaced it has retired the old entry itself.
            RemovalCause::Replaced => return,
            // Our own removals retire first, then tell the policy: nothing left to do.
            RemovalCause::Explicit => return,
            RemovalCause::Expired => Removal::Expired,
            RemovalCause::Size => Removal::Evicted,
        };
        if let Some(e) = entries.remove_if_seq(&key, ticket.seq) {
            retire(&e, removal, &partitions, &params, &counters);
            entries.bury(e);
        }
    };
    let mut b = moka::sync::Cache::builder().eviction_listener(listener);
    b = match config.capacity {
        Capacity::Entries(n) => b.max_capacity(n),
        Capacity::Bytes(n) => b.max_capacity(n).weigher(|_k: &Key, t: &Ticket| t.weight),
    };
    if let Some(ttl) = config.ttl {
        b = b.time_to_live(ttl);
    }
    if let Some(tti) = config.tti {
        b = b.time_to_idle(tti);
    }
    b.build()
}

/// Drop `key`'s ticket if it is still `seq`'s (the entry was already retired by the caller).
pub(crate) fn forget(policy: &Policy, key: Key, seq: u64) {
    policy.entry(key).and_compute_with(|cur| match cur {
        Some(cur) if cur.value().seq == seq => Op::Remove,
        _ => Op::Nop,
    });
}
