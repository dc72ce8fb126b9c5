//! Network slimming (Liu et al., "Learning Efficient Convolutional Networks
//! through Network Slimming", ICCV 2017, arXiv 1708.06519): train with an L1
//! penalty `λ·Σ|γ|` on the BN scale of every prunable channel, so that
//! unimportant channels' scales go to zero; then remove the channels with
//! the smallest `|γ|` in one global ranking and fine-tune. The penalty
//! enters as its subgradient `λ·sign(γ)` on the scales' gradients, as the
//! authors' code adds it. Its one-shot score on a model trained without the
//! penalty (the lab's slider) is `|γ|` alone. Needs BN: CNNs and ResNets.

use std::collections::HashMap;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::model::Net;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, Job, Knob, Method, MethodInfo, OptionsSpec, Outcome, Phase,
    Scores, Scoring,
};
use crate::prune::contract::{CheckOptions, require};
use crate::prune::criteria::bn_scale::{scores, unit_scales};
use crate::prune::options::PruneOptions;
use crate::prune::pipeline::{Then, select_options, structured, train_configured};
use crate::prune::pruner::select::Scope;
use crate::train::optim::{Optimizer, StepHook};

/// Network slimming's own options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SlimmingOptions {
    /// λ of the L1 penalty on BN scales (unset: 1e-5 for ResNets, 1e-4
    /// otherwise, the paper's CIFAR values).
    pub lambda: Option<f64>,
}

impl CheckOptions for SlimmingOptions {
    fn check(&self) -> Result<()> {
        if let Some(l) = self.lambda {
            require((0.0..=1.0).contains(&l), "slimming.lambda", l, "0 to 1")?;
        }
        Ok(())
    }
}

pub static INFO: MethodInfo = MethodInfo {
    name: "slimming",
    title: "Network slimming (BN scales with L1 sparsity)",
    source: "Liu et al., Learning Efficient Convolutional Networks through Network Slimming, ICCV 2017 (arXiv 1708.06519)",
    summary: "network slimming: trains from θ₀ for the training budget with `λ·Σ|γ|` on every prunable channel's BN scale (its subgradient on the scales, as the authors' code; λ 1e-5 for ResNets, 1e-4 otherwise), removes the smallest `|γ|` globally, fine-tunes; on a model trained without it (the lab) it ranks by `|γ|` alone; CNNs and ResNets only",
    phase: Phase::DuringTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((Scope::Global, "Liu et al.: one global threshold on |γ|")),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 1.0,
        lr_factor: 1.0,
        source: "Liu et al.: fine-tune with the training settings (160 epochs on CIFAR, as trained)",
    }),
    options: Some(OptionsSpec::of::<SlimmingOptions>()),
    knobs: &[Knob {
        key: "slimming.lambda",
        source: "Liu et al. §5: 1e-4 for VGG, 1e-5 for ResNet and DenseNet on CIFAR",
    }],
};

pub struct Slimming;

impl Method for Slimming {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn stages(
        &self,
        options: &PruneOptions,
        train: &crate::train::TrainConfig,
    ) -> Vec<crate::prune::contract::Stage> {
        penalised_stages(&INFO, options, train)
    }

    fn score<'a>(&'a self, s: Scoring<'a>) -> BoxFuture<'a, Result<Scores>> {
        Box::pin(async move { Ok(Scores::Units(scores(s.model, &s.layers()).await?)) })
    }

    fn check_model(&self, spec: &crate::model::ModelSpec) -> Result<()> {
        match spec {
            crate::model::ModelSpec::Mlp(_) => Err(Error::config(
                "method",
                INFO.name,
                format!(
                    "it ranks BN scales; {} has no batch norm (use a CNN or a ResNet)",
                    spec.name()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Sparsity training from θ₀ for the training budget, then the global
    /// |γ| cut and fine-tuning.
    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let o: SlimmingOptions = job.options.of(INFO.name)?;
            let is_resnet = matches!(job.model.net, Net::Resnet(_));
            let lambda = o.lambda.unwrap_or(if is_resnet { 1e-5 } else { 1e-4 });
            let penalty = move |optim: &mut Optimizer, paths: Vec<String>| {
                optim.hooks.push(Box::new(L1Penalty {
                    lambda: paths.into_iter().map(|p| (p, lambda)).collect(),
                }));
            };
            penalise_then_cut(job, penalty, serde_json::json!({ "lambda": lambda })).await
        })
    }
}

/// What the BN-scale methods train: the penalised pass from θ₀ for the
/// training budget, then the fine-tuning of the cut network.
pub fn penalised_stages(
    info: &MethodInfo,
    options: &PruneOptions,
    train: &crate::train::TrainConfig,
) -> Vec<crate::prune::contract::Stage> {
    vec![
        crate::prune::contract::Stage::of("sparse pass from θ₀", train),
        crate::prune::contract::Stage::of(
            "fine-tune",
            &crate::prune::recipe::finetune_config(info, options, train),
        ),
    ]
}

/// The flow of the BN-scale methods (slimming, Polar): train from θ₀ for the
/// training budget with `penalty` set on the prunable channels' scales
/// (given their parameter paths), rank channels by `|γ|` in one global
/// ranking, cut to the target and fine-tune. The result's history holds the
/// penalised training, then the fine-tuning.
pub async fn penalise_then_cut(
    mut job: Job<'_>,
    penalty: impl FnOnce(&mut Optimizer, Vec<String>),
    mut details: serde_json::Value,
) -> Result<Outcome> {
    let layers = job.scoring().layers();
    let paths: Vec<String> = unit_scales(&job.model, &layers)
        .await?
        .into_iter()
        .map(|(_, path, _)| path)
        .collect();
    let model = job.model.deep_fork();
    let config = job.train.clone();
    let (trained, sparse_history) =
        train_configured(&mut job, model, config, 0, |optim, _| penalty(optim, paths)).await?;
    job.model = trained;
    let scores = scores(&job.model, &layers).await?;
    let options = select_options(&job);
    details["scales"] = serde_json::to_value(&scores).expect("plain data");
    let mut outcome = structured(job, scores, options, Then::Finetune, details).await?;
    let mut history = sparse_history;
    history.append(&mut outcome.history);
    outcome.history = history;
    Ok(outcome)
}

/// Network slimming's penalty as a step hook: `λ·Σ|p|` on the parameters at
/// these paths, as its subgradient `λ·sign(p)` added to their gradient, as
/// its authors' code adds it.
#[derive(Debug, Clone, PartialEq)]
pub struct L1Penalty {
    /// λ by parameter path.
    pub lambda: HashMap<String, f64>,
}

impl StepHook for L1Penalty {
    fn gradient(&self, path: &str, p: &Tensor<1>, g: Tensor<1>) -> Tensor<1> {
        match self.lambda.get(path) {
            Some(&lambda) => g + p.clone().sign() * lambda,
            None => g,
        }
    }
}
