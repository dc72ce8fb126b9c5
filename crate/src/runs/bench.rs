//! Throughput: training and inference images per second for one model and
//! batch size on one device, after warm-up (autotune, shader compilation).
//! Inputs are random, so the figure measures the engine, not data loading.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::base::clock;
use crate::base::device::OpenDevice;
use crate::base::error::{Error, Result};
use crate::base::host;
use crate::metrics::count::count;
use crate::metrics::energy;
use crate::model::ModelSpec;
use crate::model::init_model;
use crate::train::cross_entropy;
use crate::train::optim::{Optimizer, OptimizerSettings};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    pub model: String,
    pub batch: usize,
    pub device: String,
    pub params: u64,
    pub macs: u64,
    /// Training (forward, backward, SGD step) images per second.
    pub train_img_s: f64,
    /// Inference (eval-mode forward) images per second.
    pub infer_img_s: f64,
    /// Seconds spent in the warm-up steps (autotune, compilation).
    pub warmup_seconds: f64,
    pub warmup_steps: usize,
    pub timed_steps: usize,
    pub date: String,
    pub prunelab: String,
    /// The convolution path that ran (`burn` or `gemm`; `--conv`).
    #[serde(default)]
    pub conv: String,
    /// Joules of the timed training and inference steps, on a metered
    /// device; per phase (`train`, `infer`) in `energy`.
    #[serde(flatten)]
    pub metered: energy::Metered,
}

/// The most steps (warm-up or timed) and the largest batch `bench` takes.
pub const MAX_STEPS: usize = 100_000;
pub const MAX_BATCH: usize = 65_536;

fn check_sizes(batch: usize, warmup: usize, steps: usize) -> Result<()> {
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(Error::config(
            "--batch",
            batch,
            format!("use 1 to {MAX_BATCH}"),
        ));
    }
    if !(1..=MAX_STEPS).contains(&steps) {
        return Err(Error::config(
            "--steps",
            steps,
            format!("use 1 to {MAX_STEPS}: a throughput needs at least one timed step"),
        ));
    }
    if warmup > MAX_STEPS {
        return Err(Error::config(
            "--warmup",
            warmup,
            format!("use 0 to {MAX_STEPS}"),
        ));
    }
    Ok(())
}

/// Measures `spec` at batch size `batch`: `warmup` untimed steps, then
/// `steps` timed ones, for training and for inference.
pub async fn bench(
    spec: &ModelSpec,
    batch: usize,
    opened: &OpenDevice,
    warmup: usize,
    steps: usize,
) -> Result<BenchResult> {
    check_sizes(batch, warmup, steps)?;
    energy::follow(opened);
    let device = opened.autodiff();
    let mut model = init_model(spec, 1, &device);
    let mut optim = Optimizer::new(OptimizerSettings::default());
    let [c, h, w] = spec.input_shape();
    let x = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(
        burn::tensor::TensorData::new(
            (0..batch as i64)
                .map(|i| i % spec.classes() as i64)
                .collect::<Vec<_>>(),
            [batch],
        ),
        &device,
    );

    let mut train_steps = |n: usize, model: &mut crate::model::Model| -> Tensor<1> {
        let mut last = Tensor::zeros([1], &device);
        for _ in 0..n {
            let loss = cross_entropy(model.forward(x.clone()), y.clone());
            last = loss.clone().detach();
            let grads = GradientsParams::from_grads(loss.backward(), &*model);
            *model = optim.step(0.01, model.clone(), grads);
        }
        last
    };
    let t0 = clock::now();
    host::scalar(train_steps(warmup, &mut model)).await?;
    let warmup_seconds = clock::now() - t0;
    let t1 = clock::now();
    let mark = energy::mark();
    host::scalar(train_steps(steps, &mut model)).await?;
    let train_seconds = clock::now() - t1;
    energy::charge("train", mark);

    let eval = model.valid();
    let x_eval = x.clone().without_autodiff();
    let infer = |n: usize| {
        let mut acc = Tensor::<1>::zeros([1], &x_eval.device());
        for _ in 0..n {
            acc = acc
                + eval
                    .forward(x_eval.clone())
                    .slice([0..1, 0..1])
                    .reshape([1]);
        }
        acc
    };
    host::scalar(infer(warmup)).await?;
    let t2 = clock::now();
    let infer_mark = energy::mark();
    host::scalar(infer(steps)).await?;
    let infer_seconds = clock::now() - t2;
    energy::charge("infer", infer_mark);

    let counted = count(spec);
    Ok(BenchResult {
        model: spec.name(),
        batch,
        device: opened.description.clone(),
        params: counted.params,
        macs: counted.macs,
        train_img_s: (steps * batch) as f64 / train_seconds,
        infer_img_s: (steps * batch) as f64 / infer_seconds,
        warmup_seconds,
        warmup_steps: warmup,
        timed_steps: steps,
        date: clock::today(),
        prunelab: env!("CARGO_PKG_VERSION").into(),
        conv: crate::model::conv::resolve(crate::model::conv::path(), &opened.device).to_string(),
        // From the start of the timed training steps: both timed phases and
        // the inference warm-up between them (which `energy.phases` leaves out).
        metered: energy::Metered::since(mark, true),
    })
}
