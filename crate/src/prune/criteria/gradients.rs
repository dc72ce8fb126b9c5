//! Gradients of the training loss with respect to every prunable weight, for
//! the gradient-based criteria (SNIP, GraSP, FlexRel's gradient×input).

use burn::tensor::Tensor;

use crate::base::error::{Error, Result};
use crate::data::Split;
use crate::model::layers::{Kink, Kinks};
use crate::model::{Ctx, Model};
use crate::prune::criteria::capture::Sampling;
use crate::train::cross_entropy;

/// `Σ_batches ∂L/∂w` for each prunable weight (flattened, in
/// [`Model::prunable_weights`] order) at the model's current weights, BN in
/// training mode as during training. `model` must live on an autodiff device.
/// The forward passes run on a fork, so `model`'s BN running statistics do
/// not move (a criterion reads the model; it never changes it).
pub fn weight_grads(model: &Model, split: &Split, sampling: Sampling) -> Result<Vec<Tensor<1>>> {
    weight_grads_with(model, split, sampling, Pattern::Free)
}

/// What a gradient pass does with the network's ReLU masks and max-pool
/// choices ([`Kinks`]): leave them free, record them per batch, or replay a
/// recording — so that gradients at nearby weights are taken on the same
/// linear piece.
pub enum Pattern<'a> {
    Free,
    Record(&'a mut Vec<Vec<Kink>>),
    Replay(&'a [Vec<Kink>]),
}

/// [`weight_grads`], with the activation pattern `pattern` says.
pub fn weight_grads_with(
    model: &Model,
    split: &Split,
    sampling: Sampling,
    pattern: Pattern<'_>,
) -> Result<Vec<Tensor<1>>> {
    let mut sums: Option<Vec<Tensor<1>>> = None;
    each_batch_grads(model, split, sampling, pattern, |these| {
        sums = Some(match sums.take() {
            None => these,
            Some(s) => s.into_iter().zip(these).map(|(a, b)| a + b).collect(),
        });
    })?;
    Ok(sums.expect("at least one batch"))
}

/// Hands `visit` each scoring batch's `∂L/∂w` (as [`weight_grads`] sums
/// them), for criteria that combine gradients per batch (Taylor squares
/// each batch's first-order term before averaging).
pub fn each_batch_grads(
    model: &Model,
    split: &Split,
    sampling: Sampling,
    mut pattern: Pattern<'_>,
    mut visit: impl FnMut(Vec<Tensor<1>>),
) -> Result<()> {
    let model = &model.deep_fork();
    let device = model.prunable_weights()[0].param.flat().device();
    if !device.is_autodiff() {
        return Err(Error::config(
            "device",
            "plain",
            "gradient criteria need a model on an autodiff device",
        ));
    }
    let loader = sampling.loader(split, 0x9a4d);
    let order = loader.order(0);
    for index in 0..sampling.batches.min(loader.batches_per_epoch()).max(1) {
        let batch = loader.batch(&order, 0, index, &device);
        let mut ctx = Ctx::default();
        ctx.kinks = match &pattern {
            Pattern::Free => Kinks::Free,
            Pattern::Record(_) => Kinks::Record(Vec::new()),
            Pattern::Replay(recorded) => Kinks::Replay(recorded[index].clone(), 0),
        };
        let loss = cross_entropy(model.forward_ctx(batch.x, &mut ctx), batch.y);
        if let (Pattern::Record(out), Kinks::Record(kinks)) = (&mut pattern, ctx.kinks) {
            out.push(kinks);
        }
        let grads = loss.backward();
        let these: Vec<Tensor<1>> = model
            .prunable_weights()
            .iter()
            .map(|w| {
                w.param
                    .grad(&grads)
                    .expect("every prunable weight takes part in the loss")
            })
            .collect();
        visit(these);
    }
    Ok(())
}
