//! A comparison's dense stage: the trained model every method of one seed
//! starts from, its reference row, the file that carries both between
//! processes, and the key that ties that file to one config.

use crate::base::device::OpenDevice;
use crate::base::error::{Error, Result};
use crate::base::events::{EpochMetrics, Event, Sink};
use crate::config::RunConfig;
use crate::data::Split;
use crate::metrics::{energy, latency};
use crate::model::Model;
use crate::report::{MethodResult, measure};
use crate::runs::training;

/// The dense reference row for a trained `model`.
pub async fn dense_result(
    model: &Model,
    history: Vec<EpochMetrics>,
    wall: f64,
    split: &Split,
    config: &RunConfig,
    opened: &OpenDevice,
) -> Result<MethodResult> {
    energy::follow(opened);
    let mark = energy::mark();
    let m = measure(
        model,
        None,
        split,
        config.train.eval_batch_size,
        &opened.device,
    )
    .await?;
    let latency = latency::measure(model, split, config.train.batch_size, &opened.device).await?;
    energy::charge("eval", mark);
    Ok(MethodResult {
        method: "dense".into(),
        label: "dense".into(),
        target: crate::prune::RowTarget(None),
        phase: "-".into(),
        test_accuracy: m.test_accuracy,
        test_loss: m.test_loss,
        delta_vs_dense: 0.0,
        params: m.params,
        macs: m.macs,
        bytes: m.bytes,
        nonzero_params: m.nonzero_params,
        params_reduction: 0.0,
        macs_reduction: 0.0,
        bytes_reduction: 0.0,
        wall_seconds: wall,
        train_epochs: history.len(),
        plan: Vec::new(),
        // Its measurement only: training it is the run's `train` phase.
        metered: energy::Metered::since(mark, false),
        latency: Some(latency),
        speedup: Some(1.0),
        paired: None,
        recipe: "-".into(),
        stages: Vec::new(),
        scope: "-".into(),
        history,
        details: serde_json::json!({ "spec": model.spec }),
        verdict: None,
    })
}

/// A comparison's dense stage: the trained model and its reference row.
/// Every method of one seed starts from it (after-training methods) or from
/// the θ₀ it was trained from, which [`crate::model::init_model`] rebuilds from the seed.
pub struct Dense {
    pub model: Model,
    pub result: MethodResult,
}

impl Dense {
    /// A model file whose notes carry the reference row and the config, so
    /// `prunelab eval` reads it like any other.
    pub async fn to_bytes(&self, base: &RunConfig) -> Result<Vec<u8>> {
        crate::io::model_file::to_bytes(
            &self.model,
            serde_json::json!({ "dense": self.result, "config": base, "key": dense_key(base) }),
        )
        .await
    }

    /// Reads [`Dense::to_bytes`]'s file, refusing one made for another config.
    pub fn from_bytes(
        bytes: &[u8],
        path: &std::path::Path,
        base: &RunConfig,
        device: &burn::tensor::Device,
    ) -> Result<Dense> {
        let (model, notes) = crate::io::model_file::from_bytes(bytes, path, device)?;
        let bad = |problem: String| Error::BadCheckpoint {
            path: path.to_path_buf(),
            problem,
        };
        if notes.get("key").and_then(|k| k.as_str()) != Some(dense_key(base).as_str()) {
            return Err(bad(format!(
                "it holds a dense model for another config (not key {}); delete it to retrain",
                dense_key(base)
            )));
        }
        let result = serde_json::from_value(notes.get("dense").cloned().unwrap_or_default())
            .map_err(|e| {
                bad(format!(
                    "its dense row is not readable by this prunelab: {e}"
                ))
            })?;
        Ok(Dense { model, result })
    }
}

/// The run config without its device (where a run executes, which resuming
/// may change too), hashed: runs with one key share one dense model. The
/// shared `[prune]` options stay in, though the dense stage never reads them,
/// so that a checkpoint always belongs to exactly one config.
pub fn dense_key(base: &RunConfig) -> String {
    let mut value = serde_json::to_value(base).expect("plain data");
    if let Some(map) = value.as_object_mut() {
        map.remove("device");
    }
    format!(
        "{:016x}",
        crate::io::pack::fnv1a(value.to_string().as_bytes())
    )
}

