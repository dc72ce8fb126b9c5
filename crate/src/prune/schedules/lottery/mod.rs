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
//! removes first); `grasp_flip` ranks by S instead.
//!
//! Candidates (`candidates`): the paper's set by default — blocks with an
//! identity shortcut, except the two beside each down-sampling block (the
//! last block before it and the first after it, §3 of the paper); `identity`
//! admits every identity-shortcut block.
//!
//! The winning-ticket test (Eq. 1), `Acc(F′) + ξ ≥ Acc(F)`, is judged on the
//! reported accuracies (`verdict`, with `xi`).

pub mod grasp;
pub mod options;

pub use options::{Aggregate, BlockCriterion, Candidates, INFO, LotteryOptions, Rewind};

use crate::base::error::{Error, Result};
use crate::base::events::Event;
use crate::metrics::count::count;
use crate::model::groups::BlockRef;
use crate::model::spec::ModelSpec;
use crate::prune::contract::{BoxFuture, Job, Method, MethodInfo, Outcome, Scores, Scoring};
use crate::prune::criteria::capture::Sampling;
use crate::prune::options::PruneOptions;
use crate::prune::pipeline::train_from;
use crate::prune::pruner::masks::LayerScores;
use crate::prune::pruner::plan::Plan;
use crate::prune::pruner::select::select_blocks;
use crate::prune::pruner::surgery;
use crate::prune::pruner::target::Target;
use crate::train::Trainer;

/// The blocks the lottery may remove, in forward order.
pub fn candidates(spec: &ModelSpec, which: Candidates) -> Vec<BlockRef> {
    let removable = spec.removable_blocks();
    if which == Candidates::Identity {
        return removable;
    }
    // Every block in forward order, and whether it is removable (shape kept).
    let all: Vec<(String, bool)> = match spec {
        ModelSpec::Resnet(r) => r
            .blocks()
            .map(|(s, b)| {
                let name = crate::model::spec::block_name(s, b.index);
                let ok = removable.iter().any(|x| x.name == name);
                (name, ok)
            })
            .collect(),
        _ => return removable,
    };
    removable
        .into_iter()
        .filter(|b| {
            let at = all.iter().position(|(n, _)| *n == b.name).expect("listed");
            let beside_transition =
                |i: Option<usize>| i.and_then(|i| all.get(i)).is_some_and(|(_, ok)| !ok);
            !beside_transition(at.checked_sub(1)) && !beside_transition(Some(at + 1))
        })
        .collect()
}

/// ResNet-32's candidates under `which` (for messages: the paper's smallest
/// network, where a block criterion has a choice to make).
fn resnet32_candidates(which: Candidates) -> usize {
    ModelSpec::named("resnet32", &Default::default())
        .map(|spec| candidates(&spec, which).len())
        .unwrap_or(0)
}

