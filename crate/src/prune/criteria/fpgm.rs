//! FPGM, filter pruning via geometric median (He et al., "Filter Pruning via
//! Geometric Median for Deep Convolutional Neural Networks Acceleration",
//! CVPR 2019, arXiv 1811.00250). A filter close to the geometric median of
//! its layer's filters is replaceable by the others, whatever its norm: its
//! importance is the sum of its Euclidean distances to every filter of the
//! layer, `s_i = Σ_j ‖F_i − F_j‖₂`, and the smallest sums go first. For a
//! hidden neuron the "filter" is its vector of incoming weights. Unlike
//! `l1`, a large filter in a crowd is pruned and a small odd one kept.

use super::Criterion;
use crate::base::error::Result;
use crate::base::host;
use crate::model::Model;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, MethodInfo, Phase, Scores, Scoring,
};
use crate::prune::pruner::select::{Scope, UnitScores};

/// `s_i = Σ_j ‖F_i − F_j‖₂` over the `n` rows of `rows` (each `d` long).
pub fn distance_sums(rows: &[f32], n: usize, d: usize) -> Vec<f32> {
    let row = |i: usize| &rows[i * d..(i + 1) * d];
    let mut sums = vec![0f64; n];
    for i in 0..n {
        for j in i + 1..n {
            let dist = row(i)
                .iter()
                .zip(row(j))
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            sums[i] += dist;
            sums[j] += dist;
        }
    }
    sums.into_iter().map(|s| s as f32).collect()
}

pub async fn scores(model: &Model, layers: &[String]) -> Result<UnitScores> {
    let mut out = UnitScores::new();
    for w in model.prunable_weights() {
        if !layers.contains(&w.layer) {
            continue;
        }
        let n = w.param.rows();
        let values = host::floats(w.param.per_unit(w.param.flat()).flatten::<1>(0, 1)).await?;
        let d = values.len() / n.max(1);
        out.insert(w.layer, distance_sums(&values, n, d));
    }
    Ok(out)
}

pub static INFO: MethodInfo = MethodInfo {
    name: "fpgm",
    title: "FPGM: filter pruning via geometric median",
    source: "He et al., Filter Pruning via Geometric Median, CVPR 2019 (arXiv 1811.00250)",
    summary: "filters near their layer's geometric median go first: score `Σ_j ‖F_i − F_j‖₂` (per layer)",
    phase: Phase::AfterTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((
        Scope::PerLayer,
        "He et al.: the same pruning rate in every layer",
    )),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 0.25,
        lr_factor: 0.01,
        source: "ours: FPGM fine-tunes a pre-trained model after pruning without a fixed length; as l1's",
    }),
    options: None,
    knobs: &[],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move { Ok(Scores::Units(scores(s.model, &s.layers()).await?)) })
}

pub static FPGM: Criterion = Criterion::new(&INFO, score);
