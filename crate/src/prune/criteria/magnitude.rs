//! Magnitude pruning (Han et al., "Learning both Weights and Connections for
//! Efficient Neural Networks", NeurIPS 2015, arXiv 1506.02626): a weight's
//! importance is |w|. With a global scope this is "global magnitude"; it is
//! also FlexRel with δ = 0 and the criterion of iterative magnitude pruning.

use super::Criterion;
use crate::base::error::Result;
use crate::base::host;
use crate::model::Model;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, MethodInfo, Phase, Scores, Scoring,
};
use crate::prune::pruner::masks::LayerScores;
use crate::prune::pruner::select::Scope;

/// `f(w, i)` for each prunable weight `w` (index `i` in forward order).
pub async fn per_weight<F>(model: &Model, mut f: F) -> Result<Vec<LayerScores>>
where
    F: FnMut(&crate::model::weights::PrunableWeight<'_>, usize) -> burn::tensor::Tensor<1>,
{
    let mut out = Vec::new();
    for (i, w) in model.prunable_weights().iter().enumerate() {
        let scores = host::floats(f(w, i)).await?;
        out.push(LayerScores {
            layer: w.layer.clone(),
            path: w.path.clone(),
            shape: w.param.shape(),
            rows: w.param.rows(),
            scores,
        });
    }
    Ok(out)
}

pub async fn scores(model: &Model) -> Result<Vec<LayerScores>> {
    per_weight(model, |w, _| w.param.flat().abs()).await
}

pub static INFO: MethodInfo = MethodInfo {
    name: "magnitude",
    title: "Magnitude pruning (weights)",
    source: "Han et al., Learning both Weights and Connections, NeurIPS 2015 (arXiv 1506.02626)",
    summary: "global `|w|` (weights)",
    phase: Phase::AfterTraining,
    granularity: Granularity::Weights,
    needs_blocks: false,
    scope: Some((Scope::Global, "global magnitude (FlexRel's δ = 0)")),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 0.25,
        lr_factor: 0.1,
        source: "ours: Han et al. retrain after pruning without a fixed length; as l1's length",
    }),
    options: None,
    knobs: &[],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move { Ok(Scores::Weights(scores(s.model).await?)) })
}

pub static MAGNITUDE: Criterion = Criterion::new(&INFO, score);
