//! Random pruning: the floor every other criterion must beat. Scores are
//! uniform draws from the run's seed, for units, blocks or weights.

use rand::Rng;

use serde::{Deserialize, Serialize};

use super::Criterion;
use crate::base::error::Result;
use crate::base::rng;
use crate::model::groups::UnitGroup;
use crate::model::{Model, ModelSpec};
use crate::prune::contract::CheckOptions;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, Knob, MethodInfo, OptionsSpec, Phase, Scores, Scoring,
};
use crate::prune::options::PruneOptions;
use crate::prune::pruner::masks::LayerScores;
use crate::prune::pruner::select::{Scope, UnitScores};

/// One uniform score per unit of each group, by group name.
pub fn unit_scores(groups: &[UnitGroup], seed: u64) -> UnitScores {
    let mut r = rng::stream(seed, "random-units", 0);
    groups
        .iter()
        .map(|g| {
            (
                g.name.clone(),
                (0..g.size).map(|_| r.random::<f32>()).collect(),
            )
        })
        .collect()
}

pub fn block_scores(spec: &ModelSpec, seed: u64) -> Vec<(String, f32)> {
    let mut r = rng::stream(seed, "random-blocks", 0);
    spec.removable_blocks()
        .into_iter()
        .map(|b| (b.name, r.random::<f32>()))
        .collect()
}

pub fn weight_scores(model: &Model, seed: u64) -> Vec<LayerScores> {
    let mut r = rng::stream(seed, "random-weights", 0);
    model
        .prunable_weights()
        .into_iter()
        .map(|w| {
            let shape = w.param.shape();
            let n = shape.iter().product();
            LayerScores {
                layer: w.layer,
                path: w.path,
                rows: w.param.rows(),
                shape,
                scores: (0..n).map(|_| r.random::<f32>()).collect(),
            }
        })
        .collect()
}

/// What `random` removes: `channels`, `weights` or `blocks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RandomUnit {
    #[default]
    Channels,
    Weights,
    Blocks,
}

/// The random baseline's own options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RandomOptions {
    pub unit: RandomUnit,
}

impl CheckOptions for RandomOptions {}

pub static INFO: MethodInfo = MethodInfo {
    name: "random",
    title: "Random pruning (channels, weights or blocks)",
    source: "the floor every criterion must beat",
    summary: "random channels (`[prune.random] unit = \"channels\"`), weights or blocks",
    phase: Phase::AfterTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((
        Scope::PerLayer,
        "ours: the same share from every layer, like l1",
    )),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 0.25,
        lr_factor: 0.01,
        source: "as l1, the structured baseline it is the floor of",
    }),
    options: Some(OptionsSpec::of::<RandomOptions>()),
    knobs: &[Knob {
        key: "random.unit",
        source: "ours: channels (weights and blocks are the floors of weight-level methods and S4)",
    }],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move {
        let o: RandomOptions = s.options.of(INFO.name)?;
        Ok(match o.unit {
            RandomUnit::Channels => Scores::Units(unit_scores(&s.groups(), s.seed)),
            RandomUnit::Weights => Scores::Weights(weight_scores(s.model, s.seed)),
            RandomUnit::Blocks => Scores::Blocks(block_scores(&s.model.spec, s.seed)),
        })
    })
}

/// What a run removes: random's `unit` option decides.
fn removes(options: &PruneOptions) -> Result<Granularity> {
    let o: RandomOptions = options.of(INFO.name)?;
    Ok(match o.unit {
        RandomUnit::Channels => Granularity::Channels,
        RandomUnit::Weights => Granularity::Weights,
        RandomUnit::Blocks => Granularity::Blocks,
    })
}

pub static RANDOM: Criterion = Criterion {
    removes: Some(removes),
    ..Criterion::new(&INFO, score)
};
