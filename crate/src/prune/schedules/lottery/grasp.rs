//! GraSP (Wang et al., "Picking Winning Tickets Before Training by Preserving
//! Gradient Flow", ICLR 2020, arXiv 2002.07376): `S(w) = −w ⊙ (H g)`, with `g`
//! the loss gradient and `H` its Hessian. GraSP removes the weights with the
//! *highest* S (removing them least reduces gradient flow).
//!
//! burn has no double backward, so `H g` is a documented central finite
//! difference along the gradient: with `ĝ = g/‖g‖` and a step `r = ε·‖θ‖`,
//! `H g ≈ (∇L(θ + r ĝ) − ∇L(θ − r ĝ)) · ‖g‖ / 2r` — exact for a quadratic
//! loss, second-order accurate otherwise (the tests compare it with the
//! analytic product of a softmax regression and with PyTorch's double
//! backward). All gradients use the same batches, BN in training mode, on
//! forks of the model.

use burn::tensor::Tensor;

use crate::base::error::Result;
use crate::base::host;
use crate::data::Split;
use crate::model::{Model, params};
use crate::prune::criteria::capture::Sampling;
use crate::prune::criteria::gradients::{Pattern, weight_grads_with};
use crate::prune::criteria::magnitude::per_weight;
use crate::prune::pruner::masks::LayerScores;

/// Default relative step ε: the central difference's truncation error falls
/// as ε² and f32 rounding grows as 1/ε; against PyTorch's double backward on
/// ResNet-20 (tests/reference) the error is 0.46 at 1e-3, 8e-3 at 1e-4,
/// 2.9e-3 at 3e-5 and 4.8e-3 at 1e-5.
pub const EPSILON: f32 = 3e-5;

/// `H g` for every prunable weight (flattened, forward order), and `g`.
pub async fn hessian_gradient(
    model: &Model,
    split: &Split,
    sampling: Sampling,
    epsilon: f32,
) -> Result<(Vec<Tensor<1>>, Vec<Tensor<1>>)> {
    // The gradients at θ ± r·ĝ are taken with θ's ReLU masks and max-pool
    // choices (`Pattern::Replay`): the difference then sees the curvature of
    // the piece θ lies on — what double backward computes — and not the
    // jumps of units that change sign inside the step (which made the
    // difference useless at initialisation, where BN's β = 0 puts many
    // pre-activations near zero).
    let mut kinks = Vec::new();
    let g = weight_grads_with(model, split, sampling, Pattern::Record(&mut kinks))?;
    let sq: Vec<Tensor<1>> = g.iter().map(|t| t.clone().powi_scalar(2).sum()).collect();
    let g_norm = (host::scalar(Tensor::cat(sq, 0).sum()).await? as f64).sqrt();
    let theta_sq: Vec<Tensor<1>> = model
        .prunable_weights()
        .iter()
        .map(|w| w.param.flat().inner().powi_scalar(2).sum())
        .collect();
    let theta_norm = (host::scalar(Tensor::cat(theta_sq, 0).sum()).await? as f64).sqrt();
    if g_norm == 0.0 {
        return Ok((g.iter().map(|t| t.zeros_like()).collect(), g));
    }
    let r = epsilon as f64 * theta_norm.max(1e-6);
    let paths: Vec<String> = model
        .prunable_weights()
        .into_iter()
        .map(|w| w.path)
        .collect();
    let shifted = |sign: f64| {
        let step: Vec<Tensor<1>> = g.iter().map(|t| t.clone() * (sign * r / g_norm)).collect();
        params::map(model.deep_fork(), None, |path, _, value, _| {
            let i = paths.iter().position(|p| p == path)?;
            Some(Tensor::from_inner(value.inner() + step[i].clone()))
        })
    };
    let ahead = weight_grads_with(&shifted(1.0), split, sampling, Pattern::Replay(&kinks))?;
    let behind = weight_grads_with(&shifted(-1.0), split, sampling, Pattern::Replay(&kinks))?;
    let hg = ahead
        .into_iter()
        .zip(behind)
        .map(|(a, b)| (a - b) * (g_norm / (2.0 * r)))
        .collect();
    Ok((hg, g))
}

/// GraSP scores `−w ⊙ Hg` (highest = removed first by GraSP).
pub async fn scores(
    model: &Model,
    split: &Split,
    sampling: Sampling,
    epsilon: f32,
) -> Result<Vec<LayerScores>> {
    let (hg, _) = hessian_gradient(model, split, sampling, epsilon).await?;
    per_weight(model, |w, i| (w.param.flat().inner() * hg[i].clone()).neg()).await
}
