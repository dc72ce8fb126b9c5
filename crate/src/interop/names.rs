//! The key mapping between prunelab's module paths and PyTorch's
//! `state_dict` names, for every model in the zoo (docs/interop.md has the
//! table). One function, [`table`], lists each tensor's two names; import
//! reads through it and export writes through it, so the two cannot drift.
//!
//! - CIFAR ResNets (and `resmlp`): the common CIFAR naming (`conv1`, `bn1`,
//!   `layer{s}.{b}.conv1/bn1/conv2/bn2`, option B as `shortcut.0/1`, `linear`;
//!   Yerlan Idelbayev's `resnet_cifar10`) or torchvision's (`downsample.0/1`,
//!   `fc`). Import takes whichever names the file uses; export writes the
//!   CIFAR naming unless asked otherwise.
//! - Plain nets (the small CNN, VGG-16-BN): the CIFAR VGG naming
//!   (`features.{i}` over conv, BN, ReLU and pool modules, `classifier`).
//! - MLPs: an `nn.Sequential` of linear layers and activations (`0`, `2`, …).
//!
//! Layouts: conv weights are `[out, in, k, k]` on both sides; a linear weight
//! is `[out, in]` in PyTorch and `[in, out]` in burn (transposed here).
//! BatchNorm's `weight`/`bias` are burn's `gamma`/`beta`.

use crate::model::resnet;
use crate::model::spec::{ModelSpec, PlainLayer};

/// One tensor under its two names.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// prunelab's module path (`net.Resnet.blocks.3.conv1.conv.weight`).
    pub ours: String,
    /// The PyTorch `state_dict` name (`layer2.0.conv1.weight`).
    pub theirs: String,
    /// A linear weight: PyTorch `[out, in]`, burn `[in, out]`.
    pub transposed: bool,
}

/// A conv whose PyTorch twin may have a bias that prunelab's bias-free conv
/// lacks: the BN right after it absorbs it exactly (`running_mean -= bias`,
/// in eval and in training, where batch statistics cancel a constant).
#[derive(Debug, Clone, PartialEq)]
pub struct FoldableBias {
    /// `features.0.bias`.
    pub theirs: String,
    /// The following BN's running mean, prunelab's path.
    pub running_mean: String,
}

/// A BatchNorm's `num_batches_tracked` counter: PyTorch's `load_state_dict`
/// wants it (strict mode), prunelab has no use for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    pub theirs: String,
}

/// How a file names the parts that differ between conventions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    /// The classifier: `linear` (CIFAR ResNets), `fc` (torchvision) or
    /// `classifier` (VGG).
    pub classifier: String,
    /// Option-B projections: `shortcut` or `downsample`.
    pub projection: String,
}

impl Naming {
    /// What export writes for `spec`.
    pub fn default_for(spec: &ModelSpec) -> Naming {
        match spec {
            ModelSpec::Plain(_) => Naming::new("classifier", "shortcut"),
            _ => Naming::new("linear", "shortcut"),
        }
    }

    pub fn torchvision() -> Naming {
        Naming::new("fc", "downsample")
    }

    fn new(classifier: &str, projection: &str) -> Naming {
        Naming {
            classifier: classifier.into(),
            projection: projection.into(),
        }
    }

    /// The naming a file's keys use, whatever prefix they carry; what is
    /// absent keeps export's default.
    pub fn detect<'a>(spec: &ModelSpec, keys: impl Iterator<Item = &'a str> + Clone) -> Naming {
        let mut naming = Naming::default_for(spec);
        // A whole dotted segment, under any prefix (`module.`, `_orig_mod.`,
        // `backbone.`): `…fc.weight`, not `…conv_fc.weight`.
        let has = |name: &str| {
            keys.clone()
                .any(|k| k == name || k.ends_with(&format!(".{name}")))
        };
        for classifier in ["linear", "fc", "classifier"] {
            if has(&format!("{classifier}.weight")) {
                naming.classifier = classifier.into();
                break;
            }
        }
        if keys.clone().any(|k| k.contains("downsample.")) {
            naming.projection = "downsample".into();
        }
        naming
    }
}

