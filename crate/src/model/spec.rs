//! Architecture descriptions. A [`ModelSpec`] is plain data (serialisable, saved
//! beside every checkpoint) that says exactly which layers a network has and how
//! wide each one is — including after pruning, when widths differ per layer and
//! residual blocks may be missing. Everything that needs a network's geometry
//! (building it, counting MACs, planning surgery) reads it from here, so there is
//! one place that names units: `fc2`, `conv7`, `stage2.block4.conv1`.

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::data::augment::Normalization;

/// Upper bounds on what a spec may declare. Model files and configs are
/// checked against them before anything is allocated, so a hand-made 2 KB
/// file cannot ask for terabytes (docs/operations.md lists them).
pub const MAX_WIDTH: usize = 16_384;
pub const MAX_CLASSES: usize = 100_000;
pub const MAX_LAYERS: usize = 1_000;
pub const MAX_INPUTS: usize = 1 << 20;
pub const MAX_IMAGE_SIZE: usize = 1_024;
pub const MAX_IN_CHANNELS: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelSpec {
    /// Fully connected network for 2-D toy data.
    Mlp(MlpSpec),
    /// Plain conv-BN-ReLU stacks with max-pooling: the small CNN and VGG.
    Plain(PlainSpec),
    /// CIFAR ResNets (He et al. 2016, BasicBlock).
    Resnet(ResNetSpec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Sigmoid,
}

/// How an MLP's weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// burn's (and PyTorch's) default: `U(±1/√fan_in)` for weights and biases.
    #[default]
    Default,
    /// TensorFlow Playground's: weights `U(−0.5, 0.5)`, biases 0.1 — on
    /// Playground's plane, which is ours ×[`PLAYGROUND_SCALE`]: the first
    /// layer's weights are drawn ×5 so that the same network sees the same
    /// pre-activations. Its steeper first layer puts more kinks inside the
    /// data, which a spiral needs (docs/benchmarks.md).
    Playground,
}

/// TensorFlow Playground's plane (`[-6, 6]`) over ours (`tfp-spiral`'s 1/5).
pub const PLAYGROUND_SCALE: f32 = 5.0;

impl Init {
    fn is_default(&self) -> bool {
        *self == Init::Default
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub inputs: usize,
    /// Width of each hidden layer, `fc1`, `fc2`, …; the output layer is `out`.
    pub hidden: Vec<usize>,
    pub classes: usize,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default, skip_serializing_if = "Init::is_default")]
    pub init: Init,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainSpec {
    pub name: String,
    pub in_channels: usize,
    pub image_size: usize,
    /// Conv layers (`conv1`, `conv2`, … in order) and 2×2 max-pools.
    pub layers: Vec<PlainLayer>,
    pub classes: usize,
    /// The input normalisation it was trained with (absent in files from
    /// before it was recorded: then the data set's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Normalization>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlainLayer {
    /// 3×3 conv (padding 1, no bias) + BN + ReLU with this many output channels.
    Conv(usize),
    /// 2×2 max-pool, stride 2.
    Pool,
}

/// How a residual block whose shape changes adds its input back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Shortcut {
    /// He et al.'s CIFAR option A: subsample by 2 and zero-pad the new channels
    /// (no parameters).
    #[default]
    A,
    /// Option B: a 1×1 projection conv + BN.
    B,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResNetSpec {
    pub name: String,
    pub in_channels: usize,
    pub image_size: usize,
    /// Output channels of the stem conv (`stem`).
    pub stem: usize,
    pub stages: Vec<StageSpec>,
    pub shortcut: Shortcut,
    pub classes: usize,
    /// Conv kernel size: 3 for images; 1 makes every conv a linear layer, so
    /// a 1×1 "image" of `in_channels` features gives a residual MLP (with BN)
    /// for 2-D toy data — `resmlp`.
    #[serde(default = "default_kernel")]
    pub kernel: usize,
    /// As [`PlainSpec::input`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Normalization>,
}

