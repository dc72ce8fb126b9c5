//! The pruner: from unit scores (higher = more important) and a target to a
//! [`Plan`]. Criteria never decide how much goes where; this does, the same
//! way for every criterion, so methods differ only in what they measure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::target::Target;
use crate::error::{Error, Result};
use crate::metrics::count::count;
use crate::model::ModelSpec;

/// Slack when comparing achieved and wanted shares (f32 targets seen as f64).
const TOLERANCE: f64 = 1e-6;

/// Group name → one score per unit.
pub type UnitScores = BTreeMap<String, Vec<f32>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// One ranking over every group: layers lose different shares.
    #[default]
    Global,
    /// The same share from every group.
    PerLayer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// Raw scores (comparable across layers only if the criterion makes them so).
    #[default]
    None,
    /// Divide each group's scores by their L1 norm (Yeom et al.'s per-layer normalisation).
    L1,
    /// Divide each group's scores by their maximum.
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SelectOptions {
    pub scope: Scope,
    pub normalize: Normalize,
    /// Units every group keeps at least.
    pub min_keep: usize,
    /// Remove this share of all units per round and renormalise the survivors
    /// between rounds (Yeom et al.'s iterative ranking); `None` = one shot.
    pub step: Option<f32>,
}

impl Default for SelectOptions {
    fn default() -> Self {
        SelectOptions {
            scope: Scope::Global,
            normalize: Normalize::None,
            min_keep: 1,
            step: None,
        }
    }
}

fn normalized(scores: &[f32], how: Normalize) -> Vec<f32> {
    let denom = match how {
        Normalize::None => 1.0,
        Normalize::L1 => scores.iter().map(|s| s.abs()).sum::<f32>(),
        Normalize::Max => scores.iter().fold(0.0f32, |m, s| m.max(s.abs())),
    };
    let denom = if denom > 0.0 && denom.is_finite() {
        denom
    } else {
        1.0
    };
    scores.iter().map(|s| s / denom).collect()
}

/// The share of MACs or params a plan removes from `spec`, or the share of units.
fn reduction(spec: &ModelSpec, plan: &Plan, target: &Target) -> f64 {
    let dense = count(spec);
    let cut = count(&plan.apply_to_spec(spec));
    match target {
        Target::Macs(_) => 1.0 - cut.macs as f64 / dense.macs as f64,
        Target::Params(_) => 1.0 - cut.params as f64 / dense.params as f64,
        _ => {
            let total: usize = spec.unit_groups().iter().map(|g| g.size).sum();
            let kept: usize = spec
                .unit_groups()
                .iter()
                .map(|g| plan.keep.get(&g.name).map_or(g.size, Vec::len))
                .sum();
            1.0 - kept as f64 / total as f64
        }
    }
}

fn goal(target: &Target) -> Result<f64> {
    match *target {
        Target::Sparsity(v) | Target::Macs(v) | Target::Params(v) => Ok(v as f64),
        Target::Blocks(_) => Err(Error::config(
            "target",
            target,
            "blocks=N is for block-removal methods (layer-lottery, random with --unit blocks)",
        )),
    }
}

/// Units in removal order (lowest score first): `(group, index)`.
fn ranking(
    spec: &ModelSpec,
    scores: &UnitScores,
    keep: &BTreeMap<String, Vec<usize>>,
    how: Normalize,
) -> Result<Vec<(String, usize)>> {
    let mut all = Vec::new();
    for group in spec.unit_groups() {
        let s = scores.get(&group.name).ok_or_else(|| {
            Error::config(
                "scores",
                &group.name,
                "the criterion gave no scores for this group",
            )
        })?;
        if s.len() != group.size {
            return Err(Error::config(
                "scores",
                &group.name,
                format!("{} scores for {} units", s.len(), group.size),
            ));
        }
        let alive: Vec<usize> = keep
            .get(&group.name)
            .cloned()
            .unwrap_or_else(|| (0..group.size).collect());
        let alive_scores: Vec<f32> = alive.iter().map(|&i| s[i]).collect();
        for (&i, v) in alive.iter().zip(normalized(&alive_scores, how)) {
            all.push((v, group.name.clone(), i));
        }
    }
    // Ties break by name and index, so rankings are deterministic.
    all.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    Ok(all.into_iter().map(|(_, g, i)| (g, i)).collect())
}

