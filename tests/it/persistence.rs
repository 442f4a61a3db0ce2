//! Snapshots: a loaded cache answers as the saved one did; TTL survives restarts; broken or
//! hostile files are errors, never panics.

use crate::fuzz_checks::snapshot as snapshot_check;
use crate::support::{self, vec_for};
use paracache::{Cache, Error, GraphEngine, MockClock, Scope, Source};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const DIM: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Answer {
    text: String,
    tokens: u32,
}

fn builder() -> paracache::CacheBuilder<Answer> {
    Cache::builder(DIM)
        .threshold(0.95)
        .exact_scan_limit(100)
        .background_rebuild(false)
        .alias_hits(false) // `answers` asks the same paraphrases twice and expects the same tier
}

/// One lookup's answer in a comparable form: source, (value, matched prompt), similarity × 1e6.
type Answered = (Source, Option<(Answer, String)>, i64);

/// What a fixed set of lookups answers.
fn answers(c: &Cache<Answer>, scopes: &[Scope]) -> Vec<Answered> {
    let mut out = Vec::new();
    let mut rng = support::rng(99);
    for (si, s) in scopes.iter().enumerate() {
        for i in (0..400).step_by(7) {
            let queries = [
                (format!("prompt {i}"), vec_for(i + si * 1000, DIM)),
                (
                    format!("paraphrase {i}"),
                    support::jitter(&mut rng, &vec_for(i + si * 1000, DIM), 0.003),
                ),
                (format!("novel {i}"), vec_for(50_000 + i, DIM)),
            ];
            for (text, v) in queries {
                let r = c
                    .lookup(s, &text, |_| Ok::<_, std::io::Error>(v.clone()))
                    .unwrap();
                out.push(match r.hit() {
                    Some(h) => (
                        h.source(),
                        Some((h.value().clone(), h.matched_prompt().to_string())),
                        (h.similarity() * 1e6) as i64,
                    ),
                    None => (Source::Computed, None, 0),
                });
            }
        }
    }
    out
}

#[test]
fn a_loaded_cache_answers_as_the_saved_one_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snapshot");
    let scopes = [
        Scope::builder().tenant("a").build(),
        Scope::builder().tenant("b").model("m").build(),
    ];
    let c = builder().build().unwrap();
    for (si, s) in scopes.iter().enumerate() {
        // Scope a gets a graph (400 > exact-scan limit 100), scope b stays flat.
        for i in 0..if si == 0 { 400 } else { 60 } {
            let v = Answer {
                text: format!("answer {si}/{i}"),
                tokens: i as u32,
            };
            c.insert(s, &format!("prompt {i}"), vec_for(i + si * 1000, DIM), v)
                .unwrap();
        }
    }
    c.invalidate(&scopes[0], "prompt 7");
    let before = answers(&c, &scopes);
    assert!(
        before.iter().any(|a| a.0 == Source::Semantic)
            && before.iter().any(|a| a.0 == Source::Exact)
    );
    let report = c.save(&path).unwrap();
    assert_eq!(report.entries, 459);
    assert_eq!(report.bytes, std::fs::metadata(&path).unwrap().len());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "temporary files left behind: {leftovers:?}"
    );

    let (loaded, report) = builder().build_from_snapshot(&path).unwrap();
    assert_eq!(
        (report.entries, report.expired, report.refused),
        (459, 0, 0)
    );
    assert_eq!(answers(&loaded, &scopes), before);
    loaded.run_pending_tasks();
    assert_eq!(loaded.stats().index_live, 459);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), report.bytes);
}

