//! The BERT forward pass with mean pooling, over a batch packed without padding: the texts'
//! tokens are stacked into one `[tokens, hidden]` matrix, so every linear layer is one matrix
//! product over real tokens only, and attention runs per text on its own rows. A batch of texts of
//! unequal length costs what their tokens cost, and a text's vector does not depend on its
//! batch-mates.

use super::linear::Output;
use super::math::{layer_norm, softmax_rows};
use super::matmul::{Rhs, View, ViewMut, product};
use super::weights::{Config, Weights};
use crate::error::BoxError;
use parking_lot::Mutex;
use rayon::prelude::*;

/// One tokenized text.
pub(super) struct Tokens<'a> {
    pub(super) ids: &'a [u32],
    pub(super) type_ids: &'a [u32],
}

/// The model, ready to run.
pub(super) struct Encoder {
    config: Config,
    weights: Weights,
    /// The last pass's work buffers, kept for the next one if they are small (a single prompt's
    /// are ~300 KB), so that a pass at batch 1 allocates and faults in no fresh memory.
    spare: Mutex<Option<Buffers>>,
}

/// A pass's intermediate matrices, each `[tokens, width]`.
#[derive(Default)]
struct Buffers {
    qkv: Vec<f32>,
    context: Vec<f32>,
    inter: Vec<f32>,
    scratch: Vec<f32>,
}

impl Buffers {
    /// Kept between passes only below this many values (16 MB): a long batch's buffers go back
    /// to the allocator.
    const KEEP_UP_TO: usize = 4 << 20;

    fn capacity(&self) -> usize {
        self.qkv.capacity()
            + self.context.capacity()
            + self.inter.capacity()
            + self.scratch.capacity()
    }
}

fn view(data: &[f32], rows: usize, cols: usize) -> View<'_> {
    View {
        data,
        rows,
        cols,
        row_stride: cols,
    }
}

impl Encoder {
    pub(super) fn new(config: Config, weights: Weights) -> Self {
        Encoder {
            config,
            weights,
            spare: Mutex::new(None),
        }
    }

