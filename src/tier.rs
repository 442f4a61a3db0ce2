//! The public hook for a tier between the exact and the semantic tier.
//!
//! A second tier is asked after a local exact miss and before the prompt is embedded: a store that
//! other replicas write to (Redis, Valkey, a key-value store) can answer a repeat that another
//! process cached, without an embedding and without a model call. The hook needs nothing private:
//! [`Cache::lookup_through`](crate::Cache::lookup_through) asks it, and
//! [`Cache::insert_shared`](crate::Cache::insert_shared),
//! [`Cache::invalidate`](crate::Cache::invalidate) and
//! [`Cache::invalidate_scope`](crate::Cache::invalidate_scope) apply what the other replicas did.

use crate::key::{Key, exact_key};
use crate::outcome::Hit;
use crate::scope::Scope;
use std::fmt;

/// The exact tier's key: MD5 of the scope's full encoding, the prompt's length and the normalized
/// prompt. Equal keys are not proof of equal prompts (MD5 collisions can be made): whoever finds
/// an entry by key must compare the stored scope and prompt, as the exact tier does.
///
/// ```
/// use paracache::{ExactKey, Scope};
/// let s = Scope::named("acme");
/// assert_eq!(ExactKey::new(&s, "What is Rust?"), ExactKey::new(&s, "What is Rust?"));
/// assert_ne!(ExactKey::new(&s, "What is Rust?"), ExactKey::new(&Scope::global(), "What is Rust?"));
/// assert_eq!(ExactKey::new(&s, "q").to_hex().len(), 32);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExactKey(pub(crate) Key);

impl ExactKey {
    /// The key of `normalized_prompt` (as [`normalize`](crate::normalize) returns it) in `scope`.
    pub fn new(scope: &Scope, normalized_prompt: &str) -> ExactKey {
        ExactKey(exact_key(scope, normalized_prompt))
    }

    /// The 16 bytes of the key.
    ///
    /// ```
    /// # use paracache::{ExactKey, Scope};
    /// assert_eq!(ExactKey::new(&Scope::global(), "q").as_bytes().len(), 16);
    /// ```
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The key as 32 lower-case hex digits (for key names in an external store, and logs).
    ///
    /// ```
    /// # use paracache::{ExactKey, Scope};
    /// let hex = ExactKey::new(&Scope::global(), "q").to_hex();
    /// assert!(hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    /// ```
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for ExactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExactKey({})", self.to_hex())
    }
}

/// What a lookup missed on in the exact tier: the scope, the normalized prompt and its key.
///
/// ```
/// use paracache::{ExactKey, ExactProbe, Scope};
/// let s = Scope::named("acme");
/// let probe = ExactProbe::new(&s, "What is Rust?");
/// assert_eq!((probe.scope(), probe.prompt()), (&s, "What is Rust?"));
/// assert_eq!(probe.key(), ExactKey::new(&s, "What is Rust?"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ExactProbe<'a> {
    scope: &'a Scope,
    prompt: &'a str,
    key: ExactKey,
}

impl<'a> ExactProbe<'a> {
    /// The probe for an already normalized prompt in `scope`.
    pub fn new(scope: &'a Scope, normalized_prompt: &'a str) -> Self {
        ExactProbe {
            scope,
            prompt: normalized_prompt,
            key: ExactKey::new(scope, normalized_prompt),
        }
    }

    pub(crate) fn with_key(scope: &'a Scope, prompt: &'a str, key: Key) -> Self {
        ExactProbe {
            scope,
            prompt,
            key: ExactKey(key),
        }
    }

    /// The scope looked up.
    pub fn scope(&self) -> &'a Scope {
        self.scope
    }

    /// The normalized prompt.
    pub fn prompt(&self) -> &'a str {
        self.prompt
    }

    /// The prompt's exact key.
    pub fn key(&self) -> ExactKey {
        self.key
    }
}

/// A tier asked between the exact and the semantic tier, by
/// [`Cache::lookup_through`](crate::Cache::lookup_through).
///
/// An implementation answers with an entry it found for exactly this scope and prompt (it must
/// compare both, not only the key), usually after storing it locally with
/// [`Cache::insert_shared`](crate::Cache::insert_shared) so the next repeat is a local hit.
/// Returning `None` sends the lookup on to the embedding and the semantic tier. It is called on
/// the lookup's thread with no cache lock held, so it may block (bounded by its own timeout).
///
/// ```
/// use paracache::{Cache, ExactProbe, Hit, Scope, SecondTier, Source};
/// use std::collections::HashMap;
/// use std::time::Duration;
///
/// /// Another process's answers, keyed by (scope, prompt).
/// struct Remote { cache: Cache<String>, answers: HashMap<(Scope, String), (Vec<f32>, String)> }
///
/// impl SecondTier<String> for Remote {
///     fn lookup(&self, probe: &ExactProbe<'_>) -> Option<Hit<String>> {
///         let (vector, answer) = self.answers.get(&(probe.scope().clone(), probe.prompt().to_string()))?;
///         self.cache
///             .insert_shared(probe.scope(), probe.prompt(), vector.clone(), answer.clone(), Duration::ZERO)
///             .ok()
///     }
/// }
///
/// let cache: Cache<String> = Cache::builder(2).build()?;
/// let s = Scope::named("acme");
/// let mut answers = HashMap::new();
/// answers.insert((s.clone(), "q".to_string()), (vec![1.0, 0.0], "remote answer".to_string()));
/// let remote = Remote { cache: cache.clone(), answers };
/// let never = |_: &str| -> Result<Vec<f32>, std::io::Error> { unreachable!("no embedding for a repeat") };
/// let hit = cache.lookup_through(&s, "q", never, &remote)?;
/// assert_eq!(hit.hit().map(|h| h.source()), Some(Source::Shared));
/// // Stored locally: the next repeat is a local exact hit.
/// assert_eq!(cache.lookup(&s, "q", never)?.hit().map(|h| h.source()), Some(Source::Exact));
/// # Ok::<(), paracache::Error>(())
/// ```
pub trait SecondTier<V> {
    /// The entry for exactly `probe`'s scope and prompt, if this tier has one.
    fn lookup(&self, probe: &ExactProbe<'_>) -> Option<Hit<V>>;
}

/// No second tier: what [`Cache::lookup`](crate::Cache::lookup) uses.
pub(crate) struct NoSecondTier;

impl<V> SecondTier<V> for NoSecondTier {
    fn lookup(&self, _: &ExactProbe<'_>) -> Option<Hit<V>> {
        None
    }
}
