//! The run file's top level: seed, device, and the parts each module owns
//! (`model`, `data`, `train`, `prune`) — what a `prunelab train` call, a TOML
//! file and the page's URL all describe. Each part's defaults live with its
//! owner; the whole config is saved beside every result.

use serde::{Deserialize, Serialize};

use crate::base::device::DeviceChoice;
use crate::base::error::{Error, Result};
use crate::data::{DataConfig, Split};
use crate::model::{Model, ModelConfig, ModelSpec};
use crate::prune::PruneConfig;
use crate::train::TrainConfig;

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

/// TOML as JSON, refusing NaN and infinities by key: JSON has no such
/// numbers (serde_json turns them into `null`, which then reads as "use the
/// default" or "expected f64"), and no setting of prunelab wants one.
pub fn toml_to_json(value: &toml::Value, at: &str) -> Result<serde_json::Value> {
    use serde_json::Value as J;
    let key = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    Ok(match value {
        toml::Value::Float(f) if !f.is_finite() => {
            return Err(Error::config(
                if at.is_empty() { "value" } else { at },
                f,
                "give a finite number",
            ));
        }
        toml::Value::Float(f) => J::from(*f),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::String(s) => J::from(s.as_str()),
        toml::Value::Boolean(b) => J::from(*b),
        toml::Value::Datetime(d) => J::from(d.to_string()),
        toml::Value::Array(items) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| toml_to_json(v, &key(&i.to_string())))
                .collect::<Result<_>>()?,
        ),
        toml::Value::Table(table) => J::Object(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), toml_to_json(v, &key(k))?)))
                .collect::<Result<_>>()?,
        ),
    })
}

/// An error in config file `origin`, with the parser's message clipped.
fn file_error(origin: &str) -> impl Fn(&dyn std::fmt::Display) -> Error + '_ {
    move |e| {
        Error::config(
            "config file",
            origin,
            crate::base::error::clip_lines(&e.to_string()),
        )
    }
}

/// `text` parsed as TOML, as JSON ([`toml_to_json`]).
fn toml_file(text: &str, origin: &str) -> Result<serde_json::Value> {
    let value: toml::Value = toml::from_str(text).map_err(|e| file_error(origin)(&e))?;
    toml_to_json(&value, "")
}

/// Every key a run config file may hold: the defaults, serialised, plus the
/// keys a default config leaves out of its serialisation (so that adding
/// them did not change older run ids).
fn known_keys() -> serde_json::Value {
    let mut known = serde_json::to_value(RunConfig::default()).expect("plain data");
    known["train"]["warmup_epochs"] = 0.into();
    // Unset by default (and so left out of the serialised default).
    known["model"]["normalize"] = "imagenet".into();
    known["model"]["from"] = "".into();
    known
}

impl RunConfig {
    /// Parses TOML, rejecting unknown keys by name.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let json = toml_file(text, origin)?;
        check_known_keys(&json, &known_keys(), "")?;
        let config: RunConfig = serde_json::from_value(json).map_err(|e| file_error(origin)(&e))?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects unknown keys in a file that holds a run config flattened
    /// together with its own top-level `extra` keys (experiments, sweeps).
    pub fn check_keys_beside(text: &str, origin: &str, extra: &[&str]) -> Result<()> {
        let mut json = toml_file(text, origin)?;
        if let Some(map) = json.as_object_mut() {
            for key in extra {
                map.remove(*key);
            }
        }
        check_known_keys(&json, &known_keys(), "")
    }

    /// The architecture this config builds for data with `classes` classes
    /// (what a foreign file is read as; it records no input normalisation).
    pub fn model_spec(&self, classes: usize, inputs: usize) -> Result<ModelSpec> {
        self.model.spec(classes, inputs)
    }

    /// The architecture a new model trains as on `split`, recording the
    /// input normalisation it will see, so its files say it.
    pub fn model_spec_for(&self, split: &Split) -> Result<ModelSpec> {
        let spec = self.model_spec(split.train.classes, split.train.shape[0])?;
        let input = self.model.normalize.map(|n| n.0).or(split.norm);
        Ok(spec.with_input(input))
    }

    /// Makes a model read from a file and the data agree on the input
    /// normalisation: `--normalize` if given, else what the model records,
    /// else the data set's own (recorded from then on). Every command that
    /// evaluates, prunes or trains a loaded model calls it once, right after
    /// loading, so a checkpoint trained on other statistics is fed its own.
    pub fn fit_input(&self, model: &mut Model, split: &mut Split) {
        if split.norm.is_none() {
            return; // features, not images: nothing is normalised
        }
        let input = self.recorded_input(&model.spec).or(split.norm);
        model.spec = model.spec.clone().with_input(input);
        split.norm = input;
    }

    /// The input normalisation of a model read from a file: `--normalize`
    /// if given, else what the file records (none: the data set's own).
    pub fn recorded_input(&self, spec: &ModelSpec) -> Option<crate::data::augment::Normalization> {
        self.model.normalize.map(|n| n.0).or(spec.input())
    }

    /// Range checks with messages that say what would work.
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        self.prune.options.check()?;
        self.data.source()?;
        if !crate::model::zoo::MODEL_NAMES.contains(&self.model.name.as_str()) {
            return Err(Error::config(
                "model",
                &self.model.name,
                format!(
                    "choose one of {}",
                    crate::model::zoo::MODEL_NAMES.join(", ")
                ),
            ));
        }
        self.data.check_sizes()?;
        use crate::model::spec::{MAX_LAYERS, MAX_WIDTH};
        if self.model.hidden.len() >= MAX_LAYERS
            || self.model.hidden.iter().any(|&w| w == 0 || w > MAX_WIDTH)
        {
            let h = &self.model.hidden;
            let shown = if h.len() <= 8 {
                format!("{h:?}")
            } else {
                format!("{:?} … ({} widths)", &h[..8], h.len())
            };
            return Err(Error::config(
                "hidden",
                shown,
                format!("use fewer than {MAX_LAYERS} widths of 1 to {MAX_WIDTH}"),
            ));
        }
        let image_model = !crate::model::zoo::POINT_MODELS.contains(&self.model.name.as_str());
        let image_data = self.data.dataset.starts_with("cifar");
        if image_model != image_data {
            return Err(Error::config(
                "model",
                self.model.name.clone(),
                if image_data {
                    "CIFAR data needs an image model (cnn, resnet20/32/44/56/110, vgg16)"
                } else {
                    "2-D points need the mlp or resmlp model"
                },
            ));
        }
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
        // An empty table in the defaults is a map keyed by the user
        // (`layer_ratios`), not a table with no keys.
        if known_map.is_empty() {
            return Ok(());
        }
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
