//! Batches. The order of epoch `e` and the augmentation of batch `b` depend
//! only on `(seed, e, b)`, so a run resumed in the middle of an epoch sees
//! exactly the batches an uninterrupted run would have seen.

use burn::tensor::{Device, Int, IntDType, Tensor, TensorData};

use super::augment::{self, Normalization};
use super::dataset::{Dataset, Features};
use crate::base::rng;

/// Inputs `[N, C, H, W]` and class labels `[N]` on a device.
#[derive(Debug, Clone)]
pub struct Batch {
    pub x: Tensor<4>,
    pub y: Tensor<1, Int>,
    pub len: usize,
}

/// How a data set is cut into batches.
#[derive(Debug, Clone)]
pub struct Loader<'a> {
    pub data: &'a Dataset,
    pub norm: Option<Normalization>,
    pub batch_size: usize,
    /// A new random order every epoch.
    pub shuffle: bool,
    /// Pad-4 crop and flip (images only).
    pub augment: bool,
    pub seed: u64,
}

impl<'a> Loader<'a> {
    /// A loader that visits the data in order, without augmentation.
    pub fn sequential(data: &'a Dataset, norm: Option<Normalization>, batch_size: usize) -> Self {
        Loader {
            data,
            norm,
            batch_size,
            shuffle: false,
            augment: false,
            seed: 0,
        }
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.data.len().div_ceil(self.batch_size)
    }

    /// The example order of `epoch` (identity for a sequential loader).
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        if self.shuffle {
            rng::permutation(
                &mut rng::stream(self.seed, "shuffle", epoch as u64),
                self.data.len(),
            )
        } else {
            (0..self.data.len()).collect()
        }
    }

    /// Batch `index` of an epoch whose order is `order`.
    pub fn batch(&self, order: &[usize], epoch: usize, index: usize, device: &Device) -> Batch {
        let start = index * self.batch_size;
        let end = (start + self.batch_size).min(order.len());
        let mut rand = rng::stream(self.seed, "augment", ((epoch as u64) << 32) | index as u64);
        let augment = self.augment && matches!(self.data.features, Features::Bytes(_));
        make_batch(
            self.data,
            &order[start..end],
            self.norm.as_ref(),
            augment.then_some(&mut rand),
            device,
        )
    }
}

/// Builds one batch of the examples at `indices`.
pub fn make_batch(
    data: &Dataset,
    indices: &[usize],
    norm: Option<&Normalization>,
    mut augment: Option<&mut rng::Rand>,
    device: &Device,
) -> Batch {
    let size = data.example_size();
    let mut x = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        match &data.features {
            Features::Floats(f) => x.extend_from_slice(&f[i * size..(i + 1) * size]),
            Features::Bytes(b) => {
                let identity = Normalization {
                    mean: [0.0; 3],
                    std: [1.0; 3],
                };
                augment::image_into(
                    &b[i * size..(i + 1) * size],
                    data.shape,
                    norm.unwrap_or(&identity),
                    augment.as_deref_mut().map(|r| (r, 4)),
                    &mut x,
                );
            }
        }
    }
    let [c, h, w] = data.shape;
    let n = indices.len();
    Batch {
        x: Tensor::from_data(TensorData::new(x, [n, c, h, w]), device),
        y: Tensor::from_data(labels(data, indices, device), device),
        len: n,
    }
}

/// The labels in the device's own integer type. Handing `i64` to a device
/// that keeps `i32` makes burn convert on every batch through a function
/// that covers every pair of types — 140 kB of WebAssembly that V8 takes
/// over a second to optimise, while the page's first epochs wait in its
/// baseline tier.
fn labels(data: &Dataset, indices: &[usize], device: &Device) -> TensorData {
    let n = indices.len();
    match device.settings().int_dtype {
        IntDType::I32 => {
            let v: Vec<i32> = indices.iter().map(|&i| data.labels[i] as i32).collect();
            TensorData::new(v, [n])
        }
        _ => {
            let v: Vec<i64> = indices.iter().map(|&i| data.labels[i] as i64).collect();
            TensorData::new(v, [n])
        }
    }
}
