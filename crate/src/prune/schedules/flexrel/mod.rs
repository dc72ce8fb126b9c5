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

pub mod lrp;

use burn::module::Module;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host;
use crate::metrics::bytes::size;
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, Job, Knob, Method, MethodInfo, OptionsSpec, Outcome, Phase,
    Scores, Scoring,
};
use crate::prune::contract::{CheckOptions, require};
use crate::prune::pipeline::{self, Then};
use crate::prune::pruner::masks::{LayerScores, masks_for_sparsities};
use crate::prune::pruner::select::Scope;
use crate::prune::schedules::flexrel::lrp::Relevance;
use crate::train::evaluate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NormScope {
    /// One min-max over every layer.
    #[default]
    Global,
    /// Each layer min-maxed on its own.
    Layer,
}

/// S2 (Chiasserini et al.).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlexRelOptions {
    /// δ in s = (1 − δ)·norm(|w|) + δ·norm(relevance).
    pub delta: f32,
    pub relevance: Relevance,
    /// Where the min-max normalisation of |w| and R is taken.
    pub norm_scope: NormScope,
    /// ε of the LRP-ε rule (relative to each layer's pre-activation scale).
    pub lrp_epsilon: f32,
    /// Inference samples the relevance is summed over.
    pub samples: usize,
    /// δ values for `prunelab prune --method flexrel --sweep`.
    pub sweep: Vec<f32>,
    /// Accuracy target (0..1) for "the highest pruning factor that meets it".
    pub accuracy_target: Option<f32>,
    /// The target as the dense model's validation accuracy less this share
    /// (0.01: one point), so that it asks the same at any training budget.
    /// One of this and `accuracy_target`.
    pub accuracy_drop: Option<f32>,
    /// Pruning factors swept when choosing (ascending).
    pub factors: Vec<f32>,
    /// The share of the validation split the choice is made on (every
    /// other example at 0.5); the rest checks the chosen model.
    pub select_share: f32,
}

impl CheckOptions for FlexRelOptions {
    fn check(&self) -> Result<()> {
        let share = |v: f32| (0.0..=1.0).contains(&v);
        require(share(self.delta), "flexrel.delta", self.delta, "0 to 1")?;
        require(
            (0.0..=1000.0).contains(&self.lrp_epsilon),
            "flexrel.lrp_epsilon",
            self.lrp_epsilon,
            "0 to 1000",
        )?;
        require(
            (1..=1_000_000).contains(&self.samples),
            "flexrel.samples",
            self.samples,
            "1 to 1000000",
        )?;
        require(
            self.sweep.len() <= 100 && self.sweep.iter().all(|&d| share(d)),
            "flexrel.sweep",
            format!("{:?}", self.sweep),
            "at most 100 values of δ, each 0 to 1",
        )?;
        if let Some(a) = self.accuracy_target {
            require(
                share(a),
                "flexrel.accuracy_target",
                a,
                "an accuracy share 0 to 1",
            )?;
        }
        require(
            !self.factors.is_empty()
                && self.factors.len() <= 100
                && self.factors.iter().all(|&f| f > 0.0 && f < 1.0)
                && self.factors.windows(2).all(|w| w[0] < w[1]),
            "flexrel.factors",
            format!("{:?}", self.factors),
            "1 to 100 ascending factors, each in (0, 1)",
        )?;
        require(
            self.select_share > 0.0 && self.select_share <= 1.0,
            "flexrel.select_share",
            self.select_share,
            "(0, 1]",
        )?;
        if let Some(d) = self.accuracy_drop {
            require(
                share(d),
                "flexrel.accuracy_drop",
                d,
                "an accuracy share 0 to 1",
            )?;
            require(
                self.accuracy_target.is_none(),
                "flexrel.accuracy_drop",
                d,
                "give either accuracy_target or accuracy_drop, not both",
            )?;
        }
        Ok(())
    }
}

impl Default for FlexRelOptions {
    fn default() -> Self {
        FlexRelOptions {
            delta: 0.5,
            relevance: Relevance::LrpEpsilon,
            norm_scope: NormScope::Global,
            lrp_epsilon: 0.01,
            samples: 256,
            sweep: vec![0.0, 0.25, 0.5, 0.75, 1.0],
            accuracy_target: None,
            accuracy_drop: None,
            factors: SWEEP_FACTORS.to_vec(),
            select_share: 0.5,
        }
    }
}

