//! From scores to a pruned network: the one step the pipeline (every run)
//! and the lab's slider share, so the page prunes exactly as the CLI does.
//! Unit scores are ranked into a [`Plan`] and cut physically, weight scores
//! become masks on a fork (the caller's optimizer holds their zeros), block
//! scores remove the lowest blocks.

use crate::base::error::{Error, Result};
use crate::metrics::count::{count, prunable_weights};
use crate::model::masks::WeightMasks;
use crate::model::{Model, ModelSpec};
use crate::prune::contract::Scores;
use crate::prune::pruner::masks::{LayerScores, masks_from_scores};
use crate::prune::pruner::plan::Plan;
use crate::prune::pruner::select::{Scope, SelectOptions, UnitScores, select_blocks, select_units};
use crate::prune::pruner::surgery::cut;
use crate::prune::pruner::target::Target;

/// A pruned network and what made it: a plan (cut) or masks (zeroed weights).
pub struct Applied {
    pub plan: Option<Plan>,
    pub masks: Option<WeightMasks>,
    pub model: Model,
}

/// `dense` pruned by `scores` to `target`, ranked as `select` says.
pub fn apply(
    dense: &Model,
    scores: &Scores,
    target: &Target,
    select: &SelectOptions,
) -> Result<Applied> {
    match scores {
        Scores::Units(s) => Ok(Applied::cut(cut_units(dense, s, target, select)?)),
        Scores::Weights(s) => {
            let (masks, model) = mask_weights(dense, s, target, select.scope)?;
            Ok(Applied {
                plan: None,
                masks: Some(masks),
                model,
            })
        }
        Scores::Blocks(b) => {
            let Target::Blocks(n) = *target else {
                return Err(Error::config(
                    "target",
                    target,
                    "block scores remove residual blocks: use blocks=N",
                ));
            };
            Ok(Applied::cut(remove_blocks(dense, b, n)?))
        }
    }
}

impl Applied {
    fn cut((plan, model): (Plan, Model)) -> Self {
        Applied {
            plan: Some(plan),
            masks: None,
            model,
        }
    }
}

/// The plan `select_units` makes for `target`, and `dense` cut to it.
pub fn cut_units(
    dense: &Model,
    scores: &UnitScores,
    target: &Target,
    select: &SelectOptions,
) -> Result<(Plan, Model)> {
    cut_to(dense, select_units(&dense.spec, scores, target, select)?)
}

/// The plan removing the `n` lowest-scoring blocks, and `dense` without them.
pub fn remove_blocks(dense: &Model, scores: &[(String, f32)], n: usize) -> Result<(Plan, Model)> {
    let plan = Plan {
        keep: Default::default(),
        remove_blocks: select_blocks(scores, n)?,
    };
    cut_to(dense, plan)
}

/// `plan`, and `dense` cut to it.
pub fn cut_to(dense: &Model, plan: Plan) -> Result<(Plan, Model)> {
    let model = cut(dense, &plan)?;
    Ok((plan, model))
}

/// Masks for the weight sparsity `target` asks for, and a fork of `dense`
/// with the masked weights zeroed.
pub fn mask_weights(
    dense: &Model,
    scores: &[LayerScores],
    target: &Target,
    scope: Scope,
) -> Result<(WeightMasks, Model)> {
    let sparsity = weight_sparsity(target, &dense.spec)?;
    let masks = masks_from_scores(scores, sparsity, scope)?;
    let model = masks.apply(dense);
    Ok((masks, model))
}

/// The weight sparsity a target asks for.
pub fn weight_sparsity(target: &Target, spec: &ModelSpec) -> Result<f32> {
    match *target {
        Target::Sparsity(s) => Ok(s),
        Target::Params(p) => {
            let total = count(spec).params as f64;
            let prunable = prunable_weights(spec) as f64;
            let s = p as f64 * total / prunable;
            if s >= 1.0 {
                return Err(Error::config(
                    "target",
                    target,
                    "more than all prunable weights; lower it",
                ));
            }
            Ok(s as f32)
        }
        _ => Err(Error::config(
            "target",
            target,
            "weight-level methods zero weights and do not change the dense MACs; use sparsity=F or params=F",
        )),
    }
}
