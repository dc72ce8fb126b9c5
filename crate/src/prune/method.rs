//! The contract every method meets: what it is ([`MethodInfo`]: name, paper,
//! what it removes, when it acts, its defaults and its own options), what it
//! measures ([`Method::score`]) and, only if its schedule is its own, how it
//! runs ([`Method::run`]; by default [`super::pipeline::run`] does the rest:
//! select, cut or mask, fine-tune or train).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::masks::LayerScores;
use super::options::PruneOptions;
use super::select::{Normalize, Scope, UnitScores};
use super::target::Target;
use crate::data::Split;
use crate::device::OpenDevice;
use crate::error::{Error, Result};
use crate::events::{EpochMetrics, Sink};
use crate::model::Model;
use crate::model::masks::WeightMasks;
use crate::train::TrainConfig;

pub use crate::host::BoxFuture;

/// When a method acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// On a trained model, then fine-tunes.
    AfterTraining,
    /// On the untrained model, then trains the pruned one.
    AtInit,
    /// Prunes while it trains, in one pass.
    DuringTraining,
    /// Trains, prunes and retrains in rounds by itself.
    Iterative,
}

/// What a method removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Channels,
    Blocks,
    Weights,
    /// Channels and blocks together.
    Structure,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodInfo {
    /// The registry name (`prunelab methods`, `method = "…"`, the page).
    pub name: &'static str,
    /// What the page and the tables call it; seed methods start with `S1:` … `S4:`.
    pub title: &'static str,
    /// The paper, with its arXiv id.
    pub source: &'static str,
    pub phase: Phase,
    pub granularity: Granularity,
    /// Whether it needs residual blocks (ResNets).
    pub needs_blocks: bool,
    /// How its units are ranked when `scope` is not set (structured methods).
    pub scope: Option<(Scope, &'static str)>,
    /// The per-layer normalisation its paper ranks after (`None`: `normalize`).
    pub normalize: Option<(Normalize, &'static str)>,
    /// Scoring batches when `score_batches` is not set (data-driven criteria).
    pub score_batches: Option<(usize, &'static str)>,
    /// Its own say in how its units are ranked, from its options (S3's
    /// allocation: one shot, iterative, width-scaled), applied after
    /// `scope` / `normalize` above.
    #[serde(skip)]
    pub ranking: Option<fn(&PruneOptions, &mut super::select::SelectOptions)>,
    /// Its paper's fine-tuning (after-training methods), used for unset
    /// `finetune_epochs` / `finetune_lr` only with `finetune_recipe = "paper"`
    /// ([`super::recipe`]; comparisons share one recipe by default).
    pub finetune: Option<Finetune>,
    /// Its own options (`[prune.<name>]`), if it has any.
    #[serde(skip)]
    pub options: Option<OptionsSpec>,
    /// Its options, each with where its default comes from (the values are
    /// read from the defaults in code, so the two cannot drift).
    pub knobs: &'static [Knob],
}

/// Default fine-tuning after pruning: `share` of the training epochs
/// (rounded) at `lr_factor` × the training rate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Finetune {
    pub share: f32,
    pub lr_factor: f64,
    pub source: &'static str,
}

/// An option of a method (`flexrel.delta`) and where its default comes from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Knob {
    pub key: &'static str,
    pub source: &'static str,
}

/// A method's own options type, seen from the registry: its defaults as JSON
/// and a check that a `[prune.<name>]` table parses as it.
#[derive(Debug, Clone, Copy)]
pub struct OptionsSpec {
    pub defaults: fn() -> serde_json::Value,
    pub check: fn(&serde_json::Value) -> Result<()>,
}

/// Range checks of a method's own options beyond what parsing checks (a
/// temperature of 0 parses, and ends in a NaN loss an hour later).
pub trait CheckOptions {
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// `Ok` if `ok`, else an error naming `field`, its value and the range.
pub fn require(ok: bool, field: &str, value: impl std::fmt::Display, range: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::config(field, value, format!("use {range}")))
    }
}

impl OptionsSpec {
    /// The spec of options type `T`.
    pub const fn of<T: Default + Serialize + DeserializeOwned + CheckOptions>() -> Self {
        OptionsSpec {
            defaults: defaults_of::<T>,
            check: check_as::<T>,
        }
    }
}

fn defaults_of<T: Default + Serialize>() -> serde_json::Value {
    serde_json::to_value(T::default()).expect("plain data")
}

