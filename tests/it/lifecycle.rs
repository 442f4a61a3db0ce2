//! Eviction, expiry and invalidation: a dead entry is served by neither tier, and its vector
//! leaves the index so memory stays bounded.

use crate::support::{fixed, never, vec_for};
use paracache::{Cache, GraphEngine, MockClock, Scope, Source};
use std::time::Duration;

fn assert_dead_in_both_tiers(c: &Cache<u64>, s: &Scope, prompt: &str, v: &[f32]) {
    assert!(
        !c.lookup(s, prompt, fixed(v)).unwrap().is_hit(),
        "exact tier served {prompt}"
    );
    let para = c
        .lookup(s, &format!("{prompt} (paraphrased)"), fixed(v))
        .unwrap();
    assert!(!para.is_hit(), "semantic tier served {prompt}");
}

#[test]
fn ttl_expiry_is_never_served_and_leaves_the_index() {
    let clock = MockClock::new();
    let c: Cache<u64> = Cache::builder(8)
        .time_to_live(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let s = Scope::global();
    let v = vec_for(1, 8);
    c.insert(&s, "q", v.clone(), 1).unwrap();
    clock.advance(Duration::from_secs(59));
    assert!(c.lookup(&s, "q", never).unwrap().is_hit());
    clock.advance(Duration::from_secs(2));
    assert_dead_in_both_tiers(&c, &s, "q", &v);
    c.run_pending_tasks();
    let st = c.stats();
    assert_eq!((st.entries, st.index_live, st.evicted_expired), (0, 0, 1));
}

#[test]
fn tti_is_renewed_by_hits_and_expires_when_idle() {
    let clock = MockClock::new();
    let c: Cache<u64> = Cache::builder(8)
        .time_to_idle(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    let s = Scope::global();
    let v = vec_for(2, 8);
    c.insert(&s, "q", v.clone(), 1).unwrap();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(8));
        assert!(
            c.lookup(&s, "q", never).unwrap().is_hit(),
            "a hit renews the idle timer"
        );
    }
    clock.advance(Duration::from_secs(11));
    assert_dead_in_both_tiers(&c, &s, "q", &v);
}

#[test]
fn invalidate_removes_from_both_tiers_and_the_index() {
    let c: Cache<u64> = Cache::builder(8).build().unwrap();
    let s = Scope::global();
    let v = vec_for(3, 8);
    c.insert(&s, "q", v.clone(), 1).unwrap();
    assert!(!c.invalidate(&s, "other prompt"));
    assert!(
        !c.invalidate(&Scope::named("other"), "q"),
        "invalidate is scoped too"
    );
    assert!(c.invalidate(&s, " q "));
    assert_dead_in_both_tiers(&c, &s, "q", &v);
    c.run_pending_tasks();
    assert_eq!(c.stats().evicted_explicit, 1);
    assert_eq!(c.stats().index_live, 0);
}

#[test]
fn invalidate_scope_and_clear_kill_everything_they_cover() {
    let c: Cache<u64> = Cache::builder(8).build().unwrap();
    let (a, b) = (Scope::named("a"), Scope::named("b"));
    for i in 0..50 {
        c.insert(&a, &format!("a{i}"), vec_for(i, 8), i as u64)
            .unwrap();
        c.insert(&b, &format!("b{i}"), vec_for(1000 + i, 8), i as u64)
            .unwrap();
    }
    c.invalidate_scope(&a);
    for i in 0..50 {
        assert_dead_in_both_tiers(&c, &a, &format!("a{i}"), &vec_for(i, 8));
        assert!(c.lookup(&b, &format!("b{i}"), never).unwrap().is_hit());
    }
    assert_eq!(c.scope_count(), 1);
    // The scope is usable again afterwards.
    c.insert(&a, "a0", vec_for(0, 8), 7).unwrap();
    assert_eq!(
        *c.lookup(&a, "a0", never).unwrap().hit().unwrap().value(),
        7
    );
    c.clear();
    assert_dead_in_both_tiers(&c, &a, "a0", &vec_for(0, 8));
    for i in 0..50 {
        assert_dead_in_both_tiers(&c, &b, &format!("b{i}"), &vec_for(1000 + i, 8));
    }
    c.run_pending_tasks();
    assert_eq!(
        (c.stats().entries, c.stats().index_live, c.scope_count()),
        (0, 0, 0)
    );
}

