//! The pruner: from unit scores (higher = more important) and a target to a
//! [`Plan`]. Criteria never decide how much goes where; this does, the same
//! way for every criterion, so methods differ only in what they measure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::model::ModelSpec;
use crate::model::groups::UnitGroup;
use crate::prune::pruner::plan::Plan;
use crate::prune::pruner::target::Target;

pub use super::protect::{GroupReduction, Protection, UnitScores, group_scores, reduce};
pub use super::share::{
    LatencyTable, achieved, check_reachable, predicted_latency_reduction, reduction,
};
use super::share::{TOLERANCE, goal, unreachable_target};

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
    /// Divide each group's scores by their mean magnitude (Torch-Pruning's
    /// default `normalizer='mean'`).
    Mean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SelectOptions {
    pub scope: Scope,
    pub normalize: Normalize,
    /// How much each layer may lose, and the shapes kept.
    pub protect: Protection,
    /// Remove this share of the target measure per round (MACs for a
    /// `macs=` target, units for `sparsity=`) and renormalise the survivors
    /// between rounds (Yeom et al.'s iterative ranking); `None` = one shot.
    pub step: Option<f32>,
    /// Per-layer times for `latency=` targets (measured by the pipeline).
    #[serde(skip)]
    pub latency: Option<LatencyTable>,
}

fn normalized(scores: &[f32], how: Normalize) -> Vec<f32> {
    let denom = match how {
        Normalize::None => 1.0,
        Normalize::L1 => scores.iter().map(|s| s.abs()).sum::<f32>(),
        Normalize::Max => scores.iter().fold(0.0f32, |m, s| m.max(s.abs())),
        Normalize::Mean => scores.iter().map(|s| s.abs()).sum::<f32>() / scores.len().max(1) as f32,
    };
    let denom = if denom > 0.0 && denom.is_finite() {
        denom
    } else {
        1.0
    };
    scores.iter().map(|s| s / denom).collect()
}

/// Units in removal order (lowest score first): `(group, index)`.
fn ranking(
    groups: &[UnitGroup],
    scores: &UnitScores,
    keep: &BTreeMap<String, Vec<usize>>,
    how: Normalize,
) -> Result<Vec<(String, usize)>> {
    let mut all = Vec::new();
    for group in groups {
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
/// group is down to its floor, [`Protection::floor`]), on top of `base`;
/// then each group's kept count is rounded up ([`Protection::round`]) by
/// giving back the units it lost last (its highest-ranked losses).
fn remove_prefix(
    groups: &[UnitGroup],
    base: &Plan,
    order: &[(String, usize)],
    n: usize,
    protect: &Protection,
) -> Plan {
    let mut keep: BTreeMap<String, Vec<usize>> = groups
        .iter()
        .map(|g| {
            let kept = base
                .keep
                .get(&g.name)
                .cloned()
                .unwrap_or_else(|| (0..g.size).collect());
            (g.name.clone(), kept)
        })
        .collect();
    let floors: BTreeMap<&str, usize> = groups
        .iter()
        .map(|g| (g.name.as_str(), protect.floor(&g.name, g.size)))
        .collect();
    let mut lost: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut removed = 0;
    for (group, index) in order {
        if removed == n {
            break;
        }
        let kept = keep.get_mut(group).expect("ranked groups exist");
        if kept.len() > floors[group.as_str()] {
            kept.retain(|i| i != index);
            lost.entry(group.as_str()).or_default().push(*index);
            removed += 1;
        }
    }
    for g in groups {
        let kept = keep.get_mut(&g.name).expect("every group is listed");
        let want = protect.round(kept.len(), g.size);
        let back = lost.entry(g.name.as_str()).or_default();
        while kept.len() < want {
            let Some(i) = back.pop() else { break };
            kept.push(i);
        }
        kept.sort_unstable();
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
    let groups = options.protect.groups(spec);
    let scores = &group_scores(&groups, scores, options.protect.group_reduction)?;
    let mut plan = Plan::default();
    match (options.scope, options.step) {
        (Scope::PerLayer, _) => per_layer(spec, &groups, scores, target, want, options),
        (Scope::Global, None) => global_round(spec, &groups, scores, target, want, &plan, options),
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
            while reduction(spec, &groups, &plan, target, options.latency.as_ref()) + TOLERANCE
                < want
            {
                aim = (aim + step as f64).min(want);
                plan = global_round(spec, &groups, scores, target, aim, &plan, options)?;
            }
            Ok(plan)
        }
    }
}

fn global_round(
    spec: &ModelSpec,
    groups: &[UnitGroup],
    scores: &UnitScores,
    target: &Target,
    want: f64,
    base: &Plan,
    options: &SelectOptions,
) -> Result<Plan> {
    let order = ranking(groups, scores, &base.keep, options.normalize)?;
    // The measure grows with the prefix length: find the shortest prefix that meets it.
    let met = |n: usize| {
        reduction(
            spec,
            groups,
            &remove_prefix(groups, base, &order, n, &options.protect),
            target,
            options.latency.as_ref(),
        ) + TOLERANCE
            >= want
    };
    if !met(order.len()) {
        let best = reduction(
            spec,
            groups,
            &remove_prefix(groups, base, &order, order.len(), &options.protect),
            target,
            options.latency.as_ref(),
        );
        return Err(unreachable_target(target, best));
    }
    let (mut lo, mut hi) = (0, order.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if met(mid) { hi = mid } else { lo = mid + 1 }
    }
    Ok(remove_prefix(groups, base, &order, lo, &options.protect))
}

/// The same share `r` from every group; `r` found by bisection for MACs and
/// params targets.
fn per_layer(
    spec: &ModelSpec,
    groups: &[UnitGroup],
    scores: &UnitScores,
    target: &Target,
    want: f64,
    options: &SelectOptions,
) -> Result<Plan> {
    let plan_at = |r: f64| -> Result<Plan> {
        let mut keep = BTreeMap::new();
        for group in groups {
            let s = scores.get(&group.name).ok_or_else(|| {
                Error::config(
                    "scores",
                    &group.name,
                    "the criterion gave no scores for this group",
                )
            })?;
            let p = &options.protect;
            let wanted = group.size - ((r * group.size as f64).round() as usize).min(group.size);
            let kept_n = p
                .round(wanted, group.size)
                .max(p.floor(&group.name, group.size));
            let kept = keep_highest(s, group.size - kept_n);
            keep.insert(group.name.clone(), kept);
        }
        Ok(Plan {
            keep,
            remove_blocks: vec![],
        })
    };
    if matches!(target, Target::Sparsity(_)) {
        return plan_at(want);
    }
    let measure = |plan: &Plan| reduction(spec, groups, plan, target, options.latency.as_ref());
    if measure(&plan_at(1.0)?) + TOLERANCE < want {
        return Err(unreachable_target(target, measure(&plan_at(1.0)?)));
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if measure(&plan_at(mid)?) + TOLERANCE >= want {
            hi = mid
        } else {
            lo = mid
        }
    }
    plan_at(hi)
}

/// HRank's format: one pruning rate per group, in [`Protection::groups`]
/// order; each group drops its lowest-scoring `round(rate·size)` units.
pub fn select_by_rates(
    spec: &ModelSpec,
    scores: &UnitScores,
    rates: &[f32],
    protect: &Protection,
) -> Result<Plan> {
    let groups = protect.groups(spec);
    let scores = &group_scores(&groups, scores, protect.group_reduction)?;
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
