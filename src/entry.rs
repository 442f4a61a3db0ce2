//! One cached prompt: what [`crate::entries::Entries`] holds and a `Hit` keeps alive.

use crate::key::Key;
use crate::scope::Scope;
use crate::vector::half::HalfVector;
use crate::vector::partition::{Partition, ScopeState};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

pub(crate) struct Entry<V> {
    pub(crate) key: Key,
    pub(crate) scope: Scope,
    pub(crate) prompt: Box<str>,
    /// At half precision (src/vector/half.rs), shared with the index slot.
    pub(crate) vector: HalfVector,
    pub(crate) value: V,
    /// Unique per insert: tells a replaced entry's index slot from its successor's.
    pub(crate) seq: u64,
    /// Cache-wide epoch at insert; `clear()` moves the cache to a new one.
    pub(crate) epoch: u64,
    /// Scope generation at insert; `invalidate_scope` moves the scope to a new one.
    pub(crate) generation: u64,
    pub(crate) scope_state: Arc<ScopeState>,
    /// The partition holding the vector, so removal marks exactly that slot dead.
    pub(crate) partition: Weak<Partition>,
    pub(crate) created_ns: u64,
    pub(crate) last_access_ns: AtomicU64,
    /// When a read of this entry was last recorded in the policy (real ns since cache start).
    pub(crate) last_recorded_ns: AtomicU64,
}
