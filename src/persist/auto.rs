//! Snapshots the cache takes by itself: every interval, and when the last handle is dropped.

use super::snapshot::{SnapshotReport, save_inner};
use crate::builder::CacheBuilder;
use crate::cache::Inner;
use crate::error::Result;
use crate::stats::Counters;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::{Duration, Instant};

/// How a cache saves itself; monomorphized where `V: Serialize` is known, stored as a plain fn.
pub(crate) type SaveFn<V> = fn(&Inner<V>, &Path) -> Result<SnapshotReport>;

/// Snapshot settings carried in the configuration.
pub(crate) struct AutoSnapshot<V> {
    pub(crate) save: Option<SaveFn<V>>,
    pub(crate) every: Option<(PathBuf, Duration)>,
    pub(crate) on_drop: Option<PathBuf>,
}

impl<V> Default for AutoSnapshot<V> {
    fn default() -> Self {
        AutoSnapshot {
            save: None,
            every: None,
            on_drop: None,
        }
    }
}

impl<V: Serialize + Send + Sync + 'static> CacheBuilder<V> {
    /// Save a snapshot to `path` every `interval` on a background thread, which ends when the last
    /// handle to the cache is dropped. Outcomes are counted in `Stats::snapshots_saved` and
    /// `Stats::snapshot_errors`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache: paracache::Cache<String> = paracache::Cache::builder(2)
    ///     .snapshot_every(dir.path().join("c.snapshot"), std::time::Duration::from_secs(300))
    ///     .build()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    ///
    /// `build()` refuses an interval under [`MIN_SNAPSHOT_INTERVAL`] (a zero interval would save
    /// in a busy loop).
    pub fn snapshot_every(mut self, path: impl Into<PathBuf>, interval: Duration) -> Self {
        self.auto.save = Some(save_inner::<V>);
        self.auto.every = Some((path.into(), interval));
        self
    }

    /// Save a snapshot to `path` when the last handle to the cache is dropped. Errors at that point
    /// cannot be returned and are dropped; call [`crate::Cache::save`] where you need to know.
    ///
    /// ```
    /// use paracache::{Cache, Scope};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("c.snapshot");
    /// let cache: Cache<String> = Cache::builder(2).snapshot_on_drop(&path).build().unwrap();
    /// cache.insert(&Scope::global(), "q", vec![1.0, 0.0], "a".into()).unwrap();
    /// drop(cache);
    /// assert!(path.exists());
    /// ```
    pub fn snapshot_on_drop(mut self, path: impl Into<PathBuf>) -> Self {
        self.auto.save = Some(save_inner::<V>);
        self.auto.on_drop = Some(path.into());
        self
    }
}

/// The shortest interval [`CacheBuilder::snapshot_every`] accepts.
pub const MIN_SNAPSHOT_INTERVAL: Duration = Duration::from_millis(10);

/// How long the periodic thread sleeps at a time, so it notices a dropped cache promptly.
const TICK: Duration = Duration::from_millis(50);

/// Start the periodic snapshot thread, if configured. It holds only a weak handle between saves.
pub(crate) fn start_periodic<V: Send + Sync + 'static>(inner: Weak<Inner<V>>) {
    let Some(strong) = inner.upgrade() else {
        return;
    };
    let (Some(save), Some((path, interval))) =
        (strong.config.auto.save, strong.config.auto.every.clone())
    else {
        return;
    };
    let counters = strong.counters.clone();
    drop(strong);
    let job = move || {
        let mut next = Instant::now() + interval;
        loop {
            while Instant::now() < next {
                if inner.strong_count() == 0 {
                    return;
                }
                std::thread::sleep(TICK.min(next.saturating_duration_since(Instant::now())));
            }
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let counter = match save(&strong, &path) {
                Ok(_) => &strong.counters.snapshots_saved,
                Err(_) => &strong.counters.snapshot_errors,
            };
            Counters::bump(counter);
            drop(strong);
            next = Instant::now() + interval;
        }
    };
    // Without a thread there are no periodic snapshots: count that as an error, never panic.
    if std::thread::Builder::new()
        .name("paracache-snapshot".into())
        .spawn(job)
        .is_err()
    {
        Counters::bump(&counters.snapshot_errors);
    }
}

impl<V> Drop for Inner<V> {
    fn drop(&mut self) {
        if let (Some(save), Some(path)) = (self.config.auto.save, self.config.auto.on_drop.take()) {
            // A panic in a value's `Serialize` must not escape a `Drop` (a second panic while
            // unwinding would abort the process); the save is lost, as any error here is.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| save(self, &path)));
        }
        // Background graph builds hold their partition, not the cache: retiring the partitions
        // stops them within one chunk instead of letting them run on for minutes.
        self.partitions.drain();
    }
}
