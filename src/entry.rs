//! What the store holds for one cached prompt.

use crate::key::Key;
use crate::scope::Scope;
use crate::vector::partition::{Partition, ScopeState};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Why the cache itself removed an entry, so the store's listener counts the right cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RemovalHint {
    None = 0,
    Expired = 1,
}

pub(crate) struct Entry<V> {
    pub(crate) key: Key,
    pub(crate) scope: Scope,
    pub(crate) prompt: Box<str>,
    pub(crate) vector: Arc<[f32]>,
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
    pub(crate) weight: u32,
    pub(crate) removal_hint: AtomicU8,
    /// When a read of this entry was last recorded in the store (real ns since cache start).
    pub(crate) last_recorded_ns: AtomicU64,
}

impl<V> Entry<V> {
    pub(crate) fn hint(&self) -> RemovalHint {
        match self.removal_hint.load(Ordering::Acquire) {
            1 => RemovalHint::Expired,
            _ => RemovalHint::None,
        }
    }
}
