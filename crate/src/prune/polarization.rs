//! S1 — consensus gates with a polarizing regulariser, one training pass
//! (Zhi et al., "Learning a Consensus Sub-Network with Polarization
//! Regularization and One Pass Training", arXiv 2302.10798).
//!
//! Binary gates ([`super::gates`]) sit on every prunable channel group and on
//! every removable residual block. One training pass minimises
//!
//! `L = CE + λ_pol(t) · R_pol(g) + λ_sp · (C(b)/C₀ − (1 − target))²`
//!
//! with, by default, the spreading polarizer `R_pol = −mean|g − ḡ|` (after
//! Zhuang et al., NeurIPS 2020, with t = 0 since the sparsity term sets the
//! level): gates above the mean are pushed up, gates below it down, so the
//! gates split into open and closed however close to each other they start.
//! `polarizer = "bowl"` uses `mean g(1 − g)` instead, which has no force at
//! g = ½ and lets the gates drift together onto the threshold.
//!
//! where `g` are the soft gates, `b` the hard ones (straight-through), `C(b)`
//! the MACs (or params) of the gated network — each gate weighted by what it
//! costs — and `C₀` the dense cost. The polarizer drives every gate to 0 or
//! 1; the sparsity term moves the network to the user's target.
//!
//! Two details keep the pass from collapsing. The sparsity term's gradient
//! is taken through the *soft* cost `C(g)` (its value stays the hard
//! `C(b)`): through hard gates a closed block with closed channels has zero
//! gradient (a product of zeros) and could never reopen. And both the budget
//! and `λ_pol(t)` ramp in over the first `polarize_after` share of the pass
//! (the kept share falls from 1 to 1 − target), so gates close in order of
//! importance rather than all at once, then commit to 0 or 1; meanwhile the
//! temperature τ anneals geometrically to `final_temperature`, sharpening
//! `σ(z/τ)` so the soft gates meet the hard ones (the hard decision `z > 0`
//! does not depend on τ). After the
//! pass the gates are dropped and the network is cut where they are closed:
//! the cut network computes exactly what the gated one did, so there is no
//! fine-tuning. The paper's exact formulas are not public; these are our
//! reading of its abstract, every coefficient an option (docs/methods.md).

use burn::module::Module;
use burn::tensor::Tensor;

use super::gates::{Cost, GatedModel, Gates, Measure};
use super::options::{PolarizationOptions, Polarizer};
use super::plan::Plan;
use super::surgery;
use super::target::Target;
use super::{BoxFuture, Granularity, Job, Method, MethodInfo, Outcome, Phase};
use crate::config::TrainConfig;
use crate::data::loader::Batch;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::host;
use crate::metrics::count::count;
use crate::model::{Model, ModelSpec};
use crate::train::{Trainable, Trainer, cross_entropy};
use burn::tensor::Device;

pub static INFO: MethodInfo = MethodInfo {
    name: "polarization",
    title: "S1: consensus gates + polarization, one pass",
    source: "Zhi et al., Learning a Consensus Sub-Network with Polarization Regularization and One Pass Training (arXiv 2302.10798)",
    phase: Phase::DuringTraining,
    granularity: Granularity::Structure,
    needs_blocks: false,
};

/// The gated network with its loss terms.
#[derive(Module, Debug)]
pub struct Polarized {
    pub gated: GatedModel,
    #[module(skip)]
    pub cost: Option<Cost>,
    /// Share of the dense cost to keep, `1 − target`.
    #[module(skip)]
    pub keep: f32,
    /// The polarizer weight now (ramped by the method between epochs).
    #[module(skip)]
    pub lambda_pol: f32,
    #[module(skip)]
    pub lambda_sp: f32,
    #[module(skip)]
    pub polarizer: Polarizer,
}

