//! Weight-level (unstructured) pruning: masks from per-weight scores, applied
//! by multiplication and kept through fine-tuning by the optimizer.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::select::Scope;
use crate::error::{Error, Result};
use crate::model::Model;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerMask {
    pub layer: String,
    pub path: String,
    pub shape: Vec<usize>,
    pub rows: usize,
    pub keep: Vec<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightMasks {
    pub layers: Vec<LayerMask>,
}

impl WeightMasks {
    /// All ones: the dense model.
    pub fn dense(model: &Model) -> Self {
        WeightMasks {
            layers: model
                .prunable_weights()
                .into_iter()
                .map(|w| {
                    let shape = w.param.shape();
                    let n = shape.iter().product();
                    LayerMask {
                        layer: w.layer,
                        path: w.path,
                        rows: w.param.rows(),
                        shape,
                        keep: vec![true; n],
                    }
                })
                .collect(),
        }
    }

    pub fn total(&self) -> usize {
        self.layers.iter().map(|l| l.keep.len()).sum()
    }

    pub fn kept(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.keep.iter().filter(|&&k| k).count())
            .sum()
    }

    /// Share of prunable weights removed.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.kept() as f64 / self.total().max(1) as f64
    }

    /// Masks for the optimizer (flat 0/1 tensors by module path).
    pub fn for_optimizer(&self, device: &Device) -> HashMap<String, Tensor<1>> {
        self.layers
            .iter()
            .map(|l| (l.path.clone(), flat_mask(&l.keep, device)))
            .collect()
    }

    /// A fork of `model` with the masked weights zeroed (the original is untouched).
    pub fn apply(&self, model: &Model) -> Model {
        let mut mapper = MaskMapper {
            masks: self
                .layers
                .iter()
                .map(|l| (l.path.clone(), &l.keep))
                .collect(),
            path: Vec::new(),
        };
        model.deep_fork().map(&mut mapper)
    }
}

fn flat_mask(keep: &[bool], device: &Device) -> Tensor<1> {
    let values: Vec<f32> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(values, [keep.len()]), device)
}

struct MaskMapper<'a> {
    masks: HashMap<String, &'a Vec<bool>>,
    path: Vec<String>,
}

impl ModuleMapper for MaskMapper<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(keep) = self.masks.get(&self.path.join(".")) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let dims = tensor.dims();
        let mask = flat_mask(keep, &tensor.device()).reshape(dims);
        let mut masked = (tensor * mask).detach();
        if require_grad {
            masked = masked.require_grad();
        }
        Param::from_mapped_value(id, masked, mapper)
    }
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
