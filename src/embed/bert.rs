//! A real sentence-embedding model in pure Rust (feature `bert`): a BERT encoder (candle), mean
//! pooling over the attention mask and L2 normalisation, as sentence-transformers computes for
//! all-MiniLM-L6-v2 and models of its family.

use super::Embedder;
use crate::error::BoxError;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use md5::{Digest, Md5};
use std::fmt;
use std::path::Path;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Sentence embeddings from a BERT checkpoint in the Hugging Face layout, on the CPU.
///
/// [`BertEmbedder::from_dir`] reads `model.safetensors`, `config.json` and `tokenizer.json` from a
/// directory you name (nothing is downloaded). Texts are tokenized (truncated to
/// [`DEFAULT_MAX_TOKENS`](Self::DEFAULT_MAX_TOKENS) word pieces unless [`with_max_tokens`](Self::with_max_tokens) says
/// otherwise), encoded, mean-pooled over their real tokens and scaled to unit length. With the
/// all-MiniLM-L6-v2 weights it reproduces sentence-transformers' vectors to cosine ≥ 0.999.
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
    model: BertModel,
    tokenizer: Tokenizer,
    dimension: usize,
    max_tokens: usize,
    weights_md5: String,
    id: String,
}

impl fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("id", &self.id)
            .field("dimension", &self.dimension)
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
        let mut tokenizer = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
            .map_err(|e| format!("tokenizer.json: {e}"))?;
        let weights = read(dir, "model.safetensors")?;
        let weights_md5 = Md5::digest(&weights)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| format!("model.safetensors: {e}"))?;
        let model = BertModel::load(vb, &config).map_err(|e| format!("model.safetensors: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        let max_tokens = Self::DEFAULT_MAX_TOKENS.min(config.max_position_embeddings);
        let mut embedder = BertEmbedder {
            model,
            tokenizer,
            dimension: config.hidden_size,
            max_tokens,
            weights_md5,
            id: String::new(),
        };
        embedder.set_truncation(max_tokens)?;
        Ok(embedder)
    }

    /// Keep at most `n` word pieces per text (at least 2, for the `[CLS]` and `[SEP]` markers;
    /// at most the model's position table). Changes the model id.
    ///
    /// ```no_run
    /// let e = paracache::BertEmbedder::from_dir("models/all-MiniLM-L6-v2")?.with_max_tokens(128)?;
    /// # Ok::<(), paracache::BoxError>(())
    /// ```
    pub fn with_max_tokens(mut self, n: usize) -> Result<Self, BoxError> {
        self.set_truncation(n)?;
        Ok(self)
    }

    fn set_truncation(&mut self, n: usize) -> Result<(), BoxError> {
        if n < 2 {
            return Err("max_tokens must be at least 2".into());
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

    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| format!("tokenizer: {e}"))?;
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let rows = encodings.len();
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| f(e).iter().copied())
                .collect()
        };
        let device = &self.model.device;
        let shape = (rows, width);
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), shape, device)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), shape, device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), shape, device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens only: padding must not pull the average.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

impl Embedder for BertEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError> {
        self.encode(&[text])?
            .pop()
            .ok_or_else(|| "the model returned no vector".into())
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BoxError> {
        self.encode(texts)
    }
}
