//! What the open gates cost ([`Cost`]): each gate's marginal MACs or
//! parameters in the dense network, so the budget term and the cut measure
//! the same thing the target names.

use burn::tensor::{Device, Tensor, TensorData};

use crate::model::ModelSpec;
use crate::model::geometry::LayerOp;

use super::gates::Gates;

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