fn check_as<T: DeserializeOwned + CheckOptions>(value: &serde_json::Value) -> Result<()> {
    serde_json::from_value::<T>(value.clone())
        .map_err(|e| Error::config("prune options", value, e.to_string()))?
        .check()
}

/// What a criterion measures: one score per unit, per weight or per
/// removable block (higher = more important, kept longer).
#[derive(Debug, Clone)]
pub enum Scores {
    Units(UnitScores),
    Weights(Vec<LayerScores>),
    Blocks(Vec<(String, f32)>),
}

/// What a criterion may read: the model (trained or at initialisation), the
/// training data (never the test split), the options and the seed.
pub struct Scoring<'a> {
    pub model: &'a Model,
    pub split: &'a Split,
    pub device: &'a OpenDevice,
    pub options: &'a PruneOptions,
    pub seed: u64,
    /// Whether the run augments its training data.
    pub augment: bool,
}

/// Everything a method may use. `model` lives on `device`'s autodiff device;
/// it is trained for after-training methods and freshly initialised for the
/// others. `train` holds the training settings (epochs, rate, optimizer) a
/// method uses for its own training, retraining or fine-tuning.
pub struct Job<'a> {
    /// The method's own description (its defaults).
    pub info: &'static MethodInfo,
    pub model: Model,
    pub split: &'a Split,
    pub train: TrainConfig,
    pub augment: bool,
    pub seed: u64,
    pub target: Target,
    pub options: PruneOptions,
    pub device: OpenDevice,
    pub sink: &'a mut dyn Sink,
}

impl Scoring<'_> {
    /// The groups this run may cut (the streams too with `residual_stream`).
    pub fn groups(&self) -> Vec<crate::model::groups::UnitGroup> {
        self.options.protect.groups(&self.model.spec)
    }

    /// The layers a unit criterion scores: every producer of those groups.
    pub fn layers(&self) -> Vec<String> {
        producers(&self.groups())
    }
}

/// Every producing layer of `groups`, each once, in order.
pub fn producers(groups: &[crate::model::groups::UnitGroup]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in groups.iter().flat_map(|g| &g.producers) {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

impl Job<'_> {
    /// The criterion's view of this job.
    pub fn scoring(&self) -> Scoring<'_> {
        Scoring {
            model: &self.model,
            split: self.split,
            device: &self.device,
            options: &self.options,
            seed: self.seed,
            augment: self.augment,
        }
    }
}

/// A pruned model and how it came about.
#[derive(Debug)]
pub struct Outcome {
    /// Physically smaller for structured methods; masked for weight-level ones.
    pub model: Model,
    pub plan: Option<super::plan::Plan>,
    pub masks: Option<WeightMasks>,
    /// Epochs the method trained (retraining, fine-tuning, the gated pass).
    pub history: Vec<EpochMetrics>,
    /// Method-specific findings: gate values, δ sweeps, block scores.
    pub details: serde_json::Value,
}

pub trait Method: Sync {
    fn info(&self) -> &'static MethodInfo;

    /// The criterion: scores of the model's units, weights or blocks. Methods
    /// that are a schedule rather than a criterion (S1, IMP) have none.
    fn score<'a>(&'a self, scoring: Scoring<'a>) -> BoxFuture<'a, Result<Scores>> {
        let _ = scoring;
        let name = self.info().name;
        Box::pin(async move {
            Err(Error::config(
                "method",
                name,
                "it runs its own schedule and has no one-shot scores to rank",
            ))
        })
    }

    /// Refuses a model the method cannot work on (beyond `needs_blocks`),
    /// before anything trains.
    fn check_model(&self, spec: &crate::model::ModelSpec) -> Result<()> {
        let _ = spec;
        Ok(())
    }

    /// Refuses a target the method could meet but not meaningfully (S4 asked
    /// to remove every candidate block: every criterion then removes the
    /// same ones), before anything trains.
    fn check_target(
        &self,
        options: &PruneOptions,
        spec: &crate::model::ModelSpec,
        target: &Target,
    ) -> Result<()> {
        let _ = (options, spec, target);
        Ok(())
    }

    /// What a run with `options` removes: the method's granularity, unless
    /// an option decides (the random baseline's `unit`).
    fn removes(&self, options: &PruneOptions) -> Result<Granularity> {
        let _ = options;
        Ok(self.info().granularity)
    }

