//! Embedders: the trait the cache's callers implement, an offline default, and (feature `bert`)
//! a real sentence-embedding model in pure Rust.

#[cfg(feature = "bert")]
mod bert;
mod hash;

#[cfg(feature = "bert")]
pub use bert::BertEmbedder;
pub use hash::HashEmbedder;

use crate::error::BoxError;

/// Turns text into a vector. Implement it for your model; pass it to lookups as
/// `|text| embedder.embed(text)`.
///
/// Put its `model_id` in every [`Scope`](crate::Scope) you look up with it
/// ([`ScopeBuilder::embedder`](crate::ScopeBuilder::embedder)), so that vectors of two models
/// (or of one model with other settings) never meet in one index.
///
/// ```
/// use paracache::{Embedder, HashEmbedder, Scope};
/// let e = HashEmbedder::new(256);
/// assert_eq!(e.embed("hello world").unwrap().len(), e.dimension());
/// assert_eq!(e.embed_batch(&["a", "b"]).unwrap().len(), 2);
/// let scope = Scope::builder().tenant("acme").embedder(&e).build();
/// assert_ne!(scope, Scope::builder().tenant("acme").embedder(&HashEmbedder::new(128)).build());
/// ```
pub trait Embedder: Send + Sync {
    /// A stable identifier of the model and every setting that changes its vectors (weights,
    /// pooling, truncation): equal ids must mean interchangeable vectors.
    fn model_id(&self) -> &str;
    /// Length of the vectors it returns.
    fn dimension(&self) -> usize;
    /// Embed one text.
    fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError>;
    /// Embed many texts; the default calls [`Self::embed`] for each.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        texts.iter().map(|t| self.embed(t)).collect()
    }
}
