//! L1-norm filter pruning (Li et al., "Pruning Filters for Efficient ConvNets",
//! ICLR 2017, arXiv 1608.08710): a filter's importance is the sum of the
//! absolute values of its weights; for a hidden neuron, of its incoming weights.

use burn::tensor::Tensor;

use super::Criterion;
use crate::base::error::Result;
use crate::base::host;
use crate::model::Model;
use crate::model::weights::WeightParam;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, MethodInfo, Phase, Scores, Scoring,
};
use crate::prune::pruner::select::Scope;
use crate::prune::pruner::select::UnitScores;

/// The L1 norm of each output unit of every layer in `layers`.
pub async fn scores(model: &Model, layers: &[String]) -> Result<UnitScores> {
    let mut out = UnitScores::new();
    for w in model.prunable_weights() {
        if !layers.contains(&w.layer) {
            continue;
        }
        let per_unit: Tensor<1> = match w.param {
            WeightParam::Conv(p) => p.val().abs().sum_dims(&[1, 2, 3]).flatten(0, 3),
            WeightParam::Linear(p) => p.val().abs().sum_dim(0).flatten(0, 1),
        };
        out.insert(w.layer, host::floats(per_unit).await?);
    }
    Ok(out)
}

pub static INFO: MethodInfo = MethodInfo {
    name: "l1",
    title: "L1-norm filter pruning",
    source: "Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017 (arXiv 1608.08710)",
    summary: "filter L1 norm",
    phase: Phase::AfterTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((Scope::PerLayer, "Li et al.: per-layer pruning rates")),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 0.25,
        lr_factor: 0.01,
        source: "Li et al. §4: 40 retraining epochs at lr 0.001 (their CIFAR training runs at 0.1); 40 epochs scaled to a quarter of training",
    }),
    options: None,
    knobs: &[],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move { Ok(Scores::Units(scores(s.model, &s.layers()).await?)) })
}

pub static L1: Criterion = Criterion::new(&INFO, score);