/// The plan that removes the first `n` units of `order` (skipping units whose
/// group is down to `min_keep`), on top of `base`.
fn remove_prefix(
    spec: &ModelSpec,
    base: &Plan,
    order: &[(String, usize)],
    n: usize,
    min_keep: usize,
) -> Plan {
    let mut keep: BTreeMap<String, Vec<usize>> = spec
        .unit_groups()
        .into_iter()
        .map(|g| {
            let kept = base
                .keep
                .get(&g.name)
                .cloned()
                .unwrap_or_else(|| (0..g.size).collect());
            (g.name, kept)
        })
        .collect();
    let mut removed = 0;
    for (group, index) in order {
        if removed == n {
            break;
        }
        let kept = keep.get_mut(group).expect("ranked groups exist");
        if kept.len() > min_keep {
            kept.retain(|i| i != index);
            removed += 1;
        }
    }
    Plan {
        keep,
        remove_blocks: base.remove_blocks.clone(),
    }
}

/// Removes the lowest-scoring units until `target` is met.
pub fn select_units(
    spec: &ModelSpec,
    scores: &UnitScores,
    target: &Target,
    options: &SelectOptions,
) -> Result<Plan> {
    let want = goal(target)?;
    let mut plan = Plan::default();
    match (options.scope, options.step) {
        (Scope::PerLayer, _) => per_layer(spec, scores, target, want, options),
        (Scope::Global, None) => global_round(spec, scores, target, want, &plan, options),
        (Scope::Global, Some(step)) => {
            if !(step > 0.0 && step < 1.0) {
                return Err(Error::config(
                    "step",
                    step,
                    "use a share of units per round in (0, 1)",
                ));
            }
            // Round r aims at min(r·step, want) of the *target measure*; each
            // round re-normalises the surviving scores.
            let mut aim = 0.0;
            while reduction(spec, &plan, target) + TOLERANCE < want {
                aim = (aim + step as f64).min(want);
                plan = global_round(spec, scores, target, aim, &plan, options)?;
            }
            Ok(plan)
        }
    }
}

fn global_round(
    spec: &ModelSpec,
    scores: &UnitScores,
    target: &Target,
    want: f64,
    base: &Plan,
    options: &SelectOptions,
) -> Result<Plan> {
    let order = ranking(spec, scores, &base.keep, options.normalize)?;
    // The measure grows with the prefix length: find the shortest prefix that meets it.
    let met = |n: usize| {
        reduction(
            spec,
            &remove_prefix(spec, base, &order, n, options.min_keep),
            target,
        ) + TOLERANCE
            >= want
    };
    if !met(order.len()) {
        let best = reduction(
            spec,
            &remove_prefix(spec, base, &order, order.len(), options.min_keep),
            target,
        );
        return Err(unreachable_target(target, best));
    }
    let (mut lo, mut hi) = (0, order.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if met(mid) { hi = mid } else { lo = mid + 1 }
    }
    Ok(remove_prefix(spec, base, &order, lo, options.min_keep))
}

fn unreachable_target(target: &Target, best: f64) -> Error {
    Error::config(
        "target",
        target,
        format!(
            "unreachable: removing every prunable unit but {} per layer removes only {:.1}%; lower the target",
            1,
            100.0 * best
        ),
    )
}

