//! What decides whether a semantic candidate is served: cheap lexical guards on the two prompts,
//! then, in a band of uncertain similarity, the user's verifier.

mod entities;
mod negation;
mod numbers;
mod pair_check;
mod pair_check_weights;
mod verifier;
mod words;

pub use pair_check::{CheckRejection, Feature, PairCheck, PairFeatures};
pub use verifier::Verifier;
pub(crate) use verifier::VerifyBand;

use entities::Names;
use negation::Polarity;
use numbers::Quantities;
use pair_check::Profile;
use std::fmt;

/// Which guard turned a semantic candidate away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guard {
    /// The prompts hold different numbers, amounts in different units, or different days or
    /// months ("after 2 years" / "after 20 years", "3pm Friday" / "3pm tomorrow").
    Numbers,
    /// One prompt is negated and the other is not, or they use opposite words
    /// ("enable" / "disable", "included" / "excluded").
    Negation,
    /// Each prompt names something the other does not mention: a capitalised name or a code
    /// identifier ("Apple" / "Microsoft", `HashMap` / `BTreeMap`).
    Entities,
}

impl Guard {
    /// The lower-case name used in reports (`numbers`, `negation`, `entities`).
    ///
    /// ```
    /// assert_eq!(paracache::Guard::Negation.as_str(), "negation");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Numbers => "numbers",
            Guard::Negation => "negation",
            Guard::Entities => "entities",
        }
    }
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What turned a semantic candidate away: a guard, the [`PairCheck`] (with the features that
/// weighed most) or the [`Verifier`]. A [`Miss`](crate::Miss) carries the reason for the most
/// similar candidate it turned away ([`Miss::rejected_by`](crate::Miss::rejected_by)).
///
/// ```
/// use paracache::{Guard, Rejection};
/// assert_eq!(Rejection::Guard(Guard::Negation).to_string(), "guard negation");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Rejection {
    /// A guard's rule.
    Guard(Guard),
    /// The learned pair check, with its score and the features that pulled it down.
    PairCheck(CheckRejection),
    /// The user's verifier.
    Verifier,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Guard(g) => write!(f, "guard {g}"),
            Rejection::PairCheck(r) => r.fmt(f),
            Rejection::Verifier => f.write_str("verifier"),
        }
    }
}

/// Checks on the text of the query and of the matched prompt that a semantic candidate must pass
/// before it is served. They need no model call (a few microseconds, on candidates only) and
/// catch the false hits raw cosine lets through: sentence embeddings score "How do I enable
/// dark mode?" and "How do I disable dark mode?" as near-identical.
///
/// A candidate a guard turns away is skipped and the next one is considered, up to 16 per lookup;
/// after that the lookup is a miss. Each guard is switchable. They are lexical, English-centric
/// rules: they turn away some true paraphrases too ("in America" / "in the US" differ in names),
/// which is why each one's cost and benefit is measured in EVALUATION.md.
///
/// ```
/// use paracache::{Guard, Guards};
/// let g = Guards::default();
/// assert_eq!(g.check("How do I enable dark mode?", "How do I disable dark mode?"), Err(Guard::Negation));
/// assert_eq!(g.check("Is the 9:15 train late?", "Is the 9:45 train late?"), Err(Guard::Numbers));
/// assert_eq!(g.check("Who is the CEO of Apple?", "Who is the CEO of Microsoft?"), Err(Guard::Entities));
/// assert_eq!(g.check("Who is the CEO of Microsoft?", "Who runs Microsoft?"), Ok(()));
/// assert_eq!(Guards::none().check("enable it", "disable it"), Ok(()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guards {
    numbers: bool,
    negation: bool,
    entities: bool,
}

impl Default for Guards {
    /// All three guards on: each raises precision on the dev replay at the recommended thresholds
    /// (EVALUATION.md).
    fn default() -> Self {
        Guards::all()
    }
}

/// `all`, `none`, or a comma-separated list of `numbers`, `negation` and `entities`, as
/// command-line flags spell them.
///
/// ```
/// use paracache::Guards;
/// assert_eq!("numbers,entities".parse::<Guards>().unwrap(), Guards::none().numbers(true).entities(true));
/// assert_eq!("all".parse::<Guards>().unwrap(), Guards::all());
/// assert!("numbers,colour".parse::<Guards>().is_err());
/// ```
impl std::str::FromStr for Guards {
    type Err = String;

    fn from_str(spec: &str) -> Result<Guards, String> {
        match spec {
            "all" => Ok(Guards::all()),
            "none" => Ok(Guards::none()),
            list => list
                .split(',')
                .try_fold(Guards::none(), |g, name| match name {
                    "numbers" => Ok(g.numbers(true)),
                    "negation" => Ok(g.negation(true)),
                    "entities" => Ok(g.entities(true)),
                    other => Err(format!("unknown guard {other}")),
                }),
        }
    }
}

impl Guards {
    /// No guard: a candidate at or above the threshold is served on similarity alone.
    ///
    /// ```
    /// assert!(paracache::Guards::none().is_none());
    /// ```
    pub const fn none() -> Self {
        Guards {
            numbers: false,
            negation: false,
            entities: false,
        }
    }

