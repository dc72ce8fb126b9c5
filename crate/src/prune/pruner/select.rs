//! The pruner: from unit scores (higher = more important) and a target to a
//! [`Plan`]. Criteria never decide how much goes where; this does, the same
//! way for every criterion, so methods differ only in what they measure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::count::count;
use crate::model::ModelSpec;
use crate::model::groups::UnitGroup;
use crate::prune::pruner::plan::Plan;
use crate::prune::pruner::target::Target;

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

/// Layer-collapse protection and shape control, the same for every
/// structured method (Torch-Pruning's `max_pruning_ratio`,
/// `ignored_layers`, `pruning_ratio_dict` and `round_to`). A global ranking
/// can otherwise empty a layer whose scores run low (S3 and HRank on the
/// small CNN left conv3 one channel). Layers are named as in
/// [`ModelSpec::unit_groups`] (`conv3`, `stage2.block4.conv1`, `fc1`);
/// patterns may use `*`.
// Not `deny_unknown_fields`: it is flattened into `[prune]` beside the
// method tables; `RunConfig::from_toml` checks unknown keys itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Protection {
    /// The largest share of any layer's units a plan removes. Every layer
    /// keeps at least one unit whatever this says.
    pub max_layer_ratio: f32,
    /// Layers never pruned.
    pub ignore_layers: Vec<String>,
    /// Per-layer caps over `max_layer_ratio`, by name or pattern (the
    /// first pattern that matches, in key order).
    pub layer_ratios: BTreeMap<String, f32>,
    /// Kept unit counts are rounded up to a multiple of this (hardware likes
    /// multiples of 8); a layer smaller than it keeps everything.
    pub round_to: usize,
    /// Also prune the residual streams (ResNets: the channels the stem,
    /// every `conv2` and the projections write and every block reads, one
    /// coupled group per stage, `stage2.stream`), as Torch-Pruning does.
    /// Off by default: the seed methods' papers and every earlier result
    /// prune the free groups only.
    pub residual_stream: bool,
    /// How a coupled group's members' scores (one per producing layer)
    /// become one score per unit.
    pub group_reduction: GroupReduction,
    /// Each group's size in the dense network, when the network being
    /// pruned is already cut (iterative schedules): caps hold against it.
    #[serde(skip)]
    pub dense_sizes: BTreeMap<String, usize>,
}

/// How the scores of a group's members combine (Torch-Pruning's
/// `group_reduction`; its default is the mean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GroupReduction {
    Sum,
    #[default]
    Mean,
    Max,
}

/// Each group's scores: a criterion scores layers (a group's producers);
/// a group of several producers gets their `how`-reduction, unit by unit.
/// Scores given under a group's own name (the random baseline) are used as
/// they are.
pub fn group_scores(
    groups: &[UnitGroup],
    scores: &UnitScores,
    how: GroupReduction,
) -> Result<UnitScores> {
    let mut out = UnitScores::new();
    for group in groups {
        let members: Vec<&Vec<f32>> = match scores.get(&group.name) {
            Some(s) => vec![s],
            None => group
                .producers
                .iter()
                .map(|p| {
                    scores.get(p).ok_or_else(|| {
                        Error::config(
                            "scores",
                            &group.name,
                            format!("the criterion gave no scores for its member {p}"),
                        )
                    })
                })
                .collect::<Result<_>>()?,
        };
        if let Some(bad) = members.iter().find(|m| m.len() != group.size) {
            return Err(Error::config(
                "scores",
                &group.name,
                format!("{} scores for {} units", bad.len(), group.size),
            ));
        }
        out.insert(group.name.clone(), reduce(&members, group.size, how));
    }
    Ok(out)
}