fn default_kernel() -> usize {
    3
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSpec {
    /// Width of the residual stream in this stage.
    pub width: usize,
    /// Stride of the stage's first block (2 halves the feature map).
    pub stride: usize,
    pub blocks: Vec<BlockSpec>,
    /// Option A after the residual streams were cut: for each of this
    /// stage's stream channels, the channel of the previous stream its
    /// shortcut carries (`null`: none, a zero). Unset: the dense
    /// subsample-and-pad (the input lands in the middle positions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortcut_map: Option<Vec<Option<usize>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockSpec {
    /// The block's position in the unpruned network; names stay stable when
    /// other blocks are removed.
    pub index: usize,
    /// Output channels of `conv1`, the block-internal width.
    pub mid: usize,
}

impl ModelSpec {
    /// A short name for reports (`resnet56`, `mlp-16-16`).
    pub fn name(&self) -> String {
        match self {
            ModelSpec::Resnet(r) if r.name == "resmlp" => {
                let blocks = r.stages.iter().map(|s| s.blocks.len()).sum::<usize>();
                format!("resmlp-{}x{blocks}", r.stem)
            }
            ModelSpec::Mlp(m) => {
                let widths: Vec<String> = m.hidden.iter().map(|w| w.to_string()).collect();
                format!("mlp-{}", widths.join("-"))
            }
            ModelSpec::Plain(p) => p.name.clone(),
            ModelSpec::Resnet(r) => r.name.clone(),
        }
    }

    /// The input normalisation the model records, if any (image models).
    pub fn input(&self) -> Option<Normalization> {
        match self {
            ModelSpec::Mlp(_) => None,
            ModelSpec::Plain(p) => p.input,
            ModelSpec::Resnet(r) => r.input,
        }
    }

    /// The same architecture recording `input` (an MLP records none).
    pub fn with_input(mut self, input: Option<Normalization>) -> ModelSpec {
        match &mut self {
            ModelSpec::Mlp(_) => {}
            ModelSpec::Plain(p) => p.input = input,
            ModelSpec::Resnet(r) => r.input = input,
        }
        self
    }

    pub fn classes(&self) -> usize {
        match self {
            ModelSpec::Mlp(m) => m.classes,
            ModelSpec::Plain(p) => p.classes,
            ModelSpec::Resnet(r) => r.classes,
        }
    }

    /// Refuses data this model cannot read, naming both sides (it used to
    /// be a panic inside burn).
    pub fn check_data(&self, classes: usize, shape: [usize; 3]) -> Result<()> {
        if self.classes() != classes || self.input_shape() != shape {
            return Err(Error::config(
                "model",
                self.name(),
                format!(
                    "the model has {} classes and inputs of shape {:?}, the data has {} classes \
                     and inputs of shape {:?}; use the data it was trained on, or train a model for this data",
                    self.classes(),
                    self.input_shape(),
                    classes,
                    shape
                ),
            ));
        }
        Ok(())
    }

    /// Input shape of one example, `[channels, height, width]`; toy points are `[2, 1, 1]`.
    pub fn input_shape(&self) -> [usize; 3] {
        match self {
            ModelSpec::Mlp(m) => [m.inputs, 1, 1],
            ModelSpec::Plain(p) => [p.in_channels, p.image_size, p.image_size],
            ModelSpec::Resnet(r) => [r.in_channels, r.image_size, r.image_size],
        }
    }

    /// Checks that the spec can be built: positive widths, nothing removed
    /// that would leave a layer without units.
    /// Refuses sizes outside the bounds above (and zero sizes), naming the
    /// field: checked before a model of this spec is built.
    pub fn check_size(&self) -> Result<()> {
        let within = |what: &str, v: usize, max: usize| {
            if (1..=max).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(
                    what,
                    v,
                    format!(
                        "must be between 1 and {max} (the bound prunelab checks before allocating)"
                    ),
                ))
            }
        };
        match self {
            ModelSpec::Mlp(m) => {
                within("inputs", m.inputs, MAX_INPUTS)?;
                within("layers", m.hidden.len() + 1, MAX_LAYERS)?;
                for &w in &m.hidden {
                    within("hidden width", w, MAX_WIDTH)?;
                }
                within("classes", m.classes, MAX_CLASSES)
            }
            ModelSpec::Plain(p) => {
                within("in_channels", p.in_channels, MAX_IN_CHANNELS)?;
                within("image_size", p.image_size, MAX_IMAGE_SIZE)?;
                within("layers", p.layers.len() + 1, MAX_LAYERS)?;
                for l in &p.layers {
                    if let PlainLayer::Conv(c) = l {
                        within("conv width", *c, MAX_WIDTH)?;
                    }
                }
                within("classes", p.classes, MAX_CLASSES)
            }
            ModelSpec::Resnet(r) => {
                within("in_channels", r.in_channels, MAX_IN_CHANNELS)?;
                within("image_size", r.image_size, MAX_IMAGE_SIZE)?;
                within("kernel", r.kernel, 7)?;
                within("stem width", r.stem, MAX_WIDTH)?;
                let blocks: usize = r.stages.iter().map(|s| s.blocks.len()).sum();
                within("layers", 2 * blocks + r.stages.len() + 2, MAX_LAYERS)?;
                for s in &r.stages {
                    within("stage width", s.width, MAX_WIDTH)?;
                    within("stride", s.stride, 4)?;
                    for b in &s.blocks {
                        within("block width", b.mid, MAX_WIDTH)?;
                    }
                }
                for (s, stage) in r.stages.iter().enumerate() {
                    if let Some(map) = &stage.shortcut_map {
                        let c_in = r.input_width(s);
                        if map.len() != stage.width || map.iter().flatten().any(|&i| i >= c_in) {
                            return Err(Error::config(
                                "shortcut_map",
                                format!("stage{}", s + 1),
                                format!(
                                    "give one entry per stream channel ({}), each a channel of \
                                     the previous stream (below {c_in}) or null",
                                    stage.width
                                ),
                            ));
                        }
                    }
                }
                within("classes", r.classes, MAX_CLASSES)
            }
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.check_size()?;
        for group in self.unit_groups() {
            if group.size == 0 {
                return Err(Error::config(
                    "pruning target",
                    &group.name,
                    "it would remove every unit of this layer; lower the target or exclude the layer",
                ));
            }
        }
        if let Some(input) = self.input().filter(|n| !n.is_sane()) {
            return Err(Error::config(
                "input normalisation",
                format!("{input:?}"),
                "every mean must be finite and every std above 0 (at most 10)",
            ));
        }
        if let ModelSpec::Resnet(r) = self {
            for (s, stage) in r.stages.iter().enumerate() {
                if r.entry_changes(s) && stage.blocks.is_empty() {
                    return Err(Error::config(
                        "blocks",
                        format!("stage{}", s + 1),
                        "the down-sampling block of a stage cannot be removed",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// An option-A shortcut map after a cut: `source` (per output channel, the
/// input channel carried, or none) seen through the kept input channels
/// and the kept output channels (`None`: all kept).
pub fn remap_shortcut(
    source: &[Option<usize>],
    kept_in: Option<&[usize]>,
    kept_out: Option<&[usize]>,
) -> Vec<Option<usize>> {
    let outputs: Vec<usize> = match kept_out {
        Some(k) => k.to_vec(),
        None => (0..source.len()).collect(),
    };
    outputs
        .iter()
        .map(|&o| {
            source[o].and_then(|i| match kept_in {
                Some(k) => k.iter().position(|&x| x == i),
                None => Some(i),
            })
        })
        .collect()
}

/// `stage{s}.block{b}`: stages count from 1, blocks from 0 (as torchvision's `layer1.0`).
pub fn block_name(stage: usize, index: usize) -> String {
    format!("stage{stage}.block{index}")
}

impl PlainSpec {
    /// `(1-based conv number, output channels)` for every conv.
    pub fn convs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.layers
            .iter()
            .filter_map(|l| match l {
                PlainLayer::Conv(w) => Some(*w),
                PlainLayer::Pool => None,
            })
            .enumerate()
            .map(|(i, w)| (i + 1, w))
    }
}

impl ResNetSpec {
    /// The width of the stream entering stage `s` (0-based).
    pub fn input_width(&self, s: usize) -> usize {
        if s == 0 {
            self.stem
        } else {
            self.stages[s - 1].width
        }
    }

    /// Whether stage `s`'s first block changes the stream's shape (so it
    /// has a projection or an option-A map, and cannot be removed).
    pub fn entry_changes(&self, s: usize) -> bool {
        let stage = &self.stages[s];
        stage.stride != 1 || stage.width != self.input_width(s) || stage.shortcut_map.is_some()
    }

    /// Option A's shortcut into stage `s`: for each of its stream channels,
    /// the input channel carried there (`None`: zero). The dense network
    /// pads evenly, so input `i` lands at `i + (width − c_in) / 2`.
    pub fn shortcut_source(&self, s: usize) -> Vec<Option<usize>> {
        let stage = &self.stages[s];
        if let Some(map) = &stage.shortcut_map {
            return map.clone();
        }
        let c_in = self.input_width(s);
        let before = stage.width.saturating_sub(c_in) / 2;
        (0..stage.width)
            .map(|j| j.checked_sub(before).filter(|&i| i < c_in))
            .collect()
    }

    /// `(1-based stage, block)` for every block present.
    pub fn blocks(&self) -> impl Iterator<Item = (usize, &BlockSpec)> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(s, stage)| stage.blocks.iter().map(move |b| (s + 1, b)))
    }
}
