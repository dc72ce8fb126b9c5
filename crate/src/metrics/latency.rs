//! Measured forward latency — what a user of a pruned model feels, which MACs
//! only predict ("it did not get faster" is the most common complaint about
//! pruning tools). Inputs are the first training examples: measuring draws
//! nothing from any random stream (a run's results do not depend on it), and
//! the test split stays read only for the accuracy it reports.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::base::error::Result;
use crate::base::host;
use crate::data::Split;
use crate::model::Model;
use crate::model::geometry::LayerOp;
use crate::model::spec::ModelSpec;

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
    let run = || {
        host::floats(
            model
                .forward(x.clone())
                .slice([0..1, 0..1])
                .flatten::<1>(0, 1),
        )
    };
    for _ in 1..warmup {
        run().await?;
    }
    time(repeats, run).await
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

/// A speed-up measured like for like: the dense and the pruned model timed
/// in one process, at one batch, one pass each in turn (the order swapped
/// every round, so drift and caches favour neither), after both warmed up.
/// Each round gives one ratio; `speedup` is their median and `lo`/`hi` the
/// interquartile range — the spread a reader needs before believing 1.9×
/// against 1.5× for two identical architectures (which two timings taken
/// minutes apart gave).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    pub batch: usize,
    pub rounds: usize,
    /// Median milliseconds per pass of each model, over the same rounds.
    pub dense_ms: f64,
    pub pruned_ms: f64,
    /// Median of the per-round ratios dense / pruned.
    pub speedup: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Rounds of [`paired`]: enough for a stable median and quartiles.
pub const PAIRED_ROUNDS: usize = 15;

/// [`Paired`] for `dense` against `pruned` (both in eval mode) on the first
/// `batch` training inputs.
pub async fn paired(
    dense: &Model,
    pruned: &Model,
    split: &Split,
    batch: usize,
    device: &Device,
    rounds: usize,
) -> Result<Paired> {
    let (dense, pruned) = (dense.valid(), pruned.valid());
    let x = inputs(split, batch, device);
    let batch = x.dims()[0];
    for _ in 0..WARMUP {
        one_pass(&dense, &x).await?;
        one_pass(&pruned, &x).await?;
    }
    let rounds = rounds.max(1);
    let (mut d, mut p, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, b) = if round % 2 == 0 {
            let a = one_pass(&dense, &x).await?;
            (a, one_pass(&pruned, &x).await?)
        } else {
            let b = one_pass(&pruned, &x).await?;
            (one_pass(&dense, &x).await?, b)
        };
        d.push(a);
        p.push(b);
        ratios.push(a / b.max(1e-9));
    }
    let quantile = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    Ok(Paired {
        batch,
        rounds,
        dense_ms: quantile(&mut d, 0.5),
        pruned_ms: quantile(&mut p, 0.5),
        speedup: quantile(&mut ratios, 0.5),
        lo: quantile(&mut ratios, 0.25),
        hi: quantile(&mut ratios, 0.75),
    })
}

/// Milliseconds of one forward pass of `x`, ended on a read.
async fn one_pass(model: &Model, x: &Tensor<4>) -> Result<f64> {
    let start = crate::base::clock::now();
    host::floats(
        model
            .forward(x.clone())
            .slice([0..1, 0..1])
            .flatten::<1>(0, 1),
    )
    .await?;
    Ok(1000.0 * (crate::base::clock::now() - start))
}

/// One parameterised layer's forward time, measured alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerTime {
    pub name: String,
    pub ms: f64,
}

/// Each conv and linear layer of `spec` timed alone at `batch` (its input
/// made of ones at its own shape; median of `repeats` after one warm-up):
/// where the time goes, and what a pruned layer saves, which the whole
/// model's latency cannot say. BN, ReLU and pooling are not timed (their cost
/// is O(activations) and burn fuses them on the GPU).
pub async fn per_layer(
    spec: &ModelSpec,
    batch: usize,
    device: &Device,
    repeats: usize,
) -> Result<Vec<LayerTime>> {
    let mut out = Vec::new();
    for layer in spec.layers() {
        let ms = match layer.op {
            LayerOp::Conv {
                c_in,
                c_out,
                kernel,
                stride,
            } => {
                let hw = layer.out_hw * stride;
                let x = Tensor::<4>::ones([batch, c_in, hw, hw], device);
                let w = Tensor::<4>::ones([c_out, c_in, kernel, kernel], device);
                let pad = kernel / 2;
                time(repeats, || {
                    host::floats(
                        crate::model::conv::conv2d(x.clone(), w.clone(), [stride; 2], [pad; 4])
                            .slice([0..1, 0..1, 0..1, 0..1])
                            .flatten::<1>(0, 3),
                    )
                })
                .await?
            }
            LayerOp::Linear { d_in, d_out } => {
                let x = Tensor::<2>::ones([batch, d_in], device);
                let w = Tensor::<2>::ones([d_in, d_out], device);
                time(repeats, || {
                    host::floats(
                        x.clone()
                            .matmul(w.clone())
                            .slice([0..1, 0..1])
                            .flatten::<1>(0, 1),
                    )
                })
                .await?
            }
            LayerOp::BatchNorm { .. } => continue,
        };
        out.push(LayerTime {
            name: layer.name,
            ms,
        });
    }
    Ok(out)
}

/// Median milliseconds of `repeats` runs of `run` after one untimed run.
async fn time<F, Fut>(repeats: usize, run: F) -> Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<f32>>>,
{
    run().await?;
    let mut times = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let start = crate::base::clock::now();
        run().await?;
        times.push(1000.0 * (crate::base::clock::now() - start));
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
