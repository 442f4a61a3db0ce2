//! Progress on stderr for runs that take more than a few seconds (graph builds, fills, replays),
//! so a long run is seen to be working and its stages can be timed; stdout keeps only results,
//! which scripts such as peers.py parse.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// How often a [`Progress`] prints, at most.
const EVERY_MS: u64 = 2_000;

/// Print the start of a stage now; [`Stage::done`] prints its end with the time it took.
pub fn stage(what: impl Into<String>) -> Stage {
    let what = what.into();
    eprintln!("{what} ...");
    Stage {
        what,
        start: Instant::now(),
    }
}

/// A stage begun by [`stage`].
#[must_use = "call done() to report the stage's time"]
pub struct Stage {
    what: String,
    start: Instant,
}

impl Stage {
    /// Print that the stage ended and how long it took; returns that time in seconds.
    pub fn done(self) -> f64 {
        let s = self.start.elapsed().as_secs_f64();
        eprintln!("{}: done in {s:.1} s", self.what);
        s
    }
}

/// A count towards a known total, shared by threads, printed to stderr at most every two seconds.
pub struct Progress {
    what: String,
    total: usize,
    done: AtomicUsize,
    start: Instant,
    next_ms: AtomicU64,
}

impl Progress {
    /// Start counting `total` units of `what` (e.g. "prefill: inserts").
    pub fn new(what: impl Into<String>, total: usize) -> Progress {
        Progress {
            what: what.into(),
            total,
            done: AtomicUsize::new(0),
            start: Instant::now(),
            next_ms: AtomicU64::new(EVERY_MS),
        }
    }

    /// Count `n` more units; prints when the last print is two seconds old.
    pub fn add(&self, n: usize) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let ms = self.start.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        // One thread wins the exchange and prints; the others carry on.
        if ms >= next
            && self
                .next_ms
                .compare_exchange(next, ms + EVERY_MS, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let rate = done as f64 / (ms as f64 / 1e3);
            eprintln!(
                "{}: {done}/{} ({:.0}%) after {:.0} s, {rate:.0}/s",
                self.what,
                self.total,
                100.0 * done as f64 / self.total.max(1) as f64,
                ms as f64 / 1e3
            );
        }
    }

    /// Print a line about this count's stage ("inserted; compacting").
    pub fn note(&self, msg: &str) {
        eprintln!("{}: {msg}", self.what);
    }

    /// Print the final count and time; returns the time in seconds.
    pub fn finish(&self) -> f64 {
        let s = self.start.elapsed().as_secs_f64();
        eprintln!(
            "{}: {} done in {s:.1} s",
            self.what,
            self.done.load(Ordering::Relaxed)
        );
        s
    }
}
