//! Pruning. Three separate concerns, as in Torch-Pruning:
//! - *what* to cut — criteria score units, blocks or weights (one file each);
//! - *how much, where* — [`select`] turns scores and a [`target::Target`] into a
//!   [`plan::Plan`] (structured) or [`masks`] (weight level);
//! - *how to cut* — [`surgery`] builds the smaller network (coupling rules
//!   live there).
//!
//! A [`Method`] composes these with a schedule (after training, at
//! initialisation, during training, iterative) and is found by name in
//! [`METHODS`], the one registry the CLI, configs and the page share.

pub mod capture;
pub mod energy;
pub mod flexrel;
pub mod gates;
pub mod gradients;
pub mod grasp;
pub mod hrank;
pub mod imp;
pub mod l1;
pub mod lottery;
pub mod lrp;
pub mod magnitude;
pub mod masks;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod polarization;
pub mod random;
pub mod select;
pub mod snip;
pub mod surgery;
pub mod target;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::data::Split;
use crate::device::OpenDevice;
use crate::error::{Error, Result};
use crate::events::{EpochMetrics, Sink};
use crate::model::Model;
use crate::train::TrainConfig;
pub use options::{PruneConfig, PruneOptions};
pub use target::Target;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

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
    pub name: &'static str,
    pub title: &'static str,
    /// The paper, with its arXiv id.
    pub source: &'static str,
    pub phase: Phase,
    pub granularity: Granularity,
    /// Whether it needs residual blocks (ResNets).
    pub needs_blocks: bool,
    /// How its units are ranked when `scope` is not set (structured methods).
    pub scope: Option<(select::Scope, &'static str)>,
    /// Scoring batches when `score_batches` is not set (data-driven criteria).
    pub score_batches: Option<(usize, &'static str)>,
    /// Fine-tuning when `finetune_epochs` is not set (after-training methods).
    pub finetune: Option<Finetune>,
    /// Its own options, each with where its default comes from (the values
    /// are read from `PruneOptions::default()`, so they cannot drift).
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

/// One stated default, for `prunelab methods` and the docs.
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
    if let Some((scope, source)) = info.scope {
        let v = serde_json::to_value(scope).expect("plain data");
        push("scope", v.as_str().unwrap_or_default().into(), source);
    }
    if let Some((n, source)) = info.score_batches {
        push("score_batches", n.to_string(), source);
    }
    match info.finetune {
        Some(f) => push(
            "finetune_epochs",
            format!(
                "{:.0}% of the training epochs at {}× the training rate",
                100.0 * f.share,
                f.lr_factor
            ),
            f.source,
        ),
        None => push(
            "finetune_epochs",
            "none".into(),
            "the method trains the pruned network itself",
        ),
    }
    let all = serde_json::to_value(PruneOptions::default()).expect("plain data");
    for knob in info.knobs {
        let value = knob
            .key
            .split('.')
            .try_fold(&all, |v, k| v.get(k))
            .map(|v| v.to_string())
            .unwrap_or_else(|| "(unset)".into());
        push(knob.key, value, knob.source);
    }
    out
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

/// A pruned model and how it came about.
#[derive(Debug)]
pub struct Outcome {
    /// Physically smaller for structured methods; masked for weight-level ones.
    pub model: Model,
    pub plan: Option<plan::Plan>,
    pub masks: Option<crate::model::masks::WeightMasks>,
    /// Epochs the method trained (retraining, fine-tuning, the gated pass).
    pub history: Vec<EpochMetrics>,
    /// Method-specific findings: gate values, δ sweeps, block scores.
    pub details: serde_json::Value,
}

pub trait Method {
    fn info(&self) -> &'static MethodInfo;
    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>>;
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

/// Every method, seed methods first.
pub const METHODS: &[&MethodInfo] = &[
    &polarization::INFO,
    &flexrel::INFO,
    &energy::INFO,
    &lottery::INFO,
    &random::INFO,
    &l1::INFO,
    &magnitude::INFO,
    &hrank::INFO,
    &snip::INFO,
    &imp::INFO,
];

/// The method called `name`.
pub fn by_name(name: &str) -> Result<Box<dyn Method>> {
    Ok(match name {
        "polarization" => Box::new(polarization::Polarization),
        "flexrel" => Box::new(flexrel::FlexRel),
        "lottery" => Box::new(lottery::LayerLottery),
        "imp" => Box::new(imp::Imp),
        "energy" => Box::new(energy::EnergyAware),
        "random" => Box::new(random::Random),
        "l1" => Box::new(l1::L1),
        "magnitude" => Box::new(magnitude::Magnitude),
        "hrank" => Box::new(hrank::HRank),
        "snip" => Box::new(snip::Snip),
        _ => {
            let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
            return Err(Error::config(
                "method",
                name,
                format!("choose one of {}", names.join(", ")),
            ));
        }
    })
}

/// Refuses methods that need residual blocks on other models.
pub fn check_applicable(info: &MethodInfo, model: &Model) -> Result<()> {
    if info.needs_blocks && model.spec.removable_blocks().is_empty() {
        return Err(Error::config(
            "method",
            info.name,
            format!(
                "it removes residual blocks; {} has none (use a resnet)",
                model.spec.name()
            ),
        ));
    }
    Ok(())
}
