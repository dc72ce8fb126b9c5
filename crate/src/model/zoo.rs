//! The model zoo: the named architectures the CLI, configs and the page build
//! (`mlp`, `resmlp`, `cnn`, `vgg16`, the CIFAR ResNets), the options they take,
//! and the bounds every spec is checked against before anything is allocated.

use serde::{Deserialize, Serialize};

use super::spec::*;
use crate::base::error::{Error, Result};

/// The model names the CLI, configs and the page accept.
pub const MODEL_NAMES: &[&str] = &[
    "mlp",
    "resmlp",
    "cnn",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "vgg16",
];

/// Models that take 2-D points rather than images.
pub const POINT_MODELS: &[&str] = &["mlp", "resmlp"];

/// Options a named model can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelOptions {
    pub classes: usize,
    /// MLP hidden widths.
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// MLP initialisation.
    pub init: Init,
    pub shortcut: Shortcut,
    /// MLP input size (2 for toy data).
    pub inputs: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            classes: 10,
            hidden: vec![16, 16],
            activation: Activation::Relu,
            init: Init::Default,
            shortcut: Shortcut::A,
            inputs: 2,
        }
    }
}

fn plain_layers(widths: &[usize]) -> Vec<PlainLayer> {
    widths
        .iter()
        .map(|&w| {
            if w == 0 {
                PlainLayer::Pool
            } else {
                PlainLayer::Conv(w)
            }
        })
        .collect()
}

impl ModelSpec {
    /// The dense architecture called `name`.
    pub fn named(name: &str, options: &ModelOptions) -> Result<Self> {
        let classes = options.classes;
        if classes < 2 {
            return Err(Error::config(
                "classes",
                classes,
                "a classifier needs at least 2",
            ));
        }
        let spec = match name {
            "mlp" => {
                // No hidden layer is allowed: softmax regression.
                if options.hidden.contains(&0) {
                    return Err(Error::config(
                        "hidden",
                        format!("{:?}", options.hidden),
                        "give positive widths, e.g. 16,16 (or none, for a linear classifier)",
                    ));
                }
                ModelSpec::Mlp(MlpSpec {
                    inputs: options.inputs,
                    hidden: options.hidden.clone(),
                    classes,
                    activation: options.activation,
                    init: options.init,
                })
            }
            "resmlp" => {
                let width = options.hidden.first().copied().unwrap_or(0);
                if width == 0 || options.hidden.iter().any(|&w| w != width) {
                    return Err(Error::config(
                        "hidden",
                        format!("{:?}", options.hidden),
                        "resmlp takes one width per residual block, all equal, e.g. 16,16,16",
                    ));
                }
                ModelSpec::Resnet(ResNetSpec {
                    name: "resmlp".into(),
                    in_channels: options.inputs,
                    image_size: 1,
                    stem: width,
                    stages: vec![StageSpec {
                        width,
                        stride: 1,
                        blocks: (0..options.hidden.len())
                            .map(|index| BlockSpec { index, mid: width })
                            .collect(),
                        shortcut_map: None,
                    }],
                    shortcut: Shortcut::A,
                    classes,
                    kernel: 1,
                    input: None,
                })
            }
            "cnn" => ModelSpec::Plain(PlainSpec {
                name: "cnn".into(),
                in_channels: 3,
                image_size: 32,
                layers: plain_layers(&[16, 0, 32, 0, 64, 0]),
                classes,
                input: None,
            }),
            "vgg16" => ModelSpec::Plain(PlainSpec {
                name: "vgg16".into(),
                in_channels: 3,
                image_size: 32,
                layers: plain_layers(&[
                    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
                ]),
                classes,
                input: None,
            }),
            _ => {
                // One list of accepted names: what parses is what `MODEL_NAMES` lists.
                let depth: usize = Some(name)
                    .filter(|n| MODEL_NAMES.contains(n))
                    .and_then(|n| n.strip_prefix("resnet"))
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| {
                        Error::config(
                            "model",
                            name,
                            format!("choose one of {}", MODEL_NAMES.join(", ")),
                        )
                    })?;
                ModelSpec::Resnet(ResNetSpec::cifar(name, depth, options.shortcut, classes))
            }
        };
        // Bounded here too: `info` and `bench` count or build straight from it.
        spec.check_size()?;
        Ok(spec)
    }
}

impl ResNetSpec {
    /// The CIFAR ResNet of depth 6n+2: three stages of n blocks, widths 16-32-64.
    pub fn cifar(name: &str, depth: usize, shortcut: Shortcut, classes: usize) -> Self {
        let n = (depth - 2) / 6;
        let stage = |width, stride| StageSpec {
            width,
            stride,
            blocks: (0..n)
                .map(|index| BlockSpec { index, mid: width })
                .collect(),
            shortcut_map: None,
        };
        ResNetSpec {
            name: name.into(),
            in_channels: 3,
            image_size: 32,
            stem: 16,
            stages: vec![stage(16, 1), stage(32, 2), stage(64, 2)],
            shortcut,
            classes,
            kernel: 3,
            input: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_model_builds_and_nothing_else_does() {
        let options = ModelOptions::default();
        for name in MODEL_NAMES {
            assert!(
                ModelSpec::named(name, &options).is_ok(),
                "{name} is listed but does not build"
            );
        }
        for name in ["resnet44x", "resnet45", "resnet", "vgg11"] {
            assert!(
                ModelSpec::named(name, &options).is_err(),
                "{name} builds but is not listed"
            );
        }
    }
}
