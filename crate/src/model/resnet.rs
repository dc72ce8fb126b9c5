//! CIFAR ResNets (He et al., 2016): a 3×3 stem, three stages of BasicBlocks
//! (16-32-64 channels; the first block of stages 2 and 3 halves the map),
//! global average pooling and `fc`. Depth 6n+2: ResNet-20/32/56/110.
//!
//! A block computes `relu(scale·bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
//! Its input is always the output of a ReLU, so dropping a whole
//! identity-shortcut block (`scale = 0`) leaves `relu(x) = x`: removing the
//! block from the network computes exactly the same function.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, s};

use super::layers::{ConvBn, Ctx};
use super::spec::{ModelSpec, ResNetSpec, Shortcut, block_name};

#[derive(Module, Debug)]
pub struct ResNet {
    pub stem: ConvBn,
    pub blocks: Vec<BasicBlock>,
    pub fc: Linear,
    /// The residual stream the stem starts (its unit multiplier's name).
    #[module(skip)]
    pub stem_stream: String,
}

#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: ConvBn,
    pub conv2: ConvBn,
    /// Option-B projection, present only where the shape changes.
    pub projection: Option<ConvBn>,
    /// `stage{s}.block{b}`.
    #[module(skip)]
    pub name: String,
    #[module(skip)]
    pub stride: usize,
    /// Option A: zero channels added before and after the subsampled input.
    #[module(skip)]
    pub zero_pad: [usize; 2],
    /// Option A after the streams were cut: per output channel, the input
    /// channel carried (the input's channel count stands for a zero).
    #[module(skip)]
    pub source: Option<Vec<usize>>,
    /// The residual stream the block writes (its unit multiplier's name).
    #[module(skip)]
    pub stream: String,
}

impl ResNet {
    pub fn new(spec: &ResNetSpec, device: &Device) -> Self {
        let k = spec.kernel;
        let (stem_stream, layout) = layout(spec);
        let blocks = layout
            .into_iter()
            .map(|l| BasicBlock {
                conv1: ConvBn::new(l.c_in, l.mid, k, l.stride, device),
                conv2: ConvBn::new(l.mid, l.c_out, k, 1, device),
                projection: l
                    .projection
                    .then(|| ConvBn::new(l.c_in, l.c_out, 1, l.stride, device)),
                name: l.name,
                stride: l.stride,
                zero_pad: l.zero_pad,
                source: l.source,
                stream: l.stream,
            })
            .collect::<Vec<_>>();
        let width = spec.stages.last().map_or(spec.stem, |s| s.width);
        ResNet {
            stem: ConvBn::new(spec.in_channels, spec.stem, k, 1, device),
            blocks,
            fc: LinearConfig::new(width, spec.classes).init(device),
            stem_stream,
        }
    }

    /// `[N, 3, 32, 32]` → logits `[N, classes]`.
    pub fn forward(&self, x: Tensor<4>, ctx: &mut Ctx) -> Tensor<2> {
        let x = ctx.layer_input("stem", x);
        let stem = ctx.layer_output("stem", self.stem.forward(x));
        ctx.record("stem", &stem);
        let x = ctx.relu(stem);
        let mut x = ctx.scale_units(&self.stem_stream, x);
        for block in &self.blocks {
            x = block.forward(x, ctx);
        }
        let x: Tensor<2> = adaptive_avg_pool2d(x, [1, 1]).flatten(1, 3);
        let x = ctx.layer_input2("fc", x);
        ctx.layer_output2("fc", self.fc.forward(x))
    }
}

/// What a block is, read from the spec: shapes, shortcut and stream.
pub struct BlockLayout {
    pub name: String,
    pub c_in: usize,
    pub mid: usize,
    pub c_out: usize,
    pub stride: usize,
    pub projection: bool,
    pub zero_pad: [usize; 2],
    pub source: Option<Vec<usize>>,
    pub stream: String,
}

