//! `prunelab reproduce`: each seed paper's headline experiment, shipped as a
//! sweep file (`s1.toml` … `s4.toml` beside this file, written at the
//! paper's full schedule), scaled to a budget that changes only epochs and
//! data, and a report that puts the paper's published rows beside ours.
//!
//! The scaled experiment is an ordinary sweep: `--shard`, Slurm and
//! Kubernetes arrays, resuming by re-running, and `sweep --collect` work on
//! it unchanged (docs/results.md, "Reproducing the seed papers").

pub mod published;
mod render;
pub mod report;
mod rows;
mod verdict;

use serde::{Deserialize, Serialize};

use crate::base::device::DeviceChoice;
use crate::base::error::{Error, Result};
use crate::runs::sweep::SweepConfig;

/// One of the four founding papers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seed {
    S1,
    S2,
    S3,
    S4,
}

impl Seed {
    pub const ALL: [Seed; 4] = [Seed::S1, Seed::S2, Seed::S3, Seed::S4];

    pub fn name(self) -> &'static str {
        match self {
            Seed::S1 => "s1",
            Seed::S2 => "s2",
            Seed::S3 => "s3",
            Seed::S4 => "s4",
        }
    }

    /// The experiment at the paper's schedule, as shipped.
    pub fn template(self) -> &'static str {
        match self {
            Seed::S1 => include_str!("s1.toml"),
            Seed::S2 => include_str!("s2.toml"),
            Seed::S3 => include_str!("s3.toml"),
            Seed::S4 => include_str!("s4.toml"),
        }
    }

    /// The method whose paper this is (the other rows are its baselines).
    pub fn method(self) -> &'static str {
        match self {
            Seed::S1 => "polarization",
            Seed::S2 => "flexrel",
            Seed::S3 => "energy",
            Seed::S4 => "lottery",
        }
    }
}

impl std::str::FromStr for Seed {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Seed::ALL
            .into_iter()
            .find(|seed| seed.name() == s.to_ascii_lowercase())
            .ok_or_else(|| Error::config("seed paper", s, "choose one of s1, s2, s3, s4"))
    }
}

/// How much compute a reproduction gets. Only epochs and data change; the
/// model, the methods and their targets stay the paper's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    /// A minute or two on a CPU (38–104 s a seed paper here): for the test suite.
    Smoke,
    /// A 2-core CPU: 2,000 images, 15 epochs (S4's rows took ~16 min each).
    Cpu,
    /// A 2-core CPU from a trained network (S2, S3): the public pretrained
    /// ResNet-56, all of CIFAR-10, the full test set, every row fine-tuned
    /// with one short recipe (a 12-epoch fine-tune: 5.6–10.8 min an epoch
    /// measured here, with builds sharing the cores).
    Pretrained,
    /// All of the data, a short schedule: minutes per row on a GPU.
    Quick,
    /// The paper's schedule.
    Full,
}

impl std::str::FromStr for Budget {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "smoke" => Ok(Budget::Smoke),
            "cpu" => Ok(Budget::Cpu),
            "pretrained" => Ok(Budget::Pretrained),
            "quick" => Ok(Budget::Quick),
            "full" => Ok(Budget::Full),
            _ => Err(Error::config(
                "--budget",
                s,
                "choose one of smoke, cpu, pretrained, quick, full",
            )),
        }
    }
}

/// What a budget does to the shipped schedule: caps on the epochs (the
/// milestones scale with them) and on the data. `None`: as shipped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scale {
    pub epochs: Option<usize>,
    pub finetune_epochs: Option<usize>,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    /// Batches the importance scores see.
    pub score_batches: Option<usize>,
    /// Examples FlexRel sums its relevance over.
    pub relevance_samples: Option<usize>,
    pub device: DeviceChoice,
    /// Seeds when `--seeds` is not given.
    pub seeds: usize,
}

impl Budget {
    pub fn name(self) -> &'static str {
        match self {
            Budget::Smoke => "smoke",
            Budget::Cpu => "cpu",
            Budget::Pretrained => "pretrained",
            Budget::Quick => "quick",
            Budget::Full => "full",
        }
    }

    pub fn scale(self) -> Scale {
        let none = Scale {
            epochs: None,
            finetune_epochs: None,
            train_subset: None,
            test_subset: None,
            score_batches: None,
            relevance_samples: None,
            device: DeviceChoice::Auto,
            seeds: 3,
        };
        match self {
            Budget::Smoke => Scale {
                epochs: Some(1),
                finetune_epochs: Some(1),
                train_subset: Some(64),
                test_subset: Some(32),
                score_batches: Some(1),
                relevance_samples: Some(32),
                device: DeviceChoice::Cpu,
                seeds: 1,
            },
            Budget::Cpu => Scale {
                epochs: Some(15),
                finetune_epochs: Some(5),
                train_subset: Some(2000),
                test_subset: Some(1000),
                score_batches: Some(4),
                relevance_samples: Some(256),
                device: DeviceChoice::Cpu,
                seeds: 3,
            },
            // Its one recipe is set in `plan` (`PRETRAINED_FINETUNE`).
            Budget::Pretrained => Scale {
                device: DeviceChoice::Cpu,
                seeds: 2,
                ..none
            },
            Budget::Quick => Scale {
                epochs: Some(30),
                finetune_epochs: Some(10),
                ..none
            },
            Budget::Full => none,
        }
    }
}

/// The one fine-tuning recipe of the `pretrained` budget, for every row:
/// SGD (momentum 0.9, weight decay 5e-4, batch 128) from `lr` down a cosine
/// to 0 over `epochs` epochs of the 45,000 training images. Meant as about
/// an hour a row on two cores; the one row measured so far took 1 h 52 min
/// with builds sharing the cores (docs/results.md); the
/// papers fine-tune 40 (S3's code), 200 (S3's paper) or 20 (S2) epochs.
pub struct FinetuneRecipe {
    pub epochs: usize,
    pub lr: f64,
}

