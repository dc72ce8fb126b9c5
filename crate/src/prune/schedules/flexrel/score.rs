//! FlexRel's score: magnitude and relevance, each min-max normalised, blended
//! by δ.

use crate::prune::pruner::masks::LayerScores;

use super::options::NormScope;

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
