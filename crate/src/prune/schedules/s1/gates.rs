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
    /// Units per gated group (all open).
    group_sizes: Vec<f64>,
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
        let group_sizes = spec
            .unit_groups()
            .iter()
            .filter(|g| gates.unit_names.contains(&g.name))
            .map(|g| g.size as f64)
            .collect();
        Cost {
            dense,
            terms,
            fixed,
            group_sizes,
        }
    }

    /// What closing each gate alone saves from the dense network: per unit
    /// of every group, and per block (host arithmetic, every gate open).
    pub fn marginal(&self, gates: &Gates) -> (Vec<Vec<f64>>, Vec<f64>) {
        let width = |s: &Side, widths: &[f64]| match s {
            Side::Group(i) => widths[*i],
            Side::Fixed(w) => *w,
        };
        let widths: Vec<f64> = self.group_sizes.clone();
        let mut units: Vec<Vec<f64>> = widths.iter().map(|&w| vec![0.0; w as usize]).collect();
        let mut blocks = vec![0.0; gates.block_names.len()];
        for t in &self.terms {
            let (i, o) = (width(&t.input, &widths), width(&t.output, &widths));
            let whole = t.coef * i * o + t.linear * o;
            if let Some(b) = t.block {
                blocks[b] += whole;
            }
            // One unit fewer on a side saves that side's share of the term.
            if let Side::Group(g) = t.output {
                for c in units[g].iter_mut() {
                    *c += t.coef * i + t.linear;
                }
            }
            if let Side::Group(g) = t.input {
                for c in units[g].iter_mut() {
                    *c += t.coef * o;
                }
            }
        }
        (units, blocks)
    }

    /// The exact change of the budget penalty `λ(C/C₀ − keep)²` if each gate
    /// alone flipped, divided by the direction of the flip (−1 closes, +1
    /// opens): `λ(d·c² + 2c(h − keep))` with `c` the gate's current marginal
    /// share of the dense cost and `h` the hard share kept. This is the
    /// budget's pull on a hard gate. The linear term alone (what the
    /// straight-through gradient gives) is blind to the size of the step:
    /// it closes a gate worth a whole block to fix a 5-point overshoot; the
    /// `c²` term stops a gate from flipping unless the budget is missed by
    /// more than half of what the gate costs. Per unit of each group (all
    /// units of a group cost the same), then per block.
    pub fn flip_pull(
        &self,
        hard_units: &[Tensor<1>],
        hard_blocks: &[Tensor<1>],
        keep: f32,
        lambda: f32,
        device: &Device,
    ) -> (Vec<Tensor<1>>, Vec<Tensor<1>>) {
        let constant =
            |v: f64| Tensor::<1>::from_data(TensorData::new(vec![v as f32], [1]), device);
        let width = |s: &Side| match s {
            Side::Group(i) => hard_units[*i].clone().sum(),
            Side::Fixed(w) => constant(*w),
        };
        let h = self.of(hard_units, hard_blocks, device) / self.dense;
        let mut unit_cost: Vec<Tensor<1>> = hard_units.iter().map(|_| constant(0.0)).collect();
        let mut block_cost: Vec<Tensor<1>> = hard_blocks.iter().map(|_| constant(0.0)).collect();
        for t in &self.terms {
            let gate = t
                .block
                .and_then(|b| hard_blocks.get(b).cloned())
                .unwrap_or_else(|| constant(1.0));
            let (i, o) = (width(&t.input), width(&t.output));
            if let Side::Group(g) = t.output {
                unit_cost[g] =
                    unit_cost[g].clone() + (i.clone() * t.coef + t.linear) * gate.clone();
            }
            if let Side::Group(g) = t.input {
                unit_cost[g] = unit_cost[g].clone() + o.clone() * t.coef * gate.clone();
            }
            if let Some(b) = t.block {
                block_cost[b] = block_cost[b].clone() + i * o.clone() * t.coef + o * t.linear;
            }
        }
        let miss = (h - keep).detach();
        let pull = |c: Tensor<1>, hard: &Tensor<1>| {
            let c = c / self.dense;
            let [n] = hard.dims();
            let direction = hard.clone().neg() * 2.0 + 1.0;
            let square = (c.clone() * c.clone()).expand([n]);
            let linear = (c * miss.clone() * 2.0).expand([n]);
            ((direction * square + linear) * lambda).detach()
        };
        (
            unit_cost
                .into_iter()
                .zip(hard_units)
                .map(|(c, h)| pull(c, h))
                .collect(),
            block_cost
                .into_iter()
                .zip(hard_blocks)
                .map(|(c, h)| pull(c, h))
                .collect(),
        )
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
