//! Comparisons: one model, one seed, one data set, one budget, several
//! methods — the dense run first — and one table. Shared by `prunelab prune`
//! (one method) and `prunelab run` (many); persistence is the caller's.
//!
//! Fairness: the dense model is trained once. After-training methods prune
//! that trained model and fine-tune `finetune_epochs`; at-initialisation
//! methods prune the same initial weights θ₀ and train for the dense budget;
//! S1 trains its one gated pass for the dense budget; IMP trains `rounds + 1`
//! times the budget (its wall time says so).

use serde::{Deserialize, Serialize};

use crate::base::clock;
use crate::base::device::OpenDevice;
use crate::base::error::{Error, Result};
use crate::base::events::{Event, Sink};
use crate::config::RunConfig;
use crate::data::Split;
use crate::metrics::{energy, latency};
use crate::model::Model;
use crate::model::init_model;
use crate::prune::{self, Job, Outcome, Phase, PruneOptions, Target};
use crate::report::{MethodResult, measure};
use crate::runs::dense::{Dense, train_dense};

/// A comparison, as written in an experiment TOML file: a run config (model,
/// data, training, shared `[prune]` options) and one `[[methods]]` entry per
/// method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentConfig {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(flatten)]
    pub base: RunConfig,
    pub methods: Vec<MethodEntry>,
}

/// The most `[[methods]]` entries one comparison takes (a sweep takes up to
/// `sweep::MAX_RUNS` runs).
pub const MAX_METHODS: usize = 100;

fn default_name() -> String {
    "experiment".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodEntry {
    pub method: String,
    pub target: Target,
    /// Name in the table (default: the method).
    #[serde(default)]
    pub label: Option<String>,
    /// Options over the shared `[prune]` ones.
    #[serde(default)]
    pub options: serde_json::Value,
}

impl ExperimentConfig {
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let config: ExperimentConfig = toml::from_str(text).map_err(|e| {
            Error::config(
                "experiment file",
                origin,
                crate::base::error::clip_lines(&e.to_string()),
            )
        })?;
        RunConfig::check_keys_beside(text, origin, &["name", "methods"])?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks the base config and every method entry — names, targets,
    /// options, and whether the method can meet its target on this model
    /// ([`prune::check_feasible`]) — before anything trains.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let config = self;
        config.base.validate()?;
        if config.methods.is_empty() {
            return Err(Error::config(
                "methods",
                origin,
                "add at least one [[methods]] entry",
            ));
        }
        if config.methods.len() > MAX_METHODS {
            return Err(Error::config(
                "methods",
                config.methods.len(),
                format!("more than {MAX_METHODS} entries; split the comparison (or use a sweep)"),
            ));
        }
        self.validate_methods(&self.checked_spec()?)
    }

    /// The model the base config builds for its data, read without loading
    /// the data (a CSV file's labels are read): what feasibility is checked on.
    pub fn checked_spec(&self) -> Result<crate::model::ModelSpec> {
        let (classes, shape) = self.base.data.classes_and_shape()?;
        self.base.model_spec(classes, shape[0])
    }

    /// Every method entry against `spec` ([`ExperimentConfig::checked_spec`]).
    pub fn validate_methods(&self, spec: &crate::model::ModelSpec) -> Result<()> {
        let config = self;
        for m in &config.methods {
            let method = prune::by_name(&m.method)?;
            let options = config.options_for(m)?;
            prune::check_feasible(method, &options, spec, &m.target).map_err(|e| {
                Error::config(
                    &format!("methods.{}", m.label.as_deref().unwrap_or(&m.method)),
                    m.target,
                    format!("{e} (on {})", spec.name()),
                )
            })?;
        }
        Ok(())
    }

    /// The shared options with the entry's laid over them.
    pub fn options_for(&self, entry: &MethodEntry) -> Result<PruneOptions> {
        let mut merged = serde_json::to_value(&self.base.prune.options).expect("plain data");
        crate::prune::options::merge(&mut merged, &entry.options);
        let known = serde_json::to_value(PruneOptions::default()).expect("plain data");
        crate::config::check_known_keys(
            &entry.options,
            &known,
            &format!("methods.{}.options", entry.method),
        )?;
        let options: PruneOptions = serde_json::from_value(merged).map_err(|e| {
            Error::config(
                &format!("methods.{}.options", entry.method),
                "",
                e.to_string(),
            )
        })?;
        options.check()?;
        Ok(options)
    }
}

