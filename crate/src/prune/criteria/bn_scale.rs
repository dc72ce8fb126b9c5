//! BN scales as scores: each prunable channel's `|γ|` (network slimming's
//! and Polar's ranking, and a member of Torch-Pruning's group magnitude).

use crate::base::error::{Error, Result};
use crate::base::host;
use crate::model::{Model, Net};
use crate::prune::pruner::select::UnitScores;

/// The BN scale of each layer in `layers` that has one: `(layer, parameter
/// path, |γ|)`, in forward order.
pub async fn unit_scales(
    model: &Model,
    layers: &[String],
) -> Result<Vec<(String, String, Vec<f32>)>> {
    let bn = |layer: String, path: String, c: &crate::model::layers::ConvBn| {
        (layer, format!("{path}.bn.gamma"), c.bn.gamma.val())
    };
    let scales: Vec<(String, String, burn::tensor::Tensor<1>)> = match &model.net {
        Net::Plain(p) => p
            .convs
            .iter()
            .enumerate()
            .map(|(k, c)| bn(format!("conv{}", k + 1), format!("net.Plain.convs.{k}"), c))
            .collect(),
        Net::Resnet(r) => {
            let mut out = vec![bn("stem".into(), "net.Resnet.stem".into(), &r.stem)];
            for (k, b) in r.blocks.iter().enumerate() {
                let base = format!("net.Resnet.blocks.{k}");
                out.push(bn(
                    format!("{}.conv1", b.name),
                    format!("{base}.conv1"),
                    &b.conv1,
                ));
                out.push(bn(
                    format!("{}.conv2", b.name),
                    format!("{base}.conv2"),
                    &b.conv2,
                ));
                if let Some(p) = &b.projection {
                    out.push(bn(
                        format!("{}.shortcut", b.name),
                        format!("{base}.projection"),
                        p,
                    ));
                }
            }
            out
        }
        Net::Mlp(_) => {
            return Err(Error::config(
                "method",
                // The method whose ranking this is first (Polar and group
                // magnitude read the same scales).
                "slimming",
                format!(
                    "it ranks BN scales; {} has no batch norm (use a CNN or a ResNet)",
                    model.spec.name()
                ),
            ));
        }
    };
    let mut out = Vec::new();
    for (layer, path, gamma) in scales {
        if layers.contains(&layer) {
            out.push((layer, path, host::floats(gamma.abs()).await?));
        }
    }
    Ok(out)
}

pub async fn scores(model: &Model, layers: &[String]) -> Result<UnitScores> {
    Ok(unit_scales(model, layers)
        .await?
        .into_iter()
        .map(|(layer, _, s)| (layer, s))
        .collect())
}
