//! The numbers guard: a cached answer about "2 years" does not answer a question about
//! "20 years", nor one about 3pm on Friday a question about 3pm tomorrow.

use super::words::Word;
use std::collections::{BTreeMap, BTreeSet};

/// Numbers written as words; "one" is left out because it is more often a pronoun
/// ("which one is better?") than a count.
fn number_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "zero" => "0",
        "two" | "twice" | "double" | "second" => "2",
        "three" | "triple" | "third" => "3",
        "four" | "fourth" => "4",
        "five" | "fifth" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        "ten" => "10",
        "eleven" => "11",
        "twelve" => "12",
        "thirteen" => "13",
        "fourteen" => "14",
        "fifteen" => "15",
        "sixteen" => "16",
        "seventeen" => "17",
        "eighteen" => "18",
        "nineteen" => "19",
        "twenty" => "20",
        "thirty" => "30",
        "forty" => "40",
        "fifty" => "50",
        "sixty" => "60",
        "seventy" => "70",
        "eighty" => "80",
        "ninety" => "90",
        "hundred" => "100",
        "thousand" => "1000",
        "million" => "1000000",
        "billion" => "1000000000",
        "half" => "0.5",
        _ => return None,
    })
}

/// Units that change what a number means, with their spellings folded to one name.
fn unit_name(word: &str) -> Option<&'static str> {
    Some(match word {
        "%" | "percent" => "%",
        "am" => "am",
        "pm" => "pm",
        "km" | "kilometre" | "kilometer" | "kilometres" | "kilometers" => "km",
        "mile" | "miles" | "mi" => "mi",
        "m" | "metre" | "meter" | "metres" | "meters" => "m",
        "cm" => "cm",
        "mm" => "mm",
        "kg" | "kilo" | "kilos" => "kg",
        "g" | "gram" | "grams" => "g",
        "lb" | "lbs" => "lb",
        "oz" => "oz",
        "l" | "litre" | "liter" | "litres" | "liters" => "l",
        "ml" => "ml",
        "kb" => "kb",
        "mb" => "mb",
        "gb" => "gb",
        "tb" => "tb",
        "hz" => "hz",
        "khz" => "khz",
        "mhz" => "mhz",
        "ghz" => "ghz",
        "mph" => "mph",
        "kph" => "kph",
        "c" | "celsius" => "c",
        "f" | "fahrenheit" => "f",
        "second" | "seconds" => "s",
        "minute" | "minutes" => "min",
        "hour" | "hours" | "hr" | "hrs" => "h",
        "day" | "days" => "day",
        "week" | "weeks" => "week",
        "month" | "months" => "month",
        "year" | "years" => "year",
        "$" | "dollar" | "dollars" | "usd" => "$",
        "£" | "gbp" => "£",
        "€" | "euro" | "euros" | "eur" => "€",
        "¥" | "yen" => "¥",
        _ => return None,
    })
}

/// Names of days and months and the relative days; "may" is left out (a verb far more often).
fn is_date_word(word: &str) -> bool {
    matches!(
        word,
        "monday"
            | "tuesday"
            | "wednesday"
            | "thursday"
            | "friday"
            | "saturday"
            | "sunday"
            | "weekday"
            | "weekend"
            | "january"
            | "february"
            | "march"
            | "april"
            | "june"
            | "july"
            | "august"
            | "september"
            | "october"
            | "november"
            | "december"
            | "today"
            | "tonight"
            | "tomorrow"
            | "yesterday"
    )
}

/// What the numbers guard compares on one side.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Quantities {
    /// Each number's value (separators dropped, ordinal suffixes dropped) and its explicit units.
    values: BTreeMap<String, BTreeSet<&'static str>>,
    /// Day, month and relative-day names, plural folded (`mondays` → `monday`).
    dates: BTreeSet<String>,
}

