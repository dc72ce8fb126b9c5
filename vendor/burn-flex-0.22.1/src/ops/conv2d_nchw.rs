//! prunelab patch (see `docs/operations.md`, "The burn-flex patch"): 2-D
//! convolution, forward and both backward passes, computed on NCHW data as
//! one GEMM per batch item against an im2col buffer, without layout changes.
//!
//! Why: burn's default `conv2d_weight_backward` runs the weight gradient as
//! a *forward* convolution of the batch-transposed input with the
//! batch-transposed output gradient — for a 32×32 feature map, a "kernel" of
//! 32×32 over 128 "channels", which flex's forward path turns into NHWC
//! copies, a 131,072-row im2col and a serial kernel transpose. The forward
//! path also converts every input to NHWC on one thread. Here:
//! - forward: `y_b[co, p] = Σ_c W[co, c] · col_b[c, p]`
//! - input gradient: for a centred size-keeping convolution (ResNet's
//!   3×3s), the forward convolution of `dy` with the kernel turned half a
//!   turn and its channel axes swapped; otherwise `col_b = Wᵀ · dy_b`,
//!   scattered back (col2im)
//! - weight gradient: `dW += dy_b · col_bᵀ`, one accumulator per thread
//!
//! where `c` runs over (input channel, kernel row, kernel column) of one
//! group and `p` over output positions. Batch items run in parallel (rayon).

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use super::conv2d_cols::{Geometry, col2im, im2col};
use super::real::{Kernel, Real, for_each_chunk_with, in_precision};
use crate::{FlexTensor, Layout};

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]`, each given by (row stride, column
/// stride); `dst` row-major with row stride `dst_rs`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm<T: Real>(
    mnk: (usize, usize, usize),
    dst: *mut T,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const T,
    lhs_strides: (usize, usize),
    rhs: *const T,
    rhs_strides: (usize, usize),
) {
    unsafe { gemm_strided(mnk, dst, (dst_rs, 1), accumulate, lhs, lhs_strides, rhs, rhs_strides) }
}

/// [`gemm`] with `dst` given by (row stride, column stride) too.
///
/// The `gemm` crate computes with the destination's rows contiguous and
/// copies ("packs") the left operand unless it is contiguous along `m`: an
/// operand contiguous along `k` is cheap only on the right. Callers orient
/// their products so that the large operand is the one that needs no copy.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_strided<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: *mut T,
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: *const T,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const T,
    (rhs_rs, rhs_cs): (usize, usize),
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

fn tensor<T: Real>(data: Vec<T>, shape: [usize; 4], dtype: DType) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(Shape::from(shape.to_vec())), dtype)
}

fn shape4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// Forward convolution.
pub(crate) fn conv2d<T: Real>(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let g = Geometry::new(&shape4(&x), &shape4(&weight), options);
    let bias = bias.map(|b| b.to_contiguous());
    let out = convolve::<T>(&g, x.storage(), weight.storage(), bias.as_ref().map(|b| b.storage()));
    tensor(out, [g.batch, g.c_out, g.oh, g.ow], dtype)
}

/// `y = conv(x, w) (+ b)` on NCHW data as one GEMM per image and group.
fn convolve<T: Real>(g: &Geometry, xs: &[T], ws: &[T], bs: Option<&[T]>) -> Vec<T> {
    let (rows, sp, cog) = (g.col_rows(), g.spatial(), g.c_out_group());
    let mut out = vec![T::zero(); g.batch * g.c_out * sp];
    // im2col writes every entry of its buffer, so one per worker serves all
    // of its images.
    for_each_chunk_with(&mut out, g.c_out * sp, rows * sp, |b, y, col| {
        for grp in 0..g.groups {
            let xb = &xs[(b * g.c_in + grp * g.c_in_group()) * g.h * g.w..];
            im2col(g, xb, col);
            let yg = &mut y[grp * cog * sp..(grp + 1) * cog * sp];
            if let Some(bs) = bs {
                for (co, plane) in yg.chunks_mut(sp).enumerate() {
                    plane.fill(bs[grp * cog + co]);
                }
            }
            unsafe {
                gemm(
                    (cog, sp, rows),
                    yg.as_mut_ptr(),
                    sp,
                    bs.is_some(),
                    ws[grp * cog * rows..].as_ptr(),
                    (rows, 1),
                    col.as_ptr(),
                    (sp, 1),
                )
            };
        }
    });
    out
}

/// `w'[c, co, i, j] = w[co, c, kh−1−i, kw−1−j]`: the kernel of
/// [`Geometry::transposed`].
fn rotated<T: Real>(g: &Geometry, ws: &[T]) -> Vec<T> {
    let (kh, kw, taps) = (g.kh, g.kw, g.kh * g.kw);
    let mut out = vec![T::zero(); ws.len()];
    for co in 0..g.c_out {
        for c in 0..g.c_in {
            let src = &ws[(co * g.c_in + c) * taps..][..taps];
            let dst = &mut out[(c * g.c_out + co) * taps..][..taps];
            for i in 0..kh {
                for j in 0..kw {
                    dst[i * kw + j] = src[(kh - 1 - i) * kw + (kw - 1 - j)];
                }
            }
        }
    }
    out
}

