//! How much a plan removes of the measure its target names (MACs, params,
//! units, latency), and whether a target is reachable at all.

use std::collections::BTreeMap;

use super::protect::Protection;
use crate::base::error::{Error, Result};
use crate::metrics::count::count;
use crate::model::ModelSpec;
use crate::model::groups::UnitGroup;
use crate::prune::pruner::plan::Plan;
use crate::prune::pruner::target::Target;

/// Slack when comparing achieved and wanted shares (f32 targets seen as f64).
pub(super) const TOLERANCE: f64 = 1e-6;

/// Each conv and linear layer's forward time alone in the dense network (ms),
/// by layer name: what a `latency=` target is predicted from.
pub type LatencyTable = BTreeMap<String, f64>;

/// The share of MACs or params a plan removes from `spec`, or the share of
/// units, or of the forward time `table` predicts (each layer's time scaled
/// by the share of its MACs the plan keeps; a latency target without a
/// table falls back to MACs).
pub fn reduction(
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

/// The share a target asks for (every target but `blocks=N`).
pub(super) fn goal(target: &Target) -> Result<f64> {
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

/// The error for a target the layer limits make unreachable.
pub(super) fn unreachable_target(target: &Target, best: f64) -> Error {
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
