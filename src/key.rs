//! Prompt normalization and the exact-tier key.

use crate::scope::Scope;
use md5::Digest;
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
    // The common case, checked in one pass: ASCII (always NFC) with single inner spaces only.
    if ascii_and_normal(prompt.as_bytes()) {
        return Cow::Borrowed(prompt);
    }
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

/// Byte classes for [`ascii_and_normal`]: 0 other ASCII, 1 space, 2 other ASCII whitespace
/// (`\t \n \x0b \x0c \r`, all of which Unicode also counts), 3 not ASCII.
const CLASS: [u8; 256] = {
    let mut c = [0u8; 256];
    let mut i = 128;
    while i < 256 {
        c[i] = 3;
        i += 1;
    }
    c[b' ' as usize] = 1;
    c[b'\t' as usize] = 2;
    c[b'\n' as usize] = 2;
    c[0x0b] = 2;
    c[0x0c] = 2;
    c[b'\r' as usize] = 2;
    c
};

/// True for ASCII text without leading, trailing or repeated spaces or other whitespace: the
/// prompts that are already normal, in one pass (an exact hit pays for this on every lookup).
fn ascii_and_normal(b: &[u8]) -> bool {
    let mut prev_space = true; // a leading space is not normal
    for &byte in b {
        match CLASS[byte as usize] {
            0 => prev_space = false,
            1 if !prev_space => prev_space = true,
            _ => return false,
        }
    }
    !prev_space || b.is_empty()
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
    // made) must still not share keys, or one could evict the other's entries. The scope keeps
    // the hasher state after its encoding, so only the prompt is hashed here.
    let mut h = scope.key_prefix().clone();
    h.update((normalized.len() as u64).to_le_bytes());
    h.update(normalized.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Md5;

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

    /// The one-pass check agrees with the general rule on every short ASCII string of the
    /// characters that matter.
    #[test]
    fn the_fast_check_agrees_with_the_general_rule() {
        let alphabet = [b'a', b' ', b'\t', b'\n', b'\r', 0x0b, 0x0c, b'.'];
        let mut todo: Vec<Vec<u8>> = vec![vec![]];
        while let Some(s) = todo.pop() {
            let text = std::str::from_utf8(&s).unwrap();
            assert_eq!(ascii_and_normal(&s), is_whitespace_normal(text), "{s:?}");
            if s.len() < 5 {
                for &c in &alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    todo.push(t);
                }
            }
        }
        assert!(!ascii_and_normal("café".as_bytes()));
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
