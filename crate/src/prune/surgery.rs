//! Physical surgery: build the smaller network a [`Plan`] describes and copy
//! the surviving weights into it. The cut model computes exactly what the
//! masked model (`plan.masked_ctx`) computes, in eval mode; the tests hold
//! every architecture to that within 1e-4.
//!
//! Who moves with a removed unit (the coupling rule, per architecture):
//! - MLP, hidden neuron `j` of `fcK`: column `j` of `fcK`'s weight and bias,
//!   row `j` of the next layer's weight.
//! - Plain CNN, channel `c` of `convK`: filter `c` of `convK`, entry `c` of
//!   its BN (γ, β, running mean and variance), input channel `c` of the next
//!   conv, or row `c` of `fc` after the last conv.
//! - ResNet, channel `c` of `stageS.blockB.conv1`: filter `c` of `conv1`, BN
//!   entry `c`, input channel `c` of the block's `conv2`. The residual stream
//!   (stem, `conv2` outputs, shortcuts) is never cut: its channels are summed
//!   across blocks.
//! - ResNet block: the block leaves the list; its input passes through
//!   unchanged (it is already the output of a ReLU).

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::plan::Plan;
use crate::error::Result;
use crate::model::layers::ConvBn;
use crate::model::mlp::Mlp;
use crate::model::plain::PlainNet;
use crate::model::resnet::ResNet;
use crate::model::{Model, Net};

/// The model `plan` describes, with the surviving weights of `model`.
pub fn cut(model: &Model, plan: &Plan) -> Result<Model> {
    plan.validate(&model.spec)?;
    let net = match &model.net {
        Net::Mlp(m) => Net::Mlp(cut_mlp(m, plan)),
        Net::Plain(p) => Net::Plain(cut_plain(p, plan)),
        Net::Resnet(r) => Net::Resnet(cut_resnet(r, plan)),
    };
    let spec = plan.apply_to_spec(&model.spec);
    spec.validate()?;
    Ok(Model { net, spec })
}

fn index(kept: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = kept.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [kept.len()]), device)
}

/// A new trainable parameter holding `t`, cut loose from any graph.
fn param<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t.detach())
}

fn pick<const D: usize>(t: Tensor<D>, dim: usize, kept: Option<&Vec<usize>>) -> Tensor<D> {
    match kept {
        Some(k) => {
            let device = t.device();
            t.select(dim, index(k, &device))
        }
        None => t,
    }
}

fn cut_conv(conv: &Conv2d, outputs: Option<&Vec<usize>>, inputs: Option<&Vec<usize>>) -> Conv2d {
    let w = pick(pick(conv.weight.val(), 0, outputs), 1, inputs);
    Conv2d {
        weight: param(w),
        bias: conv.bias.as_ref().map(|b| param(pick(b.val(), 0, outputs))),
        ..conv.clone()
    }
}

fn cut_bn(bn: &BatchNorm, kept: Option<&Vec<usize>>) -> BatchNorm {
    BatchNorm {
        gamma: param(pick(bn.gamma.val(), 0, kept)),
        beta: param(pick(bn.beta.val(), 0, kept)),
        running_mean: RunningState::new(pick(bn.running_mean.value(), 0, kept).detach()),
        running_var: RunningState::new(pick(bn.running_var.value(), 0, kept).detach()),
        ..bn.clone()
    }
}

fn cut_conv_bn(
    layer: &ConvBn,
    outputs: Option<&Vec<usize>>,
    inputs: Option<&Vec<usize>>,
) -> ConvBn {
    ConvBn {
        conv: cut_conv(&layer.conv, outputs, inputs),
        bn: cut_bn(&layer.bn, outputs),
    }
}

/// burn stores linear weights as `[d_in, d_out]`.
fn cut_linear(
    linear: &Linear,
    outputs: Option<&Vec<usize>>,
    inputs: Option<&Vec<usize>>,
) -> Linear {
    Linear {
        weight: param(pick(pick(linear.weight.val(), 1, outputs), 0, inputs)),
        bias: linear
            .bias
            .as_ref()
            .map(|b| param(pick(b.val(), 0, outputs))),
    }
}

fn cut_mlp(m: &Mlp, plan: &Plan) -> Mlp {
    let mut inputs = None;
    let hidden = m
        .hidden
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let outputs = plan.keep.get(&format!("fc{}", i + 1));
            let cut = cut_linear(layer, outputs, inputs);
            inputs = outputs;
            cut
        })
        .collect();
    Mlp {
        hidden,
        out: cut_linear(&m.out, None, inputs),
        activation: m.activation,
    }
}

fn cut_plain(p: &PlainNet, plan: &Plan) -> PlainNet {
    let mut inputs = None;
    let convs = p
        .convs
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let outputs = plan.keep.get(&format!("conv{}", i + 1));
            let cut = cut_conv_bn(layer, outputs, inputs);
            inputs = outputs;
            cut
        })
        .collect();
    PlainNet {
        convs,
        pool_after: p.pool_after.clone(),
        fc: cut_linear(&p.fc, None, inputs),
    }
}

fn cut_resnet(r: &ResNet, plan: &Plan) -> ResNet {
    let blocks = r
        .blocks
        .iter()
        .filter(|b| !plan.remove_blocks.contains(&b.name))
        .map(|b| {
            let kept = plan.keep.get(&b.conv1_name());
            crate::model::resnet::BasicBlock {
                conv1: cut_conv_bn(&b.conv1, kept, None),
                conv2: cut_conv_bn(&b.conv2, None, kept),
                projection: b.projection.as_ref().map(|p| cut_conv_bn(p, None, None)),
                name: b.name.clone(),
                stride: b.stride,
                zero_pad: b.zero_pad,
            }
        })
        .collect();
    ResNet {
        stem: cut_conv_bn(&r.stem, None, None),
        blocks,
        fc: cut_linear(&r.fc, None, None),
    }
}
