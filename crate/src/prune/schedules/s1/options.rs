//! S1's options (every coefficient of the gate and loss formulas), and its
//! entry in the method catalog with each default's source.

use serde::{Deserialize, Serialize};

use crate::base::error::Result;
use crate::prune::contract::{CheckOptions, require};
use crate::prune::contract::{Granularity, Knob, MethodInfo, OptionsSpec, Phase};

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
    summary: "learned consensus gates on every prunable channel, pushed to 0 or 1 by a polarization regulariser toward a learned FLOPs target, in one training pass from θ₀; no fine-tuning",
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

use super::gates::GateKind;