/// The stem's stream and every block's layout (surgery re-reads the cut
/// spec through this, so a cut block is shaped as a built one).
pub fn layout(spec: &ResNetSpec) -> (String, Vec<BlockLayout>) {
    // Which stream each producer writes, from the one derivation of groups.
    let streams = ModelSpec::Resnet(spec.clone()).stream_groups();
    let stream_of = |layer: &str| {
        streams
            .iter()
            .find(|g| g.producers.iter().any(|p| p == layer))
            .map(|g| g.name.clone())
            .expect("every producer is in a stream")
    };
    let mut out = Vec::new();
    let mut c_in = spec.stem;
    for (s, stage) in spec.stages.iter().enumerate() {
        for (position, block) in stage.blocks.iter().enumerate() {
            let changes = position == 0 && spec.entry_changes(s);
            let c_out = stage.width;
            let (mut zero_pad, mut source) = ([0, 0], None);
            if changes && spec.shortcut == Shortcut::A {
                if stage.shortcut_map.is_none() {
                    let extra = c_out.saturating_sub(c_in);
                    zero_pad = [extra / 2, extra - extra / 2];
                } else {
                    let map = spec.shortcut_source(s);
                    source = Some(map.into_iter().map(|i| i.unwrap_or(c_in)).collect());
                }
            }
            let name = block_name(s + 1, block.index);
            out.push(BlockLayout {
                stream: stream_of(&format!("{name}.conv2")),
                name,
                c_in,
                mid: block.mid,
                c_out,
                stride: if position == 0 { stage.stride } else { 1 },
                projection: changes && spec.shortcut == Shortcut::B,
                zero_pad,
                source,
            });
            c_in = c_out;
        }
    }
    (stream_of("stem"), out)
}

impl BasicBlock {
    pub fn conv1_name(&self) -> String {
        format!("{}.conv1", self.name)
    }

    pub fn forward(&self, x: Tensor<4>, ctx: &mut Ctx) -> Tensor<4> {
        let conv1 = self.conv1_name();
        let conv2 = format!("{}.conv2", self.name);
        let x1 = ctx.layer_input(&conv1, x.clone());
        let z = ctx.layer_output(&conv1, self.conv1.forward(x1));
        ctx.record(&conv1, &z);
        let h = ctx.relu(z);
        let h = ctx.scale_units(&conv1, h);
        let h = ctx.layer_input(&conv2, h);
        let z2 = ctx.layer_output(&conv2, self.conv2.forward(h));
        ctx.record(&conv2, &z2);
        let branch = ctx.scale_block(&self.name, z2);
        let sum = branch + self.shortcut_ctx(x, ctx);
        // The stream's multiplier acts on the sum: a masked stream channel
        // is zero for every later reader, as in the cut network (where an
        // option-A shortcut may still carry the previous stream into it).
        let out = ctx.relu(sum);
        ctx.scale_units(&self.stream, out)
    }

    /// The shortcut, with the projection (option B) treated as a weight layer.
    fn shortcut_ctx(&self, x: Tensor<4>, ctx: &mut Ctx) -> Tensor<4> {
        match &self.projection {
            Some(projection) => {
                let name = format!("{}.shortcut", self.name);
                let x = ctx.layer_input(&name, x);
                let z = ctx.layer_output(&name, projection.forward(x));
                ctx.record(&name, &z);
                z
            }
            None => self.shortcut(x),
        }
    }

    /// The identity, the option-B projection, or option A's subsample-and-pad.
    pub fn shortcut(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(projection) = &self.projection {
            return projection.forward(x);
        }
        let x = if self.stride == 1 {
            x
        } else {
            x.slice(s![.., .., ..;self.stride as isize, ..;self.stride as isize])
        };
        if let Some(source) = &self.source {
            // One zero channel after the input, then each output picks its source.
            let [n, c, h, w] = x.dims();
            let device = x.device();
            let padded = Tensor::cat(vec![x, Tensor::zeros([n, 1, h, w], &device)], 1);
            let values: Vec<i64> = source.iter().map(|&i| i.min(c) as i64).collect();
            let index = Tensor::<1, burn::tensor::Int>::from_data(
                burn::tensor::TensorData::new(values, [source.len()]),
                &device,
            );
            return padded.select(1, index);
        }
        let [before, after] = self.zero_pad;
        if before + after == 0 {
            return x;
        }
        let [n, _, h, w] = x.dims();
        let device = x.device();
        let mut parts = Vec::with_capacity(3);
        if before > 0 {
            parts.push(Tensor::zeros([n, before, h, w], &device));
        }
        parts.push(x);
        if after > 0 {
            parts.push(Tensor::zeros([n, after, h, w], &device));
        }
        Tensor::cat(parts, 1)
    }
}
