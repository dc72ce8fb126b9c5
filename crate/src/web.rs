//! Browser bindings: one `Session` type for the page's worker. Only flat
//! values cross the boundary (numbers, `Float32Array`s, JSON-like objects via
//! serde-wasm-bindgen), and every tensor read is asynchronous.

use std::cell::RefCell;
use std::rc::Rc;

use burn::module::Module;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::config::RunConfig;
use crate::data::{Features, Split};
use crate::device::{DeviceChoice, OpenDevice};
use crate::error::Error;
use crate::events::EpochMetrics;
use crate::metrics::count::count;
use crate::model::Model;
use crate::run::init_model;
use crate::train::{StepStats, Trainer};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_error(e: Error) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()).into())
}

thread_local! {
    /// WebGPU can be initialised once per page; later sessions reuse it.
    static GPU: RefCell<Option<OpenDevice>> = const { RefCell::new(None) };
}

async fn open(choice: DeviceChoice) -> Result<OpenDevice, Error> {
    if choice != DeviceChoice::Cpu
        && let Some(open) = GPU.with(|g| g.borrow().clone())
    {
        return Ok(open);
    }
    let open = crate::device::open_async(choice).await?;
    if open.kind == DeviceChoice::Webgpu {
        GPU.with(|g| *g.borrow_mut() = Some(open.clone()));
    }
    Ok(open)
}

struct Inner {
    config: RunConfig,
    opened: OpenDevice,
    split: Split,
    trainer: Trainer<Model>,
}

#[derive(Serialize)]
struct Info {
    device: String,
    kind: String,
    model: String,
    params: u64,
    macs: u64,
    train_examples: usize,
    test_examples: usize,
    classes: usize,
    steps_per_epoch: usize,
}

#[derive(Serialize)]
struct TrainReport {
    steps: Vec<StepStats>,
    epochs: Vec<EpochMetrics>,
    step: u64,
    epoch: usize,
    finished: bool,
}

/// One model, its data and its trainer, living in the page's worker.
#[wasm_bindgen]
pub struct Session {
    inner: Rc<RefCell<Inner>>,
}

#[wasm_bindgen]
impl Session {
    /// Builds a session from a (partial) run config object; `device` is
    /// `auto`, `webgpu` or `cpu`. `auto` falls back to the CPU when WebGPU is
    /// unavailable, and `info().device` says so.
    pub async fn create(config: JsValue, device: String) -> Result<Session, JsValue> {
        let config: RunConfig = serde_wasm_bindgen::from_value(config)
            .map_err(|e| js_error(Error::config("config", "(page state)", e.to_string())))?;
        config.validate().map_err(js_error)?;
        let choice: DeviceChoice = device.parse().map_err(js_error)?;
        let opened = open(choice).await.map_err(js_error)?;
        let source = config.data.source().map_err(js_error)?;
        let split = match source {
            crate::data::DataSource::Toy(spec) => crate::data::toy::generate(&spec, config.seed),
            _ => Err(Error::config(
                "dataset",
                &config.data.dataset,
                "the page builds toy data here; load CIFAR files with loadCifar",
            )),
        }
        .map_err(js_error)?;
        let spec = config
            .model_spec(split.train.classes, split.train.shape[0])
            .map_err(js_error)?;
        let model = init_model(&spec, config.seed, &opened.autodiff());
        let trainer = Trainer::new(model, config.train.clone(), config.seed);
        Ok(Session {
            inner: Rc::new(RefCell::new(Inner {
                config,
                opened,
                split,
                trainer,
            })),
        })
    }

    /// Device, model size and data sizes.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let inner = self.inner.borrow();
        let counted = count(&inner.trainer.model.spec);
        to_js(&Info {
            device: inner.opened.description.clone(),
            kind: inner.opened.kind.to_string(),
            model: inner.trainer.model.spec.name(),
            params: counted.params,
            macs: counted.macs,
            train_examples: inner.split.train.len(),
            test_examples: inner.split.test.len(),
            classes: inner.split.train.classes,
            steps_per_epoch: inner
                .split
                .train
                .len()
                .div_ceil(inner.config.train.batch_size),
        })
    }

    /// Runs up to `steps` optimisation steps (closing epochs as they end) and
    /// resolves to `{steps, epochs, step, epoch, finished}`.
    pub fn train(&self, steps: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut guard = inner.borrow_mut();
            let Inner {
                config,
                opened,
                split,
                trainer,
            } = &mut *guard;
            let device = opened.autodiff();
            let mut report = TrainReport {
                steps: vec![],
                epochs: vec![],
                step: 0,
                epoch: 0,
                finished: false,
            };
            while report.steps.len() < steps as usize && !trainer.finished() {
                let loader = trainer.loader(&split.train, split.norm, config.data.augment);
                match trainer.step(&loader, &device).await.map_err(js_error)? {
                    Some(stats) => report.steps.push(stats),
                    None => report.epochs.push(
                        trainer
                            .end_epoch(&split.test, split.norm, &device)
                            .await
                            .map_err(js_error)?,
                    ),
                }
            }
            report.step = trainer.progress.step;
            report.epoch = trainer.progress.epoch;
            report.finished = trainer.finished();
            to_js(&report)
        })
    }

    /// Class probabilities on a `resolution × resolution` grid over
    /// `[-extent, extent]²` (row-major from the top-left, `classes` values per
    /// cell): the decision boundary, in one batched forward pass.
    pub fn boundary(&self, resolution: u32, extent: f32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (model, device) = {
                let guard = inner.borrow();
                (guard.trainer.model.valid(), guard.opened.device.clone())
            };
            let probs = crate::report::boundary::grid_probabilities(
                &model,
                resolution as usize,
                extent,
                &device,
            )
            .await
            .map_err(js_error)?;
            Ok(js_sys::Float32Array::from(probs.as_slice()).into())
        })
    }

    /// Points (`x0, y0, x1, y1, …`) of the `train` or `test` set.
    pub fn points(&self, which: &str) -> Vec<f32> {
        let inner = self.inner.borrow();
        let data = if which == "test" {
            &inner.split.test
        } else {
            &inner.split.train
        };
        match &data.features {
            Features::Floats(f) => f.clone(),
            Features::Bytes(_) => Vec::new(),
        }
    }

    /// Labels of the `train` or `test` set.
    pub fn labels(&self, which: &str) -> Vec<u16> {
        let inner = self.inner.borrow();
        let data = if which == "test" {
            &inner.split.test
        } else {
            &inner.split.train
        };
        data.labels.clone()
    }
}
