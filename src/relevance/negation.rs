//! The negation guard: "how do I enable X" is not answered by "how do I disable X", nor
//! "what is allowed" by "what is not allowed", though embeddings put them close.

use super::words::{Word, WordList, stem};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Words that negate on their own.
const NEGATORS: &[&str] = &[
    "not", "no", "non", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor",
    "cannot", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "couldnt",
    "wont", "wouldnt", "shouldnt", "havent", "hasnt", "hadnt", "mustnt",
];

/// Opposite pairs, as [`stem`]s. General words of requests and questions, not a list fitted to
/// any data set: verbs of settings and accounts, permission, direction, comparison and polarity.
const OPPOSITES: &[(&str, &str)] = &[
    ("with", "without"),
    ("enabl", "disabl"),
    ("activat", "deactivat"),
    ("includ", "exclud"),
    ("accept", "declin"),
    ("accept", "reject"),
    ("approv", "reject"),
    ("approv", "deny"),
    ("allow", "prohibit"),
    ("allow", "forbid"),
    ("allow", "ban"),
    ("allow", "block"),
    ("permit", "prohibit"),
    ("permitt", "prohibit"),
    ("add", "remov"),
    ("add", "delet"),
    ("creat", "delet"),
    ("install", "uninstall"),
    ("open", "clos"),
    ("start", "stop"),
    ("start", "end"),
    ("begin", "end"),
    ("increas", "decreas"),
    ("increas", "reduc"),
    ("rais", "lower"),
    ("buy", "sell"),
    ("upload", "download"),
    ("import", "export"),
    ("lock", "unlock"),
    ("block", "unblock"),
    ("subscrib", "unsubscrib"),
    ("connect", "disconnect"),
    ("encrypt", "decrypt"),
    ("login", "logout"),
    ("befor", "after"),
    ("maximum", "minimum"),
    ("max", "min"),
    ("more", "less"),
    ("most", "least"),
    ("higher", "lower"),
    ("highest", "lowest"),
    ("cheap", "expensiv"),
    ("cheapest", "expensiv"),
    ("best", "worst"),
    ("better", "wors"),
    ("advantag", "disadvantag"),
    ("pro", "con"),
    ("tru", "fals"),
    ("positiv", "negativ"),
    ("win", "los"),
    ("gain", "los"),
    ("hot", "cold"),
    ("mild", "spicy"),
    ("legal", "illegal"),
    ("safe", "unsaf"),
    ("safe", "dangerou"),
    ("good", "bad"),
    ("eligibl", "ineligibl"),
    ("qualify", "disqualify"),
    ("pass", "fail"),
    ("succe", "fail"),
    ("earliest", "latest"),
    ("early", "late"),
    ("first", "last"),
    ("inbound", "outbound"),
    ("incom", "outgo"),
    ("male", "femal"),
    ("north", "south"),
    ("east", "west"),
    ("inadequat", "outstand"),
    ("agre", "disagre"),
    ("like", "dislik"),
    ("visibl", "invisibl"),
    ("possibl", "impossibl"),
    ("valid", "invalid"),
];

/// The pairs of [`OPPOSITES`] a stem is in, with the stem first: read-only, built once.
fn opposites_of(stem: &str) -> &'static [(&'static str, &'static str)] {
    type Table = HashMap<&'static str, Vec<(&'static str, &'static str)>>;
    static TABLE: OnceLock<Table> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = Table::new();
        for &(x, y) in OPPOSITES {
            t.entry(x).or_default().push((x, y));
            t.entry(y).or_default().push((y, x));
        }
        t
    });
    table.get(stem).map_or(&[], Vec::as_slice)
}

/// Negative prefixes that turn a word into its opposite (`lock`/`unlock`, `like`/`dislike`).
const NEGATIVE_PREFIXES: &[&str] = &["un", "dis", "non", "il", "im", "in", "ir"];

fn negates(w: &Word<'_>) -> bool {
    if !w.lower.contains(['\'', '’']) {
        return NEGATORS.contains(&w.lower.as_ref());
    }
    let bare: String = w
        .lower
        .chars()
        .filter(|c| *c != '\'' && *c != '’')
        .collect();
    NEGATORS.contains(&bare.as_str()) || bare.ends_with("nt") && w.lower.ends_with("n't")
}