pub const PRETRAINED_FINETUNE: FinetuneRecipe = FinetuneRecipe {
    epochs: 12,
    lr: 0.01,
};

/// The trained network a `pretrained` reproduction starts from, unless
/// `--from` names another.
pub const PRETRAINED_START: &str = "resnet56-cifar10";

/// Where the CIFAR-10 files are, when the caller does not say: the
/// `PRUNELAB_CIFAR10` variable, else the shipped files' own path.
pub const DATA_VARIABLE: &str = "PRUNELAB_CIFAR10";

/// The seed's experiment at `budget`: the sweep every shard runs.
pub fn plan(
    seed: Seed,
    budget: Budget,
    seeds: Option<usize>,
    data_dir: Option<&str>,
    device: Option<DeviceChoice>,
    from: Option<&str>,
) -> Result<SweepConfig> {
    let origin = format!("the shipped {} experiment", seed.name());
    let mut config = SweepConfig::from_toml(seed.template(), &origin)?;
    let scale = budget.scale();
    let n = seeds.unwrap_or(scale.seeds);
    if !(1..=100).contains(&n) {
        return Err(Error::config("--seeds", n, "1 to 100"));
    }
    config.name = format!("{}-{}", config.name, budget.name());
    config.seeds = (1..=n as u64).collect();
    let base = &mut config.base;
    base.device = device.unwrap_or(scale.device);
    if let Some(dir) = data_dir {
        base.data.dir = Some(dir.into());
    }
    let from = match (budget, from) {
        (Budget::Pretrained, from) => Some(from.unwrap_or(PRETRAINED_START)),
        (_, from) => from,
    };
    if let Some(from) = from {
        start_from(seed, from, &mut config)?;
    }
    let base = &mut config.base;
    if let Some(cap) = scale.epochs {
        let full = base.train.epochs;
        let epochs = cap.min(full);
        // The milestones keep their place in the schedule.
        let mut milestones: Vec<usize> = base
            .train
            .milestones
            .iter()
            .map(|m| (m * epochs).div_ceil(full.max(1)))
            .filter(|&m| m > 0 && m < epochs)
            .collect();
        milestones.dedup();
        base.train.epochs = epochs;
        base.train.milestones = milestones;
    }
    if let (Some(cap), Some(f)) = (scale.finetune_epochs, base.prune.options.finetune_epochs) {
        base.prune.options.finetune_epochs = Some(cap.min(f));
    }
    if budget == Budget::Pretrained {
        // One recipe for every row: what `[prune]` fine-tunes with, on the
        // cosine the trained network's own schedule would end on.
        base.prune.options.finetune_epochs = Some(PRETRAINED_FINETUNE.epochs);
        base.prune.options.finetune_lr = Some(PRETRAINED_FINETUNE.lr);
        base.prune.options.finetune_recipe = crate::prune::options::Recipe::Shared;
        base.train.schedule = crate::train::schedule::Schedule::Cosine;
        base.train.milestones.clear();
        base.train.warmup_epochs = 0;
        base.train.epochs = PRETRAINED_FINETUNE.epochs;
    }
    if let Some(n) = scale.train_subset {
        base.data.train_subset = Some(n);
    }
    if let Some(n) = scale.test_subset {
        base.data.test_subset = Some(n);
    }
    if let Some(n) = scale.score_batches {
        base.prune.options.score_batches = Some(n);
    }
    if let Some(n) = scale.relevance_samples {
        for m in &mut config.methods {
            if m.method == "flexrel" {
                let options = m.options.as_object_mut().map(|o| o.entry("flexrel"));
                if let Some(serde_json::Value::Object(f)) =
                    options.map(|e| e.or_insert_with(|| serde_json::json!({})))
                {
                    f.insert("samples".into(), n.into());
                }
            }
        }
    }
    // Checked as a file would be: the runs, the targets, the data.
    SweepConfig::from_toml(&sweep_toml(&config)?, &origin)
}

/// Points a seed's experiment at a trained network: the dense stage is read
/// from `from`, not trained. Only the papers that prune a trained model (S2,
/// S3) start there; S1's one pass and S4's lottery start at initialisation.
fn start_from(seed: Seed, from: &str, config: &mut SweepConfig) -> Result<()> {
    if matches!(seed, Seed::S1 | Seed::S4) {
        return Err(Error::config(
            "--from",
            from,
            format!(
                "{} prunes {} and trains from scratch, so it cannot start from a trained \
                 network: use --budget cpu (or quick, full)",
                seed.name(),
                match seed {
                    Seed::S1 => "in one pass while training",
                    _ => "at initialisation",
                }
            ),
        ));
    }
    let base = &mut config.base;
    if let Some(c) = crate::interop::pretrained::by_name(from) {
        // The published network, on its own input normalisation.
        base.model.name = c.model.into();
        base.model.normalize = Some(crate::model::config::NormalizeArg(c.input));
    }
    base.model.from = Some(from.into());
    // Every entry prunes that network (S4's per-entry architectures do not apply).
    for m in &mut config.methods {
        m.model = None;
    }
    Ok(())
}

/// `config` as a sweep file (TOML has no null: unset values are left out).
pub fn sweep_toml(config: &SweepConfig) -> Result<String> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                o.retain(|_, v| !v.is_null());
                o.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(config).map_err(|e| Error::Execution(e.to_string()))?;
    strip(&mut value);
    toml::to_string(&value).map_err(|e| Error::Execution(e.to_string()))
}
