//! The learned pair check: a logistic regression over cheap features of the two prompts and
//! their cosine, trained on labelled paraphrase pairs (`train_pair_check` in the tools crate
//! writes `pair_check_weights.rs`). No model call: the features are lexical and cost a few
//! microseconds, on candidates only.

use super::Analysis;
use super::entities::same_name;
use super::pair_check_weights as shipped;
use super::words::{Word, stem};
use std::fmt;

/// One feature of a (query, matched prompt) pair, as the [`PairCheck`] sees it. Every feature is
/// symmetric in the two prompts. [`Feature::ALL`] are the lexical ones, in [`PairFeatures`];
/// the two vector groups are computed from the embeddings when the check has weights for them.
///
/// ```
/// use paracache::Feature;
/// assert_eq!(Feature::ALL.len(), paracache::PairFeatures::LEN);
/// assert_eq!(Feature::Cosine.as_str(), "cosine");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// Cosine similarity of the two embeddings.
    Cosine,
    /// The numbers guard's signal: different numbers, units, days or months (0 or 1).
    NumbersDiffer,
    /// A number on one side only (0 or 1).
    NumberOneSide,
    /// The negation guard's signal: negated on one side only, or opposite words (0 or 1).
    Opposed,
    /// A negation on one side only ("not", "can't", "never"; 0 or 1).
    NegatedOneSide,
    /// The entities guard's signal: each side names something the other does not (0 or 1).
    NamesConflict,
    /// Names (capitalised or code-like tokens) on one side that the other never mentions (count,
    /// at most 3).
    NamesOneSide,
    /// Jaccard overlap of all word stems.
    WordOverlap,
    /// Jaccard overlap of content-word stems (function words left out).
    ContentOverlap,
    /// Jaccard overlap of character trigrams.
    CharOverlap,
    /// Shorter prompt's word count over the longer's.
    LengthRatio,
    /// Content words one prompt adds beyond those the other has in their place (the difference
    /// of the two sides' unmatched content words, at most 4): a modifier that narrows the
    /// question ("Russians" / "Russian Americans").
    AddedWords,
    /// Content words each side has and the other lacks, the smaller count (at most 4): a swap
    /// ("car accessories" / "vehicle accessories", "Paris" / "Rome").
    SwappedWords,
    /// The question words differ (what / how / why / when / where / who / which; 0 or 1).
    QuestionWordDiffers,
    /// `ln(1 + words)` of the shorter prompt: short prompts leave less room for a difference.
    ShortLength,
    /// The embeddings' element-wise product, each dimension weighted on its own (a learned,
    /// diagonal similarity): reported as one contribution, summed over the dimensions.
    VectorProduct,
    /// The embeddings' element-wise absolute difference, weighted per dimension: reported as one
    /// contribution.
    VectorDifference,
}

impl Feature {
    /// Every lexical feature, in the order of [`PairFeatures::values`] and of the weights.
    pub const ALL: [Feature; PairFeatures::LEN] = [
        Feature::Cosine,
        Feature::NumbersDiffer,
        Feature::NumberOneSide,
        Feature::Opposed,
        Feature::NegatedOneSide,
        Feature::NamesConflict,
        Feature::NamesOneSide,
        Feature::WordOverlap,
        Feature::ContentOverlap,
        Feature::CharOverlap,
        Feature::LengthRatio,
        Feature::AddedWords,
        Feature::SwappedWords,
        Feature::QuestionWordDiffers,
        Feature::ShortLength,
    ];

