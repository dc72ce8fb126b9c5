//! prunelab patch (see `docs/operations.md`, "The burn-flex patch"): what
//! the NCHW kernels (`conv2d_nchw`, `batch_norm_nchw`) share — the float
//! types they are written for, running them in a tensor's own precision,
//! and splitting work over rayon's threads.

use core::ops::{Add, AddAssign, Mul};

use burn_backend::{DType, Element};
use burn_std::{Bytes, bf16, f16};
use bytemuck::Pod;

use crate::{FlexTensor, Layout};

// Private copies of `module.rs`'s two converters (as upstream's
// `attention.rs` keeps its own): importing them from `module` made a loop,
// module → conv2d_nchw/batch_norm_nchw → real → module.

/// A half-precision tensor widened to f32.
fn cast_to_f32<E: Element + Pod + Copy>(tensor: FlexTensor, to_f32: fn(E) -> f32) -> FlexTensor {
    let tensor = tensor.to_contiguous();
    let shape = tensor.layout().shape().clone();
    let data: &[E] = tensor.storage();
    let f32_data: alloc::vec::Vec<f32> = data.iter().map(|&v| to_f32(v)).collect();
    FlexTensor::new(Bytes::from_elems(f32_data), Layout::contiguous(shape), DType::F32)
}

/// An f32 tensor narrowed back to half precision `E`.
fn cast_from_f32<E: Element + Pod + Copy>(tensor: FlexTensor, from_f32: fn(f32) -> E) -> FlexTensor {
    let tensor = tensor.to_contiguous();
    let shape = tensor.layout().shape().clone();
    let data: &[f32] = tensor.storage();
    let half_data: alloc::vec::Vec<E> = data.iter().map(|&v| from_f32(v)).collect();
    FlexTensor::new(Bytes::from_elems(half_data), Layout::contiguous(shape), E::dtype())
}

/// The element types the kernels are written for (f16 and bf16 run through f32).
pub(crate) trait Real:
    bytemuck::Pod
    + Copy
    + Send
    + Sync
    + 'static
    + Element
    + AddAssign
    + Add<Output = Self>
    + Mul<Output = Self>
    + num_traits::Zero
{
    const ONE: Self;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl Real for f32 {
    const ONE: Self = 1.0;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    const ONE: Self = 1.0;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// A kernel from `N` tensors to `M`, written once for every [`Real`];
/// `dtype` is the one its outputs are made in.
pub(crate) trait Kernel<const N: usize, const M: usize> {
    fn run<T: Real>(self, inputs: [FlexTensor; N], dtype: DType) -> [FlexTensor; M];
}

/// Runs `kernel` in the precision of `inputs[0]`: f32 and f64 as they are,
/// f16 and bf16 converted to f32 and the outputs converted back.
pub(crate) fn in_precision<K: Kernel<N, M>, const N: usize, const M: usize>(
    what: &str,
    kernel: K,
    inputs: [FlexTensor; N],
) -> [FlexTensor; M] {
    match inputs[0].dtype() {
        DType::F32 => kernel.run::<f32>(inputs, DType::F32),
        DType::F64 => kernel.run::<f64>(inputs, DType::F64),
        DType::F16 => kernel
            .run::<f32>(inputs.map(|t| cast_to_f32(t, f16::to_f32)), DType::F32)
            .map(|t| cast_from_f32(t, f16::from_f32)),
        DType::BF16 => kernel
            .run::<f32>(inputs.map(|t| cast_to_f32(t, bf16::to_f32)), DType::F32)
            .map(|t| cast_from_f32(t, bf16::from_f32)),
        dtype => panic!("{what}: unsupported dtype {dtype:?}"),
    }
}

/// `f(i, chunk)` for each `len`-long chunk of `out` (in parallel with rayon).
pub(crate) fn for_each_chunk<T: Send>(out: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(len.max(1)).enumerate().for_each(|(i, o)| f(i, o));
    }
    #[cfg(not(feature = "rayon"))]
    for (i, o) in out.chunks_mut(len.max(1)).enumerate() {
        f(i, o);
    }
}

/// `f(i, chunk, scratch)` for each `len`-long chunk of `out`, in parallel
/// with rayon, with a `scratch`-long buffer per worker reused across its
/// chunks (one allocation per rayon split, not one per chunk).
pub(crate) fn for_each_chunk_with<T: Send + bytemuck::Pod>(
    out: &mut [T],
    len: usize,
    scratch: usize,
    f: impl Fn(usize, &mut [T], &mut [T]) + Sync + Send,
) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(len.max(1))
            .enumerate()
            .for_each_init(|| alloc::vec![<T as bytemuck::Zeroable>::zeroed(); scratch], |buf, (i, o)| f(i, o, buf));
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut buf = alloc::vec![<T as bytemuck::Zeroable>::zeroed(); scratch];
        for (i, o) in out.chunks_mut(len.max(1)).enumerate() {
            f(i, o, &mut buf);
        }
    }
}

/// `f(i)` for `i` in `0..n` (in parallel with rayon).
pub(crate) fn map_range<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> alloc::vec::Vec<R> {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..n).into_par_iter().map(f).collect()
    }
    #[cfg(not(feature = "rayon"))]
    (0..n).map(f).collect()
}
