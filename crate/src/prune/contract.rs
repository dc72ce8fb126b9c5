//! The contract every method meets: what it is ([`MethodInfo`]: name, paper,
//! what it removes, when it acts, its defaults and its own options), what it
//! measures ([`Method::score`]) and, only if its schedule is its own, how it
//! runs ([`Method::run`]; for a criterion the pipeline does the rest:
//! select, cut or mask, fine-tune or train).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::base::device::OpenDevice;
use crate::base::error::{Error, Result};
use crate::base::events::{EpochMetrics, Sink};
use crate::data::Split;
use crate::model::Model;
use crate::model::masks::WeightMasks;
use crate::prune::options::PruneOptions;
use crate::prune::pruner::masks::LayerScores;
use crate::prune::pruner::select::{Normalize, Scope, SelectOptions, UnitScores};
use crate::prune::pruner::target::Target;
use crate::train::TrainConfig;

pub use crate::base::host::BoxFuture;

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
    /// What it scores and how it cuts, in a sentence (markdown): the "what"
    /// column of `docs/methods.md`'s baselines table, which is generated
    /// from it.
    pub summary: &'static str,
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
    pub ranking: Option<fn(&PruneOptions, &mut crate::prune::pruner::select::SelectOptions)>,
    /// Its paper's fine-tuning (after-training methods), used for unset
    /// `finetune_epochs` / `finetune_lr` only with `finetune_recipe = "paper"`
    /// (`recipe`; comparisons share one recipe by default).
    pub finetune: Option<Finetune>,
    /// Its own options (`[prune.<name>]`), if it has any.
    #[serde(skip)]
    pub options: Option<OptionsSpec>,
    /// Its options, each with where its default comes from (the values are
    /// read from the defaults in code, so the two cannot drift).
    pub knobs: &'static [Knob],
}

impl MethodInfo {
    /// How a run of this method ranks units under `options`: its paper's
    /// scope and normalisation unless the options say otherwise (a
    /// normalisation the paper prescribes always applies), then the
    /// method's own say ([`MethodInfo::ranking`], S3's allocation).
    pub fn select_options(&self, options: &PruneOptions) -> SelectOptions {
        let default = self.scope.map_or(Scope::Global, |(s, _)| s);
        let mut select = SelectOptions {
            scope: options.scope.unwrap_or(default),
            normalize: self.normalize.map_or(options.normalize, |(n, _)| n),
            protect: options.protect.clone(),
            step: options.step,
            latency: None,
        };
        if let Some(own) = self.ranking {
            own(options, &mut select);
        }
        select
    }
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

/// One stretch of training a row did: what, how long, at what rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// `fine-tune`, `train from θ₀`, `gated pass`, `sparse pass`, `round`.
    pub what: String,
    pub epochs: usize,
    pub lr: f64,
    /// The rate schedule's name (`cosine`, `multistep`, `constant`).
    pub schedule: String,
}

impl Stage {
    pub fn of(what: &str, config: &TrainConfig) -> Stage {
        Stage {
            what: what.into(),
            epochs: config.epochs,
            lr: config.lr,
            schedule: serde_json::to_value(&config.schedule)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
        }
    }
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
    pub plan: Option<crate::prune::pruner::plan::Plan>,
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

    /// The method, start to end. A criterion's is the pipeline for its
    /// phase (select, cut or mask, then fine-tune or train:
    /// `criteria::Criterion`); a schedule runs its own.
    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>>;

    /// What the run trains, stage by stage, under `options` and the
    /// training settings `train` (the report's recipe column): for a
    /// criterion, `recipe::default_stages` by its phase; a schedule says its own.
    fn stages(&self, options: &PruneOptions, train: &TrainConfig) -> Vec<Stage>;

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
