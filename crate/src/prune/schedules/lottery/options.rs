//! The lottery's options (criterion, aggregate, rewind, candidates) and its
//! registry entry ([`INFO`]), every knob with where its default comes from.

use serde::{Deserialize, Serialize};

use crate::base::error::Result;
use crate::prune::contract::{CheckOptions, require};
use crate::prune::contract::{Granularity, Knob, MethodInfo, OptionsSpec, Phase};

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

impl CheckOptions for LotteryOptions {
    fn check(&self) -> Result<()> {
        require(
            self.rewind_epoch <= 100_000,
            "lottery.rewind_epoch",
            self.rewind_epoch,
            "0 to 100000",
        )?;
        require(
            self.grasp_epsilon > 0.0 && self.grasp_epsilon <= 1.0,
            "lottery.grasp_epsilon",
            self.grasp_epsilon,
            "(0, 1]",
        )?;
        require(
            (0.0..=1.0).contains(&self.xi),
            "lottery.xi",
            self.xi,
            "an accuracy share 0 to 1",
        )?;
        Ok(())
    }
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
            grasp_epsilon: crate::prune::schedules::lottery::grasp::EPSILON,
            xi: 0.01,
        }
    }
}

pub static INFO: MethodInfo = MethodInfo {
    name: "lottery",
    title: "S4: layer lottery tickets at initialisation",
    source: "Jordao et al., When Layers Play the Lottery, all Tickets Win at Initialization (arXiv 2301.10835)",
    summary: "residual blocks scored at initialisation (SNIP or GraSP summed over each block), the highest-ranked removed, then training",
    phase: Phase::AtInit,
    granularity: Granularity::Blocks,
    needs_blocks: true,
    scope: None,
    normalize: None,
    score_batches: Some((
        10,
        "ours: the paper does not say which data scores the blocks (UNVERIFIED)",
    )),
    ranking: None,
    finetune: None,
    options: Some(OptionsSpec::of::<LotteryOptions>()),
    knobs: &[
        Knob {
            key: "lottery.criterion",
            source: "the paper: GraSP is the chosen criterion (Algorithm 2)",
        },
        Knob {
            key: "lottery.candidates",
            source: "the paper §3: blocks beside a down-sampling block are not removed",
        },
        Knob {
            key: "lottery.aggregate",
            source: "ours: the paper does not say how weight scores become block scores (UNVERIFIED)",
        },
        Knob {
            key: "lottery.grasp_flip",
            source: "GraSP removes the highest −w⊙Hg first",
        },
        Knob {
            key: "lottery.rewind",
            source: "the paper's Algorithm 2 (tickets at initialisation)",
        },
        Knob {
            key: "lottery.rewind_epoch",
            source: "Algorithm 1's rewind point i (the paper tries 0, 25, 50, 75)",
        },
        Knob {
            key: "lottery.grasp_epsilon",
            source: "ours: the finite-difference step of Hg",
        },
        Knob {
            key: "lottery.xi",
            source: "the paper's Eq. 1: ξ is usually one point",
        },
    ],
};
