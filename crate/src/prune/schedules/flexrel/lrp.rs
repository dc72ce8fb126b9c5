//! Relevance of every weight, from relevance propagated back from the
//! predicted class (FlexRel's inference-time information).
//!
//! LRP-ε as a gradient: every weight layer `z = W a + b` (conv with its BN
//! folded in, or linear) passes the gradient back scaled by `z / (z + ε')`
//! (`Ctx::lrp_epsilon`). Starting from the predicted logit with gradient 1,
//! the relevance at any activation is then `a ⊙ ∂f/∂a` — exactly the ε-rule
//! `R_a = a ⊙ Wᵀ(R_z / (z + ε'))`, with ReLU passing relevance through,
//! max-pooling winner-take-all, average pooling and residual additions
//! splitting it in proportion (LRP-0). Without the scaling the same code
//! gives gradient × input.
//!
//! A weight `w_kj` reads input unit `k` and feeds output unit `j`; its
//! relevance is `Σ_samples [R(a_k) + R(z_j)]` — the relevance of the input it
//! reads and of the output unit it feeds (Chiasserini et al. write `b_j` for
//! that output). A conv is
//! read as its unrolled (im2col) linear layer: `w[o, c, u, v]` reads the
//! input patch element `(c, u, v)` at every output position, so
//! `R(w[o,c,u,v]) = Σ_{samples, positions} R(patch[c,u,v]) + Σ R(out[o])`.

use burn::module::Module;
use burn::tensor::module::unfold4d;
use burn::tensor::ops::UnfoldOptions;
use burn::tensor::{Int, Tensor};

use crate::base::device::OpenDevice;
use crate::base::error::{Error, Result};
use crate::data::Split;
use crate::data::loader::Loader;
use crate::model::geometry::LayerOp;
use crate::model::{Ctx, Model};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Relevance {
    /// Layer-wise relevance propagation with the ε rule.
    #[default]
    LrpEpsilon,
    /// Gradient × input.
    GradientInput,
}

/// Relevance of each prunable weight, flattened in
/// [`Model::prunable_weights`] order, summed over the first `samples`
/// training examples rounded up to whole batches of `batch_size` (in a fixed
/// order, no augmentation, BN in eval mode; ε's rms is taken per batch).
pub fn weight_relevance(
    model: &Model,
    split: &Split,
    device: &OpenDevice,
    samples: usize,
    batch_size: usize,
    rule: Relevance,
    epsilon: f32,
) -> Result<Vec<Tensor<1>>> {
    let ad = device.autodiff();
    // Eval-mode BN, but gradients recorded: validation copy moved onto the autodiff device.
    let eval = model.valid().to_device(&ad);
    let layers = model.spec.layers();
    let names: Vec<String> = model
        .prunable_weights()
        .into_iter()
        .map(|w| w.layer)
        .collect();
    let mut sums: Vec<Option<Tensor<1>>> = vec![None; names.len()];
    let loader = Loader::sequential(&split.train, split.norm, batch_size);
    let order = loader.order(0);
    let mut seen = 0;
    for index in 0..loader.batches_per_epoch() {
        if seen >= samples {
            break;
        }
        let batch = loader.batch(&order, 0, index, &ad);
        seen += batch.len;
        let mut ctx = Ctx::probing(match rule {
            Relevance::LrpEpsilon => Some(epsilon),
            Relevance::GradientInput => None,
        });
        let logits = eval.forward_ctx(batch.x, &mut ctx);
        let predicted: Tensor<2, Int> = logits.clone().detach().argmax(1);
        let grads = logits.gather(1, predicted).sum().backward();
        for probe in ctx.probes {
            let i = names
                .iter()
                .position(|n| *n == probe.layer)
                .ok_or_else(|| {
                    Error::Execution(format!(
                        "probed layer {} is not a prunable weight",
                        probe.layer
                    ))
                })?;
            let g_in = probe
                .input_leaf
                .grad(&grads)
                .expect("the probe takes part in the output");
            let g_out = probe
                .output_leaf
                .grad(&grads)
                .expect("the probe takes part in the output");
            let r_in = probe.input.detach().inner() * g_in;
            let r_out = probe.output.detach().inner() * g_out;
            let geometry = layers
                .iter()
                .find(|l| l.name == probe.layer)
                .map(|l| l.op.clone());
            let relevance = per_weight(r_in, r_out, geometry)?;
            sums[i] = Some(match sums[i].take() {
                Some(s) => s + relevance,
                None => relevance,
            });
        }
    }
    sums.into_iter()
        .zip(names)
        .map(|(s, n)| s.ok_or_else(|| Error::Execution(format!("layer {n} received no relevance"))))
        .collect()
}

/// `R(w) = Σ R(input element read) + Σ R(output produced)`, flattened in the
/// weight's layout (conv `[O, C, k, k]`, linear `[d_in, d_out]`).
fn per_weight(r_in: Tensor<4>, r_out: Tensor<4>, op: Option<LayerOp>) -> Result<Tensor<1>> {
    match op {
        Some(LayerOp::Conv {
            c_in,
            c_out,
            kernel,
            stride,
        }) => {
            let pad = kernel / 2;
            let unfolded = unfold4d(
                r_in,
                [kernel, kernel],
                UnfoldOptions::new([stride, stride], [pad, pad], [1, 1]),
            );
            let input: Tensor<2> = unfolded
                .sum_dims(&[0, 2])
                .reshape([1, c_in * kernel * kernel]);
            let output: Tensor<2> = r_out.sum_dims(&[0, 2, 3]).reshape([c_out, 1]);
            Ok((output + input).flatten(0, 1))
        }
        Some(LayerOp::Linear { d_in, d_out }) => {
            let input: Tensor<2> = r_in.sum_dims(&[0, 2, 3]).reshape([d_in, 1]);
            let output: Tensor<2> = r_out.sum_dims(&[0, 2, 3]).reshape([1, d_out]);
            Ok((input + output).flatten(0, 1))
        }
        _ => Err(Error::Execution(
            "relevance asked for a layer without weights".into(),
        )),
    }
}