#[test]
fn ttl_and_tti_keep_counting_across_a_restart() {
    let clock = MockClock::new();
    let b = || {
        builder()
            .time_to_live(Duration::from_secs(100))
            .clock(clock.clone())
    };
    let c = b().build().unwrap();
    let s = Scope::global();
    c.insert(
        &s,
        "old",
        vec_for(1, DIM),
        Answer {
            text: "o".into(),
            tokens: 1,
        },
    )
    .unwrap();
    clock.advance(Duration::from_secs(50));
    c.insert(
        &s,
        "new",
        vec_for(2, DIM),
        Answer {
            text: "n".into(),
            tokens: 2,
        },
    )
    .unwrap();
    let bytes = c.to_snapshot_bytes().unwrap();
    drop(c);
    // Down for 60 s: "old" (110 s) expired meanwhile, "new" (60 s) did not.
    clock.advance(Duration::from_secs(60));
    let (c, report) = b().build_from_snapshot_bytes(&bytes).unwrap();
    assert_eq!((report.entries, report.expired), (1, 1));
    let never = |_: &str| -> Result<Vec<f32>, std::io::Error> { Ok(vec_for(3, DIM)) };
    assert!(!c.lookup(&s, "old", never).unwrap().is_hit());
    assert!(c.lookup(&s, "new", never).unwrap().is_hit());
    clock.advance(Duration::from_secs(41)); // "new" is now 101 s old
    assert!(!c.lookup(&s, "new", never).unwrap().is_hit());

    // TTI: the last access time is saved too.
    let c = builder()
        .time_to_idle(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert(
        &s,
        "idle",
        vec_for(4, DIM),
        Answer {
            text: "i".into(),
            tokens: 0,
        },
    )
    .unwrap();
    let bytes = c.to_snapshot_bytes().unwrap();
    clock.advance(Duration::from_secs(11));
    let (_, report) = builder()
        .time_to_idle(Duration::from_secs(10))
        .clock(clock.clone())
        .build_from_snapshot_bytes(&bytes)
        .unwrap();
    assert_eq!((report.entries, report.expired), (0, 1));
}

fn small_snapshot() -> Vec<u8> {
    let c = builder().build().unwrap();
    for i in 0..3 {
        c.insert(
            &Scope::named(format!("s{i}")),
            &format!("p{i}"),
            vec_for(i, DIM),
            Answer {
                text: "x".repeat(i),
                tokens: 1,
            },
        )
        .unwrap();
    }
    c.to_snapshot_bytes().unwrap()
}

#[test]
fn every_truncation_and_every_bit_flip_is_an_error() {
    let good = small_snapshot();
    assert!(builder().build_from_snapshot_bytes(&good).is_ok());
    for len in 0..good.len() {
        let err = builder()
            .build_from_snapshot_bytes(&good[..len])
            .unwrap_err();
        assert!(
            matches!(err, Error::CorruptSnapshot(_)),
            "truncation to {len}: {err:?}"
        );
    }
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            let err = builder().build_from_snapshot_bytes(&bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::CorruptSnapshot(_) | Error::UnsupportedSnapshotVersion { .. }
                ),
                "flip of byte {i} bit {bit}: {err:?}"
            );
        }
    }
}

/// Fix the header checksum after editing the header, so only the edited field is wrong.
fn reseal_header(b: &mut [u8]) {
    let crc = snapshot_check::crc32(&b[..48]);
    b[48..52].copy_from_slice(&crc.to_le_bytes());
}

/// Where the records start: after the 52-byte header of format versions 2 and 3.
const PAYLOAD: usize = 52;

