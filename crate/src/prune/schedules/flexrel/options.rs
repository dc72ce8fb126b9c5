//! FlexRel's options and its registry entry ([`INFO`]): every knob with
//! where its default comes from.

use serde::{Deserialize, Serialize};

use crate::base::error::Result;
use crate::prune::contract::{CheckOptions, require};
use crate::prune::contract::{Finetune, Granularity, Knob, MethodInfo, OptionsSpec, Phase};
use crate::prune::pruner::select::Scope;
use crate::prune::schedules::flexrel::lrp::Relevance;

/// The pruning factors swept when `accuracy_target` is set.
pub const SWEEP_FACTORS: &[f32] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95];

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
    /// The target as the dense model's validation accuracy less this share
    /// (0.01: one point), so that it asks the same at any training budget.
    /// One of this and `accuracy_target`.
    pub accuracy_drop: Option<f32>,
    /// Pruning factors swept when choosing (ascending).
    pub factors: Vec<f32>,
    /// The share of the validation split the choice is made on (every
    /// other example at 0.5); the rest checks the chosen model.
    pub select_share: f32,
}

impl CheckOptions for FlexRelOptions {
    fn check(&self) -> Result<()> {
        let share = |v: f32| (0.0..=1.0).contains(&v);
        require(share(self.delta), "flexrel.delta", self.delta, "0 to 1")?;
        require(
            (0.0..=1000.0).contains(&self.lrp_epsilon),
            "flexrel.lrp_epsilon",
            self.lrp_epsilon,
            "0 to 1000",
        )?;
        require(
            (1..=1_000_000).contains(&self.samples),
            "flexrel.samples",
            self.samples,
            "1 to 1000000",
        )?;
        require(
            self.sweep.len() <= 100 && self.sweep.iter().all(|&d| share(d)),
            "flexrel.sweep",
            format!("{:?}", self.sweep),
            "at most 100 values of δ, each 0 to 1",
        )?;
        if let Some(a) = self.accuracy_target {
            require(
                share(a),
                "flexrel.accuracy_target",
                a,
                "an accuracy share 0 to 1",
            )?;
        }
        require(
            !self.factors.is_empty()
                && self.factors.len() <= 100
                && self.factors.iter().all(|&f| f > 0.0 && f < 1.0)
                && self.factors.windows(2).all(|w| w[0] < w[1]),
            "flexrel.factors",
            format!("{:?}", self.factors),
            "1 to 100 ascending factors, each in (0, 1)",
        )?;
        require(
            self.select_share > 0.0 && self.select_share <= 1.0,
            "flexrel.select_share",
            self.select_share,
            "(0, 1]",
        )?;
        if let Some(d) = self.accuracy_drop {
            require(
                share(d),
                "flexrel.accuracy_drop",
                d,
                "an accuracy share 0 to 1",
            )?;
            require(
                self.accuracy_target.is_none(),
                "flexrel.accuracy_drop",
                d,
                "give either accuracy_target or accuracy_drop, not both",
            )?;
        }
        Ok(())
    }
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
            accuracy_drop: None,
            factors: SWEEP_FACTORS.to_vec(),
            select_share: 0.5,
        }
    }
}

pub static INFO: MethodInfo = MethodInfo {
    name: "flexrel",
    title: "S2: FlexRel (magnitude + relevance)",
    source: "Chiasserini et al., Combining Relevance and Magnitude for Resource-Aware DNN Pruning (arXiv 2405.13088)",
    summary: "a unit's magnitude and its LRP relevance combined, pruned to a bandwidth or accuracy-drop budget chosen on the validation split",
    phase: Phase::AfterTraining,
    granularity: Granularity::Weights,
    needs_blocks: false,
    scope: Some((
        Scope::Global,
        "ours: the paper's ranking scope is not public (UNVERIFIED)",
    )),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 0.0,
        lr_factor: 0.1,
        source: "the paper reports accuracy against the pruning factor without a stated fine-tuning step (UNVERIFIED)",
    }),
    options: Some(OptionsSpec::of::<FlexRelOptions>()),
    knobs: &[
        Knob {
            key: "flexrel.delta",
            source: "ours: the paper tunes δ in [0, 1]",
        },
        Knob {
            key: "flexrel.relevance",
            source: "ours: LRP-ε (the paper's 'activity maximization' rule is UNVERIFIED)",
        },
        Knob {
            key: "flexrel.norm_scope",
            source: "ours: min-max over all layers (UNVERIFIED)",
        },
        Knob {
            key: "flexrel.lrp_epsilon",
            source: "ours",
        },
        Knob {
            key: "flexrel.samples",
            source: "ours",
        },
        Knob {
            key: "flexrel.sweep",
            source: "ours: δ values swept when accuracy_target is set",
        },
        Knob {
            key: "flexrel.accuracy_target",
            source: "the paper's 'highest pruning factor that meets an accuracy target' (on the validation split)",
        },
        Knob {
            key: "flexrel.accuracy_drop",
            source: "ours: the same target relative to the dense model's validation accuracy",
        },
        Knob {
            key: "flexrel.factors",
            source: "ours: steps of 0.1, then 0.05 above 0.8 (the paper's grid is not public)",
        },
        Knob {
            key: "flexrel.select_share",
            source: "ours: choose on half the validation split, check on the other half",
        },
    ],
};
