//! The entities guard: "the CEO of Apple" does not answer "the CEO of Microsoft", nor a question
//! about `HashMap` one about `BTreeMap`.

use super::words::Word;

/// Capitalised words that are not names: the pronoun "I" and words that are only capitalised
/// for emphasis or in title case are filtered out because the other side is compared
/// case-insensitively, so only these need listing.
const NOT_NAMES: &[&str] = &["i", "i'm", "i've", "i'd", "i'll", "ok", "okay"];

/// Whether a word names something: capitalised (or with a capital inside, like `iPhone`)
/// anywhere but at the start of a sentence, or shaped like code (`snake_case`, `a::b`,
/// `obj.method`, `camelCase`, `f()`) anywhere.
fn is_name(w: &Word<'_>) -> bool {
    if NOT_NAMES.contains(&w.lower.as_str()) {
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

/// A name with an English possessive removed, lower-cased: `"Apple's"` → `"apple"`.
fn base(lower: &str) -> &str {
    lower
        .strip_suffix("'s")
        .or_else(|| lower.strip_suffix("’s"))
        .unwrap_or(lower)
}

/// What the entities guard compares on one side.
#[derive(Debug, Default)]
pub(crate) struct Names {
    names: Vec<String>,
    /// Every word, lower-cased and without possessive, so names match case-insensitively.
    words: Vec<String>,
}

impl Names {
    pub(crate) fn of(words: &[Word<'_>]) -> Names {
        Names {
            names: words
                .iter()
                .filter(|w| is_name(w))
                .map(|w| base(&w.lower).to_string())
                .collect(),
            words: words.iter().map(|w| base(&w.lower).to_string()).collect(),
        }
    }

    fn has_name_missing_from(&self, other: &Names) -> bool {
        self.names.iter().any(|n| !other.words.contains(n))
    }

    /// Whether the two sides name different things: each names something the other does not
    /// mention at all. A name on one side only ("Who is the CEO of Microsoft?" / "Who runs
    /// Microsoft?") is not a conflict: the other side may just say less.
    pub(crate) fn conflict(&self, other: &Names) -> bool {
        self.has_name_missing_from(other) && other.has_name_missing_from(self)
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
    }
}
