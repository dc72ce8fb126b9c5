//! FlexRel's accuracy-target choice: sweep δ × pruning factor without
//! fine-tuning, choose on one part of the validation split, report the
//! choice on the other (the test split is read only to report).

use burn::module::Module;
use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::metrics::bytes::size;
use crate::prune::contract::Job;
use crate::prune::pruner::masks::{LayerScores, masks_for_sparsities};
use crate::train::evaluate;

use super::options::FlexRelOptions;
use super::score::combine;

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

/// The validation split as (the part the choice is made on, the rest):
/// every `1/share`-th example goes to the choice, so both parts cover the
/// split's order (toy data sets are generated class by class).
pub(super) fn validation_parts(
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
pub(super) async fn accuracy(
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
pub(super) fn grid(o: &FlexRelOptions, points: &[SweepPoint], chosen: &Best) -> serde_json::Value {
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
pub(super) async fn sweep(
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
