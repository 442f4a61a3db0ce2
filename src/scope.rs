//! Scopes: the partitions a lookup never crosses.

use md5::{Digest, Md5};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A partition of the cache. Entries inserted under one scope are invisible to lookups in any other,
/// in both tiers.
///
/// A scope is built from named parts (tenant, model, system prompt, sampling parameters) with an
/// unambiguous encoding: every part is written as a tag byte, a little-endian `u64` length and the
/// bytes, and parameters are sorted by name. So `("ab", "c")` and `("a", "bc")` never meet, and
/// neither do a tenant called `"x"` and a model called `"x"`.
///
/// Equality compares the full encoding, not only its 128-bit digest: two scopes whose digests
/// collide are still different scopes. Cloning is one reference-count increment.
///
/// ```
/// use paracache::Scope;
/// let a = Scope::builder().tenant("acme").model("gpt-4o").param("temperature", "0").build();
/// let b = Scope::builder().model("gpt-4o").tenant("acme").param("temperature", "0").build();
/// assert_eq!(a, b); // order of the setters does not matter
/// assert_ne!(a, Scope::builder().tenant("acme").model("gpt-4o").build());
/// ```
#[derive(Clone)]
pub struct Scope(Arc<ScopeInner>);

struct ScopeInner {
    digest: [u8; 16],
    encoding: Box<[u8]>,
    /// MD5 after absorbing `u64 length ‖ encoding`: every exact key of the scope starts from it,
    /// so keys cover the whole encoding (scopes whose digests collide never share keys) while a
    /// lookup hashes only the prompt and the encoding's last partial block, however long the
    /// system prompt or parameters in it are.
    key_prefix: Md5,
}

const TAG_TENANT: u8 = 1;
const TAG_MODEL: u8 = 2;
const TAG_SYSTEM: u8 = 3;
const TAG_PARAM: u8 = 4;
const TAG_RAW: u8 = 5;
const TAG_EMBEDDER: u8 = 6;

impl Scope {
    /// The default scope, for single-tenant use.
    ///
    /// ```
    /// assert_eq!(paracache::Scope::global(), paracache::Scope::builder().build());
    /// ```
    pub fn global() -> Scope {
        Scope::from_encoding(Vec::new())
    }

    /// A scope from one opaque name (e.g. a tenant id you already hash yourself).
    ///
    /// ```
    /// use paracache::Scope;
    /// assert_ne!(Scope::named("a"), Scope::named("b"));
    /// assert_ne!(Scope::named("a"), Scope::builder().tenant("a").build());
    /// ```
    pub fn named(name: impl AsRef<[u8]>) -> Scope {
        Scope::from_parts([name.as_ref()])
    }

    /// A scope from any ordered list of byte strings, length-prefixed so no two lists share an
    /// encoding.
    ///
    /// ```
    /// use paracache::Scope;
    /// assert_ne!(Scope::from_parts(["ab", "c"]), Scope::from_parts(["a", "bc"]));
    /// ```
    pub fn from_parts<I, P>(parts: I) -> Scope
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let mut enc = Vec::new();
        for p in parts {
            push_part(&mut enc, TAG_RAW, p.as_ref());
        }
        Scope::from_encoding(enc)
    }

    /// Start building a scope from named parts.
    ///
    /// ```
    /// let s = paracache::Scope::builder().tenant("t1").system_prompt("You are terse.").build();
    /// assert_eq!(s.digest().len(), 16);
    /// ```
    pub fn builder() -> ScopeBuilder {
        ScopeBuilder::default()
    }

    /// The MD5 of the scope's encoding, used to spread scopes over shards and Redis buckets.
    ///
    /// ```
    /// let s = paracache::Scope::named("x");
    /// assert_eq!(s.digest(), s.clone().digest());
    /// ```
    pub fn digest(&self) -> [u8; 16] {
        self.0.digest
    }

    /// The scope's full, unambiguous byte encoding.
    ///
    /// ```
    /// assert!(paracache::Scope::global().encoding().is_empty());
    /// ```
    pub fn encoding(&self) -> &[u8] {
        &self.0.encoding
    }

    /// Rebuild a scope from [`Scope::encoding`] (used by snapshots).
    ///
    /// ```
    /// let s = paracache::Scope::builder().tenant("t").build();
    /// assert_eq!(paracache::Scope::from_encoding(s.encoding().to_vec()), s);
    /// ```
    pub fn from_encoding(encoding: Vec<u8>) -> Scope {
        let digest: [u8; 16] = Md5::digest(&encoding).into();
        let mut key_prefix = Md5::new();
        key_prefix.update((encoding.len() as u64).to_le_bytes());
        key_prefix.update(&encoding);
        Scope(Arc::new(ScopeInner {
            digest,
            encoding: encoding.into_boxed_slice(),
            key_prefix,
        }))
    }

    /// The exact-key hasher state after this scope's encoding (see `key::exact_key`).
    pub(crate) fn key_prefix(&self) -> &Md5 {
        &self.0.key_prefix
    }
}

