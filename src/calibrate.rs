//! Choosing a similarity threshold from evidence: labelled pairs (or a replay with clusters) in,
//! the precision/recall curve and the threshold that meets a target precision out.

use crate::vector::distance::similarity;

/// Why a calibration could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// No pairs were given.
    #[error("no labelled pairs")]
    NoPairs,
    /// No pair is labelled as the same meaning, so no threshold can serve a correct hit.
    #[error("no pair is labelled as a match")]
    NoPositives,
    /// A target precision outside `(0, 1]`.
    #[error("target precision {0} is outside (0, 1]")]
    BadTarget(f64),
    /// A confidence quantile that is negative or not finite.
    #[error("confidence quantile {0} must be finite and non-negative")]
    BadConfidence(f64),
    /// A pair's similarity is NaN.
    #[error("pair {0} has a NaN similarity")]
    NanSimilarity(usize),
    /// The replay's vectors and clusters differ in number, or its vectors in length.
    #[error("replay is malformed: {0}")]
    BadReplay(String),
}

/// One point of the curve: what serving every pair at or above `threshold` gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Serve a pair when its similarity is at least this.
    pub threshold: f32,
    /// Pairs served.
    pub served: usize,
    /// Served pairs that are labelled as the same meaning.
    pub correct: usize,
    /// `correct / served` (1 when nothing is served).
    pub precision: f64,
    /// A lower confidence bound on the precision (Wilson score interval at the calibration's
    /// confidence): what the precision can be trusted to be on prompts not in the sample.
    pub precision_lower: f64,
    /// `correct /` all pairs labelled as the same meaning.
    pub recall: f64,
}

/// A threshold chosen for a target precision, with the curve it was read from.
///
/// The rule: the **lowest** threshold at which the precision of the pairs served is, with 95%
/// confidence (a one-sided Wilson bound), at least the target, so recall is as high as the target
/// allows while the precision holds on prompts the sample did not contain. A threshold that
/// merely reaches the target on the sample is not enough: near the top of the curve it rests on
/// few pairs, and on new data it falls short by the sampling error (several points for a hundred
/// pairs). When no threshold qualifies, [`threshold`](Self::threshold) is `None` and
/// [`best`](Self::best) says how close the data gets: a clear answer instead of a threshold that
/// would not deliver. [`fit_with_confidence`](Self::fit_with_confidence) sets the confidence.
///
/// A pair whose similarity is `-inf` is one that is never served (e.g. a guard turned it away);
/// it still counts towards recall.
///
/// ```
/// use paracache::Calibration;
/// // (similarity, same meaning?)
/// let pairs = [(0.97, true), (0.95, true), (0.93, false), (0.91, true), (0.85, false), (0.80, true)];
/// // Trusting these six pairs as they are (confidence 0):
/// let c = Calibration::fit_with_confidence(&pairs, 0.75, 0.0).unwrap();
/// assert_eq!(c.threshold(), Some(0.91));
/// assert_eq!((c.chosen().unwrap().precision, c.chosen().unwrap().recall), (0.75, 0.75));
/// // Six pairs cannot show 75% precision with 95% confidence:
/// assert_eq!(Calibration::fit(&pairs, 0.75).unwrap().threshold(), None);
/// assert_eq!(Calibration::fit(&[(0.9, false)], 0.5).unwrap_err(), paracache::CalibrationError::NoPositives);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    target: f64,
    curve: Vec<CurvePoint>,
    chosen: Option<usize>,
    best: usize,
}

impl Calibration {
    /// Fit a threshold to `(similarity, same meaning)` pairs for `target_precision` in `(0, 1]`,
    /// at 95% one-sided confidence.
    ///
    /// ```
    /// let mut pairs = vec![(0.5, false); 10];
    /// pairs.extend([(0.9, true); 40]);
    /// let c = paracache::Calibration::fit(&pairs, 0.9).unwrap();
    /// assert_eq!(c.threshold(), Some(0.9));
    /// // Two pairs are too few to trust any precision at 0.9.
    /// assert_eq!(paracache::Calibration::fit(&[(0.9, true), (0.5, false)], 0.9).unwrap().threshold(), None);
    /// ```
    pub fn fit(pairs: &[(f32, bool)], target_precision: f64) -> Result<Self, CalibrationError> {
        Self::fit_with_confidence(pairs, target_precision, Z_95_ONE_SIDED)
    }

