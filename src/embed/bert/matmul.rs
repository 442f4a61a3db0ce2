//! The encoder's one matrix product, through the `gemm` crate: pure Rust, picks AVX-512/AVX2/FMA
//! kernels at run time and splits large products over rayon's threads. Its entry point takes raw
//! pointers and strides, so this module checks every shape against its slice before the call.
#![allow(unsafe_code)]

/// A row-major matrix inside a slice: `rows` rows of `cols` values, `row_stride` apart (so a
/// column block of a wider matrix is a view too).
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) data: &'a [f32],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) row_stride: usize,
}

/// The destination of a product: like [`View`], writable.
pub(super) struct ViewMut<'a> {
    pub(super) data: &'a mut [f32],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) row_stride: usize,
}

/// How the right operand is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Rhs {
    /// `lhs · rhs`, with `rhs` of shape `[k, n]`.
    AsIs,
    /// `lhs · rhsᵀ`, with `rhs` of shape `[n, k]`: a linear layer's weight as PyTorch stores it.
    Transposed,
}

fn fits(len: usize, rows: usize, cols: usize, row_stride: usize) -> bool {
    rows == 0
        || cols == 0
        || (cols <= row_stride
            && (rows - 1)
                .checked_mul(row_stride)
                .and_then(|r| r.checked_add(cols))
                .is_some_and(|end| end <= len))
}

/// `out = scale · (lhs · op(rhs))`, or `out += scale · (lhs · op(rhs))` when `accumulate` (the
/// caller puts a bias or a residual in `out` first, and the product lands on it in one pass).
///
/// Panics if the shapes disagree: every caller derives them from one model config, so a mismatch
/// is a bug in this crate, never a consequence of input.
pub(super) fn product(
    out: ViewMut<'_>,
    lhs: View<'_>,
    rhs: View<'_>,
    how: Rhs,
    scale: f32,
    accumulate: bool,
) {
    let (k, n) = match how {
        Rhs::AsIs => (rhs.rows, rhs.cols),
        Rhs::Transposed => (rhs.cols, rhs.rows),
    };
    assert!(
        lhs.cols == k && out.rows == lhs.rows && out.cols == n,
        "matrix product of mismatched shapes"
    );
    assert!(
        fits(out.data.len(), out.rows, out.cols, out.row_stride)
            && fits(lhs.data.len(), lhs.rows, lhs.cols, lhs.row_stride)
            && fits(rhs.data.len(), rhs.rows, rhs.cols, rhs.row_stride),
        "matrix view outside its slice"
    );
    if out.rows == 0 || n == 0 {
        return;
    }
    let stride = |s: usize| s as isize; // each stride is at most a slice's length, which fits isize
    // In gemm's terms, element (i, j) of a matrix lives at `i * rs + j * cs`.
    let (rhs_cs, rhs_rs) = match how {
        Rhs::AsIs => (1, stride(rhs.row_stride)),
        Rhs::Transposed => (stride(rhs.row_stride), 1),
    };
    // SAFETY: `fits` proved above that every element (i, j) with i < rows and j < cols of each of
    // the three matrices, at i * row_stride + j, lies inside its slice; `out` is a unique borrow, so
    // it overlaps neither operand, and within `out` distinct (i, j) are distinct elements because
    // cols <= row_stride. gemm reads `k` columns of lhs, `k` rows of op(rhs) and writes the
    // `rows × n` block of `out`, exactly the extents checked. The raw-pointer interface is the only
    // one gemm offers; it is what lets the attention read a head's columns in place.
    unsafe {
        gemm::gemm(
            out.rows,
            n,
            k,
            out.data.as_mut_ptr(),
            1,
            stride(out.row_stride),
            accumulate,
            lhs.data.as_ptr(),
            1,
            stride(lhs.row_stride),
            rhs.data.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        (0..m * n)
            .map(|ij| (0..k).map(|p| a[ij / n * k + p] * b[p * n + ij % n]).sum())
            .collect()
    }

    #[test]
    fn both_layouts_accumulation_and_column_blocks_match_a_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[i % k * n + i / k]).collect();
        let want = naive(&a, &b, m, k, n);
        let lhs = View {
            data: &a,
            rows: m,
            cols: k,
            row_stride: k,
        };
        for (rhs, how) in [
            (
                View {
                    data: &b,
                    rows: k,
                    cols: n,
                    row_stride: n,
                },
                Rhs::AsIs,
            ),
            (
                View {
                    data: &bt,
                    rows: n,
                    cols: k,
                    row_stride: k,
                },
                Rhs::Transposed,
            ),
        ] {
            // Into columns 2..5 of a 5 × 6 matrix holding ones: accumulate adds to them.
            let mut out = vec![1.0f32; m * 6];
            let dst = ViewMut {
                data: &mut out[2..],
                rows: m,
                cols: n,
                row_stride: 6,
            };
            product(dst, lhs, rhs, how, 2.0, true);
            for i in 0..m {
                for j in 0..6 {
                    let expect = if (2..5).contains(&j) {
                        1.0 + 2.0 * want[i * n + j - 2]
                    } else {
                        1.0
                    };
                    assert!((out[i * 6 + j] - expect).abs() < 1e-5, "({i},{j})");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "outside its slice")]
    fn a_view_past_its_slice_is_refused_before_gemm_reads_it() {
        let a = [0.0f32; 6];
        let mut out = [0.0f32; 4];
        let lhs = View {
            data: &a,
            rows: 2,
            cols: 4,
            row_stride: 4,
        }; // needs 8 values
        let rhs = View {
            data: &a,
            rows: 1,
            cols: 4,
            row_stride: 4,
        };
        product(
            ViewMut {
                data: &mut out,
                rows: 2,
                cols: 1,
                row_stride: 1,
            },
            lhs,
            rhs,
            Rhs::Transposed,
            1.0,
            false,
        );
    }
}
