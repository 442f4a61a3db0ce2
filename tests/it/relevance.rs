//! Guards and the verifier: what turns a semantic candidate away, and what it never hides.

use crate::support::{self, fixed};
use paracache::{Cache, Guards, Scope};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn cache(guards: Guards) -> Cache<&'static str> {
    Cache::builder(2)
        .threshold(0.9)
        .guards(guards)
        .alias_hits(false)
        .build()
        .unwrap()
}

/// Trap pairs whose embeddings are near-identical but whose answers differ.
const TRAPS: &[(&str, &str)] = &[
    ("How do I enable dark mode?", "How do I disable dark mode?"),
    (
        "Redundancy pay after 2 years",
        "Redundancy pay after 20 years",
    ),
    ("Who is the CEO of Apple?", "Who is the CEO of Microsoft?"),
    (
        "Is the call-out fee included?",
        "Is the call-out fee not included?",
    ),
];

#[test]
fn traps_are_served_on_similarity_alone_and_turned_away_by_the_guards() {
    for guards in [Guards::none(), Guards::default()] {
        let c = cache(guards);
        let s = Scope::global();
        for (stored, asked) in TRAPS {
            c.insert(&s, stored, vec![1.0, 0.0], "stored").unwrap();
            let hit = c.lookup(&s, asked, fixed(&[1.0, 0.02])).unwrap().is_hit();
            assert_eq!(hit, guards.is_none(), "{asked:?} against {stored:?}");
            c.clear();
        }
        let expected = if guards.is_none() { 0 } else { TRAPS.len() };
        assert_eq!(c.stats().guard_rejections, expected as u64);
    }
}

/// A cache holding `traps` prompts that differ from the query "What is the fee for 2 people?"
/// only in their number, each closer to its vector than the true paraphrase (value 99), which
/// comes last.
fn fee_traps(exact_scan_limit: usize, traps: usize) -> Cache<usize> {
    let c: Cache<usize> = Cache::builder(2)
        .threshold(0.9)
        .exact_scan_limit(exact_scan_limit)
        .background_rebuild(false)
        .build()
        .unwrap();
    let s = Scope::global();
    for i in 0..traps {
        let text = format!("What is the fee for {} people?", i + 3);
        c.insert(&s, &text, vec![1.0, 0.001 * i as f32], i).unwrap();
    }
    c.insert(&s, "What's the fee for two people?", vec![1.0, 0.3], 99)
        .unwrap();
    c
}

#[test]
fn a_turned_away_candidate_never_hides_an_admissible_one_behind_it() {
    for exact_scan_limit in [10_000, 8] {
        let c = fee_traps(exact_scan_limit, 10);
        let s = Scope::global();
        let r = c
            .lookup(&s, "What is the fee for 2 people?", fixed(&[1.0, 0.0]))
            .unwrap();
        assert_eq!(
            r.hit().map(|h| *h.value()),
            Some(99),
            "exact_scan_limit {exact_scan_limit}"
        );
        assert_eq!(c.stats().guard_rejections, 10, "each trap is checked once");
    }
}

#[test]
fn a_lookup_turns_away_at_most_sixteen_candidates_then_misses() {
    for exact_scan_limit in [10_000, 8] {
        let c = fee_traps(exact_scan_limit, 40);
        let s = Scope::global();
        let r = c
            .lookup(&s, "What is the fee for 2 people?", fixed(&[1.0, 0.0]))
            .unwrap();
        assert!(!r.is_hit(), "exact_scan_limit {exact_scan_limit}");
        assert_eq!(c.stats().guard_rejections, 16);
    }
}

