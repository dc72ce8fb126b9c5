//! Polar: neuron-level structured pruning with a polarization regulariser
//! (Zhuang et al., "Neuron-level Structured Pruning using Polarization
//! Regularizer", NeurIPS 2020). Network slimming's L1 pushes *every* BN
//! scale towards 0; Polar's `R(γ) = t·‖γ‖₁ − ‖γ − α·γ̄·1‖₁` (`γ̄` the mean
//! of all the scales) pushes some to 0 and the others away from them, so the
//! channels to prune separate cleanly from the rest. The closest published
//! relative of S1's polarization (which acts on learned gates, not BN
//! scales, and learns the budget). Train from θ₀ with the penalty (scales
//! clamped to [0, 1] after each step, as the authors' code), then the
//! global `|γ|` cut to the target and fine-tuning — as slimming.
//!
//! Differences from the authors' code, stated: the penalty covers the BN
//! scales of the prunable channels (theirs covers every BN, the residual
//! stream's too); the cut is the target's global ranking (theirs picks a
//! threshold from the scales' histogram); BN scales start at burn's 1
//! (theirs at 0.5).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::base::error::Result;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, Job, Knob, Method, MethodInfo, OptionsSpec, Outcome, Phase,
    Scores, Scoring,
};
use crate::prune::contract::{CheckOptions, require};
use crate::prune::criteria::bn_scale::scores;
use crate::prune::options::PruneOptions;
use crate::prune::pruner::select::Scope;
use crate::prune::schedules::slimming::penalise_then_cut;
use crate::train::optim::{Optimizer, StepHook, Watched};

/// Polar's own options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolarOptions {
    /// λ, the regulariser's weight.
    pub lambda: f64,
    /// t, the weight of the L1 term against the spreading term.
    pub t: f64,
    /// α, the factor on the mean the scales are spread from.
    pub alpha: f64,
}

impl Default for PolarOptions {
    fn default() -> Self {
        PolarOptions {
            lambda: 1e-4,
            t: 1.0,
            alpha: 1.0,
        }
    }
}

impl CheckOptions for PolarOptions {
    fn check(&self) -> Result<()> {
        require(
            (0.0..=1.0).contains(&self.lambda),
            "polar.lambda",
            self.lambda,
            "0 to 1",
        )?;
        require((0.0..=10.0).contains(&self.t), "polar.t", self.t, "0 to 10")?;
        require(
            (0.0..=10.0).contains(&self.alpha),
            "polar.alpha",
            self.alpha,
            "0 to 10",
        )
    }
}

pub static INFO: MethodInfo = MethodInfo {
    name: "polar",
    title: "Polar: polarization regulariser on BN scales",
    source: "Zhuang et al., Neuron-level Structured Pruning using Polarization Regularizer, NeurIPS 2020",
    summary: "Polar: trains from θ₀ with `λ·(t·‖γ‖₁ − ‖γ − α·γ̄‖₁)` on the prunable channels' BN scales (`γ̄` their mean; scales clamped to [0, 1] after each step; λ 1e-4, t 1, α 1 as the authors' code), then the global `|γ|` cut and fine-tuning. The natural baseline for S1 (a polarizing regulariser on BN scales rather than learned gates, with no learned budget). Differences from the authors' code: only the prunable channels' scales are penalised, the cut follows the target rather than their histogram threshold, and scales start at 1 rather than 0.5",
    phase: Phase::DuringTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((
        Scope::Global,
        "Zhuang et al.: one threshold over all scales",
    )),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 1.0,
        lr_factor: 1.0,
        source: "Zhuang et al.'s code: fine-tune with the training settings, as network slimming",
    }),
    options: Some(OptionsSpec::of::<PolarOptions>()),
    knobs: &[
        Knob {
            key: "polar.lambda",
            source: "the authors' code: --lbd 1e-4",
        },
        Knob {
            key: "polar.t",
            source: "the authors' code: --t 1 (the paper tunes t per model)",
        },
        Knob {
            key: "polar.alpha",
            source: "the authors' code: --alpha 1",
        },
    ],
};

pub struct PolarMethod;

impl Method for PolarMethod {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn stages(
        &self,
        options: &PruneOptions,
        train: &crate::train::TrainConfig,
    ) -> Vec<crate::prune::contract::Stage> {
        crate::prune::schedules::slimming::penalised_stages(&INFO, options, train)
    }

    fn score<'a>(&'a self, s: Scoring<'a>) -> BoxFuture<'a, Result<Scores>> {
        Box::pin(async move { Ok(Scores::Units(scores(s.model, &s.layers()).await?)) })
    }

    fn check_model(&self, spec: &crate::model::ModelSpec) -> Result<()> {
        crate::prune::schedules::slimming::Slimming.check_model(spec)
    }

    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let o: PolarOptions = job.options.of(INFO.name)?;
            let details = serde_json::to_value(&o).expect("plain data");
            let penalty = move |optim: &mut Optimizer, paths: Vec<String>| {
                optim
                    .hooks
                    .push(Box::new(PolarPenalty::new(paths, o.lambda, o.t, o.alpha)));
            };
            penalise_then_cut(job, penalty, details).await
        })
    }
}

/// Polar's regulariser as a step hook: `λ·(t·Σ|γ| − Σ|γ − α·γ̄|)` over the
/// scales at `paths`, `γ̄` their mean over all of them (Zhuang et al.,
/// NeurIPS 2020, Eq. 2), with the scales clamped to `[0, 1]` after every
/// step as the authors' code does. Its gradient for `γ_k` is
/// `λ·(t·sign(γ_k) − sign(γ_k − αγ̄) + α·mean_i sign(γ_i − αγ̄))`, the last
/// term being `γ̄`'s own dependence on `γ_k`.
#[derive(Debug)]
pub struct PolarPenalty {
    pub paths: Vec<String>,
    pub lambda: f64,
    pub t: f64,
    pub alpha: f64,
    /// This step's `(γ̄, mean sign(γ − αγ̄))` over the scales.
    stats: Option<(Tensor<1>, Tensor<1>)>,
}

impl PolarPenalty {
    pub fn new(paths: Vec<String>, lambda: f64, t: f64, alpha: f64) -> Self {
        PolarPenalty {
            paths,
            lambda,
            t,
            alpha,
            stats: None,
        }
    }
}

impl StepHook for PolarPenalty {
    fn watches(&self, path: &str) -> bool {
        self.paths.iter().any(|q| q == path)
    }

    fn begin(&mut self, watched: &[Watched]) {
        self.stats = (!watched.is_empty()).then(|| {
            let all = Tensor::cat(watched.iter().map(|w| w.value.clone()).collect(), 0);
            let mean = all.clone().mean();
            let [n] = all.dims();
            let sign_mean = (all - mean.clone().expand([n]) * self.alpha).sign().mean();
            (mean, sign_mean)
        });
    }

    fn gradient(&self, path: &str, p: &Tensor<1>, g: Tensor<1>) -> Tensor<1> {
        let Some((mean, sign_mean)) = self.stats.as_ref().filter(|_| self.watches(path)) else {
            return g;
        };
        let [n] = p.dims();
        let centre = mean.clone().expand([n]) * self.alpha;
        let pull = p.clone().sign() * self.t - (p.clone() - centre).sign()
            + sign_mean.clone().expand([n]) * self.alpha;
        g + pull * self.lambda
    }

    fn after(&self, path: &str, p: Tensor<1>) -> Tensor<1> {
        if self.stats.is_some() && self.watches(path) {
            p.clamp(0.0, 1.0)
        } else {
            p
        }
    }
}
