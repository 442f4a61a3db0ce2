//! Model-based property tests: random sequences of every operation (insert, lookup, invalidate,
//! invalidate scope, clear, advance time, save and load) against a reference model (a map plus an
//! exact scan). With graph partitions in play the cache may miss a neighbour the model has (the
//! index is approximate), but it may never answer wrongly: no hit that is dead, stale, foreign to
//! the scope, below the threshold, or a semantic hit where the exact entry exists.

use crate::support;
use paracache::{Cache, CacheBuilder, MockClock, Scope, Source};
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

const DIM: usize = 8;
const THRESHOLD: f32 = 0.97;
const TTL: u64 = 30;

#[derive(Debug, Clone)]
enum Op {
    Insert {
        scope: u8,
        prompt: u8,
        direction: u8,
        nudge: u8,
    },
    Lookup {
        scope: u8,
        prompt: u8,
        direction: u8,
        nudge: u8,
    },
    Invalidate {
        scope: u8,
        prompt: u8,
    },
    InvalidateScope {
        scope: u8,
    },
    Clear,
    Advance {
        secs: u8,
    },
    SaveLoad,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3u8, 0..24u8, 0..16u8, 0..8u8).prop_map(|(scope, prompt, direction, nudge)| Op::Insert { scope, prompt, direction, nudge }),
        8 => (0..3u8, 0..30u8, 0..16u8, 0..8u8).prop_map(|(scope, prompt, direction, nudge)| Op::Lookup { scope, prompt, direction, nudge }),
        2 => (0..3u8, 0..24u8).prop_map(|(scope, prompt)| Op::Invalidate { scope, prompt }),
        1 => (0..3u8).prop_map(|scope| Op::InvalidateScope { scope }),
        1 => Just(Op::Clear),
        2 => (0..20u8).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::SaveLoad),
    ]
}

/// Direction `d` nudged a little (`n` = 0 is the direction itself): nudges of one direction are
/// paraphrases of each other, different directions are unrelated.
fn vector(d: u8, n: u8) -> Vec<f32> {
    let base = support::vec_for(usize::from(d), DIM);
    let mut rng = support::rng(1000 + u64::from(d) * 10 + u64::from(n));
    support::jitter(&mut rng, &base, 0.02 * f32::from(n))
}

struct Model {
    /// (scope, prompt) -> (value, vector, inserted at)
    live: HashMap<(u8, String), (u64, Vec<f32>, u64)>,
    now: u64,
}

fn builder(clock: &MockClock) -> CacheBuilder<u64> {
    Cache::builder(DIM)
        .threshold(THRESHOLD)
        .time_to_live(Duration::from_secs(TTL))
        .exact_scan_limit(8)
        .background_rebuild(false)
        .clock(clock.clone())
}

fn run(ops: &[Op]) {
    let clock = MockClock::new();
    let mut cache = builder(&clock).build().unwrap();
    let scopes: Vec<Scope> = (0..3)
        .map(|i| Scope::builder().tenant(format!("t{i}")).build())
        .collect();
    let mut model = Model {
        live: HashMap::new(),
        now: 0,
    };
    let mut next = 0u64;
    for op in ops {
        match *op {
            Op::Insert {
                scope,
                prompt,
                direction,
                nudge,
            } => {
                next += 1;
                let text = format!("prompt {prompt}");
                let v = vector(direction, nudge);
                cache
                    .insert(&scopes[scope as usize], &text, v.clone(), next)
                    .unwrap();
                model
                    .live
                    .insert((scope, text), (next, support::unit(v), model.now));
            }
            Op::Lookup {
                scope,
                prompt,
                direction,
                nudge,
            } => {
                let text = format!("prompt {prompt}");
                let q = vector(direction, nudge);
                let r = cache
                    .lookup(&scopes[scope as usize], &text, |_| {
                        Ok::<_, std::io::Error>(q.clone())
                    })
                    .unwrap();
                let alive = |at: u64| model.now < at + TTL;
                let exact = model
                    .live
                    .get(&(scope, text.clone()))
                    .filter(|e| alive(e.2));
                match r.hit() {
                    Some(hit) => {
                        assert_eq!(hit.scope(), &scopes[scope as usize], "foreign scope");
                        let key = (scope, hit.matched_prompt().to_string());
                        let (value, stored, at) = model
                            .live
                            .get(&key)
                            .expect("served an entry the model does not hold");
                        assert!(alive(*at), "served an expired entry");
                        assert_eq!(hit.value(), value, "served a stale value");
                        if hit.source() == Source::Semantic {
                            assert!(
                                exact.is_none(),
                                "semantic answer although the exact entry is live"
                            );
                            assert!(
                                support::cos(&q, stored) >= THRESHOLD - 1e-4,
                                "below threshold"
                            );
                        } else {
                            assert_eq!(hit.matched_prompt(), text);
                        }
                    }
                    None => {
                        assert!(exact.is_none(), "the exact tier missed a live entry")
                    }
                }
            }
            Op::Invalidate { scope, prompt } => {
                let text = format!("prompt {prompt}");
                cache.invalidate(&scopes[scope as usize], &text);
                model.live.remove(&(scope, text));
            }
            Op::InvalidateScope { scope } => {
                cache.invalidate_scope(&scopes[scope as usize]);
                model.live.retain(|(s, _), _| *s != scope);
            }
            Op::Clear => {
                cache.clear();
                model.live.clear();
            }
            Op::Advance { secs } => {
                clock.advance(Duration::from_secs(u64::from(secs)));
                model.now += u64::from(secs);
            }
            Op::SaveLoad => {
                let bytes = cache.to_snapshot_bytes().unwrap();
                cache = builder(&clock).build_from_snapshot_bytes(&bytes).unwrap().0;
            }
        }
    }
    // Whatever the sequence, the index holds no more than the store plus bounded tombstones.
    cache.run_pending_tasks();
    cache.compact();
    let st = cache.stats();
    assert!(
        st.index_live <= st.entries.max(model.live.len() as u64),
        "{st:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_operation_sequences_never_answer_wrongly(ops in prop::collection::vec(op(), 1..120)) {
        run(&ops);
    }
}
