//! The published numbers each reproduction is read against, with where they
//! come from (../shared/papers.md quotes them). A missing figure is `None`,
//! never a guess.

use serde::Serialize;

use super::Seed;

/// One published row: a method's result on its paper's setting.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// Who: the seed paper itself, or a published baseline.
    pub source: &'static str,
    pub setting: &'static str,
    /// Top-1 after pruning, in percent.
    pub accuracy: Option<f64>,
    /// Accuracy minus the paper's own dense model, in points.
    pub delta: Option<f64>,
    /// Shares removed, 0..1.
    pub params_removed: Option<f64>,
    pub flops_removed: Option<f64>,
    /// Measured inference speed-up, where the paper gives one.
    pub speedup: Option<f64>,
    /// Measured training speed-up (S4's Table 4) — never in the inference column.
    pub train_speedup: Option<f64>,
    pub note: &'static str,
}

const NONE: Published = Published {
    source: "",
    setting: "",
    accuracy: None,
    delta: None,
    params_removed: None,
    flops_removed: None,
    speedup: None,
    train_speedup: None,
    note: "",
};

/// The paper's headline row first, then the closest published baselines.
pub fn rows(seed: Seed) -> Vec<Published> {
    let torch_pruning = Published {
        source: "Torch-Pruning (Fang et al. 2023, DepGraph)",
        setting: "ResNet-56, CIFAR-10",
        accuracy: Some(93.77),
        delta: Some(0.24),
        flops_removed: Some(1.0 - 1.0 / 2.13),
        note: "93.53 → 93.77 at 2.13× fewer FLOPs",
        ..NONE
    };
    let polar = Published {
        source: "Polar (Zhuang et al. 2020)",
        setting: "ResNet-56, CIFAR-10",
        accuracy: Some(93.83),
        delta: Some(0.03),
        flops_removed: Some(1.0 - 1.0 / 1.88),
        note: "93.80 → 93.83 at 1.88× fewer FLOPs",
        ..NONE
    };
    let hrank = Published {
        source: "HRank (Lin et al. 2020), its README",
        setting: "ResNet-56, CIFAR-10",
        accuracy: Some(93.17),
        params_removed: Some(0.424),
        flops_removed: Some(0.500),
        note: "0.49M params, 62.72M FLOPs",
        ..NONE
    };
    match seed {
        Seed::S1 => vec![
            Published {
                source: "S1: Zhi et al. (abstract)",
                setting: "ResNets, CIFAR-10/100",
                delta: None,
                params_removed: Some(0.5),
                note: "about 50% of connections removed with < 1 point lost (\"< 1%\"); \
                       a smaller drop than related methods at equal compute",
                ..NONE
            },
            polar,
            torch_pruning,
        ],
        Seed::S2 => vec![Published {
            source: "S2: Chiasserini et al. (abstract)",
            setting: "VGG-16, ImageNet",
            note: "> 35% bandwidth saved against magnitude-only pruning at typical accuracy targets",
            ..NONE
        }],
        Seed::S3 => vec![
            Published {
                source: "S3: Yeom et al. (abstract)",
                setting: "ResNet-56, CIFAR-10",
                accuracy: Some(94.13),
                params_removed: Some(0.459),
                flops_removed: Some(0.404),
                note: "the dense accuracy is not published",
                ..NONE
            },
            hrank,
            torch_pruning,
            polar,
        ],
        Seed::S4 => {
            let mut rows = vec![Published {
                source: "S4: Jordao et al. (Table 4)",
                setting: "ResNet-56, CIFAR-10, 12 blocks at initialisation",
                flops_removed: Some(0.45),
                train_speedup: Some(2.03),
                note: "−51% CO₂, 2.03× faster training; accuracy at least the dense network's \
                       (absolute accuracies not published)",
                ..NONE
            }];
            // Table 2: ResNet-32 tickets at initialisation, Δ vs dense (points).
            for (setting, snip, grasp) in TABLE2 {
                rows.push(Published {
                    source: "S4: Jordao et al. (Table 2), SNIP",
                    setting,
                    delta: Some(snip),
                    ..NONE
                });
                rows.push(Published {
                    source: "S4: Jordao et al. (Table 2), GraSP",
                    setting,
                    delta: Some(grasp),
                    ..NONE
                });
            }
            rows
        }
    }
}

/// S4's Table 2 (ResNet-32, p blocks removed at initialisation): the
/// ticket's accuracy minus the dense network's, SNIP then GraSP.
const TABLE2: [(&str, f64, f64); 5] = [
    ("ResNet-32, CIFAR-10, blocks=1", 0.08, 0.40),
    ("ResNet-32, CIFAR-10, blocks=2", 0.00, 0.72),
    ("ResNet-32, CIFAR-10, blocks=3", -0.50, 0.34),
    ("ResNet-32, CIFAR-10, blocks=4", -0.53, 0.41),
    ("ResNet-32, CIFAR-10, blocks=5", -1.00, 0.12),
];

/// The claim a reproduction is judged against, in one line.
pub fn claim(seed: Seed) -> &'static str {
    match seed {
        Seed::S1 => "about 50% of the parameters removed for < 1 point of accuracy, in one pass",
        Seed::S2 => {
            "> 35% fewer bytes to ship than magnitude-only pruning at the same accuracy target"
        }
        Seed::S3 => "−40.4% FLOPs, −45.9% parameters at 94.13% (ResNet-56)",
        Seed::S4 => {
            "12 blocks removed at initialisation: −45% FLOPs, 2.03× faster training, accuracy ≥ dense"
        }
    }
}
