//! Fully connected network for 2-D toy problems: `fc1 … fcK` hidden layers with
//! one activation, then `out`.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Tensor};

use super::layers::Ctx;
use super::spec::{Activation, MlpSpec};

#[derive(Module, Debug)]
pub struct Mlp {
    pub hidden: Vec<Linear>,
    pub out: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    pub fn new(spec: &MlpSpec, device: &Device) -> Self {
        let mut d_in = spec.inputs;
        let hidden = spec
            .hidden
            .iter()
            .map(|&d_out| {
                let layer = LinearConfig::new(d_in, d_out).init(device);
                d_in = d_out;
                layer
            })
            .collect();
        Mlp {
            hidden,
            out: LinearConfig::new(d_in, spec.classes).init(device),
            activation: spec.activation,
        }
    }

    pub fn activate(&self, x: Tensor<2>, ctx: &mut Ctx) -> Tensor<2> {
        match self.activation {
            Activation::Relu => ctx.relu2(x),
            Activation::Tanh => tanh(x),
            Activation::Sigmoid => sigmoid(x),
        }
    }

    /// `[N, D, 1, 1]` → logits `[N, classes]`.
    pub fn forward(&self, x: Tensor<4>, ctx: &mut Ctx) -> Tensor<2> {
        let mut h: Tensor<2> = x.flatten(1, 3);
        for (i, layer) in self.hidden.iter().enumerate() {
            let name = format!("fc{}", i + 1);
            let input = ctx.layer_input2(&name, h);
            let z = ctx.layer_output2(&name, layer.forward(input));
            let [n, d] = z.dims();
            ctx.record(&name, &z.clone().reshape([n, d, 1, 1]));
            let a = self.activate(z, ctx).reshape([n, d, 1, 1]);
            h = ctx.scale_units(&name, a).reshape([n, d]);
        }
        let h = ctx.layer_input2("out", h);
        ctx.layer_output2("out", self.out.forward(h))
    }
}
