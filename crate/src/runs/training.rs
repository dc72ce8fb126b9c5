//! A training run, composed from the engine's parts (the CLI's `train`; a
//! comparison is `experiment`). Persistence is the caller's: checkpoints are handed out
//! as bytes.

use std::path::Path;

use crate::base::clock;
use crate::base::device::OpenDevice;
use crate::base::error::{Error, Result};
use crate::base::events::{Event, Sink};
use crate::base::{fault, interrupt};
use crate::config::RunConfig;
use crate::data::Split;
use crate::io::pack::Pack;
use crate::metrics::count::count;
use crate::model::{Model, init_model};
use crate::report::TrainResult;
use crate::train::checkpoint::{self, Meta};
use crate::train::{Trainer, Until, advance};

/// A checkpoint to continue from, already read and checked.
pub struct Resume<'a> {
    pub pack: Pack,
    pub meta: Meta,
    pub path: &'a Path,
}

/// When `training::train` hands out checkpoints: after every epoch always, and
/// every `every_steps` optimisation steps within one (0: never mid-epoch).
#[derive(Debug, Clone, Copy, Default)]
pub struct Checkpointing {
    pub every_steps: u64,
}

/// Trains `config`'s model on `split`, calling `save` with checkpoint bytes
/// as `checkpointing` says, and returns the trained model and the result.
/// A stop request ([`crate::base::interrupt`]) saves a checkpoint first and then
/// returns [`Error::Interrupted`]. `save` returns where it wrote (for messages).
pub async fn train(
    config: &RunConfig,
    opened: &OpenDevice,
    split: &Split,
    resume: Option<Resume<'_>>,
    checkpointing: Checkpointing,
    sink: &mut dyn Sink,
    save: &mut dyn FnMut(Vec<u8>) -> Result<String>,
) -> Result<(Model, TrainResult)> {
    let start = clock::now();
    let device = opened.autodiff();
    let spec = match &resume {
        Some(r) => {
            crate::io::model_file::check_fits(&r.meta.spec, &r.pack, r.path)?;
            check_same_run(config, &r.meta.config, r.path)?;
            r.meta
                .spec
                .check_data(split.train.classes, split.train.shape)?;
            r.meta.spec.clone()
        }
        None => config.model_spec_for(split)?,
    };
    // The train command, a comparison's dense stage and a resumed run.
    crate::metrics::memory::check_batch(opened.kind, &spec, config.train.batch_size, "batch_size")?;
    let mut trainer = Trainer::new(
        init_model(&spec, config.seed, &device),
        config.train.clone(),
        config.seed,
    );
    let steps_per_epoch = split.train.len().div_ceil(config.train.batch_size);
    if let Some(r) = &resume {
        checkpoint::restore(
            &mut trainer,
            &r.pack,
            &r.meta,
            steps_per_epoch,
            r.path,
            &device,
        )?;
        let p = &trainer.progress;
        let text = if trainer.finished() {
            format!(
                "resuming {}: it has finished all {} epochs, nothing is left to train \
                 (raise --epochs to train on)",
                r.path.display(),
                p.epoch
            )
        } else {
            format!(
                "resuming {} at epoch {}, batch {} (step {})",
                r.path.display(),
                p.epoch + 1,
                p.batch,
                p.step
            )
        };
        sink.emit(Event::Notice { text });
    }
    let counted = count(&spec);
    sink.emit(Event::RunStarted {
        device: opened.description.clone(),
        model: spec.name(),
        params: counted.params,
        macs: counted.macs,
        epochs: config.train.epochs,
        steps_per_epoch,
    });
    let config_json = serde_json::to_value(config).expect("plain data");
    crate::metrics::energy::follow(opened);
    let energy_mark = crate::metrics::energy::mark();
    // The data position and every random draw are functions of (seed, epoch,
    // batch), all in the checkpoint, so a resumed run replays nothing and
    // skips nothing.
    while !trainer.finished() {
        if interrupt::requested() {
            let saved = save(checkpoint::to_bytes(&trainer, &spec, config_json.clone()).await?)?;
            return Err(Error::Interrupted {
                step: trainer.progress.step,
                saved,
                resumable: true,
            });
        }
        let closed = match advance(
            &mut trainer,
            split,
            config.data.augment,
            &device,
            Until::Steps(1),
            sink,
        )
        .await
        {
            Ok(closed) => closed,
            // A signal that arrived after the check above: save, then stop.
            Err(Error::Interrupted { .. }) => continue,
            Err(e) => return Err(e),
        };
        let every = checkpointing.every_steps;
        if every > 0 && trainer.progress.step.is_multiple_of(every) {
            save(checkpoint::to_bytes(&trainer, &spec, config_json.clone()).await?)?;
        }
        fault::after_step(trainer.progress.step);
        if !closed.is_empty() {
            save(checkpoint::to_bytes(&trainer, &spec, config_json.clone()).await?)?;
        }
    }
    crate::metrics::energy::charge("train", energy_mark);
    let last = trainer.progress.history.last().cloned();
    let result = TrainResult {
        prunelab: env!("CARGO_PKG_VERSION").into(),
        date: clock::today(),
        model: spec.name(),
        device: opened.description.clone(),
        params: counted.params,
        macs: counted.macs,
        test_accuracy: last.as_ref().map_or(0.0, |m| m.test_accuracy),
        test_loss: last.as_ref().map_or(0.0, |m| m.test_loss),
        wall_seconds: clock::now() - start,
        train_examples: split.train.len(),
        valid_examples: split.valid.len(),
        test_examples: split.test_len(),
        epochs: trainer.progress.history.clone(),
        config: config.clone(),
        metered: crate::metrics::energy::Metered::since(energy_mark, true),
    };
    Ok((trainer.model, result))
}

/// What a resumed run may change from the run that wrote its checkpoint:
/// how long it trains and where. Anything else would make a hybrid run whose
/// record no longer says how it was made.
pub const RESUME_MAY_CHANGE: &[&str] = &["train.epochs", "device"];

/// Refuses `--resume` when the command's config differs from the one stored
/// in the checkpoint, naming each field (beyond [`RESUME_MAY_CHANGE`]).
fn check_same_run(config: &RunConfig, stored: &serde_json::Value, path: &Path) -> Result<()> {
    fn flatten(v: &serde_json::Value, at: String, out: &mut Vec<(String, serde_json::Value)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    flatten(v, key, out);
                }
            }
            other => out.push((at, other.clone())),
        }
    }
    // An older checkpoint without a config: nothing to compare.
    if !stored.is_object() {
        return Ok(());
    }
    let (mut now, mut then) = (Vec::new(), Vec::new());
    flatten(
        &serde_json::to_value(config).expect("plain data"),
        String::new(),
        &mut now,
    );
    flatten(stored, String::new(), &mut then);
    let then: std::collections::BTreeMap<_, _> = then.into_iter().collect();
    let changed: Vec<String> = now
        .iter()
        .filter(|(k, _)| !RESUME_MAY_CHANGE.contains(&k.as_str()))
        .filter_map(|(k, v)| {
            let old = then.get(k).cloned().unwrap_or(serde_json::Value::Null);
            (old != *v).then(|| format!("{k} ({old} → {v})"))
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::config(
        "resume",
        path.display(),
        format!(
            "the checkpoint was written by a different run: {}; run the same command \
             (only {} may change), or start over with --overwrite",
            changed.join(", "),
            RESUME_MAY_CHANGE.join(" and ")
        ),
    ))
}
