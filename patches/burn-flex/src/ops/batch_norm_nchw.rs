//! prunelab patch (see `docs/operations.md`, "The burn-flex patch"):
//! training-mode batch normalisation and its backward pass as per-channel
//! loops over `[N, C, ...]` data.
//!
//! Why: burn's defaults compute the batch statistics and the gradients out
//! of tensor operations — each reduction swaps the batch and channel axes
//! and copies the tensor contiguous first (four such copies per layer and
//! step), and the broadcasts allocate a tensor each. Here each channel's
//! statistics are two passes over its planes (sums in f64), and the output
//! one more, with the same formulas as the defaults.

use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// Element types handled here; half precision keeps burn's default path.
pub(crate) trait Real:
    bytemuck::Pod
    + Copy
    + Send
    + Sync
    + 'static
    + burn_backend::Element
    + core::ops::Mul<Output = Self>
    + core::ops::Add<Output = Self>
{
    fn to(self) -> f64;
    fn from(v: f64) -> Self;
}
impl Real for f32 {
    fn to(self) -> f64 {
        self as f64
    }
    fn from(v: f64) -> Self {
        v as f32
    }
}
impl Real for f64 {
    fn to(self) -> f64 {
        self
    }
    fn from(v: f64) -> Self {
        v
    }
}

/// `(batch, channels, plane)` of an `[N, C, ...]` shape.
fn dims(shape: &Shape) -> (usize, usize, usize) {
    let (n, c) = (shape[0], shape[1]);
    (n, c, shape.num_elements() / (n * c).max(1))
}

/// `f(c)` for every channel (in parallel with rayon).
fn per_channel<R: Send>(channels: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..channels).into_par_iter().map(f).collect()
    }
    #[cfg(not(feature = "rayon"))]
    (0..channels).map(f).collect()
}

/// `f(plane index, plane)` over the `N·C` planes of `out` (in parallel with rayon).
fn per_plane<T: Send>(out: &mut [T], plane: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(plane.max(1)).enumerate().for_each(|(i, o)| f(i, o));
    }
    #[cfg(not(feature = "rayon"))]
    for (i, o) in out.chunks_mut(plane.max(1)).enumerate() {
        f(i, o);
    }
}

fn vector<T: Real>(values: Vec<T>, dtype: DType) -> FlexTensor {
    let n = values.len();
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(alloc::vec![n])), dtype)
}

fn values<T: Real>(t: &FlexTensor) -> Vec<T> {
    t.to_contiguous().storage::<T>().to_vec()
}

/// `(output, mean, biased variance)`.
pub(crate) fn train<T: Real>(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dtype = x.dtype();
    let x = x.to_contiguous();
    let shape = x.layout().shape().clone();
    let (n, c, hw) = dims(&shape);
    let xs: &[T] = x.storage();
    let (gamma, beta) = (values::<T>(&gamma), values::<T>(&beta));
    let count = (n * hw) as f64;
    let planes = |ch: usize| (0..n).map(move |b| &xs[(b * c + ch) * hw..(b * c + ch + 1) * hw]);
    let stats: Vec<(f64, f64)> = per_channel(c, |ch| {
        let mean = planes(ch).flat_map(|p| p.iter()).map(|v| v.to()).sum::<f64>() / count;
        let var = planes(ch)
            .flat_map(|p| p.iter())
            .map(|v| (v.to() - mean).powi(2))
            .sum::<f64>()
            / count;
        (mean, var)
    });
    // y = x·a + b per channel, a = γ/√(σ²+ε), b = β − μ·a.
    let affine: Vec<(f64, f64)> = stats
        .iter()
        .enumerate()
        .map(|(ch, &(mean, var))| {
            let a = gamma[ch].to() / (var + epsilon).sqrt();
            (a, beta[ch].to() - mean * a)
        })
        .collect();
    let mut out: Vec<T> = alloc::vec![T::from(0.0); xs.len()];
    per_plane(&mut out, hw, |i, o| {
        let (a, b) = affine[i % c];
        for (y, v) in o.iter_mut().zip(&xs[i * hw..(i + 1) * hw]) {
            *y = T::from(v.to() * a + b);
        }
    });
    let output = FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(shape), dtype);
    let mean = vector(stats.iter().map(|s| T::from(s.0)).collect(), dtype);
    let var = vector(stats.iter().map(|s| T::from(s.1)).collect(), dtype);
    (output, mean, var)
}

/// Inference: `y = (x − μ)/√(σ²+ε)·γ + β` with given statistics, one pass.
pub(crate) fn inference<T: Real>(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    let dtype = x.dtype();
    let x = x.to_contiguous();
    let shape = x.layout().shape().clone();
    let (_, c, hw) = dims(&shape);
    let xs: &[T] = x.storage();
    let (gamma, beta) = (values::<T>(&gamma), values::<T>(&beta));
    let (mean, var) = (values::<T>(&mean), values::<T>(&variance));
    let affine: Vec<(T, T)> = (0..c)
        .map(|ch| {
            let a = gamma[ch].to() / (var[ch].to() + epsilon).sqrt();
            (T::from(a), T::from(beta[ch].to() - mean[ch].to() * a))
        })
        .collect();
    let mut out: Vec<T> = alloc::vec![T::from(0.0); xs.len()];
    per_plane(&mut out, hw, |i, o| {
        let (a, b) = affine[i % c];
        for (y, &v) in o.iter_mut().zip(&xs[i * hw..(i + 1) * hw]) {
            *y = v * a + b;
        }
    });
    FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(shape), dtype)
}

