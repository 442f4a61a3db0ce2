//! The concurrent history checker (`paracache_tools::history`) over real runs: eight threads
//! of inserts, lookups (exact, alias and semantic), invalidations, scope purges and clears on a
//! small cache under eviction, then every hit judged against the log. Bounded to a few seconds;
//! the soak runs the same check for as long as it is given (`soak --history`).

use paracache::Cache;
use paracache_tools::history::{Workload, check, run_for};
use std::sync::atomic::AtomicU64;
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
    let events = run_for(&cache, w, threads, 0, &AtomicU64::new(0), for_);
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
