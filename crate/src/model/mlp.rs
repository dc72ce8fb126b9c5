//! Fully connected network for 2-D toy problems: `fc1 … fcK` hidden layers with
//! one activation, then `out`.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Distribution, Tensor};

use super::layers::Ctx;
use super::spec::{Activation, Init, MlpSpec, PLAYGROUND_SCALE};

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
        let mut first = true;
        let mut linear = |d_in: usize, d_out: usize| {
            let layer = LinearConfig::new(d_in, d_out).init(device);
            let scale = if first { PLAYGROUND_SCALE } else { 1.0 };
            first = false;
            match spec.init {
                Init::Default => layer,
                Init::Playground => playground(layer, scale, device),
            }
        };
        let hidden = spec
            .hidden
            .iter()
            .map(|&d_out| {
                let layer = linear(d_in, d_out);
                d_in = d_out;
                layer
            })
            .collect();
        Mlp {
            hidden,
            out: linear(d_in, spec.classes),
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

/// TensorFlow Playground's start: weights `U(−0.5, 0.5)·scale`, biases 0.1.
fn playground(layer: Linear, scale: f32, device: &Device) -> Linear {
    let dims = layer.weight.shape().dims::<2>();
    let weight = Tensor::<2>::random(dims, Distribution::Uniform(-0.5, 0.5), device) * scale;
    let bias = layer
        .bias
        .as_ref()
        .map(|b| Param::from_tensor(Tensor::<1>::full(b.shape().dims::<1>(), 0.1, device)));
    Linear {
        weight: Param::from_tensor(weight),
        bias,
    }
}
