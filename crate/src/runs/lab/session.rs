//! The lab's session: one model, its data and device, what was trained,
//! scored and pruned — and the operations the page calls on it.

use serde::Serialize;

use crate::base::device::OpenDevice;
use crate::base::error::{Error, Result};
use crate::base::events::Event;
use crate::config::RunConfig;
use crate::data::Split;
use crate::model::masks::WeightMasks;
use crate::model::{Model, init_model};
use crate::prune::pipeline::ranking;
use crate::prune::plan::Plan;
use crate::prune::polarization::{GateReport, PolarizationOptions, PolarizationRun};
use crate::prune::pruner::apply::{Applied, apply};
use crate::prune::select::SelectOptions;
use crate::prune::{Method, PruneOptions, Scores, Scoring, Target, by_name};
use crate::report::measure;
use crate::train::{ReadBacks, Trainer, Until, advance};

/// Cached importances of the dense model, and how the method ranks them.
pub(super) struct Ranked {
    pub(super) method: &'static dyn Method,
    /// The options it was scored with: the same method and options on the
    /// same model reuse the scores (the slider and repeated clicks).
    pub(super) options: PruneOptions,
    pub(super) scores: Scores,
    pub(super) select: SelectOptions,
}

/// The current pruned view: what the slider last asked for.
pub(super) struct View {
    pub(super) plan: Option<Plan>,
    pub(super) masks: Option<WeightMasks>,
    /// The smaller (cut) or masked model.
    pub(super) model: Model,
    pub(super) report: PruneReport,
}

/// Sizes and accuracy of a model, before or after pruning, as the page shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Non-zero parameters.
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
    pub dense: Sizes,
    pub pruned: Sizes,
    /// `conv1 16→9` lines.
    pub plan: Vec<String>,
}

/// What a `train` call did: the engine's own progress events (`step`,
/// `epoch`, and S1's `phase` lines), where the run stands, and S1's gates.
#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    pub events: Vec<Event>,
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