    /// [`fit`](Self::fit) with the confidence given as a normal quantile `z` (1.645: 95%
    /// one-sided; 0: trust the sample's precision as it is).
    ///
    /// ```
    /// let c = paracache::Calibration::fit_with_confidence(&[(0.9, true), (0.5, false)], 0.9, 0.0).unwrap();
    /// assert_eq!(c.threshold(), Some(0.9));
    /// ```
    pub fn fit_with_confidence(
        pairs: &[(f32, bool)],
        target_precision: f64,
        z: f64,
    ) -> Result<Self, CalibrationError> {
        if !(z >= 0.0 && z.is_finite()) {
            return Err(CalibrationError::BadConfidence(z));
        }
        if !(target_precision > 0.0 && target_precision <= 1.0) {
            return Err(CalibrationError::BadTarget(target_precision));
        }
        if pairs.is_empty() {
            return Err(CalibrationError::NoPairs);
        }
        if let Some(i) = pairs.iter().position(|(s, _)| s.is_nan()) {
            return Err(CalibrationError::NanSimilarity(i));
        }
        let positives = pairs.iter().filter(|(_, same)| *same).count();
        if positives == 0 {
            return Err(CalibrationError::NoPositives);
        }
        let mut sorted: Vec<(f32, bool)> = pairs
            .iter()
            .copied()
            .filter(|(s, _)| *s > f32::NEG_INFINITY)
            .collect();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
        // One point per distinct similarity, from the highest down: serving everything at or
        // above it.
        let mut curve = Vec::new();
        let (mut served, mut correct) = (0, 0);
        for (i, &(s, same)) in sorted.iter().enumerate() {
            served += 1;
            correct += usize::from(same);
            if sorted.get(i + 1).is_some_and(|next| next.0 == s) {
                continue;
            }
            curve.push(point(s, served, correct, positives, z));
        }
        let chosen = curve
            .iter()
            .rposition(|p| p.precision_lower >= target_precision);
        let best = (0..curve.len())
            .max_by(|&a, &b| {
                let (pa, pb) = (&curve[a], &curve[b]);
                pa.precision_lower
                    .total_cmp(&pb.precision_lower)
                    .then(pa.recall.total_cmp(&pb.recall))
            })
            .unwrap_or(0);
        if curve.is_empty() {
            // Every pair was turned away: nothing is served at any threshold.
            curve.push(point(1.0, 0, 0, positives, z));
        }
        Ok(Calibration {
            target: target_precision,
            curve,
            chosen,
            best,
        })
    }

    /// Fit the [`PairCheck`](crate::PairCheck)'s probability threshold for `target_precision`:
    /// `pairs` are `(similarity, check score, same meaning)`, and only the candidates the check
    /// would see, those at or above `at_similarity` (the cache's threshold), take part. The
    /// curve and [`threshold`](Self::threshold) are then over the check's score: serve a
    /// candidate when its score is at least the threshold. Same rule and confidence as
    /// [`fit`](Self::fit).
    ///
    /// ```
    /// use paracache::Calibration;
    /// let mut pairs = vec![(0.95, 0.2, false); 10];
    /// pairs.extend([(0.95, 0.8, true); 40]);
    /// pairs.push((0.5, 0.9, false)); // below the threshold: never a candidate
    /// let c = Calibration::fit_check(&pairs, 0.9, 0.9).unwrap();
    /// assert_eq!(c.threshold(), Some(0.8));
    /// assert_eq!(c.chosen().unwrap().recall, 1.0);
    /// ```
    pub fn fit_check(
        pairs: &[(f32, f32, bool)],
        at_similarity: f32,
        target_precision: f64,
    ) -> Result<Self, CalibrationError> {
        let scored: Vec<(f32, bool)> = pairs
            .iter()
            .filter(|(similarity, _, _)| *similarity >= at_similarity)
            .map(|&(_, score, same)| (score, same))
            .collect();
        Self::fit(&scored, target_precision)
    }

