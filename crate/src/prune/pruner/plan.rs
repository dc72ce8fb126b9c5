//! A structured pruning plan: which units of each group survive and which
//! residual blocks go. Plans are data — saved in results, replayable on a
//! fresh model, printable as `conv1 16→9`.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::model::spec::block_name;
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
        let groups = spec.groups(true);
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
        // A stride-1 stage that widens its stream has a projection because
        // the widths differ; a cut that made them equal would build it as
        // an identity block (no named model has such a stage).
        let shortcuts = |s: &ModelSpec| {
            s.layers()
                .iter()
                .filter(|l| l.name.ends_with(".shortcut"))
                .count()
        };
        if shortcuts(&self.apply_to_spec(spec)) != shortcuts(spec) {
            return Err(Error::config(
                "plan",
                "residual streams",
                "this cut leaves a stage's input and output streams the same width at stride 1, \
                 which would drop its projection; keep a different number of channels",
            ));
        }
        Ok(())
    }

    /// The forward context that computes what the cut model computes: 0/1
    /// multipliers on the removed units and 0 on removed blocks.
    pub fn masked_ctx(&self, spec: &ModelSpec, device: &Device) -> Ctx {
        let mut ctx = Ctx::default();
        for group in spec.groups(true) {
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
                // Streams first, from the uncut spec: each sets the width of
                // the stages it runs through, and an option-A map is seen
                // through the kept channels on both of its sides.
                let before = r.clone();
                let streams = ModelSpec::Resnet(before.clone()).stream_groups();
                let kept_of = |layer: &str| {
                    streams
                        .iter()
                        .find(|g| g.producers.iter().any(|p| p == layer))
                        .and_then(|g| self.keep.get(&g.name))
                };
                if let Some(k) = kept_of("stem") {
                    r.stem = k.len();
                }
                for (s, stage) in r.stages.iter_mut().enumerate() {
                    let input = stage.blocks.first().and_then(|b| {
                        let conv1 = format!("{}.conv1", block_name(s + 1, b.index));
                        streams
                            .iter()
                            .find(|g| g.consumers.contains(&conv1))
                            .and_then(|g| self.keep.get(&g.name))
                    });
                    let output = stage
                        .blocks
                        .first()
                        .and_then(|b| kept_of(&format!("{}.conv2", block_name(s + 1, b.index))));
                    if let Some(k) = output {
                        stage.width = k.len();
                    }
                    if before.shortcut == crate::model::spec::Shortcut::A
                        && before.entry_changes(s)
                        && (input.is_some() || output.is_some())
                    {
                        stage.shortcut_map = Some(crate::model::spec::remap_shortcut(
                            &before.shortcut_source(s),
                            input.map(Vec::as_slice),
                            output.map(Vec::as_slice),
                        ));
                    }
                }
                for (s, stage) in r.stages.iter_mut().enumerate() {
                    stage
                        .blocks
                        .retain(|b| !self.remove_blocks.contains(&block_name(s + 1, b.index)));
                    for b in stage.blocks.iter_mut() {
                        b.mid = kept(&format!("{}.conv1", block_name(s + 1, b.index)), b.mid);
                    }
                }
                // A stage left without blocks carries the stream through.
                for s in 0..r.stages.len() {
                    if r.stages[s].blocks.is_empty() {
                        r.stages[s].width = r.input_width(s);
                    }
                }
            }
        }
        spec
    }

    /// `conv1 16→9` lines for every group that shrinks, and the removed blocks.
    pub fn describe(&self, spec: &ModelSpec) -> Vec<String> {
        let mut out: Vec<String> = spec
            .groups(true)
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
