//! Physical surgery: build the smaller network a [`Plan`] describes and copy
//! the surviving weights into it. The cut model computes exactly what the
//! masked model (`plan.masked_ctx`) computes, in eval mode; the tests hold
//! every architecture to that within 1e-4.
//!
//! Who moves with a removed unit comes from the spec's groups
//! ([`crate::model::ModelSpec::groups`]), not from code per architecture:
//! unit `c` of a group is output `c` of every producer (its filter or
//! column, bias and BN entry: γ, β, running mean and variance) and input
//! `c` of every consumer (an input channel, or a row of `fc`). So
//! - MLP neuron `j` of `fcK`: column `j` of `fcK`, row `j` of the next layer;
//! - plain CNN channel `c` of `convK`: filter and BN entry `c`, input `c` of
//!   the next conv or row `c` of `fc`;
//! - ResNet `conv1` channel `c`: filter and BN entry `c`, input `c` of `conv2`;
//! - ResNet stream channel `c` (`stage2.stream`): output `c` of the stem or
//!   projection and of every `conv2` of the stream, input `c` of every
//!   `conv1` and projection reading it and of `fc`; an option-A shortcut's
//!   index map is re-pointed at the kept channels on both sides.
//! - ResNet block: the block leaves the list; its input passes through
//!   unchanged (it is already the output of a ReLU).

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::{Device, Int, Tensor, TensorData};

use std::collections::HashMap;

use crate::base::error::Result;
use crate::model::layers::ConvBn;
use crate::model::mlp::Mlp;
use crate::model::plain::PlainNet;
use crate::model::resnet::ResNet;
use crate::model::{Model, Net};
use crate::prune::pruner::plan::Plan;

/// The model `plan` describes, with the surviving weights of `model`.
pub fn cut(model: &Model, plan: &Plan) -> Result<Model> {
    plan.validate(&model.spec)?;
    let sides = Sides::of(&model.spec, plan);
    let spec = plan.apply_to_spec(&model.spec);
    spec.validate()?;
    let net = match &model.net {
        Net::Mlp(m) => Net::Mlp(cut_mlp(m, &sides)),
        Net::Plain(p) => Net::Plain(cut_plain(p, &sides)),
        Net::Resnet(r) => Net::Resnet(cut_resnet(r, plan, &sides, &spec)),
    };
    Ok(Model { net, spec })
}

/// Each layer's kept outputs and kept inputs under a plan (absent: all).
struct Sides {
    outputs: HashMap<String, Vec<usize>>,
    inputs: HashMap<String, Vec<usize>>,
}

impl Sides {
    fn of(spec: &crate::model::ModelSpec, plan: &Plan) -> Self {
        let mut sides = Sides {
            outputs: HashMap::new(),
            inputs: HashMap::new(),
        };
        for group in spec.groups(true) {
            if let Some(kept) = plan.keep.get(&group.name) {
                for p in group.producers {
                    sides.outputs.insert(p, kept.clone());
                }
                for c in group.consumers {
                    sides.inputs.insert(c, kept.clone());
                }
            }
        }
        sides
    }

    fn out(&self, layer: &str) -> Option<&Vec<usize>> {
        self.outputs.get(layer)
    }

    fn inp(&self, layer: &str) -> Option<&Vec<usize>> {
        self.inputs.get(layer)
    }
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

fn cut_mlp(m: &Mlp, sides: &Sides) -> Mlp {
    let hidden = m
        .hidden
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let name = format!("fc{}", i + 1);
            cut_linear(layer, sides.out(&name), sides.inp(&name))
        })
        .collect();
    Mlp {
        hidden,
        out: cut_linear(&m.out, None, sides.inp("out")),
        activation: m.activation,
    }
}

fn cut_plain(p: &PlainNet, sides: &Sides) -> PlainNet {
    let convs = p
        .convs
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let name = format!("conv{}", i + 1);
            cut_conv_bn(layer, sides.out(&name), sides.inp(&name))
        })
        .collect();
    PlainNet {
        convs,
        pool_after: p.pool_after.clone(),
        fc: cut_linear(&p.fc, None, sides.inp("fc")),
    }
}

fn cut_resnet(
    r: &ResNet,
    plan: &Plan,
    sides: &Sides,
    cut_spec: &crate::model::ModelSpec,
) -> ResNet {
    // The cut spec says what each block's shortcut and stream now are.
    let crate::model::ModelSpec::Resnet(spec) = cut_spec else {
        unreachable!("a ResNet's spec is a ResNet spec")
    };
    let (stem_stream, shape) = crate::model::resnet::layout(spec);
    let blocks = r
        .blocks
        .iter()
        .filter(|b| !plan.remove_blocks.contains(&b.name))
        .zip(shape)
        .map(|(b, new)| {
            let layer = |part: &str| format!("{}.{part}", b.name);
            let side = |part: &str| (sides.out(&layer(part)), sides.inp(&layer(part)));
            let (o1, i1) = side("conv1");
            let (o2, i2) = side("conv2");
            let (os, is) = side("shortcut");
            crate::model::resnet::BasicBlock {
                conv1: cut_conv_bn(&b.conv1, o1, i1),
                conv2: cut_conv_bn(&b.conv2, o2, i2),
                projection: b.projection.as_ref().map(|p| cut_conv_bn(p, os, is)),
                name: b.name.clone(),
                stride: b.stride,
                zero_pad: new.zero_pad,
                source: new.source,
                stream: new.stream,
            }
        })
        .collect();
    ResNet {
        stem: cut_conv_bn(&r.stem, sides.out("stem"), None),
        blocks,
        fc: cut_linear(&r.fc, None, sides.inp("fc")),
        stem_stream,
    }
}
