//! Checkpoints: the model, the optimizer state, the masks, the progress
//! counters and the config that started the run, in one [`Pack`]. One file is
//! one unit — the loader checks the whole file before it touches the trainer.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Progress, Trainable, Trainer};
use crate::error::{Error, Result};
use crate::host;
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

/// Restores model weights, optimizer state, masks and progress into `trainer`.
pub fn restore<M: Trainable>(
    trainer: &mut Trainer<M>,
    pack: &Pack,
    meta: &Meta,
    path: &Path,
    device: &Device,
) -> Result<()> {
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
