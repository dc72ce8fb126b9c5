//! Architecture descriptions. A [`ModelSpec`] is plain data (serialisable, saved
//! beside every checkpoint) that says exactly which layers a network has and how
//! wide each one is — including after pruning, when widths differ per layer and
//! residual blocks may be missing. Everything that needs a network's geometry
//! (building it, counting MACs, planning surgery) reads it from here, so there is
//! one place that names units: `fc2`, `conv7`, `stage2.block4.conv1`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub inputs: usize,
    /// Width of each hidden layer, `fc1`, `fc2`, …; the output layer is `out`.
    pub hidden: Vec<usize>,
    pub classes: usize,
    #[serde(default)]
    pub activation: Activation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainSpec {
    pub name: String,
    pub in_channels: usize,
    pub image_size: usize,
    /// Conv layers (`conv1`, `conv2`, … in order) and 2×2 max-pools.
    pub layers: Vec<PlainLayer>,
    pub classes: usize,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockSpec {
    /// The block's position in the unpruned network; names stay stable when
    /// other blocks are removed.
    pub index: usize,
    /// Output channels of `conv1`, the block-internal width.
    pub mid: usize,
}

/// What kind of unit a prunable group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Hidden neurons of a fully connected layer.
    Neuron,
    /// Output channels of a conv layer (filters).
    Channel,
}

/// A set of units that can be pruned independently of each other: the output
/// channels of one conv, or the neurons of one hidden layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitGroup {
    /// The layer producing the units, e.g. `stage2.block4.conv1`.
    pub name: String,
    pub kind: UnitKind,
    pub size: usize,
}

/// A residual block that can be removed whole (its shortcut is the identity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockRef {
    /// `stage{s}.block{b}`.
    pub name: String,
    pub stage: usize,
    pub index: usize,
}

/// The geometry of one parameterised layer, enough to count it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerGeometry {
    pub name: String,
    pub op: LayerOp,
    /// Output spatial size (1 for dense layers).
    pub out_hw: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerOp {
    Conv {
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
    },
    BatchNorm {
        channels: usize,
    },
    Linear {
        d_in: usize,
        d_out: usize,
    },
}

/// The model names the CLI, configs and the page accept.
pub const MODEL_NAMES: &[&str] = &[
    "mlp",
    "resmlp",
    "cnn",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "vgg16",
];

/// Upper bounds on what a spec may declare. Model files and configs are
/// checked against them before anything is allocated, so a hand-made 2 KB
/// file cannot ask for terabytes (docs/operations.md lists them).
pub const MAX_WIDTH: usize = 16_384;
pub const MAX_CLASSES: usize = 100_000;
pub const MAX_LAYERS: usize = 1_000;
pub const MAX_INPUTS: usize = 1 << 20;
pub const MAX_IMAGE_SIZE: usize = 1_024;
pub const MAX_IN_CHANNELS: usize = 64;

/// Models that take 2-D points rather than images.
pub const POINT_MODELS: &[&str] = &["mlp", "resmlp"];

/// Options a named model can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelOptions {
    pub classes: usize,
    /// MLP hidden widths.
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub shortcut: Shortcut,
    /// MLP input size (2 for toy data).
    pub inputs: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            classes: 10,
            hidden: vec![16, 16],
            activation: Activation::Relu,
            shortcut: Shortcut::A,
            inputs: 2,
        }
    }
}