/// One score per candidate block from per-weight scores (higher = keep).
pub fn block_scores(
    blocks: &[BlockRef],
    weights: &[LayerScores],
    aggregate: Aggregate,
) -> Vec<(String, f32)> {
    blocks
        .iter()
        .cloned()
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

/// Block importance (higher = keep) from GraSP's per-weight `S = −w⊙Hg`:
/// GraSP removes the highest S first, so a block ranks by `−ΣS` — unless
/// `flip`, which ranks by `ΣS`.
pub fn grasp_importance(block_s: Vec<(String, f32)>, flip: bool) -> Vec<(String, f32)> {
    let sign = if flip { 1.0 } else { -1.0 };
    block_s.into_iter().map(|(b, v)| (b, sign * v)).collect()
}

/// Block scores of `s.model` (higher = keep), over the candidates only.
async fn score_blocks(s: &Scoring<'_>, o: &LotteryOptions) -> Result<Vec<(String, f32)>> {
    let model = s.model;
    let sampling = Sampling::new(s.options, &INFO, false, s.seed);
    let blocks = candidates(&model.spec, o.candidates);
    Ok(match o.criterion {
        BlockCriterion::Random => {
            let all = crate::prune::criteria::random::block_scores(&model.spec, s.seed);
            all.into_iter()
                .filter(|(b, _)| blocks.iter().any(|c| c.name == *b))
                .collect()
        }
        BlockCriterion::Snip => block_scores(
            &blocks,
            &crate::prune::criteria::snip::scores(model, s.split, sampling).await?,
            o.aggregate,
        ),
        BlockCriterion::Grasp => {
            let w = crate::prune::schedules::lottery::grasp::scores(
                model,
                s.split,
                sampling,
                o.grasp_epsilon,
            )
            .await?;
            grasp_importance(block_scores(&blocks, &w, o.aggregate), o.grasp_flip)
        }
    })
}

pub struct Lottery;

impl Method for Lottery {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    /// Algorithm 2: the ticket trained from θ₀ for the whole budget;
    /// Algorithm 1: the dense schedule, then the ticket retrained from θᵢ.
    fn stages(
        &self,
        options: &PruneOptions,
        train: &crate::train::TrainConfig,
    ) -> Vec<crate::prune::contract::Stage> {
        let o: LotteryOptions = options.of(INFO.name).unwrap_or_default();
        match o.rewind {
            Rewind::Init => vec![crate::prune::contract::Stage::of("train from θ₀", train)],
            Rewind::Epoch => vec![
                crate::prune::contract::Stage::of("train", train),
                crate::prune::contract::Stage::of(
                    &format!("retrain from epoch {}", o.rewind_epoch),
                    &crate::train::TrainConfig {
                        epochs: train.epochs.saturating_sub(o.rewind_epoch),
                        ..train.clone()
                    },
                ),
            ],
        }
    }

    fn score<'a>(&'a self, s: Scoring<'a>) -> BoxFuture<'a, Result<Scores>> {
        Box::pin(async move {
            let o: LotteryOptions = s.options.of(INFO.name)?;
            Ok(Scores::Blocks(score_blocks(&s, &o).await?))
        })
    }

    /// `blocks=p` with p at least the number of candidates: every criterion
    /// (GraSP, SNIP, random) then removes the same blocks, and the row
    /// measures no criterion (ResNet-20 has 3 candidates under the paper's
    /// rule; `blocks=3` made GraSP, SNIP and random identical).
    fn check_target(
        &self,
        options: &PruneOptions,
        spec: &ModelSpec,
        target: &Target,
    ) -> Result<()> {
        let Target::Blocks(p) = *target else {
            return Ok(());
        };
        let o: LotteryOptions = options.of(INFO.name)?;
        let n = candidates(spec, o.candidates).len();
        let rule = match o.candidates {
            Candidates::Paper => "under the paper's rule (no block beside a down-sampling block)",
            Candidates::Identity => "(every identity-shortcut block)",
        };
        if p > n {
            return Err(Error::config(
                "target",
                target,
                format!(
                    "{} has only {n} candidate blocks {rule}; lower p{}",
                    spec.name(),
                    if o.candidates == Candidates::Paper {
                        " or set lottery.candidates = \"identity\""
                    } else {
                        ""
                    }
                ),
            ));
        }
        if p == n && n > 0 {
            return Err(Error::config(
                "target",
                target,
                format!(
                    "{} has exactly {n} candidate blocks {rule}, so blocks={p} removes all of them \
                     whatever the criterion: GraSP, SNIP and random would give the same ticket. \
                     Remove fewer (blocks=1 to {}), use a deeper ResNet (resnet32 has {}), or \
                     admit more candidates (lottery.candidates = \"identity\")",
                    spec.name(),
                    n - 1,
                    resnet32_candidates(o.candidates),
                ),
            ));
        }
        Ok(())
    }

    /// Eq. 1: the ticket wins when `Acc(F′) + ξ ≥ Acc(F)`.
    fn verdict(
        &self,
        options: &PruneOptions,
        accuracy: f32,
        dense_accuracy: f32,
    ) -> Option<serde_json::Value> {
        let xi = options.of::<LotteryOptions>(INFO.name).ok()?.xi;
        Some(serde_json::json!({
            "winning_ticket": accuracy + xi >= dense_accuracy,
            "xi": xi,
        }))
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
            let o: LotteryOptions = job.options.of(INFO.name)?;
            let theta0 = job.model.deep_fork();
            let (scored, rewound, start_epoch, mut history) = match o.rewind {
                Rewind::Init => (theta0.deep_fork(), theta0, 0, Vec::new()),
                Rewind::Epoch => {
                    if o.rewind_epoch >= job.train.epochs {
                        return Err(Error::config(
                            "lottery.rewind_epoch",
                            o.rewind_epoch,
                            "rewind to an epoch before the end of training",
                        ));
                    }
                    // One dense schedule: train to θᵢ, keep a fork of it, train on to θₙ.
                    let mut trainer = Trainer::new(theta0, job.train.clone(), job.seed);
                    let device = job.device.autodiff();
                    let mut theta_i = trainer.model.deep_fork();
                    while !trainer.finished() {
                        if trainer.progress.epoch == o.rewind_epoch {
                            theta_i = trainer.model.deep_fork();
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
            let scoring = Scoring {
                model: &scored,
                ..job.scoring()
            };
            let scores = score_blocks(&scoring, &o).await?;
            if p > scores.len() && o.candidates == Candidates::Paper {
                return Err(Error::config(
                    "target",
                    job.target,
                    format!(
                        "the model has only {} candidate blocks (the paper excludes the blocks beside each down-sampling block; lottery.candidates = \"identity\" admits them)",
                        scores.len()
                    ),
                ));
            }
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
                "candidates": candidates(&scored.spec, o.candidates).iter().map(|b| b.name.clone()).collect::<Vec<_>>(),
                "xi": o.xi,
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
