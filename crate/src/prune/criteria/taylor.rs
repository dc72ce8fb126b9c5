//! First-order Taylor importance (Molchanov et al., "Importance Estimation
//! for Neural Network Pruning", CVPR 2019, arXiv 1906.10771): removing a
//! unit changes the loss by about `−Σ_s g_s w_s` over the unit's weights
//! (its filter, or a neuron's incoming weights), so its importance is the
//! square of that sum, `I = (Σ_s g_s w_s)²`, computed on each scoring batch
//! and averaged over batches (the paper accumulates it over minibatches).
//! This is the paper's "Taylor FO on weights"; its variant on BN scales
//! needs a gate per unit and is not here.

use super::Criterion;
use crate::base::error::Result;
use crate::base::host;
use crate::data::Split;
use crate::model::Model;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, Knob, MethodInfo, Phase, Scores, Scoring,
};
use crate::prune::criteria::capture::Sampling;
use crate::prune::criteria::gradients::{Pattern, each_batch_grads};
use crate::prune::pruner::select::{Scope, UnitScores};

pub async fn scores(
    model: &Model,
    split: &Split,
    sampling: Sampling,
    layers: &[String],
) -> Result<UnitScores> {
    let weights = model.prunable_weights();
    let mut sums: Vec<Option<burn::tensor::Tensor<1>>> = vec![None; weights.len()];
    let mut batches = 0usize;
    each_batch_grads(model, split, sampling, Pattern::Free, |grads| {
        batches += 1;
        for (i, w) in weights.iter().enumerate() {
            if !layers.contains(&w.layer) {
                continue;
            }
            let gw = w.param.flat().inner() * grads[i].clone();
            // Σ over each unit's weights.
            let per_unit = w.param.per_unit(gw).sum_dim(1).flatten::<1>(0, 1);
            let squared = per_unit.powi_scalar(2);
            sums[i] = Some(match sums[i].take() {
                None => squared,
                Some(s) => s + squared,
            });
        }
    })?;
    let mut out = UnitScores::new();
    for (w, sum) in weights.iter().zip(sums) {
        if let Some(sum) = sum {
            out.insert(
                w.layer.clone(),
                host::floats(sum / batches.max(1) as f64).await?,
            );
        }
    }
    Ok(out)
}

pub static INFO: MethodInfo = MethodInfo {
    name: "taylor",
    title: "First-order Taylor importance (units)",
    source: "Molchanov et al., Importance Estimation for Neural Network Pruning, CVPR 2019 (arXiv 1906.10771)",
    summary: "first-order Taylor: `(Σ_s g_s w_s)²` over a unit's weights per scoring batch, averaged (10 batches); global ranking",
    phase: Phase::AfterTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((
        Scope::Global,
        "Molchanov et al.: one global ranking of the importances",
    )),
    normalize: None,
    score_batches: Some((
        10,
        "ours: Molchanov et al. accumulate over the minibatches between pruning steps",
    )),
    ranking: None,
    finetune: Some(Finetune {
        share: 0.25,
        lr_factor: 0.01,
        source: "ours: as l1 (Molchanov et al. prune iteratively with fine-tuning between steps)",
    }),
    options: None,
    knobs: &[Knob {
        key: "score_batch_size",
        source: "ours: the shared scoring batch size",
    }],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move {
        let sampling = Sampling::new(s.options, &INFO, false, s.seed);
        Ok(Scores::Units(
            scores(s.model, s.split, sampling, &s.layers()).await?,
        ))
    })
}

pub static TAYLOR: Criterion = Criterion::new(&INFO, score);