    /// Every guard.
    ///
    /// ```
    /// assert_eq!(paracache::Guards::all(), paracache::Guards::none().numbers(true).negation(true).entities(true));
    /// ```
    pub const fn all() -> Self {
        Guards {
            numbers: true,
            negation: true,
            entities: true,
        }
    }

    /// Switch the [`Guard::Numbers`] guard.
    ///
    /// ```
    /// let g = paracache::Guards::none().numbers(true);
    /// assert!(g.check("2 years", "20 years").is_err());
    /// ```
    pub const fn numbers(mut self, on: bool) -> Self {
        self.numbers = on;
        self
    }

    /// Switch the [`Guard::Negation`] guard.
    ///
    /// ```
    /// let g = paracache::Guards::none().negation(true);
    /// assert!(g.check("is it safe", "is it not safe").is_err());
    /// ```
    pub const fn negation(mut self, on: bool) -> Self {
        self.negation = on;
        self
    }

    /// Switch the [`Guard::Entities`] guard.
    ///
    /// ```
    /// let g = paracache::Guards::none().entities(true);
    /// assert!(g.check("Weather in Paris?", "Weather in Rome?").is_err());
    /// ```
    pub const fn entities(mut self, on: bool) -> Self {
        self.entities = on;
        self
    }

    /// Whether every guard is off.
    ///
    /// ```
    /// assert!(!paracache::Guards::default().is_none());
    /// ```
    pub const fn is_none(&self) -> bool {
        !(self.numbers || self.negation || self.entities)
    }

    /// Check a query against a matched prompt: `Err` names the first guard that turns it away.
    /// Symmetric in its two arguments.
    ///
    /// ```
    /// use paracache::{Guard, Guards};
    /// assert_eq!(Guards::all().check("What's 15% of 200?", "Calculate fifteen percent of 200"), Ok(()));
    /// assert_eq!(Guards::all().check("What's 15% of 200?", "What's 50% of 200?"), Err(Guard::Numbers));
    /// ```
    pub fn check(&self, query: &str, matched: &str) -> Result<(), Guard> {
        if self.is_none() {
            return Ok(());
        }
        self.check_analysed(&Analysis::of(query, *self), &Analysis::of(matched, *self))
    }

    pub(crate) fn check_analysed(&self, a: &Analysis, b: &Analysis) -> Result<(), Guard> {
        if self.numbers && !a.quantities.agree(&b.quantities) {
            return Err(Guard::Numbers);
        }
        if self.negation && a.polarity.opposes(&b.polarity) {
            return Err(Guard::Negation);
        }
        if self.entities && a.names.conflict(&b.names) {
            return Err(Guard::Entities);
        }
        Ok(())
    }
}

/// One prompt read once for every enabled guard (and, for the [`PairCheck`], for all three guards
/// and its word and character sets), so a query checked against several candidates is read once.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    pub(crate) quantities: Quantities,
    pub(crate) polarity: Polarity,
    pub(crate) names: Names,
    pub(crate) profile: Option<Profile>,
}

impl Analysis {
    pub(crate) fn of(prompt: &str, guards: Guards) -> Analysis {
        Self::read(prompt, guards, false)
    }

    /// Everything the pair check reads: all three guards' analyses and the profile.
    pub(crate) fn for_check(prompt: &str) -> Analysis {
        Self::read(prompt, Guards::all(), true)
    }

    /// [`for_check`](Self::for_check) when `check`, else [`of`](Self::of).
    pub(crate) fn read(prompt: &str, guards: Guards, check: bool) -> Analysis {
        let guards = if check { Guards::all() } else { guards };
        let w = words::words(prompt);
        Analysis {
            quantities: if guards.numbers {
                Quantities::of(&w)
            } else {
                Quantities::default()
            },
            polarity: if guards.negation {
                Polarity::of(&w)
            } else {
                Polarity::default()
            },
            names: if guards.entities {
                Names::of(&w)
            } else {
                Names::default()
            },
            profile: check.then(|| Profile::of(&w)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text, however odd: no panic, a prompt always agrees with itself, and the answer
        /// does not depend on which side is the query.
        #[test]
        fn total_reflexive_and_symmetric(a in "\\PC{0,40}", b in "[a-zA-Z0-9 .,:'%$£?!_-]{0,40}") {
            let g = Guards::all();
            prop_assert_eq!(g.check(&a, &a), Ok(()));
            prop_assert_eq!(g.check(&b, &b), Ok(()));
            prop_assert_eq!(g.check(&a, &b), g.check(&b, &a));
        }
    }

    #[test]
    fn each_switch_controls_only_its_guard() {
        let trap = [
            ("pay after 2 years", "pay after 20 years", Guard::Numbers),
            ("how to enable it", "how to disable it", Guard::Negation),
            ("CEO of Apple", "CEO of Microsoft", Guard::Entities),
        ];
        for (a, b, guard) in trap {
            assert_eq!(Guards::all().check(a, b), Err(guard));
            assert_eq!(Guards::all().check(b, a), Err(guard), "not symmetric");
            let off = match guard {
                Guard::Numbers => Guards::all().numbers(false),
                Guard::Negation => Guards::all().negation(false),
                Guard::Entities => Guards::all().entities(false),
            };
            assert_eq!(off.check(a, b), Ok(()), "{guard} still on");
        }
    }
}
