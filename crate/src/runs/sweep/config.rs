//! A sweep file: a base run config, the seeds, and methods with targets,
//! expanded into runs identified by the hash of their whole config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::config::RunConfig;
use crate::io::pack::fnv1a;
use crate::prune::Target;
use crate::runs::experiment::{ExperimentConfig, MethodEntry};

/// The most runs one sweep file may expand to.
pub const MAX_RUNS: usize = 10_000;

/// A sweep file: a base run config (model, data, training, shared `[prune]`
/// options), the seeds, and `[[methods]]` with a list of targets each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// Seeds to repeat every run with (default: the base `seed`).
    #[serde(default)]
    pub seeds: Vec<u64>,
    #[serde(flatten)]
    pub base: RunConfig,
    pub methods: Vec<SweepMethod>,
}

fn default_name() -> String {
    "sweep".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepMethod {
    pub method: String,
    pub targets: Vec<Target>,
    #[serde(default)]
    pub label: Option<String>,
    /// Another architecture than the base `[model]` for this entry's runs
    /// (S4's ResNet-32 rows beside its ResNet-56 ones): each model has its
    /// own dense reference, shared by its runs of one seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub options: serde_json::Value,
}

/// One run of a sweep: a one-method experiment with its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRun {
    pub id: String,
    pub seed: u64,
    pub method: String,
    pub target: Target,
    pub label: String,
    pub experiment: ExperimentConfig,
}

impl SweepConfig {
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let config: SweepConfig = toml::from_str(text).map_err(|e| {
            Error::config(
                "sweep file",
                origin,
                crate::base::error::clip_lines(&e.to_string()),
            )
        })?;
        RunConfig::check_keys_beside(text, origin, &["name", "seeds", "methods"])?;
        if config.methods.is_empty() {
            return Err(Error::config(
                "methods",
                origin,
                "add at least one [[methods]] entry with `targets = [...]`",
            ));
        }
        if let Some(m) = config.methods.iter().find(|m| m.targets.is_empty()) {
            return Err(Error::config(
                &format!("methods.{}.targets", m.method),
                "[]",
                "list at least one target, e.g. targets = [\"macs=0.5\"]",
            ));
        }
        let count = config.seeds.len().max(1)
            * config
                .methods
                .iter()
                .map(|m| m.targets.len())
                .sum::<usize>();
        if count > MAX_RUNS {
            return Err(Error::config(
                "sweep",
                count,
                format!("more than {MAX_RUNS} runs; split the sweep into several files"),
            ));
        }
        // Every run is checked now, not hours later on some cluster node. The
        // runs differ only in seed, method and perhaps model, so the data (a
        // CSV is read) is checked once and each model's spec once.
        let runs = config.runs();
        if let Some(first) = runs.first() {
            first.experiment.validate(origin)?;
            let mut specs: BTreeMap<String, crate::model::ModelSpec> = BTreeMap::new();
            for run in &runs[1..] {
                run.experiment.base.validate()?;
                let name = run.experiment.base.model.name.clone();
                let spec = match specs.get(&name) {
                    Some(spec) => spec.clone(),
                    None => {
                        let spec = run.experiment.checked_spec()?;
                        specs.insert(name, spec.clone());
                        spec
                    }
                };
                run.experiment.validate_methods(&spec)?;
            }
        }
        Ok(config)
    }

    /// Every run, sorted by id.
    pub fn runs(&self) -> Vec<SweepRun> {
        let seeds = if self.seeds.is_empty() {
            vec![self.base.seed]
        } else {
            self.seeds.clone()
        };
        let mut runs = Vec::new();
        for &seed in &seeds {
            for m in &self.methods {
                for target in &m.targets {
                    let label = m.label.clone().unwrap_or_else(|| m.method.clone());
                    let mut base = self.base.clone();
                    base.seed = seed;
                    if let Some(model) = &m.model {
                        base.model.name = model.clone();
                    }
                    let experiment = ExperimentConfig {
                        name: self.name.clone(),
                        base,
                        methods: vec![MethodEntry {
                            method: m.method.clone(),
                            target: target.clone(),
                            label: Some(label.clone()),
                            options: m.options.clone(),
                        }],
                    };
                    runs.push(SweepRun {
                        id: run_id(&experiment),
                        seed,
                        method: m.method.clone(),
                        target: target.clone(),
                        label,
                        experiment,
                    });
                }
            }
        }
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        runs.dedup_by(|a, b| a.id == b.id);
        runs
    }
}

/// The hash of a run's whole config (keys sorted, so the order of a TOML
/// file's lines does not matter), in hex.
pub fn run_id(experiment: &ExperimentConfig) -> String {
    let canonical = serde_json::to_value(experiment).expect("plain data");
    format!("{:016x}", fnv1a(canonical.to_string().as_bytes()))
}