fn push_part(enc: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    enc.push(tag);
    enc.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    enc.extend_from_slice(bytes);
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.digest == other.0.digest && self.0.encoding == other.0.encoding)
    }
}

impl Eq for Scope {}

impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.digest.hash(state);
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope(")?;
        for b in &self.0.digest[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Builds a [`Scope`] from the parts that change an LLM's answer.
///
/// Each setter replaces an earlier value for the same part; parameters are kept sorted by name, so
/// the order of calls never matters.
///
/// ```
/// use paracache::Scope;
/// let s = Scope::builder().tenant("acme").model("m").param("top_p", "0.9").build();
/// assert_ne!(s, Scope::builder().tenant("other").model("m").param("top_p", "0.9").build());
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct ScopeBuilder {
    tenant: Option<Vec<u8>>,
    model: Option<Vec<u8>>,
    system: Option<Vec<u8>>,
    embedder: Option<Vec<u8>>,
    params: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
}

impl ScopeBuilder {
    /// The tenant (an API key hash, an organisation id...).
    ///
    /// ```
    /// let _ = paracache::Scope::builder().tenant("org-1").build();
    /// ```
    pub fn tenant(mut self, tenant: impl AsRef<[u8]>) -> Self {
        self.tenant = Some(tenant.as_ref().to_vec());
        self
    }

    /// The model name.
    ///
    /// ```
    /// let _ = paracache::Scope::builder().model("llama-3-8b").build();
    /// ```
    pub fn model(mut self, model: impl AsRef<[u8]>) -> Self {
        self.model = Some(model.as_ref().to_vec());
        self
    }

    /// The embedding model, by its [`Embedder::model_id`](crate::Embedder::model_id): vectors of
    /// different models (or settings) then live in different partitions and never meet.
    ///
    /// ```
    /// use paracache::{HashEmbedder, Scope};
    /// let a = Scope::builder().embedder(&HashEmbedder::new(64)).build();
    /// assert_ne!(a, Scope::builder().embedder(&HashEmbedder::new(32)).build());
    /// assert_eq!(a, Scope::builder().embedding_model("paracache-hash-v1-64").build());
    /// ```
    pub fn embedder(self, embedder: &dyn crate::Embedder) -> Self {
        self.embedding_model(embedder.model_id())
    }

    /// The embedding model by id; see [`embedder`](Self::embedder).
    ///
    /// ```
    /// let s = paracache::Scope::builder().embedding_model("all-MiniLM-L6-v2").build();
    /// assert_ne!(s, paracache::Scope::builder().model("all-MiniLM-L6-v2").build());
    /// ```
    pub fn embedding_model(mut self, model_id: impl AsRef<[u8]>) -> Self {
        self.embedder = Some(model_id.as_ref().to_vec());
        self
    }

    /// The system prompt.
    ///
    /// ```
    /// let _ = paracache::Scope::builder().system_prompt("Answer in French.").build();
    /// ```
    pub fn system_prompt(mut self, system: impl AsRef<[u8]>) -> Self {
        self.system = Some(system.as_ref().to_vec());
        self
    }

    /// A sampling parameter or any other setting that changes answers (temperature, tools...).
    ///
    /// ```
    /// let _ = paracache::Scope::builder().param("temperature", "0.2").build();
    /// ```
    pub fn param(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.params
            .insert(name.as_ref().to_vec(), value.as_ref().to_vec());
        self
    }

    /// Finish the scope.
    ///
    /// ```
    /// let s = paracache::Scope::builder().tenant("t").build();
    /// assert!(!s.encoding().is_empty());
    /// ```
    pub fn build(self) -> Scope {
        let mut enc = Vec::new();
        for (tag, part) in [
            (TAG_TENANT, &self.tenant),
            (TAG_MODEL, &self.model),
            (TAG_SYSTEM, &self.system),
            (TAG_EMBEDDER, &self.embedder),
        ] {
            if let Some(p) = part {
                push_part(&mut enc, tag, p);
            }
        }
        for (name, value) in &self.params {
            push_part(&mut enc, TAG_PARAM, name);
            push_part(&mut enc, TAG_PARAM, value);
        }
        Scope::from_encoding(enc)
    }
}