    /// The snake-case name used in reports and in the weights file.
    ///
    /// ```
    /// assert_eq!(paracache::Feature::SwappedWords.as_str(), "swapped_words");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Cosine => "cosine",
            Feature::NumbersDiffer => "numbers_differ",
            Feature::NumberOneSide => "number_one_side",
            Feature::Opposed => "opposed",
            Feature::NegatedOneSide => "negated_one_side",
            Feature::NamesConflict => "names_conflict",
            Feature::NamesOneSide => "names_one_side",
            Feature::WordOverlap => "word_overlap",
            Feature::ContentOverlap => "content_overlap",
            Feature::CharOverlap => "char_overlap",
            Feature::LengthRatio => "length_ratio",
            Feature::AddedWords => "added_words",
            Feature::SwappedWords => "swapped_words",
            Feature::QuestionWordDiffers => "question_word_differs",
            Feature::ShortLength => "short_length",
            Feature::VectorProduct => "vector_product",
            Feature::VectorDifference => "vector_difference",
        }
    }

    fn index(self) -> usize {
        Feature::ALL
            .iter()
            .position(|f| *f == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Function words (as stems): left out of the content overlap and of added and swapped words.
fn is_function_word(stem: &str) -> bool {
    matches!(
        stem,
        "a" | "an"
            | "the"
            | "of"
            | "to"
            | "in"
            | "on"
            | "at"
            | "for"
            | "by"
            | "from"
            | "with"
            | "about"
            | "as"
            | "into"
            | "and"
            | "or"
            | "but"
            | "if"
            | "so"
            | "than"
            | "then"
            | "is"
            | "are"
            | "was"
            | "were"
            | "be"
            | "been"
            | "being"
            | "am"
            | "do"
            | "doe"
            | "did"
            | "done"
            | "have"
            | "ha"
            | "had"
            | "can"
            | "could"
            | "will"
            | "would"
            | "shall"
            | "should"
            | "may"
            | "might"
            | "must"
            | "i"
            | "me"
            | "my"
            | "you"
            | "your"
            | "we"
            | "our"
            | "us"
            | "he"
            | "she"
            | "it"
            | "its"
            | "they"
            | "them"
            | "their"
            | "his"
            | "her"
            | "this"
            | "that"
            | "these"
            | "those"
            | "there"
            | "what"
            | "how"
            | "why"
            | "when"
            | "where"
            | "who"
            | "whom"
            | "which"
            | "whose"
            | "some"
            | "any"
            | "all"
            | "it'"
            | "i'm"
            | "get"
            | "one"
            | "way"
            | "best"
            | "good"
            | "thing"
            | "someone"
            | "something"
            | "anyone"
            | "very"
            | "much"
            | "many"
            | "really"
            | "just"
    )
}

/// Question words, each with its own number (0: none seen).
fn question_word(lower: &str) -> u8 {
    match lower {
        "what" | "what's" | "whats" => 1,
        "how" => 2,
        "why" => 3,
        "when" => 4,
        "where" => 5,
        "who" | "whom" | "who's" => 6,
        "which" => 7,
        _ => 0,
    }
}

/// One prompt read once for the check: its guard analyses and the word and character sets the
/// overlap features need.
#[derive(Debug, Default)]
pub(crate) struct Profile {
    /// Every word's stem, hashed (FNV-1a 64), sorted and deduplicated.
    stems: Vec<u64>,
    /// Stems of content words, sorted and deduplicated.
    content: Vec<String>,
    /// Hashed character trigrams of the lower-cased letters and digits, sorted and deduplicated.
    trigrams: Vec<u32>,
    words: usize,
    question: u8,
    has_number: bool,
}

impl Profile {
    pub(crate) fn of(words: &[Word<'_>]) -> Profile {
        let mut stems: Vec<u64> = Vec::with_capacity(words.len());
        let mut content: Vec<String> = Vec::with_capacity(words.len());
        for w in words {
            let s = stem(&w.lower);
            stems.push(s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            }));
            if !is_function_word(s) {
                content.push(s.to_string());
            }
        }
        stems.sort_unstable();
        stems.dedup();
        content.sort_unstable();
        content.dedup();
        let mut trigrams = Vec::with_capacity(words.len() * 6);
        for w in words {
            // Each word padded with a space on both sides, so short words have trigrams too.
            let padded = std::iter::once(' ')
                .chain(w.lower.chars().filter(|c| c.is_alphanumeric()))
                .chain(std::iter::once(' '));
            let mut window = [' '; 3];
            for (i, c) in padded.enumerate() {
                window = [window[1], window[2], c];
                if i >= 2 {
                    trigrams.push(window.iter().fold(2_166_136_261_u32, |h, &c| {
                        (h ^ c as u32).wrapping_mul(16_777_619)
                    }));
                }
            }
        }
        trigrams.sort_unstable();
        trigrams.dedup();
        Profile {
            stems,
            content,
            trigrams,
            words: words.len(),
            question: words
                .iter()
                .map(|w| question_word(&w.lower))
                .find(|&q| q != 0)
                .unwrap_or(0),
            has_number: words
                .iter()
                .any(|w| w.text.bytes().any(|b| b.is_ascii_digit())),
        }
    }
}

/// Jaccard overlap of two sorted, deduplicated lists (1 when both are empty).
fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f32 {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        1.0
    } else {
        both as f32 / union as f32
    }
}

