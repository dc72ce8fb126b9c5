//! prunelab patch (see `docs/operations.md`, "The burn-flex patch"):
//! training-mode batch normalisation and its backward pass as per-channel
//! loops over `[N, C, ...]` data.
//!
//! Why: burn's defaults compute the batch statistics and the gradients out
//! of tensor operations — each reduction swaps the batch and channel axes
//! and copies the tensor contiguous first (four such copies per layer and
//! step), and the broadcasts allocate a tensor each. Here each channel's
//! statistics are two passes over its planes (each plane summed in the
//! element type across many lanes, the planes added in f64: `lanes.rs`), and
//! the output one more, with the same formulas as the defaults.

use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{Bytes, Shape};

use super::lanes::{channel_sum, channel_sum_and_dot, channel_sum_squares, image_scale_shift, image_scale_shift2};
use super::real::{Kernel, Real, for_each_chunk, in_precision, map_range};
use crate::{FlexTensor, Layout};

/// `(batch, channels, plane)` of an `[N, C, ...]` shape.
fn dims(shape: &Shape) -> (usize, usize, usize) {
    let (n, c) = (shape[0], shape[1]);
    (n, c, shape.num_elements() / (n * c).max(1))
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
    let stats: Vec<(f64, f64)> = map_range(c, |ch| {
        let mean = channel_sum(xs, c, hw, ch) / count;
        let var = channel_sum_squares(xs, c, hw, ch, T::from_f64(-mean)) / count;
        (mean, var)
    });
    // y = x·a + b per channel, a = γ/√(σ²+ε), b = β − μ·a.
    let affine: Vec<(T, T)> = stats
        .iter()
        .enumerate()
        .map(|(ch, &(mean, var))| {
            let a = gamma[ch].to_f64() / (var + epsilon).sqrt();
            (T::from_f64(a), T::from_f64(beta[ch].to_f64() - mean * a))
        })
        .collect();
    let mut out: Vec<T> = alloc::vec![T::from_f64(0.0); xs.len()];
    for_each_chunk(&mut out, c * hw, |b, o| image_scale_shift(o, &xs[b * c * hw..(b + 1) * c * hw], hw, &affine));
    let output = FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(shape), dtype);
    let mean = vector(stats.iter().map(|s| T::from_f64(s.0)).collect(), dtype);
    let var = vector(stats.iter().map(|s| T::from_f64(s.1)).collect(), dtype);
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
            let a = gamma[ch].to_f64() / (var[ch].to_f64() + epsilon).sqrt();
            (T::from_f64(a), T::from_f64(beta[ch].to_f64() - mean[ch].to_f64() * a))
        })
        .collect();
    let mut out: Vec<T> = alloc::vec![T::from_f64(0.0); xs.len()];
    for_each_chunk(&mut out, c * hw, |b, o| image_scale_shift(o, &xs[b * c * hw..(b + 1) * c * hw], hw, &affine));
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
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v.to_f64() + epsilon).sqrt()).collect();
    // (Σ dy, Σ dy·x̂) per channel, x̂·√(σ²+ε) = x − μ summed first.
    let sums: Vec<(f64, f64)> = map_range(c, |ch| {
        let (sum, dot) = channel_sum_and_dot(dys, xs, c, hw, ch, T::from_f64(-mean[ch].to_f64()));
        (sum, dot * inv[ch])
    });
    // dx = γs·(dy − mean(dy) − (x − μ)·s·mean(dy·x̂)) = A·dy + B·x + C per channel.
    let coefficients: Vec<(T, T, T)> = (0..c)
        .map(|ch| {
            let (m, s) = (mean[ch].to_f64(), inv[ch]);
            let (mean_dy, mean_dot) = (sums[ch].0 / count, sums[ch].1 / count);
            let scale = gamma[ch].to_f64() * s;
            let slope = -scale * s * mean_dot;
            (T::from_f64(scale), T::from_f64(slope), T::from_f64(-scale * mean_dy - slope * m))
        })
        .collect();
    let mut dx: Vec<T> = alloc::vec![T::from_f64(0.0); xs.len()];
    let image = c * hw;
    for_each_chunk(&mut dx, image, |b, o| {
        let range = b * image..(b + 1) * image;
        image_scale_shift2(o, &dys[range.clone()], &xs[range], hw, &coefficients)
    });
    let x_grad = FlexTensor::new(Bytes::from_elems(dx), Layout::contiguous(shape), dtype);
    let gamma_grad = vector(sums.iter().map(|s| T::from_f64(s.1)).collect(), dtype);
    let beta_grad = vector(sums.iter().map(|s| T::from_f64(s.0)).collect(), dtype);
    (x_grad, gamma_grad, beta_grad)
}

struct Train {
    epsilon: f64,
}
impl Kernel<3, 3> for Train {
    fn run<T: Real>(self, [x, gamma, beta]: [FlexTensor; 3], _: DType) -> [FlexTensor; 3] {
        let (y, mean, var) = train::<T>(x, gamma, beta, self.epsilon);
        [y, mean, var]
    }
}

struct TrainBackward {
    epsilon: f64,
}
impl Kernel<5, 3> for TrainBackward {
    fn run<T: Real>(self, [x, gamma, mean, var, dy]: [FlexTensor; 5], _: DType) -> [FlexTensor; 3] {
        let (dx, dgamma, dbeta) = train_backward::<T>(x, gamma, mean, var, self.epsilon, dy);
        [dx, dgamma, dbeta]
    }
}

struct Inference {
    epsilon: f64,
}
impl Kernel<5, 1> for Inference {
    fn run<T: Real>(self, [x, gamma, beta, mean, var]: [FlexTensor; 5], _: DType) -> [FlexTensor; 1] {
        [inference::<T>(x, gamma, beta, mean, var, self.epsilon)]
    }
}

type Three = (FlexTensor, FlexTensor, FlexTensor);

/// `train` in the input's precision.
pub(crate) fn train_any(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> Three {
    let [y, mean, var] = in_precision("batch norm", Train { epsilon }, [x, gamma, beta]);
    (y, mean, var)
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
    let inputs = [x, gamma, mean, variance, output_grad];
    let [dx, dgamma, dbeta] = in_precision("batch norm backward", TrainBackward { epsilon }, inputs);
    (dx, dgamma, dbeta)
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
    let [y] = in_precision("batch norm", Inference { epsilon }, [x, gamma, beta, mean, variance]);
    y
}
