//! S1 — consensus gates with a polarizing regulariser, one training pass
//! (Zhi et al., "Learning a Consensus Sub-Network with Polarization
//! Regularization and One Pass Training", arXiv 2302.10798).
//!
//! Binary gates ([`gates`], static or input-conditioned) sit on every
//! prunable channel group and on every removable residual block. One
//! training pass minimises
//!
//! `L = CE + λ_pol(t) · R_pol(ḡ) + λ_sp · (C(b̄)/C₀ − (1 − target(t)))²`
//!
//! where `ḡ` are the batch-mean soft gates, `b̄` the batch-mean hard ones
//! (straight-through), `C(b̄)` the MACs (or params) of the gated network —
//! each gate weighted by what it costs — and `C₀` the dense cost. By default
//! the spreading polarizer `R_pol = −mean|ḡ − mean ḡ|` (after Zhuang et al.,
//! NeurIPS 2020, with t = 0 since the sparsity term sets the level) pushes
//! gates above the mean up and those below it down; `polarizer = "bowl"`
//! uses `mean ḡ(1 − ḡ)`. Dynamic gates add `mean|g − ḡ|` so that samples
//! agree. The polarizer drives every gate to 0 or 1; the sparsity term
//! moves the network to the user's target.
//!
//! Details that keep the pass from collapsing: the sparsity term's gradient
//! is taken through the *soft* cost `C(σ(z))` (its value stays the hard
//! `C(b̄)`): through hard gates a closed block with closed channels has zero
//! gradient and could never reopen. The budget and `λ_pol(t)` ramp in over
//! the first `polarize_after` share of the pass (the kept share falls from 1
//! to 1 − target), so gates close in order of importance rather than all at
//! once; τ anneals geometrically to `final_temperature` until the freeze.
//! Gate logits take normalised steps, `gate_step · g / rms(G)` with `G` the
//! gradient of *all* gates together (so each gate moves by its pull relative
//! to the others), following the learning-rate schedule. The schedule runs
//! by optimisation step, so a pass of one or two epochs works too.
//!
//! **The freeze.** At `freeze_at` of the pass the consensus is taken (static:
//! the open gates; dynamic: the gates most training samples open) and
//! recorded as what the regulariser *learned*: its kept cost, its distance
//! from the target, how many gates were undecided. With `settle = true` —
//! a last resort, off by default — gates are then flipped until the budget
//! is met: channels first (reopened highest first while the network keeps
//! too little, closed lowest first while it keeps too much), blocks reopened
//! (highest first) only when channels alone cannot reach the budget; the
//! number of flips is reported. The gates are then fixed and the weights
//! train on under that sub-network for the rest of the pass. After the pass
//! the gates are dropped and the network is cut where they are closed: the
//! cut network computes exactly what the frozen gated one did, so there is
//! no fine-tuning. The paper's exact formulas are not public; these are our
//! reading of its abstract, every coefficient an option (docs/methods.md).

pub mod gates;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::data::loader::{Batch, Loader};
use crate::error::{Error, Result};
use crate::events::{EpochMetrics, Event, Sink};
use crate::host;
use crate::metrics::count::count;
use crate::model::{Model, ModelSpec};
use crate::prune::contract::{
    BoxFuture, Granularity, Job, Knob, Method, MethodInfo, OptionsSpec, Outcome, Phase,
};
use crate::prune::contract::{CheckOptions, require};
use crate::prune::options::PruneOptions;
use crate::prune::pruner::plan::Plan;
use crate::prune::pruner::surgery;
use crate::prune::pruner::target::Target;
use crate::prune::schedules::s1::gates::{Cost, GateKind, GateValues, GatedModel, Gates, Measure};
use crate::train::TrainConfig;
use crate::train::{StepStats, Stepper, Trainable, Trainer, Until, advance, cross_entropy};

