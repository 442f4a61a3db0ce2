//! Replays the committed cargo-fuzz corpora on stable Rust, then keeps exploring with random
//! inputs, so CI exercises the fuzz checks without a nightly toolchain.

#[path = "../fuzz/checks/normalize.rs"]
mod normalize_check;
#[path = "../fuzz/checks/ops.rs"]
mod ops_check;

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
    fn ops_random(data in prop::collection::vec(any::<u8>(), 0..600)) {
        ops_check::check(&data);
    }
}
