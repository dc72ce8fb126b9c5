//! The interactive lab behind the playground: train a little, prune with a
//! slider from cached importances, fine-tune, or run S1's gated pass epoch by
//! epoch — with views of the network in between. Backend-agnostic (the page
//! drives it on WebGPU or the CPU; the tests drive it natively); every read
//! is asynchronous.

use burn::module::Module;
use serde::Serialize;

use crate::config::RunConfig;
use crate::data::Split;
use crate::device::OpenDevice;
use crate::error::{Error, Result};
use crate::events::EpochMetrics;
use crate::host;
use crate::metrics::bytes::size;
use crate::metrics::count::count;
use crate::model::init_model;
use crate::model::masks::WeightMasks;
use crate::model::{Ctx, Model};
use crate::prune::capture::Sampling;
use crate::prune::masks::{LayerScores, masks_from_scores};
use crate::prune::plan::Plan;
use crate::prune::polarization::{GateReport, PolarizationRun};
use crate::prune::select::{Normalize, Scope, SelectOptions, UnitScores, select_units};
use crate::prune::surgery::cut;
use crate::prune::{PruneOptions, Target, by_name};
use crate::train::{StepStats, Trainer, evaluate};

/// Cached importances of the dense model.
enum Scores {
    /// Unit scores, with the method's own normalisation and ranking scope.
    Units(UnitScores, Normalize, Scope),
    Weights(Vec<LayerScores>),
}

/// The current pruned view: what the slider last asked for.
struct View {
    plan: Option<Plan>,
    masks: Option<WeightMasks>,
    /// The smaller (cut) or masked model.
    model: Model,
    report: PruneReport,
}

/// Sizes and accuracy of a model, before or after pruning.
#[derive(Debug, Clone, Serialize)]
pub struct Sized {
    pub params: u64,
    pub macs: u64,
    pub bytes: u64,
    /// `None` where there is nothing to measure (S1 from scratch has no
    /// trained dense model to compare with).
    pub test_accuracy: Option<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub method: String,
    pub amount: f32,
    pub dense: Sized,
    pub pruned: Sized,
    /// `conv1 16→9` lines.
    pub plan: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    pub steps: Vec<StepStats>,
    pub epochs: Vec<EpochMetrics>,
    pub step: u64,
    pub epoch: usize,
    pub finished: bool,
    /// Present while S1's gated pass runs (one per finished epoch).
    pub gates: Vec<GateReport>,
    /// Set when a gated pass just ended and its network was cut.
    pub cut: Option<PruneReport>,
    /// S1's own account of the pass (what it learned, what settle did).
    pub gated_details: Option<serde_json::Value>,
}

/// One layer of a fully connected network, for drawing.
#[derive(Debug, Clone, Serialize)]
pub struct LayerView {
    pub name: String,
    pub inputs: usize,
    pub outputs: usize,
    /// `|w|`, `inputs × outputs`, row-major by input.
    pub magnitude: Vec<f32>,
    /// Weight kept (false: masked by weight-level pruning).
    pub weight_alive: Option<Vec<bool>>,
    /// Output unit kept (false: removed by structured pruning or a closed gate).
    pub unit_alive: Vec<bool>,
    /// S1's soft gate values on the outputs, while a gated pass runs.
    pub gates: Option<Vec<f32>>,
}

pub struct Lab {
    pub config: RunConfig,
    pub device: OpenDevice,
    pub split: Split,
    trainer: Trainer<Model>,
    gated: Option<PolarizationRun>,
    /// The trained model S1's gated pass is compared with (if one was trained).
    gated_reference: Option<Model>,
    /// The dense model the scores were computed on.
    dense: Option<Model>,
    scores: Option<(String, Scores)>,
    view: Option<View>,
}

impl Lab {
    pub fn new(config: RunConfig, device: OpenDevice, split: Split) -> Result<Lab> {
        let spec = config.model_spec(split.train.classes, split.train.shape[0])?;
        let model = init_model(&spec, config.seed, &device.autodiff());
        let trainer = Trainer::new(model, config.train.clone(), config.seed);
        Ok(Lab {
            config,
            device,
            split,
            trainer,
            gated: None,
            gated_reference: None,
            dense: None,
            scores: None,
            view: None,
        })
    }

