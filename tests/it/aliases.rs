//! Hit aliases: a rephrasing served once is an exact-tier hit next time, for exactly as long as
//! the entry that answered it lives.

use crate::support::{fixed, never};
use paracache::{Cache, MockClock, Scope, Source};
use std::time::Duration;

const STORED: &str = "What is Rust?";
const ASKED: &str = "Tell me what Rust is";

fn served_semantically(c: &Cache<u32>, s: &Scope) {
    let r = c.lookup(s, ASKED, fixed(&[1.0, 0.05])).unwrap();
    assert_eq!(r.hit().unwrap().source(), Source::Semantic);
}

fn source_without_embedding(c: &Cache<u32>, s: &Scope) -> Option<(Source, u32)> {
    let r = c.lookup(s, ASKED, |_: &str| {
        Err::<Vec<f32>, _>(std::io::Error::other("the embedder was called"))
    });
    match r {
        Ok(r) => r.hit().map(|h| (h.source(), *h.value())),
        Err(_) => None,
    }
}

fn cache_with_entry(builder: paracache::CacheBuilder<u32>) -> (Cache<u32>, Scope) {
    let c = builder.threshold(0.9).build().unwrap();
    let s = Scope::builder().tenant("t").build();
    c.insert(&s, STORED, vec![1.0, 0.0], 7).unwrap();
    served_semantically(&c, &s);
    (c, s)
}

#[test]
fn a_served_rephrasing_is_next_answered_without_embedding() {
    let (c, s) = cache_with_entry(Cache::builder(2));
    let r = c.lookup(&s, &format!("  {ASKED} "), never).unwrap();
    let hit = r.hit().unwrap();
    assert_eq!((hit.source(), *hit.value()), (Source::Alias, 7));
    assert_eq!(hit.matched_prompt(), STORED);
    assert!(hit.similarity() < 1.0 && hit.similarity() >= 0.9);
    let st = c.stats();
    assert_eq!((st.exact_hits, st.alias_hits, st.semantic_hits), (1, 1, 1));
    assert_eq!(st.embed_calls, 1);
}

#[test]
fn aliases_can_be_switched_off() {
    let (c, s) = cache_with_entry(Cache::builder(2).alias_hits(false));
    assert_eq!(source_without_embedding(&c, &s), None);
    served_semantically(&c, &s);
}

#[test]
fn an_alias_never_crosses_scopes() {
    let (c, _) = cache_with_entry(Cache::builder(2));
    let other = Scope::builder().tenant("u").build();
    assert_eq!(source_without_embedding(&c, &other), None);
}

#[test]
fn an_alias_dies_with_its_entry() {
    type Kill = fn(&Cache<u32>, &Scope, &MockClock);
    let kills: [(&str, Kill); 6] = [
        ("invalidate", |c, s, _| assert!(c.invalidate(s, STORED))),
        ("invalidate_scope", |c, s, _| c.invalidate_scope(s)),
        ("clear", |c, _, _| c.clear()),
        ("replace", |c, s, _| {
            c.insert(s, STORED, vec![1.0, 0.0], 8).unwrap();
        }),
        ("expire", |_, _, clock| {
            clock.advance(Duration::from_secs(61))
        }),
        ("evict", |c, s, _| {
            // Fillers written again and again, so the store's admission policy prefers them.
            for round in 0..20 {
                for i in 0..50 {
                    let v = vec![0.0, 1.0 + i as f32];
                    c.insert(s, &format!("filler number {i}"), v, round)
                        .unwrap();
                }
                c.run_pending_tasks();
            }
        }),
    ];
    for (name, kill) in kills {
        let clock = MockClock::new();
        let builder = Cache::builder(2)
            .max_entries(10)
            .time_to_live(Duration::from_secs(60))
            .clock(clock.clone());
        let (c, s) = cache_with_entry(builder);
        assert_eq!(source_without_embedding(&c, &s), Some((Source::Alias, 7)));
        kill(&c, &s, &clock);
        let failing = |_: &str| Err::<Vec<f32>, _>(std::io::Error::other("no embedding"));
        let entry_left = c.lookup(&s, STORED, failing).is_ok_and(|r| r.is_hit());
        assert_eq!(
            entry_left,
            name == "replace",
            "{name} left the entry in place"
        );
        assert_eq!(source_without_embedding(&c, &s), None, "after {name}");
    }
}

#[test]
fn invalidating_the_rephrasing_drops_its_alias_only() {
    let (c, s) = cache_with_entry(Cache::builder(2));
    assert!(!c.invalidate(&s, ASKED), "no entry of its own was removed");
    assert_eq!(source_without_embedding(&c, &s), None);
    assert!(c.lookup(&s, STORED, never).unwrap().is_hit());
    served_semantically(&c, &s);
}
