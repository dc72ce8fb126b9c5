//! Which kernel a convolution runs: burn's own, or im2col + burn's matmul.
//!
//! Why a second path: on Vulkan, burn 0.22's fast convolutions are
//! implicit-GEMM kernels that need tensor-core tiles, which for f32 switch
//! on only with tf32 — not exposed by burn's Vulkan backend — so autotune
//! falls back to one plain direct kernel for every dense f32 convolution
//! (44× slower than cuDNN for a 16-channel 3×3 forward on an H100; see
//! `../shared/notes/burn-0.22.md`). burn's *matmul* has no such restriction.
//! The `gemm` path writes a convolution as the matmul it is: the input's
//! `k×k` shifted, strided views stacked into columns `[N, C·k·k, H'·W']`
//! (im2col), times the filters `[C_out, C·k·k]`. Autodiff derives both
//! backward passes from the same matmul and slices (the input gradient is
//! the transposed matmul scattered back through the slices; the weight
//! gradient is a matmul with the columns), so forward and backward take
//! the fast kernel.
//!
//! `--conv auto|burn|gemm` chooses per process. `auto` takes `gemm` on native
//! GPUs (Vulkan), where burn's convolution is the direct kernel, and burn's
//! own elsewhere: the CPU has its GEMM convolution already (the burn-flex
//! patch) and WebGPU in the page is left as measured. The GPU session
//! (`bench/gpu-session.sh`) measures both paths side by side.

use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, s};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvPath {
    /// `gemm` on native GPUs, `burn` elsewhere.
    #[default]
    Auto,
    /// burn's `conv2d` (autotuned kernels).
    Burn,
    /// im2col + burn's matmul.
    Gemm,
}

impl FromStr for ConvPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "burn" => Ok(Self::Burn),
            "gemm" | "im2col" => Ok(Self::Gemm),
            _ => Err(Error::config(
                "conv",
                s,
                "choose auto, burn (burn's own kernels) or gemm (im2col + matmul)",
            )),
        }
    }
}

impl std::fmt::Display for ConvPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Burn => "burn",
            Self::Gemm => "gemm",
        })
    }
}

/// The process-wide choice (a front door sets it once, from `--conv`).
static PATH: AtomicU8 = AtomicU8::new(0);

pub fn set_path(path: ConvPath) {
    PATH.store(path as u8, Ordering::Relaxed);
}

pub fn path() -> ConvPath {
    match PATH.load(Ordering::Relaxed) {
        1 => ConvPath::Burn,
        2 => ConvPath::Gemm,
        _ => ConvPath::Auto,
    }
}

/// What `path` runs on `device`: `Burn` or `Gemm`.
pub fn resolve(path: ConvPath, device: &Device) -> ConvPath {
    match path {
        ConvPath::Auto => {
            let cpu = device.clone().without_autodiff() == Device::flex();
            if cpu || cfg!(target_arch = "wasm32") {
                ConvPath::Burn
            } else {
                ConvPath::Gemm
            }
        }
        chosen => chosen,
    }
}

/// `conv`'s forward on `x` through the chosen path.
pub fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match resolve(path(), &x.device()) {
        ConvPath::Gemm if conv.groups == 1 && conv.dilation == [1, 1] => match pads(conv) {
            Some(pads) => conv2d_gemm(
                x,
                conv.weight.val(),
                conv.bias.as_ref().map(|b| b.val()),
                conv.stride,
                pads,
            ),
            // `same` padding: not used by prunelab's layers; burn's kernel handles it.
            None => conv.forward(x),
        },
        _ => conv.forward(x),
    }
}

/// `conv`'s padding as (top, left, bottom, right); `None` for `same`, which
/// depends on the input.
pub fn pads(conv: &Conv2d) -> Option<[usize; 4]> {
    match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([top, left, bottom, right]),
        PaddingConfig2d::Valid => Some([0; 4]),
        PaddingConfig2d::Same => None,
    }
}

