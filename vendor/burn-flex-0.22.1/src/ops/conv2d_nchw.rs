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
//! - input gradient: `col_b = Wᵀ · dy_b`, scattered back (col2im)
//! - weight gradient: `dW += dy_b · col_bᵀ`, one accumulator per thread
//!
//! where `c` runs over (input channel, kernel row, kernel column) of one
//! group and `p` over output positions. Batch items run in parallel (rayon).

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use super::real::{Kernel, Real, for_each_chunk_with, in_precision};
use crate::{FlexTensor, Layout};

/// The sizes of one 2-D convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Geometry {
    fn new(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Self {
        let out = |i: usize, size: usize, k: usize| {
            let (begin, end) = options.padding[i];
            (size + begin + end - options.dilation[i] * (k - 1) - 1) / options.stride[i] + 1
        };
        Self {
            batch: x[0],
            c_in: x[1],
            h: x[2],
            w: x[3],
            c_out: weight[0],
            kh: weight[2],
            kw: weight[3],
            oh: out(0, x[2], weight[2]),
            ow: out(1, x[3], weight[3]),
            stride: options.stride,
            pad: [options.padding[0].0, options.padding[1].0],
            dilation: options.dilation,
            groups: options.groups,
        }
    }
    fn c_in_group(&self) -> usize {
        self.c_in / self.groups
    }
    fn c_out_group(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of one group's im2col buffer.
    fn col_rows(&self) -> usize {
        self.c_in_group() * self.kh * self.kw
    }
    fn spatial(&self) -> usize {
        self.oh * self.ow
    }
    /// Stride 1, no dilation, and the output the input's size, with the
    /// kernel inside the padding (every shift at most the padding).
    fn keeps_size(&self) -> bool {
        self.stride == [1, 1]
            && self.dilation == [1, 1]
            && self.oh == self.h
            && self.ow == self.w
            && self.pad[0] < self.kh
            && self.pad[1] < self.kw
    }
    /// `[lo, hi)`: the output columns whose input column `ox·s + off` is inside the image.
    fn valid_cols(&self, off: isize) -> (usize, usize) {
        let s = self.stride[1] as isize;
        let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
        let hi = if (self.w as isize) <= off {
            0
        } else {
            ((self.w as isize - off + s - 1) / s).min(self.ow as isize)
        };
        let lo = (lo as usize).min(self.ow);
        (lo, (hi.max(0) as usize).max(lo))
    }
    /// The input row read by output row `oy` at kernel row `i`, if inside the image.
    fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        let y = (oy * self.stride[0] + i * self.dilation[0]) as isize - self.pad[0] as isize;
        (y >= 0 && (y as usize) < self.h).then_some(y as usize)
    }
}

/// One image's (`x`: `[c_in_group, h, w]` of group `g`) patches as
/// `col[(c, i, j), p]`.
fn im2col<T: Real>(g: &Geometry, x: &[T], col: &mut [T]) {
    if g.keeps_size() {
        return im2col_same(g, x, col);
    }
    let (hw, sp) = (g.h * g.w, g.spatial());
    for c in 0..g.c_in_group() {
        let plane = &x[c * hw..(c + 1) * hw];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * sp..][..sp];
                let off = (j * g.dilation[1]) as isize - g.pad[1] as isize;
                let (lo, hi) = g.valid_cols(off);
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    let Some(y) = g.input_row(oy, i) else {
                        out.fill(T::zero());
                        continue;
                    };
                    let src = &plane[y * g.w..(y + 1) * g.w];
                    out[..lo].fill(T::zero());
                    out[hi..].fill(T::zero());
                    if g.stride[1] == 1 {
                        let start = (lo as isize + off) as usize;
                        out[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for (ox, v) in out.iter_mut().enumerate().take(hi).skip(lo) {
                            *v = src[(ox as isize * g.stride[1] as isize + off) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// `im2col` for a size-keeping convolution (stride 1, no dilation, the
/// output as large as the input: a 3×3 with padding 1). Each patch row is
/// then the whole input plane shifted by `dy·w + dx` — one copy, not one per
/// output row (rows of 8 to 32 values, each a `memcpy` call, were a fifth of
/// a ResNet-20 training step) — with the rows shifted in from outside the
/// image and the columns that wrapped around set to zero.
fn im2col_same<T: Real>(g: &Geometry, x: &[T], col: &mut [T]) {
    let (h, w) = (g.h, g.w);
    let hw = h * w;
    for c in 0..g.c_in_group() {
        let plane = &x[c * hw..(c + 1) * hw];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * hw..][..hw];
                let dy = i as isize - g.pad[0] as isize;
                let dx = j as isize - g.pad[1] as isize;
                let shift = dy * w as isize + dx;
                // Output positions whose source index lies in the plane.
                let lo = (-shift).clamp(0, hw as isize) as usize;
                let hi = (hw as isize - shift).clamp(lo as isize, hw as isize) as usize;
                row[..lo].fill(T::zero());
                row[hi..].fill(T::zero());
                let start = (lo as isize + shift) as usize;
                row[lo..hi].copy_from_slice(&plane[start..start + (hi - lo)]);
                // Columns whose source wrapped onto the neighbouring row.
                let (c0, c1) = if dx < 0 { (0, (-dx) as usize) } else { (w.saturating_sub(dx as usize), w) };
                for oy in 0..h {
                    for ox in c0..c1.min(w) {
                        row[oy * w + ox] = T::zero();
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds each patch entry back onto its pixel.
fn col2im<T: Real>(g: &Geometry, col: &[T], dx: &mut [T]) {
    let (hw, sp) = (g.h * g.w, g.spatial());
    for c in 0..g.c_in_group() {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &col[((c * g.kh + i) * g.kw + j) * sp..][..sp];
                let off = (j * g.dilation[1]) as isize - g.pad[1] as isize;
                let (lo, hi) = g.valid_cols(off);
                for oy in 0..g.oh {
                    let Some(y) = g.input_row(oy, i) else { continue };
                    let src = &row[oy * g.ow..(oy + 1) * g.ow];
                    let dst = &mut plane[y * g.w..(y + 1) * g.w];
                    if g.stride[1] == 1 {
                        let start = (lo as isize + off) as usize;
                        for (d, s) in dst[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += *s;
                        }
                    } else {
                        for ox in lo..hi {
                            dst[(ox as isize * g.stride[1] as isize + off) as usize] += src[ox];
                        }
                    }
                }
            }
        }
    }
}

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
    let (xs, ws): (&[T], &[T]) = (x.storage(), weight.storage());
    let bias = bias.map(|b| b.to_contiguous());
    let bs: Option<&[T]> = bias.as_ref().map(|b| b.storage());
    let (rows, sp, cog) = (g.col_rows(), g.spatial(), g.c_out_group());
    let mut out = vec![T::zero(); g.batch * g.c_out * sp];
    // im2col writes every entry of its buffer, so one per worker serves all
    // of its images.
    for_each_chunk_with(&mut out, g.c_out * sp, rows * sp, |b, y, col| {
        for grp in 0..g.groups {
            let xb = &xs[(b * g.c_in + grp * g.c_in_group()) * g.h * g.w..];
            im2col(&g, xb, col);
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
    tensor(out, [g.batch, g.c_out, g.oh, g.ow], dtype)
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
