//! The concurrent history checker (`paracache_tools::history`) over real runs: eight threads
//! of inserts, lookups (exact, alias and semantic), invalidations, scope purges and clears on a
//! small cache under eviction, then every hit judged against the log. Bounded to a few seconds;
//! the soak runs the same check for as long as it is given (`soak --history`).

use paracache::Cache;
use paracache_tools::history::{Workload, check, run_thread};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn run(capacity: u64, threads: u64, for_: Duration) {
    let w = Workload {
        scopes: 3,
        prompts: 24,
        dim: 16,
    };
    let cache: Cache<u64> = Cache::builder(w.dim)
        .max_entries(capacity)
        .threshold(0.95)
        .exact_scan_limit(16)
        .build()
        .unwrap();
    let (clock, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let logs: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (cache, clock, stop) = (&cache, &clock, &stop);
                s.spawn(move || run_thread(cache, w, t, clock, stop))
            })
            .collect();
        std::thread::sleep(for_);
        stop.store(true, Ordering::Relaxed);
        workers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let events: Vec<_> = logs.into_iter().flatten().collect();
    let (checked, violations) = check(&events);
    assert!(
        violations.is_empty(),
        "{} of {} hits unjustified, first: {:?}",
        violations.len(),
        checked.hits,
        &violations[..violations.len().min(5)]
    );
    assert!(checked.hits > 1000, "too few hits to judge: {checked:?}");
}

#[test]
fn eight_threads_every_hit_justified_by_the_history() {
    run(1_000, 8, Duration::from_secs(3));
}

#[test]
fn eight_threads_under_heavy_eviction_every_hit_justified() {
    run(16, 8, Duration::from_secs(2));
}
