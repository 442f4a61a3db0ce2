//! Embedders: the trait the cache's callers implement, an offline default, and (feature `bert`)
//! a real sentence-embedding model in pure Rust.

#[cfg(feature = "bert")]
mod bert;
mod hash;
mod micro_batch;

#[cfg(feature = "bert")]
pub use bert::BertEmbedder;
pub use hash::HashEmbedder;
pub use micro_batch::{BatchCounts, MicroBatcher};

use crate::error::BoxError;

/// Turns text into a vector. Implement it for your model; pass it to lookups as
/// [`embedder.embed_fn()`](Embedder::embed_fn) (or any closure, see [`EmbedFn`]).
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

    /// This embedder as the `embed` argument of [`Cache::lookup`](crate::Cache::lookup) and
    /// [`Cache::get_or_insert_with`](crate::Cache::get_or_insert_with).
    ///
    /// ```
    /// use paracache::{Cache, Embedder, HashEmbedder, Scope};
    /// let e = HashEmbedder::new(64);
    /// let cache: Cache<u32> = Cache::builder(e.dimension()).build()?;
    /// let s = Scope::builder().embedder(&e).build();
    /// cache.get_or_insert_with(&s, "What is Rust?", e.embed_fn(), || Ok::<_, std::io::Error>(1))?;
    /// assert!(cache.lookup(&s, "What is Rust?", e.embed_fn())?.is_hit());
    /// // Behind a shared pointer too, as a gateway holds its model.
    /// let shared: std::sync::Arc<dyn Embedder> = std::sync::Arc::new(HashEmbedder::new(64));
    /// assert!(cache.lookup(&s, "What is Rust?", shared.embed_fn())?.is_hit());
    /// # Ok::<(), paracache::Error>(())
    /// ```
    fn embed_fn(&self) -> impl Fn(&str) -> Result<Vec<f32>, BoxError> + Copy + '_
    where
        Self: Sized,
    {
        move |text| self.embed(text)
    }
}

/// The `embed` argument of a lookup: called at most once, with the normalized prompt, and only
/// when the exact tier misses.
///
/// Any `FnOnce(&str) -> Result<Vec<f32>, E>` is one, for every error type `E` that converts into
/// a [`BoxError`]; an [`Embedder`] gives one with [`Embedder::embed_fn`]. (A closure's argument
/// type is inferred from this trait's `FnOnce` supertrait, so `|text| ...` needs no annotation;
/// that is also why an `&impl Embedder` is passed through `embed_fn` rather than directly.)
///
/// ```
/// use paracache::{Cache, Scope};
/// let cache: Cache<u32> = Cache::builder(2).build()?;
/// // A closure with its own error type.
/// let r = cache.lookup(&Scope::global(), "q", |_| Ok::<_, std::io::Error>(vec![1.0, 0.0]))?;
/// assert!(!r.is_hit());
/// # Ok::<(), paracache::Error>(())
/// ```
pub trait EmbedFn: FnOnce(&str) -> Result<Vec<f32>, <Self as EmbedFn>::Error> {
    /// The closure's error type.
    type Error: Into<BoxError>;
}

impl<F, E> EmbedFn for F
where
    F: FnOnce(&str) -> Result<Vec<f32>, E>,
    E: Into<BoxError>,
{
    type Error = E;
}

/// An embedder behind a reference or a shared pointer is an embedder (a gateway keeps an
/// `Arc<dyn Embedder>`).
macro_rules! forward_embedder {
    ($($pointer:ty),*) => {$(
        impl<T: Embedder + ?Sized> Embedder for $pointer {
            fn model_id(&self) -> &str {
                (**self).model_id()
            }
            fn dimension(&self) -> usize {
                (**self).dimension()
            }
            fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError> {
                (**self).embed(text)
            }
            fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
                (**self).embed_batch(texts)
            }
        }
    )*};
}

forward_embedder!(&T, std::sync::Arc<T>, Box<T>);
