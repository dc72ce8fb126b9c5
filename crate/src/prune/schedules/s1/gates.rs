//! Binary gates on unit groups and residual blocks (S1), and the network they
//! gate. A gate has a logit `z`; its soft value is `g = σ(z/τ)`; the forward
//! pass uses the hard value `b = 1[σ(z) > ½]` and the backward pass the
//! straight-through estimate `∂b/∂z := ∂σ(z)/∂z`.
//!
//! Two kinds (`polarization.gates`):
//! - `static`: the logits are parameters, so every sample sees the same
//!   gates and the open ones *are* the consensus sub-network.
//! - `dynamic`: the logits come from a small head on each gated layer's
//!   average-pooled input, `z = W·pool(x) + c` — gates that depend on the
//!   sample, as the paper's abstract describes ("dynamic gates that settle on
//!   a consensus sub-network"). The heads start as static gates (`W = 0`,
//!   `c = z₀`); the polarizer pushes the batch-mean gates `ḡ` to 0 or 1 and
//!   an agreement term `mean|g − ḡ|` makes samples agree; the consensus is
//!   the majority of samples' hard gates over a pass of training data.
//!
//! Everything the loss needs is in [`GateValues`]: per-sample values
//! (`[1, C]` for static gates, `[N, C]` for dynamic ones) and their batch means.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::geometry::LayerOp;
use crate::model::layers::{GateHead, straight_through};
use crate::model::{Ctx, Model, ModelSpec};

/// Where the gate logits come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GateKind {
    /// One learned logit per unit and per block, shared by all samples.
    #[default]
    Static,
    /// Logits from a linear head on each gated layer's pooled input.
    Dynamic,
}

#[derive(Module, Debug)]
pub struct Gates {
    /// Static logits, one vector per unit group in [`ModelSpec::unit_groups`]
    /// order (empty for dynamic gates).
    pub units: Vec<Param<Tensor<1>>>,
    /// Static logits (`[1]`) per removable block (empty for dynamic gates).
    pub blocks: Vec<Param<Tensor<1>>>,
    /// Dynamic gates: one head per unit group, `[d_in] → [units (+1 block)]`.
    pub heads: Vec<Linear>,
    #[module(skip)]
    pub unit_names: Vec<String>,
    #[module(skip)]
    pub block_names: Vec<String>,
    /// For each head, the block whose gate is its last output.
    #[module(skip)]
    pub head_blocks: Vec<Option<usize>>,
    #[module(skip)]
    pub temperature: f32,
}

/// Soft values `σ(z/τ)`, surrogates `σ(z)` and straight-through hard values,
/// per group (`[1 or N, C]`) and per block (`[1 or N]`).
pub struct GateValues {
    pub soft_units: Vec<Tensor<2>>,
    pub soft_blocks: Vec<Tensor<1>>,
    pub surrogate_units: Vec<Tensor<2>>,
    pub surrogate_blocks: Vec<Tensor<1>>,
    pub hard_units: Vec<Tensor<2>>,
    pub hard_blocks: Vec<Tensor<1>>,
}

/// The batch mean of `[N, C]` values, `[C]`.
pub fn batch_mean(t: &Tensor<2>) -> Tensor<1> {
    let [_, c] = t.dims();
    t.clone().mean_dim(0).reshape([c])
}

impl GateValues {
    pub fn mean_soft(&self) -> Vec<Tensor<1>> {
        self.soft_units.iter().map(batch_mean).collect()
    }
    pub fn mean_soft_blocks(&self) -> Vec<Tensor<1>> {
        self.soft_blocks.iter().map(|b| b.clone().mean()).collect()
    }
    pub fn mean_surrogate(&self) -> (Vec<Tensor<1>>, Vec<Tensor<1>>) {
        (
            self.surrogate_units.iter().map(batch_mean).collect(),
            self.surrogate_blocks
                .iter()
                .map(|b| b.clone().mean())
                .collect(),
        )
    }
    /// The share of samples whose hard gate is open, per unit and block.
    pub fn mean_hard(&self) -> (Vec<Tensor<1>>, Vec<Tensor<1>>) {
        (
            self.hard_units.iter().map(batch_mean).collect(),
            self.hard_blocks.iter().map(|b| b.clone().mean()).collect(),
        )
    }
}

fn logits(n: usize, init: f32, device: &Device) -> Param<Tensor<1>> {
    // `from_tensor` marks it trainable (on a plain device, for later).
    Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![init; n], [n]),
        device,
    ))
}

/// A head that starts as a static gate: zero weights, bias `init`.
fn head(d_in: usize, outputs: usize, init: f32, device: &Device) -> Linear {
    let mut linear = LinearConfig::new(d_in, outputs)
        .with_initializer(Initializer::Zeros)
        .init(device);
    linear.bias = Some(logits(outputs, init, device));
    linear
}

