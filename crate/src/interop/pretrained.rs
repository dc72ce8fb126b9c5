//! The public pretrained CIFAR-10 ResNets (Yerlan Idelbayev's "Proper ResNet
//! Implementation for CIFAR10/CIFAR100 in PyTorch",
//! `akamaster/pytorch_resnet_cifar10`, BSD-2-Clause): where each lives, the
//! SHA-256 that pins its bytes, and the accuracy its README publishes. The
//! dense starting point of much of the pruning literature; prunelab reads
//! the files as they are (`interop`), and `prunelab data fetch
//! resnet56-cifar10` downloads one. Their licence travels with every copy
//! ([`LICENSE`]).

use crate::data::augment::Normalization;

/// Where the upstream repository serves the files.
pub const BASE_URL: &str =
    "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/";

/// The upstream licence, written beside every fetched file.
pub const LICENSE: &str = include_str!("pretrained-license.txt");

/// One published checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checkpoint {
    /// What `data fetch` takes: `resnet56-cifar10`.
    pub name: &'static str,
    /// The zoo model it loads as.
    pub model: &'static str,
    /// The upstream file name (the model and its hash's first 8 hex digits).
    pub file: &'static str,
    pub sha256: &'static str,
    /// Top-1 on the CIFAR-10 test set, as published (with `input`).
    pub accuracy: f32,
    /// The input normalisation it was trained with (upstream's
    /// `transforms.Normalize`): ImageNet's mean/std for all of them.
    pub input: Normalization,
}

/// Every checkpoint whose bytes are pinned. ResNet-110's (`1d1ed7c2`) and
/// ResNet-1202's are upstream too, but their bytes could not be read to pin
/// a full hash here: fetch them with `--url` and `--sha256`.
pub const CHECKPOINTS: &[Checkpoint] = &[
    Checkpoint {
        name: "resnet20-cifar10",
        model: "resnet20",
        file: "resnet20-12fca82f.th",
        sha256: "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8",
        input: Normalization::IMAGENET,
        accuracy: 0.9173,
    },
    Checkpoint {
        name: "resnet32-cifar10",
        model: "resnet32",
        file: "resnet32-d509ac18.th",
        sha256: "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850",
        input: Normalization::IMAGENET,
        accuracy: 0.9263,
    },
    Checkpoint {
        name: "resnet44-cifar10",
        model: "resnet44",
        file: "resnet44-014dd654.th",
        sha256: "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4",
        input: Normalization::IMAGENET,
        accuracy: 0.9310,
    },
    Checkpoint {
        name: "resnet56-cifar10",
        model: "resnet56",
        file: "resnet56-4bfd9763.th",
        sha256: "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367",
        input: Normalization::IMAGENET,
        accuracy: 0.9339,
    },
];

/// The checkpoint called `name` (`resnet56-cifar10`).
pub fn by_name(name: &str) -> Option<&'static Checkpoint> {
    CHECKPOINTS.iter().find(|c| c.name == name)
}

/// The published checkpoint whose bytes these are, if any: how a `.th`
/// file, which records nothing but tensors, is known to want ImageNet's
/// input normalisation.
pub fn recognise(bytes: &[u8]) -> Option<&'static Checkpoint> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    CHECKPOINTS.iter().find(|c| c.sha256 == hex)
}

/// Where a comparison's `[model] from` names a file: a published
/// checkpoint's name is looked up where `data fetch` puts it —
/// `$PRUNELAB_DATA/pretrained/`, `./data/pretrained/`, and
/// `pretrained/` beside the CIFAR folder `data_dir` — else `from` is a path.
#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
pub fn locate(
    from: &str,
    data_dir: Option<&str>,
) -> crate::base::error::Result<std::path::PathBuf> {
    use std::path::{Path, PathBuf};
    let Some(c) = by_name(from) else {
        return Ok(PathBuf::from(from));
    };
    let mut places: Vec<PathBuf> = Vec::new();
    if let Some(root) = std::env::var_os("PRUNELAB_DATA") {
        places.push(Path::new(&root).join("pretrained"));
    }
    places.push(PathBuf::from("data/pretrained"));
    if let Some(parent) = data_dir.and_then(|d| Path::new(d).parent()) {
        places.push(parent.join("pretrained"));
    }
    let candidates: Vec<PathBuf> = places.iter().map(|p| p.join(c.file)).collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            crate::base::error::Error::config(
                "from",
                from,
                format!(
                    "no {} in {}: run `prunelab data fetch {}` (or name the file's path)",
                    c.file,
                    looked.join(", "),
                    c.name
                ),
            )
        })
}

/// Every name, for messages.
pub fn names() -> Vec<&'static str> {
    CHECKPOINTS.iter().map(|c| c.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_file_is_named_for_its_model_and_its_hash_as_upstream_names_them() {
        for c in CHECKPOINTS {
            assert_eq!(
                c.file,
                format!("{}-{}.th", c.model, &c.sha256[..8]),
                "{}",
                c.name
            );
            assert_eq!(c.name, format!("{}-cifar10", c.model));
            assert!(c.sha256.len() == 64 && c.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(by_name(c.name), Some(c));
        }
        assert!(LICENSE.contains("Yerlan Idelbayev"));
        assert_eq!(by_name("resnet56"), None);
    }
}