/// S1 (Zhi et al.). The paper's gate and loss formulas are not public: these
/// are our reading of its abstract (docs/methods.md §S1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolarizationOptions {
    /// `static` gates (one logit per unit, shared by all samples) or
    /// `dynamic` ones (logits from a head on each layer's pooled input; the
    /// abstract's "dynamic gates that settle on a consensus").
    pub gates: GateKind,
    /// Gate temperature τ in g = σ(z/τ) at the start of the pass …
    pub temperature: f32,
    /// … and at the freeze (geometric annealing in between).
    pub final_temperature: f32,
    /// Initial logit z₀ (σ(3) ≈ 0.95: every gate starts open).
    pub init_logit: f32,
    /// The polarizing regulariser on the (batch-mean) soft gates.
    pub polarizer: Polarizer,
    /// λ_pol: its weight.
    pub lambda_pol: f32,
    /// λ_sp: weight of the sparsity term (C(b)/C₀ − (1 − target))².
    pub lambda_sp: f32,
    /// Share of the pass (in steps) after which the consensus is taken and
    /// the gates are frozen; the weights train on under the fixed sub-network.
    pub freeze_at: f32,
    /// Share of the pass over which λ_pol and the budget ramp in.
    pub polarize_after: f32,
    /// After the freeze, flip gates until the budget is met exactly (a last
    /// resort; its flips are reported beside what the regulariser learned).
    pub settle: bool,
    /// Training examples the dynamic gates' consensus is taken over.
    pub consensus_samples: usize,
    /// Gate parameters move by `gate_step · g / rms(G)` per step, `G` the
    /// gradient of all gates together (so the same on SGD and Adam runs,
    /// and gates keep their relative pulls), scaled along the learning-rate
    /// schedule. Default: `10 / steps` of the whole pass, so a gate can
    /// travel about 10 logits whatever the budget.
    pub gate_step: Option<f64>,
    /// Gate residual blocks as well as channels.
    pub block_gates: bool,
    /// Epochs of the one training pass (default: the training config's epochs).
    pub epochs: Option<usize>,
}

impl CheckOptions for PolarizationOptions {
    fn check(&self) -> Result<()> {
        let o = self;
        let t = |v: f32| v.is_finite() && v > 0.0 && v <= 100.0;
        require(
            t(o.temperature),
            "polarization.temperature",
            o.temperature,
            "(0, 100]",
        )?;
        require(
            t(o.final_temperature),
            "polarization.final_temperature",
            o.final_temperature,
            "(0, 100]",
        )?;
        require(
            o.init_logit.abs() <= 50.0,
            "polarization.init_logit",
            o.init_logit,
            "-50 to 50",
        )?;
        for (field, v) in [
            ("polarization.lambda_pol", o.lambda_pol),
            ("polarization.lambda_sp", o.lambda_sp),
        ] {
            require((0.0..=1e6).contains(&v), field, v, "0 to 1e6")?;
        }
        require(
            o.freeze_at > 0.0 && o.freeze_at <= 1.0,
            "polarization.freeze_at",
            o.freeze_at,
            "a share of the pass in (0, 1]",
        )?;
        require(
            (0.0..=1.0).contains(&o.polarize_after),
            "polarization.polarize_after",
            o.polarize_after,
            "a share of the pass in [0, 1]",
        )?;
        require(
            (1..=1_000_000).contains(&o.consensus_samples),
            "polarization.consensus_samples",
            o.consensus_samples,
            "1 to 1000000",
        )?;
        if let Some(s) = o.gate_step {
            require(
                s > 0.0 && s <= 1000.0,
                "polarization.gate_step",
                s,
                "(0, 1000]",
            )?;
        }
        if let Some(e) = o.epochs {
            require(
                (1..=100_000).contains(&e),
                "polarization.epochs",
                e,
                "1 to 100000",
            )?;
        }
        Ok(())
    }
}

