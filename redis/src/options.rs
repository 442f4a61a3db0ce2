//! How a [`SharedCache`](crate::SharedCache) reaches Redis.

use paracache::{Error, Result};
use std::time::Duration;

/// Settings for the shared tier. Only the URL is required; every default is explained on its
/// setter.
///
/// ```
/// use paracache_redis::RedisOptions;
/// use std::time::Duration;
/// let o = RedisOptions::new("redis://127.0.0.1:6379/")
///     .namespace("gateway-prod")
///     .timeout(Duration::from_millis(20));
/// assert!(format!("{o:?}").contains("timeout: 20ms"));
/// ```
#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub(crate) url: String,
    pub(crate) namespace: String,
    pub(crate) buckets: u16,
    pub(crate) timeout: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) block: Duration,
    pub(crate) stream_max_len: u64,
    pub(crate) max_pending: usize,
}

impl RedisOptions {
    /// Options for the server at `url` (`redis://host:port/db`).
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            namespace: "paracache".into(),
            buckets: 16,
            timeout: Duration::from_millis(50),
            retry_after: Duration::from_millis(500),
            block: Duration::from_millis(100),
            stream_max_len: 100_000,
            max_pending: 100_000,
        }
    }

    /// Prefix of every key (default `paracache`). Caches that should share must use the same
    /// one; letters, digits, `_`, `-` and `.` only.
    pub fn namespace(mut self, namespace: impl Into<String>) -> RedisOptions {
        self.namespace = namespace.into();
        self
    }

    /// How many hash tags scopes spread over (default 16, at most 16384, the number of Cluster
    /// slots). A scope lives on one shard; more buckets spread scopes over more shards, and each
    /// is one more stream every replica reads. All sharing caches must agree.
    pub fn buckets(mut self, buckets: u16) -> RedisOptions {
        self.buckets = buckets;
        self
    }

    /// The most one lookup, insert or invalidation waits for Redis (default 50 ms: several
    /// loopback or same-zone round trips, far below a model call). Past it the call goes on
    /// local-only and the error is counted. Calls never connect: a connector thread opens
    /// connections (each connect also bounded by this timeout) and a call that finds none ready
    /// goes local at once.
    pub fn timeout(mut self, timeout: Duration) -> RedisOptions {
        self.timeout = timeout;
        self
    }

    /// After a failed call, how long calls skip Redis before trying again (default 500 ms), so an
    /// outage costs one timeout per interval, not one per lookup. The stream follower and the
    /// connector also retry at this interval. A server that restarted from persisted data is
    /// trusted only once it has been up twice this long plus a second, so every live replica has
    /// reconnected and written back the removals the server lost (all sharing caches should
    /// agree).
    pub fn retry_after(mut self, retry_after: Duration) -> RedisOptions {
        self.retry_after = retry_after;
        self
    }

    /// How long the follower's blocking stream read waits for events (default 100 ms). It only
    /// bounds how soon the follower notices it should stop; events arrive as soon as written.
    /// The follower waits for the read's reply up to `block` + 1 s + [`timeout`](Self::timeout),
    /// because Redis ends an idle block on its cron tick (up to `1000 / hz` ms late: 100 ms at
    /// the default `hz 10`).
    pub fn block(mut self, block: Duration) -> RedisOptions {
        self.block = block;
        self
    }

    /// Approximate length each event stream is trimmed to (default 100 000 per bucket). A
    /// replica that falls further behind than this (or finds the stream restarted) reloads the
    /// shared entries instead of replaying.
    pub fn stream_max_len(mut self, len: u64) -> RedisOptions {
        self.stream_max_len = len;
        self
    }

    /// How many invalidations made while Redis was unreachable are kept to publish once it is
    /// back (default 100 000; beyond it the oldest are dropped and counted).
    pub fn max_pending(mut self, max: usize) -> RedisOptions {
        self.max_pending = max;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidConfig(m.into()));
        if !super::layout::valid_namespace(&self.namespace) {
            return bad("namespace must be 1-64 letters, digits, '_', '-' or '.'");
        }
        if self.buckets == 0 || self.buckets > 16384 {
            return bad("buckets must be in 1..=16384");
        }
        if self.timeout.is_zero() || self.retry_after.is_zero() || self.block.is_zero() {
            return bad("timeout, retry_after and block must be positive");
        }
        if self.stream_max_len < 100 {
            return bad("stream_max_len must be at least 100");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused() {
        let o = || RedisOptions::new("redis://127.0.0.1/");
        assert!(o().validate().is_ok());
        assert!(o().namespace("a*").validate().is_err());
        assert!(o().buckets(0).validate().is_err());
        assert!(o().buckets(16385).validate().is_err());
        assert!(o().timeout(Duration::ZERO).validate().is_err());
        assert!(o().stream_max_len(10).validate().is_err());
    }
}
