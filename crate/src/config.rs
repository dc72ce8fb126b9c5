//! Run configuration: what a `prunelab train` call, a TOML file and the page's
//! URL all describe. Defaults live here and nowhere else; the whole config is
//! saved beside every result.

use serde::{Deserialize, Serialize};

use crate::data::cifar::Variant;
use crate::data::toy::{self, ToySpec};
use crate::data::{DataSource, Split};
use crate::device::DeviceChoice;
use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::model::spec::{Activation, ModelOptions, Shortcut};
use crate::prune::{PruneOptions, Target};
use crate::train::optim::{OptimizerKind, OptimizerSettings};
use crate::train::schedule::Schedule;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    pub seed: u64,
    pub device: DeviceChoice,
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    pub prune: PruneConfig,
}

/// What `prunelab prune` and `prunelab run` do to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneConfig {
    /// A name from `prunelab methods`.
    pub method: String,
    /// `sparsity=F`, `macs=F`, `params=F` or `blocks=N`.
    pub target: String,
    #[serde(flatten)]
    pub options: PruneOptions,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            method: "l1".into(),
            target: "macs=0.5".into(),
            options: PruneOptions::default(),
        }
    }
}

impl PruneConfig {
    pub fn target(&self) -> Result<Target> {
        self.target.parse()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// One of [`crate::model::spec::MODEL_NAMES`].
    pub name: String,
    /// MLP hidden widths.
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// ResNet shortcut where the shape changes: `a` (zero-pad) or `b` (1×1 conv).
    pub shortcut: Shortcut,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    /// A toy problem (`spiral`, `circles`, `xor`, `gaussians`, `moons`),
    /// `cifar10`, `cifar100` or `csv`.
    pub dataset: String,
    /// CIFAR directory in the official binary layout.
    pub dir: Option<String>,
    /// CSV file of `x,y,label` rows.
    pub path: Option<String>,
    pub train_points: usize,
    pub test_points: usize,
    pub noise: f32,
    pub classes: usize,
    /// Share of a CSV file held out for testing.
    pub test_fraction: f32,
    /// Class-balanced subset of the training set.
    pub train_subset: Option<usize>,
    /// Class-balanced subset of the test set.
    pub test_subset: Option<usize>,
    /// Share of each class of the training data held out as the validation
    /// set: what methods select on (FlexRel's factor and δ). The test set is
    /// only reported on.
    pub valid_fraction: f32,
    /// Pad-4 random crop and horizontal flip on training images.
    pub augment: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Epochs at which a multistep schedule multiplies the rate by `gamma`.
    pub milestones: Vec<usize>,
    pub gamma: f64,
    pub eval_batch_size: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 1,
            device: DeviceChoice::Auto,
            model: ModelConfig::default(),
            data: DataConfig::default(),
            train: TrainConfig::default(),
            prune: PruneConfig::default(),
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "mlp".into(),
            hidden: vec![16, 16],
            activation: Activation::Relu,
            shortcut: Shortcut::A,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        let toy = ToySpec::default();
        DataConfig {
            dataset: toy.name,
            dir: None,
            path: None,
            train_points: toy.train,
            test_points: toy.test,
            noise: toy.noise,
            classes: toy.classes,
            test_fraction: 0.3,
            train_subset: None,
            test_subset: None,
            valid_fraction: 0.1,
            augment: true,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 128,
            lr: 0.1,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine,
            milestones: vec![],
            gamma: 0.1,
            eval_batch_size: 500,
        }
    }
}

impl TrainConfig {
    pub fn optimizer_settings(&self) -> OptimizerSettings {
        OptimizerSettings {
            kind: self.optimizer,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            ..OptimizerSettings::default()
        }
    }

    /// The learning rate at `step` of `steps` in `epoch`.
    pub fn lr_at(&self, epoch: usize, step: usize, steps: usize) -> f64 {
        crate::train::schedule::learning_rate(
            &self.schedule,
            self.lr,
            self.epochs,
            &self.milestones,
            self.gamma,
            epoch,
            step,
            steps,
        )
    }
}

impl DataConfig {
    pub fn is_toy(&self) -> bool {
        toy::names().contains(&self.dataset.as_str())
    }

    /// Where the data comes from.
    pub fn source(&self) -> Result<DataSource> {
        let need = |field: &Option<String>, name: &str, what: &str| {
            field.clone().ok_or_else(|| {
                Error::config(
                    name,
                    "(missing)",
                    format!("dataset `{}` needs {what}", self.dataset),
                )
            })
        };
        Ok(match self.dataset.as_str() {
            "cifar10" | "cifar100" => DataSource::Cifar {
                dir: need(&self.dir, "data.dir", "a directory (--data DIR)")?,
                variant: if self.dataset == "cifar10" {
                    Variant::Cifar10
                } else {
                    Variant::Cifar100
                },
            },
            "csv" => DataSource::Csv {
                path: need(&self.path, "data.path", "a CSV file (--csv FILE)")?,
                test_fraction: self.test_fraction,
            },
            name if self.is_toy() => DataSource::Toy(ToySpec {
                name: name.into(),
                train: self.train_points,
                test: self.test_points,
                noise: self.noise,
                classes: self.classes,
            }),
            other => {
                return Err(Error::config(
                    "dataset",
                    other,
                    format!(
                        "choose one of {}, cifar10, cifar100, csv",
                        toy::names().join(", ")
                    ),
                ));
            }
        })
    }

