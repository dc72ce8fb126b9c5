//! Iterative magnitude pruning with rewinding (Frankle & Carbin, "The Lottery
//! Ticket Hypothesis", ICLR 2019, arXiv 1803.03635; with learning-rate
//! rewinding from Renda et al., "Comparing Rewinding and Fine-tuning in
//! Neural Network Pruning", ICLR 2020, arXiv 2003.02389).
//!
//! Train; remove the smallest-magnitude surviving weights (globally), so that
//! after `rounds` rounds `target` sparsity is reached (each round removes
//! `1 − (1 − s)^(1/rounds)` of the survivors); then either rewind the weights
//! to θ_k and retrain (`rewind = "weights"`) or keep them and replay the
//! learning-rate schedule (`rewind = "lr"`); repeat.

use super::masks::{WeightMasks, masks_from_scores};
use super::options::ImpRewind;
use super::pipeline::{train_for, weight_sparsity};
use super::select::Scope;
use super::{BoxFuture, Granularity, Job, Method, MethodInfo, Outcome, Phase};
use crate::error::{Error, Result};
use crate::events::Event;

pub static INFO: MethodInfo = MethodInfo {
    name: "imp",
    title: "Iterative magnitude pruning with rewinding",
    source: "Frankle & Carbin, ICLR 2019 (arXiv 1803.03635); Renda et al., ICLR 2020 (arXiv 2003.02389)",
    phase: Phase::Iterative,
    granularity: Granularity::Weights,
    needs_blocks: false,
};

pub struct Imp;

impl Method for Imp {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run<'a>(&'a self, mut job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let o = job.options.imp.clone();
            if o.rounds == 0 {
                return Err(Error::config("imp.rounds", 0, "use at least one round"));
            }
            let final_sparsity = weight_sparsity(&job.target, &job.model)? as f64;
            let mut config = job.train.clone();
            if let Some(e) = o.epochs {
                config.epochs = e;
            }
            if o.rewind_epoch > config.epochs {
                return Err(Error::config(
                    "imp.rewind_epoch",
                    o.rewind_epoch,
                    "rewind to an epoch within one round",
                ));
            }
            // Round 0: dense training, keeping θ_k.
            let theta0 = job.model.clone();
            let mut history = Vec::new();
            let (theta_k, mut model) = {
                let first = crate::config::TrainConfig {
                    epochs: o.rewind_epoch,
                    ..config.clone()
                };
                let (theta_k, h1) = train_for(&mut job, theta0, first, None).await?;
                let rest = crate::config::TrainConfig {
                    epochs: config.epochs - o.rewind_epoch,
                    ..config.clone()
                };
                let (trained, h2) = train_for(&mut job, theta_k.clone(), rest, None).await?;
                history.extend(h1);
                history.extend(h2);
                (theta_k, trained)
            };
            let mut masks = WeightMasks::dense(&model);
            let per_round = 1.0 - (1.0 - final_sparsity).powf(1.0 / o.rounds as f64);
            for round in 1..=o.rounds {
                let sparsity = 1.0 - (1.0 - per_round).powi(round as i32);
                let scores = super::magnitude::scores(&model).await?;
                masks =
                    masks_from_scores(&scores, sparsity.min(final_sparsity) as f32, Scope::Global)?;
                job.sink.emit(Event::Phase {
                    name: "imp".into(),
                    detail: format!(
                        "round {round}/{}: {:.1}% of weights pruned",
                        o.rounds,
                        100.0 * masks.sparsity()
                    ),
                });
                let start = match o.rewind {
                    ImpRewind::Weights => theta_k.clone(),
                    ImpRewind::Lr => model,
                };
                let (trained, h) =
                    train_for(&mut job, masks.apply(start), config.clone(), Some(&masks)).await?;
                history.extend(h);
                model = trained;
            }
            let details = serde_json::json!({ "rounds": o.rounds, "rewind": o.rewind, "rewind_epoch": o.rewind_epoch });
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
