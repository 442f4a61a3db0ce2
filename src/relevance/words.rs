//! The words of a prompt as the guards see them: whitespace-separated chunks with the punctuation
//! around them trimmed, each knowing whether it starts a sentence.

use std::borrow::Cow;

/// One word of a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word<'a> {
    /// The chunk with surrounding punctuation trimmed (inner `'`, `.`, `:`, `,`, `-` kept).
    pub(crate) text: &'a str,
    /// Lower-cased `text` (borrowed when it has no capital, as most words).
    pub(crate) lower: Cow<'a, str>,
    /// First word of the prompt or of a sentence (after `.`, `?`, `!` or `:`).
    pub(crate) sentence_start: bool,
    /// A currency sign written before it (`$`, `£`, `€`, `¥`).
    pub(crate) currency: Option<char>,
    /// A `%` written after it.
    pub(crate) percent: bool,
}

fn is_currency(c: char) -> bool {
    matches!(c, '$' | '£' | '€' | '¥')
}

/// Split `prompt` into words. Chunks with no letter or digit are dropped.
pub(crate) fn words(prompt: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    for chunk in prompt.split_whitespace() {
        let start = chunk.find(char::is_alphanumeric);
        let end = chunk
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_alphanumeric())
            .map(|(i, c)| i + c.len_utf8());
        let (Some(start), Some(end)) = (start, end) else {
            sentence_start |= ends_sentence(chunk);
            continue;
        };
        let text = &chunk[start..end];
        out.push(Word {
            text,
            lower: if text.chars().any(char::is_uppercase) {
                Cow::Owned(text.to_lowercase())
            } else {
                Cow::Borrowed(text)
            },
            sentence_start,
            currency: chunk[..start].chars().rev().find(|c| is_currency(*c)),
            percent: chunk[end..].starts_with('%'),
        });
        sentence_start = ends_sentence(&chunk[end..]);
    }
    out
}

fn ends_sentence(tail: &str) -> bool {
    tail.contains(['.', '?', '!', ':'])
}

/// A set of short strings in one buffer: one allocation per prompt instead of one per word.
#[derive(Debug, Default)]
pub(crate) struct WordList {
    buf: String,
    ends: Vec<usize>,
}

impl WordList {
    pub(crate) fn push(&mut self, word: &str) {
        self.buf.push_str(word);
        self.ends.push(self.buf.len());
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.buf[a..b])
    }

    pub(crate) fn contains(&self, word: &str) -> bool {
        self.iter().any(|w| w == word)
    }
}

/// A crude stem for matching word families: lower case, then one of `ing`, `ed`, `es`, `s`
/// and a final `e` removed, so `enable`, `enabled`, `enables` and `enabling` all give `enabl`.
pub(crate) fn stem(lower: &str) -> &str {
    let mut s = lower;
    for suffix in ["ing", "ed", "es", "s"] {
        if s.len() > suffix.len() + 2
            && let Some(rest) = s.strip_suffix(suffix)
        {
            s = rest;
            break;
        }
    }
    if s.len() > 3 {
        s = s.strip_suffix('e').unwrap_or(s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_punctuation_and_marks_sentences() {
        let w = words("Hi! Is the £550,000 flat 15% off? \"Yes\" -- don't.");
        let texts: Vec<_> = w.iter().map(|w| w.text).collect();
        assert_eq!(
            texts,
            [
                "Hi", "Is", "the", "550,000", "flat", "15", "off", "Yes", "don't"
            ]
        );
        let starts: Vec<_> = w.iter().map(|w| w.sentence_start).collect();
        assert_eq!(
            starts,
            [true, true, false, false, false, false, false, true, false]
        );
        assert_eq!(w[3].currency, Some('£'));
        assert!(w[5].percent);
        assert!(words("  ... ?? ").is_empty());
    }

    #[test]
    fn stems_join_word_families() {
        for w in ["enable", "enabled", "enables", "enabling"] {
            assert_eq!(stem(w), "enabl", "{w}");
        }
        assert_eq!(stem("include"), stem("included"));
        assert_eq!(stem("add"), "add");
        assert_eq!(stem("is"), "is");
    }
}