/// The same share `r` from every group; `r` found by bisection for MACs and
/// params targets.
fn per_layer(
    spec: &ModelSpec,
    scores: &UnitScores,
    target: &Target,
    want: f64,
    options: &SelectOptions,
) -> Result<Plan> {
    let plan_at = |r: f64| -> Result<Plan> {
        let mut keep = BTreeMap::new();
        for group in spec.unit_groups() {
            let s = scores.get(&group.name).ok_or_else(|| {
                Error::config(
                    "scores",
                    &group.name,
                    "the criterion gave no scores for this group",
                )
            })?;
            let n_remove = ((r * group.size as f64).round() as usize)
                .min(group.size - options.min_keep.min(group.size));
            let kept = keep_highest(s, n_remove);
            keep.insert(group.name, kept);
        }
        Ok(Plan {
            keep,
            remove_blocks: vec![],
        })
    };
    if matches!(target, Target::Sparsity(_)) {
        return plan_at(want);
    }
    if reduction(spec, &plan_at(1.0)?, target) + TOLERANCE < want {
        return Err(unreachable_target(
            target,
            reduction(spec, &plan_at(1.0)?, target),
        ));
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if reduction(spec, &plan_at(mid)?, target) + TOLERANCE >= want {
            hi = mid
        } else {
            lo = mid
        }
    }
    plan_at(hi)
}

/// HRank's format: one pruning rate per group, in [`ModelSpec::unit_groups`]
/// order; each group drops its lowest-scoring `round(rate·size)` units.
pub fn select_by_rates(spec: &ModelSpec, scores: &UnitScores, rates: &[f32]) -> Result<Plan> {
    let groups = spec.unit_groups();
    if rates.len() != groups.len() {
        return Err(Error::config(
            "rates",
            rates.len(),
            format!(
                "give one rate per prunable layer: this model has {} ({})",
                groups.len(),
                groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut keep = BTreeMap::new();
    for (group, &rate) in groups.iter().zip(rates) {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::config(
                "rates",
                rate,
                format!("{}: a rate must be in [0, 1)", group.name),
            ));
        }
        let s = &scores[&group.name];
        let n_remove = ((rate as f64 * group.size as f64).round() as usize).min(group.size - 1);
        let kept = keep_highest(s, n_remove);
        keep.insert(group.name.clone(), kept);
    }
    Ok(Plan {
        keep,
        remove_blocks: vec![],
    })
}

/// The sorted indices left after removing the `n_remove` lowest scores
/// (ties by index, so the choice is deterministic).
fn keep_highest(scores: &[f32], n_remove: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let mut kept = order[n_remove..].to_vec();
    kept.sort_unstable();
    kept
}

/// The names of the `n` lowest-scoring blocks.
pub fn select_blocks(scores: &[(String, f32)], n: usize) -> Result<Vec<String>> {
    if n > scores.len() {
        return Err(Error::config(
            "target",
            format!("blocks={n}"),
            format!("the model has only {} removable blocks", scores.len()),
        ));
    }
    let mut order: Vec<&(String, f32)> = scores.iter().collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(order[..n].iter().map(|(name, _)| name.clone()).collect())
}

/// The most `target`'s measure a unit-level method can remove from `spec`:
/// every group down to `min_keep` units. Checked before any training.
pub fn check_reachable(spec: &ModelSpec, target: &Target) -> Result<()> {
    let want = goal(target)?;
    let min_keep = SelectOptions::default().min_keep;
    let keep = spec
        .unit_groups()
        .into_iter()
        .map(|g| (g.name, (0..min_keep.min(g.size)).collect()))
        .collect();
    let floor = Plan {
        keep,
        remove_blocks: Vec::new(),
    };
    let best = reduction(spec, &floor, target);
    if best + TOLERANCE < want {
        return Err(unreachable_target(target, best));
    }
    Ok(())
}

/// The share of MACs (or params, or units) `plan` removes — for reports.
pub fn achieved(spec: &ModelSpec, plan: &Plan, target: &Target) -> f64 {
    reduction(spec, plan, target)
}
