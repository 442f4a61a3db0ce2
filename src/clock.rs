//! Time source for TTL and TTI decisions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the cache reads the time when it decides whether an entry has expired.
///
/// Wall-clock time (not `Instant`) so that a snapshot's expiry times mean the same after a restart.
/// The store's background cleanup uses its own real clock; this clock alone decides what is
/// *served*, which is what lets tests move time without sleeping.
///
/// ```
/// use paracache::{Clock, SystemClock};
/// assert!(SystemClock.now() > std::time::Duration::ZERO);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Time since the Unix epoch.
    fn now(&self) -> Duration;
}

/// The system's wall clock.
///
/// ```
/// use paracache::{Clock, SystemClock};
/// let a = SystemClock.now();
/// assert!(SystemClock.now() >= a);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

/// A clock that moves only when told to; clones share the same time. For tests.
///
/// ```
/// use paracache::{Clock, MockClock};
/// use std::time::Duration;
/// let clock = MockClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now() - t0, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct MockClock(Arc<AtomicU64>);

impl MockClock {
    /// A mock clock starting at the current wall-clock time.
    ///
    /// ```
    /// let _ = paracache::MockClock::new();
    /// ```
    pub fn new() -> Self {
        let now = SystemClock.now().as_nanos().min(u64::MAX as u128) as u64;
        MockClock(Arc::new(AtomicU64::new(now)))
    }

    /// Move the clock forward.
    ///
    /// ```
    /// use paracache::{Clock, MockClock};
    /// let c = MockClock::new();
    /// let t = c.now();
    /// c.advance(std::time::Duration::from_millis(1));
    /// assert!(c.now() > t);
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = by.as_nanos().min(u64::MAX as u128) as u64;
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            });
    }
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MockClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// Nanoseconds since the epoch, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}
