//! S2 — FlexRel (Chiasserini, Malandrino, Molner, Zhao, "Combining Relevance
//! and Magnitude for Resource-Aware DNN Pruning", arXiv 2405.13088).
//!
//! Each weight gets `s = (1 − δ)·norm(|w|) + δ·norm(R(w))`: training-time
//! information (magnitude) blended with inference-time information (the
//! relevance of the activations the weight connects, [`lrp`]). The
//! lowest scores are pruned (unstructured). δ = 0 is magnitude pruning, δ = 1
//! relevance-only pruning. `norm` is min-max over all layers by default, or
//! per layer (`norm_scope`); the paper's normalisation is not public
//! (docs/methods.md).
//!
//! With `accuracy_target` set, FlexRel *chooses* its model the paper's way:
//! it sweeps δ over `sweep` and the pruning factor over `factors` (no
//! fine-tuning), measures each on the **selection** part of the validation
//! split (every other validation example, `select_share` of them; the test
//! split is never read here), keeps per δ the highest factor that meets the
//! target, and returns the (δ, factor) whose model needs the fewest bytes to
//! ship — then fine-tunes it as usual. The run's `target` is then not used.
//! The rest of the validation split — never seen by the choice — measures
//! the chosen model again (`details.selected.holdout_accuracy`): a choice
//! scored on the data it was made on flatters itself. `details.best` lists
//! each δ's best factor and bytes and the bytes saved against magnitude-only
//! (δ = 0) *on the selection data*; the honest saving compares the test-set
//! rows of a FlexRel run and a δ = 0 run (`reproduce s2` does, per seed).
//! `details.grid` states the grid's resolution: the bytes one factor step
//! either side of the chosen one would ship.

pub mod choose;
pub mod lrp;
pub mod options;
pub mod score;

pub use options::{FlexRelOptions, INFO, NormScope, SWEEP_FACTORS};
pub use score::combine;

use crate::base::error::{Error, Result};
use crate::base::host;
use crate::prune::contract::{BoxFuture, Job, Method, MethodInfo, Outcome, Scores, Scoring};
use crate::prune::pipeline::{self, Then};
use crate::prune::pruner::masks::{LayerScores, masks_for_sparsities};

pub use choose::{Best, SweepPoint, select};
use choose::{accuracy, grid, sweep, validation_parts};

pub struct FlexRel;

/// `|w|` and the relevance of every weight.
async fn components(
    s: &Scoring<'_>,
    o: &FlexRelOptions,
) -> Result<(Vec<LayerScores>, Vec<Vec<f32>>)> {
    let magnitude = crate::prune::criteria::magnitude::scores(s.model).await?;
    let relevance_t = crate::prune::schedules::flexrel::lrp::weight_relevance(
        s.model,
        s.split,
        s.device,
        o.samples,
        s.options.score_batch_size,
        o.relevance,
        o.lrp_epsilon,
    )?;
    let mut relevance = Vec::new();
    for t in relevance_t {
        relevance.push(host::floats(t).await?);
    }
    Ok((magnitude, relevance))
}

impl Method for FlexRel {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    /// Fine-tuning, as every after-training criterion (with or without the
    /// choice of δ and factor before it).
    fn stages(
        &self,
        options: &crate::prune::options::PruneOptions,
        train: &crate::train::TrainConfig,
    ) -> Vec<crate::prune::contract::Stage> {
        crate::prune::recipe::default_stages(&INFO, options, train)
    }

    fn score<'a>(&'a self, s: Scoring<'a>) -> BoxFuture<'a, Result<Scores>> {
        Box::pin(async move {
            let o: FlexRelOptions = s.options.of(INFO.name)?;
            let (magnitude, relevance) = components(&s, &o).await?;
            Ok(Scores::Weights(combine(
                &magnitude,
                &relevance,
                o.delta,
                o.norm_scope,
            )))
        })
    }

    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let o: FlexRelOptions = job.options.of(INFO.name)?;
            if o.accuracy_target.is_none() && o.accuracy_drop.is_none() {
                return pipeline::run(self, job).await;
            }
            let (choose, holdout) = validation_parts(&job.split.valid, o.select_share)?;
            let target = match (o.accuracy_target, o.accuracy_drop) {
                (Some(target), _) => target,
                (None, Some(drop)) => {
                    // The dense model on the selection data (never the test split).
                    let dense = accuracy(&job, &job.model, &choose).await?;
                    (dense - drop).max(0.0)
                }
                (None, None) => unreachable!("handled above"),
            };
            let (magnitude, relevance) = components(&job.scoring(), &o).await?;
            let (points, best) = sweep(&job, &choose, &magnitude, &relevance, &o, target).await?;
            let chosen = select(&best).ok_or_else(|| {
                Error::config(
                    "flexrel.accuracy_target",
                    target,
                    format!(
                        "no δ in {:?} keeps {:.1}% validation accuracy even at a pruning factor of {}; lower the target",
                        o.sweep,
                        100.0 * target,
                        o.factors[0]
                    ),
                )
            })?;
            let sparsity = chosen.sparsity.expect("selected points meet the target");
            let scores = combine(&magnitude, &relevance, chosen.delta, o.norm_scope);
            let scope = job
                .options
                .scope
                .unwrap_or(crate::prune::pruner::select::Scope::Global);
            let masks = masks_for_sparsities(&scores, &[sparsity], scope)?.remove(0);
            let holdout_accuracy = match &holdout {
                Some(h) => Some(accuracy(&job, &masks.apply(&job.model), h).await?),
                None => None,
            };
            let mut selected = serde_json::to_value(chosen).expect("plain data");
            selected["holdout_accuracy"] = serde_json::json!(holdout_accuracy);
            let details = serde_json::json!({
                "target": target,
                "delta": chosen.delta,
                "sweep": points,
                "best": best,
                "selected": selected,
                "grid": grid(&o, &points, chosen),
                "select_examples": choose.len(),
                "holdout_examples": holdout.as_ref().map_or(0, |h| h.len()),
            });
            let mut job = job;
            job.target = crate::prune::pruner::target::Target::Sparsity(sparsity);
            pipeline::weight_level(job, scores, Then::Finetune, details).await
        })
    }
}