/// What every method of one comparison runs against: the run config, the
/// dense stage (its row for the deltas, its model for a speed-up timed in
/// this process beside the pruned one), the device and the data.
pub struct Comparison<'a> {
    pub config: &'a RunConfig,
    pub dense: &'a Dense,
    pub opened: &'a OpenDevice,
    pub split: &'a Split,
}

/// One method to run: which, how much, with what options, from where
/// (trained or θ₀, as its phase needs: [`start_for`]).
pub struct MethodRun {
    pub method: String,
    pub target: Target,
    /// Its name in the table (default: the method).
    pub label: String,
    pub options: PruneOptions,
    pub start: Model,
}

impl MethodRun {
    pub fn new(method: &str, target: Target, options: PruneOptions, start: Model) -> MethodRun {
        MethodRun {
            method: method.into(),
            target,
            label: method.into(),
            options,
            start,
        }
    }

    pub fn labelled(self, label: &str) -> MethodRun {
        MethodRun {
            label: label.into(),
            ..self
        }
    }
}

/// Runs one method of a comparison and measures its row.
pub async fn run_method(
    on: &Comparison<'_>,
    run: MethodRun,
    sink: &mut dyn Sink,
) -> Result<(Outcome, MethodResult)> {
    let Comparison {
        config,
        dense: reference,
        opened,
        split,
    } = *on;
    let MethodRun {
        method,
        target,
        label,
        options,
        start,
    } = run;
    let dense = &reference.result;
    let method_name = method.as_str();
    let method = prune::by_name(method_name)?;
    let stages = method.stages(&options, &config.train);
    let scope = prune::recipe::scope(method, &options);
    prune::check_feasible(method, &options, &start.spec, &target)?;
    sink.emit(Event::Phase {
        name: method_name.into(),
        detail: format!("{} ({target})", method.info().title),
    });
    let t0 = clock::now();
    energy::follow(opened);
    let mark = energy::mark();
    let options_used = options.clone();
    let outcome = method
        .run(Job {
            info: method.info(),
            model: start,
            split,
            train: config.train.clone(),
            augment: config.data.augment,
            seed: config.seed,
            target: target,
            options,
            device: opened.clone(),
            sink: &mut *sink,
        })
        .await?;
    let wall = clock::now() - t0;
    // The epochs it trained are fine-tuning after training, training
    // otherwise (at initialisation, S1's one pass); the rest is pruning.
    if let Some(run) = energy::since(mark) {
        let trained: f64 = outcome.history.iter().filter_map(|e| e.joules).sum();
        let phase = match method.info().phase {
            Phase::AfterTraining => "finetune",
            _ => "train",
        };
        energy::add(phase, trained);
        energy::add("prune", run - trained);
    }
    let eval_mark = energy::mark();
    let m = measure(
        &outcome.model,
        outcome.masks.as_ref(),
        split,
        config.train.eval_batch_size,
        &opened.device,
    )
    .await?;
    let latency = latency::measure(
        &outcome.model,
        split,
        config.train.batch_size,
        &opened.device,
    )
    .await?;
    // Measured with a masked model too: weight-level masks do not make
    // dense kernels faster, and the ratio shows it.
    let paired = latency::paired(
        &reference.model,
        &outcome.model,
        split,
        config.train.batch_size,
        &opened.device,
        latency::PAIRED_ROUNDS,
    )
    .await?;
    energy::charge("eval", eval_mark);
    let spec_before = &dense_spec(dense);
    let plan = match (&outcome.plan, spec_before) {
        (Some(p), Some(s)) => p.describe(s),
        _ => Vec::new(),
    };
    let ratio = |a: u64, b: u64| 1.0 - a as f64 / b.max(1) as f64;
    let result = MethodResult {
        method: method_name.into(),
        label: label.into(),
        target: target.into(),
        phase: serde_json::to_value(method.info().phase)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        test_accuracy: m.test_accuracy,
        test_loss: m.test_loss,
        delta_vs_dense: 100.0 * (m.test_accuracy - dense.test_accuracy),
        params: m.params,
        macs: m.macs,
        bytes: m.bytes,
        nonzero_params: m.nonzero_params,
        params_reduction: ratio(m.nonzero_params, dense.params),
        macs_reduction: ratio(m.macs, dense.macs),
        bytes_reduction: ratio(m.bytes, dense.bytes),
        wall_seconds: wall,
        train_epochs: outcome.history.len(),
        plan,
        metered: energy::Metered::since(mark, false),
        latency: Some(latency),
        speedup: Some(paired.speedup),
        paired: Some(paired),
        recipe: prune::recipe::describe(&stages),
        stages,
        scope,
        history: outcome.history.clone(),
        details: outcome.details.clone(),
        verdict: method.verdict(&options_used, m.test_accuracy, dense.test_accuracy),
    };
    Ok((outcome, result))
}