    /// The method, start to end: by default its scores through the pipeline
    /// for its phase (select, cut or mask, then fine-tune or train).
    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        super::pipeline::run(self, job)
    }

    /// What the run trains, stage by stage, under `options` and the
    /// training settings `train` (the report's recipe column). By default
    /// from the phase ([`super::recipe::default_stages`]); a method with a
    /// schedule of its own says it.
    fn stages(&self, options: &PruneOptions, train: &TrainConfig) -> Vec<super::recipe::Stage> {
        super::recipe::default_stages(self.info(), options, train)
    }

    /// A method's own judgement of a finished result against the dense
    /// model (S4's winning-ticket test), from the reported accuracies.
    fn verdict(
        &self,
        _options: &PruneOptions,
        _accuracy: f32,
        _dense_accuracy: f32,
    ) -> Option<serde_json::Value> {
        None
    }
}

/// One stated default, for `prunelab methods`, the page and the docs.
#[derive(Debug, Clone, Serialize)]
pub struct StatedDefault {
    pub key: String,
    pub value: String,
    pub source: String,
}

/// Every default `info`'s method runs with, and where each comes from.
pub fn defaults(info: &MethodInfo) -> Vec<StatedDefault> {
    let mut out = Vec::new();
    let mut push = |key: &str, value: String, source: &str| {
        out.push(StatedDefault {
            key: key.into(),
            value,
            source: source.into(),
        })
    };
    let word = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    if let Some((scope, source)) = info.scope {
        push(
            "scope",
            word(serde_json::to_value(scope).expect("plain data")),
            source,
        );
    }
    if let Some((normalize, source)) = info.normalize {
        push(
            "normalize",
            word(serde_json::to_value(normalize).expect("plain data")),
            source,
        );
    }
    if let Some((n, source)) = info.score_batches {
        push("score_batches", n.to_string(), source);
    }
    let recipe = |f: Finetune| {
        format!(
            "{:.0}% of the training epochs at {}× the training rate",
            100.0 * f.share,
            f.lr_factor
        )
    };
    match info.finetune {
        Some(f) => {
            push(
                "finetune_epochs",
                recipe(super::recipe::SHARED),
                super::recipe::SHARED.source,
            );
            push("finetune_recipe = \"paper\"", recipe(f), f.source);
        }
        None => push(
            "finetune_epochs",
            "none".into(),
            "the method trains the pruned network itself",
        ),
    }
    let shared = serde_json::to_value(PruneOptions::shared_defaults()).expect("plain data");
    let own = info.options.map(|o| (o.defaults)());
    for knob in info.knobs {
        let value = match knob.key.split_once('.') {
            Some((section, rest)) if section == info.name => own
                .as_ref()
                .and_then(|v| rest.split('.').try_fold(v, |v, k| v.get(k))),
            _ => knob.key.split('.').try_fold(&shared, |v, k| v.get(k)),
        }
        .map(shown)
        .unwrap_or_else(|| "(unset)".into());
        push(knob.key, value, knob.source);
    }
    out
}

/// A default as a person would write it: options are mostly `f32`, which
/// JSON widens (0.05 → 0.05000000074505806), so a number that is exactly an
/// `f32` is printed at `f32` precision.
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if !n.is_i64() && !n.is_u64() && f64::from(x as f32) == x => {
                (x as f32).to_string()
            }
            _ => n.to_string(),
        },
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(shown).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

/// One registry entry as the page and `prunelab methods --json` see it.
#[derive(Debug, Clone, Serialize)]
pub struct Described {
    #[serde(flatten)]
    pub info: &'static MethodInfo,
    /// Whether it ranks a trained model by scores (the page's slider);
    /// S1 and IMP run their own schedules instead.
    pub slider: bool,
    pub defaults: Vec<StatedDefault>,
    /// Its own options' defaults (`[prune.<name>]`).
    pub options: Option<serde_json::Value>,
}

/// Every registered method, described.
pub fn catalog() -> Vec<Described> {
    super::METHODS
        .iter()
        .map(|m| {
            let info = m.info();
            Described {
                info,
                slider: !matches!(info.phase, Phase::DuringTraining | Phase::Iterative),
                defaults: defaults(info),
                options: info.options.map(|o| (o.defaults)()),
            }
        })
        .collect()
}
