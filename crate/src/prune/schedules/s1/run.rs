//! One S1 pass: train the gated network, freeze the gates when the
//! regulariser has decided them, train on under the frozen sub-network, and
//! report what was learned before any heuristic moved it.

use burn::tensor::{Device, Tensor};

use super::settle::{kept_share, settle};
use crate::base::error::{Error, Result};
use crate::base::events::{EpochMetrics, Event, Sink};
use crate::data::Split;
use crate::data::loader::Loader;
use crate::model::{Model, ModelSpec};
use crate::prune::contract::Outcome;
use crate::prune::pruner::surgery;
use crate::prune::pruner::target::Target;
use crate::train::TrainConfig;
use crate::train::{StepStats, Stepper, Trainer, Until, advance};

use super::consensus::{GateState, gate_state, plan_from_open};
use super::cost::{Cost, Measure};
use super::gates::{GateKind, GatedModel, Gates};
use super::loss::Polarized;
use super::options::PolarizationOptions;
use super::settle::{Learned, Settled};
use super::steps::GateSteps;

/// One S1 pass in progress. The method drives it to the end in one go; the
/// playground drives it step by step and draws the gates in between.
pub struct PolarizationRun {
    pub trainer: Trainer<Polarized>,
    options: PolarizationOptions,
    spec: ModelSpec,
    measure: Measure,
    target: f32,
    total_steps: u64,
    freeze_step: u64,
    consensus_batch: usize,
    pub learned: Option<Learned>,
    pub settled: Option<Settled>,
    pub trajectory: Vec<serde_json::Value>,
}

/// The gates after an epoch, as the playground shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GateReport {
    pub epoch: usize,
    /// Soft gate values (dynamic: their means over samples) per unit group, then per block.
    pub units: Vec<Vec<f32>>,
    pub blocks: Vec<f32>,
    pub unit_names: Vec<String>,
    pub block_names: Vec<String>,
    /// Share of the dense cost the open gates keep.
    pub kept: f64,
    pub undecided: usize,
    pub frozen: bool,
    pub agreement: Option<f32>,
}

impl PolarizationRun {
    /// Wraps `model` (at initialisation or trained) in gates for `target`
    /// (`macs=F` or `params=F`) and readies one pass of `train` settings.
    pub fn new(
        model: Model,
        target: Target,
        options: PolarizationOptions,
        mut train: TrainConfig,
        train_examples: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let o = options;
        let (measure, target) = match target {
            Target::Macs(t) => (Measure::Macs, t),
            Target::Params(t) => (Measure::Params, t),
            other => {
                return Err(Error::config(
                    "target",
                    other,
                    "polarization takes macs=F or params=F (the share removed)",
                ));
            }
        };
        let gates = Gates::new(
            &model.spec,
            o.gates,
            o.init_logit,
            o.temperature,
            o.block_gates,
            device,
        );
        let cost = Cost::new(&model.spec, &gates, measure);
        let preconditioner = per_cost(&cost, &gates, &device.clone().without_autodiff());
        let spec = model.spec.clone();
        let polarized = Polarized {
            gated: GatedModel { model, gates },
            cost: Some(cost),
            keep: 1.0,
            lambda_pol: 0.0,
            lambda_sp: o.lambda_sp,
            polarizer: o.polarizer,
        };
        if let Some(e) = o.epochs {
            train.epochs = e;
        }
        let per_epoch = train_examples.div_ceil(train.batch_size.max(1)).max(1) as u64;
        let total_steps = train.epochs as u64 * per_epoch;
        let gate_step = o.gate_step.unwrap_or(10.0 / total_steps.max(1) as f64);
        let consensus_batch = train.batch_size;
        let mut trainer = Trainer::new(polarized, train, seed);
        let lr = trainer.config.lr;
        trainer.optim.hooks.push(Box::new(GateSteps::new(
            "gated.gates.",
            gate_step,
            lr,
            preconditioner,
        )));
        let freeze_step =
            ((o.freeze_at as f64 * total_steps as f64).round() as u64).min(total_steps);
        Ok(PolarizationRun {
            trainer,
            options: o,
            spec,
            measure,
            target,
            total_steps,
            freeze_step,
            consensus_batch,
            learned: None,
            settled: None,
            trajectory: Vec::new(),
        })
    }

    pub fn finished(&self) -> bool {
        self.trainer.finished()
    }

    pub fn frozen(&self) -> bool {
        self.settled.is_some()
    }