pub static INFO: MethodInfo = MethodInfo {
    name: "flexrel",
    title: "S2: FlexRel (magnitude + relevance)",
    source: "Chiasserini et al., Combining Relevance and Magnitude for Resource-Aware DNN Pruning (arXiv 2405.13088)",
    phase: Phase::AfterTraining,
    granularity: Granularity::Weights,
    needs_blocks: false,
    scope: Some((
        Scope::Global,
        "ours: the paper's ranking scope is not public (UNVERIFIED)",
    )),
    normalize: None,
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 0.0,
        lr_factor: 0.1,
        source: "the paper reports accuracy against the pruning factor without a stated fine-tuning step (UNVERIFIED)",
    }),
    options: Some(OptionsSpec::of::<FlexRelOptions>()),
    knobs: &[
        Knob {
            key: "flexrel.delta",
            source: "ours: the paper tunes δ in [0, 1]",
        },
        Knob {
            key: "flexrel.relevance",
            source: "ours: LRP-ε (the paper's 'activity maximization' rule is UNVERIFIED)",
        },
        Knob {
            key: "flexrel.norm_scope",
            source: "ours: min-max over all layers (UNVERIFIED)",
        },
        Knob {
            key: "flexrel.lrp_epsilon",
            source: "ours",
        },
        Knob {
            key: "flexrel.samples",
            source: "ours",
        },
        Knob {
            key: "flexrel.sweep",
            source: "ours: δ values swept when accuracy_target is set",
        },
        Knob {
            key: "flexrel.accuracy_target",
            source: "the paper's 'highest pruning factor that meets an accuracy target' (on the validation split)",
        },
        Knob {
            key: "flexrel.accuracy_drop",
            source: "ours: the same target relative to the dense model's validation accuracy",
        },
        Knob {
            key: "flexrel.factors",
            source: "ours: steps of 0.1, then 0.05 above 0.8 (the paper's grid is not public)",
        },
        Knob {
            key: "flexrel.select_share",
            source: "ours: choose on half the validation split, check on the other half",
        },
    ],
};

/// `(lo, hi)` of some values.
fn range<'a>(values: impl Iterator<Item = &'a f32>) -> (f32, f32) {
    values.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
        (l.min(v), h.max(v))
    })
}

fn scale(v: f32, (lo, hi): (f32, f32)) -> f32 {
    if hi > lo { (v - lo) / (hi - lo) } else { 0.0 }
}

