//! Weight-level (unstructured) pruning: from per-weight scores to
//! [`WeightMasks`] (the masks themselves are the model's, `model::masks`).

use crate::base::error::{Error, Result};
use crate::model::masks::{LayerMask, WeightMasks};
use crate::prune::pruner::select::Scope;

/// Scores for every weight of one layer (higher = more important).
#[derive(Debug, Clone)]
pub struct LayerScores {
    pub layer: String,
    pub path: String,
    pub shape: Vec<usize>,
    /// Output units: CSR rows.
    pub rows: usize,
    pub scores: Vec<f32>,
}

/// `scores` with every weight `masks` already removed ranked below every
/// survivor, so a mask taken from them at a higher sparsity lies inside
/// `masks` (iterative pruning never revives a weight).
pub fn within(scores: &[LayerScores], masks: &WeightMasks) -> Vec<LayerScores> {
    scores
        .iter()
        .map(|s| {
            let keep = masks
                .layers
                .iter()
                .find(|l| l.path == s.path)
                .map(|l| &l.keep);
            LayerScores {
                scores: s
                    .scores
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| match keep {
                        Some(k) if !k[i] => f32::NEG_INFINITY,
                        _ => v,
                    })
                    .collect(),
                ..s.clone()
            }
        })
        .collect()
}

/// Keeps the highest-scoring `1 − sparsity` of the weights, globally or per
/// layer. Every layer keeps at least its best weight, so no layer is cut off.
pub fn masks_from_scores(
    scores: &[LayerScores],
    sparsity: f32,
    scope: Scope,
) -> Result<WeightMasks> {
    Ok(masks_for_sparsities(scores, &[sparsity], scope)?.remove(0))
}

/// [`masks_from_scores`] at each of `sparsities` (ascending) from one sort
/// of the scores: the removal order is the same at every sparsity, so each
/// mask extends the one before. FlexRel's sweep asks for eleven factors per
/// δ; on VGG-16's 14.7M weights one sort is seconds.
pub fn masks_for_sparsities(
    scores: &[LayerScores],
    sparsities: &[f32],
    scope: Scope,
) -> Result<Vec<WeightMasks>> {
    if let Some(&bad) = sparsities.iter().find(|s| !(0.0..1.0).contains(*s)) {
        return Err(Error::config("target", bad, "a sparsity must be in [0, 1)"));
    }
    if sparsities.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::Execution(format!(
            "sparsities must ascend: {sparsities:?}"
        )));
    }
    // (score, layer, index), ordered by score then position: ties are
    // broken the same way at every sparsity.
    let order = |entries: &mut Vec<(f32, u32, u32)>| {
        entries
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    };
    let mut keep: Vec<Vec<bool>> = scores.iter().map(|l| vec![true; l.scores.len()]).collect();
    let mut out = Vec::with_capacity(sparsities.len());
    match scope {
        Scope::Global => {
            let mut all: Vec<(f32, u32, u32)> = scores
                .iter()
                .enumerate()
                .flat_map(|(l, s)| {
                    s.scores
                        .iter()
                        .enumerate()
                        .map(move |(i, &v)| (v, l as u32, i as u32))
                })
                .collect();
            order(&mut all);
            let mut left: Vec<usize> = scores.iter().map(|s| s.scores.len()).collect();
            let (mut removed, mut at) = (0, 0);
            for &sparsity in sparsities {
                let n_remove = (sparsity as f64 * all.len() as f64).floor() as usize;
                // Every layer keeps at least one weight.
                while removed < n_remove && at < all.len() {
                    let (_, l, i) = all[at];
                    at += 1;
                    let l = l as usize;
                    if left[l] > 1 {
                        keep[l][i as usize] = false;
                        left[l] -= 1;
                        removed += 1;
                    }
                }
                out.push(keep.clone());
            }
        }
        Scope::PerLayer => {
            let mut sorted = Vec::with_capacity(scores.len());
            for (l, s) in scores.iter().enumerate() {
                let mut entries: Vec<(f32, u32, u32)> = s
                    .scores
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (v, l as u32, i as u32))
                    .collect();
                order(&mut entries);
                sorted.push(entries);
            }
            for &sparsity in sparsities {
                for (l, entries) in sorted.iter().enumerate() {
                    let n_remove = ((sparsity as f64 * entries.len() as f64).floor() as usize)
                        .min(entries.len() - 1);
                    for &(_, _, i) in &entries[..n_remove] {
                        keep[l][i as usize] = false;
                    }
                }
                out.push(keep.clone());
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|keep| WeightMasks {
            layers: scores
                .iter()
                .zip(keep)
                .map(|(s, keep)| LayerMask {
                    layer: s.layer.clone(),
                    path: s.path.clone(),
                    shape: s.shape.clone(),
                    rows: s.rows,
                    keep,
                })
                .collect(),
        })
        .collect())
}
