//! The building blocks shared by the conv models, and the forward context that
//! lets one forward pass serve training, masking, gating and inspection.

use std::collections::HashMap;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// Per-pass options for a forward: multipliers on units and blocks, and
/// optionally a record of intermediate outputs.
///
/// - `unit_scale[group]` multiplies the group's units *after* their
///   activation (`[1, C]` for all samples, `[N, C]` per sample): a 0/1 mask
///   makes a masked model that computes exactly what the physically cut
///   model computes; a gate vector makes S1's gated net.
/// - `block_scale[block]` multiplies a residual branch before the addition
///   (shape `[1]` for one gate for all samples, `[N]` for one per sample).
/// - with `capture` on, `captured` receives each unit group's output after BN
///   and before the activation (what S3 and HRank score), in forward order.
/// - with `lrp_epsilon`, every weight layer's output `z` passes backward
///   scaled by `z / (z + ε·rms(z)·sign z)` (rms over the whole batch's `z`): gradient × activation then *is*
///   LRP-ε relevance (see `prune::lrp`).
/// - with `probe`, `probes` receives each weight layer's input and output
///   with a zero leaf added, whose gradient is the gradient at that point.
/// - `kinks` records the ReLU masks and max-pool choices of a pass, or
///   replays recorded ones: with them fixed, the network is smooth in its
///   weights, so finite differences of its gradient see the Hessian of the
///   piece it is on (what double backward computes) instead of the jumps of
///   ReLUs that change sign inside the step (GraSP's `H g`).
/// - `heads` are input-conditioned gates (S1's dynamic variant): a head on
///   layer `L` reads `L`'s input, average-pooled, and sets per-sample
///   straight-through gates on `L`'s units (and on a residual block) before
///   `L` runs; `head_logits` receives what each head produced.
#[derive(Default)]
pub struct Ctx {
    pub unit_scale: HashMap<String, Tensor<2>>,
    pub block_scale: HashMap<String, Tensor<1>>,
    pub capture: bool,
    pub captured: Vec<(String, Tensor<4>)>,
    pub lrp_epsilon: Option<f32>,
    pub probe: bool,
    pub probes: Vec<Probe>,
    pub heads: Vec<GateHead>,
    pub head_logits: Vec<(String, Tensor<2>)>,
    pub kinks: Kinks,
    pending: Option<(String, Tensor<4>, Tensor<4>)>,
}

/// Where a pass's piecewise-linear operations switch.
#[derive(Default)]
pub enum Kinks {
    /// Plain ReLU and max-pooling.
    #[default]
    Free,
    /// Plain, and each decision kept in forward order.
    Record(Vec<Kink>),
    /// The decisions of a recorded pass, in order (the next one at `.1`).
    Replay(Vec<Kink>, usize),
}

/// One operation's decisions: a ReLU's 0/1 mask, or a max-pool's argmax.
#[derive(Clone)]
pub enum Kink {
    Relu(Tensor<4>),
    MaxPool(burn::tensor::Tensor<4, burn::tensor::Int>),
}

/// An input-conditioned gate: `z = linear(avgpool(input of layer))`, `[N,
/// units + 1 if block]`; the gates are `1[σ(z) > ½]` forward and `σ(z)`'s
/// gradient backward.
#[derive(Debug, Clone)]
pub struct GateHead {
    pub layer: String,
    pub linear: Linear,
    pub units: usize,
    /// The residual block whose gate is the head's last output, if any.
    pub block: Option<String>,
}

/// `1[s > ½]` forward, the gradient of `s` backward.
pub fn straight_through<const D: usize>(surrogate: Tensor<D>) -> Tensor<D> {
    let hard = surrogate.clone().greater_elem(0.5).float();
    surrogate.clone() + (hard - surrogate).detach()
}

/// A weight layer's input and output during a probed forward pass (linear
/// layers as `[N, D, 1, 1]`), and the zero leaves added to them.
pub struct Probe {
    pub layer: String,
    pub input: Tensor<4>,
    pub input_leaf: Tensor<4>,
    pub output: Tensor<4>,
    pub output_leaf: Tensor<4>,
}

