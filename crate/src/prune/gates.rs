//! Binary gates on unit groups and residual blocks (S1), and the network they
//! gate. A gate has a logit `z`; its soft value is `g = σ(z/τ)`; the forward
//! pass uses the hard value `b = 1[g > 0.5]` and the backward pass the
//! straight-through estimate `∂b/∂z := ∂g/∂z` (`b = g + (1[g>0.5] − g)`,
//! the bracket detached).
//!
//! The gates are parameters, not functions of the input, so every sample
//! sees the same gates: the "consensus" sub-network is the set of open gates.
//! (Zhi et al. may condition gates on the input and average over the batch;
//! with static gates the batch mean is the gate itself.)

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use crate::model::spec::LayerOp;
use crate::model::{Ctx, Model, ModelSpec};

#[derive(Module, Debug)]
pub struct Gates {
    /// One logit vector per unit group, in [`ModelSpec::unit_groups`] order.
    pub units: Vec<Param<Tensor<1>>>,
    /// One logit (`[1]`) per removable block.
    pub blocks: Vec<Param<Tensor<1>>>,
    #[module(skip)]
    pub unit_names: Vec<String>,
    #[module(skip)]
    pub block_names: Vec<String>,
    #[module(skip)]
    pub temperature: f32,
}

/// Soft values, straight-through hard values, per group and per block.
pub struct GateValues {
    pub soft_units: Vec<Tensor<1>>,
    pub soft_blocks: Vec<Tensor<1>>,
    pub surrogate_units: Vec<Tensor<1>>,
    pub surrogate_blocks: Vec<Tensor<1>>,
    pub hard_units: Vec<Tensor<1>>,
    pub hard_blocks: Vec<Tensor<1>>,
}

fn logits(n: usize, init: f32, device: &Device) -> Param<Tensor<1>> {
    // `from_tensor` marks it trainable (on a plain device, for later).
    Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![init; n], [n]),
        device,
    ))
}

fn straight_through(soft: &Tensor<1>) -> Tensor<1> {
    let hard = soft.clone().greater_elem(0.5).float();
    soft.clone() + (hard - soft.clone()).detach()
}

impl Gates {
    pub fn new(
        spec: &ModelSpec,
        init_logit: f32,
        temperature: f32,
        block_gates: bool,
        device: &Device,
    ) -> Self {
        let groups = spec.unit_groups();
        let blocks = if block_gates {
            spec.removable_blocks()
        } else {
            Vec::new()
        };
        Gates {
            units: groups
                .iter()
                .map(|g| logits(g.size, init_logit, device))
                .collect(),
            blocks: blocks
                .iter()
                .map(|_| logits(1, init_logit, device))
                .collect(),
            unit_names: groups.into_iter().map(|g| g.name).collect(),
            block_names: blocks.into_iter().map(|b| b.name).collect(),
            temperature,
        }
    }

    /// Soft values at the current temperature τ, and hard values whose
    /// straight-through gradient is that of `σ(z)` at τ = 1 — annealing τ
    /// sharpens the soft values without letting a closed gate's gradient
    /// vanish (σ'(z/τ) underflows for small τ, and the gate could never
    /// reopen). The surrogate values `σ(z)` also price the soft cost.
    pub fn values(&self) -> GateValues {
        let soft =
            |z: &Param<Tensor<1>>| burn::tensor::activation::sigmoid(z.val() / self.temperature);
        let surrogate = |z: &Param<Tensor<1>>| burn::tensor::activation::sigmoid(z.val());
        let surrogate_units: Vec<Tensor<1>> = self.units.iter().map(surrogate).collect();
        let surrogate_blocks: Vec<Tensor<1>> = self.blocks.iter().map(surrogate).collect();
        GateValues {
            hard_units: surrogate_units.iter().map(straight_through).collect(),
            hard_blocks: surrogate_blocks.iter().map(straight_through).collect(),
            soft_units: self.units.iter().map(soft).collect(),
            soft_blocks: self.blocks.iter().map(soft).collect(),
            surrogate_units,
            surrogate_blocks,
        }
    }

    /// The same gates, fixed open or closed (logits ±1, far from the
    /// threshold once τ is small).
    pub fn fixed(self, units: &[Vec<bool>], blocks: &[bool], device: &Device) -> Self {
        let logit = |open: &[bool]| {
            let z: Vec<f32> = open.iter().map(|&o| if o { 1.0 } else { -1.0 }).collect();
            Param::from_tensor(Tensor::from_data(
                TensorData::new(z.clone(), [z.len()]),
                device,
            ))
        };
        Gates {
            units: units.iter().map(|u| logit(u)).collect(),
            blocks: blocks.iter().map(|&b| logit(&[b])).collect(),
            ..self
        }
    }

    /// A forward context that applies the hard gates.
    pub fn ctx(&self, v: &GateValues) -> Ctx {
        let mut ctx = Ctx::default();
        for (name, b) in self.unit_names.iter().zip(&v.hard_units) {
            ctx.unit_scale.insert(name.clone(), b.clone());
        }
        for (name, b) in self.block_names.iter().zip(&v.hard_blocks) {
            ctx.block_scale.insert(name.clone(), b.clone());
        }
        ctx
    }
}

