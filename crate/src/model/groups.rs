//! Coupled groups: the units a plan removes together, derived from the spec
//! (a layer's outputs, or a residual stream across a stage), and the residual
//! blocks that can be removed whole.

use serde::{Deserialize, Serialize};

use super::spec::*;

/// What kind of unit a prunable group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Hidden neurons of a fully connected layer.
    Neuron,
    /// Output channels of a conv layer (filters).
    Channel,
}

/// A set of units that are pruned together, derived from the spec: unit `i`
/// of the group is output `i` of every producer and input `i` of every
/// consumer. Most groups are one layer's outputs (`conv3`,
/// `stage2.block4.conv1`, `fc1`); a ResNet's residual stream is one group
/// across a stage (`stage2.stream`: the stem or the shape-changing block's
/// projection, every block's `conv2`; read by every `conv1`, the next
/// projection and `fc`), because the stream's channels are summed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitGroup {
    /// The layer producing the units (`stage2.block4.conv1`), or the
    /// stream (`stage2.stream`).
    pub name: String,
    pub kind: UnitKind,
    pub size: usize,
    /// Layers whose outputs the units are: cut on their outputs, with their
    /// BN, and what a criterion scores.
    pub producers: Vec<String>,
    /// Layers that read the units: cut on their inputs.
    pub consumers: Vec<String>,
}

/// A residual block that can be removed whole (its shortcut is the identity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockRef {
    /// `stage{s}.block{b}`.
    pub name: String,
    pub stage: usize,
    pub index: usize,
}

impl ModelSpec {
    /// The groups of units that channel/neuron pruning may shrink freely:
    /// each one layer's outputs, read only by the next layer. In ResNets
    /// these are the block-internal `conv1` channels; the residual stream is
    /// coupled across blocks and comes from [`ModelSpec::stream_groups`].
    pub fn unit_groups(&self) -> Vec<UnitGroup> {
        let single = |name: String, kind, size, consumer: String| UnitGroup {
            producers: vec![name.clone()],
            consumers: vec![consumer],
            name,
            kind,
            size,
        };
        match self {
            ModelSpec::Mlp(m) => m
                .hidden
                .iter()
                .enumerate()
                .map(|(i, &size)| {
                    let next = if i + 1 < m.hidden.len() {
                        format!("fc{}", i + 2)
                    } else {
                        "out".into()
                    };
                    single(format!("fc{}", i + 1), UnitKind::Neuron, size, next)
                })
                .collect(),
            ModelSpec::Plain(p) => {
                let n = p.convs().count();
                p.convs()
                    .map(|(i, size)| {
                        let next = if i < n {
                            format!("conv{}", i + 1)
                        } else {
                            "fc".into()
                        };
                        single(format!("conv{i}"), UnitKind::Channel, size, next)
                    })
                    .collect()
            }
            ModelSpec::Resnet(r) => r
                .blocks()
                .map(|(s, b)| {
                    let name = block_name(s, b.index);
                    single(
                        format!("{name}.conv1"),
                        UnitKind::Channel,
                        b.mid,
                        format!("{name}.conv2"),
                    )
                })
                .collect(),
        }
    }

    /// A ResNet's residual streams, one group per run of blocks between
    /// shape changes, derived by walking the blocks: the stem (or a
    /// shape-changing block's `conv2` and option-B projection) starts a
    /// stream, each identity block's `conv2` adds to it, and every layer
    /// that reads the block input (`conv1`, the next projection, `fc`) is a
    /// consumer. An option-A shortcut carries the previous stream into the
    /// next through an index map ([`StageSpec::shortcut_map`]), so the two
    /// streams are cut independently. Other families have none.
    pub fn stream_groups(&self) -> Vec<UnitGroup> {
        let ModelSpec::Resnet(r) = self else {
            return Vec::new();
        };
        let stream = |name: String, size, producers: Vec<String>| UnitGroup {
            name,
            kind: UnitKind::Channel,
            size,
            producers,
            consumers: Vec::new(),
        };
        let first_changes = r.stages.first().is_some_and(|_| r.entry_changes(0));
        let stem_name = if first_changes {
            "stem.stream".to_string()
        } else {
            "stage1.stream".to_string()
        };
        let mut out = Vec::new();
        let mut current = stream(stem_name, r.stem, vec!["stem".into()]);
        for (s, stage) in r.stages.iter().enumerate() {
            for (position, block) in stage.blocks.iter().enumerate() {
                let name = block_name(s + 1, block.index);
                current.consumers.push(format!("{name}.conv1"));
                if position == 0 && r.entry_changes(s) {
                    let mut producers = vec![format!("{name}.conv2")];
                    if r.shortcut == Shortcut::B {
                        current.consumers.push(format!("{name}.shortcut"));
                        producers.push(format!("{name}.shortcut"));
                    }
                    let next = stream(format!("stage{}.stream", s + 1), stage.width, producers);
                    out.push(std::mem::replace(&mut current, next));
                } else {
                    current.producers.push(format!("{name}.conv2"));
                }
            }
        }
        current.consumers.push("fc".into());
        out.push(current);
        out
    }

    /// The free groups, and the residual streams too when `streams`.
    pub fn groups(&self, streams: bool) -> Vec<UnitGroup> {
        let mut out = self.unit_groups();
        if streams {
            out.extend(self.stream_groups());
        }
        out
    }

    /// Residual blocks that can be removed without changing any shape.
    pub fn removable_blocks(&self) -> Vec<BlockRef> {
        let ModelSpec::Resnet(r) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (s, stage) in r.stages.iter().enumerate() {
            for (position, block) in stage.blocks.iter().enumerate() {
                let changes_shape = position == 0 && r.entry_changes(s);
                if !changes_shape {
                    out.push(BlockRef {
                        name: block_name(s + 1, block.index),
                        stage: s + 1,
                        index: block.index,
                    });
                }
            }
        }
        out
    }
}
