//! A linear layer, `y = x · Wᵀ + b`, with its weight cut into panels of [`PANEL`] outputs.
//!
//! At batch 1 the encoder multiplies ~16 token rows by each weight once, so it is bound by reading
//! the weights (42 MB for all-MiniLM-L6-v2, more than this machine's 32 MB L3), not by arithmetic.
//! Measured on one `[384 → 1536]` layer over 16 rows, cycling through 42 MB of such weights:
//! PyTorch's `[out, in]` layout made gemm repack the weight on every call (343 µs); the transposed
//! `[in, out]` layout avoided that but read it 6 KB apart per step (313 µs); panels of 32 outputs,
//! each stored `[in][32]` contiguously and handed to gemm as a matrix of its own, stream through
//! memory in order and split across threads by panel (173 µs on 2 threads).

use super::math::gelu;
use super::matmul::{Rhs, View, ViewMut, product};
use rayon::prelude::*;

/// Outputs per panel: 32 measured fastest at 16 rows (above) and within 10% of whole-matrix gemm
/// at 512 rows, where the arithmetic, not the reading, is the cost.
pub(super) const PANEL: usize = 32;

/// Below this many multiply-adds one thread is faster than handing panels to rayon.
const PARALLEL_FROM: usize = 1 << 18;

/// Rows from which [`Linear::apply`] copies its result back on all threads.
const GATHER_PARALLEL_FROM_ROWS: usize = 64;

pub(super) struct Linear {
    inputs: usize,
    outputs: usize,
    /// Panel p holds outputs `p·PANEL ..` (the last may be narrower), as `[inputs][width]`.
    panels: Vec<f32>,
    bias: Vec<f32>,
}

impl Linear {
    /// From PyTorch's layout: `weight` is `[outputs, inputs]`, `bias` is `[outputs]`.
    pub(super) fn from_torch(weight: &[f32], bias: Vec<f32>, inputs: usize) -> Self {
        let outputs = bias.len();
        debug_assert_eq!(weight.len(), inputs * outputs);
        let mut panels = Vec::with_capacity(weight.len());
        for first in (0..outputs).step_by(PANEL) {
            let last = (first + PANEL).min(outputs);
            for k in 0..inputs {
                panels.extend((first..last).map(|o| weight[o * inputs + k]));
            }
        }
        Linear {
            inputs,
            outputs,
            panels,
            bias,
        }
    }

    /// `out = act(x · Wᵀ + b)`, or `out += x · Wᵀ + b` with [`Output::AddTo`] (a residual already
    /// in `out`). `x` is `[rows, inputs]`, `out` is `[rows, outputs]`; `scratch` is resized to fit.
    pub(super) fn apply(
        &self,
        out: &mut [f32],
        x: &[f32],
        rows: usize,
        how: Output,
        scratch: &mut Vec<f32>,
    ) {
        if rows == 0 {
            return;
        }
        let (k, n) = (self.inputs, self.outputs);
        // Every value is overwritten by its panel's product: no need to zero what is reused.
        scratch.truncate(rows * n);
        scratch.resize(rows * n, 0.0);
        let x = View {
            data: x,
            rows,
            cols: k,
            row_stride: k,
        };
        let parallel = rows * n * k >= PARALLEL_FROM;
        // Panel p's product lands in its own [rows, width] block of `scratch`: blocks are disjoint
        // slices, so threads can each take some, and each finishes its block (bias, activation)
        // while it is still in that thread's cache.
        let panel = |(p, block): (usize, &mut [f32])| {
            let (first, width) = (p * PANEL, block.len() / rows);
            let weights = View {
                data: &self.panels[first * k..][..k * width],
                rows: k,
                cols: width,
                row_stride: width,
            };
            product(
                ViewMut {
                    data: block,
                    rows,
                    cols: width,
                    row_stride: width,
                },
                x,
                weights,
                Rhs::AsIs,
                1.0,
                false,
            );
            let bias = &self.bias[first..first + width];
            for values in block.chunks_exact_mut(width) {
                values.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            }
            if let Output::Gelu = how {
                gelu(block);
            }
        };
        if parallel {
            scratch
                .par_chunks_mut(rows * PANEL)
                .enumerate()
                .for_each(panel);
        } else {
            scratch.chunks_mut(rows * PANEL).enumerate().for_each(panel);
        }
        // Back to row-major `[rows, outputs]`, the layout the next product reads.
        let blocks = &scratch[..];
        let gather = |(r, dst): (usize, &mut [f32])| {
            for (p, block) in blocks.chunks(rows * PANEL).enumerate() {
                let width = block.len() / rows;
                let src = &block[r * width..][..width];
                let dst = &mut dst[p * PANEL..][..width];
                match how {
                    Output::AddTo => dst.iter_mut().zip(src).for_each(|(o, v)| *o += v),
                    Output::Set | Output::Gelu => dst.copy_from_slice(src),
                }
            }
        };
        // Copying back is cheap next to the product: a single text's rows (~16) are not worth
        // waking the other threads for.
        if rows >= GATHER_PARALLEL_FROM_ROWS {
            out.par_chunks_mut(n).enumerate().for_each(gather);
        } else {
            out.chunks_mut(n).enumerate().for_each(gather);
        }
    }
}

/// What [`Linear::apply`] does with its result.
#[derive(Clone, Copy)]
pub(super) enum Output {
    /// Write it.
    Set,
    /// Write its GELU.
    Gelu,
    /// Add it to what the output holds.
    AddTo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_compute_the_torch_layout_product_for_any_width() {
        // 70 outputs: two full panels and a narrower one; 3 and 40 rows: one thread and several.
        let (inputs, outputs) = (9, 70);
        let weight: Vec<f32> = (0..inputs * outputs)
            .map(|i| (i as f32 * 0.013).sin())
            .collect();
        let bias: Vec<f32> = (0..outputs).map(|i| i as f32 * 0.5).collect();
        let layer = Linear::from_torch(&weight, bias.clone(), inputs);
        for rows in [3usize, 40 * 1024] {
            let x: Vec<f32> = (0..rows * inputs).map(|i| (i as f32 * 0.7).cos()).collect();
            let mut out = vec![1.0; rows * outputs];
            layer.apply(&mut out, &x, rows, Output::AddTo, &mut Vec::new());
            for r in [0, rows / 2, rows - 1] {
                for o in 0..outputs {
                    let want: f32 = 1.0
                        + bias[o]
                        + (0..inputs)
                            .map(|k| x[r * inputs + k] * weight[o * inputs + k])
                            .sum::<f32>();
                    assert!(
                        (out[r * outputs + o] - want).abs() < 1e-4,
                        "row {r} output {o}"
                    );
                }
            }
        }
    }
}