impl Ctx {
    pub fn capturing() -> Self {
        Ctx {
            capture: true,
            ..Ctx::default()
        }
    }

    /// Probes every weight layer; with `lrp_epsilon`, the backward pass is LRP-ε.
    pub fn probing(lrp_epsilon: Option<f32>) -> Self {
        Ctx {
            probe: true,
            lrp_epsilon,
            ..Ctx::default()
        }
    }

    /// Marks the input of weight layer `name` (call before the layer).
    pub(crate) fn layer_input(&mut self, name: &str, x: Tensor<4>) -> Tensor<4> {
        if let Some(head) = self.heads.iter().find(|h| h.layer == name) {
            let [n, c, _, _] = x.dims();
            let pooled: Tensor<2> = x.clone().mean_dim(3).mean_dim(2).reshape([n, c]);
            let logits = head.linear.forward(pooled);
            let hard = straight_through(burn::tensor::activation::sigmoid(logits.clone()));
            let units = head.units;
            self.unit_scale
                .insert(name.to_string(), hard.clone().slice([0..n, 0..units]));
            if let Some(block) = &head.block {
                let gate = hard.slice([0..n, units..units + 1]).reshape([n]);
                self.block_scale.insert(block.clone(), gate);
            }
            self.head_logits.push((name.to_string(), logits));
        }
        if !self.probe {
            return x;
        }
        let leaf = Tensor::zeros(x.dims(), &x.device()).require_grad();
        self.pending = Some((name.to_string(), x.clone(), leaf.clone()));
        x + leaf
    }

    /// Marks the output of weight layer `name` (after its BN, before any
    /// activation): LRP-ε scaling and the output probe.
    pub(crate) fn layer_output(&mut self, name: &str, z: Tensor<4>) -> Tensor<4> {
        let z = match self.lrp_epsilon {
            Some(eps) => lrp_epsilon_backward(z, eps),
            None => z,
        };
        if !self.probe {
            return z;
        }
        let leaf = Tensor::zeros(z.dims(), &z.device()).require_grad();
        let (layer, input, input_leaf) = self
            .pending
            .take()
            .expect("layer_input before layer_output");
        debug_assert_eq!(layer, name);
        self.probes.push(Probe {
            layer,
            input,
            input_leaf,
            output: z.clone(),
            output_leaf: leaf.clone(),
        });
        z + leaf
    }

    /// `layer_input` for `[N, D]` activations.
    pub(crate) fn layer_input2(&mut self, name: &str, x: Tensor<2>) -> Tensor<2> {
        if !self.probe {
            return x;
        }
        let [n, d] = x.dims();
        self.layer_input(name, x.reshape([n, d, 1, 1]))
            .reshape([n, d])
    }

    /// `layer_output` for `[N, D]` activations.
    pub(crate) fn layer_output2(&mut self, name: &str, z: Tensor<2>) -> Tensor<2> {
        if !self.probe && self.lrp_epsilon.is_none() {
            return z;
        }
        let [n, d] = z.dims();
        self.layer_output(name, z.reshape([n, d, 1, 1]))
            .reshape([n, d])
    }

    /// Records `x` (the pre-activation output of `name`) when capturing.
    pub(crate) fn record(&mut self, name: &str, x: &Tensor<4>) {
        if self.capture {
            self.captured.push((name.to_string(), x.clone()));
        }
    }

    /// ReLU, recorded or replayed as `kinks` says.
    pub(crate) fn relu(&mut self, x: Tensor<4>) -> Tensor<4> {
        match &mut self.kinks {
            Kinks::Free => burn::tensor::activation::relu(x),
            Kinks::Record(kinks) => {
                let mask = x.clone().detach().greater_elem(0.0).float();
                kinks.push(Kink::Relu(mask.clone()));
                x * mask
            }
            Kinks::Replay(kinks, next) => {
                let Some(Kink::Relu(mask)) = kinks.get(*next).cloned() else {
                    panic!("replayed kinks follow the recorded pass");
                };
                *next += 1;
                x * mask
            }
        }
    }

