//! Iterative magnitude pruning with rewinding (Frankle & Carbin, "The Lottery
//! Ticket Hypothesis", ICLR 2019, arXiv 1803.03635; with learning-rate
//! rewinding from Renda et al., "Comparing Rewinding and Fine-tuning in
//! Neural Network Pruning", ICLR 2020, arXiv 2003.02389).
//!
//! Train once (one schedule, keeping θ_k at epoch k = `rewind_epoch`); remove
//! the smallest-magnitude surviving weights (globally), so that after
//! `rounds` rounds `target` sparsity is reached (each round removes
//! `1 − (1 − s)^(1/rounds)` of the survivors, and a removed weight never
//! returns); then either rewind the weights to θ_k (`rewind = "weights"`) or
//! keep the trained ones (`rewind = "lr"`), and retrain the last `E − k`
//! epochs with the learning-rate schedule resumed at epoch k; repeat.

use crate::prune::contract::{
    BoxFuture, Granularity, Job, Knob, Method, MethodInfo, OptionsSpec, Outcome, Phase,
};
use crate::prune::contract::{CheckOptions, require};
use crate::prune::options::PruneOptions;
use crate::prune::pipeline::train_from;
use crate::prune::pruner::apply::weight_sparsity;
use crate::prune::pruner::masks::{masks_from_scores, within};
use crate::prune::pruner::select::Scope;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::events::Event;
use crate::model::Model;
use crate::model::masks::WeightMasks;
use crate::train::Trainer;

