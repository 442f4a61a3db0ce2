//! The two tiers: what answers, what it reports, and when the embedder runs.

use crate::support::{self, fixed, never};
use paracache::{Cache, Lookup, Scope, Source};

fn cache() -> Cache<String> {
    Cache::builder(3).threshold(0.9).build().unwrap()
}

#[test]
fn exact_hit_never_embeds_and_reports_itself() {
    let c = cache();
    let s = Scope::global();
    c.insert(
        &s,
        "What is the capital of France?",
        vec![1.0, 0.0, 0.0],
        "Paris".into(),
    )
    .unwrap();
    let r = c
        .lookup(&s, "  What is the capital\tof France? ", never)
        .unwrap();
    let hit = r.hit().expect("exact hit");
    assert_eq!(hit.source(), Source::Exact);
    assert_eq!(hit.similarity(), 1.0);
    assert_eq!(hit.matched_prompt(), "What is the capital of France?");
    assert_eq!(hit.value(), "Paris");
    let st = c.stats();
    assert_eq!((st.exact_hits, st.embed_calls), (1, 0));
}

#[test]
fn paraphrase_is_a_semantic_hit_with_its_similarity_and_match() {
    let c = cache();
    let s = Scope::global();
    c.insert(
        &s,
        "capital of France?",
        vec![1.0, 0.0, 0.0],
        "Paris".into(),
    )
    .unwrap();
    let q = [0.95f32, 0.2, 0.0];
    let r = c.lookup(&s, "France's capital city?", fixed(&q)).unwrap();
    let hit = r.hit().expect("semantic hit");
    assert_eq!(hit.source(), Source::Semantic);
    assert_eq!(hit.matched_prompt(), "capital of France?");
    let expect = support::cos(&q, &[1.0, 0.0, 0.0]);
    assert!(
        (hit.similarity() - expect).abs() < 1e-5,
        "{} vs {expect}",
        hit.similarity()
    );
    assert_eq!(c.stats().semantic_hits, 1);
}

#[test]
fn below_threshold_is_a_miss_carrying_the_unit_embedding() {
    let c = cache();
    let s = Scope::global();
    c.insert(&s, "a", vec![1.0, 0.0, 0.0], "A".into()).unwrap();
    let r = c.lookup(&s, "b", fixed(&[0.8, 0.6, 0.0])).unwrap(); // cos 0.8 < 0.9
    let Lookup::Miss(miss) = r else {
        panic!("expected a miss")
    };
    assert_eq!(miss.embedding(), &[0.8, 0.6, 0.0]);
    assert_eq!(miss.prompt(), "b");
    // Inserting the miss needs no second embedding.
    let before = c.stats().embed_calls;
    c.insert_miss(miss, "B".into()).unwrap();
    assert_eq!(c.stats().embed_calls, before);
    assert_eq!(
        c.lookup(&s, "b", never).unwrap().hit().unwrap().value(),
        "B"
    );
}

#[test]
fn per_scope_threshold_overrides_the_default() {
    let strict = Scope::named("strict");
    let c: Cache<u8> = Cache::builder(2)
        .threshold(0.5)
        .scope_threshold(strict.clone(), 0.99)
        .build()
        .unwrap();
    for s in [&strict, &Scope::global()] {
        c.insert(s, "x", vec![1.0, 0.0], 1).unwrap();
    }
    let q = [0.9f32, 0.3]; // cos ≈ 0.949
    assert!(c.lookup(&Scope::global(), "y", fixed(&q)).unwrap().is_hit());
    assert!(!c.lookup(&strict, "y", fixed(&q)).unwrap().is_hit());
}

#[test]
fn replacing_an_entry_serves_only_the_new_value() {
    let c = cache();
    let s = Scope::global();
    c.insert(&s, "q", vec![1.0, 0.0, 0.0], "old".into())
        .unwrap();
    c.insert(&s, "q", vec![0.0, 1.0, 0.0], "new".into())
        .unwrap();
    assert_eq!(
        c.lookup(&s, "q", never).unwrap().hit().unwrap().value(),
        "new"
    );
    // The old vector is dead: a query near it must not find "old" (or anything).
    assert!(
        !c.lookup(&s, "near old", fixed(&[1.0, 0.01, 0.0]))
            .unwrap()
            .is_hit()
    );
    let hit = c.lookup(&s, "near new", fixed(&[0.01, 1.0, 0.0])).unwrap();
    assert_eq!(hit.hit().unwrap().value(), "new");
    c.run_pending_tasks();
    let st = c.stats();
    assert_eq!(
        (st.index_live, st.index_dead, st.evicted_replaced),
        (1, 1, 1)
    );
}

#[test]
fn embed_errors_are_returned_and_nothing_is_counted_or_cached() {
    let c = cache();
    let err = c
        .lookup(&Scope::global(), "q", |_| {
            Err::<Vec<f32>, _>(std::io::Error::other("model down"))
        })
        .unwrap_err();
    assert!(matches!(err, paracache::Error::Embed(_)), "{err:?}");
    assert!(err.to_string().contains("model down"));
    let st = c.stats();
    assert_eq!((st.misses, st.entries, st.embed_calls), (0, 0, 1));
}

#[test]
fn counters_add_up() {
    let c = cache();
    let s = Scope::global();
    c.insert(&s, "a", vec![1.0, 0.0, 0.0], "A".into()).unwrap();
    let _ = c.lookup(&s, "a", never).unwrap();
    let _ = c.lookup(&s, "a, again", fixed(&[1.0, 0.05, 0.0])).unwrap();
    let _ = c.lookup(&s, "z", fixed(&[0.0, 0.0, 1.0])).unwrap();
    let st = c.stats();
    assert_eq!(
        (
            st.exact_hits,
            st.semantic_hits,
            st.misses,
            st.inserts,
            st.embed_calls
        ),
        (1, 1, 1, 1, 2)
    );
}