/// Whether the word at `i` negates the clause, not just asks for the other side: "why or why
/// not?", "…or not?" and "should/shouldn't" weigh both answers and negate nothing.
fn negates_at(words: &[Word<'_>], i: usize) -> bool {
    let w = &words[i];
    if !negates(w) {
        return false;
    }
    let prev = i.checked_sub(1).map(|p| words[p].lower.as_ref());
    let tag = matches!(prev, Some("or" | "why")) && w.lower == "not";
    let both_ways = w.text.contains('/');
    !(tag || both_ways)
}

/// What the negation guard compares on one side.
#[derive(Debug, Default)]
pub(crate) struct Polarity {
    negated: bool,
    /// Every word's stem.
    stems: WordList,
    /// (a stem of this side, one of its opposites), for every stem that has opposites.
    opposites: Vec<(&'static str, &'static str)>,
}

impl Polarity {
    pub(crate) fn of(words: &[Word<'_>]) -> Polarity {
        let mut stems = WordList::default();
        let mut opposites = Vec::new();
        for w in words {
            let s = stem(&w.lower);
            stems.push(s);
            opposites.extend_from_slice(opposites_of(s));
        }
        Polarity {
            negated: (0..words.len()).any(|i| negates_at(words, i)),
            stems,
            opposites,
        }
    }

    /// Whether the prompt is negated ("not", "can't", "never"; not a question tag).
    pub(crate) fn negated(&self) -> bool {
        self.negated
    }

    fn has(&self, stem: &str) -> bool {
        self.stems.contains(stem)
    }

    /// Whether one side says the opposite of the other: a negation on one side only, or one
    /// side using a word whose opposite the other uses instead.
    pub(crate) fn opposes(&self, other: &Polarity) -> bool {
        if self.negated != other.negated {
            return true;
        }
        let one_way = |a: &Polarity, b: &Polarity| {
            a.opposites
                .iter()
                .any(|&(x, y)| !a.has(y) && b.has(y) && !b.has(x))
                || a.stems.iter().any(|s| {
                    NEGATIVE_PREFIXES.iter().any(|p| {
                        s.strip_prefix(p)
                            .is_some_and(|base| base.len() >= 4 && b.has(base) && !a.has(base))
                    }) && !b.has(s)
                })
        };
        one_way(self, other) || one_way(other, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relevance::words::words;

    fn opposes(a: &str, b: &str) -> bool {
        Polarity::of(&words(a)).opposes(&Polarity::of(&words(b)))
    }

    #[test]
    fn negation_on_one_side_opposes() {
        assert!(opposes("Is it safe?", "Is it not safe?"));
        assert!(opposes("Why can't I log in?", "Why can I log in?"));
        assert!(opposes("Why cant I log in", "why can I log in"));
        assert!(opposes("What is allowed", "What is never allowed"));
    }

    #[test]
    fn opposite_words_oppose() {
        assert!(opposes(
            "How do I enable dark mode?",
            "How do I disable dark mode?"
        ));
        assert!(opposes("Is the fee included?", "Is the fee excluded?"));
        assert!(opposes("How do I add a user?", "How do I remove a user?"));
        assert!(opposes(
            "How do I lock my card?",
            "How do I unlock my card?"
        ));
        assert!(opposes("Is it legal here?", "Is it illegal here?"));
        assert!(opposes(
            "Can I fly with a passport?",
            "Can I fly without a passport?"
        ));
    }

    #[test]
    fn same_polarity_in_other_words_does_not_oppose() {
        assert!(!opposes(
            "How do I enable dark mode?",
            "Switch on the dark theme"
        ));
        assert!(!opposes(
            "I don't recognise a payment",
            "A payment I didn't make"
        ));
        assert!(!opposes(
            "How do I add and remove users?",
            "Remove or add a user"
        ));
        assert!(!opposes("What is Rust?", "Tell me about Rust"));
        assert!(!opposes(
            "Is this information correct?",
            "Is the info correct?"
        ));
    }
}
