//! Counters of the shared tier.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the shared tier has done, from [`SharedCache::shared_stats`](crate::SharedCache::shared_stats).
/// The local cache's own counters are in [`Stats`](paracache::Stats).
///
/// ```
/// let s = paracache_redis::SharedStats::default();
/// assert_eq!(s.redis_hits + s.redis_misses, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SharedStats {
    /// Local exact misses answered from Redis (an entry another replica inserted).
    pub redis_hits: u64,
    /// Local exact misses that Redis did not answer either.
    pub redis_misses: u64,
    /// Calls that failed or timed out, and calls skipped because a recent one did or because no
    /// connection was open (one is then opened off the call path), plus the follower's failed
    /// reads and connects. The cache went on local-only for each.
    pub redis_errors: u64,
    /// Puts, deletes and purges written to Redis.
    pub published: u64,
    /// Inserts that could not be shared (Redis unreachable, or a value that does not serialize).
    pub unshared_inserts: u64,
    /// Invalidations waiting for Redis to come back.
    pub pending_invalidations: u64,
    /// Pending invalidations dropped because [`RedisOptions::max_pending`](crate::RedisOptions::max_pending) was reached.
    pub dropped_invalidations: u64,
    /// Events from other replicas applied to the local tiers.
    pub applied_events: u64,
    /// Events or fetched entries not applied because a newer removal had already decided.
    pub superseded: u64,
    /// Entries or events from Redis that failed their checks (corrupt, wrong dimension, a key
    /// that does not match its prompt); ignored.
    pub rejected: u64,
    /// Full reloads from Redis: at start, and after a gap in a stream.
    pub resyncs: u64,
    /// Times Redis was found to have gone back in a bucket: it no longer held the newest event
    /// this replica had seen there (restarted from older data, or empty).
    pub rewinds: u64,
    /// Removals written again to Redis after a rewind, because Redis may have lost them.
    pub reasserted: u64,
    /// Whether the follower is connected to Redis now.
    pub connected: bool,
    /// Median time from an event's write on another replica to its application here, over the
    /// last 4096 events, in microseconds (wall clocks of both replicas).
    pub lag_p50_us: u64,
    /// 99th percentile of the same.
    pub lag_p99_us: u64,
}

const LAG_WINDOW: usize = 4096;

#[derive(Default)]
pub(crate) struct SharedCounters {
    pub(crate) redis_hits: AtomicU64,
    pub(crate) redis_misses: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) unshared_inserts: AtomicU64,
    pub(crate) dropped_invalidations: AtomicU64,
    pub(crate) applied_events: AtomicU64,
    pub(crate) superseded: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) rewinds: AtomicU64,
    pub(crate) reasserted: AtomicU64,
    lags: Mutex<VecDeque<u64>>,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl SharedCounters {
    pub(crate) fn record_lag(&self, us: u64) {
        let mut lags = self.lags.lock();
        if lags.len() == LAG_WINDOW {
            lags.pop_front();
        }
        lags.push_back(us);
    }

    pub(crate) fn snapshot(&self, pending: usize, connected: bool) -> SharedStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut lags: Vec<u64> = self.lags.lock().iter().copied().collect();
        lags.sort_unstable();
        let at = |q: f64| {
            lags.get(((lags.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        SharedStats {
            redis_hits: get(&self.redis_hits),
            redis_misses: get(&self.redis_misses),
            redis_errors: get(&self.redis_errors),
            published: get(&self.published),
            unshared_inserts: get(&self.unshared_inserts),
            pending_invalidations: pending as u64,
            dropped_invalidations: get(&self.dropped_invalidations),
            applied_events: get(&self.applied_events),
            superseded: get(&self.superseded),
            rejected: get(&self.rejected),
            resyncs: get(&self.resyncs),
            rewinds: get(&self.rewinds),
            reasserted: get(&self.reasserted),
            connected,
            lag_p50_us: at(0.50),
            lag_p99_us: at(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_percentiles_come_from_the_recent_window() {
        let c = SharedCounters::default();
        assert_eq!(c.snapshot(0, false).lag_p99_us, 0);
        for us in 1..=100 {
            c.record_lag(us);
        }
        let s = c.snapshot(3, true);
        assert_eq!((s.lag_p50_us, s.lag_p99_us), (51, 99));
        assert_eq!((s.pending_invalidations, s.connected), (3, true));
        for _ in 0..LAG_WINDOW {
            c.record_lag(7);
        }
        assert_eq!(c.snapshot(0, true).lag_p99_us, 7);
    }
}
