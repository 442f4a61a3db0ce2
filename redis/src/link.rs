//! Connections to Redis for calls on the lookup path. A call only ever uses a connection that is
//! already open, bounded by one deadline; connecting happens on a connector thread, off the call
//! path, because a connect against a frozen server takes twice the timeout (redis-rs applies it
//! to each step of the handshake). After a failure calls skip Redis for a while, so an outage
//! costs one timeout per interval, not one per call.

use parking_lot::{Condvar, Mutex};
use redis::{Client, Connection, RedisResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Link {
    pool: Arc<Pool>,
}

/// What the calls and the connector thread share.
struct Pool {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    /// Connections the connector should open; it sleeps on `wake` while there are none.
    wanted: Mutex<usize>,
    wake: Condvar,
    timeout: Duration,
    retry_after: Duration,
    started: Instant,
    /// Nanoseconds since `started` before which calls do not try Redis.
    closed_until: AtomicU64,
    stop: AtomicBool,
}

/// Idle connections kept; the connector opens more only up to this many.
const MAX_IDLE: usize = 32;
/// Connections kept ready at start and after an outage, so a burst of calls finds one each.
const MIN_IDLE: usize = 4;

fn is_link_failure(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

impl Pool {
    fn since_start(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn is_open(&self) -> bool {
        self.since_start() >= self.closed_until.load(Ordering::Relaxed)
    }

    fn close_for_a_while(&self) {
        let until = self.since_start() + self.retry_after.as_nanos() as u64;
        self.closed_until.store(until, Ordering::Relaxed);
    }

    /// Ask the connector for `n` more connections (in all at most `MAX_IDLE` outstanding).
    fn want(&self, n: usize) {
        let mut wanted = self.wanted.lock();
        let room = MAX_IDLE.saturating_sub(self.idle.lock().len());
        *wanted = (*wanted + n).min(room);
        if *wanted > 0 {
            self.wake.notify_one();
        }
    }

    fn open(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    /// The connector thread: opens what calls asked for; after a failure waits `retry_after`
    /// (or until woken) before trying again.
    fn connect_loop(&self) {
        let mut wanted = self.wanted.lock();
        while !self.stop.load(Ordering::Relaxed) {
            if *wanted == 0 {
                self.wake.wait(&mut wanted);
                continue;
            }
            let opened = parking_lot::MutexGuard::unlocked(&mut wanted, || self.open());
            match opened {
                Ok(conn) => {
                    *wanted = wanted.saturating_sub(1);
                    let mut idle = self.idle.lock();
                    if idle.len() < MAX_IDLE {
                        idle.push(conn);
                    }
                }
                Err(_) => {
                    self.close_for_a_while();
                    self.wake.wait_for(&mut wanted, self.retry_after);
                }
            }
        }
    }
}

impl Link {
    /// A link whose connector thread starts opening connections at once.
    pub(crate) fn new(
        client: Client,
        timeout: Duration,
        retry_after: Duration,
    ) -> std::io::Result<Link> {
        let pool = Arc::new(Pool {
            client,
            idle: Mutex::new(Vec::new()),
            wanted: Mutex::new(MIN_IDLE),
            wake: Condvar::new(),
            timeout,
            retry_after,
            started: Instant::now(),
            closed_until: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let connector = pool.clone();
        std::thread::Builder::new()
            .name("paracache-redis-connector".into())
            .spawn(move || connector.connect_loop())?;
        Ok(Link { pool })
    }

    /// Let calls try Redis again now (the follower has just reached it), and have the connector
    /// retry at once rather than at the end of its pause.
    pub(crate) fn reopen(&self) {
        self.pool.closed_until.store(0, Ordering::Relaxed);
        let idle = self.pool.idle.lock().len();
        self.pool.want(MIN_IDLE.saturating_sub(idle));
    }

    /// A fresh connection whose reads time out after `read_timeout` (the follower's own, opened
    /// on its thread).
    pub(crate) fn connect(&self, read_timeout: Duration) -> RedisResult<Connection> {
        let conn = self.pool.open()?;
        conn.set_read_timeout(Some(read_timeout))?;
        Ok(conn)
    }

    /// Open one connection for calls on this (the follower's) thread unless one is ready, so a
    /// replica that reports itself connected can share at once.
    pub(crate) fn fill(&self) -> RedisResult<()> {
        if self.pool.idle.lock().is_empty() {
            let conn = self.pool.open()?;
            self.pool.idle.lock().push(conn);
        }
        Ok(())
    }

    /// Run `f` on a ready connection, within the timeout. `None`: it failed, timed out, or was
    /// not tried because a recent call failed or no connection was ready (one is then opened off
    /// the call path for the next call).
    pub(crate) fn run<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> Option<T> {
        let pool = &*self.pool;
        if !pool.is_open() {
            return None;
        }
        let deadline = Instant::now() + pool.timeout;
        let (pooled, left_idle) = {
            let mut idle = pool.idle.lock();
            (idle.pop(), idle.len())
        };
        if left_idle == 0 {
            // This call takes the last one (or found none): the next may come before it is back.
            pool.want(1);
        }
        let mut conn = pooled?;
        let result = (|| {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            conn.set_read_timeout(Some(left))?;
            conn.set_write_timeout(Some(left))?;
            f(&mut conn)
        })();
        match result {
            Ok(out) => {
                let mut idle = pool.idle.lock();
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                Some(out)
            }
            Err(e) => {
                // A timed-out connection may still deliver the late reply: never reuse it.
                if is_link_failure(&e) {
                    pool.close_for_a_while();
                    pool.idle.lock().clear();
                    pool.want(MIN_IDLE);
                }
                None
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.pool.stop.store(true, Ordering::Relaxed);
        let _wanted = self.pool.wanted.lock();
        self.pool.wake.notify_all();
    }
}
