//! Plain conv nets: `conv1 … convK` (3×3 conv, BN, ReLU) with 2×2 max-pools in
//! between, global average pooling and one linear classifier `fc`. With the
//! VGG-16 layer list this is the CIFAR VGG-16-BN of the pruning literature
//! (after five pools the map is 1×1, so the average pool is a flatten).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use super::layers::{ConvBn, Ctx};
use super::spec::{PlainLayer, PlainSpec};

#[derive(Module, Debug)]
pub struct PlainNet {
    pub convs: Vec<ConvBn>,
    /// `pool_after[i]`: a max-pool follows conv i.
    #[module(skip)]
    pub pool_after: Vec<bool>,
    pub fc: Linear,
}

impl PlainNet {
    pub fn new(spec: &PlainSpec, device: &Device) -> Self {
        let mut convs = Vec::new();
        let mut pool_after = Vec::new();
        let mut c_in = spec.in_channels;
        for layer in &spec.layers {
            match *layer {
                PlainLayer::Conv(c_out) => {
                    convs.push(ConvBn::new(c_in, c_out, 3, 1, device));
                    pool_after.push(false);
                    c_in = c_out;
                }
                PlainLayer::Pool => {
                    if let Some(last) = pool_after.last_mut() {
                        *last = true;
                    }
                }
            }
        }
        PlainNet {
            convs,
            pool_after,
            fc: LinearConfig::new(c_in, spec.classes).init(device),
        }
    }

    /// `[N, C, H, W]` → logits `[N, classes]`.
    pub fn forward(&self, mut x: Tensor<4>, ctx: &mut Ctx) -> Tensor<2> {
        for (i, (conv, &pool)) in self.convs.iter().zip(&self.pool_after).enumerate() {
            let name = format!("conv{}", i + 1);
            let x_in = ctx.layer_input(&name, x);
            let z = ctx.layer_output(&name, conv.forward(x_in));
            ctx.record(&name, &z);
            let a = ctx.relu(z);
            x = ctx.scale_units(&name, a);
            if pool {
                x = ctx.max_pool(x);
            }
        }
        let x: Tensor<2> = adaptive_avg_pool2d(x, [1, 1]).flatten(1, 3);
        let x = ctx.layer_input2("fc", x);
        ctx.layer_output2("fc", self.fc.forward(x))
    }
}