impl Trainable for Polarized {
    fn loss(&self, batch: &Batch) -> (Tensor<1>, Tensor<2>) {
        let (logits, v) = self.gated.forward(batch.x.clone());
        let device = batch.x.device();
        let mut loss = cross_entropy(logits.clone(), batch.y.clone());
        let all_soft: Vec<Tensor<1>> = v.soft_units.iter().chain(&v.soft_blocks).cloned().collect();
        if !all_soft.is_empty() && self.lambda_pol > 0.0 {
            let g = Tensor::cat(all_soft, 0);
            let polarizer = match self.polarizer {
                Polarizer::Spread => (g.clone() - g.mean().detach().unsqueeze())
                    .abs()
                    .mean()
                    .neg(),
                Polarizer::Bowl => (g.clone() * (g.neg() + 1.0)).mean(),
            };
            loss = loss + polarizer * self.lambda_pol;
        }
        if let Some(cost) = &self.cost {
            // d/dz of λ(r_hard − keep)² with r's derivative taken from the soft cost.
            let hard = cost.of(&v.hard_units, &v.hard_blocks, &device) / cost.dense;
            let soft = cost.of(&v.surrogate_units, &v.surrogate_blocks, &device) / cost.dense;
            let slope = ((hard - self.keep) * (2.0 * self.lambda_sp)).detach();
            loss = loss + slope * soft;
        }
        (loss, logits)
    }

    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.gated.forward(x).0
    }
}

/// Soft gate values, read back: per group, then per block.
pub async fn soft_values(gates: &Gates) -> Result<(Vec<Vec<f32>>, Vec<f32>)> {
    let v = gates.values();
    let mut units = Vec::new();
    for t in v.soft_units {
        units.push(host::floats(t).await?);
    }
    let mut blocks = Vec::new();
    for t in v.soft_blocks {
        blocks.push(host::scalar(t).await?);
    }
    Ok((units, blocks))
}

/// The plan the gates describe: open units (g > 0.5) stay, closed blocks go.
/// A group whose gates all closed keeps its most open unit.
pub fn plan_from_gates(gates: &Gates, units: &[Vec<f32>], blocks: &[f32]) -> Plan {
    let mut plan = Plan::default();
    for (name, g) in gates.unit_names.iter().zip(units) {
        let mut kept: Vec<usize> = (0..g.len()).filter(|&i| g[i] > 0.5).collect();
        if kept.is_empty() {
            let best = (0..g.len())
                .max_by(|&a, &b| g[a].total_cmp(&g[b]))
                .unwrap_or(0);
            kept.push(best);
        }
        plan.keep.insert(name.clone(), kept);
    }
    plan.remove_blocks = gates
        .block_names
        .iter()
        .zip(blocks)
        .filter(|(_, g)| **g <= 0.5)
        .map(|(n, _)| n.clone())
        .collect();
    plan
}

/// One S1 pass in progress. The method drives it to the end in one go; the
/// playground drives it epoch by epoch and draws the gates in between.
pub struct PolarizationRun {
    pub trainer: Trainer<Polarized>,
    options: PolarizationOptions,
    spec: ModelSpec,
    measure: Measure,
    target: f32,
    ramp: f32,
    freeze_epoch: usize,
    settled: bool,
    pub trajectory: Vec<serde_json::Value>,
}

