//! The synchronisation primitives of the scope map and its partitions, behind one name so that a
//! `--cfg shuttle` test build can swap in shuttle's, whose scheduler then explores the
//! interleavings of those pieces (`RUSTFLAGS="--cfg shuttle" cargo test --lib shuttle`).
//! Everything else uses parking_lot and std directly.

#[cfg(not(all(shuttle, test)))]
pub(crate) use parking_lot::RwLock;
#[cfg(not(all(shuttle, test)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};

#[cfg(all(shuttle, test))]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(all(shuttle, test))]
pub(crate) use shuttle::sync::{RwLockReadGuard, RwLockWriteGuard};

/// shuttle's `RwLock` with parking_lot's signatures (no poisoning in this crate's use).
#[cfg(all(shuttle, test))]
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(shuttle::sync::RwLock<T>);

#[cfg(all(shuttle, test))]
impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        RwLock(shuttle::sync::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}
