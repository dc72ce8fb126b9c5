//! Group magnitude, Torch-Pruning's default importance (Fang et al.,
//! "DepGraph: Towards Any Structural Pruning", CVPR 2023, arXiv 2301.12900;
//! `GroupMagnitudeImportance`): a unit of a coupled group is everything that
//! goes with it, so its score pools all of them — the producers' filters
//! (output rows), their BN scales, and the consumers' input slices — as
//! `Σ|w|^p` per member, reduced over the members (`group_reduction`, mean by
//! default) and then divided by the group's mean (`Normalize::Mean`) before
//! one global ranking. With `residual_stream = true` this is the plan
//! Torch-Pruning makes; `tests/torch_pruning/` checks it does.

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::Criterion;
use crate::base::error::{Error, Result};
use crate::base::host;
use crate::model::groups::UnitGroup;
use crate::model::{Model, Net};
use crate::prune::contract::{
    BoxFuture, Finetune, Granularity, Knob, MethodInfo, OptionsSpec, Phase, Scores, Scoring,
};
use crate::prune::contract::{CheckOptions, require};
use crate::prune::pruner::select::{GroupReduction, Normalize, Scope, UnitScores, reduce};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupMagnitudeOptions {
    /// The norm's degree: 1 or 2.
    pub p: u32,
    /// Whether the producers' BN scales are members.
    pub bn: bool,
}

impl Default for GroupMagnitudeOptions {
    fn default() -> Self {
        GroupMagnitudeOptions { p: 2, bn: true }
    }
}

impl CheckOptions for GroupMagnitudeOptions {
    fn check(&self) -> Result<()> {
        require(
            matches!(self.p, 1 | 2),
            "group-magnitude.p",
            self.p,
            "1 or 2",
        )
    }
}

/// `Σ|x|^p` along each row.
fn row_power(rows: Tensor<2>, p: u32) -> Tensor<1> {
    let powered = if p == 1 {
        rows.abs()
    } else {
        rows.powi_scalar(2)
    };
    powered.sum_dim(1).flatten(0, 1)
}

/// Each group's pooled magnitude, by group name.
pub async fn scores(
    model: &Model,
    groups: &[UnitGroup],
    options: &GroupMagnitudeOptions,
    how: GroupReduction,
) -> Result<UnitScores> {
    let weights = model.prunable_weights();
    let weight = |layer: &str| {
        weights.iter().find(|w| w.layer == layer).ok_or_else(|| {
            Error::config("group", layer, "no weight layer of this name in the model")
        })
    };
    let gammas: BTreeMap<String, Vec<f32>> = match &model.net {
        Net::Mlp(_) => BTreeMap::new(),
        _ if !options.bn => BTreeMap::new(),
        _ => crate::prune::criteria::bn_scale::unit_scales(
            model,
            &crate::prune::contract::producers(groups),
        )
        .await?
        .into_iter()
        .map(|(layer, _, g)| (layer, g))
        .collect(),
    };
    let mut out = UnitScores::new();
    for group in groups {
        let mut members: Vec<Vec<f32>> = Vec::new();
        for layer in &group.producers {
            let w = &weight(layer)?.param;
            members.push(host::floats(row_power(w.per_unit(w.flat()), options.p)).await?);
            if let Some(g) = gammas.get(layer) {
                members.push(g.iter().map(|v| v.powi(options.p as i32)).collect());
            }
        }
        for layer in &group.consumers {
            let w = &weight(layer)?.param;
            members.push(host::floats(row_power(w.per_input(w.flat()), options.p)).await?);
        }
        out.insert(group.name.clone(), reduce(&members, group.size, how));
    }
    Ok(out)
}

pub static INFO: MethodInfo = MethodInfo {
    name: "group-magnitude",
    title: "Group magnitude (Torch-Pruning's default)",
    source: "Fang et al., DepGraph: Towards Any Structural Pruning, CVPR 2023 (arXiv 2301.12900)",
    summary: "Torch-Pruning's default importance: per unit of a coupled group, `Σ|w|^p` over every member — the producers' filters, their BN scales, the consumers' input slices — reduced by `group_reduction` (mean), divided by the group's mean, one global ranking (p = 2). With `residual_stream = true` it makes Torch-Pruning's plan exactly (`crate/tests/engine/torch_pruning.rs`)",
    phase: Phase::AfterTraining,
    granularity: Granularity::Channels,
    needs_blocks: false,
    scope: Some((
        Scope::Global,
        "Torch-Pruning's benchmarks: global_pruning=True",
    )),
    normalize: Some((
        Normalize::Mean,
        "Torch-Pruning: GroupMagnitudeImportance(normalizer='mean')",
    )),
    score_batches: None,
    ranking: None,
    finetune: Some(Finetune {
        share: 0.25,
        lr_factor: 0.1,
        source: "Torch-Pruning's CIFAR benchmarks fine-tune at lr 0.01 after training at 0.1; the length a quarter of training, as l1",
    }),
    options: Some(OptionsSpec::of::<GroupMagnitudeOptions>()),
    knobs: &[
        Knob {
            key: "group-magnitude.p",
            source: "Torch-Pruning: p=2 (group L2)",
        },
        Knob {
            key: "group-magnitude.bn",
            source: "Torch-Pruning: BN scales are members (target_types include BatchNorm)",
        },
        Knob {
            key: "group_reduction",
            source: "Torch-Pruning: group_reduction='mean'",
        },
        Knob {
            key: "residual_stream",
            source: "off as for every method; Torch-Pruning prunes the streams (set it true)",
        },
    ],
};

/// The formula, as a run calls it.
fn score(s: Scoring<'_>) -> BoxFuture<'_, Result<Scores>> {
    Box::pin(async move {
        let o: GroupMagnitudeOptions = s.options.of(INFO.name)?;
        let how = s.options.protect.group_reduction;
        Ok(Scores::Units(scores(s.model, &s.groups(), &o, how).await?))
    })
}

pub static GROUP_MAGNITUDE: Criterion = Criterion::new(&INFO, score);