/// Everything a model's `state_dict` holds under `naming`, in forward order.
pub struct Table {
    pub keys: Vec<Key>,
    pub biases: Vec<FoldableBias>,
    pub counters: Vec<Counter>,
}

impl Table {
    fn conv_bn(&mut self, ours: &str, conv: &str, bn: &str) {
        self.keys.push(Key {
            ours: format!("{ours}.conv.weight"),
            theirs: format!("{conv}.weight"),
            transposed: false,
        });
        self.biases.push(FoldableBias {
            theirs: format!("{conv}.bias"),
            running_mean: format!("{ours}.bn.running_mean"),
        });
        for (o, t) in [
            ("gamma", "weight"),
            ("beta", "bias"),
            ("running_mean", "running_mean"),
            ("running_var", "running_var"),
        ] {
            self.keys.push(Key {
                ours: format!("{ours}.bn.{o}"),
                theirs: format!("{bn}.{t}"),
                transposed: false,
            });
        }
        self.counters.push(Counter {
            theirs: format!("{bn}.num_batches_tracked"),
        });
    }

    fn linear(&mut self, ours: &str, theirs: &str) {
        self.keys.push(Key {
            ours: format!("{ours}.weight"),
            theirs: format!("{theirs}.weight"),
            transposed: true,
        });
        self.keys.push(Key {
            ours: format!("{ours}.bias"),
            theirs: format!("{theirs}.bias"),
            transposed: false,
        });
    }

    /// The entry whose PyTorch name is `theirs`.
    pub fn by_theirs(&self, theirs: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.theirs == theirs)
    }
}

