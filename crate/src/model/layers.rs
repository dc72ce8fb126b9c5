//! The building blocks shared by the conv models, and the forward context that
//! lets one forward pass serve training, masking, gating and inspection.

use std::collections::HashMap;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// Per-pass options for a forward: multipliers on units and blocks, and
/// optionally a record of intermediate outputs.
///
/// - `unit_scale[group]` multiplies the group's units *after* their
///   activation: a 0/1 mask makes a masked model that computes exactly what
///   the physically cut model computes; a gate vector makes S1's gated net.
/// - `block_scale[block]` multiplies a residual branch before the addition
///   (shape `[1]` for one gate for all samples, `[N]` for one per sample).
/// - with `capture` on, `captured` receives each unit group's output after BN
///   and before the activation (what S3 and HRank score), in forward order.
#[derive(Default)]
pub struct Ctx {
    pub unit_scale: HashMap<String, Tensor<1>>,
    pub block_scale: HashMap<String, Tensor<1>>,
    pub capture: bool,
    pub captured: Vec<(String, Tensor<4>)>,
}

impl Ctx {
    pub fn capturing() -> Self {
        Ctx {
            capture: true,
            ..Ctx::default()
        }
    }

    /// Records `x` (the pre-activation output of `name`) when capturing.
    pub(crate) fn record(&mut self, name: &str, x: &Tensor<4>) {
        if self.capture {
            self.captured.push((name.to_string(), x.clone()));
        }
    }

    /// Applies the unit multiplier of `name`, if any, to `[N, C, H, W]`.
    pub(crate) fn scale_units(&self, name: &str, x: Tensor<4>) -> Tensor<4> {
        match self.unit_scale.get(name) {
            Some(s) => {
                let [c] = s.dims();
                x * s.clone().reshape([1, c, 1, 1])
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
        self.bn.forward(self.conv.forward(x))
    }
}
