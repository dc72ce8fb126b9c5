//! S2 — FlexRel (Chiasserini, Malandrino, Molner, Zhao, "Combining Relevance
//! and Magnitude for Resource-Aware DNN Pruning", arXiv 2405.13088).
//!
//! Each weight gets `s = (1 − δ)·norm(|w|) + δ·norm(R(w))`: training-time
//! information (magnitude) blended with inference-time information (the
//! relevance of the activations the weight connects, [`super::lrp`]). The
//! lowest scores are pruned (unstructured). δ = 0 is magnitude pruning, δ = 1
//! relevance-only pruning. `norm` is min-max over all layers by default, or
//! per layer (`norm_scope`); the paper's normalisation is not public
//! (docs/methods.md).
//!
//! With `accuracy_target` set, FlexRel *chooses* its model the paper's way:
//! it sweeps δ over `sweep` and the pruning factor over [`SWEEP_FACTORS`]
//! (no fine-tuning), measures each on the **validation** split (held out
//! from the training data; the test split is never read here), keeps per δ
//! the highest factor that meets the target, and returns the (δ, factor)
//! whose model needs the fewest bytes to ship — then fine-tunes it as usual.
//! The run's `target` is then not used. `details.best` lists each δ's best
//! factor and bytes, and the bandwidth saved against magnitude-only pruning
//! (δ = 0); `details.selected` is the returned model's.

use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::lrp::Relevance;
use super::masks::{LayerScores, masks_for_sparsities};
use super::method::{CheckOptions, require};
use super::pipeline::{self, Then};
use super::select::Scope;
use super::{
    BoxFuture, Finetune, Granularity, Job, Knob, Method, MethodInfo, OptionsSpec, Outcome, Phase,
    Scores, Scoring,
};
use crate::error::{Error, Result};
use crate::host;
use crate::metrics::bytes::size;
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
    let magnitude = super::magnitude::scores(s.model).await?;
    let relevance_t = super::lrp::weight_relevance(
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
            let target = match (o.accuracy_target, o.accuracy_drop) {
                (Some(target), _) => target,
                (None, Some(drop)) => {
                    // The dense model on the validation split (never the test split).
                    let (_, dense) = evaluate(
                        &job.model.valid(),
                        &job.split.valid,
                        job.split.norm,
                        job.train.eval_batch_size,
                        &job.device.device,
                    )
                    .await?;
                    (dense - drop).max(0.0)
                }
                (None, None) => return pipeline::run(self, job).await,
            };
            let (magnitude, relevance) = components(&job.scoring(), &o).await?;
            let (points, best) = sweep(&job, &magnitude, &relevance, &o, target).await?;
            let chosen = select(&best).ok_or_else(|| {
                Error::config(
                    "flexrel.accuracy_target",
                    target,
                    format!(
                        "no δ in {:?} keeps {:.1}% validation accuracy even at a pruning factor of {}; lower the target",
                        o.sweep,
                        100.0 * target,
                        SWEEP_FACTORS[0]
                    ),
                )
            })?;
            let details = serde_json::json!({
                "target": target,
                "delta": chosen.delta,
                "sweep": points,
                "best": best,
                "selected": chosen,
            });
            let sparsity = chosen.sparsity.expect("selected points meet the target");
            let scores = combine(&magnitude, &relevance, chosen.delta, o.norm_scope);
            let mut job = job;
            job.target = super::Target::Sparsity(sparsity);
            pipeline::weight_level(job, scores, Then::Finetune, details).await
        })
    }
}

/// The (δ, factor) FlexRel returns: the fewest bytes among each δ's best
/// factor (ties: the lower δ, so magnitude wins a draw).
pub fn select(best: &[Best]) -> Option<&Best> {
    best.iter()
        .filter(|b| b.bytes.is_some())
        .min_by(|a, b| a.bytes.cmp(&b.bytes).then(a.delta.total_cmp(&b.delta)))
}

/// Accuracy and size at every (δ, factor), and the best factor per δ.
async fn sweep(
    job: &Job<'_>,
    magnitude: &[LayerScores],
    relevance: &[Vec<f32>],
    o: &FlexRelOptions,
    target: f32,
) -> Result<(Vec<SweepPoint>, Vec<Best>)> {
    let deltas = &o.sweep;
    if job.split.valid.is_empty() {
        return Err(Error::config(
            "data.valid_fraction",
            0,
            "FlexRel's accuracy target is checked on a validation split: hold one out (e.g. valid_fraction = 0.1)",
        ));
    }
    let device = job.device.device.clone();
    let mut points = Vec::new();
    let mut best = Vec::new();
    for &delta in deltas {
        let scores = combine(magnitude, relevance, delta, o.norm_scope);
        let mut best_here: Option<(f32, u64)> = None;
        let all = masks_for_sparsities(
            &scores,
            SWEEP_FACTORS,
            job.options.scope.unwrap_or(super::select::Scope::Global),
        )?;
        for (&sparsity, masks) in SWEEP_FACTORS.iter().zip(all) {
            let model = masks.apply(&job.model).valid();
            let (_, accuracy) = evaluate(
                &model,
                &job.split.valid,
                job.split.norm,
                job.train.eval_batch_size,
                &device,
            )
            .await?;
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
