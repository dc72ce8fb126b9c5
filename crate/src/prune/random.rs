//! Random pruning: the floor every other criterion must beat. Scores are
//! uniform draws from the run's seed, for units, blocks or weights.

use rand::Rng;

use super::masks::LayerScores;
use super::options::RandomUnit;
use super::pipeline::{self, Then};
use super::plan::Plan;
use super::select;
use super::select::Scope;
use super::select::UnitScores;
use super::surgery;
use super::target::Target;
use super::{BoxFuture, Finetune, Granularity, Job, Knob, Method, MethodInfo, Outcome, Phase};
use crate::error::{Error, Result};
use crate::model::{Model, ModelSpec};
use crate::rng;

pub fn unit_scores(spec: &ModelSpec, seed: u64) -> UnitScores {
    let mut r = rng::stream(seed, "random-units", 0);
    spec.unit_groups()
        .into_iter()
        .map(|g| (g.name, (0..g.size).map(|_| r.random::<f32>()).collect()))
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

pub static INFO: MethodInfo = MethodInfo {
    name: "random",
    title: "Random pruning (channels, weights or blocks)",
    source: "the floor every criterion must beat",
    phase: Phase::AfterTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((
        Scope::PerLayer,
        "ours: the same share from every layer, like l1",
    )),
    score_batches: None,
    finetune: Some(Finetune {
        share: 0.25,
        lr_factor: 0.01,
        source: "as l1, the structured baseline it is the floor of",
    }),
    knobs: &[Knob {
        key: "unit",
        source: "ours: channels",
    }],
};

pub struct Random;

impl Method for Random {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }
    fn run<'a>(&'a self, mut job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let seed = job.seed;
            match job.options.unit {
                RandomUnit::Channels => {
                    let scores = unit_scores(&job.model.spec, seed);
                    let options = pipeline::select_options(&job);
                    pipeline::structured(
                        job,
                        scores,
                        options,
                        Then::Finetune,
                        serde_json::Value::Null,
                    )
                    .await
                }
                RandomUnit::Weights => {
                    let scores = weight_scores(&job.model, seed);
                    pipeline::weight_level(job, scores, Then::Finetune, serde_json::Value::Null)
                        .await
                }
                RandomUnit::Blocks => {
                    let Target::Blocks(n) = job.target else {
                        return Err(Error::config(
                            "target",
                            job.target,
                            "random blocks need blocks=N",
                        ));
                    };
                    let plan = Plan {
                        keep: Default::default(),
                        remove_blocks: select::select_blocks(
                            &block_scores(&job.model.spec, seed),
                            n,
                        )?,
                    };
                    let pruned = surgery::cut(&job.model, &plan)?;
                    let config = pipeline::finetune_config(&job);
                    let (model, history) =
                        pipeline::train_for(&mut job, pruned, config, None).await?;
                    Ok(Outcome {
                        model,
                        plan: Some(plan),
                        masks: None,
                        history,
                        details: serde_json::Value::Null,
                    })
                }
            }
        })
    }
}
