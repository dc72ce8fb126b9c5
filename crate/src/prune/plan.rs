//! A structured pruning plan: which units of each group survive and which
//! residual blocks go. Plans are data — saved in results, replayable on a
//! fresh model, printable as `conv1 16→9`.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Ctx, ModelSpec};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Group name → sorted indices of the units kept. Groups not listed keep all.
    pub keep: BTreeMap<String, Vec<usize>>,
    /// Names of residual blocks removed (`stage1.block3`).
    pub remove_blocks: Vec<String>,
}

impl Plan {
    /// This plan followed by `next`, a plan for the network this one cut,
    /// as one plan for the original network: `next`'s kept indices point
    /// into the units this plan kept.
    pub fn then(&self, next: &Plan) -> Plan {
        let mut keep = self.keep.clone();
        for (group, kept) in &next.keep {
            let mapped = match self.keep.get(group) {
                Some(before) => kept.iter().map(|&i| before[i]).collect(),
                None => kept.clone(),
            };
            keep.insert(group.clone(), mapped);
        }
        let mut remove_blocks = self.remove_blocks.clone();
        remove_blocks.extend(next.remove_blocks.iter().cloned());
        Plan {
            keep,
            remove_blocks,
        }
    }

    /// Checks the plan against `spec`: known groups, indices in range, at
    /// least one unit per group, only removable blocks.
    pub fn validate(&self, spec: &ModelSpec) -> Result<()> {
        let groups = spec.unit_groups();
        for (name, kept) in &self.keep {
            let group = groups.iter().find(|g| &g.name == name).ok_or_else(|| {
                Error::config("plan", name, "no prunable group of this name in the model")
            })?;
            if kept.is_empty() {
                return Err(Error::config(
                    "pruning target",
                    name,
                    "it would remove every unit of this layer; lower the target",
                ));
            }
            if kept.windows(2).any(|w| w[0] >= w[1]) || kept.iter().any(|&i| i >= group.size) {
                return Err(Error::config(
                    "plan",
                    name,
                    "kept indices must be sorted, unique and in range",
                ));
            }
        }
        let removable: Vec<String> = spec
            .removable_blocks()
            .into_iter()
            .map(|b| b.name)
            .collect();
        for block in &self.remove_blocks {
            if !removable.contains(block) {
                return Err(Error::config(
                    "plan",
                    block,
                    "only residual blocks with an identity shortcut can be removed",
                ));
            }
        }
        Ok(())
    }

    /// The forward context that computes what the cut model computes: 0/1
    /// multipliers on the removed units and 0 on removed blocks.
    pub fn masked_ctx(&self, spec: &ModelSpec, device: &Device) -> Ctx {
        let mut ctx = Ctx::default();
        for group in spec.unit_groups() {
            if let Some(kept) = self.keep.get(&group.name) {
                let mut mask = vec![0.0f32; group.size];
                for &i in kept {
                    mask[i] = 1.0;
                }
                ctx.unit_scale.insert(
                    group.name.clone(),
                    Tensor::from_data(TensorData::new(mask, [1, group.size]), device),
                );
            }
        }
        for block in &self.remove_blocks {
            ctx.block_scale.insert(
                block.clone(),
                Tensor::from_data(TensorData::new(vec![0.0f32], [1]), device),
            );
        }
        ctx
    }

    /// The architecture after the cut.
    pub fn apply_to_spec(&self, spec: &ModelSpec) -> ModelSpec {
        let mut spec = spec.clone();
        let kept = |name: &str, size: usize| self.keep.get(name).map_or(size, Vec::len);
        match &mut spec {
            ModelSpec::Mlp(m) => {
                for (i, w) in m.hidden.iter_mut().enumerate() {
                    *w = kept(&format!("fc{}", i + 1), *w);
                }
            }
            ModelSpec::Plain(p) => {
                let mut conv = 0;
                for layer in p.layers.iter_mut() {
                    if let crate::model::spec::PlainLayer::Conv(w) = layer {
                        conv += 1;
                        *w = kept(&format!("conv{conv}"), *w);
                    }
                }
            }
            ModelSpec::Resnet(r) => {
                for (s, stage) in r.stages.iter_mut().enumerate() {
                    stage.blocks.retain(|b| {
                        !self
                            .remove_blocks
                            .contains(&crate::model::spec::block_name(s + 1, b.index))
                    });
                    for b in stage.blocks.iter_mut() {
                        b.mid = kept(
                            &format!("{}.conv1", crate::model::spec::block_name(s + 1, b.index)),
                            b.mid,
                        );
                    }
                }
            }
        }
        spec
    }

    /// `conv1 16→9` lines for every group that shrinks, and the removed blocks.
    pub fn describe(&self, spec: &ModelSpec) -> Vec<String> {
        let mut out: Vec<String> = spec
            .unit_groups()
            .into_iter()
            .filter_map(|g| {
                self.keep
                    .get(&g.name)
                    .filter(|k| k.len() < g.size)
                    .map(|k| format!("{} {}→{}", g.name, g.size, k.len()))
            })
            .collect();
        out.extend(self.remove_blocks.iter().map(|b| format!("{b} removed")));
        out
    }
}
