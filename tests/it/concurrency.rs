//! Many threads mixing lookups, inserts, invalidations, scope purges and expiry over many scopes,
//! with invariants checked on every answer.

use crate::support;
use paracache::{Cache, MockClock, Scope};
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const THREADS: usize = 8;
const OPS_PER_THREAD: usize = 6_000;
const SCOPES_PER_THREAD: usize = 6;
const PROMPTS: usize = 40;
const DIM: usize = 16;
const TTL_SECS: u64 = 30;

/// What a value says about itself, so any hit can be checked against what it matched.
#[derive(Clone, Debug)]
struct Tagged {
    scope: usize,
    prompt: usize,
    inserted_at_ns: u128,
}

fn prompt_vec(scope: usize, prompt: usize) -> Vec<f32> {
    support::vec_for(scope * 1_000 + prompt, DIM)
}

fn _assert_send_sync_clone() {
    fn is<T: Send + Sync + Clone + 'static>() {}
    is::<Cache<Tagged>>();
}

#[test]
fn eight_threads_of_mixed_operations_keep_every_invariant() {
    let clock = MockClock::new();
    let cache: Cache<Tagged> = Cache::builder(DIM)
        .max_entries(600)
        .time_to_live(Duration::from_secs(TTL_SECS))
        .threshold(0.95)
        .exact_scan_limit(48)
        .clock(clock.clone())
        .build()
        .unwrap();
    let scopes: Arc<Vec<Scope>> = Arc::new(
        (0..THREADS * SCOPES_PER_THREAD)
            .map(|i| Scope::builder().tenant(format!("t{i}")).build())
            .collect(),
    );
    let lookups = Arc::new(AtomicU64::new(0));
    let inserts = Arc::new(AtomicU64::new(0));
    // An insert reads the clock for its tag and the cache reads it again: no advance may fall in
    // between, or the tag would claim an earlier birth than the entry's.
    let clock_gate = Arc::new(parking_lot::RwLock::new(()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, clock, scopes) = (cache.clone(), clock.clone(), scopes.clone());
            let clock_gate = clock_gate.clone();
            let (lookups, inserts) = (lookups.clone(), inserts.clone());
            std::thread::spawn(move || {
                let mut rng = support::rng(t as u64);
                // Writes go only to this thread's scopes, so it knows exactly what must be dead.
                let own = t * SCOPES_PER_THREAD..(t + 1) * SCOPES_PER_THREAD;
                let mut killed = std::collections::HashSet::new();
                for _ in 0..OPS_PER_THREAD {
                    let roll = rng.gen_range(0..100);
                    if roll < 30 {
                        let (s, p) = (rng.gen_range(own.clone()), rng.gen_range(0..PROMPTS));
                        let _no_advance = clock_gate.read();
                        let now = clock.now_ns();
                        let v = Tagged {
                            scope: s,
                            prompt: p,
                            inserted_at_ns: now,
                        };
                        cache
                            .insert(&scopes[s], &format!("prompt {p}"), prompt_vec(s, p), v)
                            .unwrap();
                        inserts.fetch_add(1, Ordering::Relaxed);
                        killed.remove(&(s, p));
                    } else if roll < 36 {
                        let (s, p) = (rng.gen_range(own.clone()), rng.gen_range(0..PROMPTS));
                        cache.invalidate(&scopes[s], &format!("prompt {p}"));
                        killed.insert((s, p));
                    } else if roll < 37 {
                        let s = rng.gen_range(own.clone());
                        cache.invalidate_scope(&scopes[s]);
                        killed.extend((0..PROMPTS).map(|p| (s, p)));
                    } else if roll < 39 && t == 0 {
                        let _alone = clock_gate.write();
                        clock.advance(Duration::from_secs(1));
                    } else {
                        // Look up anywhere, by exact prompt or by a rephrasing, whose repeats
                        // are answered through aliases.
                        let s = rng.gen_range(0..scopes.len());
                        let p = rng.gen_range(0..PROMPTS);
                        let paraphrase = rng.gen_bool(0.5);
                        let text = if paraphrase {
                            format!("say prompt {p} again")
                        } else {
                            format!("prompt {p}")
                        };
                        let v = support::jitter(&mut rng, &prompt_vec(s, p), 0.002);
                        let before = clock.now_ns();
                        let r = cache
                            .lookup(&scopes[s], &text, |_| Ok::<_, std::io::Error>(v))
                            .unwrap();
                        lookups.fetch_add(1, Ordering::Relaxed);
                        if let Some(hit) = r.hit() {
                            let tag = hit.value();
                            assert_eq!(hit.scope(), &scopes[s], "crossed scopes");
                            assert_eq!(tag.scope, s, "foreign value");
                            assert_eq!(
                                hit.matched_prompt(),
                                format!("prompt {}", tag.prompt),
                                "value of another prompt"
                            );
                            assert!(
                                tag.inserted_at_ns + u128::from(TTL_SECS) * 1_000_000_000 > before,
                                "expired entry served"
                            );
                            if own.contains(&s) {
                                assert!(
                                    !killed.contains(&(s, tag.prompt)),
                                    "invalidated entry served"
                                );
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker panicked");
    }
    cache.run_pending_tasks();
    cache.compact();
    let st = cache.stats();
    assert_eq!(
        st.exact_hits + st.semantic_hits + st.misses,
        lookups.load(Ordering::Relaxed),
        "{st:?}"
    );
    assert_eq!(st.inserts, inserts.load(Ordering::Relaxed));
    assert!(st.entries <= 600, "{st:?}");
    assert!(
        st.index_live + st.index_dead <= 2 * 600 + 64 * scopes.len() as u64,
        "{st:?}"
    );
    assert!(
        st.exact_hits > 0 && st.semantic_hits > 0 && st.misses > 0 && st.alias_hits > 0,
        "workload too one-sided: {st:?}"
    );
    eprintln!("{st:?}");
}

trait NowNs {
    fn now_ns(&self) -> u128;
}

impl NowNs for MockClock {
    fn now_ns(&self) -> u128 {
        use paracache::Clock;
        self.now().as_nanos()
    }
}