fn dense_spec(dense: &MethodResult) -> Option<crate::model::ModelSpec> {
    serde_json::from_value(dense.details.get("spec")?.clone()).ok()
}

/// The whole comparison: dense training, then every method.
pub async fn compare(
    config: &ExperimentConfig,
    opened: &OpenDevice,
    split: &Split,
    sink: &mut dyn Sink,
) -> Result<Vec<MethodResult>> {
    let mut keep_nothing = |_: Vec<u8>| Ok("nothing was saved".to_string());
    let dense = train_dense(&config.base, opened, split, None, sink, &mut keep_nothing).await?;
    compare_from(config, &dense, opened, split, sink).await
}

/// Where a method of `phase` starts in a comparison: the trained dense model
/// (after-training methods) or θ₀ (the others) — as forks, never clones:
/// burn's `clone` shares BatchNorm running statistics, so a method that
/// trains (or runs BN in training mode to score) would move the dense
/// model's, and every later method would see another model.
pub fn start_for(phase: Phase, dense: &Model, theta0: &Model) -> Model {
    match phase {
        Phase::AfterTraining => dense.deep_fork(),
        _ => theta0.deep_fork(),
    }
}

/// Every method of `config` against a dense stage already trained (by
/// [`train_dense`], perhaps in another process): the dense row first.
pub async fn compare_from(
    config: &ExperimentConfig,
    dense: &Dense,
    opened: &OpenDevice,
    split: &Split,
    sink: &mut dyn Sink,
) -> Result<Vec<MethodResult>> {
    let base = &config.base;
    let device = opened.autodiff();
    let reference = dense;
    let dense_model = &dense.model;
    let theta0 = init_model(&dense_model.spec, base.seed, &device);
    let mut results = vec![dense.result.clone()];
    for entry in &config.methods {
        let m = prune::by_name(&entry.method)?;
        let start = start_for(m.info().phase, dense_model, &theta0);
        let options = config.options_for(entry)?;
        let label = entry.label.clone().unwrap_or_else(|| entry.method.clone());
        let on = Comparison {
            config: base,
            dense: reference,
            opened,
            split,
        };
        let run = MethodRun::new(&entry.method, entry.target, options, start).labelled(&label);
        let (_, result) = run_method(&on, run, sink).await?;
        results.push(result);
    }
    Ok(results)
}
