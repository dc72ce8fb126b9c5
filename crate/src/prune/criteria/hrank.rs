//! HRank (Lin et al., "HRank: Filter Pruning using High-Rank Feature Map",
//! CVPR 2020, arXiv 2002.10179): a filter's importance is the average rank of
//! its feature map over images — each image's `H × W` map on its own, after
//! the activation (ReLU), as in the authors' hooks. Rank = the number of
//! singular values above `max(H, W) · σ_max · ε_f32` (numpy's default).

use super::Criterion;
use crate::base::error::Result;
use crate::base::host;
use crate::data::Split;
use crate::model::Model;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, Knob, MethodInfo, Phase, Scores, Scoring,
};
use crate::prune::criteria::capture::{self, Sampling};
use crate::prune::criteria::energy::singular_values;
use crate::prune::pruner::select::Scope;
use crate::prune::pruner::select::UnitScores;

/// The numerical rank of a row-major `rows × cols` matrix.
pub fn rank(rows: usize, cols: usize, values: &[f32]) -> Result<usize> {
    let sv = singular_values(rows, cols, values)?;
    let max = sv.iter().fold(0.0f64, |m, &s| m.max(s));
    let tol = rows.max(cols) as f64 * max * f32::EPSILON as f64;
    Ok(sv.iter().filter(|&&s| s > tol).count())
}

pub async fn scores(
    model: &Model,
    split: &Split,
    sampling: Sampling,
    layers: &[String],
) -> Result<UnitScores> {
    let mut sums: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut images = 0usize;
    let mut batches = capture::batches(model, split, sampling, layers);
    while let Some((n, captured)) = batches.next_batch() {
        images += n;
        for (group, fm) in captured {
            let [_, c, h, w] = fm.dims();
            let values = host::floats(burn::tensor::activation::relu(fm)).await?;
            let entry = sums.entry(group).or_insert_with(|| vec![0.0; c]);
            for (k, map) in values.chunks_exact(h * w).enumerate() {
                entry[k % c] += rank(h, w, map)? as f64;
            }
        }
    }
    let images = images.max(1) as f64;
    Ok(sums
        .into_iter()
        .map(|(g, s)| (g, s.into_iter().map(|v| (v / images) as f32).collect()))
        .collect())
}

pub static INFO: MethodInfo = MethodInfo {
    name: "hrank",
    title: "HRank (feature-map rank)",
    source: "Lin et al., HRank: Filter Pruning using High-Rank Feature Map, CVPR 2020 (arXiv 2002.10179)",
    summary: "average rank of each image's feature map after ReLU",
    phase: Phase::AfterTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((Scope::PerLayer, "HRank: per-layer compress rates")),
    normalize: None,
    score_batches: Some((5, "HRank's rank generation: 5 batches of 128 (its --limit)")),
    ranking: None,
    finetune: Some(Finetune {
        share: 0.2,
        lr_factor: 0.1,
        source: "HRank README: 30 fine-tuning epochs at lr 0.01 per pruned layer; one shot here, so about a fifth of a CIFAR schedule",
    }),
    options: None,
    knobs: &[Knob {
        key: "score_batch_size",
        source: "HRank: batches of 128",
    }],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move {
        let sampling = Sampling::new(s.options, &INFO, s.augment, s.seed);
        Ok(Scores::Units(
            scores(s.model, s.split, sampling, &s.layers()).await?,
        ))
    })
}

pub static HRANK: Criterion = Criterion::new(&INFO, score);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_independent_rows() {
        assert_eq!(rank(2, 3, &[1.0, 2.0, 2.0, 2.0, 4.0, 4.0]).unwrap(), 1);
        assert_eq!(
            rank(3, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]).unwrap(),
            3
        );
        assert_eq!(rank(2, 2, &[0.0; 4]).unwrap(), 0);
    }
}