impl LabReport {
    /// The epochs this call closed, from its `epoch` events.
    pub fn epochs(&self) -> Vec<crate::base::events::EpochMetrics> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Epoch(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}

pub struct Lab {
    pub config: RunConfig,
    pub device: OpenDevice,
    pub split: Split,
    pub(super) trainer: Trainer<Model>,
    pub(super) gated: Option<PolarizationRun>,
    /// The trained model S1's gated pass is compared with (if one was trained).
    pub(super) gated_reference: Option<Model>,
    /// The dense model the scores were computed on.
    pub(super) dense: Option<Model>,
    /// Whether `dense` is θ₀ (an at-initialisation method's reference).
    pub(super) dense_at_init: bool,
    pub(super) ranked: Option<Ranked>,
    pub(super) view: Option<View>,
}

impl Lab {
    pub fn new(config: RunConfig, device: OpenDevice, split: Split) -> Result<Lab> {
        let spec = config.model_spec_for(&split)?;
        crate::metrics::memory::check_batch(
            device.kind,
            &spec,
            config.train.batch_size,
            "batch_size",
        )?;
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
            dense_at_init: false,
            ranked: None,
            view: None,
        })
    }

    /// Continues from a saved model (the page's snapshot after a lost GPU,
    /// or a downloaded `.plm`): its architecture and weights replace the fresh ones.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        self.import(bytes, "snapshot.plm").map(|_| ())
    }

    /// Continues from a model file of any format prunelab reads (`.plm`,
    /// safetensors from PyTorch, …; see [`crate::interop`]): a foreign file
    /// is read as the lab's architecture or the CIFAR ResNet its keys
    /// describe. Returns how a foreign file's names were read.
    pub fn import(&mut self, bytes: &[u8], name: &str) -> Result<Option<String>> {
        let loaded = crate::interop::read_model(
            bytes,
            std::path::Path::new(name),
            Some(&self.trainer.model.spec),
            &self.device.autodiff(),
        )?;
        let mut model = loaded.model;
        model
            .spec
            .check_data(self.split.train.classes, self.split.train.shape)?;
        self.config.fit_input(&mut model, &mut self.split);
        crate::metrics::memory::check_batch(
            self.device.kind,
            &model.spec,
            self.trainer.config.batch_size,
            "batch_size",
        )?;
        let mut config = self.trainer.config.clone();
        config.epochs = config.epochs.max(1);
        self.trainer = Trainer::new(model, config, self.config.seed);
        self.gated = None;
        self.view = None;
        self.dense = None;
        self.ranked = None;
        Ok(loaded.read_as)
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

    /// Runs up to `steps` optimisation steps through the engine's training
    /// loop, closing epochs as they end; S1's pass cuts its network when it ends.
    pub async fn train(&mut self, steps: usize) -> Result<LabReport> {
        let mut report = self.train_queued(steps).await?;
        self.trainer
            .flush(&mut |e: Event| report.events.push(e))
            .await?;
        Ok(report)
    }

    /// `train`, leaving a plain WebGPU run's figures on the device for the
    /// caller's flush ([`ReadBacks::ByCaller`]).
    pub(super) async fn train_queued(&mut self, steps: usize) -> Result<LabReport> {
        let device = self.device.autodiff();
        let augment = self.config.data.augment;
        let mut events = Vec::new();
        let mut sink = |e: Event| events.push(e);
        // A read back stalls a GPU: on WebGPU nothing is read step by step.
        let gpu = self.device.kind == crate::base::device::DeviceChoice::Webgpu;
        self.trainer.reads = match gpu {
            true => ReadBacks::ByCaller,
            false => ReadBacks::EachStep,
        };
        if let Some(run) = self.gated.as_mut() {
            // S1's schedule reads its gates when an epoch closes.
            run.trainer.reads = match gpu {
                true => ReadBacks::EachCall,
                false => ReadBacks::EachStep,
            };
        }
        let mut report = LabReport {
            events: Vec::new(),
            step: 0,
            epoch: 0,
            finished: false,
            gates: vec![],
            cut: None,
            gated_details: None,
        };
        if let Some(run) = self.gated.as_mut() {
            let split = &self.split;
            let frozen = run.frozen();
            let closed =
                advance(run, split, augment, &device, Until::Steps(steps), &mut sink).await?;
            for _ in &closed {
                report.gates.push(run.report(split).await?);
            }
            if !frozen && run.frozen() {
                sink(crate::prune::polarization::freeze_event(run));
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
                    Some(reference) => self.sizes(&reference, None).await?,
                    None => {
                        let mut s = self.sizes(&run.trainer.model.gated.model, None).await?;
                        s.test_accuracy = None;
                        s
                    }
                };
                before.macs = crate::metrics::count::count(&spec_before).macs;
                let outcome = run.finish(split, &device).await?;
                let plan = outcome.plan.clone().expect("S1 cuts");
                let after = self.sizes(&outcome.model, None).await?;
                report.cut = Some(PruneReport {
                    method: "polarization".into(),
                    amount: 0.0,
                    dense: before,
                    pruned: after,
                    plan: plan.describe(&spec_before),
                });
                report.gated_details = Some(outcome.details);
                let mut config = self.config.train.clone();
                config.epochs = 0;
                self.trainer = Trainer::new(outcome.model, config, self.config.seed);
                report.finished = true;
            }
        } else {
            let t = &mut self.trainer;
            let before = t.progress.step;
            advance(
                t,
                &self.split,
                augment,
                &device,
                Until::Steps(steps),
                &mut sink,
            )
            .await?;
            report.step = t.progress.step;
            report.epoch = t.progress.epoch;
            report.finished = t.finished();
            // The model moved: the slider's reference and scores are stale.
            if t.progress.step != before {
                self.dense = None;
                self.ranked = None;
            }
        }
        report.events = events;
        Ok(report)
    }

    async fn sizes(&self, model: &Model, masks: Option<&WeightMasks>) -> Result<Sizes> {
        let m = measure(
            model,
            masks,
            &self.split,
            self.config.train.eval_batch_size,
            &self.device.device,
        )
        .await?;
        Ok(Sizes {
            params: m.nonzero_params,
            macs: m.macs,
            bytes: m.bytes,
            test_accuracy: Some(m.test_accuracy),
        })
    }

    /// Computes and caches `method`'s importances on the current (trained)
    /// model, which becomes the dense reference for the slider. The method
    /// ranks as in a run: its paper's scope and normalisation unless
    /// `options` say otherwise. Asking again with the same method and
    /// options before the model changes reuses the cached scores.
    pub async fn score(&mut self, method: &str, options: &PruneOptions) -> Result<()> {
        let method = by_name(method)?;
        if let Some(r) = &self.ranked
            && r.method.info().name == method.info().name
            && r.options == *options
        {
            return Ok(());
        }
        let info = method.info();
        // At-initialisation methods (S4's lottery, SNIP, GraSP) rank θ₀ —
        // the current architecture's initial weights, from the run's seed —
        // as in a run; the others rank the trained model. A fork: training on
        // after scoring must not move the reference's BN statistics.
        let at_init = info.phase == crate::prune::Phase::AtInit;
        let dense = match &self.dense {
            Some(d) if self.dense_at_init == at_init => d.clone(),
            _ if at_init => init_model(
                &self.trainer.model.spec,
                self.config.seed,
                &self.device.autodiff(),
            ),
            _ => self.trainer.model.deep_fork(),
        };
        self.dense_at_init = at_init;
        let scores = method
            .score(Scoring {
                model: &dense,
                split: &self.split,
                device: &self.device,
                options,
                seed: self.config.seed,
                augment: self.config.data.augment,
            })
            .await?;
        let select = ranking(info, options);
        self.dense = Some(dense);
        self.ranked = Some(Ranked {
            method,
            options: options.clone(),
            scores,
            select,
        });
        Ok(())
    }

    /// Prunes `amount` (0..1) of the units, weights or candidate blocks by
    /// the cached scores.
    pub async fn prune(&mut self, amount: f32) -> Result<PruneReport> {
        let ranked = self
            .ranked
            .as_ref()
            .ok_or_else(|| Error::config("prune", "(no scores)", "choose a method first"))?;
        let dense = self.dense.clone().expect("scored");
        // The slider's share: of the units or weights, or of the candidate blocks.
        let target = match &ranked.scores {
            Scores::Blocks(b) => Target::Blocks((amount as f64 * b.len() as f64).round() as usize),
            _ => Target::Sparsity(amount),
        };
        let Applied { plan, masks, model } =
            apply(&dense, &ranked.scores, &target, &ranked.select)?;
        let report = PruneReport {
            method: ranked.method.info().name.into(),
            amount,
            dense: self.sizes(&dense, None).await?,
            pruned: self.sizes(&model, masks.as_ref()).await?,
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
        self.ranked = None;
        Ok(())
    }

    /// Starts S1's one gated pass from fresh weights (same seed) for `target`.
    pub fn start_gated(&mut self, target: Target, options: &PruneOptions) -> Result<()> {
        let spec = self.config.model_spec_for(&self.split)?;
        let device = self.device.autodiff();
        let model = init_model(&spec, self.config.seed, &device);
        self.gated_reference =
            (self.trainer.progress.step > 0).then(|| self.trainer.model.deep_fork());
        self.gated = Some(PolarizationRun::new(
            model,
            target,
            options.of::<PolarizationOptions>("polarization")?,
            self.config.train.clone(),
            self.split.train.len(),
            self.config.seed,
            &device,
        )?);
        self.view = None;
        self.dense = None;
        self.ranked = None;
        Ok(())
    }
}
