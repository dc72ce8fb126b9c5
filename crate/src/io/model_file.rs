//! Saved models: a [`Pack`] of kind `model` holding the architecture and the
//! weights. The same bytes come out of the page's download button and
//! `prunelab train --save`, and both `eval` and `prune` read them — as well
//! as training checkpoints, whose model part they share.

use std::path::Path;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::pack::{self, Pack};
use crate::base::error::{Error, Result};
use crate::model::{Model, ModelSpec};

pub const KIND: &str = "model";
/// The kind of a training checkpoint (`train::checkpoint` writes them); its
/// metadata starts with the same `spec` and the run's `config`.
pub const CHECKPOINT_KIND: &str = "checkpoint";

/// The part of a checkpoint's metadata a model file reader needs.
#[derive(Deserialize)]
struct CheckpointModel {
    spec: ModelSpec,
    #[serde(default)]
    config: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMeta {
    pub prunelab: String,
    pub spec: ModelSpec,
    /// Free-form provenance: the config, the pruning method, the page's URL state.
    #[serde(default)]
    pub notes: serde_json::Value,
}

pub async fn to_bytes(model: &Model, notes: serde_json::Value) -> Result<Vec<u8>> {
    to_bytes_with_masks(model, None, notes).await
}

/// A model file that also carries weight masks (`mask/<path>` tensors), so a
/// weight-pruned model keeps its zeros when training continues.
pub async fn to_bytes_with_masks(
    model: &Model,
    masks: Option<&crate::model::masks::WeightMasks>,
    notes: serde_json::Value,
) -> Result<Vec<u8>> {
    let meta = ModelMeta {
        prunelab: env!("CARGO_PKG_VERSION").into(),
        spec: model.spec.clone(),
        notes,
    };
    let mut pack = Pack::new(KIND, serde_json::to_value(meta).expect("plain data"));
    pack::push_module(&mut pack, "model/", model).await?;
    for layer in masks.map(|m| m.layers.as_slice()).unwrap_or_default() {
        let values: Vec<f32> = layer
            .keep
            .iter()
            .map(|&k| if k { 1.0 } else { 0.0 })
            .collect();
        pack.push(format!("mask/{}", layer.path), vec![values.len()], &values);
    }
    Ok(pack.to_bytes())
}

/// Loads a model file or the model inside a checkpoint.
pub fn from_bytes(
    bytes: &[u8],
    path: &Path,
    device: &Device,
) -> Result<(Model, serde_json::Value)> {
    let pack = Pack::from_bytes(bytes, path)?;
    let (spec, notes) = match pack.kind.as_str() {
        KIND => {
            let meta: ModelMeta =
                serde_json::from_value(pack.meta.clone()).map_err(|e| Error::BadCheckpoint {
                    path: path.to_path_buf(),
                    problem: format!("the model's metadata is not readable by this prunelab: {e}"),
                })?;
            (meta.spec, meta.notes)
        }
        CHECKPOINT_KIND => {
            let meta: CheckpointModel =
                serde_json::from_value(pack.meta.clone()).map_err(|e| Error::BadCheckpoint {
                    path: path.to_path_buf(),
                    problem: format!(
                        "the checkpoint's metadata is not readable by this prunelab: {e}"
                    ),
                })?;
            (meta.spec, meta.config)
        }
        other => {
            return Err(Error::BadCheckpoint {
                path: path.to_path_buf(),
                problem: format!("a `{other}` file holds no model"),
            });
        }
    };
    check_fits(&spec, &pack, path)?;
    let model = pack::load_module(Model::new(&spec, device), &pack, "model/", path)?;
    Ok((model, notes))
}

/// The weight masks a model file carries (`mask/<path>` tensors), if any.
pub fn masks(
    bytes: &[u8],
    path: &Path,
    model: &Model,
) -> Result<Option<crate::model::masks::WeightMasks>> {
    let pack = Pack::from_bytes(bytes, path)?;
    if !pack.names().any(|n| n.starts_with("mask/")) {
        return Ok(None);
    }
    let mut masks = crate::model::masks::WeightMasks::dense(model);
    for layer in &mut masks.layers {
        if let Some((_, values)) = pack.get(&format!("mask/{}", layer.path)) {
            if values.len() != layer.keep.len() {
                return Err(Error::BadCheckpoint {
                    path: path.to_path_buf(),
                    problem: format!("the mask of `{}` does not fit its weight", layer.path),
                });
            }
            for (keep, &v) in layer.keep.iter_mut().zip(values) {
                *keep = v != 0.0;
            }
        }
    }
    Ok(Some(masks))
}

/// Refuses, before a model is built, a spec that is out of bounds or that
/// needs more parameters than the file stores: the checksum catches
/// accidents, not a hand-made file declaring a huge architecture.
pub fn check_fits(spec: &ModelSpec, pack: &Pack, path: &Path) -> Result<()> {
    spec.validate().map_err(|e| Error::BadCheckpoint {
        path: path.to_path_buf(),
        problem: format!("its architecture is not one prunelab builds: {e}"),
    })?;
    let stored: u64 = pack
        .entries
        .iter()
        .filter(|e| e.name.starts_with("model/"))
        .map(|e| e.shape.iter().map(|&d| d as u64).product::<u64>())
        .sum();
    let needed = crate::metrics::count::count(spec).params;
    if needed > stored {
        return Err(Error::BadCheckpoint {
            path: path.to_path_buf(),
            problem: format!(
                "its architecture needs {needed} parameters but the file stores {stored}; \
                 it is damaged or was not written by prunelab"
            ),
        });
    }
    // prunelab never saves a diverged model (training stops at a NaN loss),
    // and one would only evaluate to made-up numbers.
    if let Some((name, bad)) = pack.first_non_finite("model/") {
        return Err(Error::BadCheckpoint {
            path: path.to_path_buf(),
            problem: format!(
                "tensor `{name}` holds {bad} NaN or infinite values: the model diverged or \
                 the file was edited; retrain it or use an earlier checkpoint"
            ),
        });
    }
    Ok(())
}