#[test]
fn the_verifier_is_asked_only_inside_its_band_and_decides_there() {
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let c: Cache<u8> = Cache::builder(2)
        .threshold(0.8)
        .alias_hits(false)
        .verifier(0.95, move |query: &str, matched: &str, sim: f32| {
            count.fetch_add(1, Ordering::SeqCst);
            assert!((0.8..0.95).contains(&sim), "asked at {sim}");
            assert_eq!(matched, "what is rust");
            query.contains("rust")
        })
        .build()
        .unwrap();
    let s = Scope::global();
    c.insert(&s, "what is rust", vec![1.0, 0.0], 1).unwrap();
    // Exact hits and sure matches never ask.
    assert!(
        c.lookup(&s, "what is rust", support::never)
            .unwrap()
            .is_hit()
    );
    assert!(c.lookup(&s, "rust?", fixed(&[1.0, 0.1])).unwrap().is_hit());
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    // In the band, the verifier decides.
    let band = [1.0, 0.5]; // cosine 0.894
    assert!(
        c.lookup(&s, "tell me of rust", fixed(&band))
            .unwrap()
            .is_hit()
    );
    assert!(
        !c.lookup(&s, "tell me of go", fixed(&band))
            .unwrap()
            .is_hit()
    );
    // Below the threshold it is not asked either.
    assert!(
        !c.lookup(&s, "far away", fixed(&[0.0, 1.0]))
            .unwrap()
            .is_hit()
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    let st = c.stats();
    assert_eq!((st.verifier_calls, st.verifier_rejections), (2, 1));
}

#[test]
fn guards_run_before_the_verifier_so_it_never_sees_a_trap() {
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let c: Cache<u8> = Cache::builder(2)
        .threshold(0.8)
        .verifier(1.0001, move |_: &str, _: &str, _: f32| {
            count.fetch_add(1, Ordering::SeqCst);
            true
        })
        .build()
        .unwrap();
    let s = Scope::global();
    c.insert(&s, "How do I enable dark mode?", vec![1.0, 0.0], 1)
        .unwrap();
    let trap = c.lookup(&s, "How do I disable dark mode?", fixed(&[1.0, 0.0]));
    assert!(!trap.unwrap().is_hit());
    assert_eq!(asked.load(Ordering::SeqCst), 0);
}

#[test]
fn a_verifier_band_outside_its_range_is_refused() {
    for below in [-1.0, 1.5, f32::NAN] {
        let built = Cache::<u8>::builder(2)
            .verifier(below, |_: &str, _: &str, _: f32| true)
            .build();
        assert!(built.is_err(), "band ending at {below} accepted");
    }
}

/// The default cache (all guards and the shipped pair check, on the dev split's real
/// all-MiniLM-L6-v2 vectors) turns away every trap pair of the dev split that plain cosine serves
/// at 0.90, and each miss says what turned it away. The shipped check was trained on the other
/// split (dev-large), so this is out of sample for the check.
#[test]
#[ignore = "needs the dev data set: internal, not in the repository; put it at ../shared/data/dev or set $PARACACHE_DEV_DATA"]
fn the_default_cache_turns_away_the_traps_plain_cosine_serves_and_says_why() {
    use paracache::{Lookup, PairCheck, Rejection};
    use paracache_tools::dev_pairs::DevPairs;
    let dev = DevPairs::load(&support::dev_data()).unwrap();
    let s = Scope::global();
    let lookup = |c: &Cache<usize>, a: usize, b: usize| {
        c.clear();
        c.insert(&s, &dev.texts[&a], dev.row(a).to_vec(), a)
            .unwrap();
        let v = dev.row(b).to_vec();
        c.lookup(&s, &dev.texts[&b], |_| Ok::<_, std::io::Error>(v))
            .unwrap()
    };
    let build = |guards, check: Option<PairCheck>| -> Cache<usize> {
        Cache::builder(384)
            .threshold(0.9)
            .guards(guards)
            .pair_check(check)
            .alias_hits(false)
            .build()
            .unwrap()
    };
    let plain = build(Guards::none(), None);
    let default: Cache<usize> = Cache::builder(384).alias_hits(false).build().unwrap();
    let check_only = build(Guards::none(), Some(PairCheck::default()));
    let (mut traps, mut check_stopped) = (0, 0);
    for p in dev
        .pairs
        .iter()
        .filter(|p| !p.same && p.category.starts_with("fow:"))
    {
        if !lookup(&plain, p.a, p.b).is_hit() {
            continue;
        }
        traps += 1;
        let Lookup::Miss(miss) = lookup(&default, p.a, p.b) else {
            panic!(
                "{}: served {:?} for {:?}",
                p.category, dev.texts[&p.a], dev.texts[&p.b]
            );
        };
        let why = miss
            .rejected_by()
            .expect("a turned-away candidate has a reason");
        assert!(
            matches!(why, Rejection::Guard(_) | Rejection::PairCheck(_)),
            "{why}"
        );
        if let Lookup::Miss(m) = lookup(&check_only, p.a, p.b) {
            check_stopped += 1;
            assert!(matches!(m.rejected_by(), Some(Rejection::PairCheck(_))));
        }
    }
    assert!(traps >= 5, "only {traps} traps served by plain cosine");
    // The check on its own (no guards) stops most of them too: it learned the guards' signals
    // from pairs that hold no trap.
    println!("{traps} traps served by plain cosine; the check alone stops {check_stopped}");
    assert!(
        check_stopped * 2 >= traps,
        "the check alone stops only {check_stopped} of {traps}"
    );
}