impl Default for PolarizationOptions {
    fn default() -> Self {
        PolarizationOptions {
            gates: GateKind::Static,
            temperature: 1.0,
            final_temperature: 0.05,
            polarizer: Polarizer::Spread,
            init_logit: 3.0,
            lambda_pol: 1.0,
            lambda_sp: 100.0,
            freeze_at: 0.8,
            polarize_after: 0.5,
            settle: false,
            consensus_samples: 1024,
            gate_step: None,
            block_gates: true,
            epochs: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Polarizer {
    /// `−mean|g − ḡ|`: pushes gates away from their mean.
    #[default]
    Spread,
    /// `mean g(1 − g)`: pushes gates away from ½.
    Bowl,
}

pub static INFO: MethodInfo = MethodInfo {
    name: "polarization",
    title: "S1: consensus gates + polarization, one pass",
    source: "Zhi et al., Learning a Consensus Sub-Network with Polarization Regularization and One Pass Training (arXiv 2302.10798)",
    phase: Phase::DuringTraining,
    granularity: Granularity::Structure,
    needs_blocks: false,
    scope: None,
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: None,
    options: Some(OptionsSpec::of::<PolarizationOptions>()),
    knobs: &[
        Knob {
            key: "polarization.gates",
            source: "ours: static gates; the abstract's input-conditioned gates are `dynamic` (compared in docs/results.md)",
        },
        Knob {
            key: "polarization.polarizer",
            source: "ours, after Zhuang et al. (NeurIPS 2020) with t = 0",
        },
        Knob {
            key: "polarization.lambda_pol",
            source: "ours (the paper's coefficients are not public)",
        },
        Knob {
            key: "polarization.lambda_sp",
            source: "ours",
        },
        Knob {
            key: "polarization.temperature",
            source: "ours",
        },
        Knob {
            key: "polarization.final_temperature",
            source: "ours",
        },
        Knob {
            key: "polarization.init_logit",
            source: "ours: every gate starts open (σ(3) ≈ 0.95)",
        },
        Knob {
            key: "polarization.polarize_after",
            source: "ours",
        },
        Knob {
            key: "polarization.freeze_at",
            source: "ours: the abstract's gates settle on a consensus during the one pass",
        },
        Knob {
            key: "polarization.settle",
            source: "ours: off, so the reported MACs are what the regulariser learned",
        },
        Knob {
            key: "polarization.consensus_samples",
            source: "ours",
        },
        Knob {
            key: "polarization.gate_step",
            source: "ours: 10 / steps of the pass",
        },
        Knob {
            key: "polarization.block_gates",
            source: "the paper prunes layers (blocks) and channels",
        },
        Knob {
            key: "polarization.epochs",
            source: "the training config's epochs: one pass, no fine-tuning",
        },
    ],
};

/// The gated network with its loss terms.
#[derive(Module, Debug)]
pub struct Polarized {
    pub gated: GatedModel,
    #[module(skip)]
    pub cost: Option<Cost>,
    /// Share of the dense cost to keep now, `1 − target(t)`.
    #[module(skip)]
    pub keep: f32,
    /// The polarizer weight now (ramped by the run).
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
        if self.lambda_pol > 0.0 {
            if let Some(r) = polarization_term(&v, self.polarizer) {
                loss = loss + r * self.lambda_pol;
            }
        }
        if let Some(cost) = &self.cost {
            // The budget term: each gate feels the exact change of
            // λ(C(b)/C₀ − keep)² were it to flip (`Cost::flip_pull`), carried
            // to its logit through the surrogate σ(z) — through the hard gates
            // a closed block with closed channels would have no gradient and
            // could never reopen.
            let (hard_u, hard_b) = v.mean_hard();
            let (sur_u, sur_b) = v.mean_surrogate();
            let (pull_u, pull_b) =
                cost.flip_pull(&hard_u, &hard_b, self.keep, self.lambda_sp, &device);
            for (p, s) in pull_u
                .into_iter()
                .zip(sur_u)
                .chain(pull_b.into_iter().zip(sur_b))
            {
                loss = loss + (p * s).sum();
            }
        }
        (loss, logits)
    }

    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.gated.forward(x).0
    }
}

/// `R_pol(ḡ)` on the batch-mean soft gates, plus, for per-sample gates, the
/// disagreement `mean|g − ḡ|`.
fn polarization_term(v: &GateValues, polarizer: Polarizer) -> Option<Tensor<1>> {
    let means: Vec<Tensor<1>> = v
        .mean_soft()
        .into_iter()
        .chain(v.mean_soft_blocks())
        .collect();
    if means.is_empty() {
        return None;
    }
    let g = Tensor::cat(means, 0);
    let mut r = match polarizer {
        Polarizer::Spread => (g.clone() - g.mean().detach().unsqueeze())
            .abs()
            .mean()
            .neg(),
        Polarizer::Bowl => (g.clone() * (g.neg() + 1.0)).mean(),
    };
    let per_sample = v.soft_units.first().is_some_and(|u| u.dims()[0] > 1);
    if per_sample {
        let mut parts = Vec::new();
        for u in &v.soft_units {
            let [n, c] = u.dims();
            let mean = u.clone().mean_dim(0);
            parts.push((u.clone() - mean.expand([n, c])).abs().flatten::<1>(0, 1));
        }
        for b in &v.soft_blocks {
            parts.push((b.clone() - b.clone().mean().expand(b.dims())).abs());
        }
        r = r + Tensor::cat(parts, 0).mean();
    }
    Some(r)
}

/// Where the gates stand: per unit and block, how open (the soft value, or
/// its mean over samples) and whether open (static: `z > 0`; dynamic: for
/// most samples).
#[derive(Debug, Clone)]
pub struct GateState {
    pub units: Vec<Vec<f32>>,
    pub blocks: Vec<f32>,
    pub open_units: Vec<Vec<bool>>,
    pub open_blocks: Vec<bool>,
    /// Dynamic gates: the mean share of samples that agree with the majority.
    pub agreement: Option<f32>,
}

impl GateState {
    fn all_soft(&self) -> impl Iterator<Item = &f32> {
        self.units.iter().flatten().chain(&self.blocks)
    }