    pub(super) fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    pub(super) fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// Mean-pooled, unit-length vectors, one per text.
    pub(super) fn embed(&self, texts: &[Tokens<'_>]) -> Result<Vec<Vec<f32>>, BoxError> {
        let c = &self.config;
        for t in texts {
            if t.ids.is_empty()
                || t.ids.len() > c.max_position_embeddings
                || t.ids.len() != t.type_ids.len()
            {
                return Err(format!(
                    "a tokenized text of {} tokens (1 to {} allowed)",
                    t.ids.len(),
                    c.max_position_embeddings
                )
                .into());
            }
            if t.ids.iter().any(|&i| i as usize >= c.vocab_size)
                || t.type_ids.iter().any(|&i| i as usize >= c.type_vocab_size)
            {
                return Err(
                    "a token id outside the model's vocabulary (tokenizer and model disagree)"
                        .into(),
                );
            }
        }
        // The whole pass runs on one of rayon's threads: a parallel region started from outside the
        // pool hands its work over and parks the caller, two context switches per region, and a
        // pass has 24 of them (with one rayon thread, batch 1 took 10.2 ms that way; see
        // BENCHMARKS.md). Inside the pool each region is a push that the other threads steal from.
        Ok(rayon::scope(|_| self.forward(texts)))
    }

    fn forward(&self, texts: &[Tokens<'_>]) -> Vec<Vec<f32>> {
        let c = &self.config;
        let h = c.hidden_size;
        let tokens: usize = texts.iter().map(|t| t.ids.len()).sum();
        let mut hidden = self.embeddings(texts, tokens);
        let mut buffers = self.spare.lock().take().unwrap_or_default();
        let Buffers {
            qkv,
            context,
            inter,
            scratch,
        } = &mut buffers;
        // Every value is written before it is read (each product sets or the attention writes
        // its whole output), so a reused buffer's old values never leak into this pass.
        qkv.resize(tokens * 3 * h, 0.0);
        context.resize(tokens * h, 0.0);
        inter.resize(tokens * c.intermediate_size, 0.0);
        let eps = c.layer_norm_eps as f32;
        for layer in &self.weights.layers {
            layer.qkv.apply(qkv, &hidden, tokens, Output::Set, scratch);
            self.attention(texts, qkv, context);
            // Each block adds its result to its input (the residual), then normalises.
            let (norm, ffn_norm) = (&layer.attention_norm, &layer.output_norm);
            layer
                .attention_out
                .apply(&mut hidden, context, tokens, Output::AddTo, scratch);
            layer_norm(&mut hidden, &norm.gamma, &norm.beta, eps);
            layer
                .intermediate
                .apply(inter, &hidden, tokens, Output::Gelu, scratch);
            layer
                .output
                .apply(&mut hidden, inter, tokens, Output::AddTo, scratch);
            layer_norm(&mut hidden, &ffn_norm.gamma, &ffn_norm.beta, eps);
        }
        if buffers.capacity() <= Buffers::KEEP_UP_TO {
            *self.spare.lock() = Some(buffers);
        }
        Self::mean_pool(texts, &hidden, h)
    }

    fn embeddings(&self, texts: &[Tokens<'_>], tokens: usize) -> Vec<f32> {
        let (w, h) = (&self.weights, self.config.hidden_size);
        let mut hidden = Vec::with_capacity(tokens * h);
        for t in texts {
            for (pos, (&id, &ty)) in t.ids.iter().zip(t.type_ids).enumerate() {
                let (id, ty) = (id as usize, ty as usize);
                let word = &w.word[id * h..(id + 1) * h];
                let position = &w.position[pos * h..(pos + 1) * h];
                let token_type = &w.token_type[ty * h..(ty + 1) * h];
                hidden.extend(
                    word.iter()
                        .zip(position)
                        .zip(token_type)
                        .map(|((a, b), c)| a + b + c),
                );
            }
        }
        let norm = &w.embedding_norm;
        layer_norm(
            &mut hidden,
            &norm.gamma,
            &norm.beta,
            self.config.layer_norm_eps as f32,
        );
        hidden
    }

    /// Scaled dot-product attention of each text over its own tokens, head by head, reading the
    /// heads' columns of `qkv` in place and writing each head's columns of `context`.
    fn attention(&self, texts: &[Tokens<'_>], qkv: &[f32], context: &mut [f32]) {
        let h = self.config.hidden_size;
        // Each text attends over its own rows only, so texts are independent tasks: split
        // `qkv` and `context` at text boundaries and hand the pieces to rayon.
        let mut work = Vec::with_capacity(texts.len());
        let (mut qkv, mut context) = (qkv, context);
        for t in texts {
            let n = t.ids.len();
            let (rows, rest) = qkv.split_at(n * 3 * h);
            let (out, rest_out) = std::mem::take(&mut context).split_at_mut(n * h);
            work.push((n, rows, out));
            (qkv, context) = (rest, rest_out);
        }
        match work.pop() {
            // One text (a lone prompt): its heads are the independent tasks.
            Some((n, rows, out)) if work.is_empty() => self.attend_heads_in_parallel(n, rows, out),
            last => {
                work.extend(last);
                work.into_par_iter()
                    .for_each(|(n, rows, out)| self.attend(n, rows, out));
            }
        }
    }

    /// One text's attention, head by head: reads the heads' columns of its `qkv` rows in place and
    /// writes each head's columns of its `context` rows.
    fn attend(&self, n: usize, rows: &[f32], context: &mut [f32]) {
        let (h, d) = (self.config.hidden_size, self.head_size());
        let mut scores = vec![0.0; n * n];
        for head in 0..self.config.num_attention_heads {
            let out = ViewMut {
                data: &mut context[head * d..],
                rows: n,
                cols: d,
                row_stride: h,
            };
            self.attend_head(n, rows, head, out, &mut scores);
        }
    }

    /// [`Self::attend`] with the heads spread over rayon's threads: each head writes its own
    /// `[n, head size]` block, copied into the heads' columns of `context` afterwards.
    fn attend_heads_in_parallel(&self, n: usize, rows: &[f32], context: &mut [f32]) {
        let (h, d) = (self.config.hidden_size, self.head_size());
        let mut blocks = vec![0.0; n * h];
        blocks
            .par_chunks_mut(n * d)
            .enumerate()
            .for_each(|(head, block)| {
                let out = ViewMut {
                    data: block,
                    rows: n,
                    cols: d,
                    row_stride: d,
                };
                self.attend_head(n, rows, head, out, &mut vec![0.0; n * n]);
            });
        for (head, block) in blocks.chunks_exact(n * d).enumerate() {
            for (r, values) in block.chunks_exact(d).enumerate() {
                context[r * h + head * d..][..d].copy_from_slice(values);
            }
        }
    }

    fn head_size(&self) -> usize {
        self.config.hidden_size / self.config.num_attention_heads
    }

    /// One head: softmax(q·kᵀ / √d) · v over the text's `n` rows, into `out`.
    fn attend_head(
        &self,
        n: usize,
        rows: &[f32],
        head: usize,
        out: ViewMut<'_>,
        scores: &mut [f32],
    ) {
        let (h, d) = (self.config.hidden_size, self.head_size());
        let scale = 1.0 / (d as f32).sqrt();
        let at = |part: usize| View {
            data: &rows[part * h + head * d..],
            rows: n,
            cols: d,
            row_stride: 3 * h,
        };
        let (q, k, v) = (at(0), at(1), at(2));
        product(
            ViewMut {
                data: scores,
                rows: n,
                cols: n,
                row_stride: n,
            },
            q,
            k,
            Rhs::Transposed,
            scale,
            false,
        );
        softmax_rows(scores, n);
        product(out, view(scores, n, n), v, Rhs::AsIs, 1.0, false);
    }

    fn mean_pool(texts: &[Tokens<'_>], hidden: &[f32], h: usize) -> Vec<Vec<f32>> {
        let mut first = 0;
        texts
            .iter()
            .map(|t| {
                let n = t.ids.len();
                let mut mean = vec![0.0f32; h];
                for row in hidden[first * h..(first + n) * h].chunks_exact(h) {
                    mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                }
                first += n;
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                // Dividing by the count and then by the norm is one division by the norm of the sum.
                mean.iter_mut().for_each(|v| *v /= norm);
                mean
            })
            .collect()
    }
}