    /// Sets this step's schedule (budget, polarizer, temperature) or, at
    /// `freeze_at`, takes the consensus and freezes the gates.
    async fn before_step(&mut self, split: &Split, device: &Device) -> Result<()> {
        let step = self.trainer.progress.step;
        if !self.frozen() && step >= self.freeze_step && step < self.total_steps {
            self.freeze(split, device).await?;
        }
        if self.frozen() {
            return Ok(());
        }
        let o = &self.options;
        let ramp = (o.polarize_after as f64 * self.total_steps as f64).max(1.0);
        let progress = ((step + 1) as f64 / ramp).min(1.0) as f32;
        let model = &mut self.trainer.model;
        model.lambda_pol = o.lambda_pol * progress;
        // The budget tightens gradually, so gates close in order of
        // importance instead of all at once.
        model.keep = 1.0 - self.target * progress;
        let share = (step as f64 / self.freeze_step.max(1) as f64).min(1.0) as f32;
        model.gated.gates.temperature =
            o.temperature * (o.final_temperature / o.temperature).powf(share);
        Ok(())
    }

    /// One optimisation step of the pass (`None` at the end of an epoch).
    pub async fn step(
        &mut self,
        loader: &Loader<'_>,
        split: &Split,
        device: &Device,
    ) -> Result<Option<StepStats>> {
        if self.trainer.progress.batch < loader.batches_per_epoch() {
            self.before_step(split, device).await?;
        }
        self.trainer.step(loader, device).await
    }

    /// The rest of the current epoch, with events, and where the gates stand.
    pub async fn run_epoch(
        &mut self,
        split: &Split,
        augment: bool,
        device: &Device,
        sink: &mut dyn Sink,
    ) -> Result<(EpochMetrics, GateReport)> {
        let closed = advance(self, split, augment, device, Until::EpochEnd, sink).await?;
        let metrics = closed
            .into_iter()
            .next()
            .ok_or_else(|| Error::Execution("the pass had no epoch left".into()))?;
        let report = self.report(split).await?;
        Ok((metrics, report))
    }

    fn kept(&self, state: &GateState) -> f64 {
        let gates = &self.trainer.model.gated.gates;
        kept_share(
            &self.spec,
            &plan_from_open(gates, &state.open_units, &state.open_blocks, &state.units),
            self.measure,
        )
    }

    /// The consensus: record what the regulariser learned, settle if asked,
    /// and fix the gates.
    async fn freeze(&mut self, split: &Split, device: &Device) -> Result<()> {
        let o = self.options.clone();
        let gated = &self.trainer.model.gated;
        let state = gate_state(gated, split, o.consensus_samples, self.consensus_batch).await?;
        let kept = self.kept(&state);
        let removed = 1.0 - kept;
        self.learned = Some(Learned {
            step: self.trainer.progress.step,
            kept_cost: kept,
            removed,
            target: self.target as f64,
            distance: removed - self.target as f64,
            gates: state.gates(),
            undecided: state.undecided(),
            decided_share: 1.0 - state.undecided() as f64 / state.gates().max(1) as f64,
            agreement: state.agreement,
        });
        let mut open_units = state.open_units.clone();
        let mut open_blocks = state.open_blocks.clone();
        let mut revived = 0;
        for (group, soft) in open_units.iter_mut().zip(&state.units) {
            if !group.iter().any(|&o| o) {
                let best = (0..soft.len())
                    .max_by(|&a, &b| soft[a].total_cmp(&soft[b]))
                    .unwrap_or(0);
                group[best] = true;
                revived += 1;
            }
        }
        let (mut flipped_units, mut flipped_blocks) = (0, 0);
        if o.settle {
            (flipped_units, flipped_blocks) = settle(
                &self.spec,
                &gated.gates,
                self.measure,
                self.target,
                &state,
                &mut open_units,
                &mut open_blocks,
            );
        }
        let gates = &gated.gates;
        let final_kept = kept_share(
            &self.spec,
            &plan_from_open(gates, &open_units, &open_blocks, &state.units),
            self.measure,
        );
        self.settled = Some(Settled {
            enabled: o.settle,
            flipped_units,
            flipped_blocks,
            revived_units: revived,
            kept_cost: final_kept,
        });
        let model = &mut self.trainer.model;
        model.gated.gates = model
            .gated
            .gates
            .clone()
            .fixed(&open_units, &open_blocks, device);
        // Fixed gates: no more gate steps, no regulariser; the weights train on.
        self.trainer.optim.hooks = vec![Box::new(GateSteps::frozen("gated.gates."))];
        model.lambda_pol = 0.0;
        model.cost = None;
        Ok(())
    }

    /// Where the gates stand (recorded in the trajectory).
    pub async fn report(&mut self, split: &Split) -> Result<GateReport> {
        let gated = &self.trainer.model.gated;
        // Dynamic gates: one batch of training examples is enough to draw them.
        let state = gate_state(gated, split, self.consensus_batch, self.consensus_batch).await?;
        let report = GateReport {
            epoch: self.trainer.progress.epoch,
            kept: self.kept(&state),
            undecided: state.undecided(),
            frozen: self.frozen(),
            unit_names: gated.gates.unit_names.clone(),
            block_names: gated.gates.block_names.clone(),
            agreement: state.agreement,
            units: state.units.clone(),
            blocks: state.blocks.clone(),
        };
        self.trajectory.push(serde_json::json!({
            "epoch": report.epoch,
            "step": self.trainer.progress.step,
            "kept_cost": report.kept,
            "open": state.open(),
            "undecided": report.undecided,
            "gates": state.gates(),
            "frozen": report.frozen,
            "agreement": report.agreement,
        }));
        Ok(report)
    }