impl Quantities {
    pub(crate) fn of(words: &[Word<'_>]) -> Quantities {
        let mut q = Quantities::default();
        for (i, w) in words.iter().enumerate() {
            let next = words.get(i + 1).map(|n| n.lower.as_ref());
            if let Some((value, unit)) = split_number(&w.lower) {
                let units = q.values.entry(value).or_default();
                let explicit = [
                    unit.and_then(unit_name),
                    next.and_then(unit_name),
                    w.percent.then_some("%"),
                    w.currency
                        .and_then(|c| unit_name(c.encode_utf8(&mut [0; 4]))),
                ];
                units.extend(explicit.into_iter().flatten());
            } else if let Some(value) = number_word(&w.lower) {
                let units = q.values.entry(value.to_string()).or_default();
                units.extend(next.and_then(unit_name));
            }
            let day = w.lower.strip_suffix('s').unwrap_or(&w.lower);
            if is_date_word(day) || is_date_word(&w.lower) {
                q.dates.insert(day.to_string());
            }
        }
        q
    }

    /// Whether `self` and `other` can be the same question: where both hold numbers, the same
    /// numbers, none in explicitly different units; where both name a day or month, the same
    /// ones. A number or date on one side only is not a difference: questions add detail ("top 5
    /// moments" / "best moments") far more often than a missing number changes the question.
    pub(crate) fn agree(&self, other: &Quantities) -> bool {
        let both = !self.values.is_empty() && !other.values.is_empty();
        if both
            && (self.values.len() != other.values.len()
                || self
                    .values
                    .keys()
                    .zip(other.values.keys())
                    .any(|(a, b)| a != b))
        {
            return false;
        }
        let units_clash = both
            && self
                .values
                .values()
                .zip(other.values.values())
                .any(|(a, b)| !a.is_empty() && !b.is_empty() && a.is_disjoint(b));
        let dates_clash =
            !self.dates.is_empty() && !other.dates.is_empty() && self.dates != other.dates;
        !units_clash && !dates_clash
    }
}

/// `"550,000"` → (`"550000"`, None); `"7pm"` → (`"7"`, Some("pm")); `"1st"` → (`"1"`, None);
/// `"9:15"` → (`"9:15"`, None); a word with letters before its digits (`"gpt-4"`, `"a4"`) is one
/// identifier-like value. `None` when it holds no digit.
fn split_number(lower: &str) -> Option<(String, Option<&str>)> {
    let first_digit = lower.find(|c: char| c.is_ascii_digit())?;
    if first_digit > 0 {
        return Some((lower.to_string(), None));
    }
    let end = lower
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, ',' | '.' | ':')))
        .unwrap_or(lower.len());
    let mut value: String = lower[..end].chars().filter(|c| *c != ',').collect();
    if value.contains('.') {
        // "3.50" and "3.5" are the same amount.
        value = value
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
    }
    let rest = &lower[end..];
    let unit = match rest {
        "" | "st" | "nd" | "rd" | "th" | "s" => None,
        other => Some(other.trim_start_matches('-')),
    };
    Some((value, unit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relevance::words::words;

    fn agree(a: &str, b: &str) -> bool {
        Quantities::of(&words(a)).agree(&Quantities::of(&words(b)))
    }

    #[test]
    fn same_numbers_in_other_words_agree() {
        assert!(agree(
            "Calculate fifteen percent of 200",
            "What's 15% of 200?"
        ));
        assert!(agree("A table for two at seven?", "A table for 2 at 7pm?"));
        assert!(agree("Costs £1,000", "costs 1000 pounds"));
        assert!(agree("What's on this weekend?", "What is on this weekend"));
        assert!(agree(
            "Is the 9:15 train on time?",
            "Status of the 9:15 train today?"
        ));
        assert!(agree("Which one is best?", "Which is best?"));
        assert!(agree("no numbers here", "none here either"));
        assert!(agree(
            "What are the top 5 moments?",
            "What are the best moments?"
        ));
    }

    #[test]
    fn different_numbers_units_or_days_disagree() {
        assert!(!agree(
            "Is the 9:15 train on time?",
            "Is the 9:45 train on time?"
        ));
        assert!(!agree("pay after 2 years", "pay after 20 years"));
        assert!(!agree("Is 5 km far?", "Is 5 miles far?"));
        assert!(!agree("Wake me at 6am", "Wake me at 6pm"));
        assert!(!agree("Book 3pm on Friday", "Book 3pm tomorrow"));
        assert!(!agree("Open on Mondays?", "Open on Sundays?"));
        assert!(!agree("Is GPT-4 free?", "Is GPT-3 free?"));
        assert!(!agree("What's 15% of 200?", "What's 50% of 200?"));
    }

    #[test]
    fn number_forms_fold() {
        assert_eq!(split_number("550,000"), Some(("550000".into(), None)));
        assert_eq!(split_number("3.50"), Some(("3.5".into(), None)));
        assert_eq!(split_number("1st"), Some(("1".into(), None)));
        assert_eq!(split_number("7pm"), Some(("7".into(), Some("pm"))));
        assert_eq!(split_number("word"), None);
    }
}
