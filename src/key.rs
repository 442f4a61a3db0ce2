//! Prompt normalization and the exact-tier key.

use crate::scope::Scope;
use md5::{Digest, Md5};
use std::borrow::Cow;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// The exact tier's key: MD5 of `u64 length ‖ scope encoding ‖ u64 length ‖ normalized prompt`.
pub(crate) type Key = [u8; 16];

/// Normalize a prompt the way both tiers see it.
///
/// The rules, in order:
/// 1. Unicode NFC, so composed and decomposed accents (`é` vs `e` + `◌́`) are the same text;
/// 2. every run of Unicode whitespace becomes one ASCII space;
/// 3. leading and trailing whitespace is removed.
///
/// Case, punctuation and everything else are kept: `"Run ls -l"` and `"run LS -L"` can mean
/// different things to a model. Already-normalized input is returned borrowed, without allocating.
///
/// ```
/// use paracache::normalize;
/// assert_eq!(normalize("  What is\tRust?\n"), "What is Rust?");
/// assert_eq!(normalize("cafe\u{301}"), normalize("caf\u{e9}"));
/// assert_eq!(normalize("Hello"), "Hello");
/// ```
pub fn normalize(prompt: &str) -> Cow<'_, str> {
    // ASCII is always NFC; checking that is a fast vectorized scan.
    let nfc: Cow<'_, str> = if prompt.is_ascii() {
        Cow::Borrowed(prompt)
    } else {
        match is_nfc_quick(prompt.chars()) {
            IsNormalized::Yes => Cow::Borrowed(prompt),
            _ => Cow::Owned(prompt.nfc().collect()),
        }
    };
    if is_whitespace_normal(&nfc) {
        return nfc;
    }
    let mut out = String::with_capacity(nfc.len());
    for word in nfc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    Cow::Owned(out)
}

/// True when the text has no leading/trailing whitespace and no whitespace other than single spaces.
fn is_whitespace_normal(s: &str) -> bool {
    if s.is_ascii() {
        let b = s.as_bytes();
        let bad_edge = b.first().is_some_and(u8::is_ascii_whitespace)
            || b.last().is_some_and(u8::is_ascii_whitespace);
        // ASCII whitespace other than ' ' (\t \n \x0c \r) plus \x0b, which Unicode also counts.
        let odd = |c: &u8| matches!(c, b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
        return !bad_edge && !b.iter().any(odd) && !b.windows(2).any(|w| w == b"  ");
    }
    let mut prev_space = true; // a leading space is not normal
    for c in s.chars() {
        if c.is_whitespace() {
            if c != ' ' || prev_space {
                return false;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
    }
    !prev_space || s.is_empty()
}

/// The exact-tier key of an already normalized prompt in a scope.
pub(crate) fn exact_key(scope: &Scope, normalized: &str) -> Key {
    // The full encoding, not its digest: two scopes whose digests collide (MD5 collisions can be
    // made) must still not share keys, or one could evict the other's entries.
    let encoding = scope.encoding();
    let mut h = Md5::new();
    h.update((encoding.len() as u64).to_le_bytes());
    h.update(encoding);
    h.update((normalized.len() as u64).to_le_bytes());
    h.update(normalized.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_rules() {
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("   "), "");
        assert_eq!(normalize("a  b"), "a b");
        assert_eq!(normalize("a\u{00a0}b"), "a b");
        assert_eq!(normalize("\u{2003}a\r\nb "), "a b");
        assert_eq!(normalize("a\x0bb\x0cc"), "a b c");
        assert_eq!(normalize("a\u{85}b"), "a b");
        assert!(matches!(normalize("a b"), Cow::Borrowed(_)));
    }

    #[test]
    fn case_and_punctuation_are_kept() {
        assert_ne!(normalize("Rust"), normalize("rust"));
        assert_ne!(normalize("stop."), normalize("stop"));
    }

    #[test]
    fn keys_separate_scopes_and_texts() {
        let a = Scope::named("a");
        let b = Scope::named("b");
        assert_ne!(exact_key(&a, "x"), exact_key(&b, "x"));
        assert_ne!(exact_key(&a, "x"), exact_key(&a, "y"));
        assert_eq!(exact_key(&a, "x"), exact_key(&Scope::named("a"), "x"));
    }

    /// The key hashes the scope's whole length-prefixed encoding, so scopes whose digests collide
    /// still get different keys (a digest-based key failed this).
    #[test]
    fn keys_hash_the_full_scope_encoding_not_its_digest() {
        let s = Scope::builder().tenant("acme").model("m").build();
        let mut h = Md5::new();
        h.update((s.encoding().len() as u64).to_le_bytes());
        h.update(s.encoding());
        h.update(1u64.to_le_bytes());
        h.update(b"q");
        let expected: Key = h.finalize().into();
        assert_eq!(exact_key(&s, "q"), expected);
    }
}