    /// Build `(similarity, same meaning)` pairs from a replay: for each step, its most similar
    /// earlier step, labelled by whether the two share a cluster. It stands for a cache that
    /// stored every earlier prompt; pass each distinct text once (repeats are the exact tier's).
    ///
    /// ```
    /// use paracache::Calibration;
    /// let v = [vec![1.0, 0.0], vec![0.99, 0.1], vec![0.0, 1.0]];
    /// let steps: Vec<(&[f32], u64)> = v.iter().map(|x| x.as_slice()).zip([7, 7, 9]).collect();
    /// let pairs = Calibration::pairs_from_replay(&steps).unwrap();
    /// assert_eq!(pairs.len(), 2);
    /// assert!(pairs[0].1 && !pairs[1].1);
    /// ```
    pub fn pairs_from_replay(
        steps: &[(&[f32], u64)],
    ) -> Result<Vec<(f32, bool)>, CalibrationError> {
        let dim = steps.first().map_or(0, |(v, _)| v.len());
        if steps.iter().any(|(v, _)| v.len() != dim) {
            return Err(CalibrationError::BadReplay(
                "vectors differ in length".into(),
            ));
        }
        Ok((1..steps.len())
            .map(|i| {
                let (query, cluster) = steps[i];
                let (best, same) = steps[..i]
                    .iter()
                    .map(|(v, c)| (similarity(query, v), *c == cluster))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .unwrap_or((f32::NEG_INFINITY, false));
                (best, same)
            })
            .collect())
    }

    /// What serving pairs at or above `threshold` gives on `pairs`: use it on held-out data to
    /// check a fitted threshold.
    ///
    /// ```
    /// let p = paracache::Calibration::evaluate(&[(0.9, true), (0.8, false), (0.7, true)], 0.8);
    /// assert_eq!((p.served, p.correct, p.recall), (2, 1, 0.5));
    /// ```
    pub fn evaluate(pairs: &[(f32, bool)], threshold: f32) -> CurvePoint {
        let positives = pairs.iter().filter(|(_, same)| *same).count();
        let served: Vec<bool> = pairs
            .iter()
            .filter(|(s, _)| *s >= threshold)
            .map(|(_, same)| *same)
            .collect();
        let correct = served.iter().filter(|same| **same).count();
        point(threshold, served.len(), correct, positives, Z_95_ONE_SIDED)
    }

    /// The chosen threshold, or `None` when no threshold reaches the target precision.
    ///
    /// ```
    /// let c = paracache::Calibration::fit(&[(0.9, false), (0.8, true)], 0.9).unwrap();
    /// assert_eq!(c.threshold(), None);
    /// ```
    pub fn threshold(&self) -> Option<f32> {
        self.chosen().map(|p| p.threshold)
    }

    /// The curve point of the chosen threshold.
    ///
    /// ```
    /// let c = paracache::Calibration::fit(&[(0.9, true); 30], 0.9).unwrap();
    /// assert_eq!(c.chosen().unwrap().served, 30);
    /// ```
    pub fn chosen(&self) -> Option<CurvePoint> {
        self.chosen.map(|i| self.curve[i])
    }

    /// The point whose precision can be trusted most (highest lower bound; the highest recall
    /// among ties): how close the data gets when the target is out of reach.
    ///
    /// ```
    /// let c = paracache::Calibration::fit(&[(0.9, false), (0.8, true)], 0.9).unwrap();
    /// assert_eq!(c.best().precision, 0.5);
    /// ```
    pub fn best(&self) -> CurvePoint {
        self.curve[self.best]
    }

    /// The target precision asked for.
    ///
    /// ```
    /// assert_eq!(paracache::Calibration::fit(&[(0.9, true)], 0.8).unwrap().target(), 0.8);
    /// ```
    pub fn target(&self) -> f64 {
        self.target
    }