    /// ReLU on `[N, D]` activations.
    pub(crate) fn relu2(&mut self, x: Tensor<2>) -> Tensor<2> {
        let [n, d] = x.dims();
        self.relu(x.reshape([n, d, 1, 1])).reshape([n, d])
    }

    /// 2×2, stride-2 max-pooling, recorded or replayed as `kinks` says.
    pub(crate) fn max_pool(&mut self, x: Tensor<4>) -> Tensor<4> {
        use burn::tensor::module::{max_pool2d, max_pool2d_with_indices};
        use burn::tensor::ops::MaxPoolOptions;
        let options = MaxPoolOptions::new([2, 2]).with_stride([2, 2]);
        let take = |x: Tensor<4>, indices: burn::tensor::Tensor<4, burn::tensor::Int>| {
            let [n, c, h, w] = x.dims();
            let [_, _, ho, wo] = indices.dims();
            x.reshape([n, c, h * w])
                .gather(2, indices.reshape([n, c, ho * wo]))
                .reshape([n, c, ho, wo])
        };
        match &mut self.kinks {
            Kinks::Free => max_pool2d(x, options),
            Kinks::Record(kinks) => {
                let (_, indices) = max_pool2d_with_indices(x.clone().detach(), options);
                kinks.push(Kink::MaxPool(indices.clone()));
                take(x, indices)
            }
            Kinks::Replay(kinks, next) => {
                let Some(Kink::MaxPool(indices)) = kinks.get(*next).cloned() else {
                    panic!("replayed kinks follow the recorded pass");
                };
                *next += 1;
                take(x, indices)
            }
        }
    }

    /// Applies the unit multiplier of `name`, if any, to `[N, C, H, W]`.
    pub(crate) fn scale_units(&self, name: &str, x: Tensor<4>) -> Tensor<4> {
        match self.unit_scale.get(name) {
            Some(s) => {
                let [n, c] = s.dims();
                x * s.clone().reshape([n, c, 1, 1])
            }
            None => x,
        }
    }

    /// Applies the block multiplier of `name`, if any, to a residual branch.
    pub(crate) fn scale_block(&self, name: &str, x: Tensor<4>) -> Tensor<4> {
        match self.block_scale.get(name) {
            Some(s) => {
                let [n] = s.dims();
                x * s.clone().reshape([n, 1, 1, 1])
            }
            None => x,
        }
    }
}

/// A bias-free conv followed by batch norm: the unit every conv model is made of.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBn {
    pub fn new(c_in: usize, c_out: usize, kernel: usize, stride: usize, device: &Device) -> Self {
        let padding = kernel / 2;
        let conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .with_bias(false)
            // He et al.: N(0, 2/fan_in), what the CIFAR ResNet and VGG recipes use.
            .with_initializer(Initializer::KaimingNormal {
                gain: std::f64::consts::SQRT_2,
                fan_out_only: false,
            })
            .init(device);
        let bn = BatchNormConfig::new(c_out).init(device);
        ConvBn { conv, bn }
    }

    /// `[N, C_in, H, W]` → `[N, C_out, H/stride, W/stride]`, after BN, before any activation.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(super::conv::forward(&self.conv, x))
    }
}

/// The identity forward, with the backward scaled by `k = z / (z + ε')` where
/// `ε' = ε·rms(z)·sign(z)` (sign 0 counts as +): the LRP-ε rule for the layer
/// that produced `z`, written as a gradient (docs in `prune::lrp`).
pub fn lrp_epsilon_backward<const D: usize>(z: Tensor<D>, epsilon: f32) -> Tensor<D> {
    let value = z.clone().detach();
    let rms = value.clone().powi_scalar(2).mean().sqrt().clamp_min(1e-12);
    let sign = value.clone().greater_equal_elem(0.0).float() * 2.0 - 1.0;
    let stabiliser = sign * rms.unsqueeze::<D>() * epsilon;
    let k = (value.clone() / (value + stabiliser)).detach();
    z.clone() * k.clone() + (z * (k.neg() + 1.0)).detach()
}
