//! LAMP, layer-adaptive magnitude-based pruning (Lee et al., "Layer-adaptive
//! Sparsity for the Magnitude-based Pruning", ICLR 2021, arXiv 2010.07611).
//! Within a layer, weights sorted by magnitude (`u` before `v` if
//! `|w_u| ≤ |w_v|`), the score of `u` is its squared magnitude over that of
//! every weight at least as large: `s(u) = w_u² / Σ_{v ≥ u} w_v²`. The largest
//! weight of every layer scores 1, so a global ranking of LAMP scores never
//! empties a layer and sets each layer's sparsity by the shape of its
//! magnitude distribution rather than by its scale.

use super::Criterion;
use crate::base::error::Result;
use crate::model::Model;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, MethodInfo, Phase, Scores, Scoring,
};
use crate::prune::pruner::masks::LayerScores;
use crate::prune::pruner::select::Scope;

/// LAMP scores of one layer's weights, from their magnitudes (ties in
/// magnitude are ordered by index, so the result is deterministic).
pub fn layer_scores(magnitudes: &[f32]) -> Vec<f32> {
    let mut order: Vec<usize> = (0..magnitudes.len()).collect();
    order.sort_by(|&a, &b| magnitudes[a].total_cmp(&magnitudes[b]).then(a.cmp(&b)));
    let mut out = vec![0f32; magnitudes.len()];
    let mut tail = 0f64; // Σ w² over the weights from here to the largest
    for &i in order.iter().rev() {
        let w2 = (magnitudes[i] as f64).powi(2);
        tail += w2;
        out[i] = if tail > 0.0 { (w2 / tail) as f32 } else { 0.0 };
    }
    out
}

pub async fn scores(model: &Model) -> Result<Vec<LayerScores>> {
    let mut layers = crate::prune::criteria::magnitude::scores(model).await?;
    for layer in &mut layers {
        layer.scores = layer_scores(&layer.scores);
    }
    Ok(layers)
}

pub static INFO: MethodInfo = MethodInfo {
    name: "lamp",
    title: "LAMP: layer-adaptive magnitude pruning (weights)",
    source: "Lee et al., Layer-adaptive Sparsity for the Magnitude-based Pruning, ICLR 2021 (arXiv 2010.07611)",
    summary: "layer-adaptive magnitude (weights): `w_u² / Σ_{|w_v| ≥ |w_u|} w_v²`, one global ranking; every layer's largest weight scores 1, so no layer is emptied",
    phase: Phase::AfterTraining,
    granularity: Granularity::Weights,
    needs_blocks: false,
    scope: Some((
        Scope::Global,
        "Lee et al.: one global ranking of LAMP scores",
    )),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 0.25,
        lr_factor: 0.1,
        source: "ours: as magnitude, the criterion LAMP rescales (Lee et al. retrain iteratively)",
    }),
    options: None,
    knobs: &[],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move { Ok(Scores::Weights(scores(s.model).await?)) })
}

pub static LAMP: Criterion = Criterion::new(&INFO, score);