impl ModelSpec {
    /// The dense architecture called `name`.
    pub fn named(name: &str, options: &ModelOptions) -> Result<Self> {
        let classes = options.classes;
        if classes < 2 {
            return Err(Error::config(
                "classes",
                classes,
                "a classifier needs at least 2",
            ));
        }
        let spec = match name {
            "mlp" => {
                // No hidden layer is allowed: softmax regression.
                if options.hidden.contains(&0) {
                    return Err(Error::config(
                        "hidden",
                        format!("{:?}", options.hidden),
                        "give positive widths, e.g. 16,16 (or none, for a linear classifier)",
                    ));
                }
                ModelSpec::Mlp(MlpSpec {
                    inputs: options.inputs,
                    hidden: options.hidden.clone(),
                    classes,
                    activation: options.activation,
                })
            }
            "resmlp" => {
                let width = options.hidden.first().copied().unwrap_or(0);
                if width == 0 || options.hidden.iter().any(|&w| w != width) {
                    return Err(Error::config(
                        "hidden",
                        format!("{:?}", options.hidden),
                        "resmlp takes one width per residual block, all equal, e.g. 16,16,16",
                    ));
                }
                ModelSpec::Resnet(ResNetSpec {
                    name: "resmlp".into(),
                    in_channels: options.inputs,
                    image_size: 1,
                    stem: width,
                    stages: vec![StageSpec {
                        width,
                        stride: 1,
                        blocks: (0..options.hidden.len())
                            .map(|index| BlockSpec { index, mid: width })
                            .collect(),
                    }],
                    shortcut: Shortcut::A,
                    classes,
                    kernel: 1,
                })
            }
            "cnn" => ModelSpec::Plain(PlainSpec {
                name: "cnn".into(),
                in_channels: 3,
                image_size: 32,
                layers: plain_layers(&[16, 0, 32, 0, 64, 0]),
                classes,
            }),
            "vgg16" => ModelSpec::Plain(PlainSpec {
                name: "vgg16".into(),
                in_channels: 3,
                image_size: 32,
                layers: plain_layers(&[
                    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
                ]),
                classes,
            }),
            _ => {
                // One list of accepted names: what parses is what `MODEL_NAMES` lists.
                let depth: usize = Some(name)
                    .filter(|n| MODEL_NAMES.contains(n))
                    .and_then(|n| n.strip_prefix("resnet"))
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| {
                        Error::config(
                            "model",
                            name,
                            format!("choose one of {}", MODEL_NAMES.join(", ")),
                        )
                    })?;
                ModelSpec::Resnet(ResNetSpec::cifar(name, depth, options.shortcut, classes))
            }
        };
        // Bounded here too: `info` and `bench` count or build straight from it.
        spec.check_size()?;
        Ok(spec)
    }

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

    /// The groups of units that channel/neuron pruning may shrink.
    ///
    /// Coupling rule: a unit is prunable only when nothing but the next layer
    /// reads it. In ResNets the residual stream (stem, every `conv2`, the
    /// shortcuts) is summed across blocks, so its channels would have to be
    /// pruned all together; this version keeps it whole and prunes the
    /// block-internal `conv1` channels, which are free with either shortcut.
    pub fn unit_groups(&self) -> Vec<UnitGroup> {
        match self {
            ModelSpec::Mlp(m) => m
                .hidden
                .iter()
                .enumerate()
                .map(|(i, &size)| UnitGroup {
                    name: format!("fc{}", i + 1),
                    kind: UnitKind::Neuron,
                    size,
                })
                .collect(),
            ModelSpec::Plain(p) => p
                .convs()
                .map(|(i, size)| UnitGroup {
                    name: format!("conv{i}"),
                    kind: UnitKind::Channel,
                    size,
                })
                .collect(),
            ModelSpec::Resnet(r) => r
                .blocks()
                .map(|(s, b)| UnitGroup {
                    name: format!("{}.conv1", block_name(s, b.index)),
                    kind: UnitKind::Channel,
                    size: b.mid,
                })
                .collect(),
        }
    }

    /// Residual blocks that can be removed without changing any shape.
    pub fn removable_blocks(&self) -> Vec<BlockRef> {
        let ModelSpec::Resnet(r) = self else {
            return Vec::new();
        };
        let mut width = r.stem;
        let mut out = Vec::new();
        for (s, stage) in r.stages.iter().enumerate() {
            for (position, block) in stage.blocks.iter().enumerate() {
                let changes_shape = position == 0 && (stage.stride != 1 || stage.width != width);
                if !changes_shape {
                    out.push(BlockRef {
                        name: block_name(s + 1, block.index),
                        stage: s + 1,
                        index: block.index,
                    });
                }
            }
            width = stage.width;
        }
        out
    }

    /// Every parameterised layer in forward order.
    pub fn layers(&self) -> Vec<LayerGeometry> {
        let mut out = Vec::new();
        match self {
            ModelSpec::Mlp(m) => {
                let mut d_in = m.inputs;
                for (i, &d_out) in m.hidden.iter().enumerate() {
                    out.push(linear(format!("fc{}", i + 1), d_in, d_out));
                    d_in = d_out;
                }
                out.push(linear("out".into(), d_in, m.classes));
            }
            ModelSpec::Plain(p) => {
                let (mut c_in, mut hw, mut conv) = (p.in_channels, p.image_size, 0);
                for layer in &p.layers {
                    match *layer {
                        PlainLayer::Conv(c_out) => {
                            conv += 1;
                            conv_bn(&mut out, format!("conv{conv}"), c_in, c_out, 3, 1, hw);
                            c_in = c_out;
                        }
                        PlainLayer::Pool => hw /= 2,
                    }
                }
                out.push(linear("fc".into(), c_in, p.classes));
            }
            ModelSpec::Resnet(r) => {
                let (mut hw, k) = (r.image_size, r.kernel);
                conv_bn(&mut out, "stem".into(), r.in_channels, r.stem, k, 1, hw);
                let mut c_in = r.stem;
                for (s, stage) in r.stages.iter().enumerate() {
                    for (position, block) in stage.blocks.iter().enumerate() {
                        let stride = if position == 0 { stage.stride } else { 1 };
                        let name = block_name(s + 1, block.index);
                        let out_hw = hw / stride;
                        conv_bn(
                            &mut out,
                            format!("{name}.conv1"),
                            c_in,
                            block.mid,
                            k,
                            stride,
                            out_hw,
                        );
                        conv_bn(
                            &mut out,
                            format!("{name}.conv2"),
                            block.mid,
                            stage.width,
                            k,
                            1,
                            out_hw,
                        );
                        if r.shortcut == Shortcut::B && (stride != 1 || c_in != stage.width) {
                            conv_bn(
                                &mut out,
                                format!("{name}.shortcut"),
                                c_in,
                                stage.width,
                                1,
                                stride,
                                out_hw,
                            );
                        }
                        c_in = stage.width;
                        hw = out_hw;
                    }
                    // A stage whose blocks were all removed still changes nothing.
                }
                out.push(linear("fc".into(), c_in, r.classes));
            }
        }
        out
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
        if let ModelSpec::Resnet(r) = self {
            for (s, stage) in r.stages.iter().enumerate() {
                let first_changes = stage.stride != 1
                    || stage.width
                        != if s == 0 {
                            r.stem
                        } else {
                            r.stages[s - 1].width
                        };
                if first_changes && stage.blocks.is_empty() {
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

fn plain_layers(widths: &[usize]) -> Vec<PlainLayer> {
    widths
        .iter()
        .map(|&w| {
            if w == 0 {
                PlainLayer::Pool
            } else {
                PlainLayer::Conv(w)
            }
        })
        .collect()
}

fn linear(name: String, d_in: usize, d_out: usize) -> LayerGeometry {
    LayerGeometry {
        name,
        op: LayerOp::Linear { d_in, d_out },
        out_hw: 1,
    }
}

fn conv_bn(
    out: &mut Vec<LayerGeometry>,
    name: String,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    out_hw: usize,
) {
    out.push(LayerGeometry {
        name: name.clone(),
        op: LayerOp::Conv {
            c_in,
            c_out,
            kernel,
            stride,
        },
        out_hw,
    });
    out.push(LayerGeometry {
        name: format!("{name}.bn"),
        op: LayerOp::BatchNorm { channels: c_out },
        out_hw,
    });
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
    /// The CIFAR ResNet of depth 6n+2: three stages of n blocks, widths 16-32-64.
    pub fn cifar(name: &str, depth: usize, shortcut: Shortcut, classes: usize) -> Self {
        let n = (depth - 2) / 6;
        let stage = |width, stride| StageSpec {
            width,
            stride,
            blocks: (0..n)
                .map(|index| BlockSpec { index, mid: width })
                .collect(),
        };
        ResNetSpec {
            name: name.into(),
            in_channels: 3,
            image_size: 32,
            stem: 16,
            stages: vec![stage(16, 1), stage(32, 2), stage(64, 2)],
            shortcut,
            classes,
            kernel: 3,
        }
    }

    /// `(1-based stage, block)` for every block present.
    pub fn blocks(&self) -> impl Iterator<Item = (usize, &BlockSpec)> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(s, stage)| stage.blocks.iter().map(move |b| (s + 1, b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_model_builds_and_nothing_else_does() {
        let options = ModelOptions::default();
        for name in MODEL_NAMES {
            assert!(
                ModelSpec::named(name, &options).is_ok(),
                "{name} is listed but does not build"
            );
        }
        for name in ["resnet44x", "resnet45", "resnet", "vgg11"] {
            assert!(
                ModelSpec::named(name, &options).is_err(),
                "{name} builds but is not listed"
            );
        }
    }
}
