//! The gated network's training loss: cross-entropy, the budget term on
//! what the open gates cost, and the polarization regulariser R_pol.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::data::loader::Batch;
use crate::train::{Trainable, cross_entropy};

use super::cost::Cost;
use super::gates::{GateValues, GatedModel};
use super::options::Polarizer;

/// The gated network with its loss terms.
#[derive(Module, Debug)]
pub struct Polarized {
    pub gated: GatedModel,
    #[module(skip)]
    pub cost: Option<Cost>,
    /// Share of the dense cost to keep now, `1 − target(t)`.
    #[module(skip)]
    pub keep: f32,
    /// The polarizer weight now (ramped by the run).
    #[module(skip)]
    pub lambda_pol: f32,
    #[module(skip)]
    pub lambda_sp: f32,
    #[module(skip)]
    pub polarizer: Polarizer,
}

impl Trainable for Polarized {
    fn loss(&self, batch: &Batch) -> (Tensor<1>, Tensor<2>) {
        let (logits, v) = self.gated.forward(batch.x.clone());
        let device = batch.x.device();
        let mut loss = cross_entropy(logits.clone(), batch.y.clone());
        if self.lambda_pol > 0.0 {
            if let Some(r) = polarization_term(&v, self.polarizer) {
                loss = loss + r * self.lambda_pol;
            }
        }
        if let Some(cost) = &self.cost {
            // The budget term: each gate feels the exact change of
            // λ(C(b)/C₀ − keep)² were it to flip (`Cost::flip_pull`), carried
            // to its logit through the surrogate σ(z) — through the hard gates
            // a closed block with closed channels would have no gradient and
            // could never reopen.
            let (hard_u, hard_b) = v.mean_hard();
            let (sur_u, sur_b) = v.mean_surrogate();
            let (pull_u, pull_b) =
                cost.flip_pull(&hard_u, &hard_b, self.keep, self.lambda_sp, &device);
            for (p, s) in pull_u
                .into_iter()
                .zip(sur_u)
                .chain(pull_b.into_iter().zip(sur_b))
            {
                loss = loss + (p * s).sum();
            }
        }
        (loss, logits)
    }

    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.gated.forward(x).0
    }
}

/// `R_pol(ḡ)` on the batch-mean soft gates, plus, for per-sample gates, the
/// disagreement `mean|g − ḡ|`.
fn polarization_term(v: &GateValues, polarizer: Polarizer) -> Option<Tensor<1>> {
    let means: Vec<Tensor<1>> = v
        .mean_soft()
        .into_iter()
        .chain(v.mean_soft_blocks())
        .collect();
    if means.is_empty() {
        return None;
    }
    let g = Tensor::cat(means, 0);
    let mut r = match polarizer {
        Polarizer::Spread => (g.clone() - g.mean().detach().unsqueeze())
            .abs()
            .mean()
            .neg(),
        Polarizer::Bowl => (g.clone() * (g.neg() + 1.0)).mean(),
    };
    let per_sample = v.soft_units.first().is_some_and(|u| u.dims()[0] > 1);
    if per_sample {
        let mut parts = Vec::new();
        for u in &v.soft_units {
            let [n, c] = u.dims();
            let mean = u.clone().mean_dim(0);
            parts.push((u.clone() - mean.expand([n, c])).abs().flatten::<1>(0, 1));
        }
        for b in &v.soft_blocks {
            parts.push((b.clone() - b.clone().mean().expand(b.dims())).abs());
        }
        r = r + Tensor::cat(parts, 0).mean();
    }
    Some(r)
}
