//! What the pruner may not touch and how members of a coupled group combine:
//! [`Protection`] (protected layers, per-layer caps and floors, rounding)
//! and the group score reduction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::model::ModelSpec;
use crate::model::groups::UnitGroup;

/// Group name → one score per unit.
pub type UnitScores = BTreeMap<String, Vec<f32>>;

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