/// A bare convolution (groups 1, dilation 1) through the chosen path: what
/// per-layer latency times, so it measures the kernel training runs.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, stride: [usize; 2], pads: [usize; 4]) -> Tensor<4> {
    match resolve(path(), &x.device()) {
        ConvPath::Gemm => conv2d_gemm(x, weight, None, stride, pads),
        _ => {
            let [top, left, ..] = pads;
            let options = burn::tensor::ops::ConvOptions::new(stride, [top, left], [1, 1], 1);
            burn::tensor::module::conv2d(x, weight, None, options)
        }
    }
}

/// A 2-D convolution (groups 1, dilation 1) as im2col + matmul.
/// `x` `[N, C, H, W]`, `weight` `[C_out, C, kh, kw]`, `pads` (top, left,
/// bottom, right) → `[N, C_out, H', W']`.
pub fn conv2d_gemm(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    pads: [usize; 4],
) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let [c_out, _, kh, kw] = weight.dims();
    let [top, left, bottom, right] = pads;
    let ho = (h + top + bottom - kh) / stride[0] + 1;
    let wo = (w + left + right - kw) / stride[1] + 1;
    let x = if top + left + bottom + right > 0 {
        x.pad(
            (left, right, top, bottom),
            burn::tensor::ops::PadMode::Constant(0.0),
        )
    } else {
        x
    };
    let (sh, sw) = (stride[0] as isize, stride[1] as isize);
    // One strided view per kernel offset: [N, C, H', W'] each.
    let mut views = Vec::with_capacity(kh * kw);
    for dy in 0..kh {
        for dx in 0..kw {
            let (y0, x0) = (dy as isize, dx as isize);
            let y1 = y0 + ((ho - 1) * stride[0]) as isize + 1;
            let x1 = x0 + ((wo - 1) * stride[1]) as isize + 1;
            views.push(x.clone().slice(s![.., .., y0..y1;sh, x0..x1;sw]));
        }
    }
    // [N, C, kh·kw, H', W'] → columns [C·kh·kw, N·H'·W'] (C-major, then
    // kernel offset, as the weight flattens): one large GEMM for the whole
    // batch, and a weight gradient that is a plain matmul, not a sum over a
    // broadcast batch.
    let columns = match views.len() {
        1 => views.pop().expect("one view").reshape([n, c, ho * wo]),
        _ => Tensor::stack::<5>(views, 2).reshape([n, c * kh * kw, ho * wo]),
    }
    .swap_dims(0, 1)
    .reshape([c * kh * kw, n * ho * wo]);
    // Every matmul dimension padded with zeros to a multiple of 4 — the
    // forward's inner C·k·k, and N·H'·W' and C_out, the inner dimensions of
    // the two backward matmuls: burn's matmul on SwiftShader's Vulkan
    // returns wrong values otherwise (measured, [16, 18] × [18, 9]: off by
    // 13; with multiples of 4 it agrees to 1e-7), which would reach the
    // stem (C·k·k = 27) and pruned widths. Zeros change no product; the
    // padding is sliced off, and its gradients with it.
    let (rows, inner, cols) = (c_out, c * kh * kw, n * ho * wo);
    let filters = pad_to_4(weight.reshape([rows, inner]));
    let columns = pad_to_4(columns);
    let out = filters
        .matmul(columns)
        .slice(s![0..rows, 0..cols])
        .reshape([c_out, n, ho * wo])
        .swap_dims(0, 1)
        .reshape([n, c_out, ho, wo]);
    match bias {
        Some(b) => out + b.reshape([1, c_out, 1, 1]),
        None => out,
    }
}

/// `t` with zero rows and columns appended up to multiples of 4.
fn pad_to_4(t: Tensor<2>) -> Tensor<2> {
    let [r, c] = t.dims();
    let (r4, c4) = (r.next_multiple_of(4), c.next_multiple_of(4));
    if (r4, c4) == (r, c) {
        return t;
    }
    t.pad(
        [(0, r4 - r), (0, c4 - c)],
        burn::tensor::ops::PadMode::Constant(0.0),
    )
}
