//! Replays the committed cargo-fuzz corpora on stable Rust, then keeps exploring with random
//! inputs, so CI exercises the fuzz checks without a nightly toolchain.

use crate::fuzz_checks::{
    normalize as normalize_check, ops as ops_check, snapshot as snapshot_check,
};
use proptest::prelude::*;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            check(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn normalize_corpus() {
    assert!(replay("normalize", normalize_check::check) > 0);
}

#[test]
fn ops_corpus() {
    assert!(replay("ops", ops_check::check) > 0);
}

#[test]
fn snapshot_corpus() {
    if std::env::var_os("PARACACHE_WRITE_SEEDS").is_some() {
        write_snapshot_seeds();
    }
    assert!(replay("snapshot", snapshot_check::check) > 0);
}

/// Valid snapshots to start the fuzzer from
/// (`PARACACHE_WRITE_SEEDS=1 cargo test -p paracache --test it fuzz_corpus`).
fn write_snapshot_seeds() {
    use paracache::Scope;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/snapshot");
    for (n, entries) in [0usize, 1, 3].into_iter().enumerate() {
        let c = snapshot_check::builder().build().unwrap();
        for i in 0..entries {
            let v = vec![1.0 + i as f32, 0.5, -0.25 * i as f32, 2.0];
            c.insert(
                &Scope::named(format!("tenant{}", i % 2)),
                &format!("prompt {i}"),
                v,
                "a".repeat(i),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join(format!("valid-{n}")),
            c.to_snapshot_bytes().unwrap(),
        )
        .unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn normalize_random(data in prop::collection::vec(any::<u8>(), 0..256)) {
        normalize_check::check(&data);
    }

    #[test]
    fn normalize_random_text(s in "\\PC{0,64}") {
        normalize_check::check(s.as_bytes());
    }

    #[test]
    fn snapshot_random(data in prop::collection::vec(any::<u8>(), 0..300)) {
        snapshot_check::check(&data);
    }

    #[test]
    fn ops_random(data in prop::collection::vec(any::<u8>(), 0..600)) {
        ops_check::check(&data);
    }
}
