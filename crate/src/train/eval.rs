//! Evaluation: loss and accuracy of a model on a data set, in eval mode.

use burn::tensor::{Device, Tensor};

use super::step::{Trainable, correct, cross_entropy};
use crate::base::error::Result;
use crate::base::host;
use crate::data::Dataset;
use crate::data::augment::Normalization;
use crate::data::loader::Loader;

/// Mean loss and accuracy of `model` on `data` (no gradients, BN in eval mode).
pub async fn evaluate<M: Trainable>(
    model: &M,
    data: &Dataset,
    norm: Option<Normalization>,
    batch_size: usize,
    device: &Device,
) -> Result<(f32, f32)> {
    let Some(totals) = evaluation_totals(model, data, norm, batch_size, device) else {
        return Ok((0.0, 0.0));
    };
    let values = host::floats(totals).await?;
    let n = data.len() as f32;
    Ok((values[0] / n, values[1] / n))
}

/// The summed loss and hits of `model` on `data`, still on the device
/// (`None` for no data).
pub(super) fn evaluation_totals<M: Trainable>(
    model: &M,
    data: &Dataset,
    norm: Option<Normalization>,
    batch_size: usize,
    device: &Device,
) -> Option<Tensor<1>> {
    if data.is_empty() {
        return None;
    }
    let loader = Loader::sequential(data, norm, batch_size);
    let order = loader.order(0);
    // Sums stay on the device; one read at the end keeps the GPU busy.
    let mut totals: Option<Tensor<1>> = None;
    for index in 0..loader.batches_per_epoch() {
        let batch = loader.batch(&order, 0, index, device);
        let logits = model.logits(batch.x.clone());
        let loss = cross_entropy(logits.clone(), batch.y.clone()) * batch.len as f32;
        let both = Tensor::cat(vec![loss, correct(logits, batch.y)], 0);
        totals = Some(match totals {
            Some(t) => t + both,
            None => both,
        });
    }
    totals
}
