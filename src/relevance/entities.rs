//! The entities guard: "the CEO of Apple" does not answer "the CEO of Microsoft", nor a question
//! about `HashMap` one about `BTreeMap`.

use super::words::{Word, WordList};
use std::borrow::Cow;

/// Capitalised words that are not names: the pronoun "I" and words that are only capitalised
/// for emphasis or in title case are filtered out because the other side is compared
/// case-insensitively, so only these need listing.
const NOT_NAMES: &[&str] = &["i", "i'm", "i've", "i'd", "i'll", "ok", "okay"];

/// Whether a word names something: capitalised (or with a capital inside, like `iPhone`)
/// anywhere but at the start of a sentence, or shaped like code (`snake_case`, `a::b`,
/// `obj.method`, `camelCase`, `f()`) anywhere.
fn is_name(w: &Word<'_>) -> bool {
    if NOT_NAMES.contains(&w.lower.as_ref()) {
        return false;
    }
    let code_shaped = w.text.contains('_')
        || w.text.contains("::")
        || w.text.contains("()")
        || dotted_identifier(w.text)
        || w.text.chars().skip(1).any(char::is_uppercase) && w.text.chars().any(char::is_lowercase);
    let capitalised = w.text.chars().next().is_some_and(char::is_uppercase);
    code_shaped || capitalised && !w.sentence_start
}

/// `os.path`, `std.io`: letters on both sides of an inner dot (not "e.g", which is two letters).
fn dotted_identifier(text: &str) -> bool {
    text.split('.').count() > 1
        && text
            .split('.')
            .all(|part| part.len() > 1 && part.chars().all(|c| c.is_alphanumeric()))
}

/// A word folded for matching names: lower case, without dots and apostrophes (`U.S.A.` →
/// `usa`, `Asperger's` → `aspergers`), and without a plural `s` (`IITs` → `iit`).
fn fold(lower: &str) -> Cow<'_, str> {
    let mut f = if lower.contains(['.', '\'', '’']) {
        Cow::Owned(
            lower
                .chars()
                .filter(|c| !matches!(c, '.' | '\'' | '’'))
                .collect(),
        )
    } else {
        Cow::Borrowed(lower)
    };
    if f.len() > 3 && f.ends_with('s') && !f.ends_with("ss") {
        f = match f {
            Cow::Borrowed(b) => Cow::Borrowed(&b[..b.len() - 1]),
            Cow::Owned(mut o) => {
                o.pop();
                Cow::Owned(o)
            }
        };
    }
    f
}

/// Whether two folded words are one name: equal, one a prefix of the other of at least four
/// letters (`scot` / `scottish`, `india` / `indian`), or, both long, one typo apart (`hilary` /
/// `hillary`, `mondy` / `monday`).
pub(super) fn same_name(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.is_ascii() && b.is_ascii() {
        return close(a.as_bytes(), b.as_bytes());
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    close(&a, &b)
}

/// [`same_name`] on characters (bytes for ASCII, so the common case allocates nothing).
fn close<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    (short.len() >= 4 && long.starts_with(short))
        || (long.len() >= 5 && one_edit_apart(short, long))
}

/// Levenshtein distance of at most one, for `short` no longer than `long` (in characters).
fn one_edit_apart<T: PartialEq>(short: &[T], long: &[T]) -> bool {
    if long.len() - short.len() > 1 {
        return false;
    }
    let prefix = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    if prefix == short.len() {
        return true; // equal, or `long` is `short` plus one character
    }
    if short.len() == long.len() {
        short[prefix + 1..] == long[prefix + 1..]
    } else {
        short[prefix..] == long[prefix + 1..]
    }
}

/// Words that may sit inside a multi-word name without breaking it ("Bank of England").
const NAME_JOINERS: &[&str] = &["of", "and", "the", "&"];

