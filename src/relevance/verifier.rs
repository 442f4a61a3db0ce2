//! The verifier hook: an expensive check (a cross-encoder, a small judge model) that only sees
//! candidates whose similarity is in the uncertain band just above the threshold.

use std::fmt;
use std::sync::Arc;

/// A user-supplied check of a semantic candidate, called only for candidates whose similarity is
/// at least the threshold and below the band's upper bound (see
/// [`CacheBuilder::verifier`](crate::CacheBuilder::verifier)). Return `false` to turn the
/// candidate away; the next candidate, if any, is considered.
///
/// It runs on the lookup's thread with no lock held. Closures `Fn(&str, &str, f32) -> bool`
/// implement it.
///
/// ```
/// use paracache::Verifier;
/// let same_length = |query: &str, matched: &str, _similarity: f32| query.len() == matched.len();
/// assert!(same_length.verify("abc", "xyz", 0.9));
/// ```
pub trait Verifier: Send + Sync + 'static {
    /// Whether `matched` (the cached prompt) answers `query`, whose embeddings have cosine
    /// `similarity`. Both prompts are normalized.
    fn verify(&self, query: &str, matched: &str, similarity: f32) -> bool;
}

impl<F> Verifier for F
where
    F: Fn(&str, &str, f32) -> bool + Send + Sync + 'static,
{
    fn verify(&self, query: &str, matched: &str, similarity: f32) -> bool {
        self(query, matched, similarity)
    }
}

/// A verifier and the similarity below which it is asked.
#[derive(Clone)]
pub(crate) struct VerifyBand {
    pub(crate) below: f32,
    pub(crate) verifier: Arc<dyn Verifier>,
}

impl VerifyBand {
    /// Whether a candidate at `similarity` must be verified.
    pub(crate) fn covers(&self, similarity: f32) -> bool {
        similarity < self.below
    }
}

impl fmt::Debug for VerifyBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyBand")
            .field("below", &self.below)
            .finish_non_exhaustive()
    }
}
