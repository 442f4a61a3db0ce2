//! A BERT checkpoint in the Hugging Face layout (`config.json` + `model.safetensors`), read into
//! the layout the encoder multiplies with (see linear.rs); a layer's query, key and value
//! projections become one `[3·hidden, hidden]` layer, so the three take one pass over the hidden
//! states.

use super::linear::Linear;
use crate::error::BoxError;
use safetensors::{Dtype, SafeTensors};

/// The fields of `config.json` the encoder needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct Config {
    pub(super) vocab_size: usize,
    pub(super) hidden_size: usize,
    pub(super) num_hidden_layers: usize,
    pub(super) num_attention_heads: usize,
    pub(super) intermediate_size: usize,
    pub(super) max_position_embeddings: usize,
    #[serde(default = "two")]
    pub(super) type_vocab_size: usize,
    #[serde(default = "bert_eps")]
    pub(super) layer_norm_eps: f64,
    #[serde(default = "gelu")]
    hidden_act: String,
    #[serde(default = "absolute")]
    position_embedding_type: String,
}

fn two() -> usize {
    2
}
fn bert_eps() -> f64 {
    1e-12
}
fn gelu() -> String {
    "gelu".into()
}
fn absolute() -> String {
    "absolute".into()
}

impl Config {
    /// Refuses what this encoder does not compute, rather than computing something else.
    pub(super) fn check(&self) -> Result<(), BoxError> {
        if self.hidden_act != "gelu" {
            return Err(format!(
                "config.json: hidden_act {:?} (only \"gelu\" is supported)",
                self.hidden_act
            )
            .into());
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "config.json: position_embedding_type {:?} (only \"absolute\" is supported)",
                self.position_embedding_type
            )
            .into());
        }
        let sizes = [
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
            self.max_position_embeddings,
            self.type_vocab_size,
        ];
        if sizes.contains(&0) || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err("config.json: a size is zero or hidden_size is not a multiple of num_attention_heads".into());
        }
        Ok(())
    }
}

/// Layer normalisation's scale and shift.
pub(super) struct Norm {
    pub(super) gamma: Vec<f32>,
    pub(super) beta: Vec<f32>,
}

/// One transformer layer.
pub(super) struct Layer {
    pub(super) qkv: Linear,
    pub(super) attention_out: Linear,
    pub(super) attention_norm: Norm,
    pub(super) intermediate: Linear,
    pub(super) output: Linear,
    pub(super) output_norm: Norm,
}

/// Every weight of the model.
pub(super) struct Weights {
    pub(super) word: Vec<f32>,       // [vocab, hidden]
    pub(super) position: Vec<f32>,   // [max_positions, hidden]
    pub(super) token_type: Vec<f32>, // [type_vocab, hidden]
    pub(super) embedding_norm: Norm,
    pub(super) layers: Vec<Layer>,
}

struct Reader<'a> {
    tensors: SafeTensors<'a>,
    /// "" or "bert.": checkpoints saved from a task model prefix the encoder's names.
    prefix: &'static str,
}

impl Reader<'_> {
    fn get(&self, names: &[&str], shape: &[usize]) -> Result<Vec<f32>, BoxError> {
        let full: Vec<String> = names
            .iter()
            .map(|n| format!("{}{n}", self.prefix))
            .collect();
        let view = full
            .iter()
            .find_map(|n| self.tensors.tensor(n).ok())
            .ok_or_else(|| format!("model.safetensors: no tensor {}", full.join(" or ")))?;
        if view.dtype() != Dtype::F32 {
            return Err(format!(
                "model.safetensors: {} is {:?}, not F32",
                full[0],
                view.dtype()
            )
            .into());
        }
        if view.shape() != shape {
            return Err(format!(
                "model.safetensors: {} has shape {:?}, config.json says {shape:?}",
                full[0],
                view.shape()
            )
            .into());
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A linear layer's weight (`[outputs, inputs]`, PyTorch's layout) and bias.
    fn dense(
        &self,
        name: &str,
        outputs: usize,
        inputs: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), BoxError> {
        Ok((
            self.get(&[&format!("{name}.weight")], &[outputs, inputs])?,
            self.get(&[&format!("{name}.bias")], &[outputs])?,
        ))
    }

    fn linear(&self, name: &str, outputs: usize, inputs: usize) -> Result<Linear, BoxError> {
        let (weight, bias) = self.dense(name, outputs, inputs)?;
        Ok(Linear::from_torch(&weight, bias, inputs))
    }

    fn norm(&self, name: &str, width: usize) -> Result<Norm, BoxError> {
        Ok(Norm {
            gamma: self.get(
                &[&format!("{name}.weight"), &format!("{name}.gamma")],
                &[width],
            )?,
            beta: self.get(
                &[&format!("{name}.bias"), &format!("{name}.beta")],
                &[width],
            )?,
        })
    }
}

impl Weights {
    /// Reads and shape-checks every tensor the config implies.
    pub(super) fn load(safetensors: &[u8], c: &Config) -> Result<Self, BoxError> {
        let tensors =
            SafeTensors::deserialize(safetensors).map_err(|e| format!("model.safetensors: {e}"))?;
        let prefix = if tensors.tensor("embeddings.word_embeddings.weight").is_ok() {
            ""
        } else {
            "bert."
        };
        let r = Reader { tensors, prefix };
        let h = c.hidden_size;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let at = format!("encoder.layer.{i}");
            let [q, k, v] = ["query", "key", "value"]
                .map(|p| r.dense(&format!("{at}.attention.self.{p}"), h, h));
            let (q, k, v) = (q?, k?, v?);
            layers.push(Layer {
                qkv: Linear::from_torch(&[q.0, k.0, v.0].concat(), [q.1, k.1, v.1].concat(), h),
                attention_out: r.linear(&format!("{at}.attention.output.dense"), h, h)?,
                attention_norm: r.norm(&format!("{at}.attention.output.LayerNorm"), h)?,
                intermediate: r.linear(
                    &format!("{at}.intermediate.dense"),
                    c.intermediate_size,
                    h,
                )?,
                output: r.linear(&format!("{at}.output.dense"), h, c.intermediate_size)?,
                output_norm: r.norm(&format!("{at}.output.LayerNorm"), h)?,
            });
        }
        Ok(Weights {
            word: r.get(&["embeddings.word_embeddings.weight"], &[c.vocab_size, h])?,
            position: r.get(
                &["embeddings.position_embeddings.weight"],
                &[c.max_position_embeddings, h],
            )?,
            token_type: r.get(
                &["embeddings.token_type_embeddings.weight"],
                &[c.type_vocab_size, h],
            )?,
            embedding_norm: r.norm("embeddings.LayerNorm", h)?,
            layers,
        })
    }
}