/// Unit by unit, the `how`-reduction of `members` (each `size` long).
pub fn reduce<M: AsRef<[f32]>>(members: &[M], size: usize, how: GroupReduction) -> Vec<f32> {
    (0..size)
        .map(|i| {
            let values = members.iter().map(|m| m.as_ref()[i]);
            match how {
                GroupReduction::Sum => values.sum(),
                GroupReduction::Mean => values.sum::<f32>() / members.len().max(1) as f32,
                GroupReduction::Max => values.fold(f32::NEG_INFINITY, f32::max),
            }
        })
        .collect()
}

impl Default for Protection {
    fn default() -> Self {
        Protection {
            max_layer_ratio: 1.0,
            ignore_layers: Vec::new(),
            layer_ratios: BTreeMap::new(),
            round_to: 1,
            residual_stream: false,
            group_reduction: GroupReduction::Mean,
            dense_sizes: BTreeMap::new(),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (head.len()..=name.len())
                    .any(|i| name.is_char_boundary(i) && glob(tail, &name[i..]))
        }
    }
}

impl Protection {
    /// The groups a plan may shrink: the free ones, and the residual
    /// streams when `residual_stream` is on.
    pub fn groups(&self, spec: &ModelSpec) -> Vec<UnitGroup> {
        spec.groups(self.residual_stream)
    }

    /// The share of group `name`'s units a plan may remove.
    pub fn cap(&self, name: &str) -> f32 {
        if self.ignore_layers.iter().any(|p| glob(p, name)) {
            return 0.0;
        }
        self.layer_ratios
            .iter()
            .find(|(p, _)| glob(p, name))
            .map_or(self.max_layer_ratio, |(_, &r)| r)
    }

    /// The fewest units group `name` of `size` keeps (at least one; the
    /// cap applies to the dense size when [`Protection::dense_sizes`] has it).
    pub fn floor(&self, name: &str, size: usize) -> usize {
        let base = self
            .dense_sizes
            .get(name)
            .copied()
            .unwrap_or(size)
            .max(size);
        let keep = ((1.0 - self.cap(name) as f64) * base as f64 - 1e-9).ceil() as usize;
        self.round(keep.max(1), base).min(size)
    }

    /// `kept` rounded up to a multiple of `round_to`, at most `size`.
    pub fn round(&self, kept: usize, size: usize) -> usize {
        let n = self.round_to.max(1);
        (kept.div_ceil(n) * n).min(size)
    }

    pub fn check(&self) -> Result<()> {
        let share = |v: f32| (0.0..=1.0).contains(&v);
        if !share(self.max_layer_ratio) {
            return Err(Error::config(
                "max_layer_ratio",
                self.max_layer_ratio,
                "use a share of a layer's units, 0 to 1",
            ));
        }
        if let Some((p, r)) = self.layer_ratios.iter().find(|(_, r)| !share(**r)) {
            return Err(Error::config(
                &format!("layer_ratios.{p}"),
                r,
                "use a share of the layer's units, 0 to 1",
            ));
        }
        if !(1..=1024).contains(&self.round_to) {
            return Err(Error::config("round_to", self.round_to, "use 1 to 1024"));
        }
        Ok(())
    }

    /// Names in `patterns` that match no group of `spec` (a typo would
    /// otherwise protect nothing, silently).
    pub fn check_names(&self, spec: &ModelSpec) -> Result<()> {
        let groups = self.groups(spec);
        for p in self.ignore_layers.iter().chain(self.layer_ratios.keys()) {
            if !groups.iter().any(|g| glob(p, &g.name)) {
                let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).take(8).collect();
                return Err(Error::config(
                    "layer",
                    p,
                    format!(
                        "no prunable layer of {} matches; its layers are {}{}",
                        spec.name(),
                        names.join(", "),
                        if groups.len() > 8 { ", …" } else { "" }
                    ),
                ));
            }
        }
        Ok(())
    }
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

/// Each conv and linear layer's forward time alone in the dense network (ms),
/// by layer name: what a `latency=` target is predicted from.
pub type LatencyTable = BTreeMap<String, f64>;

