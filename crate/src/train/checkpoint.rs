//! Checkpoints: the model, the optimizer state, the masks, the progress
//! counters and the config that started the run, in one [`Pack`]. One file is
//! one unit — the loader checks the whole file before it touches the trainer.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Progress, Trainable, Trainer};
use crate::base::error::{Error, Result};
use crate::base::host;
use crate::io::pack::{self, Pack};
use crate::model::ModelSpec;

use crate::io::model_file::CHECKPOINT_KIND as KIND;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub prunelab: String,
    pub spec: ModelSpec,
    pub config: serde_json::Value,
    pub progress: Progress,
    pub optimizer_steps: u64,
}

/// Serialises the trainer (async: tensors are read back from the device).
pub async fn to_bytes<M: Trainable>(
    trainer: &Trainer<M>,
    spec: &ModelSpec,
    config: serde_json::Value,
) -> Result<Vec<u8>> {
    let meta = Meta {
        prunelab: env!("CARGO_PKG_VERSION").into(),
        spec: spec.clone(),
        config,
        progress: trainer.progress.clone(),
        optimizer_steps: trainer.optim.steps,
    };
    let mut pack = Pack::new(KIND, serde_json::to_value(meta).expect("plain data"));
    pack::push_module(&mut pack, "model/", &trainer.model).await?;
    let mut keys: Vec<&String> = trainer.optim.state.keys().collect();
    keys.sort();
    for key in keys {
        let values = host::floats(trainer.optim.state[key].clone()).await?;
        pack.push(format!("optim/{key}"), vec![values.len()], &values);
    }
    let mut keys: Vec<&String> = trainer.optim.masks.keys().collect();
    keys.sort();
    for key in keys {
        let values = host::floats(trainer.optim.masks[key].clone()).await?;
        pack.push(format!("mask/{key}"), vec![values.len()], &values);
    }
    Ok(pack.to_bytes())
}

/// Reads the metadata of a checkpoint (to rebuild the model before restoring).
pub fn read(bytes: &[u8], path: &Path) -> Result<(Pack, Meta)> {
    let pack = Pack::from_bytes(bytes, path)?;
    let meta = meta(&pack, path)?;
    Ok((pack, meta))
}

/// The metadata of a parsed checkpoint.
pub fn meta(pack: &Pack, path: &Path) -> Result<Meta> {
    if pack.kind != KIND {
        return Err(Error::BadCheckpoint {
            path: path.to_path_buf(),
            problem: format!("this is a `{}` file, not a training checkpoint", pack.kind),
        });
    }
    serde_json::from_value(pack.meta.clone()).map_err(|e| Error::BadCheckpoint {
        path: path.to_path_buf(),
        problem: format!("the checkpoint's metadata is not readable by this prunelab: {e}"),
    })
}

/// The optimizer's state buffers per parameter (optim.rs): SGD's momentum,
/// Adam's first and second moments.
const STATE_KINDS: &[&str] = &["momentum", "m", "v"];

/// Checks what the checksum cannot: that the file's parts agree with each
/// other. Every optimizer buffer and mask belongs to a parameter of the
/// model and has its size (a shorter one would broadcast silently), and the
/// progress counters describe a position this run can be at with
/// `steps_per_epoch` batches per epoch (the step counter follows from it).
pub fn check_contents(pack: &Pack, meta: &Meta, steps_per_epoch: usize, path: &Path) -> Result<()> {
    let bad = |problem: String| Error::BadCheckpoint {
        path: path.to_path_buf(),
        problem: format!(
            "{problem}; the file was not written by `prunelab train`, use another checkpoint"
        ),
    };
    let size = |name: &str| {
        pack.get(name)
            .map(|(shape, _)| shape.iter().product::<usize>())
    };
    for name in pack.names() {
        let (kind, key) = match name.split_once('/') {
            Some(("optim", key)) => ("optimizer state", key),
            Some(("mask", key)) => ("mask", key),
            Some(("model", _)) => continue,
            _ => return Err(bad(format!("it holds an unknown tensor `{name}`"))),
        };
        let param = match (kind, key.rsplit_once('#')) {
            ("optimizer state", Some((param, state))) if STATE_KINDS.contains(&state) => param,
            ("mask", None) => key,
            _ => {
                return Err(bad(format!(
                    "`{name}` is not a {kind} this prunelab writes"
                )));
            }
        };
        let Some(expected) = size(&format!("model/{param}")) else {
            return Err(bad(format!(
                "`{name}` belongs to no parameter of the model"
            )));
        };
        let found = size(name).unwrap_or(0);
        if found != expected {
            return Err(bad(format!(
                "`{name}` has {found} values, its parameter has {expected}"
            )));
        }
    }
    let p = &meta.progress;
    let position = (p.epoch as u64)
        .checked_mul(steps_per_epoch as u64)
        .and_then(|s| s.checked_add(p.batch as u64));
    let consistent = p.batch <= steps_per_epoch
        && p.epoch <= crate::train::config::MAX_EPOCHS
        && p.history.len() == p.epoch
        && position == Some(p.step)
        && meta.optimizer_steps == p.step;
    if !consistent {
        return Err(bad(format!(
            "its progress does not add up: epoch {}, batch {} of {steps_per_epoch}, step {}, \
             {} optimizer steps, {} epochs of history",
            p.epoch,
            p.batch,
            p.step,
            meta.optimizer_steps,
            p.history.len()
        )));
    }
    Ok(())
}

/// Restores model weights, optimizer state, masks and progress into
/// `trainer`, after [`check_contents`].
pub fn restore<M: Trainable>(
    trainer: &mut Trainer<M>,
    pack: &Pack,
    meta: &Meta,
    steps_per_epoch: usize,
    path: &Path,
    device: &Device,
) -> Result<()> {
    check_contents(pack, meta, steps_per_epoch, path)?;
    trainer.model = pack::load_module(trainer.model.clone(), pack, "model/", path)?;
    let plain = device.clone().without_autodiff();
    let flat = |name: &str| {
        let (shape, values) = pack.get(name).expect("listed names exist");
        Tensor::<1>::from_data(
            TensorData::new(values.to_vec(), [shape.iter().product::<usize>()]),
            &plain,
        )
    };
    trainer.optim.state.clear();
    trainer.optim.masks.clear();
    for name in pack.names() {
        if let Some(key) = name.strip_prefix("optim/") {
            trainer.optim.state.insert(key.to_string(), flat(name));
        } else if let Some(key) = name.strip_prefix("mask/") {
            trainer.optim.masks.insert(key.to_string(), flat(name));
        }
    }
    trainer.optim.steps = meta.optimizer_steps;
    trainer.progress = meta.progress.clone();
    Ok(())
}
