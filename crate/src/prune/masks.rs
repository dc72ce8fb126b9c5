//! Weight-level (unstructured) pruning: from per-weight scores to
//! [`WeightMasks`] (the masks themselves are the model's, `model::masks`).

use super::select::Scope;
use crate::error::{Error, Result};
use crate::model::masks::{LayerMask, WeightMasks};

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
    if !(0.0..1.0).contains(&sparsity) {
        return Err(Error::config(
            "target",
            sparsity,
            "a sparsity must be in [0, 1)",
        ));
    }
    let mut keep: Vec<Vec<bool>> = scores.iter().map(|l| vec![true; l.scores.len()]).collect();
    let order = |entries: &mut Vec<(f32, usize, usize)>| {
        entries.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    };
    match scope {
        Scope::Global => {
            let mut all: Vec<(f32, usize, usize)> = scores
                .iter()
                .enumerate()
                .flat_map(|(l, s)| s.scores.iter().enumerate().map(move |(i, &v)| (v, l, i)))
                .collect();
            order(&mut all);
            let n_remove = (sparsity as f64 * all.len() as f64).floor() as usize;
            let mut left: Vec<usize> = scores.iter().map(|s| s.scores.len()).collect();
            let mut removed = 0;
            for &(_, l, i) in &all {
                if removed == n_remove {
                    break;
                }
                if left[l] > 1 {
                    keep[l][i] = false;
                    left[l] -= 1;
                    removed += 1;
                }
            }
        }
        Scope::PerLayer => {
            for (l, s) in scores.iter().enumerate() {
                let mut entries: Vec<(f32, usize, usize)> = s
                    .scores
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (v, l, i))
                    .collect();
                order(&mut entries);
                let n_remove = ((sparsity as f64 * entries.len() as f64).floor() as usize)
                    .min(entries.len() - 1);
                for &(_, _, i) in &entries[..n_remove] {
                    keep[l][i] = false;
                }
            }
        }
    }
    Ok(WeightMasks {
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
}
