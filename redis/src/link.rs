//! Connections to Redis for calls on the lookup path: each bounded by one deadline, and skipped
//! for a while after a failure so an outage costs one timeout per interval, not one per call.

use parking_lot::Mutex;
use redis::{Client, Connection, RedisResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Link {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    timeout: Duration,
    retry_after: Duration,
    started: Instant,
    /// Nanoseconds since `started` before which calls do not try Redis.
    closed_until: AtomicU64,
}

/// Idle connections kept; more concurrent callers open (and then drop) their own.
const MAX_IDLE: usize = 32;

fn is_link_failure(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

impl Link {
    pub(crate) fn new(client: Client, timeout: Duration, retry_after: Duration) -> Link {
        Link {
            client,
            idle: Mutex::new(Vec::new()),
            timeout,
            retry_after,
            started: Instant::now(),
            closed_until: AtomicU64::new(0),
        }
    }

    fn since_start(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    pub(crate) fn is_open(&self) -> bool {
        self.since_start() >= self.closed_until.load(Ordering::Relaxed)
    }

    /// Let calls try Redis again now (the follower has just reached it).
    pub(crate) fn reopen(&self) {
        self.closed_until.store(0, Ordering::Relaxed);
    }

    fn close_for_a_while(&self) {
        let until = self.since_start() + self.retry_after.as_nanos() as u64;
        self.closed_until.store(until, Ordering::Relaxed);
    }

    /// A fresh connection whose reads and writes time out after `timeout` (the follower's own).
    pub(crate) fn connect(&self, timeout: Duration) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    /// Run `f` on a connection, all of it (connecting included) within the timeout. `None`: it
    /// failed, timed out, or was not tried because a recent call failed.
    pub(crate) fn run<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> Option<T> {
        if !self.is_open() {
            return None;
        }
        let deadline = Instant::now() + self.timeout;
        let pooled = self.idle.lock().pop();
        let result = (|| {
            let mut conn = match pooled {
                Some(c) => c,
                None => self.client.get_connection_with_timeout(self.timeout)?,
            };
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            conn.set_read_timeout(Some(left))?;
            conn.set_write_timeout(Some(left))?;
            let out = f(&mut conn)?;
            Ok((out, conn))
        })();
        match result {
            Ok((out, conn)) => {
                let mut idle = self.idle.lock();
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                Some(out)
            }
            Err(e) => {
                // A timed-out connection may still deliver the late reply: never reuse it.
                if is_link_failure(&e) {
                    self.close_for_a_while();
                    self.idle.lock().clear();
                }
                None
            }
        }
    }
}