/// The next round's masks: the smallest-magnitude survivors of `model` go
/// (globally) until `sparsity` is reached; weights `masks` removed stay removed.
pub async fn next_masks(model: &Model, masks: &WeightMasks, sparsity: f32) -> Result<WeightMasks> {
    let scores = crate::prune::criteria::magnitude::scores(model).await?;
    masks_from_scores(&within(&scores, masks), sparsity, Scope::Global)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ImpRewind {
    /// Frankle & Carbin: rewind the weights to θ_k (k = `rewind_epoch`) and
    /// replay the schedule from epoch k (from the start when k = 0).
    #[default]
    Weights,
    /// Renda et al.: keep the trained weights and replay the learning-rate
    /// schedule from epoch k.
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

impl CheckOptions for ImpOptions {
    fn check(&self) -> Result<()> {
        require(
            (1..=100).contains(&self.rounds),
            "imp.rounds",
            self.rounds,
            "1 to 100",
        )?;
        require(
            self.rewind_epoch <= 100_000,
            "imp.rewind_epoch",
            self.rewind_epoch,
            "0 to 100000",
        )?;
        if let Some(e) = self.epochs {
            require((1..=100_000).contains(&e), "imp.epochs", e, "1 to 100000")?;
        }
        Ok(())
    }
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

pub static INFO: MethodInfo = MethodInfo {
    name: "imp",
    title: "Iterative magnitude pruning with rewinding",
    source: "Frankle & Carbin, ICLR 2019 (arXiv 1803.03635); Renda et al., ICLR 2020 (arXiv 2003.02389)",
    summary: "iterative magnitude pruning: one dense schedule keeping θ_k; each round removes the smallest surviving weights (a removed weight never returns) and retrains the last E − k epochs with the schedule resumed at k, from θ_k (`imp.rewind = \"weights\"`) or from the trained weights (`\"lr\"`, LR rewinding)",
    phase: Phase::Iterative,
    granularity: Granularity::Weights,
    needs_blocks: false,
    scope: None,
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: None,
    options: Some(OptionsSpec::of::<ImpOptions>()),
    knobs: &[
        Knob {
            key: "imp.rounds",
            source: "ours (Frankle & Carbin prune 20% per round over many rounds)",
        },
        Knob {
            key: "imp.rewind",
            source: "Frankle & Carbin: rewind the weights",
        },
        Knob {
            key: "imp.rewind_epoch",
            source: "Frankle & Carbin (ICLR 2019): θ₀; Frankle et al. 2020 rewind to an early epoch for deep nets",
        },
        Knob {
            key: "imp.epochs",
            source: "the training config's epochs per round",
        },
    ],
};

pub struct Imp;

impl Method for Imp {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    /// One dense schedule, then each round retrains from the rewind epoch.
    fn stages(
        &self,
        options: &PruneOptions,
        train: &crate::train::TrainConfig,
    ) -> Vec<crate::prune::contract::Stage> {
        let o: ImpOptions = options.of(INFO.name).unwrap_or_default();
        let config = crate::train::TrainConfig {
            epochs: o.epochs.unwrap_or(train.epochs),
            ..train.clone()
        };
        let retrain = crate::train::TrainConfig {
            epochs: config.epochs.saturating_sub(o.rewind_epoch) * o.rounds,
            ..config.clone()
        };
        vec![
            crate::prune::contract::Stage::of("train", &config),
            crate::prune::contract::Stage::of(&format!("retrain ({} rounds)", o.rounds), &retrain),
        ]
    }

    fn run<'a>(&'a self, mut job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let o: ImpOptions = job.options.of(INFO.name)?;
            if o.rounds == 0 {
                return Err(Error::config("imp.rounds", 0, "use at least one round"));
            }
            let final_sparsity = weight_sparsity(&job.target, &job.model.spec)? as f64;
            let mut config = job.train.clone();
            if let Some(e) = o.epochs {
                config.epochs = e;
            }
            if o.rewind_epoch >= config.epochs {
                return Err(Error::config(
                    "imp.rewind_epoch",
                    o.rewind_epoch,
                    "rewind to an epoch before the end of a round (each round retrains epochs − rewind_epoch)",
                ));
            }
            // Round 0: one dense schedule, keeping a fork of θ_k on the way.
            let device = job.device.autodiff();
            let mut trainer = Trainer::new(job.model.deep_fork(), config.clone(), job.seed);
            let mut theta_k = trainer.model.deep_fork();
            while !trainer.finished() {
                if trainer.progress.epoch == o.rewind_epoch {
                    theta_k = trainer.model.deep_fork();
                }
                trainer
                    .run_epoch(job.split, job.augment, &device, &mut *job.sink)
                    .await?;
            }
            let mut model = trainer.model;
            let mut history = trainer.progress.history;
            let mut masks = WeightMasks::dense(&model);
            let per_round = 1.0 - (1.0 - final_sparsity).powf(1.0 / o.rounds as f64);
            let mut rounds = Vec::new();
            for round in 1..=o.rounds {
                let sparsity = 1.0 - (1.0 - per_round).powi(round as i32);
                masks = next_masks(&model, &masks, sparsity.min(final_sparsity) as f32).await?;
                job.sink.emit(Event::Phase {
                    name: "imp".into(),
                    detail: format!(
                        "round {round}/{}: {:.1}% of weights pruned",
                        o.rounds,
                        100.0 * masks.sparsity()
                    ),
                });
                rounds.push(masks.sparsity());
                // Weight rewinding restarts from θ_k, LR rewinding from the
                // trained weights; both replay the schedule from epoch k.
                let start = match o.rewind {
                    ImpRewind::Weights => masks.apply(&theta_k),
                    ImpRewind::Lr => masks.apply(&model),
                };
                let (trained, h) = train_from(
                    &mut job,
                    start,
                    config.clone(),
                    Some(&masks),
                    o.rewind_epoch,
                )
                .await?;
                history.extend(h);
                model = trained;
            }
            let details = serde_json::json!({
                "rounds": o.rounds,
                "rewind": o.rewind,
                "rewind_epoch": o.rewind_epoch,
                "sparsity_per_round": rounds,
            });
            Ok(Outcome {
                model,
                plan: None,
                masks: Some(masks),
                history,
                details,
            })
        })
    }
}