    /// Every point, from the highest threshold down (precision/recall curve).
    ///
    /// ```
    /// let c = paracache::Calibration::fit(&[(0.9, true), (0.7, false), (0.7, true)], 0.5).unwrap();
    /// assert_eq!(c.threshold(), None); // three pairs are too few
    /// let thresholds: Vec<f32> = c.curve().iter().map(|p| p.threshold).collect();
    /// assert_eq!(thresholds, [0.9, 0.7]);
    /// ```
    pub fn curve(&self) -> &[CurvePoint] {
        &self.curve
    }
}

/// The normal quantile of a 95% one-sided bound.
const Z_95_ONE_SIDED: f64 = 1.645;

fn point(threshold: f32, served: usize, correct: usize, positives: usize, z: f64) -> CurvePoint {
    let precision = if served == 0 {
        1.0
    } else {
        correct as f64 / served as f64
    };
    CurvePoint {
        threshold,
        served,
        correct,
        precision,
        precision_lower: wilson_lower(correct, served, z),
        recall: correct as f64 / positives as f64,
    }
}

/// Lower end of the Wilson score interval for `k` successes in `n` trials (0 when `n` is 0).
fn wilson_lower(k: usize, n: usize, z: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let (n, p) = (n as f64, k as f64 / n as f64);
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let margin = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - margin) / (1.0 + z2 / n)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_threshold_meeting_the_target_is_chosen() {
        // Precision dips at 0.85 and recovers at 0.8: the lowest qualifying point wins.
        let pairs = [
            (0.95, true),
            (0.9, true),
            (0.85, false),
            (0.8, true),
            (0.8, true),
            (0.7, false),
            (0.7, false),
        ];
        let c = Calibration::fit_with_confidence(&pairs, 0.8, 0.0).unwrap();
        assert_eq!(c.threshold(), Some(0.8));
        assert_eq!(c.chosen().unwrap().recall, 1.0);
        let all = Calibration::evaluate(&pairs, -1.0);
        assert_eq!((all.served, all.correct), (7, 4));
    }

    #[test]
    fn the_confidence_bound_needs_support_before_it_trusts_a_precision() {
        // 9 of 10 correct at 0.95: 90% on the sample, but its lower bound is far below.
        let mut pairs = vec![(0.95, true); 9];
        pairs.push((0.95, false));
        assert_eq!(Calibration::fit(&pairs, 0.9).unwrap().threshold(), None);
        // 900 of 1000 correct: the bound is within two points.
        let many: Vec<(f32, bool)> = (0..1000).map(|i| (0.95, i % 10 != 0)).collect();
        let p = Calibration::fit(&many, 0.88).unwrap().chosen().unwrap();
        assert!(p.precision_lower > 0.88 && p.precision_lower < 0.9, "{p:?}");
        assert!(Calibration::fit_with_confidence(&many, 0.88, -1.0).is_err());
        assert!((wilson_lower(0, 0, 1.645)).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(Calibration::fit(&[], 0.9), Err(CalibrationError::NoPairs));
        assert_eq!(
            Calibration::fit(&[(0.9, true)], 0.0),
            Err(CalibrationError::BadTarget(0.0))
        );
        assert!(Calibration::fit(&[(0.9, true)], f64::NAN).is_err());
        assert_eq!(
            Calibration::fit(&[(0.9, true), (f32::NAN, true)], 0.5),
            Err(CalibrationError::NanSimilarity(1))
        );
        assert!(Calibration::pairs_from_replay(&[(&[1.0][..], 0), (&[1.0, 0.0][..], 0)]).is_err());
    }

    #[test]
    fn pairs_never_served_count_against_recall_only() {
        let pairs = [(0.9, true), (f32::NEG_INFINITY, true)];
        let c = Calibration::fit_with_confidence(&pairs, 1.0, 0.0).unwrap();
        assert_eq!(c.chosen().unwrap().recall, 0.5);
        let none = Calibration::fit(&[(f32::NEG_INFINITY, true)], 0.5).unwrap();
        assert_eq!(none.threshold(), None);
        assert_eq!(none.best().served, 0);
    }
}
