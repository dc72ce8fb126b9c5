//! Parameter and MAC counting from a [`ModelSpec`].
//!
//! Convention (documented in docs/metrics.md and used everywhere):
//! - one multiply-accumulate = 1 MAC (HRank and most pruning papers call this
//!   a "FLOP"); conv MACs = k²·C_in·C_out·H_out·W_out, linear MACs = d_in·d_out;
//! - BN, activations, pooling, residual additions and option-A shortcuts cost
//!   0 MACs (they are O(activations), not O(weights));
//! - params are trainable values: conv weights (no bias), BN γ and β, linear
//!   weights and biases. BN running statistics are buffers, not parameters;
//! - a pruned layer's MACs use its *pruned* input width, so removing a
//!   channel also reduces the next layer (HRank's README warns its own
//!   counter forgot this).

use serde::Serialize;

use crate::model::geometry::LayerOp;
use crate::model::spec::ModelSpec;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LayerCount {
    pub name: String,
    pub kind: &'static str,
    /// e.g. `16→32 3×3 /2` or `64→10`.
    pub shape: String,
    pub params: u64,
    pub macs: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelCount {
    pub model: String,
    pub params: u64,
    pub macs: u64,
    pub layers: Vec<LayerCount>,
}

/// Counts every layer of `spec` and the totals.
pub fn count(spec: &ModelSpec) -> ModelCount {
    let layers: Vec<LayerCount> = spec
        .layers()
        .into_iter()
        .map(|layer| {
            let hw = layer.out_hw as u64;
            let (kind, shape, params, macs) = match layer.op {
                LayerOp::Conv {
                    c_in,
                    c_out,
                    kernel,
                    stride,
                } => {
                    let weights =
                        (kernel as u64) * (kernel as u64) * (c_in as u64) * (c_out as u64);
                    let stride = if stride == 1 {
                        String::new()
                    } else {
                        format!(" /{stride}")
                    };
                    (
                        "conv",
                        format!("{c_in}→{c_out} {kernel}×{kernel}{stride}"),
                        weights,
                        weights * hw * hw,
                    )
                }
                LayerOp::BatchNorm { channels } => {
                    ("batchnorm", format!("{channels}"), 2 * channels as u64, 0)
                }
                LayerOp::Linear { d_in, d_out } => (
                    "linear",
                    format!("{d_in}→{d_out}"),
                    d_in as u64 * d_out as u64 + d_out as u64,
                    d_in as u64 * d_out as u64,
                ),
            };
            LayerCount {
                name: layer.name,
                kind,
                shape,
                params,
                macs,
            }
        })
        .collect();
    ModelCount {
        model: spec.name(),
        params: layers.iter().map(|l| l.params).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        layers,
    }
}

/// The weights weight-level methods may zero: every conv kernel and every
/// linear weight matrix (not biases, not BN), as `Model::prunable_weights`
/// lists them — from the spec, so a target is checked before a model exists.
pub fn prunable_weights(spec: &ModelSpec) -> u64 {
    spec.layers()
        .iter()
        .map(|layer| match layer.op {
            LayerOp::Conv {
                c_in,
                c_out,
                kernel,
                ..
            } => (kernel * kernel * c_in * c_out) as u64,
            LayerOp::Linear { d_in, d_out } => (d_in * d_out) as u64,
            LayerOp::BatchNorm { .. } => 0,
        })
        .sum()
}

/// Values one example's forward pass writes (every conv, BN and linear
/// output; ReLUs and additions are of the same order): with their gradients
/// and the activations' copies, training holds a few times this per example.
/// Used to refuse a batch that cannot fit before allocating it.
pub fn activation_floats(spec: &ModelSpec) -> u64 {
    spec.layers()
        .iter()
        .map(|layer| {
            let hw = (layer.out_hw as u64).saturating_mul(layer.out_hw as u64);
            let channels = match layer.op {
                LayerOp::Conv { c_out, .. } => c_out,
                LayerOp::BatchNorm { channels } => channels,
                LayerOp::Linear { d_out, .. } => d_out,
            };
            (channels as u64).saturating_mul(hw)
        })
        .fold(0u64, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::Shortcut;
    use crate::model::zoo::ModelOptions;

    fn counted(name: &str, shortcut: Shortcut) -> ModelCount {
        count(
            &ModelSpec::named(
                name,
                &ModelOptions {
                    shortcut,
                    ..ModelOptions::default()
                },
            )
            .unwrap(),
        )
    }

    /// The dense sizes the pruning papers quote (HRank's README, He et al.).
    #[test]
    fn cifar_models_match_the_published_sizes() {
        let r56 = counted("resnet56", Shortcut::A);
        assert!(
            (845_000..=860_000).contains(&r56.params),
            "resnet56 params {}",
            r56.params
        );
        assert!(
            (125_000_000..=127_000_000).contains(&r56.macs),
            "resnet56 MACs {}",
            r56.macs
        );
        let r20 = counted("resnet20", Shortcut::A);
        assert!(
            (268_000..=275_000).contains(&r20.params),
            "resnet20 params {}",
            r20.params
        );
        assert!(
            (40_000_000..=42_000_000).contains(&r20.macs),
            "resnet20 MACs {}",
            r20.macs
        );
        let r110 = counted("resnet110", Shortcut::A);
        assert!(
            (1_700_000..=1_740_000).contains(&r110.params),
            "resnet110 params {}",
            r110.params
        );
        assert!(
            (252_000_000..=254_000_000).contains(&r110.macs),
            "resnet110 MACs {}",
            r110.macs
        );
        let vgg = counted("vgg16", Shortcut::A);
        assert!(
            (14_700_000..=14_760_000).contains(&vgg.params),
            "vgg16 params {}",
            vgg.params
        );
        assert!(
            (313_000_000..=313_500_000).contains(&vgg.macs),
            "vgg16 MACs {}",
            vgg.macs
        );
    }

    #[test]
    fn exact_resnet20_arithmetic() {
        // stem 3·16·9·1024; stage 1: 6 convs 16·16·9·1024; stage 2: 16·32·9·256 + 5 × 32·32·9·256;
        // stage 3: 32·64·9·64 + 5 × 64·64·9·64; fc 64·10.
        let macs =
            432 * 1024 + 6 * 2304 * 1024 + (4608 + 5 * 9216) * 256 + (18432 + 5 * 36864) * 64 + 640;
        assert_eq!(counted("resnet20", Shortcut::A).macs, macs);
    }

    #[test]
    fn option_b_adds_the_projections() {
        let a = counted("resnet20", Shortcut::A);
        let b = counted("resnet20", Shortcut::B);
        // Two 1×1 projections with BN: 16→32 at 16×16 and 32→64 at 8×8.
        assert_eq!(b.params - a.params, (16 * 32 + 64) + (32 * 64 + 128));
        assert_eq!(b.macs - a.macs, 16 * 32 * 256 + 32 * 64 * 64);
        assert!(b.layers.iter().any(|l| l.name == "stage2.block0.shortcut"));
    }

    #[test]
    fn layer_names_are_stable_and_totals_add_up() {
        let c = counted("resnet56", Shortcut::A);
        assert!(c.layers.iter().any(|l| l.name == "stage2.block4.conv1"));
        assert_eq!(c.layers.iter().map(|l| l.params).sum::<u64>(), c.params);
        let mlp = count(&ModelSpec::named("mlp", &ModelOptions::default()).unwrap());
        // 2→16→16→10: (2·16+16) + (16·16+16) + (16·10+10).
        assert_eq!(mlp.params, 48 + 272 + 170);
        assert_eq!(mlp.macs, 32 + 256 + 160);
    }
}
