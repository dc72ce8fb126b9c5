//! Browser bindings: one `Session` for the page's worker, wrapping the
//! engine's interactive [`Lab`]. Only flat values cross the boundary
//! (numbers, typed arrays, JSON-like objects via serde-wasm-bindgen) and every
//! tensor read is asynchronous. Calls are serialised by the worker.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::base::device::{DeviceChoice, OpenDevice};
use crate::base::error::Error;
use crate::config::RunConfig;
use crate::data::{Features, Given, Split};
use crate::metrics::count::count;
use crate::prune::{PruneOptions, Target};
use crate::runs::lab::Lab;

#[wasm_bindgen(start)]
pub fn start() {
    // Run the static constructors once, here. Calling them explicitly is
    // also what tells wasm-ld not to wrap every export in a call to them
    // (see `constructor_runs`).
    unsafe { __wasm_call_ctors() };
    console_error_panic_hook::set_once();
}

unsafe extern "C" {
    /// Synthesised by wasm-ld: every `.init_array` entry (cubecl's and
    /// inventory's registrations, our counter), in order.
    fn __wasm_call_ctors();
}

/// How many times the module's static constructors have run. They must run
/// exactly once: wasm-ld re-runs them at the top of *every* export when the
/// module never calls `__wasm_call_ctors` itself (dtolnay/inventory#76), and
/// cubecl registers ~2,300 of them (counted in a profile of the page) — that
/// made each call from JavaScript cost milliseconds. The page's tests hold this at 1.
#[wasm_bindgen(js_name = constructorRuns)]
pub fn constructor_runs() -> u32 {
    CONSTRUCTOR_RUNS.load(std::sync::atomic::Ordering::Relaxed)
}

static CONSTRUCTOR_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn count_constructor_run() {
    CONSTRUCTOR_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

// A constructor of our own, registered as inventory's are, that counts.
#[used]
#[unsafe(link_section = ".init_array")]
static COUNT_CONSTRUCTOR_RUNS: extern "C" fn() = count_constructor_run;

// `initThreadPool(n)`, for the page's multi-threaded build: starts rayon's
// `n` workers (each a Web Worker on the module's shared memory).
#[cfg(feature = "web-threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// The method registry, described (names, titles, papers, defaults, options):
/// the page builds its method lists from it.
#[wasm_bindgen]
pub fn methods() -> Result<JsValue, JsValue> {
    to_js(&crate::prune::catalog())
}

fn js_error(e: Error) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()).into())
}

fn from_js<T: for<'de> Deserialize<'de>>(value: JsValue, what: &str) -> Result<T, JsValue> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| js_error(Error::config(what, "(page state)", e.to_string())))
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
    let open = crate::base::device::open_async(choice).await?;
    if open.kind == DeviceChoice::Webgpu {
        GPU.with(|g| *g.borrow_mut() = Some(open.clone()));
    }
    Ok(open)
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
    groups: Vec<(String, usize)>,
}

/// One model, its data and its lab, living in the page's worker.
#[wasm_bindgen]
pub struct Session {
    lab: Rc<RefCell<Lab>>,
}

fn promise<F, T>(lab: Rc<RefCell<Lab>>, f: F) -> Promise
where
    F: for<'a> FnOnce(
            &'a mut Lab,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, Error>> + 'a>,
        > + 'static,
    T: Serialize,
{
    future_to_promise(async move {
        let mut guard = lab.borrow_mut();
        let value = f(&mut guard).await.map_err(js_error)?;
        to_js(&value)
    })
}

#[wasm_bindgen]
impl Session {
    /// A toy-problem session from a (partial) run config; `device` is
    /// `auto`, `webgpu` or `cpu`. `auto` falls back to the CPU when WebGPU is
    /// unavailable, and `info().device` says so. With `csv` (the text of an
    /// `x,y,label` file) the points come from it instead of a generator; with
    /// `snapshot` (a `.plm` file) training continues from that model.
    pub async fn create(
        config: JsValue,
        device: String,
        csv: Option<String>,
        snapshot: Option<Vec<u8>>,
    ) -> Result<Session, JsValue> {
        let config: RunConfig = from_js(config, "config")?;
        let given = match &csv {
            Some(text) => Given::Csv {
                name: "uploaded.csv",
                bytes: text.as_bytes(),
            },
            None => Given::Nothing,
        };
        let split = config
            .data
            .load_given(given, config.seed)
            .map_err(js_error)?;
        let session = Session::with_split(config, device, split).await?;
        if let Some(bytes) = snapshot {
            session.lab.borrow_mut().restore(&bytes).map_err(js_error)?;
        }
        Ok(session)
    }

