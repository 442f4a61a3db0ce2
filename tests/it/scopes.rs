//! Scopes partition both tiers; their encoding is unambiguous.

use crate::support::{self, fixed};
use paracache::{Cache, Scope};
use proptest::prelude::*;

#[test]
fn neither_tier_crosses_scopes() {
    let c: Cache<&str> = Cache::builder(2).threshold(0.5).build().unwrap();
    let a = Scope::builder().tenant("alice").model("m").build();
    let b = Scope::builder().tenant("bob").model("m").build();
    c.insert(&a, "my secret question", vec![1.0, 0.0], "alice's answer")
        .unwrap();
    // Same prompt, same vector, other tenant: a miss in both tiers.
    let r = c
        .lookup(&b, "my secret question", fixed(&[1.0, 0.0]))
        .unwrap();
    assert!(!r.is_hit());
    assert_eq!(
        c.stats().embed_calls,
        1,
        "exact tier missed, so the embedder ran"
    );
    assert!(
        c.lookup(&a, "my secret question", support::never)
            .unwrap()
            .is_hit()
    );
}

#[test]
fn every_part_separates() {
    let base = || {
        Scope::builder()
            .tenant("t")
            .model("m")
            .system_prompt("s")
            .param("temperature", "0")
    };
    let s = base().build();
    let variants = [
        base().tenant("t2").build(),
        base().model("m2").build(),
        base().system_prompt("s2").build(),
        base().param("temperature", "1").build(),
        base().param("top_p", "1").build(),
    ];
    let c: Cache<u8> = Cache::builder(1).build().unwrap();
    c.insert(&s, "q", vec![1.0], 1).unwrap();
    for v in &variants {
        assert_ne!(v, &s);
        assert!(
            !c.lookup(v, "q", fixed(&[1.0])).unwrap().is_hit(),
            "{v:?} saw another scope's entry"
        );
    }
}

#[test]
fn tag_separates_same_bytes_in_different_parts() {
    assert_ne!(
        Scope::builder().tenant("x").build(),
        Scope::builder().model("x").build()
    );
    assert_ne!(
        Scope::builder().param("a", "bc").build(),
        Scope::builder().param("ab", "c").build()
    );
}

proptest! {
    #[test]
    fn from_parts_is_injective(a in prop::collection::vec(".{0,6}", 0..4), b in prop::collection::vec(".{0,6}", 0..4)) {
        prop_assert_eq!(a == b, Scope::from_parts(&a) == Scope::from_parts(&b));
        prop_assert_eq!(a == b, Scope::from_parts(&a).encoding() == Scope::from_parts(&b).encoding());
    }

    #[test]
    fn normalize_is_idempotent_and_whitespace_insensitive(words in prop::collection::vec("[^\\s]{1,5}", 1..6), seps in prop::collection::vec("[ \t\n\u{a0}]{1,3}", 6)) {
        let spaced = words.join(" ");
        let mut messy = String::from(seps[5].as_str());
        for (w, sep) in words.iter().zip(&seps) {
            messy.push_str(w);
            messy.push_str(sep);
        }
        let n = paracache::normalize(&messy).into_owned();
        prop_assert_eq!(paracache::normalize(&n).into_owned(), n.clone());
        prop_assert_eq!(n, paracache::normalize(&spaced).into_owned());
    }
}