/// The data of `base` for `seed`, normalised as its model expects: as
/// `[model] normalize` says, else as the trained model `[model] from` names
/// records (a published checkpoint: ImageNet's mean/std), else with the data
/// set's own statistics. Every command that opens data for a config opens it here.
#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
pub fn open_split(base: &RunConfig, seed: u64) -> Result<Split> {
    let mut split = base.data.load(seed)?;
    if split.norm.is_none() {
        return Ok(split); // features, not images
    }
    if let Some(mut model) = read_start(base, &split, &burn::tensor::Device::flex())? {
        base.fit_input(&mut model, &mut split);
    } else if let Some(n) = base.model.normalize {
        split.norm = Some(n.0);
    }
    Ok(split)
}

/// The trained model `[model] from` names (a file, or a published
/// checkpoint's name), read as the config's model where the file does not
/// say, with the input normalisation it records or `--normalize` gives.
#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
pub fn read_start(
    base: &RunConfig,
    split: &Split,
    device: &burn::tensor::Device,
) -> Result<Option<Model>> {
    let Some(from) = &base.model.from else {
        return Ok(None);
    };
    let path = crate::interop::pretrained::locate(from, base.data.dir.as_deref())?;
    let bytes = crate::base::memory::read_file(&path, crate::base::memory::MAX_MODEL_FILE)?;
    let (classes, shape) = (split.train.classes, split.train.shape);
    let configured = base.model_spec(classes, shape[0]).ok();
    let mut model = crate::interop::read_model(&bytes, &path, configured.as_ref(), device)?.model;
    model.spec.check_data(classes, shape)?;
    if model.spec.name() != base.model.name {
        return Err(Error::config(
            "from",
            from,
            format!(
                "it holds a {}, but [model] name is {}: name the model it holds",
                model.spec.name(),
                base.model.name
            ),
        ));
    }
    let input = base.recorded_input(&model.spec);
    model.spec = model.spec.clone().with_input(input);
    Ok(Some(model))
}

/// In the page a trained model is opened, not named.
#[cfg(not(all(not(target_arch = "wasm32"), feature = "native")))]
pub fn read_start(
    base: &RunConfig,
    _split: &Split,
    _device: &burn::tensor::Device,
) -> Result<Option<Model>> {
    match &base.model.from {
        None => Ok(None),
        Some(from) => Err(Error::config(
            "from",
            from,
            "a comparison starts from a named file in the command-line prunelab; in the page, open the file",
        )),
    }
}

/// Trains the dense model of `base` (through [`training::train`], so a caller
/// that saves its checkpoints can resume it) and measures its reference row;
/// with `[model] from`, reads that trained model instead and measures it.
pub async fn train_dense(
    base: &RunConfig,
    opened: &OpenDevice,
    split: &Split,
    resume: Option<training::Resume<'_>>,
    sink: &mut dyn Sink,
    save: &mut dyn FnMut(Vec<u8>) -> Result<String>,
) -> Result<Dense> {
    if let Some(model) = read_start(base, split, &opened.autodiff())? {
        if model.spec.input() != split.norm {
            return Err(Error::Execution(format!(
                "the data were opened for input {:?} but {} expects {:?}: open them with \
                 runs::dense::open_split",
                split.norm,
                base.model.from.as_deref().unwrap_or_default(),
                model.spec.input()
            )));
        }
        sink.emit(Event::Phase {
            name: "dense".into(),
            detail: format!(
                "{} from {}, trained elsewhere: measured, not trained",
                model.spec.name(),
                base.model.from.as_deref().unwrap_or_default()
            ),
        });
        let result = dense_result(&model, Vec::new(), 0.0, split, base, opened).await?;
        return Ok(Dense { model, result });
    }
    let spec = base.model_spec_for(split)?;
    sink.emit(Event::Phase {
        name: "dense".into(),
        detail: format!("training {} for {} epochs", spec.name(), base.train.epochs),
    });
    let (model, trained) = training::train(
        base,
        opened,
        split,
        resume,
        training::Checkpointing::default(),
        sink,
        save,
    )
    .await?;
    let result = dense_result(
        &model,
        trained.epochs,
        trained.wall_seconds,
        split,
        base,
        opened,
    )
    .await?;
    Ok(Dense { model, result })
}