/// Inserting 10x capacity keeps entries and index points bounded, in flat and graph partitions,
/// and nothing evicted is served.
#[test]
fn ten_times_capacity_stays_bounded() {
    for exact_scan_limit in [10_000, 64] {
        let cap = 300u64;
        let dim = 16;
        let c: Cache<u64> = Cache::builder(dim)
            .max_entries(cap)
            .exact_scan_limit(exact_scan_limit)
            .background_rebuild(false)
            .build()
            .unwrap();
        let s = Scope::global();
        for i in 0..(10 * cap as usize) {
            c.insert(&s, &format!("p{i}"), vec_for(i, dim), i as u64)
                .unwrap();
        }
        c.run_pending_tasks();
        c.compact();
        let st = c.stats();
        assert!(st.entries <= cap, "entries {} > cap {cap}", st.entries);
        assert!(st.index_live <= cap, "{st:?}");
        // Dead vectors stay below the rebuild bound (25% of the index, or 64 when tiny).
        assert!(
            st.index_live + st.index_dead <= 2 * cap + 64,
            "index grew without bound: {st:?}"
        );
        assert!(st.evicted_size >= 9 * cap, "{st:?}");
        // An exact hit serves its own value, a semantic one a neighbour at the threshold (random
        // 16-d vectors do come that close); at most `cap` distinct entries still answer.
        let mut served = std::collections::HashSet::new();
        for i in 0..(10 * cap as usize) {
            let r = c
                .lookup(&s, &format!("p{i}"), fixed(&vec_for(i, dim)))
                .unwrap();
            if let Some(hit) = r.hit() {
                let q = vec_for(i, dim);
                let served_vec = vec_for(*hit.value() as usize, dim);
                let cos: f32 = q.iter().zip(&served_vec).map(|(a, b)| a * b).sum();
                match hit.source() {
                    Source::Exact => assert_eq!(*hit.value(), i as u64),
                    _ => assert!(
                        cos >= 0.9 - 1e-4,
                        "exact_scan_limit {exact_scan_limit}: served cos {cos}"
                    ),
                }
                served.insert(*hit.value());
            }
        }
        assert!(
            served.len() <= cap as usize,
            "{} entries served with capacity {cap}",
            served.len()
        );
    }
}

#[test]
fn byte_capacity_bounds_weight() {
    // Each entry weighs 500 + prompt + 8 (codes) + 400, plus with the crate's graph 32 (the
    // vector) + 16*16 (links) ≈ 1.2 KB, at most ~170 fitting; with hnsw_rs, which copies the
    // vector and links heavier, 64 + 40*16 ≈ 1.6 KB, at most ~125.
    for (engine, per_entry) in [(GraphEngine::Links, 1_150), (GraphEngine::HnswRs, 1_550)] {
        let c: Cache<String> = Cache::builder(8)
            .max_bytes(200_000)
            .weigher(|v: &String| v.len())
            .graph_engine(engine)
            .background_rebuild(false)
            .build()
            .unwrap();
        let s = Scope::global();
        for i in 0..2_000 {
            c.insert(&s, &format!("p{i}"), vec_for(i, 8), "x".repeat(500))
                .unwrap();
        }
        c.run_pending_tasks();
        let st = c.stats();
        assert!(st.entries <= 200_000 / per_entry, "{engine:?}: {st:?}");
        assert!(st.entries >= 200_000 / 1_700, "{engine:?}: {st:?}");
        assert!(st.evicted_size > 0);
    }
}

#[test]
fn scopes_that_empty_out_are_dropped() {
    let c: Cache<u64> = Cache::builder(4).max_entries(50).build().unwrap();
    for i in 0..2_000 {
        c.insert(&Scope::named(format!("tenant-{i}")), "q", vec_for(i, 4), 1)
            .unwrap();
    }
    c.run_pending_tasks();
    assert!(
        c.scope_count() <= 60,
        "{} partitions kept for 50 entries",
        c.scope_count()
    );
}

/// Lookups read entries without going through the store, yet the store's idle timer still hears
/// of them: an entry read every 50 ms outlives a 1 s idle timeout, then goes when reads stop.
#[test]
fn an_entry_in_use_is_never_idle_expired() {
    let c: Cache<u32> = Cache::builder(2)
        .time_to_idle(Duration::from_secs(1))
        .build()
        .unwrap();
    let s = Scope::global();
    c.insert(&s, "q", vec![1.0, 0.0], 1).unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(2_500) {
        std::thread::sleep(Duration::from_millis(50));
        let r = c.lookup(&s, "q", fixed(&[1.0, 0.0])).unwrap();
        assert!(r.is_hit(), "idle-expired after {:?}", started.elapsed());
    }
    c.run_pending_tasks();
    assert_eq!(c.stats().evicted_expired, 0);
    std::thread::sleep(Duration::from_millis(1_200));
    c.run_pending_tasks();
    assert!(!c.lookup(&s, "q", fixed(&[1.0, 0.0])).unwrap().is_hit());
}
