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
use super::spec::{ResNetSpec, Shortcut, block_name};

#[derive(Module, Debug)]
pub struct ResNet {
    pub stem: ConvBn,
    pub blocks: Vec<BasicBlock>,
    pub fc: Linear,
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
}

impl ResNet {
    pub fn new(spec: &ResNetSpec, device: &Device) -> Self {
        let k = spec.kernel;
        let stem = ConvBn::new(spec.in_channels, spec.stem, k, 1, device);
        let mut blocks = Vec::new();
        let mut c_in = spec.stem;
        for (s, stage) in spec.stages.iter().enumerate() {
            for (position, block) in stage.blocks.iter().enumerate() {
                let stride = if position == 0 { stage.stride } else { 1 };
                let c_out = stage.width;
                let changes = stride != 1 || c_in != c_out;
                let (projection, zero_pad) = match (changes, spec.shortcut) {
                    (false, _) => (None, [0, 0]),
                    (true, Shortcut::B) => {
                        (Some(ConvBn::new(c_in, c_out, 1, stride, device)), [0, 0])
                    }
                    (true, Shortcut::A) => {
                        let extra = c_out.saturating_sub(c_in);
                        (None, [extra / 2, extra - extra / 2])
                    }
                };
                blocks.push(BasicBlock {
                    conv1: ConvBn::new(c_in, block.mid, k, stride, device),
                    conv2: ConvBn::new(block.mid, c_out, k, 1, device),
                    projection,
                    name: block_name(s + 1, block.index),
                    stride,
                    zero_pad,
                });
                c_in = c_out;
            }
        }
        ResNet {
            stem,
            blocks,
            fc: LinearConfig::new(c_in, spec.classes).init(device),
        }
    }

    /// `[N, 3, 32, 32]` → logits `[N, classes]`.
    pub fn forward(&self, x: Tensor<4>, ctx: &mut Ctx) -> Tensor<2> {
        let x = ctx.layer_input("stem", x);
        let stem = ctx.layer_output("stem", self.stem.forward(x));
        let mut x = ctx.relu(stem);
        for block in &self.blocks {
            x = block.forward(x, ctx);
        }
        let x: Tensor<2> = adaptive_avg_pool2d(x, [1, 1]).flatten(1, 3);
        let x = ctx.layer_input2("fc", x);
        ctx.layer_output2("fc", self.fc.forward(x))
    }
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
        let branch = ctx.scale_block(&self.name, z2);
        let sum = branch + self.shortcut_ctx(x, ctx);
        ctx.relu(sum)
    }

    /// The shortcut, with the projection (option B) treated as a weight layer.
    fn shortcut_ctx(&self, x: Tensor<4>, ctx: &mut Ctx) -> Tensor<4> {
        match &self.projection {
            Some(projection) => {
                let name = format!("{}.shortcut", self.name);
                let x = ctx.layer_input(&name, x);
                ctx.layer_output(&name, projection.forward(x))
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