/// The initials of each run of capitalised words, so an acronym on the other side matches the
/// name it stands for (`United States of America` → `usa` and `us`).
fn acronyms(words: &[Word<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    let mut all = String::new();
    let mut capitals = String::new();
    let mut flush = |all: &mut String, capitals: &mut String| {
        if capitals.len() >= 2 {
            out.push(std::mem::take(all));
            out.push(std::mem::take(capitals));
        }
        all.clear();
        capitals.clear();
    };
    for w in words {
        let first = w.text.chars().next();
        if first.is_some_and(char::is_uppercase) {
            let initial = first
                .map(|c| c.to_lowercase().to_string())
                .unwrap_or_default();
            all.push_str(&initial);
            capitals.push_str(&initial);
        } else if !capitals.is_empty() && NAME_JOINERS.contains(&w.lower.as_ref()) {
            all.extend(w.lower.chars().next());
        } else {
            flush(&mut all, &mut capitals);
        }
    }
    flush(&mut all, &mut capitals);
    out
}

/// Words of one or two ASCII letters or digits, kept in their case: in code and command lines
/// case is meaning (`ls -l` / `ls -L`, `cp -r` / `cp -R`, `git commit -m` / `-M`), while the
/// lexical embedder and the rest of this guard fold it away. "I" and "a" are ordinary words.
fn case_marked(w: &Word<'_>) -> bool {
    (1..=2).contains(&w.text.len())
        && w.text.bytes().all(|b| b.is_ascii_alphanumeric())
        && w.text.bytes().any(|b| b.is_ascii_alphabetic())
        && !matches!(w.text, "I" | "a" | "A")
}

/// Two-letter words that differ only by a capital first letter (`Is` / `is`, `Do` / `do`): the
/// case of a sentence start or a title, not of code.
fn title_case_pair(a: &str, b: &str) -> bool {
    a.len() == 2 && a[1..] == b[1..] && a[1..].bytes().all(|c| c.is_ascii_lowercase())
}

/// What the entities guard compares on one side.
#[derive(Debug, Default)]
pub(crate) struct Names {
    names: Vec<String>,
    /// Short tokens in their own case (see [`case_marked`]).
    cased: Vec<String>,
    /// Every word folded, and the acronyms of its capitalised runs, so names match across case,
    /// punctuation, plural and abbreviation.
    words: WordList,
}

impl Names {
    pub(crate) fn of(words: &[Word<'_>]) -> Names {
        let mut all = WordList::default();
        let mut names = Vec::new();
        let mut cased = Vec::new();
        for w in words {
            if case_marked(w) {
                cased.push(w.text.to_string());
            }
            let folded = fold(&w.lower);
            all.push(&folded);
            if is_name(w) && !folded.is_empty() {
                names.push(folded.into_owned());
            }
        }
        for acronym in acronyms(words) {
            all.push(&acronym);
        }
        Names {
            names,
            cased,
            words: all,
        }
    }

    fn has_name_missing_from(&self, other: &Names) -> bool {
        self.missing_from(other) > 0
    }

    /// How many of this side's names the other side never mentions.
    pub(crate) fn missing_from(&self, other: &Names) -> usize {
        self.names
            .iter()
            .filter(|n| !other.words.iter().any(|w| same_name(n, w)))
            .count()
    }

    /// Whether the two sides name different things: each names something the other does not
    /// mention at all. A name on one side only ("Who is the CEO of Microsoft?" / "Who runs
    /// Microsoft?") is not a conflict: the other side may just say less.
    ///
    /// A short token written in another case on the other side (`-L` against `-l`), and not in
    /// its own case there too, is a conflict as well.
    pub(crate) fn conflict(&self, other: &Names) -> bool {
        (self.has_name_missing_from(other) && other.has_name_missing_from(self))
            || self.recased_in(other)
            || other.recased_in(self)
    }

    fn recased_in(&self, other: &Names) -> bool {
        self.cased.iter().any(|t| {
            !other.cased.contains(t)
                && other
                    .cased
                    .iter()
                    .any(|u| u != t && u.eq_ignore_ascii_case(t) && !title_case_pair(t, u))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relevance::words::words;

    fn conflict(a: &str, b: &str) -> bool {
        Names::of(&words(a)).conflict(&Names::of(&words(b)))
    }

    #[test]
    fn swapped_names_conflict() {
        assert!(conflict(
            "Who is the CEO of Apple?",
            "Who is the CEO of Microsoft?"
        ));
        assert!(conflict(
            "Weather in Paris tomorrow?",
            "weather in Rome tomorrow"
        ));
        assert!(conflict(
            "Export data from HubSpot",
            "Export data from Salesforce"
        ));
        assert!(conflict(
            "How do I sort a HashMap?",
            "How do I sort a BTreeMap?"
        ));
        assert!(conflict(
            "What does os.path.join do?",
            "What does os.path.split do?"
        ));
        assert!(conflict(
            "Why does my_func fail?",
            "Why does other_func fail?"
        ));
    }

    /// Found by a hostile driver: the lexical embedder folds case, so `ls -L` met `ls -l` at
    /// similarity 1.0 and was served its answer.
    #[test]
    fn short_code_tokens_in_another_case_conflict() {
        assert!(conflict("ls -L", "ls -l"));
        assert!(conflict("cp -r src dst", "cp -R src dst"));
        assert!(conflict("git commit -m", "git commit -M"));
        assert!(!conflict("ls -l", "ls -l"));
        assert!(!conflict("ls -l -L", "ls -L -l"));
        assert!(!conflict("Is it a bug?", "is it A bug?"));
        assert!(!conflict("ls -l", "list files with ls"));
        assert!(conflict("Who runs IT here?", "Who runs it here?"));
    }

    #[test]
    fn the_same_names_in_any_case_do_not_conflict() {
        assert!(!conflict(
            "Who is the CEO of Microsoft?",
            "Who runs Microsoft?"
        ));
        assert!(!conflict(
            "Do You Accept Apple Pay?",
            "do you accept apple pay"
        ));
        assert!(!conflict(
            "What is Apple's revenue?",
            "What is the revenue of Apple?"
        ));
        assert!(!conflict("Paris weather", "What's the weather in Paris?"));
        assert!(!conflict(
            "How do I learn Python?",
            "Python: how to learn it"
        ));
        assert!(!conflict("Can I go, I wonder?", "May I go?"));
        assert!(!conflict(
            "How to get into the IITs?",
            "How to get into the IIT?"
        ));
        assert!(!conflict(
            "Why do Scots wear kilts?",
            "Why do Scottish men wear kilts?"
        ));
        assert!(!conflict(
            "Will Hillary Clinton win?",
            "Will Hilary Clinton win?"
        ));
        assert!(!conflict(
            "A lawyer in the United States?",
            "A lawyer in the US?"
        ));
        assert!(!conflict(
            "Beers sold in the U.S.A.?",
            "Beers sold in the USA?"
        ));
        assert!(!conflict("Best of quora.com?", "Best of Quora?"));
    }
}