impl Gates {
    pub fn new(
        spec: &ModelSpec,
        kind: GateKind,
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
        let block_names: Vec<String> = blocks.into_iter().map(|b| b.name).collect();
        let unit_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
        // A ResNet block's gate rides on the head of its first conv.
        let head_blocks: Vec<Option<usize>> = unit_names
            .iter()
            .map(|n| {
                let block = n.strip_suffix(".conv1")?;
                block_names.iter().position(|b| b == block)
            })
            .collect();
        match kind {
            GateKind::Static => Gates {
                units: groups
                    .iter()
                    .map(|g| logits(g.size, init_logit, device))
                    .collect(),
                blocks: block_names
                    .iter()
                    .map(|_| logits(1, init_logit, device))
                    .collect(),
                heads: Vec::new(),
                unit_names,
                block_names,
                head_blocks,
                temperature,
            },
            GateKind::Dynamic => {
                let layers = spec.layers();
                let heads = groups
                    .iter()
                    .zip(&head_blocks)
                    .map(|(g, block)| {
                        let d_in = layers
                            .iter()
                            .find(|l| l.name == g.name)
                            .map(|l| match l.op {
                                LayerOp::Conv { c_in, .. } => c_in,
                                LayerOp::Linear { d_in, .. } => d_in,
                                LayerOp::BatchNorm { channels } => channels,
                            })
                            .expect("every unit group is a weight layer");
                        head(
                            d_in,
                            g.size + usize::from(block.is_some()),
                            init_logit,
                            device,
                        )
                    })
                    .collect();
                Gates {
                    units: Vec::new(),
                    blocks: Vec::new(),
                    heads,
                    unit_names,
                    block_names,
                    head_blocks,
                    temperature,
                }
            }
        }
    }

    pub fn kind(&self) -> GateKind {
        if self.heads.is_empty() {
            GateKind::Static
        } else {
            GateKind::Dynamic
        }
    }

    /// Soft, surrogate and hard values from logits `[1 or N, C]` per group
    /// and `[1 or N]` per block.
    fn from_logits(&self, units: Vec<Tensor<2>>, blocks: Vec<Tensor<1>>) -> GateValues {
        let tau = self.temperature;
        // The hard values' straight-through gradient is that of `σ(z)` at
        // τ = 1: annealing τ sharpens the soft values without letting a closed
        // gate's gradient vanish (σ'(z/τ) underflows for small τ, and the
        // gate could never reopen). The surrogates also price the soft cost.
        let surrogate_units: Vec<Tensor<2>> = units.iter().map(|z| sigmoid(z.clone())).collect();
        let surrogate_blocks: Vec<Tensor<1>> = blocks.iter().map(|z| sigmoid(z.clone())).collect();
        GateValues {
            hard_units: surrogate_units
                .iter()
                .cloned()
                .map(straight_through)
                .collect(),
            hard_blocks: surrogate_blocks
                .iter()
                .cloned()
                .map(straight_through)
                .collect(),
            soft_units: units.iter().map(|z| sigmoid(z.clone() / tau)).collect(),
            soft_blocks: blocks.iter().map(|z| sigmoid(z.clone() / tau)).collect(),
            surrogate_units,
            surrogate_blocks,
        }
    }

    /// The values of static gates (`[1, C]`, `[1]`).
    pub fn values(&self) -> GateValues {
        let units = self
            .units
            .iter()
            .map(|z| {
                let z = z.val();
                let [c] = z.dims();
                z.reshape([1, c])
            })
            .collect();
        let blocks = self.blocks.iter().map(|z| z.val()).collect();
        self.from_logits(units, blocks)
    }

    /// The same gates as static ones, fixed open or closed (logits ±1, far
    /// from the threshold once τ is small); dynamic heads are dropped.
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
            heads: Vec::new(),
            ..self
        }
    }

    /// A forward context that applies static hard gates.
    fn static_ctx(&self, v: &GateValues) -> Ctx {
        let mut ctx = Ctx::default();
        for (name, b) in self.unit_names.iter().zip(&v.hard_units) {
            ctx.unit_scale.insert(name.clone(), b.clone());
        }
        for (name, b) in self.block_names.iter().zip(&v.hard_blocks) {
            ctx.block_scale.insert(name.clone(), b.clone());
        }
        ctx
    }

    /// A forward context whose heads set per-sample gates.
    fn dynamic_ctx(&self) -> Ctx {
        let heads = self
            .unit_names
            .iter()
            .zip(&self.heads)
            .zip(&self.head_blocks)
            .map(|((name, linear), block)| GateHead {
                layer: name.clone(),
                units: linear.weight.val().dims()[1] - usize::from(block.is_some()),
                linear: linear.clone(),
                block: block.map(|b| self.block_names[b].clone()),
            })
            .collect();
        let mut ctx = Ctx::default();
        ctx.heads = heads;
        ctx
    }

    /// The logits the heads produced in a pass, in gate order.
    fn head_values(&self, ctx: Ctx) -> GateValues {
        let mut units = Vec::with_capacity(self.unit_names.len());
        let mut blocks: Vec<Option<Tensor<1>>> = vec![None; self.block_names.len()];
        for ((name, block), (layer, z)) in self
            .unit_names
            .iter()
            .zip(&self.head_blocks)
            .zip(ctx.head_logits)
        {
            debug_assert_eq!(*name, layer, "heads run in forward order");
            let [n, width] = z.dims();
            match block {
                Some(b) => {
                    units.push(z.clone().slice([0..n, 0..width - 1]));
                    blocks[*b] = Some(z.slice([0..n, width - 1..width]).reshape([n]));
                }
                None => units.push(z),
            }
        }
        let blocks = blocks
            .into_iter()
            .map(|b| b.expect("every gated block has a head"))
            .collect();
        self.from_logits(units, blocks)
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
        match self.gates.kind() {
            GateKind::Static => {
                let values = self.gates.values();
                let mut ctx = self.gates.static_ctx(&values);
                (self.model.forward_ctx(x, &mut ctx), values)
            }
            GateKind::Dynamic => {
                let mut ctx = self.gates.dynamic_ctx();
                let logits = self.model.forward_ctx(x, &mut ctx);
                (logits, self.gates.head_values(ctx))
            }
        }
    }
}