#[test]
fn hostile_headers_are_refused() {
    let good = small_snapshot();
    let mut wrong_magic = good.clone();
    wrong_magic[..8].copy_from_slice(b"GPTCACHE");
    reseal_header(&mut wrong_magic);
    assert!(matches!(
        builder().build_from_snapshot_bytes(&wrong_magic),
        Err(Error::CorruptSnapshot(_))
    ));

    let mut future = good.clone();
    future[8..12].copy_from_slice(&7u32.to_le_bytes());
    reseal_header(&mut future);
    assert_eq!(
        builder().build_from_snapshot_bytes(&future).unwrap_err(),
        Error::UnsupportedSnapshotVersion {
            found: 7,
            supported: 3
        }
    );

    let mut other_dim = good.clone();
    other_dim[16..20].copy_from_slice(&(DIM as u32 + 1).to_le_bytes());
    reseal_header(&mut other_dim);
    assert_eq!(
        builder().build_from_snapshot_bytes(&other_dim).unwrap_err(),
        Error::DimensionMismatch {
            expected: DIM,
            got: DIM + 1
        }
    );

    // Huge lengths in the footer and in the first record, with checksums made consistent.
    let n = good.len();
    for (at, field) in [
        (n - 24, &u64::MAX.to_le_bytes()[..]),
        (n - 16, &u64::MAX.to_le_bytes()[..]),
        (PAYLOAD, &u32::MAX.to_le_bytes()[..]),
    ] {
        let mut bad = good.clone();
        bad[at..at + field.len()].copy_from_slice(field);
        let crc = snapshot_check::crc32(&bad[PAYLOAD..n - 24]);
        bad[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
        assert!(
            matches!(
                builder().build_from_snapshot_bytes(&bad),
                Err(Error::CorruptSnapshot(_))
            ),
            "field at {at}"
        );
    }
}

#[test]
fn records_that_a_valid_save_cannot_write_are_corrupt() {
    // A well-framed file whose record holds a NaN vector: checksums pass, the record check fails.
    let c: Cache<u8> = Cache::builder(2).build().unwrap();
    c.insert(&Scope::global(), "q", vec![1.0, 0.0], 1).unwrap();
    let mut f = c.to_snapshot_bytes().unwrap();
    let n = f.len();
    // The vector's first f32 (1.0 scaled to unit = 1.0) is in the record; replace it with NaN.
    let pos = f
        .windows(4)
        .position(|w| w == 1.0f32.to_le_bytes())
        .expect("vector bytes present");
    f[pos..pos + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let crc = snapshot_check::crc32(&f[PAYLOAD..n - 24]);
    f[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
    let err = Cache::<u8>::builder(2)
        .build_from_snapshot_bytes(&f)
        .unwrap_err();
    assert!(
        matches!(&err, Error::CorruptSnapshot(m) if m.contains("vector")),
        "{err:?}"
    );
}

#[test]
fn a_stricter_configuration_skips_what_it_refuses() {
    let c = builder().build().unwrap();
    c.insert(
        &Scope::global(),
        "short",
        vec_for(1, DIM),
        Answer {
            text: "a".into(),
            tokens: 1,
        },
    )
    .unwrap();
    c.insert(
        &Scope::global(),
        &"long ".repeat(40),
        vec_for(2, DIM),
        Answer {
            text: "b".into(),
            tokens: 1,
        },
    )
    .unwrap();
    let bytes = c.to_snapshot_bytes().unwrap();
    let (_, report) = builder()
        .max_prompt_bytes(100)
        .build_from_snapshot_bytes(&bytes)
        .unwrap();
    assert_eq!((report.entries, report.refused), (1, 1));
}

#[test]
fn snapshot_on_drop_and_periodic_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let on_drop = dir.path().join("drop.snapshot");
    let c = builder().snapshot_on_drop(&on_drop).build().unwrap();
    c.insert(
        &Scope::global(),
        "q",
        vec_for(1, DIM),
        Answer {
            text: "kept".into(),
            tokens: 3,
        },
    )
    .unwrap();
    let clone = c.clone();
    drop(c);
    assert!(!on_drop.exists(), "a clone still holds the cache");
    drop(clone);
    let (loaded, report) = builder().build_from_snapshot(&on_drop).unwrap();
    assert_eq!(report.entries, 1);
    assert!(
        loaded
            .lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec_for(
                1, DIM
            )))
            .unwrap()
            .is_hit()
    );

    let periodic = dir.path().join("periodic.snapshot");
    let c = builder()
        .snapshot_every(&periodic, Duration::from_millis(100))
        .build()
        .unwrap();
    c.insert(
        &Scope::global(),
        "q",
        vec_for(1, DIM),
        Answer {
            text: "p".into(),
            tokens: 1,
        },
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.stats().snapshots_saved < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.stats().snapshots_saved >= 2, "{:?}", c.stats());
    assert_eq!(c.stats().snapshot_errors, 0);
    assert_eq!(
        builder().build_from_snapshot(&periodic).unwrap().1.entries,
        1
    );
    // A failing destination is counted, not fatal.
    let bad = builder()
        .snapshot_every(
            dir.path().join("missing-dir/x.snapshot"),
            Duration::from_millis(50),
        )
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while bad.stats().snapshot_errors == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(bad.stats().snapshot_errors >= 1);
}