/// The gates after an epoch, as the playground shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GateReport {
    pub epoch: usize,
    /// Soft gate values per unit group, then per block.
    pub units: Vec<Vec<f32>>,
    pub blocks: Vec<f32>,
    pub unit_names: Vec<String>,
    pub block_names: Vec<String>,
    /// Share of the dense cost the hard gates keep.
    pub kept: f64,
    pub undecided: usize,
    pub frozen: bool,
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
            Target::Macs(t) => (Some(Measure::Macs), t),
            Target::Params(t) => (Some(Measure::Params), t),
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
            o.init_logit,
            o.temperature,
            o.block_gates,
            device,
        );
        let cost = measure.map(|m| Cost::new(&model.spec, &gates, m));
        let spec = model.spec.clone();
        let polarized = Polarized {
            gated: GatedModel { model, gates },
            cost,
            keep: 1.0 - target,
            lambda_pol: 0.0,
            lambda_sp: o.lambda_sp,
            polarizer: o.polarizer,
        };
        if let Some(e) = o.epochs {
            train.epochs = e;
        }
        let steps = train.epochs * train_examples.div_ceil(train.batch_size);
        let gate_step = o.gate_step.unwrap_or(10.0 / steps.max(1) as f64);
        let epochs = train.epochs;
        let mut trainer = Trainer::new(polarized, train, seed);
        trainer
            .optim
            .normalized_steps
            .push(("gated.gates.".into(), gate_step, trainer.config.lr));
        Ok(PolarizationRun {
            trainer,
            ramp: (o.polarize_after * epochs as f32).max(1.0),
            freeze_epoch: ((o.freeze_at * epochs as f32).round() as usize).clamp(1, epochs),
            options: o,
            spec,
            measure: measure.unwrap_or(Measure::Macs),
            target,
            settled: false,
            trajectory: Vec::new(),
        })
    }

    pub fn finished(&self) -> bool {
        self.trainer.finished()
    }

    /// Sets this epoch's schedule (budget, polarizer, temperature) or, at
    /// `freeze_at`, settles and freezes the gates.
    pub async fn before_epoch(&mut self, device: &Device) -> Result<()> {
        let o = &self.options;
        let epoch = self.trainer.progress.epoch;
        let model = &mut self.trainer.model;
        if epoch == self.freeze_epoch && !self.settled {
            let (units, blocks) =
                settle(&self.spec, &model.gated.gates, self.measure, self.target).await?;
            model.gated.gates = model.gated.gates.clone().fixed(&units, &blocks, device);
            self.trainer.optim.normalized_steps.clear();
            self.trainer
                .optim
                .normalized_steps
                .push(("gated.gates.".into(), 0.0, 1.0));
            model.lambda_pol = 0.0;
            model.cost = None;
            self.settled = true;
        }
        if !self.settled {
            let progress = ((epoch as f32 + 1.0) / self.ramp).min(1.0);
            model.lambda_pol = o.lambda_pol * progress;
            // The budget tightens gradually, so gates close in order of
            // importance instead of all at once.
            model.keep = 1.0 - self.target * progress;
            let share = (epoch as f32 / self.freeze_epoch.max(2) as f32).min(1.0);
            model.gated.gates.temperature =
                o.temperature * (o.final_temperature / o.temperature).powf(share);
        }
        Ok(())
    }

    /// Where the gates stand (recorded in the trajectory).
    pub async fn report(&mut self) -> Result<GateReport> {
        let gates = &self.trainer.model.gated.gates;
        let (units, blocks) = soft_values(gates).await?;
        let all: Vec<f32> = units.iter().flatten().chain(&blocks).copied().collect();
        let plan = plan_from_gates(gates, &units, &blocks);
        let report = GateReport {
            epoch: self.trainer.progress.epoch,
            kept: kept_share(&self.spec, &plan, self.measure),
            undecided: all.iter().filter(|&&g| (0.1..0.9).contains(&g)).count(),
            frozen: self.settled,
            unit_names: gates.unit_names.clone(),
            block_names: gates.block_names.clone(),
            units,
            blocks,
        };
        self.trajectory.push(serde_json::json!({
            "epoch": report.epoch,
            "kept_cost": report.kept,
            "open": all.iter().filter(|&&g| g > 0.5).count(),
            "undecided": report.undecided,
            "gates": all.len(),
            "frozen": report.frozen,
        }));
        Ok(report)
    }

    /// Removes the gates and cuts the network where they are closed: the
    /// result computes exactly what the gated network did.
    pub async fn finish(self) -> Result<Outcome> {
        let history = self.trainer.progress.history.clone();
        let (units, blocks) = soft_values(&self.trainer.model.gated.gates).await?;
        let plan = plan_from_gates(&self.trainer.model.gated.gates, &units, &blocks);
        let pruned = surgery::cut(&self.trainer.model.gated.model, &plan)?;
        let details = serde_json::json!({
            "trajectory": self.trajectory,
            "final_gates": { "units": units, "blocks": blocks },
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

pub struct Polarization;

impl Method for Polarization {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let device = job.device.autodiff();
            let mut run = PolarizationRun::new(
                job.model.clone(),
                job.target,
                job.options.polarization.clone(),
                job.train.clone(),
                job.split.train.len(),
                job.seed,
                &device,
            )?;
            while !run.finished() {
                run.before_epoch(&device).await?;
                run.trainer
                    .run_epoch(job.split, job.augment, &device, &mut *job.sink)
                    .await?;
                let r = run.report().await?;
                let total = r.units.iter().map(Vec::len).sum::<usize>() + r.blocks.len();
                let open = r
                    .units
                    .iter()
                    .flatten()
                    .chain(&r.blocks)
                    .filter(|&&g| g > 0.5)
                    .count();
                job.sink.emit(Event::Phase {
                    name: "gates".into(),
                    detail: format!(
                        "{open} of {total} open, {} undecided (0.1 < g < 0.9), {:.1}% of the cost kept{}",
                        r.undecided,
                        100.0 * r.kept,
                        if r.frozen { ", frozen" } else { "" }
                    ),
                });
            }
            run.finish().await
        })
    }
}

