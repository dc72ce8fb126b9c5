//! SNIP (Lee et al., "SNIP: Single-shot Network Pruning based on Connection
//! Sensitivity", ICLR 2019, arXiv 1810.02340): a weight's importance is
//! |w · ∂L/∂w| on a few batches of training data, usually at initialisation.

use super::Criterion;
use crate::base::error::Result;
use crate::data::Split;
use crate::model::Model;
use crate::prune::contract::{BoxFuture, Granularity, Knob, MethodInfo, Phase, Scores, Scoring};
use crate::prune::criteria::capture::Sampling;
use crate::prune::criteria::gradients::weight_grads;
use crate::prune::criteria::magnitude::per_weight;
use crate::prune::pruner::masks::LayerScores;

pub async fn scores(model: &Model, split: &Split, sampling: Sampling) -> Result<Vec<LayerScores>> {
    let grads = weight_grads(model, split, sampling)?;
    per_weight(model, |w, i| {
        (w.param.flat().inner() * grads[i].clone()).abs()
    })
    .await
}

pub static INFO: MethodInfo = MethodInfo {
    name: "snip",
    title: "SNIP (connection sensitivity at initialisation)",
    source: "Lee et al., SNIP: Single-shot Network Pruning, ICLR 2019 (arXiv 1810.02340)",
    summary: "`|w·g|` at initialisation (weights), then training",
    phase: Phase::AtInit,
    granularity: Granularity::Weights,
    needs_blocks: false,
    scope: None,
    normalize: None,
    score_batches: Some((1, "Lee et al.: one mini-batch of training data")),
    ranking: None,
    finetune: None,
    options: None,
    knobs: &[Knob {
        key: "score_batch_size",
        source: "Lee et al.: a batch of 100 for CIFAR (ours 128)",
    }],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move {
        let sampling = Sampling::new(s.options, &INFO, false, s.seed);
        Ok(Scores::Weights(scores(s.model, s.split, sampling).await?))
    })
}

pub static SNIP: Criterion = Criterion::new(&INFO, score);