    /// A CIFAR session from the page's files (the official binary batches:
    /// `names[i]` holds `contents[i]`, a `Uint8Array`);
    /// `config.data.train_subset`/`test_subset` apply.
    #[wasm_bindgen(js_name = createCifar)]
    pub async fn create_cifar(
        config: JsValue,
        device: String,
        names: Vec<String>,
        contents: js_sys::Array,
    ) -> Result<Session, JsValue> {
        let config: RunConfig = from_js(config, "config")?;
        let files: Vec<(String, Vec<u8>)> = names
            .into_iter()
            .zip(
                contents
                    .iter()
                    .map(|c| js_sys::Uint8Array::new(&c).to_vec()),
            )
            .collect();
        let split = config
            .data
            .load_given(Given::Cifar(&files), config.seed)
            .map_err(js_error)?;
        Session::with_split(config, device, split).await
    }

    async fn with_split(
        config: RunConfig,
        device: String,
        split: Split,
    ) -> Result<Session, JsValue> {
        let choice: DeviceChoice = device.parse().map_err(js_error)?;
        let opened = open(choice).await.map_err(js_error)?;
        let lab = Lab::new(config, opened, split).map_err(js_error)?;
        Ok(Session {
            lab: Rc::new(RefCell::new(lab)),
        })
    }