/// The mapping for `spec` under `naming`.
pub fn table(spec: &ModelSpec, naming: &Naming) -> Table {
    let mut t = Table {
        keys: Vec::new(),
        biases: Vec::new(),
        counters: Vec::new(),
    };
    match spec {
        ModelSpec::Mlp(m) => {
            for i in 0..m.hidden.len() {
                t.linear(&format!("net.Mlp.hidden.{i}"), &(2 * i).to_string());
            }
            t.linear("net.Mlp.out", &(2 * m.hidden.len()).to_string());
        }
        ModelSpec::Plain(p) => {
            // `features` as the CIFAR VGG builds it: Conv2d, BatchNorm2d, ReLU
            // per conv, MaxPool2d per pool.
            let (mut index, mut conv) = (0, 0);
            for layer in &p.layers {
                match layer {
                    PlainLayer::Conv(_) => {
                        t.conv_bn(
                            &format!("net.Plain.convs.{conv}"),
                            &format!("features.{index}"),
                            &format!("features.{}", index + 1),
                        );
                        conv += 1;
                        index += 3;
                    }
                    PlainLayer::Pool => index += 1,
                }
            }
            t.linear("net.Plain.fc", &naming.classifier);
        }
        ModelSpec::Resnet(r) => {
            t.conv_bn("net.Resnet.stem", "conv1", "bn1");
            let (_, layout) = resnet::layout(r);
            for (k, (block, (stage, spec))) in layout.iter().zip(r.blocks()).enumerate() {
                let ours = format!("net.Resnet.blocks.{k}");
                let theirs = format!("layer{stage}.{}", spec.index);
                t.conv_bn(
                    &format!("{ours}.conv1"),
                    &format!("{theirs}.conv1"),
                    &format!("{theirs}.bn1"),
                );
                t.conv_bn(
                    &format!("{ours}.conv2"),
                    &format!("{theirs}.conv2"),
                    &format!("{theirs}.bn2"),
                );
                if block.projection {
                    let p = &naming.projection;
                    t.conv_bn(
                        &format!("{ours}.projection"),
                        &format!("{theirs}.{p}.0"),
                        &format!("{theirs}.{p}.1"),
                    );
                }
            }
            t.linear("net.Resnet.fc", &naming.classifier);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::Model;
    use crate::model::spec::Shortcut;
    use crate::model::zoo::{MODEL_NAMES, ModelOptions};

    /// Every tensor of every zoo model has exactly one PyTorch name, under
    /// both namings, and no two tensors share one.
    #[test]
    fn the_table_covers_every_tensor_of_every_model_once() {
        let device = burn::tensor::Device::flex();
        for name in MODEL_NAMES
            .iter()
            .filter(|n| **n != "vgg16" && **n != "resnet110")
        {
            for shortcut in [Shortcut::A, Shortcut::B] {
                let options = ModelOptions {
                    shortcut,
                    hidden: if *name == "resmlp" {
                        vec![8; 3]
                    } else {
                        vec![8, 6]
                    },
                    ..ModelOptions::default()
                };
                let spec = ModelSpec::named(name, &options).unwrap();
                let model = Model::new(&spec, &device);
                let ours: BTreeSet<String> = crate::io::pack::shapes(&model).into_keys().collect();
                for naming in [Naming::default_for(&spec), Naming::torchvision()] {
                    let t = table(&spec, &naming);
                    let mapped: BTreeSet<String> = t.keys.iter().map(|k| k.ours.clone()).collect();
                    assert_eq!(
                        mapped, ours,
                        "{name} {shortcut:?}: tensors without a PyTorch name"
                    );
                    let theirs: BTreeSet<&str> = t.keys.iter().map(|k| k.theirs.as_str()).collect();
                    assert_eq!(
                        theirs.len(),
                        t.keys.len(),
                        "{name}: two tensors share a name"
                    );
                }
            }
        }
    }

    #[test]
    fn names_follow_the_pytorch_conventions() {
        let b = ModelSpec::named(
            "resnet20",
            &ModelOptions {
                shortcut: Shortcut::B,
                ..ModelOptions::default()
            },
        )
        .unwrap();
        let cifar = table(&b, &Naming::default_for(&b));
        let key = |t: &Table, ours: &str| {
            t.keys
                .iter()
                .find(|k| k.ours == ours)
                .map(|k| k.theirs.clone())
                .unwrap()
        };
        assert_eq!(key(&cifar, "net.Resnet.stem.bn.gamma"), "bn1.weight");
        assert_eq!(
            key(&cifar, "net.Resnet.blocks.4.conv2.bn.running_var"),
            "layer2.1.bn2.running_var"
        );
        assert_eq!(
            key(&cifar, "net.Resnet.blocks.3.projection.conv.weight"),
            "layer2.0.shortcut.0.weight"
        );
        assert_eq!(key(&cifar, "net.Resnet.fc.weight"), "linear.weight");
        let tv = table(&b, &Naming::torchvision());
        assert_eq!(
            key(&tv, "net.Resnet.blocks.6.projection.bn.beta"),
            "layer3.0.downsample.1.bias"
        );
        assert_eq!(key(&tv, "net.Resnet.fc.bias"), "fc.bias");
        let vgg = ModelSpec::named("cnn", &ModelOptions::default()).unwrap();
        let t = table(&vgg, &Naming::default_for(&vgg));
        // conv, bn, relu, pool: the second conv is features.4, its BN features.5.
        assert_eq!(
            key(&t, "net.Plain.convs.1.conv.weight"),
            "features.4.weight"
        );
        assert_eq!(key(&t, "net.Plain.convs.1.bn.beta"), "features.5.bias");
        assert_eq!(key(&t, "net.Plain.fc.weight"), "classifier.weight");
        let mlp = ModelSpec::named("mlp", &ModelOptions::default()).unwrap();
        let t = table(&mlp, &Naming::default_for(&mlp));
        assert_eq!(key(&t, "net.Mlp.hidden.1.weight"), "2.weight");
        assert_eq!(key(&t, "net.Mlp.out.bias"), "4.bias");
        assert!(
            t.keys
                .iter()
                .filter(|k| k.transposed)
                .all(|k| k.theirs.ends_with(".weight"))
        );
    }
}