/// `(x_grad, gamma_grad, beta_grad)`, as burn's default: with
/// `x̂ = (x − μ)/√(σ²+ε)`, `dβ = Σ dy`, `dγ = Σ dy·x̂` and
/// `dx = γ/√(σ²+ε) · (dy − mean(dy) − x̂ · mean(dy·x̂))`.
pub(crate) fn train_backward<T: Real>(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dtype = x.dtype();
    let (x, dy) = (x.to_contiguous(), output_grad.to_contiguous());
    let shape = x.layout().shape().clone();
    let (n, c, hw) = dims(&shape);
    let (xs, dys): (&[T], &[T]) = (x.storage(), dy.storage());
    let (gamma, mean, var) = (values::<T>(&gamma), values::<T>(&mean), values::<T>(&variance));
    let count = (n * hw) as f64;
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v.to() + epsilon).sqrt()).collect();
    // (Σ dy, Σ dy·x̂) per channel.
    let sums: Vec<(f64, f64)> = per_channel(c, |ch| {
        let (m, s) = (mean[ch].to(), inv[ch]);
        let (mut sum, mut dot) = (0.0, 0.0);
        for b in 0..n {
            let range = (b * c + ch) * hw..(b * c + ch + 1) * hw;
            for (g, v) in dys[range.clone()].iter().zip(&xs[range]) {
                let g = g.to();
                sum += g;
                dot += g * (v.to() - m) * s;
            }
        }
        (sum, dot)
    });
    let mut dx: Vec<T> = alloc::vec![T::from(0.0); xs.len()];
    per_plane(&mut dx, hw, |i, o| {
        let ch = i % c;
        let (m, s) = (mean[ch].to(), inv[ch]);
        let (mean_dy, mean_dot) = (sums[ch].0 / count, sums[ch].1 / count);
        let scale = gamma[ch].to() * s;
        let range = i * hw..(i + 1) * hw;
        for ((d, g), v) in o.iter_mut().zip(&dys[range.clone()]).zip(&xs[range]) {
            let xhat = (v.to() - m) * s;
            *d = T::from(scale * (g.to() - mean_dy - xhat * mean_dot));
        }
    });
    let x_grad = FlexTensor::new(Bytes::from_elems(dx), Layout::contiguous(shape), dtype);
    let gamma_grad = vector(sums.iter().map(|s| T::from(s.1)).collect(), dtype);
    let beta_grad = vector(sums.iter().map(|s| T::from(s.0)).collect(), dtype);
    (x_grad, gamma_grad, beta_grad)
}

/// f32 and f64 run here; f16 and bf16 through f32.
fn precision<R>(
    dtype: DType,
    f32_run: impl FnOnce(&dyn Fn(FlexTensor) -> FlexTensor) -> R,
    f64_run: impl FnOnce() -> R,
    back: impl Fn(R, &dyn Fn(FlexTensor) -> FlexTensor) -> R,
) -> R {
    use super::module::{cast_from_f32, cast_to_f32};
    match dtype {
        DType::F32 => f32_run(&|t| t),
        DType::F64 => f64_run(),
        DType::F16 => back(
            f32_run(&|t| cast_to_f32::<half::f16>(t, half::f16::to_f32)),
            &|t| cast_from_f32::<half::f16>(t, half::f16::from_f32),
        ),
        DType::BF16 => back(
            f32_run(&|t| cast_to_f32::<half::bf16>(t, half::bf16::to_f32)),
            &|t| cast_from_f32::<half::bf16>(t, half::bf16::from_f32),
        ),
        dtype => panic!("batch norm: unsupported dtype {dtype:?}"),
    }
}

type Three = (FlexTensor, FlexTensor, FlexTensor);

/// `train` in the input's precision.
pub(crate) fn train_any(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> Three {
    let dtype = x.dtype();
    let (x2, g2, b2) = (x.clone(), gamma.clone(), beta.clone());
    precision(
        dtype,
        |to| train::<f32>(to(x), to(gamma), to(beta), epsilon),
        || train::<f64>(x2, g2, b2, epsilon),
        |(a, b, c), from| (from(a), from(b), from(c)),
    )
}

/// `train_backward` in the input's precision.
pub(crate) fn train_backward_any(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> Three {
    let dtype = x.dtype();
    let copies = (x.clone(), gamma.clone(), mean.clone(), variance.clone(), output_grad.clone());
    precision(
        dtype,
        |to| train_backward::<f32>(to(x), to(gamma), to(mean), to(variance), epsilon, to(output_grad)),
        || {
            let (x, g, m, v, dy) = copies;
            train_backward::<f64>(x, g, m, v, epsilon, dy)
        },
        |(a, b, c), from| (from(a), from(b), from(c)),
    )
}

/// `inference` in the input's precision.
pub(crate) fn inference_any(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    let dtype = x.dtype();
    let copies = (x.clone(), gamma.clone(), beta.clone(), mean.clone(), variance.clone());
    precision(
        dtype,
        |to| inference::<f32>(to(x), to(gamma), to(beta), to(mean), to(variance), epsilon),
        || {
            let (x, g, b, m, v) = copies;
            inference::<f64>(x, g, b, m, v, epsilon)
        },
        |y, from| from(y),
    )
}