#[test]
fn a_record_claiming_a_gigantic_string_is_refused_without_allocating_it() {
    // bincode varint 253 = a u64 length follows: the record's first field (the scope bytes) claims
    // 2^62 bytes. The frame and checksums are valid, so only the record decoder stands in the way.
    let mut record = vec![253u8];
    record.extend_from_slice(&(1u64 << 62).to_le_bytes());
    record.extend_from_slice(b"tiny");
    let f = snapshot_check::framed_as_one_record(&record);
    let err = snapshot_check::builder()
        .build_from_snapshot_bytes(&f)
        .unwrap_err();
    assert!(
        matches!(&err, Error::CorruptSnapshot(m) if m.starts_with("record")),
        "{err:?}"
    );
}

#[test]
fn a_failed_load_never_overwrites_the_snapshot_it_could_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.snapshot");
    let c = builder().build().unwrap();
    c.insert(
        &Scope::global(),
        "q",
        vec_for(1, DIM),
        Answer {
            text: "precious".into(),
            tokens: 1,
        },
    )
    .unwrap();
    c.save(&path).unwrap();
    let original = std::fs::read(&path).unwrap();
    // Wrong dimension, and a corrupt copy: both loads fail, and with snapshot-on-drop configured
    // the failed attempt must not save an empty cache over the file.
    let err = Cache::<Answer>::builder(DIM + 1)
        .snapshot_on_drop(&path)
        .build_from_snapshot(&path)
        .unwrap_err();
    assert!(matches!(err, Error::DimensionMismatch { .. }));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        original,
        "a failed load overwrote the snapshot"
    );
    let mut corrupt = original.clone();
    let last = corrupt.len() - 30;
    corrupt[last] ^= 0xff;
    std::fs::write(&path, &corrupt).unwrap();
    assert!(
        builder()
            .snapshot_on_drop(&path)
            .build_from_snapshot(&path)
            .is_err()
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        corrupt,
        "the unreadable file was overwritten"
    );
    std::fs::write(&path, &original).unwrap();
    assert_eq!(builder().build_from_snapshot(&path).unwrap().1.entries, 1);
}

#[test]
fn a_loaded_cache_answers_while_its_graphs_build_in_the_background() {
    let scopes = [Scope::builder().tenant("a").build()];
    let c = builder().build().unwrap();
    for i in 0..400 {
        c.insert(
            &scopes[0],
            &format!("prompt {i}"),
            vec_for(i, DIM),
            Answer {
                text: format!("{i}"),
                tokens: 0,
            },
        )
        .unwrap();
    }
    let before = answers(&c, &scopes);
    let bytes = c.to_snapshot_bytes().unwrap();
    // Background rebuilds on (the default): the load returns before the graph exists.
    let background = || {
        Cache::builder(DIM)
            .threshold(0.95)
            .exact_scan_limit(100)
            .alias_hits(false)
    };
    let (loaded, _) = background().build_from_snapshot_bytes(&bytes).unwrap();
    assert_eq!(
        answers(&loaded, &scopes),
        before,
        "answers while the graph builds"
    );
    loaded.compact();
    assert!(loaded.stats().rebuilds >= 1, "{:?}", loaded.stats());
    assert_eq!(
        answers(&loaded, &scopes),
        before,
        "answers once the graph is in"
    );
}

/// `c` holding prompts `0..n` of `scope` (vectors `vec_for(i)`).
fn fill(c: &Cache<Answer>, scope: &Scope, n: usize) {
    for i in 0..n {
        let answer = Answer {
            text: format!("{i}"),
            tokens: 0,
        };
        c.insert(scope, &format!("prompt {i}"), vec_for(i, DIM), answer)
            .unwrap();
    }
}