/// Content words of `a` with no word of `b` the same or nearly (one typo, a shared prefix of
/// four letters: `favorite` / `favourite`, `russian` / `russia`).
fn unmatched(a: &[String], b: &[String]) -> usize {
    a.iter()
        .filter(|x| !b.iter().any(|y| same_name(x, y)))
        .count()
}

/// The features of one (query, matched prompt) pair, in the order of [`Feature::ALL`]. The
/// check and its trainer compute them with this same code.
///
/// ```
/// use paracache::{Feature, PairFeatures};
/// let f = PairFeatures::of("How do I enable dark mode?", "How do I disable dark mode?", 0.93);
/// assert_eq!(f.get(Feature::Cosine), 0.93);
/// assert_eq!(f.get(Feature::Opposed), 1.0);
/// assert_eq!(f.get(Feature::NumbersDiffer), 0.0);
/// assert!(f.get(Feature::WordOverlap) < 1.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairFeatures {
    values: [f32; PairFeatures::LEN],
}

impl PairFeatures {
    /// How many features there are.
    pub const LEN: usize = 15;

    /// The features of `query` and `matched` (normalized or not; case matters for names) whose
    /// embeddings have cosine `similarity`.
    pub fn of(query: &str, matched: &str, similarity: f32) -> PairFeatures {
        Self::of_analyses(
            &Analysis::for_check(query),
            &Analysis::for_check(matched),
            similarity,
        )
    }

    pub(crate) fn of_analyses(a: &Analysis, b: &Analysis, similarity: f32) -> PairFeatures {
        let empty = Profile::default();
        let pa = a.profile.as_ref().unwrap_or(&empty);
        let pb = b.profile.as_ref().unwrap_or(&empty);
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let (only_a, only_b) = (
            unmatched(&pa.content, &pb.content),
            unmatched(&pb.content, &pa.content),
        );
        let names_one_side = a.names.missing_from(&b.names) + b.names.missing_from(&a.names);
        let mut v = [0.0; Self::LEN];
        let mut set = |f: Feature, x: f32| v[f.index()] = x;
        set(Feature::Cosine, similarity);
        set(
            Feature::NumbersDiffer,
            flag(!a.quantities.agree(&b.quantities)),
        );
        set(Feature::NumberOneSide, flag(pa.has_number != pb.has_number));
        set(Feature::Opposed, flag(a.polarity.opposes(&b.polarity)));
        set(
            Feature::NegatedOneSide,
            flag(a.polarity.negated() != b.polarity.negated()),
        );
        set(Feature::NamesConflict, flag(a.names.conflict(&b.names)));
        set(Feature::NamesOneSide, names_one_side.min(3) as f32);
        set(Feature::WordOverlap, jaccard(&pa.stems, &pb.stems));
        set(Feature::ContentOverlap, jaccard(&pa.content, &pb.content));
        set(Feature::CharOverlap, jaccard(&pa.trigrams, &pb.trigrams));
        let (lo, hi) = (pa.words.min(pb.words), pa.words.max(pb.words));
        set(
            Feature::LengthRatio,
            if hi == 0 { 1.0 } else { lo as f32 / hi as f32 },
        );
        set(Feature::AddedWords, only_a.abs_diff(only_b).min(4) as f32);
        set(Feature::SwappedWords, only_a.min(only_b).min(4) as f32);
        set(
            Feature::QuestionWordDiffers,
            flag(pa.question != 0 && pb.question != 0 && pa.question != pb.question),
        );
        set(Feature::ShortLength, (1.0 + lo as f32).ln());
        PairFeatures { values: v }
    }

    /// One feature's value.
    ///
    /// ```
    /// use paracache::{Feature, PairFeatures};
    /// assert_eq!(PairFeatures::of("a b", "a b", 1.0).get(Feature::WordOverlap), 1.0);
    /// ```
    pub fn get(&self, feature: Feature) -> f32 {
        self.values[feature.index()]
    }

