//! The crate's one error type.

use std::sync::Arc;

/// A boxed error from user code (an embedder or a compute closure).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, paracache::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a cache call.
///
/// Input errors (`Dimension*`, `NonFinite*`, `ZeroVector`, `EmptyPrompt`, `*TooLarge`,
/// `InvalidThreshold`) are returned before anything is changed: a call that fails leaves the cache
/// exactly as it was. The error is `Clone` so one failed computation can be handed to every caller
/// that was waiting on it.
///
/// ```
/// use paracache::{Cache, Error, Scope};
/// let cache: Cache<String> = Cache::builder(3).max_entries(10).build().unwrap();
/// let err = cache.insert(&Scope::global(), "hi", vec![1.0, 2.0], "x".into()).unwrap_err();
/// assert_eq!(err, Error::DimensionMismatch { expected: 3, got: 2 });
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The vector's length is not the cache's dimension.
    #[error("embedding has dimension {got}, the cache expects {expected}")]
    DimensionMismatch {
        /// The cache's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A vector component is NaN or infinite.
    #[error("embedding component {index} is not finite")]
    NonFiniteVector {
        /// Position of the first bad component.
        index: usize,
    },
    /// The vector has zero (or denormal) norm, so it has no direction to compare.
    #[error("embedding has zero norm")]
    ZeroVector,
    /// The prompt is empty after normalization.
    #[error("prompt is empty after normalization")]
    EmptyPrompt,
    /// The prompt is longer than the configured maximum.
    #[error("prompt is {bytes} bytes, the maximum is {max}")]
    PromptTooLarge {
        /// Normalized prompt length in bytes.
        bytes: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The entry (value + prompt + vector) weighs more than the configured per-entry cap.
    #[error("entry weighs {weight} bytes, the per-entry maximum is {max}")]
    ValueTooLarge {
        /// The entry's weight in bytes.
        weight: u64,
        /// Configured maximum.
        max: u64,
    },
    /// A similarity threshold outside `[-1, 1]` (or NaN).
    #[error("similarity threshold {0} is outside [-1, 1]")]
    InvalidThreshold(f32),
    /// The builder was given parameters that cannot work together.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The embedding function failed; nothing was cached.
    #[error("embedding failed: {0}")]
    Embed(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// The compute function failed; nothing was cached.
    #[error("compute failed: {0}")]
    Compute(Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// Reading or writing a snapshot file failed.
    #[error("snapshot I/O: {0}")]
    Io(Arc<std::io::Error>),
    /// A snapshot failed its checks (magic, checksum, lengths, record contents); nothing was loaded.
    #[error("corrupt snapshot: {0}")]
    CorruptSnapshot(String),
    /// A snapshot of another value type or schema version (see
    /// [`CacheBuilder::snapshot_schema`](crate::CacheBuilder::snapshot_schema)); nothing was loaded.
    #[error("snapshot does not match this cache: {0}")]
    SnapshotValueType(String),
    /// A snapshot written by a newer (or unknown) format version.
    #[error("snapshot format version {found} is not supported (this build reads {supported})")]
    UnsupportedSnapshotVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl Error {
    pub(crate) fn embed(e: impl Into<BoxError>) -> Self {
        Error::Embed(Arc::from(e.into()))
    }

    pub(crate) fn compute(e: impl Into<BoxError>) -> Self {
        Error::Compute(Arc::from(e.into()))
    }
}

/// Errors compare by kind and fields; wrapped user errors compare by their message.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (self, other) {
            (
                DimensionMismatch {
                    expected: a,
                    got: b,
                },
                DimensionMismatch {
                    expected: c,
                    got: d,
                },
            ) => a == c && b == d,
            (NonFiniteVector { index: a }, NonFiniteVector { index: b }) => a == b,
            (ZeroVector, ZeroVector) | (EmptyPrompt, EmptyPrompt) => true,
            (PromptTooLarge { bytes: a, max: b }, PromptTooLarge { bytes: c, max: d }) => {
                a == c && b == d
            }
            (ValueTooLarge { weight: a, max: b }, ValueTooLarge { weight: c, max: d }) => {
                a == c && b == d
            }
            (InvalidThreshold(a), InvalidThreshold(b)) => a.to_bits() == b.to_bits(),
            (InvalidConfig(a), InvalidConfig(b)) => a == b,
            (Embed(a), Embed(b)) | (Compute(a), Compute(b)) => a.to_string() == b.to_string(),
            (Io(a), Io(b)) => a.kind() == b.kind() && a.to_string() == b.to_string(),
            (CorruptSnapshot(a), CorruptSnapshot(b)) => a == b,
            (SnapshotValueType(a), SnapshotValueType(b)) => a == b,
            (
                UnsupportedSnapshotVersion {
                    found: a,
                    supported: b,
                },
                UnsupportedSnapshotVersion {
                    found: c,
                    supported: d,
                },
            ) => a == c && b == d,
            _ => false,
        }
    }
}