    /// Freezes if the pass ended before `freeze_at`, then removes the gates
    /// and cuts the network where they are closed: the result computes
    /// exactly what the frozen gated network did.
    pub async fn finish(mut self, split: &Split, device: &Device) -> Result<Outcome> {
        if !self.frozen() {
            self.freeze(split, device).await?;
        }
        let history = self.trainer.progress.history.clone();
        let gated = &self.trainer.model.gated;
        let state = gate_state(gated, split, 1, 1).await?;
        let plan = plan_from_open(
            &gated.gates,
            &state.open_units,
            &state.open_blocks,
            &state.units,
        );
        let pruned = surgery::cut(&gated.model, &plan)?;
        let details = serde_json::json!({
            "gates": self.options.gates,
            "learned": self.learned,
            "settle": self.settled,
            "trajectory": self.trajectory,
            "final_gates": { "units": state.units, "blocks": state.blocks },
            "spec_before": self.spec,
        });
        Ok(Outcome {
            model: pruned,
            plan: Some(plan),
            masks: None,
            history,
            details,
        })
    }
}

impl Stepper for PolarizationRun {
    type Model = Polarized;
    fn trainer(&mut self) -> &mut Trainer<Polarized> {
        &mut self.trainer
    }
    fn next_step<'a>(
        &'a mut self,
        loader: &'a Loader<'a>,
        split: &'a Split,
        device: &'a Device,
    ) -> crate::base::host::BoxFuture<'a, Result<Option<StepStats>>> {
        Box::pin(self.step(loader, split, device))
    }
}

/// The line that says what the regulariser learned and what settle added.
pub fn freeze_event(run: &PolarizationRun) -> Event {
    let (Some(l), Some(s)) = (&run.learned, &run.settled) else {
        return Event::Notice {
            text: "S1 froze its gates".into(),
        };
    };
    Event::Phase {
        name: "freeze".into(),
        detail: format!(
            "learned: {:.1}% removed (target {:.1}%, {:+.1} points), {:.0}% of gates decided{}; settle {}",
            100.0 * l.removed,
            100.0 * l.target,
            100.0 * l.distance,
            100.0 * l.decided_share,
            l.agreement
                .map(|a| format!(", samples agree {:.0}%", 100.0 * a))
                .unwrap_or_default(),
            if s.enabled {
                format!(
                    "flipped {} channel and {} block gates → {:.1}% removed",
                    s.flipped_units,
                    s.flipped_blocks,
                    100.0 * (1.0 - s.kept_cost)
                )
            } else {
                "off".into()
            }
        ),
    }
}

/// Each gate parameter's gradient divided by what its gate costs (its
/// marginal MACs or params in the dense network), by parameter path. With one
/// rms over all gates, the budget term then moves every gate at the same
/// speed and the loss sets them apart by importance *per unit of cost* — the
/// knapsack order. Without it a block gate, whose cost is that of a whole
/// block, outruns every channel and the pass can only land on whole blocks.
fn per_cost(
    cost: &Cost,
    gates: &Gates,
    device: &Device,
) -> std::collections::HashMap<String, Tensor<1>> {
    let (units, blocks) = cost.marginal(gates);
    let all: Vec<f64> = units.iter().flatten().chain(&blocks).copied().collect();
    let mean = all.iter().sum::<f64>() / all.len().max(1) as f64;
    let factor = |c: f64| (mean / c.max(mean * 1e-6)) as f32;
    let tensor = |v: Vec<f32>| {
        let n = v.len();
        Tensor::<1>::from_data(burn::tensor::TensorData::new(v, [n]), device)
    };
    let mut out = std::collections::HashMap::new();
    match gates.kind() {
        GateKind::Static => {
            for (k, c) in units.iter().enumerate() {
                out.insert(
                    format!("gated.gates.units.{k}"),
                    tensor(c.iter().map(|&c| factor(c)).collect()),
                );
            }
            for (b, &c) in blocks.iter().enumerate() {
                out.insert(format!("gated.gates.blocks.{b}"), tensor(vec![factor(c)]));
            }
        }
        GateKind::Dynamic => {
            for (k, (c, block)) in units.iter().zip(&gates.head_blocks).enumerate() {
                // A head's outputs: its group's units, then its block's gate.
                let columns: Vec<f32> = c
                    .iter()
                    .map(|&c| factor(c))
                    .chain(block.map(|b| factor(blocks[b])))
                    .collect();
                let d_in = gates.heads[k].weight.val().dims()[0];
                let weight: Vec<f32> = (0..d_in).flat_map(|_| columns.iter().copied()).collect();
                out.insert(format!("gated.gates.heads.{k}.weight"), tensor(weight));
                out.insert(format!("gated.gates.heads.{k}.bias"), tensor(columns));
            }
        }
    }
    out
}
