//! S4 — layer lottery tickets at initialisation (Jordao, de Araújo, Maia,
//! Pedrini, "When Layers Play the Lottery, all Tickets Win at
//! Initialization", arXiv 2301.10835).
//!
//! Residual blocks are scored and the `p` weakest removed (`blocks=p`), then
//! the shallower network is trained.
//! - Algorithm 2 (default, `rewind = "init"`): score at θ₀ with SNIP or
//!   GraSP, remove, train from scratch for the full budget.
//! - Algorithm 1 (`rewind = "epoch"`): train the dense network, score the
//!   trained weights, remove, rewind the survivors to θᵢ (`rewind_epoch`) and
//!   retrain the remaining epochs with the learning-rate schedule rewound too.
//!
//! A block's score aggregates its convs' per-weight scores (sum by default,
//! or mean — the paper does not say). SNIP: `Σ|w·g|`, lowest removed.
//! GraSP: `Σ w⊙Hg` (the negative of GraSP's S, so that lowest = what GraSP
//! removes first); `grasp_flip` ranks by S instead. Only blocks whose
//! shortcut is the identity are candidates (shapes must match).

use super::capture::Sampling;
use super::masks::LayerScores;
use super::options::{Aggregate, BlockCriterion, Rewind};
use super::pipeline::train_from;
use super::plan::Plan;
use super::select::select_blocks;
use super::target::Target;
use super::{BoxFuture, Granularity, Job, Method, MethodInfo, Outcome, Phase, surgery};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::metrics::count::count;
use crate::model::Model;
use crate::train::Trainer;

pub static INFO: MethodInfo = MethodInfo {
    name: "lottery",
    title: "S4: layer lottery tickets at initialisation",
    source: "Jordao et al., When Layers Play the Lottery, all Tickets Win at Initialization (arXiv 2301.10835)",
    phase: Phase::AtInit,
    granularity: Granularity::Blocks,
    needs_blocks: true,
};

/// One score per removable block from per-weight scores (higher = keep).
pub fn block_scores(
    model: &Model,
    weights: &[LayerScores],
    aggregate: Aggregate,
) -> Vec<(String, f32)> {
    model
        .spec
        .removable_blocks()
        .into_iter()
        .map(|b| {
            let prefix = format!("{}.", b.name);
            let (sum, n) = weights
                .iter()
                .filter(|w| w.layer.starts_with(&prefix))
                .fold((0.0f64, 0usize), |(s, n), w| {
                    (
                        s + w.scores.iter().map(|&v| v as f64).sum::<f64>(),
                        n + w.scores.len(),
                    )
                });
            let score = match aggregate {
                Aggregate::Sum => sum,
                Aggregate::Mean => sum / n.max(1) as f64,
            };
            (b.name, score as f32)
        })
        .collect()
}

async fn score_blocks(job: &Job<'_>, model: &Model) -> Result<Vec<(String, f32)>> {
    let o = &job.options.lottery;
    let sampling = Sampling::new(&job.options, false, job.seed);
    Ok(match o.criterion {
        BlockCriterion::Random => super::random::block_scores(&model.spec, job.seed),
        BlockCriterion::Snip => block_scores(
            model,
            &super::snip::scores(model, job.split, sampling).await?,
            o.aggregate,
        ),
        BlockCriterion::Grasp => {
            let s = super::grasp::scores(model, job.split, sampling, o.grasp_epsilon).await?;
            let importance = block_scores(model, &s, o.aggregate);
            // GraSP removes the highest S first: rank by −S unless flipped.
            let sign = if o.grasp_flip { 1.0 } else { -1.0 };
            importance.into_iter().map(|(b, v)| (b, sign * v)).collect()
        }
    })
}

pub struct LayerLottery;

impl Method for LayerLottery {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    fn run<'a>(&'a self, mut job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let Target::Blocks(p) = job.target else {
                return Err(Error::config(
                    "target",
                    job.target,
                    "the layer lottery removes blocks: use blocks=N",
                ));
            };
            let o = job.options.lottery.clone();
            let theta0 = job.model.clone();
            let (scored, rewound, start_epoch, mut history) = match o.rewind {
                Rewind::Init => (theta0.clone(), theta0, 0, Vec::new()),
                Rewind::Epoch => {
                    if o.rewind_epoch >= job.train.epochs {
                        return Err(Error::config(
                            "lottery.rewind_epoch",
                            o.rewind_epoch,
                            "rewind to an epoch before the end of training",
                        ));
                    }
                    // Train to θᵢ, keep it, train on to θₙ.
                    let mut trainer = Trainer::new(theta0, job.train.clone(), job.seed);
                    let device = job.device.autodiff();
                    let mut theta_i = trainer.model.clone();
                    while !trainer.finished() {
                        if trainer.progress.epoch == o.rewind_epoch {
                            theta_i = trainer.model.clone();
                        }
                        trainer
                            .run_epoch(job.split, job.augment, &device, &mut *job.sink)
                            .await?;
                    }
                    (
                        trainer.model,
                        theta_i,
                        o.rewind_epoch,
                        trainer.progress.history,
                    )
                }
            };
            let scores = score_blocks(&job, &scored).await?;
            let removed = select_blocks(&scores, p)?;
            let plan = Plan {
                keep: Default::default(),
                remove_blocks: removed.clone(),
            };
            let ticket = surgery::cut(&rewound, &plan)?;
            let (dense, cut) = (count(&rewound.spec), count(&ticket.spec));
            job.sink.emit(Event::Phase {
                name: "ticket".into(),
                detail: format!(
                    "removed {} — MACs −{:.1}%, params −{:.1}%",
                    removed.join(", "),
                    100.0 * (1.0 - cut.macs as f64 / dense.macs as f64),
                    100.0 * (1.0 - cut.params as f64 / dense.params as f64)
                ),
            });
            // From θ₀: the full budget; from θᵢ: LR rewinding, the schedule resumes at epoch i.
            let config = job.train.clone();
            let (model, retrain) = train_from(&mut job, ticket, config, None, start_epoch).await?;
            history.extend(retrain);
            let details = serde_json::json!({
                "criterion": o.criterion,
                "aggregate": o.aggregate,
                "rewind": o.rewind,
                "block_scores": scores,
                "removed": removed,
            });
            Ok(Outcome {
                model,
                plan: Some(plan),
                masks: None,
                history,
                details,
            })
        })
    }
}
