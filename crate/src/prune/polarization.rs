//! S1 — consensus gates with a polarizing regulariser, one training pass
//! (Zhi et al., "Learning a Consensus Sub-Network with Polarization
//! Regularization and One Pass Training", arXiv 2302.10798).
//!
//! Binary gates ([`super::gates`]) sit on every prunable channel group and on
//! every removable residual block. One training pass minimises
//!
//! `L = CE + λ_pol · mean(g(1 − g)) + λ_sp · (C(b)/C₀ − (1 − target))²`
//!
//! where `g` are the soft gates, `b` the hard ones (straight-through), `C(b)`
//! the MACs (or params) of the gated network — each gate weighted by what it
//! costs — and `C₀` the dense cost. The polarizer drives every gate to 0 or
//! 1; the sparsity term moves the network to the user's target. After the
//! pass the gates are dropped and the network is cut where they are closed:
//! the cut network computes exactly what the gated one did, so there is no
//! fine-tuning. The paper's exact formulas are not public; these are our
//! reading of its abstract, every coefficient an option (docs/methods.md).

use burn::module::Module;
use burn::tensor::Tensor;

use super::gates::{Cost, GatedModel, Gates, Measure};
use super::plan::Plan;
use super::surgery;
use super::target::Target;
use super::{BoxFuture, Granularity, Job, Method, MethodInfo, Outcome, Phase};
use crate::data::loader::Batch;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::host;
use crate::train::{Trainable, Trainer, cross_entropy};

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
    #[module(skip)]
    pub lambda_pol: f32,
    #[module(skip)]
    pub lambda_sp: f32,
}

impl Trainable for Polarized {
    fn loss(&self, batch: &Batch) -> (Tensor<1>, Tensor<2>) {
        let (logits, v) = self.gated.forward(batch.x.clone());
        let device = batch.x.device();
        let mut loss = cross_entropy(logits.clone(), batch.y.clone());
        let all_soft: Vec<Tensor<1>> = v.soft_units.iter().chain(&v.soft_blocks).cloned().collect();
        if !all_soft.is_empty() {
            let g = Tensor::cat(all_soft, 0);
            let polarizer = (g.clone() * (g.neg() + 1.0)).mean();
            loss = loss + polarizer * self.lambda_pol;
        }
        if let Some(cost) = &self.cost {
            let ratio = cost.of(&v.hard_units, &v.hard_blocks, &device) / cost.dense;
            loss = loss + (ratio - self.keep).powi_scalar(2) * self.lambda_sp;
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

pub struct Polarization;

impl Method for Polarization {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let o = job.options.polarization.clone();
            let (measure, target) = match job.target {
                Target::Macs(t) => (Some(Measure::Macs), t),
                Target::Params(t) => (Some(Measure::Params), t),
                Target::Sparsity(t) if t == 0.0 => (None, 0.0),
                other => {
                    return Err(Error::config(
                        "target",
                        other,
                        "polarization takes macs=F or params=F (the share removed)",
                    ));
                }
            };
            let device = job.device.autodiff();
            let gates = Gates::new(
                &job.model.spec,
                o.init_logit,
                o.temperature,
                o.block_gates,
                &device,
            );
            let cost = measure.map(|m| Cost::new(&job.model.spec, &gates, m));
            let spec = job.model.spec.clone();
            let polarized = Polarized {
                gated: GatedModel {
                    model: job.model.clone(),
                    gates,
                },
                cost,
                keep: 1.0 - target,
                lambda_pol: o.lambda_pol,
                lambda_sp: o.lambda_sp,
            };
            let mut config = job.train.clone();
            if let Some(e) = o.epochs {
                config.epochs = e;
            }
            let mut trainer = Trainer::new(polarized, config, job.seed);
            trainer
                .optim
                .lr_scale
                .push(("gated.gates.".into(), o.gate_lr_scale));
            let mut trajectory = Vec::new();
            while !trainer.finished() {
                trainer
                    .run_epoch(job.split, job.augment, &device, &mut *job.sink)
                    .await?;
                let (units, blocks) = soft_values(&trainer.model.gated.gates).await?;
                let all: Vec<f32> = units.iter().flatten().chain(&blocks).copied().collect();
                let undecided = all.iter().filter(|&&g| (0.1..0.9).contains(&g)).count();
                trajectory.push(serde_json::json!({
                    "epoch": trainer.progress.epoch,
                    "open": all.iter().filter(|&&g| g > 0.5).count(),
                    "undecided": undecided,
                    "gates": all.len(),
                }));
                job.sink.emit(Event::Phase {
                    name: "gates".into(),
                    detail: format!(
                        "{} of {} open, {} undecided (0.1 < g < 0.9)",
                        all.iter().filter(|&&g| g > 0.5).count(),
                        all.len(),
                        undecided
                    ),
                });
            }
            let history = trainer.progress.history.clone();
            let (units, blocks) = soft_values(&trainer.model.gated.gates).await?;
            let plan = plan_from_gates(&trainer.model.gated.gates, &units, &blocks);
            let trained = trainer.model.gated.model;
            let pruned = surgery::cut(&trained, &plan)?;
            let details = serde_json::json!({
                "trajectory": trajectory,
                "final_gates": { "units": units, "blocks": blocks },
                "spec_before": spec,
            });
            Ok(Outcome {
                model: pruned,
                plan: Some(plan),
                masks: None,
                history,
                details,
            })
        })
    }
}