/// The share of the dense cost a plan keeps.
fn kept_share(spec: &ModelSpec, plan: &Plan, measure: Measure) -> f64 {
    let (dense, cut) = (count(spec), count(&plan.apply_to_spec(spec)));
    match measure {
        Measure::Macs => cut.macs as f64 / dense.macs as f64,
        Measure::Params => cut.params as f64 / dense.params as f64,
    }
}

/// The consensus. With the gates polarized, fix the sub-network: closed gates
/// (z ≤ 0) stay closed and the budget is then met exactly — channel gates are
/// reopened (highest z first) while the network keeps less than `1 − target`
/// of the dense cost, or closed (lowest z first) while it keeps more. A block
/// is reopened (highest z first) only when the channels alone cannot reach
/// the budget. Returns the open units and blocks.
async fn settle(
    spec: &ModelSpec,
    gates: &Gates,
    measure: Measure,
    target: f32,
) -> Result<(Vec<Vec<bool>>, Vec<bool>)> {
    let mut z_units = Vec::new();
    for z in &gates.units {
        z_units.push(host::floats(z.val()).await?);
    }
    let mut z_blocks = Vec::new();
    for z in &gates.blocks {
        z_blocks.push(host::scalar(z.val()).await?);
    }
    let mut blocks: Vec<bool> = z_blocks.iter().map(|&z| z > 0.0).collect();
    let mut open: Vec<Vec<bool>> = z_units
        .iter()
        .map(|z| z.iter().map(|&v| v > 0.0).collect())
        .collect();
    for group in open.iter_mut() {
        if !group.iter().any(|&o| o) {
            group[0] = true;
        }
    }
    let keep = 1.0 - target as f64;
    let share_of = |open: &[Vec<bool>], blocks: &[bool]| {
        let units: Vec<Vec<f32>> = open
            .iter()
            .map(|g| g.iter().map(|&o| if o { 1.0 } else { 0.0 }).collect())
            .collect();
        let blocks: Vec<f32> = blocks.iter().map(|&o| if o { 1.0 } else { 0.0 }).collect();
        kept_share(spec, &plan_from_gates(gates, &units, &blocks), measure)
    };
    let mut order: Vec<(f32, usize, usize)> = z_units
        .iter()
        .enumerate()
        .flat_map(|(g, z)| z.iter().enumerate().map(move |(i, &v)| (v, g, i)))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut current = share_of(&open, &blocks);
    // Blocks first: a budget missed by closed blocks cannot be met with channels.
    while current < keep {
        let Some(b) = (0..blocks.len())
            .filter(|&b| !blocks[b])
            .max_by(|&a, &b| z_blocks[a].total_cmp(&z_blocks[b]))
        else {
            break;
        };
        blocks[b] = true;
        current = share_of(&open, &blocks);
    }
    if current < keep {
        for &(_, g, i) in order.iter().rev() {
            if current >= keep {
                break;
            }
            if !open[g][i] {
                open[g][i] = true;
                current = share_of(&open, &blocks);
            }
        }
    } else {
        for &(_, g, i) in order.iter() {
            if current <= keep {
                break;
            }
            if open[g][i] && open[g].iter().filter(|&&o| o).count() > 1 {
                open[g][i] = false;
                current = share_of(&open, &blocks);
            }
        }
    }
    Ok((open, blocks))
}