    /// Loads the data and applies the subsets (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(&self, seed: u64) -> Result<Split> {
        let split = Split::load(&self.source()?, seed)?;
        self.apply_subsets(split, seed)
    }

    /// The subsets, then the validation hold-out (from the training subset).
    pub fn apply_subsets(&self, mut split: Split, seed: u64) -> Result<Split> {
        if let Some(n) = self.train_subset {
            split.train = split.train.stratified_subset(n, seed)?;
        }
        if let Some(n) = self.test_subset {
            let test = split.test().stratified_subset(n, seed ^ 0x7e57)?;
            split = split.with_test(test);
        }
        split.hold_out(self.valid_fraction, seed)
    }
}

impl RunConfig {
    /// Parses TOML, rejecting unknown keys by name.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let value: toml::Value = toml::from_str(text)
            .map_err(|e| Error::config("config file", origin, e.to_string()))?;
        let json = serde_json::to_value(&value)
            .map_err(|e| Error::config("config file", origin, e.to_string()))?;
        check_known_keys(
            &json,
            &serde_json::to_value(RunConfig::default()).unwrap(),
            "",
        )?;
        let config: RunConfig = serde_json::from_value(json)
            .map_err(|e| Error::config("config file", origin, e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects unknown keys in a file that holds a run config flattened
    /// together with its own top-level `extra` keys (experiments, sweeps).
    pub fn check_keys_beside(text: &str, origin: &str, extra: &[&str]) -> Result<()> {
        let value: toml::Value = toml::from_str(text)
            .map_err(|e| Error::config("config file", origin, e.to_string()))?;
        let mut json = serde_json::to_value(&value)
            .map_err(|e| Error::config("config file", origin, e.to_string()))?;
        if let Some(map) = json.as_object_mut() {
            for key in extra {
                map.remove(*key);
            }
        }
        check_known_keys(
            &json,
            &serde_json::to_value(RunConfig::default()).unwrap(),
            "",
        )
    }

    /// The architecture this config builds for data with `classes` classes.
    pub fn model_spec(&self, classes: usize, inputs: usize) -> Result<ModelSpec> {
        ModelSpec::named(
            &self.model.name,
            &ModelOptions {
                classes,
                hidden: self.model.hidden.clone(),
                activation: self.model.activation,
                shortcut: self.model.shortcut,
                inputs,
            },
        )
    }

    /// Range checks with messages that say what would work.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        let check = |ok: bool, field: &str, value: String, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(field, value, reason))
            }
        };
        check(
            (1..=100_000).contains(&t.epochs),
            "train.epochs",
            t.epochs.to_string(),
            "use 1 to 100000",
        )?;
        check(
            (1..=65_536).contains(&t.batch_size),
            "train.batch_size",
            t.batch_size.to_string(),
            "use 1 to 65536",
        )?;
        check(
            t.lr.is_finite() && t.lr > 0.0 && t.lr <= 10.0,
            "train.lr",
            t.lr.to_string(),
            "use a positive rate up to 10",
        )?;
        check(
            (0.0..1.0).contains(&t.momentum),
            "train.momentum",
            t.momentum.to_string(),
            "use a value in [0, 1)",
        )?;
        check(
            t.weight_decay.is_finite() && t.weight_decay >= 0.0,
            "train.weight_decay",
            t.weight_decay.to_string(),
            "use a value >= 0",
        )?;
        check(
            t.gamma > 0.0 && t.gamma <= 1.0,
            "train.gamma",
            t.gamma.to_string(),
            "use a factor in (0, 1]",
        )?;
        check(
            t.eval_batch_size >= 1,
            "train.eval_batch_size",
            t.eval_batch_size.to_string(),
            "use at least 1",
        )?;
        check(
            !t.nesterov || t.momentum > 0.0,
            "train.nesterov",
            "true".into(),
            "Nesterov needs momentum > 0",
        )?;
        self.data.source()?;
        if !crate::model::spec::MODEL_NAMES.contains(&self.model.name.as_str()) {
            return Err(Error::config(
                "model",
                &self.model.name,
                format!(
                    "choose one of {}",
                    crate::model::spec::MODEL_NAMES.join(", ")
                ),
            ));
        }
        let image_model = !crate::model::spec::POINT_MODELS.contains(&self.model.name.as_str());
        let image_data = self.data.dataset.starts_with("cifar");
        check(
            image_model == image_data,
            "model",
            self.model.name.clone(),
            if image_data {
                "CIFAR data needs an image model (cnn, resnet20/32/56/110, vgg16)"
            } else {
                "2-D points need the mlp model"
            },
        )?;
        Ok(())
    }
}

/// Errors on the first key of `value` that `known` does not have.
pub fn check_known_keys(
    value: &serde_json::Value,
    known: &serde_json::Value,
    at: &str,
) -> Result<()> {
    if let (Some(map), Some(known_map)) = (value.as_object(), known.as_object()) {
        for (key, v) in map {
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match known_map.get(key) {
                None => {
                    let keys: Vec<&str> = known_map.keys().map(|k| k.as_str()).collect();
                    return Err(Error::config(
                        &path,
                        "(unknown key)",
                        format!("known keys here: {}", keys.join(", ")),
                    ));
                }
                Some(k) => check_known_keys(v, k, &path)?,
            }
        }
    }
    Ok(())
}
