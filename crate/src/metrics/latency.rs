//! Measured forward latency — what a user of a pruned model feels, which MACs
//! only predict ("it did not get faster" is the most common complaint about
//! pruning tools). Inputs are the first training examples: measuring draws
//! nothing from any random stream (a run's results do not depend on it), and
//! the test split stays read only for the accuracy it reports.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::error::Result;
use crate::host;
use crate::model::Model;

/// Untimed passes first (kernel compilation, autotune, caches), then timed ones.
pub const WARMUP: usize = 3;
pub const REPEATS: usize = 10;

/// Forward latency of one model on one device, in milliseconds: the median
/// of [`REPEATS`] passes after [`WARMUP`], at batch 1 and at `batch`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub batch1_ms: f64,
    pub batch: usize,
    pub batch_ms: f64,
}

/// Median milliseconds of `repeats` forward passes of `x` after `warmup`
/// untimed ones; each pass ends on a read, so the device has finished.
pub async fn forward_ms(model: &Model, x: Tensor<4>, warmup: usize, repeats: usize) -> Result<f64> {
    let run = |x: Tensor<4>| host::floats(model.forward(x).slice([0..1, 0..1]));
    for _ in 0..warmup {
        run(x.clone()).await?;
    }
    let mut times = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let start = crate::clock::now();
        run(x.clone()).await?;
        times.push(1000.0 * (crate::clock::now() - start));
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The first `n` training inputs of `split` (fewer if the set is smaller),
/// as the model sees them.
pub fn inputs(split: &Split, n: usize, device: &Device) -> Tensor<4> {
    let indices: Vec<usize> = (0..n.min(split.train.len()).max(1)).collect();
    crate::data::loader::make_batch(&split.train, &indices, split.norm.as_ref(), None, device).x
}

/// `model`'s latency (in eval mode) at batch 1 and at `batch`.
pub async fn measure(
    model: &Model,
    split: &Split,
    batch: usize,
    device: &Device,
) -> Result<Latency> {
    let model = model.valid();
    let one = inputs(split, 1, device);
    let many = inputs(split, batch, device);
    let batch = many.dims()[0];
    Ok(Latency {
        batch1_ms: forward_ms(&model, one, WARMUP, REPEATS).await?,
        batch,
        batch_ms: forward_ms(&model, many, WARMUP, REPEATS).await?,
    })
}