    /// Device, model size and data sizes.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let lab = self.lab.borrow();
        let shown = lab.shown();
        let counted = count(&shown.spec);
        to_js(&Info {
            device: lab.device.description.clone(),
            kind: lab.device.kind.to_string(),
            model: shown.spec.name(),
            params: counted.params,
            macs: counted.macs,
            train_examples: lab.split.train.len(),
            test_examples: lab.split.test_len(),
            classes: lab.split.train.classes,
            steps_per_epoch: lab.steps_per_epoch(),
            groups: shown
                .spec
                .unit_groups()
                .into_iter()
                .map(|g| (g.name, g.size))
                .collect(),
        })
    }

    /// Up to `steps` optimisation steps: `{steps, epochs, gates, cut, finished, …}`.
    pub fn train(&self, steps: u32) -> Promise {
        promise(self.lab.clone(), move |lab| {
            Box::pin(lab.train(steps as usize))
        })
    }

    /// One toy-lab frame: `steps` of training (none: `report` is null),
    /// then what the page draws, `{report, boundary, maps, network}`
    /// (`boundary` is the selected unit's map when `layer` is given). On
    /// WebGPU the training's figures and the views are read back together.
    pub fn frame(
        &self,
        steps: u32,
        resolution: u32,
        extent: f32,
        unit_resolution: u32,
        layer: Option<String>,
        unit: Option<u32>,
    ) -> Promise {
        #[derive(Serialize)]
        struct Frame {
            report: Option<crate::runs::lab::LabReport>,
            #[serde(flatten)]
            views: crate::runs::lab::views::FrameViews,
        }
        promise(self.lab.clone(), move |lab| {
            Box::pin(async move {
                let selected = layer.as_deref().zip(unit.map(|u| u as usize));
                let (report, views) = lab
                    .frame(
                        steps as usize,
                        resolution as usize,
                        extent,
                        unit_resolution as usize,
                        selected,
                    )
                    .await?;
                Ok(Frame { report, views })
            })
        })
    }

    /// Computes `method`'s importances on the trained model (options: a partial `[prune]` table).
    pub fn score(&self, method: String, options: JsValue) -> Promise {
        let options: Result<PruneOptions, JsValue> = from_js(options, "options");
        promise(self.lab.clone(), move |lab| {
            Box::pin(async move {
                let options = options
                    .map_err(|_| Error::config("options", "(page state)", "not a [prune] table"))?;
                lab.score(&method, &options).await
            })
        })
    }

    /// Prunes `amount` (0..1) of the units or weights from the cached importances.
    pub fn prune(&self, amount: f32) -> Promise {
        promise(self.lab.clone(), move |lab| Box::pin(lab.prune(amount)))
    }

    /// Makes the pruned view the model that trains next, for `epochs`.
    pub fn finetune(&self, epochs: u32) -> Result<(), JsValue> {
        self.lab
            .borrow_mut()
            .finetune(epochs as usize)
            .map_err(js_error)
    }

    /// Starts S1's gated pass for `macs` (share of MACs removed).
    #[wasm_bindgen(js_name = startGated)]
    pub fn start_gated(&self, macs: f32, options: JsValue) -> Result<(), JsValue> {
        let options: PruneOptions = from_js(options, "options")?;
        self.lab
            .borrow_mut()
            .start_gated(Target::Macs(macs), &options)
            .map_err(js_error)
    }

    /// Points (`x0, y0, …`) of the `train` or `test` set (toy sessions).
    pub fn points(&self, which: &str) -> Vec<f32> {
        let lab = self.lab.borrow();
        let data = if which == "test" {
            lab.split.test()
        } else {
            &lab.split.train
        };
        match &data.features {
            Features::Floats(f) => f.clone(),
            Features::Bytes(_) => Vec::new(),
        }
    }

    /// Labels of the `train` or `test` set.
    pub fn labels(&self, which: &str) -> Vec<u16> {
        let lab = self.lab.borrow();
        let data = if which == "test" {
            lab.split.test()
        } else {
            &lab.split.train
        };
        data.labels.clone()
    }

    /// The shown model as a `.plm` file (`prunelab eval/prune --model-file` read it).
    #[wasm_bindgen(js_name = modelFile)]
    pub fn model_file(&self) -> Promise {
        let lab = self.lab.clone();
        future_to_promise(async move {
            let bytes = lab.borrow().model_file().await.map_err(js_error)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// Continues from a model file (`.plm`, or a PyTorch model saved as
    /// `.safetensors`): `{ readAs }` says how a foreign file's names were read.
    #[wasm_bindgen(js_name = importModel)]
    pub fn import_model(&self, bytes: Vec<u8>, name: String) -> Result<JsValue, JsValue> {
        let read_as = self
            .lab
            .borrow_mut()
            .import(&bytes, &name)
            .map_err(js_error)?;
        to_js(&serde_json::json!({ "readAs": read_as }))
    }

    /// The shown model as `plm`, `safetensors` or `onnx`: `{ bytes, size }`.
    #[wasm_bindgen(js_name = exportModel)]
    pub fn export_model(&self, format: String) -> Promise {
        let lab = self.lab.clone();
        future_to_promise(async move {
            let format = crate::interop::Format::for_path(
                std::path::Path::new(&format!("model.{format}")),
                "format",
            )
            .map_err(js_error)?;
            let (bytes, size) = lab.borrow().export(format).await.map_err(js_error)?;
            let out = js_sys::Object::new();
            js_sys::Reflect::set(
                &out,
                &"bytes".into(),
                &js_sys::Uint8Array::from(bytes.as_slice()).into(),
            )?;
            js_sys::Reflect::set(&out, &"size".into(), &size.into())?;
            Ok(out.into())
        })
    }

    /// `n` test images (bytes, `[n, 3, 32, 32]`), their labels and the shown
    /// model's predictions.
    pub fn examples(&self, n: u32) -> Promise {
        let lab = self.lab.clone();
        future_to_promise(async move {
            let value = lab.borrow().examples(n as usize).await.map_err(js_error)?;
            to_js(&value)
        })
    }

    /// Milliseconds per batch of `batch` test inputs through the shown and the
    /// dense model, measured here after a warm-up (`repeats` timed runs).
    pub fn latency(&self, batch: u32, repeats: u32) -> Promise {
        let lab = self.lab.clone();
        future_to_promise(async move {
            let value = lab
                .borrow()
                .latency(batch as usize, repeats as usize)
                .await
                .map_err(js_error)?;
            to_js(&value)
        })
    }

    /// Per-group unit counts of the dense and the shown model.
    pub fn widths(&self) -> Result<JsValue, JsValue> {
        to_js(&self.lab.borrow().widths())
    }

    /// The dense model's groups: each one's units, the layers that produce
    /// them and the layers that read them (what is removed with a unit).
    pub fn groups(&self) -> Result<JsValue, JsValue> {
        to_js(&self.lab.borrow().groups())
    }
}