/// What the network costs (MACs or params) as a function of the gates: a sum
/// of terms `coef · in(g) · out(g) · block(g) + linear · out(g) · block(g)`,
/// where `in`/`out` are the number of open units feeding / produced by a
/// layer (or its fixed width) and `block` the block's gate. Exact for hard
/// gates, differentiable through the straight-through estimate.
#[derive(Debug, Clone)]
pub struct Cost {
    pub dense: f64,
    terms: Vec<Term>,
    fixed: f64,
}

#[derive(Debug, Clone)]
struct Term {
    coef: f64,
    linear: f64,
    input: Side,
    output: Side,
    block: Option<usize>,
}

#[derive(Debug, Clone)]
enum Side {
    Group(usize),
    Fixed(f64),
}

/// Which measure [`Cost`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Macs,
    Params,
}

impl Cost {
    pub fn new(spec: &ModelSpec, gates: &Gates, measure: Measure) -> Self {
        let group = |name: &str| gates.unit_names.iter().position(|n| n == name);
        let block_of = |layer: &str| {
            gates
                .block_names
                .iter()
                .position(|b| layer.starts_with(&format!("{b}.")))
        };
        let mut terms = Vec::new();
        let mut fixed = 0.0;
        for layer in spec.layers() {
            let hw = (layer.out_hw * layer.out_hw) as f64;
            let name = layer.name.trim_end_matches(".bn");
            let input = input_group(spec, name).and_then(|g| group(&g));
            let output = group(name);
            let block = block_of(name);
            let (c_in, c_out, coef, linear) = match layer.op {
                LayerOp::Conv {
                    c_in,
                    c_out,
                    kernel,
                    ..
                } => {
                    let k2 = (kernel * kernel) as f64;
                    (
                        c_in,
                        c_out,
                        if measure == Measure::Macs {
                            k2 * hw
                        } else {
                            k2
                        },
                        0.0,
                    )
                }
                LayerOp::Linear { d_in, d_out } => (
                    d_in,
                    d_out,
                    1.0,
                    if measure == Measure::Params { 1.0 } else { 0.0 },
                ),
                LayerOp::BatchNorm { channels } => {
                    if measure == Measure::Macs {
                        continue;
                    }
                    // BN's two parameters per channel follow its conv's output.
                    let output = group(name);
                    let term = Term {
                        coef: 0.0,
                        linear: 2.0,
                        input: Side::Fixed(1.0),
                        output: output.map_or(Side::Fixed(channels as f64), Side::Group),
                        block,
                    };
                    if term.block.is_none() && output.is_none() {
                        fixed += 2.0 * channels as f64;
                    } else {
                        terms.push(term);
                    }
                    continue;
                }
            };
            let term = Term {
                coef,
                linear,
                input: input.map_or(Side::Fixed(c_in as f64), Side::Group),
                output: output.map_or(Side::Fixed(c_out as f64), Side::Group),
                block,
            };
            if input.is_none() && output.is_none() && block.is_none() {
                fixed += coef * (c_in * c_out) as f64 + linear * c_out as f64;
            } else {
                terms.push(term);
            }
        }
        let counted = crate::metrics::count::count(spec);
        let dense = match measure {
            Measure::Macs => counted.macs as f64,
            Measure::Params => counted.params as f64,
        };
        Cost {
            dense,
            terms,
            fixed,
        }
    }

    /// The cost under gate values `units`/`blocks` (a `[1]` tensor).
    pub fn of(&self, units: &[Tensor<1>], blocks: &[Tensor<1>], device: &Device) -> Tensor<1> {
        let side = |s: &Side| -> Tensor<1> {
            match s {
                Side::Group(i) => units[*i].clone().sum(),
                Side::Fixed(w) => Tensor::from_data(TensorData::new(vec![*w as f32], [1]), device),
            }
        };
        let mut total =
            Tensor::<1>::from_data(TensorData::new(vec![self.fixed as f32], [1]), device);
        for t in &self.terms {
            let out = side(&t.output);
            let mut term = side(&t.input) * out.clone() * t.coef + out * t.linear;
            if let Some(gate) = t.block.and_then(|b| blocks.get(b)) {
                term = term * gate.clone();
            }
            total = total + term;
        }
        total
    }
}

/// The unit group whose outputs feed layer `name`, if it is prunable.
fn input_group(spec: &ModelSpec, name: &str) -> Option<String> {
    match spec {
        ModelSpec::Mlp(m) => {
            let index = if name == "out" {
                m.hidden.len() + 1
            } else {
                name.strip_prefix("fc")?.parse().ok()?
            };
            (index > 1).then(|| format!("fc{}", index - 1))
        }
        ModelSpec::Plain(p) => {
            let index = if name == "fc" {
                p.convs().count() + 1
            } else {
                name.strip_prefix("conv")?.parse().ok()?
            };
            (index > 1).then(|| format!("conv{}", index - 1))
        }
        ModelSpec::Resnet(_) => name
            .strip_suffix(".conv2")
            .map(|block| format!("{block}.conv1")),
    }
}

/// The gated network S1 trains.
#[derive(Module, Debug)]
pub struct GatedModel {
    pub model: Model,
    pub gates: Gates,
}

impl GatedModel {
    /// Logits under the hard gates, and the gate values used.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, GateValues) {
        let values = self.gates.values();
        let mut ctx = self.gates.ctx(&values);
        (self.model.forward_ctx(x, &mut ctx), values)
    }
}