/// The gradient with respect to the input.
pub(crate) fn conv2d_x_backward<T: Real>(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor {
    let (weight, dy) = (weight.to_contiguous(), output_grad.to_contiguous());
    let g = Geometry::new(&shape4(&x), &shape4(&weight), options);
    let (ws, dys): (&[T], &[T]) = (weight.storage(), dy.storage());
    if let Some(t) = g.transposed() {
        // A centred size-keeping convolution's input gradient is the same
        // convolution of `dy` with the kernel turned half a turn and its
        // channel axes swapped. As a forward pass it is one GEMM with the sum
        // over `c_out · kh · kw` writing `dx` itself; the route below sums
        // over `c_out` alone (16 in ResNet's first stage) into a 9× larger
        // buffer that col2im then adds back.
        let dx = convolve(&t, dys, &rotated(&g, ws), None);
        return tensor(dx, [g.batch, g.c_in, g.h, g.w], dtype);
    }
    let (rows, sp, cog) = (g.col_rows(), g.spatial(), g.c_out_group());
    let mut dx = vec![T::zero(); g.batch * g.c_in * g.h * g.w];
    // The GEMM overwrites the whole buffer: one per worker.
    for_each_chunk_with(&mut dx, g.c_in * g.h * g.w, rows * sp, |b, dxb, col| {
        for grp in 0..g.groups {
            // col = W_gᵀ · dy_b,g : W_g is [cog, rows] row-major.
            unsafe {
                gemm(
                    (rows, sp, cog),
                    col.as_mut_ptr(),
                    sp,
                    false,
                    ws[grp * cog * rows..].as_ptr(),
                    (1, rows),
                    dys[(b * g.c_out + grp * cog) * sp..].as_ptr(),
                    (sp, 1),
                )
            };
            let plane = g.c_in_group() * g.h * g.w;
            col2im(&g, col, &mut dxb[grp * plane..(grp + 1) * plane]);
        }
    });
    tensor(dx, [g.batch, g.c_in, g.h, g.w], dtype)
}

/// The gradient with respect to the weight.
pub(crate) fn conv2d_weight_backward<T: Real>(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor {
    let (x, dy) = (x.to_contiguous(), output_grad.to_contiguous());
    let w_shape = shape4(&weight);
    let g = Geometry::new(&shape4(&x), &w_shape, options);
    let (xs, dys): (&[T], &[T]) = (x.storage(), dy.storage());
    let (rows, sp, cog) = (g.col_rows(), g.spatial(), g.c_out_group());
    let len = g.c_out * rows;
    // One accumulator per contiguous run of batch items, summed at the end.
    // Each holds dW_g transposed, `[rows, cog]` per group: `gemm` then reads
    // the im2col buffer (`rows × sp`, contiguous along the sum) as its right
    // operand without copying it, and copies only the smaller `dy` (`cog ×
    // sp`). Computed as `dW_g` itself, `gemm` would copy and transpose the
    // whole im2col buffer for every image.
    let accumulate = |items: core::ops::Range<usize>| {
        let mut dwt = vec![T::zero(); len];
        let mut col = vec![T::zero(); rows * sp];
        for b in items {
            for grp in 0..g.groups {
                im2col(&g, &xs[(b * g.c_in + grp * g.c_in_group()) * g.h * g.w..], &mut col);
                // dW_gᵀ += (dy_b,g · colᵀ)ᵀ, written as dst[co, r] at r·cog + co
                unsafe {
                    gemm_strided(
                        (cog, rows, sp),
                        dwt[grp * cog * rows..].as_mut_ptr(),
                        (1, cog),
                        true,
                        dys[(b * g.c_out + grp * cog) * sp..].as_ptr(),
                        (sp, 1),
                        col.as_ptr(),
                        (1, sp),
                    )
                };
            }
        }
        dwt
    };
    #[cfg(feature = "rayon")]
    let partials: Vec<Vec<T>> = {
        use rayon::prelude::*;
        let chunks = rayon::current_num_threads().clamp(1, g.batch.max(1));
        (0..chunks)
            .into_par_iter()
            .map(|c| accumulate(c * g.batch / chunks..(c + 1) * g.batch / chunks))
            .collect()
    };
    #[cfg(not(feature = "rayon"))]
    let partials: Vec<Vec<T>> = vec![accumulate(0..g.batch)];
    let mut dwt = vec![T::zero(); len];
    for p in partials {
        for (d, v) in dwt.iter_mut().zip(p) {
            *d += v;
        }
    }
    // Back to `[c_out, rows]`, group by group.
    let mut dw = vec![T::zero(); len];
    for grp in 0..g.groups {
        let (src, dst) = (&dwt[grp * cog * rows..][..cog * rows], &mut dw[grp * cog * rows..][..cog * rows]);
        for r in 0..rows {
            for co in 0..cog {
                dst[co * rows + r] = src[r * cog + co];
            }
        }
    }
    tensor(dw, w_shape, dtype)
}

/// Which gradient to compute.
#[derive(Clone, Copy)]
pub(crate) enum Pass {
    InputGrad,
    WeightGrad,
}

/// A backward pass in the tensors' own precision (f16/bf16 through f32).
pub(crate) fn backward(
    pass: Pass,
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let [grad] = in_precision("conv2d backward", Backward { pass, options }, [output_grad, x, weight]);
    grad
}

struct Backward<'a> {
    pass: Pass,
    options: &'a ConvOptions<2>,
}
impl Kernel<3, 1> for Backward<'_> {
    fn run<T: Real>(self, [dy, x, w]: [FlexTensor; 3], dtype: DType) -> [FlexTensor; 1] {
        [match self.pass {
            Pass::InputGrad => conv2d_x_backward::<T>(x, w, dy, self.options, dtype),
            Pass::WeightGrad => conv2d_weight_backward::<T>(x, w, dy, self.options, dtype),
        }]
    }
}
