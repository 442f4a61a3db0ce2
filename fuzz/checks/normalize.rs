//! Properties of `normalize` and `Scope` encoding that must hold for any input. Shared by the
//! cargo-fuzz target and by `tests/it/fuzz_corpus.rs`, which replays the corpus on stable Rust.

use paracache::{Scope, normalize};

pub(crate) fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let n = normalize(&text);
    // Idempotent.
    assert_eq!(normalize(&n), n, "normalize is not idempotent");
    // No leading/trailing whitespace, no whitespace but single spaces.
    assert_eq!(n.trim(), &*n);
    assert!(!n.contains("  "));
    assert!(n.chars().all(|c| c == ' ' || !c.is_whitespace()));
    // Insensitive to how whitespace is written.
    let rejoined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(normalize(&rejoined), n);

    // Scope encodings are unambiguous and round-trip.
    let parts: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    let scope = Scope::from_parts(&parts);
    assert_eq!(Scope::from_encoding(scope.encoding().to_vec()), scope);
    let mut longer = parts.clone();
    longer.push(b"");
    assert_ne!(Scope::from_parts(&longer), scope);
    if let Some((last, init)) = parts.split_last()
        && !last.is_empty()
    {
        // Moving a byte across a part boundary must change the scope.
        let mut moved: Vec<Vec<u8>> = init.iter().map(|p| p.to_vec()).collect();
        moved.push(last[..1].to_vec());
        moved.push(last[1..].to_vec());
        assert_ne!(Scope::from_parts(&moved), scope);
    }
}