/// `(1 − δ)·minmax(|w|) + δ·minmax(R)`, min-max taken over all layers
/// (`NormScope::Global`, the default: δ = 0 is then exactly global
/// magnitude pruning) or over each layer on its own.
pub fn combine(
    magnitude: &[LayerScores],
    relevance: &[Vec<f32>],
    delta: f32,
    scope: NormScope,
) -> Vec<LayerScores> {
    let global_m = range(magnitude.iter().flat_map(|m| m.scores.iter()));
    let global_r = range(relevance.iter().flatten());
    magnitude
        .iter()
        .zip(relevance)
        .map(|(m, r)| {
            let (rm, rr) = match scope {
                NormScope::Global => (global_m, global_r),
                NormScope::Layer => (range(m.scores.iter()), range(r.iter())),
            };
            LayerScores {
                scores: m
                    .scores
                    .iter()
                    .zip(r)
                    .map(|(&a, &b)| (1.0 - delta) * scale(a, rm) + delta * scale(b, rr))
                    .collect(),
                ..m.clone()
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub delta: f32,
    pub sparsity: f32,
    /// On the validation split.
    pub valid_accuracy: f32,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Best {
    pub delta: f32,
    /// Highest pruning factor meeting the accuracy target on the validation
    /// split (None: not even the lowest).
    pub sparsity: Option<f32>,
    pub bytes: Option<u64>,
    /// Bytes saved against magnitude-only (δ = 0) at its own best factor.
    pub saving_vs_magnitude: Option<f64>,
}

pub const SWEEP_FACTORS: &[f32] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95];

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

/// The validation split as (the part the choice is made on, the rest):
/// every `1/share`-th example goes to the choice, so both parts cover the
/// split's order (toy data sets are generated class by class).
fn validation_parts(
    valid: &crate::data::Dataset,
    share: f32,
) -> Result<(crate::data::Dataset, Option<crate::data::Dataset>)> {
    if valid.is_empty() {
        return Err(Error::config(
            "data.valid_fraction",
            0,
            "FlexRel's accuracy target is checked on a validation split: hold one out (e.g. valid_fraction = 0.1)",
        ));
    }
    let n = valid.len();
    let k = ((n as f64 * share as f64).round() as usize).clamp(1, n);
    // Evenly spread: example i goes to the choice when ⌊i·k/n⌋ advances.
    let (mut choose, mut rest) = (Vec::new(), Vec::new());
    for i in 0..n {
        if (i + 1) * k / n > i * k / n {
            choose.push(i);
        } else {
            rest.push(i);
        }
    }
    let rest = (!rest.is_empty()).then(|| valid.select(&rest));
    Ok((valid.select(&choose), rest))
}

/// `model`'s accuracy on `data` (eval mode).
async fn accuracy(
    job: &Job<'_>,
    model: &crate::model::Model,
    data: &crate::data::Dataset,
) -> Result<f32> {
    let (_, a) = evaluate(
        &model.valid(),
        data,
        job.split.norm,
        job.train.eval_batch_size,
        &job.device.device,
    )
    .await?;
    Ok(a)
}

/// The grid's resolution around the choice: the factors and δs swept, and
/// the bytes the chosen δ ships one factor step below and above the chosen
/// factor (what the saving can move by from grid coarseness alone).
fn grid(o: &FlexRelOptions, points: &[SweepPoint], chosen: &Best) -> serde_json::Value {
    let at = |f: f32| {
        points
            .iter()
            .find(|p| p.delta == chosen.delta && p.sparsity == f)
            .map(|p| p.bytes)
    };
    let i = chosen
        .sparsity
        .and_then(|s| o.factors.iter().position(|&f| f == s));
    let neighbour = |j: Option<usize>| j.and_then(|j| o.factors.get(j).copied());
    let below = neighbour(i.and_then(|i| i.checked_sub(1)));
    let above = neighbour(i.map(|i| i + 1));
    serde_json::json!({
        "factors": o.factors,
        "deltas": o.sweep,
        "below": below.map(|f| serde_json::json!({ "factor": f, "bytes": at(f) })),
        "above": above.map(|f| serde_json::json!({ "factor": f, "bytes": at(f) })),
    })
}

/// The (δ, factor) FlexRel returns: the fewest bytes among each δ's best
/// factor (ties: the lower δ, so magnitude wins a draw).
pub fn select(best: &[Best]) -> Option<&Best> {
    best.iter()
        .filter(|b| b.bytes.is_some())
        .min_by(|a, b| a.bytes.cmp(&b.bytes).then(a.delta.total_cmp(&b.delta)))
}

/// Accuracy on `choose` (the selection part of the validation split) and
/// size at every (δ, factor), and the best factor per δ.
async fn sweep(
    job: &Job<'_>,
    choose: &crate::data::Dataset,
    magnitude: &[LayerScores],
    relevance: &[Vec<f32>],
    o: &FlexRelOptions,
    target: f32,
) -> Result<(Vec<SweepPoint>, Vec<Best>)> {
    let deltas = &o.sweep;
    let mut points = Vec::new();
    let mut best = Vec::new();
    for &delta in deltas {
        let scores = combine(magnitude, relevance, delta, o.norm_scope);
        let mut best_here: Option<(f32, u64)> = None;
        let all = masks_for_sparsities(
            &scores,
            &o.factors,
            job.options
                .scope
                .unwrap_or(crate::prune::pruner::select::Scope::Global),
        )?;
        for (&sparsity, masks) in o.factors.iter().zip(all) {
            let model = masks.apply(&job.model);
            let accuracy = accuracy(job, &model, choose).await?;
            let bytes = size(&model.spec, Some(&masks)).bytes;
            points.push(SweepPoint {
                delta,
                sparsity,
                valid_accuracy: accuracy,
                bytes,
            });
            if accuracy >= target {
                best_here = Some((sparsity, bytes));
            }
        }
        best.push(Best {
            delta,
            sparsity: best_here.map(|b| b.0),
            bytes: best_here.map(|b| b.1),
            saving_vs_magnitude: None,
        });
    }
    let reference = best.iter().find(|b| b.delta == 0.0).and_then(|b| b.bytes);
    for b in best.iter_mut() {
        if let (Some(r), Some(bytes)) = (reference, b.bytes) {
            b.saving_vs_magnitude = Some(1.0 - bytes as f64 / r as f64);
        }
    }
    Ok((points, best))
}