    /// Every value, in the order of [`Feature::ALL`].
    ///
    /// ```
    /// let f = paracache::PairFeatures::of("Is it safe?", "Is it not safe?", 0.95);
    /// assert_eq!(f.values()[0], 0.95);
    /// ```
    pub fn values(&self) -> &[f32; PairFeatures::LEN] {
        &self.values
    }
}

/// A logistic regression over [`PairFeatures`] and, optionally, the two embeddings (their
/// element-wise product and absolute difference, each dimension weighted), and the probability at
/// or above which it lets a candidate be served.
///
/// [`PairCheck::default`] is the model shipped in the crate, trained on the 23 295 labelled Quora
/// question pairs of cosine at least 0.80 (of the 55 009 of the `dev-large` split) with
/// all-MiniLM-L6-v2 vectors (384 dimensions), with
/// its threshold set by [`Calibration::fit_check`](crate::Calibration::fit_check) at the default
/// cache threshold 0.90. It is specific to that model: a cache of another dimension does not use
/// it by default, and for another model of the same dimension train your own
/// (`train_pair_check` in the tools crate) or switch it off. [`PairCheck::new`] makes any other
/// model, [`PairCheck::with_threshold`] moves the threshold. The check runs after the guards pass
/// a candidate.
///
/// ```
/// use paracache::{Feature, PairCheck, PairFeatures};
/// // A lexical-only check: cosine, minus a penalty per swapped content word.
/// let mut w = [0.0; PairFeatures::LEN];
/// w[0] = 40.0;
/// w[12] = -4.0; // Feature::SwappedWords
/// let check = PairCheck::new(w, Vec::new(), -36.0, [0.0; PairFeatures::LEN], Vec::new(), 0.5);
/// let (same, swap) = ([1.0, 0.0], [0.95, 0.312]); // cosine 0.95
/// assert!(check.check("best car accessories", &same, "top car accessories", &swap).is_ok());
/// let no = check.check("best car accessories", &same, "best vehicle accessories", &swap).unwrap_err();
/// assert_eq!(no.reasons[0].0, Feature::SwappedWords);
/// println!("{no}"); // pair check 0.269 < 0.500: swapped_words -4.00
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PairCheck {
    weights: [f32; PairFeatures::LEN],
    /// Weights of the vector product, then of the absolute difference (2 × dimension), or empty.
    vector_weights: Vec<f32>,
    bias: f32,
    /// Each feature's mean on the training pairs: a contribution is measured from it.
    means: [f32; PairFeatures::LEN],
    vector_means: Vec<f32>,
    threshold: f32,
}

impl Default for PairCheck {
    /// The shipped model and threshold (`src/relevance/pair_check_weights.rs`).
    fn default() -> Self {
        PairCheck {
            weights: shipped::WEIGHTS,
            vector_weights: shipped::VECTOR_WEIGHTS.to_vec(),
            bias: shipped::BIAS,
            means: shipped::MEANS,
            vector_means: shipped::VECTOR_MEANS.to_vec(),
            threshold: shipped::THRESHOLD,
        }
    }
}

/// Why the [`PairCheck`] turned a candidate away: its score, the threshold, and the features that
/// pulled the score down most (each with its contribution to the log-odds, measured from the
/// training mean; most negative first).
///
/// ```
/// use paracache::{Feature, PairCheck, PairFeatures};
/// let mut w = [0.0; PairFeatures::LEN];
/// w[3] = -5.0; // Feature::Opposed
/// let check = PairCheck::new(w, Vec::new(), 2.0, [0.0; PairFeatures::LEN], Vec::new(), 0.5);
/// let r = check.check("Is it safe?", &[1.0], "Is it not safe?", &[1.0]).unwrap_err();
/// assert!(r.score < r.threshold);
/// assert_eq!(r.reasons, vec![(Feature::Opposed, -5.0)]);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CheckRejection {
    /// The check's probability that the two prompts mean the same.
    pub score: f32,
    /// The probability the check needed.
    pub threshold: f32,
    /// Up to three features that lowered the score most, with their contribution (negative).
    pub reasons: Vec<(Feature, f32)>,
}