    /// Continues from a saved model (the page's snapshot after a lost GPU,
    /// or a downloaded `.plm`): its architecture and weights replace the fresh ones.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (model, _) = crate::io::model_file::from_bytes(
            bytes,
            std::path::Path::new("snapshot.plm"),
            &self.device.autodiff(),
        )?;
        let mut config = self.trainer.config.clone();
        config.epochs = config.epochs.max(1);
        self.trainer = Trainer::new(model, config, self.config.seed);
        self.gated = None;
        self.view = None;
        self.dense = None;
        self.scores = None;
        Ok(())
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.split
            .train
            .len()
            .div_ceil(self.trainer.config.batch_size)
    }

    /// The model the views show: the gated network during S1, the pruned
    /// view after the slider moved, else the one training.
    pub fn shown(&self) -> Model {
        if let Some(run) = &self.gated {
            return run.trainer.model.gated.model.clone();
        }
        match &self.view {
            Some(v) => v.model.clone(),
            None => self.trainer.model.clone(),
        }
    }

    /// Runs up to `steps` optimisation steps, closing epochs as they end.
    pub async fn train(&mut self, steps: usize) -> Result<LabReport> {
        let device = self.device.autodiff();
        let mut report = LabReport {
            steps: vec![],
            epochs: vec![],
            step: 0,
            epoch: 0,
            finished: false,
            gates: vec![],
            cut: None,
            gated_details: None,
        };
        if let Some(run) = self.gated.as_mut() {
            let split = &self.split;
            let per_epoch = split.train.len().div_ceil(run.trainer.config.batch_size);
            while report.steps.len() < steps && !run.finished() {
                let loader = run
                    .trainer
                    .loader(&split.train, split.norm, self.config.data.augment);
                if let Some(s) = run.step(&loader, split, &device).await? {
                    report.steps.push(s);
                }
                if run.trainer.progress.batch >= per_epoch {
                    report.epochs.push(
                        run.trainer
                            .end_epoch(split.test(), split.norm, &device)
                            .await?,
                    );
                    report.gates.push(run.report(split).await?);
                }
            }
            report.step = run.trainer.progress.step;
            report.epoch = run.trainer.progress.epoch;
            if run.finished() {
                let run = self.gated.take().expect("checked above");
                let spec_before = run.trainer.model.gated.model.spec.clone();
                // The reference is the dense model trained before the pass,
                // if any; S1 started from fresh weights, so its own gated
                // network is not a dense reference.
                let mut before = match self.gated_reference.take() {
                    Some(reference) => self.sized(&reference, None).await?,
                    None => {
                        let mut s = self.sized(&run.trainer.model.gated.model, None).await?;
                        s.test_accuracy = None;
                        s
                    }
                };
                before.macs = count(&spec_before).macs;
                let outcome = run.finish(split, &device.clone()).await?;
                let plan = outcome.plan.clone().expect("S1 cuts");
                let after = self.sized(&outcome.model, None).await?;
                report.cut = Some(PruneReport {
                    method: "polarization".into(),
                    amount: 0.0,
                    dense: before,
                    pruned: after,
                    plan: plan.describe(&spec_before),
                });
                report.gated_details = Some(outcome.details.clone());
                let mut config = self.config.train.clone();
                config.epochs = 0;
                self.trainer = Trainer::new(outcome.model, config, self.config.seed);
                report.finished = true;
            }
            return Ok(report);
        }
        let t = &mut self.trainer;
        let per_epoch = self.split.train.len().div_ceil(t.config.batch_size);
        while report.steps.len() < steps && !t.finished() {
            let loader = t.loader(&self.split.train, self.split.norm, self.config.data.augment);
            if let Some(s) = t.step(&loader, &device).await? {
                report.steps.push(s);
            }
            if t.progress.batch >= per_epoch {
                report.epochs.push(
                    t.end_epoch(self.split.test(), self.split.norm, &device)
                        .await?,
                );
            }
        }
        report.step = t.progress.step;
        report.epoch = t.progress.epoch;
        report.finished = t.finished();
        Ok(report)
    }

    async fn sized(&self, model: &Model, masks: Option<&WeightMasks>) -> Result<Sized> {
        let (_, accuracy) = evaluate(
            &model.valid(),
            self.split.test(),
            self.split.norm,
            500,
            &self.device.device,
        )
        .await?;
        let counted = count(&model.spec);
        let sized = size(&model.spec, masks);
        Ok(Sized {
            params: sized.nonzero_params,
            macs: counted.macs,
            bytes: sized.bytes,
            test_accuracy: Some(accuracy),
        })
    }

    /// Computes and caches `method`'s importances on the current (trained)
    /// model, which becomes the dense reference for the slider.
    pub async fn score(&mut self, method: &str, options: &PruneOptions) -> Result<()> {
        let info = by_name(method)?.info();
        // A fork: training on after scoring must not move the reference's BN statistics.
        let dense = self
            .dense
            .clone()
            .unwrap_or_else(|| self.trainer.model.deep_fork());
        let sampling = Sampling::new(options, info, false, self.config.seed);
        let split = &self.split;
        let scores = match method {
            "l1" => Scores::Units(
                crate::prune::l1::scores(&dense).await?,
                Normalize::None,
                Scope::PerLayer,
            ),
            "random" => Scores::Units(
                crate::prune::random::unit_scores(&dense.spec, self.config.seed),
                Normalize::None,
                Scope::PerLayer,
            ),
            "hrank" => Scores::Units(
                crate::prune::hrank::scores(&dense, split, sampling).await?,
                Normalize::None,
                Scope::PerLayer,
            ),
            "energy" => {
                let o = &options.energy;
                Scores::Units(
                    crate::prune::energy::scores(&dense, split, sampling, o.svd, o.criterion)
                        .await?,
                    Normalize::L1,
                    Scope::Global,
                )
            }
            "magnitude" => Scores::Weights(crate::prune::magnitude::scores(&dense).await?),
            "snip" => Scores::Weights(crate::prune::snip::scores(&dense, split, sampling).await?),
            "flexrel" => {
                let o = &options.flexrel;
                let magnitude = crate::prune::magnitude::scores(&dense).await?;
                let r = crate::prune::lrp::weight_relevance(
                    &dense,
                    split,
                    &self.device,
                    o.samples,
                    options.score_batch_size,
                    o.relevance,
                    o.lrp_epsilon,
                )?;
                let mut relevance = Vec::new();
                for t in r {
                    relevance.push(host::floats(t).await?);
                }
                Scores::Weights(crate::prune::flexrel::combine(
                    &magnitude,
                    &relevance,
                    o.delta,
                    o.norm_scope,
                ))
            }
            other => {
                return Err(Error::config(
                    "method",
                    other,
                    "the slider re-prunes after training: pick random, l1, hrank, energy, magnitude, snip or flexrel (S1 runs its own pass)",
                ));
            }
        };
        self.dense = Some(dense);
        self.scores = Some((method.to_string(), scores));
        Ok(())
    }

    /// Prunes `amount` (0..1) of the units or weights by the cached scores.
    pub async fn prune(&mut self, amount: f32) -> Result<PruneReport> {
        let (method, scores) = self
            .scores
            .as_ref()
            .ok_or_else(|| Error::config("prune", "(no scores)", "choose a method first"))?;
        let method = method.clone();
        let dense = self.dense.clone().expect("scored");
        let (plan, masks, model) = match scores {
            Scores::Units(s, normalize, scope) => {
                let options = SelectOptions {
                    normalize: *normalize,
                    scope: *scope,
                    ..SelectOptions::default()
                };
                let plan = select_units(&dense.spec, s, &Target::Sparsity(amount), &options)?;
                let model = cut(&dense, &plan)?;
                (Some(plan), None, model)
            }
            Scores::Weights(s) => {
                let masks = masks_from_scores(s, amount, Scope::Global)?;
                let model = masks.apply(&dense);
                (None, Some(masks), model)
            }
        };
        let report = PruneReport {
            method,
            amount,
            dense: self.sized(&dense, None).await?,
            pruned: self.sized(&model, masks.as_ref()).await?,
            plan: plan
                .as_ref()
                .map(|p| p.describe(&dense.spec))
                .unwrap_or_default(),
        };
        self.view = Some(View {
            plan,
            masks,
            model,
            report: report.clone(),
        });
        Ok(report)
    }

    /// Fine-tunes the pruned view for `epochs` (masks held); `train` then runs it.
    pub fn finetune(&mut self, epochs: usize) -> Result<()> {
        let view = self
            .view
            .take()
            .ok_or_else(|| Error::config("fine-tune", "(nothing pruned)", "prune first"))?;
        let mut config = self.config.train.clone();
        config.epochs = epochs;
        let mut trainer = Trainer::new(view.model, config, self.config.seed);
        if let Some(m) = &view.masks {
            trainer.optim.masks = m.for_optimizer(&self.device.device);
        }
        self.trainer = trainer;
        self.dense = None;
        self.scores = None;
        Ok(())
    }

    /// Starts S1's one gated pass from fresh weights (same seed) for `target`.
    pub fn start_gated(&mut self, target: Target, options: &PruneOptions) -> Result<()> {
        let spec = self
            .config
            .model_spec(self.split.train.classes, self.split.train.shape[0])?;
        let device = self.device.autodiff();
        let model = init_model(&spec, self.config.seed, &device);
        self.gated_reference =
            (self.trainer.progress.step > 0).then(|| self.trainer.model.deep_fork());
        self.gated = Some(PolarizationRun::new(
            model,
            target,
            options.polarization.clone(),
            self.config.train.clone(),
            self.split.train.len(),
            self.config.seed,
            &device,
        )?);
        self.view = None;
        self.dense = None;
        self.scores = None;
        Ok(())
    }

    /// The layers of a fully connected model (MLP, or resmlp's 1×1 convs)
    /// with what pruning removed, for the network drawing. Structured views
    /// draw the dense architecture with removed units greyed out.
    pub async fn network(&self) -> Result<Vec<LayerView>> {
        let (model, plan, masks, gates) = if let Some(run) = &self.gated {
            let gated = &run.trainer.model.gated;
            let state =
                crate::prune::polarization::gate_state(gated, &self.split, 256, 256).await?;
            let gates: Vec<(String, Vec<f32>)> = gated
                .gates
                .unit_names
                .iter()
                .cloned()
                .zip(state.units)
                .collect();
            (
                run.trainer.model.gated.model.clone(),
                None,
                None,
                Some(gates),
            )
        } else {
            match (&self.view, &self.dense) {
                (Some(v), Some(d)) => (d.clone(), v.plan.clone(), v.masks.clone(), None),
                _ => (self.trainer.model.clone(), None, None, None),
            }
        };
        let mut out = Vec::new();
        for w in model.prunable_weights() {
            let shape = w.param.shape();
            // Conv weights are [out, in, 1, 1] here; linear weights [in, out].
            let (inputs, outputs, values) = match shape.len() {
                4 => {
                    let v = host::floats(w.param.flat().abs()).await?;
                    let (o, i) = (shape[0], shape[1] * shape[2] * shape[3]);
                    let mut t = vec![0.0; i * o];
                    for oo in 0..o {
                        for ii in 0..i {
                            t[ii * o + oo] = v[oo * i + ii];
                        }
                    }
                    (i, o, t)
                }
                _ => (
                    shape[0],
                    shape[1],
                    host::floats(w.param.flat().abs()).await?,
                ),
            };
            let unit_alive = match plan.as_ref().and_then(|p| p.keep.get(&w.layer)) {
                Some(kept) => (0..outputs).map(|u| kept.contains(&u)).collect(),
                None => vec![true; outputs],
            };
            let weight_alive = masks
                .as_ref()
                .and_then(|m| m.layers.iter().find(|l| l.layer == w.layer))
                .map(|l| {
                    if shape.len() == 4 {
                        let (o, i) = (shape[0], inputs);
                        (0..i * o).map(|k| l.keep[(k % o) * i + k / o]).collect()
                    } else {
                        l.keep.clone()
                    }
                });
            let gate_values = gates
                .as_ref()
                .and_then(|g| g.iter().find(|(n, _)| *n == w.layer))
                .map(|(_, v)| v.clone());
            out.push(LayerView {
                unit_alive: match &gate_values {
                    Some(g) => g.iter().map(|&v| v > 0.5).collect(),
                    None => unit_alive,
                },
                name: w.layer,
                inputs,
                outputs,
                magnitude: values,
                weight_alive,
                gates: gate_values,
            });
        }
        Ok(out)
    }

    /// The decision boundary of the shown model.
    pub async fn boundary(&self, resolution: usize, extent: f32) -> Result<Vec<f32>> {
        let model = self.shown().valid();
        crate::report::boundary::grid_probabilities(&model, resolution, extent, &self.device.device)
            .await
    }

    /// The output of unit `unit` of layer `layer` (after BN, before the
    /// activation) over the grid: what that neuron has learned to detect.
    pub async fn unit_map(
        &self,
        layer: &str,
        unit: usize,
        resolution: usize,
        extent: f32,
    ) -> Result<Vec<f32>> {
        let model = self.shown().valid();
        let n = resolution * resolution;
        let grid = crate::report::boundary::grid_points(resolution, extent);
        let x = burn::tensor::Tensor::<4>::from_data(
            burn::tensor::TensorData::new(grid, [n, 2, 1, 1]),
            &self.device.device,
        );
        let mut ctx = Ctx::capturing();
        let _ = model.forward_ctx(x, &mut ctx);
        let (_, map) = ctx
            .captured
            .into_iter()
            .find(|(name, _)| name == layer)
            .ok_or_else(|| Error::config("layer", layer, "not a prunable layer of this model"))?;
        let [_, c, _, _] = map.dims();
        if unit >= c {
            return Err(Error::config(
                "unit",
                unit,
                format!("layer {layer} has {c} units"),
            ));
        }
        host::floats(map.slice([0..n, unit..unit + 1]).flatten::<1>(0, 3)).await
    }

    /// The current pruned view's report, if any.
    pub fn view_report(&self) -> Option<PruneReport> {
        self.view.as_ref().map(|v| v.report.clone())
    }

    /// The shown model as a `.plm` file the CLI loads.
    pub async fn model_file(&self) -> Result<Vec<u8>> {
        let masks = self.view.as_ref().and_then(|v| v.masks.clone());
        crate::io::model_file::to_bytes_with_masks(
            &self.shown(),
            masks.as_ref(),
            serde_json::to_value(&self.config).expect("plain data"),
        )
        .await
    }

    /// The first `n` test images with the shown model's predictions.
    pub async fn examples(&self, n: usize) -> Result<Examples> {
        let test = self.split.test();
        let n = n.min(test.len());
        let indices: Vec<usize> = (0..n).collect();
        let batch = crate::data::loader::make_batch(
            test,
            &indices,
            self.split.norm.as_ref(),
            None,
            &self.device.device,
        );
        let probs = burn::tensor::activation::softmax(self.shown().valid().forward(batch.x), 1);
        let values = host::floats(probs).await?;
        let k = test.classes;
        let (mut predictions, mut confidence) = (Vec::new(), Vec::new());
        for row in values.chunks_exact(k) {
            let (best, p) = row
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            predictions.push(best as u16);
            confidence.push(p);
        }
        let images = match &test.select(&indices).features {
            crate::data::Features::Bytes(b) => b.clone(),
            crate::data::Features::Floats(_) => Vec::new(),
        };
        Ok(Examples {
            images,
            labels: test.labels[..n].to_vec(),
            predictions,
            confidence,
        })
    }

    /// Forward-pass time of the shown and the dense model on `batch` test
    /// inputs, after a warm-up, averaged over `repeats` runs (each ends on a
    /// read, so the device has finished).
    pub async fn latency(&self, batch: usize, repeats: usize) -> Result<Latency> {
        let test = self.split.test();
        let indices: Vec<usize> = (0..batch.min(test.len())).collect();
        let x = crate::data::loader::make_batch(
            test,
            &indices,
            self.split.norm.as_ref(),
            None,
            &self.device.device,
        )
        .x;
        let time = |model: Model, x: burn::tensor::Tensor<4>| async move {
            let run =
                |x: burn::tensor::Tensor<4>| host::floats(model.forward(x).slice([0..1, 0..1]));
            run(x.clone()).await?;
            let start = crate::clock::now();
            for _ in 0..repeats.max(1) {
                run(x.clone()).await?;
            }
            Ok::<f64, Error>(1000.0 * (crate::clock::now() - start) / repeats.max(1) as f64)
        };
        let shown = self.shown().valid();
        let dense = self
            .dense
            .clone()
            .unwrap_or_else(|| self.trainer.model.clone())
            .valid();
        Ok(Latency {
            batch: indices.len(),
            shown_macs: count(&shown.spec).macs,
            dense_macs: count(&dense.spec).macs,
            shown_ms: time(shown, x.clone()).await?,
            dense_ms: time(dense, x).await?,
        })
    }

    /// `(group, dense units, shown units)` for every prunable group.
    pub fn widths(&self) -> Vec<(String, usize, usize)> {
        let dense = self
            .dense
            .clone()
            .unwrap_or_else(|| self.trainer.model.clone());
        let shown = self.shown();
        let now: std::collections::HashMap<String, usize> = shown
            .spec
            .unit_groups()
            .into_iter()
            .map(|g| (g.name, g.size))
            .collect();
        let mut out: Vec<(String, usize, usize)> = dense
            .spec
            .unit_groups()
            .into_iter()
            .map(|g| {
                let n = now.get(&g.name).copied().unwrap_or(0);
                (g.name, g.size, n)
            })
            .collect();
        if let Some(plan) = self.view.as_ref().and_then(|v| v.plan.as_ref()) {
            for (name, _, n) in out.iter_mut() {
                if let Some(kept) = plan.keep.get(name) {
                    *n = kept.len();
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Examples {
    /// `[n, 3, 32, 32]` bytes.
    pub images: Vec<u8>,
    pub labels: Vec<u16>,
    pub predictions: Vec<u16>,
    pub confidence: Vec<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub batch: usize,
    pub shown_ms: f64,
    pub dense_ms: f64,
    pub shown_macs: u64,
    pub dense_macs: u64,
}