#[test]
fn a_graph_is_linked_from_its_saved_links_and_answers_as_before() {
    let scopes = [Scope::builder().tenant("a").build()];
    let c = builder().build().unwrap();
    fill(&c, &scopes[0], 400);
    c.compact();
    let before = answers(&c, &scopes);
    let bytes = c.to_snapshot_bytes().unwrap();

    let (loaded, _) = builder().build_from_snapshot_bytes(&bytes).unwrap();
    loaded.compact();
    assert_eq!(loaded.stats().graphs_restored, 1, "{:?}", loaded.stats());
    assert_eq!(loaded.stats().index_live, 400);
    assert_eq!(answers(&loaded, &scopes), before);
    // Saved again, the restored graph's links round-trip.
    let (again, _) = builder()
        .build_from_snapshot_bytes(&loaded.to_snapshot_bytes().unwrap())
        .unwrap();
    again.compact();
    assert_eq!(again.stats().graphs_restored, 1);
    assert_eq!(answers(&again, &scopes), before);

    // Links built with another m, or an engine that cannot take links: the graph is rebuilt.
    for other in [
        builder().hnsw(8, 100, 64),
        builder().graph_engine(GraphEngine::HnswRs),
    ] {
        let (rebuilt, _) = other.build_from_snapshot_bytes(&bytes).unwrap();
        rebuilt.compact();
        let stats = rebuilt.stats();
        assert_eq!((stats.graphs_restored, stats.index_live), (0, 400));
        assert!(stats.rebuilds >= 1);
        assert_eq!(answers(&rebuilt, &scopes), before);
    }
}

#[test]
fn links_of_entries_gone_before_the_save_are_left_out() {
    let scopes = [Scope::builder().tenant("a").build()];
    // What an exact scan over the surviving entries answers.
    let exact = builder().exact_scan_limit(usize::MAX).build().unwrap();
    for (gone, restored) in [(40, 1), (200, 0)] {
        // No compaction before the save, so the dead nodes are in the saved links.
        let c = builder().max_dead_ratio(0.9).build().unwrap();
        fill(&c, &scopes[0], 400);
        c.compact();
        fill(&exact, &scopes[0], 400);
        // Every 400/gone-th entry dies: its node is saved without a key.
        for i in (0..400).step_by(400 / gone) {
            assert!(c.invalidate(&scopes[0], &format!("prompt {i}")));
            assert!(exact.invalidate(&scopes[0], &format!("prompt {i}")));
        }
        let (loaded, report) = builder()
            .build_from_snapshot_bytes(&c.to_snapshot_bytes().unwrap())
            .unwrap();
        assert_eq!(report.entries, 400 - gone as u64);
        loaded.compact();
        // A few holes keep the links; with half the nodes gone the graph is rebuilt.
        assert_eq!(loaded.stats().graphs_restored, restored, "{gone} gone");
        assert_eq!(loaded.stats().index_live, 400 - gone as u64);
        assert_eq!(
            answers(&loaded, &scopes),
            answers(&exact, &scopes),
            "{gone} gone"
        );
        exact.clear();
    }
}

#[test]
fn a_garbled_graphs_item_is_corrupt_and_an_empty_list_is_not() {
    let garbled = snapshot_check::framed_as_graphs_item(b"\x05not links at all");
    assert!(matches!(
        snapshot_check::builder().build_from_snapshot_bytes(&garbled),
        Err(Error::CorruptSnapshot(m)) if m.contains("graph")
    ));
    // bincode's empty list: a graphs item that links nothing.
    let empty = snapshot_check::framed_as_graphs_item(&[0]);
    let (c, report) = snapshot_check::builder()
        .build_from_snapshot_bytes(&empty)
        .unwrap();
    assert_eq!((report.entries, c.stats().graphs_restored), (0, 0));
}