impl fmt::Display for CheckRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pair check {:.3} < {:.3}", self.score, self.threshold)?;
        for (i, (feature, c)) in self.reasons.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{feature} {c:+.2}")?;
        }
        Ok(())
    }
}

/// Dot product of two slices (the cosine of two unit vectors).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl PairCheck {
    /// A check with these lexical weights (in the order of [`Feature::ALL`]), vector weights
    /// (the product's `d`, then the absolute difference's `d`, for `d`-dimensional embeddings; or
    /// empty for a lexical-only check), bias, training means of every feature (used only to
    /// explain a rejection; `vector_means` as long as `vector_weights`, or empty) and probability
    /// threshold. `train_pair_check` prints them.
    ///
    /// ```
    /// use paracache::{PairCheck, PairFeatures};
    /// let mut w = [0.0; PairFeatures::LEN];
    /// w[0] = 40.0; // cosine alone
    /// let c = PairCheck::new(w, Vec::new(), -36.0, [0.0; PairFeatures::LEN], Vec::new(), 0.5);
    /// assert!(c.check("a", &[1.0, 0.0], "b", &[0.95, 0.312]).is_ok());
    /// assert!(c.check("a", &[1.0, 0.0], "b", &[0.85, 0.527]).is_err());
    /// assert_eq!(c.dimension(), None);
    /// ```
    pub fn new(
        weights: [f32; PairFeatures::LEN],
        vector_weights: Vec<f32>,
        bias: f32,
        means: [f32; PairFeatures::LEN],
        vector_means: Vec<f32>,
        threshold: f32,
    ) -> PairCheck {
        let vector_means = if vector_means.len() == vector_weights.len() {
            vector_means
        } else {
            vec![0.0; vector_weights.len()]
        };
        PairCheck {
            weights,
            vector_weights,
            bias,
            means,
            vector_means,
            threshold,
        }
    }

    /// The same model with another probability threshold (0 accepts everything).
    ///
    /// ```
    /// let c = paracache::PairCheck::default().with_threshold(0.0);
    /// assert_eq!(c.threshold(), 0.0);
    /// ```
    pub fn with_threshold(mut self, threshold: f32) -> PairCheck {
        self.threshold = threshold;
        self
    }

    /// The probability at or above which a candidate is served.
    ///
    /// ```
    /// assert!(paracache::PairCheck::default().threshold() > 0.0);
    /// ```
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The embedding dimension the vector weights are for (`None` for a lexical-only check).
    ///
    /// ```
    /// assert_eq!(paracache::PairCheck::default().dimension(), Some(384));
    /// ```
    pub fn dimension(&self) -> Option<usize> {
        (!self.vector_weights.is_empty()).then_some(self.vector_weights.len() / 2)
    }

    /// The lexical weights, in the order of [`Feature::ALL`], the vector weights and the bias.
    ///
    /// ```
    /// let check = paracache::PairCheck::default();
    /// let (w, v, _bias) = check.weights();
    /// assert_eq!((w.len(), v.len()), (paracache::PairFeatures::LEN, 768));
    /// ```
    pub fn weights(&self) -> (&[f32; PairFeatures::LEN], &[f32], f32) {
        (&self.weights, &self.vector_weights, self.bias)
    }

    /// The vector part's two contributions (product, difference) to the log-odds, measured from
    /// the training means; zero when the check has no vector weights or the vectors do not fit.
    fn vector_terms(&self, a: &[f32], b: &[f32], from_mean: bool) -> (f32, f32) {
        let d = self.vector_weights.len() / 2;
        if d == 0 || a.len() != d || b.len() != d {
            return (0.0, 0.0);
        }
        let (wp, wd) = self.vector_weights.split_at(d);
        let (mp, md) = self.vector_means.split_at(d);
        let (mut product, mut difference) = (0.0, 0.0);
        for i in 0..d {
            let (x, y) = (a[i], b[i]);
            product += wp[i] * (x * y - if from_mean { mp[i] } else { 0.0 });
            difference += wd[i] * ((x - y).abs() - if from_mean { md[i] } else { 0.0 });
        }
        (product, difference)
    }

    /// The probability that two prompts with these features and unit-length embeddings mean the
    /// same.
    ///
    /// ```
    /// use paracache::{PairCheck, PairFeatures};
    /// let mut w = [0.0; PairFeatures::LEN];
    /// w[7] = 4.0; // Feature::WordOverlap
    /// let c = PairCheck::new(w, Vec::new(), -2.0, [0.0; PairFeatures::LEN], Vec::new(), 0.5);
    /// let f = PairFeatures::of("How do I learn Rust?", "How do I learn Rust?", 1.0);
    /// assert!((c.score(&f, &[1.0], &[1.0]) - 0.8808).abs() < 1e-4);
    /// ```
    pub fn score(
        &self,
        features: &PairFeatures,
        query_vector: &[f32],
        matched_vector: &[f32],
    ) -> f32 {
        let (p, d) = self.vector_terms(query_vector, matched_vector, false);
        let z = self.bias + p + d + dot(&self.weights, &features.values);
        1.0 / (1.0 + (-z).exp())
    }

    /// Check a query against a matched prompt, each with its unit-length embedding (as the cache
    /// holds them; their dot product is the cosine): `Err` says why the pair is turned away.
    ///
    /// ```
    /// use paracache::PairCheck;
    /// let c = PairCheck::default().with_threshold(1.0); // nothing is certain enough
    /// assert!(c.check("a", &[1.0], "a", &[1.0]).is_err());
    /// ```
    pub fn check(
        &self,
        query: &str,
        query_vector: &[f32],
        matched: &str,
        matched_vector: &[f32],
    ) -> Result<(), CheckRejection> {
        let features = PairFeatures::of(query, matched, dot(query_vector, matched_vector));
        self.check_features(&features, query_vector, matched_vector)
    }

    /// [`check`](Self::check) on lexical features already computed.
    ///
    /// ```
    /// use paracache::{PairCheck, PairFeatures};
    /// let f = PairFeatures::of("Is 5 km far?", "Is 5 miles far?", 0.95);
    /// assert!(PairCheck::default().with_threshold(0.0).check_features(&f, &[], &[]).is_ok());
    /// ```
    pub fn check_features(
        &self,
        features: &PairFeatures,
        query_vector: &[f32],
        matched_vector: &[f32],
    ) -> Result<(), CheckRejection> {
        let score = self.score(features, query_vector, matched_vector);
        if score >= self.threshold {
            return Ok(());
        }
        let (p, d) = self.vector_terms(query_vector, matched_vector, true);
        let mut contributions: Vec<(Feature, f32)> = Feature::ALL
            .iter()
            .enumerate()
            .map(|(i, &f)| (f, self.weights[i] * (features.values[i] - self.means[i])))
            .chain([(Feature::VectorProduct, p), (Feature::VectorDifference, d)])
            .filter(|(_, c)| *c < 0.0)
            .collect();
        contributions.sort_by(|a, b| a.1.total_cmp(&b.1));
        contributions.truncate(3);
        Err(CheckRejection {
            score,
            threshold: self.threshold,
            reasons: contributions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(a: &str, b: &str) -> PairFeatures {
        PairFeatures::of(a, b, 0.9)
    }

    #[test]
    fn features_are_symmetric_and_an_identical_pair_shows_no_difference() {
        let pairs = [
            (
                "What do Russians think about Putin?",
                "What do Russian Americans think about Putin?",
            ),
            (
                "Best vehicle accessories?",
                "Best car accessories for 2020?",
            ),
            (
                "How do I enable dark mode?",
                "why can't I disable Dark Mode",
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(f(a, b), f(b, a), "{a} / {b}");
            let same = f(a, a);
            for feature in [
                Feature::NumbersDiffer,
                Feature::NumberOneSide,
                Feature::Opposed,
                Feature::NegatedOneSide,
                Feature::NamesConflict,
                Feature::NamesOneSide,
                Feature::AddedWords,
                Feature::SwappedWords,
                Feature::QuestionWordDiffers,
            ] {
                assert_eq!(same.get(feature), 0.0, "{feature} on {a}");
            }
            for feature in [
                Feature::WordOverlap,
                Feature::ContentOverlap,
                Feature::CharOverlap,
                Feature::LengthRatio,
            ] {
                assert_eq!(same.get(feature), 1.0, "{feature} on {a}");
            }
        }
    }

    #[test]
    fn each_feature_reads_its_difference() {
        let x = f(
            "What do Russians think about Putin?",
            "What do Russian Americans think about Putin?",
        );
        assert_eq!(x.get(Feature::AddedWords), 1.0);
        assert_eq!(x.get(Feature::SwappedWords), 0.0);
        assert_eq!(x.get(Feature::NamesOneSide), 1.0);
        let x = f("Best vehicle accessories?", "Best car accessories?");
        assert_eq!(x.get(Feature::SwappedWords), 1.0);
        assert_eq!(x.get(Feature::AddedWords), 0.0);
        assert_eq!(x.get(Feature::ContentOverlap), 1.0 / 3.0);
        let x = f("Is it safe?", "Is it not safe?");
        assert_eq!(
            (x.get(Feature::NegatedOneSide), x.get(Feature::Opposed)),
            (1.0, 1.0)
        );
        let x = f("Top 5 films", "Top films");
        assert_eq!(
            (x.get(Feature::NumberOneSide), x.get(Feature::NumbersDiffer)),
            (1.0, 0.0)
        );
        let x = f("pay after 2 years", "pay after 20 years");
        assert_eq!(x.get(Feature::NumbersDiffer), 1.0);
        let x = f("Why is the sky blue?", "What makes the sky blue?");
        assert_eq!(x.get(Feature::QuestionWordDiffers), 1.0);
        let x = f("CEO of Apple", "CEO of Microsoft");
        assert_eq!(
            (x.get(Feature::NamesConflict), x.get(Feature::NamesOneSide)),
            (1.0, 2.0)
        );
        let x = f(
            "What is your favorite subject?",
            "What is your favourite subject?",
        );
        assert_eq!(
            x.get(Feature::SwappedWords),
            0.0,
            "one typo apart is the same word"
        );
        assert_eq!(
            f("one two three four", "one two").get(Feature::LengthRatio),
            0.5
        );
        assert!((f("a b", "c").get(Feature::ShortLength) - 2f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn the_score_follows_the_weights_and_a_rejection_names_what_pulled_it_down() {
        let mut w = [0.0; PairFeatures::LEN];
        w[Feature::Cosine.index()] = 10.0;
        w[Feature::SwappedWords.index()] = -3.0;
        let check = PairCheck::new(
            w,
            Vec::new(),
            -9.0,
            [0.0; PairFeatures::LEN],
            Vec::new(),
            0.5,
        );
        let same = PairFeatures::of("vehicle accessories", "vehicle accessories", 0.95);
        assert!((check.score(&same, &[], &[]) - 1.0 / (1.0 + (-0.5f32).exp())).abs() < 1e-6);
        assert!(check.check_features(&same, &[], &[]).is_ok());
        let swap = PairFeatures::of("vehicle accessories", "car accessories", 0.95);
        let r = check.check_features(&swap, &[], &[]).unwrap_err();
        assert_eq!(r.reasons, vec![(Feature::SwappedWords, -3.0)]);
        assert!(r.to_string().contains("swapped_words -3.00"), "{r}");
        assert!(
            check
                .clone()
                .with_threshold(0.0)
                .check_features(&swap, &[], &[])
                .is_ok()
        );
    }

    #[test]
    fn vector_weights_score_the_product_and_the_difference_per_dimension() {
        let w = [0.0; PairFeatures::LEN];
        // Dimension 2: product weights [2, 0], difference weights [0, -10].
        let check = PairCheck::new(w, vec![2.0, 0.0, 0.0, -10.0], 0.0, w, vec![0.0; 4], 0.5);
        assert_eq!(check.dimension(), Some(2));
        let f = PairFeatures::of("a", "a", 1.0);
        let z = |a: &[f32], b: &[f32]| {
            let p = check.score(&f, a, b);
            (p / (1.0 - p)).ln()
        };
        assert!((z(&[1.0, 0.0], &[1.0, 0.0]) - 2.0).abs() < 1e-5);
        assert!((z(&[0.6, 0.8], &[0.6, -0.8]) - (2.0 * 0.36 - 16.0)).abs() < 1e-4);
        let r = check
            .check_features(&f, &[0.6, 0.8], &[0.6, -0.8])
            .unwrap_err();
        assert_eq!(r.reasons[0].0, Feature::VectorDifference);
        // Vectors of another dimension are not read.
        assert_eq!(z(&[1.0], &[1.0]), 0.0);
    }
}
