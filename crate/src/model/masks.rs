//! Weight masks: which weights of each prunable layer a weight-level pruned
//! model keeps. Applied by multiplication (on a fork) and held through
//! training by the optimizer; the metrics count their sparse bytes.

use std::collections::HashMap;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::Model;
use super::params;

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

    /// What `model` actually holds: each layer's `keep` read off its
    /// weights (non-zero = kept). Sizes are counted from this, not from a
    /// mask a method says it applied: a method that loses its mask on the way
    /// is then measured as the model it returns.
    pub async fn held_by(model: &Model) -> crate::base::error::Result<Self> {
        let mut masks = WeightMasks::dense(model);
        for (layer, w) in masks.layers.iter_mut().zip(model.prunable_weights()) {
            let values = crate::base::host::floats(w.param.flat()).await?;
            layer.keep = values.iter().map(|&v| v != 0.0).collect();
        }
        Ok(masks)
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
        let masks: HashMap<&str, &Vec<bool>> = self
            .layers
            .iter()
            .map(|l| (l.path.as_str(), &l.keep))
            .collect();
        params::map(model.deep_fork(), None, |path, _, value, _| {
            let keep = masks.get(path)?;
            let mask = flat_mask(keep, &value.device());
            Some(value * mask)
        })
    }
}

fn flat_mask(keep: &[bool], device: &Device) -> Tensor<1> {
    let values: Vec<f32> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(values, [keep.len()]), device)
}