    pub fn undecided(&self) -> usize {
        self.all_soft()
            .filter(|&&g| (0.1..0.9).contains(&g))
            .count()
    }

    pub fn gates(&self) -> usize {
        self.all_soft().count()
    }

    pub fn open(&self) -> usize {
        self.open_units
            .iter()
            .flatten()
            .chain(&self.open_blocks)
            .filter(|&&o| o)
            .count()
    }
}

/// The gate state of `gated` — static gates directly; dynamic gates averaged
/// over `samples` training examples (in order, no augmentation, BN in eval mode).
pub async fn gate_state(
    gated: &GatedModel,
    split: &Split,
    samples: usize,
    batch: usize,
) -> Result<GateState> {
    if gated.gates.kind() == GateKind::Static {
        let v = gated.gates.values();
        let (units, blocks) = read(&v.mean_soft(), &v.mean_soft_blocks()).await?;
        let (hard_u, hard_b) = v.mean_hard();
        let (open_u, open_b) = read(&hard_u, &hard_b).await?;
        return Ok(GateState {
            units,
            blocks,
            open_units: open_u
                .iter()
                .map(|g| g.iter().map(|&v| v > 0.5).collect())
                .collect(),
            open_blocks: open_b.iter().map(|&v| v > 0.5).collect(),
            agreement: None,
        });
    }
    let eval = gated.valid();
    let device = eval.model.device();
    let loader = Loader::sequential(&split.train, split.norm, batch.max(1));
    let order = loader.order(0);
    let batches = samples
        .div_ceil(batch.max(1))
        .clamp(1, loader.batches_per_epoch().max(1));
    // Sums over samples, kept on the device until one read at the end.
    let mut soft: Option<Vec<Tensor<1>>> = None;
    let mut hard: Option<Vec<Tensor<1>>> = None;
    let mut seen = 0usize;
    for index in 0..batches {
        let b = loader.batch(&order, 0, index, &device);
        seen += b.len;
        let (_, v) = eval.forward(b.x);
        let sum = |units: &[Tensor<2>], blocks: &[Tensor<1>]| -> Vec<Tensor<1>> {
            units
                .iter()
                .map(|u| {
                    let [_, c] = u.dims();
                    u.clone().sum_dim(0).reshape([c])
                })
                .chain(blocks.iter().map(|b| b.clone().sum()))
                .collect()
        };
        let s = sum(&v.soft_units, &v.soft_blocks);
        let h = sum(&v.hard_units, &v.hard_blocks);
        let add = |acc: Option<Vec<Tensor<1>>>, new: Vec<Tensor<1>>| {
            Some(match acc {
                None => new,
                Some(a) => a.into_iter().zip(new).map(|(x, y)| x + y).collect(),
            })
        };
        soft = add(soft, s);
        hard = add(hard, h);
    }
    let n_units = gated.gates.unit_names.len();
    let mut soft_all = Vec::new();
    for t in soft.expect("at least one batch") {
        soft_all.push(host::floats(t).await?);
    }
    let mut hard_all = Vec::new();
    for t in hard.expect("at least one batch") {
        hard_all.push(host::floats(t).await?);
    }
    let n = seen.max(1) as f32;
    let scale = |v: Vec<Vec<f32>>| -> Vec<Vec<f32>> {
        v.into_iter()
            .map(|g| g.into_iter().map(|x| x / n).collect())
            .collect()
    };
    let (soft_all, hard_all) = (scale(soft_all), scale(hard_all));
    let agreement = {
        let shares: Vec<f32> = hard_all.iter().flatten().map(|&p| p.max(1.0 - p)).collect();
        shares.iter().sum::<f32>() / shares.len().max(1) as f32
    };
    Ok(GateState {
        units: soft_all[..n_units].to_vec(),
        blocks: soft_all[n_units..].iter().map(|b| b[0]).collect(),
        open_units: hard_all[..n_units]
            .iter()
            .map(|g| g.iter().map(|&p| p > 0.5).collect())
            .collect(),
        open_blocks: hard_all[n_units..].iter().map(|b| b[0] > 0.5).collect(),
        agreement: Some(agreement),
    })
}

async fn read(units: &[Tensor<1>], blocks: &[Tensor<1>]) -> Result<(Vec<Vec<f32>>, Vec<f32>)> {
    let mut u = Vec::new();
    for t in units {
        u.push(host::floats(t.clone()).await?);
    }
    let mut b = Vec::new();
    for t in blocks {
        b.push(host::scalar(t.clone()).await?);
    }
    Ok((u, b))
}

/// The plan open gates describe: closed units and blocks go. A group whose
/// gates all closed keeps its most open unit (`soft` orders them).
pub fn plan_from_open(
    gates: &Gates,
    open_units: &[Vec<bool>],
    open_blocks: &[bool],
    soft: &[Vec<f32>],
) -> Plan {
    let mut plan = Plan::default();
    for ((name, open), g) in gates.unit_names.iter().zip(open_units).zip(soft) {
        let mut kept: Vec<usize> = (0..open.len()).filter(|&i| open[i]).collect();
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
        .zip(open_blocks)
        .filter(|(_, open)| !**open)
        .map(|(n, _)| n.clone())
        .collect();
    plan
}

/// The plan of gate values (open above ½), as the tests and the page use it.
pub fn plan_from_gates(gates: &Gates, units: &[Vec<f32>], blocks: &[f32]) -> Plan {
    let open_u: Vec<Vec<bool>> = units
        .iter()
        .map(|g| g.iter().map(|&v| v > 0.5).collect())
        .collect();
    let open_b: Vec<bool> = blocks.iter().map(|&v| v > 0.5).collect();
    plan_from_open(gates, &open_u, &open_b, units)
}

/// What the regulariser achieved on its own, just before the freeze.
#[derive(Debug, Clone, Serialize)]
pub struct Learned {
    /// The step of the freeze.
    pub step: u64,
    /// Share of the dense cost the learned consensus keeps.
    pub kept_cost: f64,
    /// `1 − kept_cost`: what it removes.
    pub removed: f64,
    pub target: f64,
    /// `removed − target` (positive: removed more than asked).
    pub distance: f64,
    pub gates: usize,
    pub undecided: usize,
    /// Share of gates with a soft value outside (0.1, 0.9).
    pub decided_share: f64,
    /// Dynamic gates: mean share of samples agreeing with the consensus.
    pub agreement: Option<f32>,
}

/// What `settle` did on top.
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    pub enabled: bool,
    pub flipped_units: usize,
    pub flipped_blocks: usize,
    /// Units kept alive because their whole group closed (a layer never empties).
    pub revived_units: usize,
    /// Share of the dense cost the frozen sub-network keeps.
    pub kept_cost: f64,
}

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
        trainer
            .optim
            .normalized_steps
            .push(("gated.gates.".into(), gate_step, trainer.config.lr));
        trainer.optim.preconditioner = preconditioner;
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
        self.trainer.optim.normalized_steps.clear();
        self.trainer.optim.preconditioner.clear();
        self.trainer
            .optim
            .normalized_steps
            .push(("gated.gates.".into(), 0.0, 1.0));
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

pub struct Polarization;

impl Method for Polarization {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    /// One gated pass from θ₀; no fine-tuning.
    fn stages(
        &self,
        options: &PruneOptions,
        train: &TrainConfig,
    ) -> Vec<crate::prune::contract::Stage> {
        let epochs = options
            .of::<PolarizationOptions>(INFO.name)
            .ok()
            .and_then(|o| o.epochs)
            .unwrap_or(train.epochs);
        vec![crate::prune::contract::Stage::of(
            "gated pass from θ₀",
            &TrainConfig {
                epochs,
                ..train.clone()
            },
        )]
    }

    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let device = job.device.autodiff();
            // A fork: the pass trains its model in place, and the model it
            // was handed (θ₀ in a comparison) must stay as it was.
            let mut run = PolarizationRun::new(
                job.model.deep_fork(),
                job.target,
                job.options.of::<PolarizationOptions>(INFO.name)?,
                job.train.clone(),
                job.split.train.len(),
                job.seed,
                &device,
            )?;
            let was_frozen = |run: &PolarizationRun| run.frozen();
            while !run.finished() {
                let before = was_frozen(&run);
                let (_, r) = run
                    .run_epoch(job.split, job.augment, &device, &mut *job.sink)
                    .await?;
                if !before && run.frozen() {
                    job.sink.emit(freeze_event(&run));
                }
                let total = r.units.iter().map(Vec::len).sum::<usize>() + r.blocks.len();
                job.sink.emit(Event::Phase {
                    name: "gates".into(),
                    detail: format!(
                        "{} of {total} gates decided, {:.1}% of the cost kept{}",
                        total - r.undecided,
                        100.0 * r.kept,
                        if r.frozen { ", frozen" } else { "" }
                    ),
                });
            }
            let frozen_before = run.frozen();
            let outcome = run.finish(job.split, &device).await;
            if let (false, Ok(o)) = (frozen_before, &outcome) {
                job.sink.emit(Event::Phase {
                    name: "freeze".into(),
                    detail: format!("at the end of the pass: {}", o.details["learned"]),
                });
            }
            outcome
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
    ) -> crate::host::BoxFuture<'a, Result<Option<StepStats>>> {
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

/// The share of the dense cost a plan keeps.
fn kept_share(spec: &ModelSpec, plan: &Plan, measure: Measure) -> f64 {
    let (dense, cut) = (count(spec), count(&plan.apply_to_spec(spec)));
    match measure {
        Measure::Macs => cut.macs as f64 / dense.macs as f64,
        Measure::Params => cut.params as f64 / dense.params as f64,
    }
}

/// The last resort: flips gates of `open_*` until the budget is met.
/// Channels first — reopened (most open first) while the network keeps less
/// than `1 − target` of the dense cost, closed (least open first, never a
/// group's last unit) while it keeps more; blocks are reopened (most open
/// first) only when the channels alone cannot reach the budget. Returns the
/// channel and block flips.
fn settle(
    spec: &ModelSpec,
    gates: &Gates,
    measure: Measure,
    target: f32,
    state: &GateState,
    open_units: &mut [Vec<bool>],
    open_blocks: &mut [bool],
) -> (usize, usize) {
    let keep = 1.0 - target as f64;
    let share = |units: &[Vec<bool>], blocks: &[bool]| {
        kept_share(
            spec,
            &plan_from_open(gates, units, blocks, &state.units),
            measure,
        )
    };
    // Units by openness, least open first; ties by group and index.
    let mut order: Vec<(f32, usize, usize)> = state
        .units
        .iter()
        .enumerate()
        .flat_map(|(g, v)| v.iter().enumerate().map(move |(i, &x)| (x, g, i)))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut units_flipped, mut blocks_flipped) = (0, 0);
    let mut current = share(open_units, open_blocks);
    // A channel inside a closed block costs nothing either way: leave it.
    let in_open_block = |g: usize, blocks: &[bool]| gates.head_blocks[g].is_none_or(|b| blocks[b]);
    if current < keep {
        for &(_, g, i) in order.iter().rev() {
            if current >= keep {
                break;
            }
            if !open_units[g][i] && in_open_block(g, open_blocks) {
                open_units[g][i] = true;
                units_flipped += 1;
                current = share(open_units, open_blocks);
            }
        }
        while current < keep {
            let Some(b) = (0..open_blocks.len())
                .filter(|&b| !open_blocks[b])
                .max_by(|&a, &b| state.blocks[a].total_cmp(&state.blocks[b]))
            else {
                break;
            };
            open_blocks[b] = true;
            blocks_flipped += 1;
            current = share(open_units, open_blocks);
        }
    } else {
        for &(_, g, i) in order.iter() {
            if current <= keep {
                break;
            }
            if open_units[g][i]
                && in_open_block(g, open_blocks)
                && open_units[g].iter().filter(|&&o| o).count() > 1
            {
                open_units[g][i] = false;
                units_flipped += 1;
                current = share(open_units, open_blocks);
            }
        }
    }
    (units_flipped, blocks_flipped)
}
