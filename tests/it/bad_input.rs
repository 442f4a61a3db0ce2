//! Bad input gets a typed error and changes nothing.

use crate::support::fixed;
use paracache::{Cache, Error, Lookup, Scope};

fn cache() -> Cache<String> {
    Cache::builder(3)
        .weigher(|v: &String| v.len())
        .max_value_bytes(16)
        .max_prompt_bytes(64)
        .build()
        .unwrap()
}

/// The observable state: counters that inserts and evictions move, plus what a probe sees.
fn state(c: &Cache<String>) -> (u64, u64, u64, bool) {
    c.run_pending_tasks();
    let s = c.stats();
    let probe = c.lookup(&Scope::global(), "seed", |_| {
        Ok::<_, std::io::Error>(vec![1.0, 0.0, 0.0])
    });
    (s.inserts, s.entries, s.index_live, probe.unwrap().is_hit())
}

#[test]
fn every_bad_input_is_a_typed_error_that_changes_nothing() {
    let c = cache();
    let g = Scope::global();
    c.insert(&g, "seed", vec![1.0, 0.0, 0.0], "v".into())
        .unwrap();
    let before = state(&c);
    let cases: Vec<(Error, paracache::Result<()>)> = vec![
        (
            Error::DimensionMismatch {
                expected: 3,
                got: 2,
            },
            c.insert(&g, "q", vec![1.0, 0.0], "v".into()).map(drop),
        ),
        (
            Error::DimensionMismatch {
                expected: 3,
                got: 4,
            },
            c.lookup(&g, "q", fixed(&[1.0; 4])).map(drop),
        ),
        (
            Error::NonFiniteVector { index: 1 },
            c.insert(&g, "q", vec![1.0, f32::NAN, 0.0], "v".into())
                .map(drop),
        ),
        (
            Error::NonFiniteVector { index: 2 },
            c.lookup(&g, "q", fixed(&[1.0, 0.0, f32::INFINITY]))
                .map(drop),
        ),
        (
            Error::NonFiniteVector { index: 0 },
            c.insert(&g, "q", vec![f32::NEG_INFINITY, 0.0, 0.0], "v".into())
                .map(drop),
        ),
        (
            Error::ZeroVector,
            c.insert(&g, "q", vec![0.0; 3], "v".into()).map(drop),
        ),
        (
            Error::ZeroVector,
            c.lookup(&g, "q", fixed(&[0.0; 3])).map(drop),
        ),
        (
            Error::EmptyPrompt,
            c.insert(&g, " \n\t ", vec![1.0, 0.0, 0.0], "v".into())
                .map(drop),
        ),
        (
            Error::EmptyPrompt,
            c.lookup(&g, "", fixed(&[1.0, 0.0, 0.0])).map(drop),
        ),
        (
            Error::PromptTooLarge { bytes: 65, max: 64 },
            c.insert(&g, &"x".repeat(65), vec![1.0, 0.0, 0.0], "v".into())
                .map(drop),
        ),
        (
            Error::ValueTooLarge {
                weight: 17,
                max: 16,
            },
            c.insert(&g, "q", vec![1.0, 0.0, 0.0], "y".repeat(17))
                .map(drop),
        ),
    ];
    for (expected, got) in cases {
        assert_eq!(got.unwrap_err(), expected);
    }
    // A value over the cap through get_or_insert_with: the compute ran, nothing was cached.
    let err = c
        .get_or_insert_with(&g, "big", fixed(&[0.0, 1.0, 0.0]), || {
            Ok::<_, std::io::Error>("z".repeat(99))
        })
        .unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }));
    assert!(matches!(
        c.lookup(&g, "big", fixed(&[0.0, 1.0, 0.0])).unwrap(),
        Lookup::Miss(_)
    ));
    assert_eq!(state(&c), before);
}

#[test]
fn bad_configuration_is_refused() {
    let bad: Vec<paracache::Result<Cache<u8>>> = vec![
        Cache::builder(0).build(),
        Cache::builder(1 << 20).build(),
        Cache::builder(4).threshold(1.01).build(),
        Cache::builder(4).threshold(-1.5).build(),
        Cache::builder(4).threshold(f32::NAN).build(),
        Cache::builder(4)
            .scope_threshold(Scope::named("x"), 2.0)
            .build(),
        Cache::builder(4).hnsw(1, 200, 64).build(),
        Cache::builder(4).hnsw(257, 200, 64).build(),
        Cache::builder(4).hnsw(16, 0, 64).build(),
        Cache::builder(4).hnsw(16, 200, 0).build(),
        Cache::builder(4).max_dead_ratio(1.0).build(),
        Cache::builder(4).max_dead_ratio(f32::NAN).build(),
        Cache::builder(4)
            .time_to_live(std::time::Duration::MAX)
            .build(),
        Cache::builder(4)
            .time_to_idle(std::time::Duration::ZERO)
            .build(),
    ];
    for (i, r) in bad.into_iter().enumerate() {
        let e = r.unwrap_err();
        assert!(
            matches!(e, Error::InvalidConfig(_) | Error::InvalidThreshold(_)),
            "case {i}: {e:?}"
        );
    }
    assert!(Cache::<u8>::builder(4).threshold(-1.0).build().is_ok());
    assert!(Cache::<u8>::builder(4).threshold(1.0).build().is_ok());
}

#[test]
fn an_absurd_weigher_is_refused_not_overflowed() {
    let c: Cache<u8> = Cache::builder(1)
        .weigher(|_| usize::MAX)
        .max_value_bytes(usize::MAX)
        .build()
        .unwrap();
    // Weighs the maximum: accepted, saturating the store's weight rather than overflowing.
    c.insert(&Scope::global(), "q", vec![1.0], 1).unwrap();
    let c: Cache<u8> = Cache::builder(1).weigher(|_| usize::MAX).build().unwrap();
    assert!(matches!(
        c.insert(&Scope::global(), "q", vec![1.0], 1),
        Err(Error::ValueTooLarge { .. })
    ));
}

#[test]
fn hostile_strings_are_fine() {
    let c = cache();
    let g = Scope::from_parts(["\0", "\u{202e}evil", ""]);
    for p in [
        "\0",
        "\u{feff}",
        "e\u{301}\u{301}\u{301}",
        "\u{10ffff}",
        "a\u{2028}b",
    ] {
        c.insert(&g, p, vec![1.0, 1.0, 1.0], "v".into()).unwrap();
        assert!(
            c.lookup(&g, p, |_| Err::<Vec<f32>, _>(std::io::Error::other("no")))
                .unwrap()
                .is_hit()
        );
    }
}
