//! Every knob of every method, with its documented default. Where a paper
//! leaves a detail open (see docs/methods.md), the knob is here and the
//! default says what we chose.

use serde::{Deserialize, Serialize};

use super::energy::{Energy, Svd};
pub use super::gates::GateKind;
use super::select::{Normalize, Scope};
use super::target::Target;
use crate::error::Result;

// No `deny_unknown_fields` here: these options are flattened into the
// `[prune]` table, and `RunConfig::from_toml` checks unknown keys itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneOptions {
    /// Global or per-layer ranking. Unset, each method uses its paper's:
    /// per layer for L1 (Li et al.), HRank (per-layer rates) and random
    /// channels; global for S3 (after per-layer L1 normalisation) and the
    /// weight-level methods.
    pub scope: Option<Scope>,
    /// Per-layer score normalisation before a global ranking (S3 forces L1).
    pub normalize: Normalize,
    /// Iterative selection: share of units removed per round, with the
    /// survivors renormalised between rounds. `None`: one shot.
    pub step: Option<f32>,
    /// HRank-style fixed pruning rates, one per prunable layer (overrides `target`).
    pub rates: Option<Vec<f32>>,
    /// Epochs of fine-tuning after pruning (after-training methods). Unset:
    /// each method's paper's (`prunelab methods` lists them).
    pub finetune_epochs: Option<usize>,
    /// Learning rate for fine-tuning (default: the method's factor × the
    /// training config's `lr`).
    pub finetune_lr: Option<f64>,
    /// Batches used to score (S3's `limit`, SNIP/GraSP batches). Unset: the
    /// method's paper's.
    pub score_batches: Option<usize>,
    pub score_batch_size: usize,
    /// What `random` removes: `channels`, `weights` or `blocks`.
    pub unit: RandomUnit,
    pub polarization: PolarizationOptions,
    pub flexrel: FlexRelOptions,
    pub energy: EnergyOptions,
    pub lottery: LotteryOptions,
    pub imp: ImpOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RandomUnit {
    #[default]
    Channels,
    Weights,
    Blocks,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Relevance {
    /// Layer-wise relevance propagation with the ε rule.
    #[default]
    LrpEpsilon,
    /// Gradient × input.
    GradientInput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NormScope {
    /// One min-max over every layer.
    #[default]
    Global,
    /// Each layer min-maxed on its own.
    Layer,
}

/// S2 (Chiasserini et al.).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlexRelOptions {
    /// δ in s = (1 − δ)·norm(|w|) + δ·norm(relevance).
    pub delta: f32,
    pub relevance: Relevance,
    /// Where the min-max normalisation of |w| and R is taken.
    pub norm_scope: NormScope,
    /// ε of the LRP-ε rule (relative to each layer's pre-activation scale).
    pub lrp_epsilon: f32,
    /// Inference samples the relevance is summed over.
    pub samples: usize,
    /// δ values for `prunelab prune --method flexrel --sweep`.
    pub sweep: Vec<f32>,
    /// Accuracy target (0..1) for "the highest pruning factor that meets it".
    pub accuracy_target: Option<f32>,
}

impl Default for FlexRelOptions {
    fn default() -> Self {
        FlexRelOptions {
            delta: 0.5,
            relevance: Relevance::LrpEpsilon,
            norm_scope: NormScope::Global,
            lrp_epsilon: 0.01,
            samples: 256,
            sweep: vec![0.0, 0.25, 0.5, 0.75, 1.0],
            accuracy_target: None,
        }
    }
}

/// S3 (Yeom et al.).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnergyOptions {
    pub svd: Svd,
    pub criterion: Energy,
}

impl Default for EnergyOptions {
    fn default() -> Self {
        EnergyOptions {
            svd: Svd::Full,
            criterion: Energy::Nuclear,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlockCriterion {
    Snip,
    #[default]
    Grasp,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    #[default]
    Sum,
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Rewind {
    /// Retrain from scratch (Algorithm 2: tickets at initialisation).
    #[default]
    Init,
    /// Algorithm 1: train, score, remove, rewind the weights to θ_i, retrain with LR rewinding.
    Epoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Candidates {
    /// The paper's: identity-shortcut blocks, except those beside a
    /// down-sampling block (Jordao et al. §3).
    #[default]
    Paper,
    /// Every identity-shortcut block.
    Identity,
}

/// S4 (Jordao et al.).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LotteryOptions {
    pub criterion: BlockCriterion,
    /// Which blocks may be removed.
    pub candidates: Candidates,
    /// How per-weight scores become one score per block.
    pub aggregate: Aggregate,
    /// GraSP: a block's importance is Σ w⊙Hg (= −S, GraSP's own ordering);
    /// set true to rank by S instead.
    pub grasp_flip: bool,
    pub rewind: Rewind,
    /// Algorithm 1's rewind point i (epochs), and its training length n.
    pub rewind_epoch: usize,
    /// Relative finite-difference step for GraSP's Hessian-gradient product.
    pub grasp_epsilon: f32,
    /// Winning-ticket tolerance ξ of Eq. 1, `Acc(F′) + ξ ≥ Acc(F)` (accuracy
    /// as a share, 0..1: 0.01 = one point). Judged in each result's `verdict`.
    pub xi: f32,
}

impl Default for LotteryOptions {
    fn default() -> Self {
        LotteryOptions {
            criterion: BlockCriterion::Grasp,
            candidates: Candidates::Paper,
            aggregate: Aggregate::Sum,
            grasp_flip: false,
            rewind: Rewind::Init,
            rewind_epoch: 0,
            grasp_epsilon: super::grasp::EPSILON,
            xi: 0.01,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ImpRewind {
    /// Frankle & Carbin: rewind weights to θ_k (k = `rewind_epoch`), restart the schedule.
    #[default]
    Weights,
    /// Renda et al.: keep the trained weights, replay the learning-rate schedule.
    Lr,
}

/// Iterative magnitude pruning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpOptions {
    /// Prune-retrain rounds; each removes 1 − (1 − target)^(1/rounds) of the survivors.
    pub rounds: usize,
    pub rewind: ImpRewind,
    /// Weight rewinding point (epoch; 0 = initialisation).
    pub rewind_epoch: usize,
    /// Epochs per round (default: the training config's epochs).
    pub epochs: Option<usize>,
}

impl Default for ImpOptions {
    fn default() -> Self {
        ImpOptions {
            rounds: 3,
            rewind: ImpRewind::Weights,
            rewind_epoch: 0,
            epochs: None,
        }
    }
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            scope: None,
            normalize: Normalize::None,
            step: None,
            rates: None,
            finetune_epochs: None,
            finetune_lr: None,
            score_batches: None,
            score_batch_size: 128,
            unit: RandomUnit::Channels,
            polarization: PolarizationOptions::default(),
            flexrel: FlexRelOptions::default(),
            energy: EnergyOptions::default(),
            lottery: LotteryOptions::default(),
            imp: ImpOptions::default(),
        }
    }
}

/// What `prunelab prune` and `prunelab run` do to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneConfig {
    /// A name from `prunelab methods`.
    pub method: String,
    /// `sparsity=F`, `macs=F`, `params=F` or `blocks=N`.
    pub target: String,
    #[serde(flatten)]
    pub options: PruneOptions,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            method: "l1".into(),
            target: "macs=0.5".into(),
            options: PruneOptions::default(),
        }
    }
}

impl PruneConfig {
    pub fn target(&self) -> Result<Target> {
        self.target.parse()
    }
}
