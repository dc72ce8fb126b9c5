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
    /// MLP initialisation.
    pub init: Init,
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
            init: Init::Default,
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
                    init: options.init,
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
                        shortcut_map: None,
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
                        if r.shortcut == Shortcut::B && position == 0 && r.entry_changes(s) {
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
    /// The CIFAR ResNet of depth 6n+2: three stages of n blocks, widths 16-32-64.
    pub fn cifar(name: &str, depth: usize, shortcut: Shortcut, classes: usize) -> Self {
        let n = (depth - 2) / 6;
        let stage = |width, stride| StageSpec {
            width,
            stride,
            blocks: (0..n)
                .map(|index| BlockSpec { index, mid: width })
                .collect(),
            shortcut_map: None,
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