/// The share of MACs or params a plan removes from `spec`, or the share of
/// units, or of the forward time `table` predicts (each layer's time scaled
/// by the share of its MACs the plan keeps; a latency target without a
/// table falls back to MACs).
fn reduction(
    spec: &ModelSpec,
    groups: &[UnitGroup],
    plan: &Plan,
    target: &Target,
    table: Option<&LatencyTable>,
) -> f64 {
    let dense = count(spec);
    let cut = count(&plan.apply_to_spec(spec));
    match (target, table) {
        (Target::Latency(_), Some(table)) => {
            let total: f64 = table.values().sum();
            let kept: f64 = dense
                .layers
                .iter()
                .filter_map(|l| {
                    let t = table.get(&l.name)?;
                    let macs = cut
                        .layers
                        .iter()
                        .find(|c| c.name == l.name)
                        .map_or(0, |c| c.macs);
                    Some(t * macs as f64 / l.macs.max(1) as f64)
                })
                .sum();
            1.0 - kept / total.max(1e-12)
        }
        (Target::Macs(_) | Target::Latency(_), _) => 1.0 - cut.macs as f64 / dense.macs as f64,
        (Target::Params(_), _) => 1.0 - cut.params as f64 / dense.params as f64,
        _ => {
            let total: usize = groups.iter().map(|g| g.size).sum();
            let kept: usize = groups
                .iter()
                .map(|g| plan.keep.get(&g.name).map_or(g.size, Vec::len))
                .sum();
            1.0 - kept as f64 / total as f64
        }
    }
}

fn goal(target: &Target) -> Result<f64> {
    match *target {
        Target::Sparsity(v) | Target::Macs(v) | Target::Params(v) | Target::Latency(v) => {
            Ok(v as f64)
        }
        Target::Blocks(_) => Err(Error::config(
            "target",
            target,
            "blocks=N is for block-removal methods (layer-lottery, random with --unit blocks)",
        )),
    }
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

fn unreachable_target(target: &Target, best: f64) -> Error {
    Error::config(
        "target",
        target,
        format!(
            "unreachable: removing every unit the layer limits allow (max_layer_ratio, \
             layer_ratios, ignore_layers, round_to; at least one unit per layer) removes \
             only {:.1}%; lower the target",
            100.0 * best
        ),
    )
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

/// The most `target`'s measure a unit-level method can remove from `spec`:
/// every group down to its floor under `protect`. Checked before any training.
pub fn check_reachable(spec: &ModelSpec, target: &Target, protect: &Protection) -> Result<()> {
    let want = goal(target)?;
    protect.check()?;
    protect.check_names(spec)?;
    let groups = protect.groups(spec);
    let keep = groups
        .iter()
        .map(|g| {
            let floor = protect.floor(&g.name, g.size);
            (g.name.clone(), (0..floor).collect())
        })
        .collect();
    let floor = Plan {
        keep,
        remove_blocks: Vec::new(),
    };
    // A latency target's reach is measured, not known up front: MACs stand in.
    let best = reduction(spec, &groups, &floor, target, None);
    if best + TOLERANCE < want {
        return Err(unreachable_target(target, best));
    }
    Ok(())
}

/// The share of MACs (or params, or units) `plan` removes — for reports.
pub fn achieved(spec: &ModelSpec, plan: &Plan, target: &Target) -> f64 {
    // Units are counted over the groups the plan could cut: the streams
    // only when it cut one.
    let streams = spec
        .stream_groups()
        .iter()
        .any(|g| plan.keep.contains_key(&g.name));
    reduction(spec, &spec.groups(streams), plan, target, None)
}

/// The share of the forward time `table` predicts `plan` removes.
pub fn predicted_latency_reduction(spec: &ModelSpec, plan: &Plan, table: &LatencyTable) -> f64 {
    reduction(spec, &[], plan, &Target::Latency(0.0), Some(table))
}
