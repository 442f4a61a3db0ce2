//! A real sentence-embedding model in pure Rust (feature `bert`): a BERT encoder, mean pooling
//! over the text's tokens and L2 normalisation, as sentence-transformers computes for
//! all-MiniLM-L6-v2 and models of its family.
//!
//! The forward pass is this crate's own (`encoder.rs`) over the `gemm` crate's matrix kernels,
//! not candle's: at batch 1 candle spent most of its 14 ms outside arithmetic (repacking each
//! weight per call, thread wake-ups for small tensors, libm's `erff`), and padded every batch to
//! its longest text. See BENCHMARKS.md ("Embedding") for the measurements behind the choice.

mod encoder;
mod linear;
mod math;
mod matmul;
mod weights;

use super::{Embedder, MicroBatcher};
use crate::error::BoxError;
use encoder::{Encoder, Tokens};
use md5::{Digest, Md5};
use std::fmt;
use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};
use weights::{Config, Weights};

/// Sentence embeddings from a BERT checkpoint in the Hugging Face layout, on the CPU.
///
/// [`BertEmbedder::from_dir`] reads `model.safetensors`, `config.json` and `tokenizer.json` from a
/// directory you name (nothing is downloaded). Texts are tokenized (truncated to
/// [`DEFAULT_MAX_TOKENS`](Self::DEFAULT_MAX_TOKENS) word pieces unless [`with_max_tokens`](Self::with_max_tokens) says
/// otherwise), encoded, mean-pooled over their tokens and scaled to unit length. With the
/// all-MiniLM-L6-v2 weights it reproduces sentence-transformers' vectors to cosine ≥ 0.9999.
///
/// Concurrent [`embed`](Embedder::embed) calls are batched as a [`MicroBatcher`] batches them: a
/// lone call runs at once, and calls that arrive while the model is busy go together in its next
/// pass. A batch is packed without padding, so a text's vector does not depend on its batch.
///
/// The model id is the pooling, the truncation and an MD5 of the weights, so two checkpoints never
/// share an id even when their directories have the same name.
///
/// ```no_run
/// use paracache::{BertEmbedder, Embedder};
/// let e = BertEmbedder::from_dir("models/all-MiniLM-L6-v2")?;
/// let v = e.embed("How do I reset my password?")?;
/// assert_eq!(v.len(), e.dimension());
/// # Ok::<(), paracache::BoxError>(())
/// ```
pub struct BertEmbedder {
    model: MicroBatcher<Bert>,
}

/// The model itself: tokenizer and encoder, one batch at a time.
struct Bert {
    encoder: Encoder,
    tokenizer: Tokenizer,
    max_tokens: usize,
    weights_md5: String,
    id: String,
}

impl fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("id", &self.model_id())
            .field("dimension", &self.dimension())
            .finish_non_exhaustive()
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, BoxError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()).into())
}

impl BertEmbedder {
    /// Word pieces kept per text by default: sentence-transformers' `max_seq_length` for
    /// all-MiniLM-L6-v2 (its tokenizer.json says 128; sentence-transformers uses 256).
    ///
    /// ```
    /// assert_eq!(paracache::BertEmbedder::DEFAULT_MAX_TOKENS, 256);
    /// ```
    pub const DEFAULT_MAX_TOKENS: usize = 256;

    /// Load the model from `dir` (see the type's docs for the files it needs).
    ///
    /// ```
    /// let err = paracache::BertEmbedder::from_dir("/nonexistent").unwrap_err();
    /// assert!(err.to_string().contains("config.json"));
    /// ```
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, BoxError> {
        let dir = dir.as_ref();
        let config: Config = serde_json::from_slice(&read(dir, "config.json")?)
            .map_err(|e| format!("config.json: {e}"))?;
        config.check()?;
        let mut tokenizer = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
            .map_err(|e| format!("tokenizer.json: {e}"))?;
        // Texts are packed, not padded (see encoder.rs).
        tokenizer.with_padding(None);
        let bytes = read(dir, "model.safetensors")?;
        let weights_md5 = Md5::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let weights = Weights::load(&bytes, &config)?;
        drop(bytes);
        let max_tokens = Self::DEFAULT_MAX_TOKENS.min(config.max_position_embeddings);
        let mut bert = Bert {
            encoder: Encoder::new(config, weights),
            tokenizer,
            max_tokens,
            weights_md5,
            id: String::new(),
        };
        bert.set_truncation(max_tokens)?;
        Ok(BertEmbedder {
            model: MicroBatcher::new(bert),
        })
    }

    /// Keep at most `n` word pieces per text (at least 2, for the `[CLS]` and `[SEP]` markers;
    /// at most the model's position table). Changes the model id.
    ///
    /// ```no_run
    /// let e = paracache::BertEmbedder::from_dir("models/all-MiniLM-L6-v2")?.with_max_tokens(128)?;
    /// # Ok::<(), paracache::BoxError>(())
    /// ```
    pub fn with_max_tokens(mut self, n: usize) -> Result<Self, BoxError> {
        self.model.inner_mut().set_truncation(n)?;
        Ok(self)
    }

    /// Batches run for concurrent [`embed`](Embedder::embed) calls so far, and the texts in them
    /// (see [`MicroBatcher`]).
    ///
    /// ```no_run
    /// use paracache::{BertEmbedder, Embedder};
    /// let e = BertEmbedder::from_dir("models/all-MiniLM-L6-v2")?;
    /// e.embed("one")?;
    /// assert_eq!(e.batch_counts().texts, 1);
    /// # Ok::<(), paracache::BoxError>(())
    /// ```
    pub fn batch_counts(&self) -> super::BatchCounts {
        self.model.counts()
    }
}

impl Bert {
    fn set_truncation(&mut self, n: usize) -> Result<(), BoxError> {
        if n < 2 {
            return Err("max_tokens must be at least 2".into());
        }
        if n > self.encoder.max_positions() {
            return Err(format!(
                "max_tokens {n} exceeds the model's {} positions",
                self.encoder.max_positions()
            )
            .into());
        }
        self.tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: n,
                ..TruncationParams::default()
            }))
            .map_err(|e| format!("truncation: {e}"))?;
        self.max_tokens = n;
        self.id = format!("bert-mean-l2-{n}-{}", self.weights_md5);
        Ok(())
    }
}

impl Embedder for Bert {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.encoder.hidden_size()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError> {
        self.embed_batch(&[text])?
            .pop()
            .ok_or_else(|| "the model returned no vector".into())
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        let encodings = match texts {
            [] => return Ok(Vec::new()),
            // One text: skip encode_batch's hand-off to rayon.
            [one] => vec![
                self.tokenizer
                    .encode(*one, true)
                    .map_err(|e| format!("tokenizer: {e}"))?,
            ],
            _ => self
                .tokenizer
                .encode_batch(texts.to_vec(), true)
                .map_err(|e| format!("tokenizer: {e}"))?,
        };
        let tokens: Vec<Tokens<'_>> = encodings
            .iter()
            .map(|e| Tokens {
                ids: e.get_ids(),
                type_ids: e.get_type_ids(),
            })
            .collect();
        self.encoder.embed(&tokens)
    }
}

impl Embedder for BertEmbedder {
    fn model_id(&self) -> &str {
        self.model.model_id()
    }

    fn dimension(&self) -> usize {
        self.model.dimension()
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError> {
        self.model.embed(text)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        self.model.embed_batch(texts)
    }
}
