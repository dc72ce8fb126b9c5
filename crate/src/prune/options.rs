//! The options every method shares (`[prune]`), and each method's own table
//! (`[prune.<method>]`), which the method's file defines and the registry
//! lists. Where a paper leaves a detail open (docs/methods.md), the option's
//! default says what we chose, and `prunelab methods` says where it comes from.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::prune::pruner::select::{Normalize, Protection, Scope};
use crate::prune::pruner::target::Target;

/// Whose fine-tuning an after-training method gets when `finetune_epochs` and
/// `finetune_lr` are not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// [`SHARED`] for every method: what a comparison needs.
    #[default]
    Shared,
    /// Each method's paper's ([`MethodInfo::finetune`]): to reproduce one
    /// paper's row on its own terms, not to rank methods.
    Paper,
}

/// The share removed after step `k` of `n`, for a final share `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IterativeSchedule {
    /// `t · k / n`.
    Linear,
    /// `1 − (1 − t)^(k/n)`: each step keeps the same share of what is left
    /// (Torch-Pruning's and IMP's usual choice).
    #[default]
    Geometric,
}

impl IterativeSchedule {
    pub fn at(self, t: f64, k: usize, n: usize) -> f64 {
        let f = k as f64 / n.max(1) as f64;
        match self {
            IterativeSchedule::Linear => t * f,
            IterativeSchedule::Geometric => 1.0 - (1.0 - t).powf(f),
        }
    }
}

// No `deny_unknown_fields` here: these options are flattened into the
// `[prune]` table, and `RunConfig::from_toml` checks unknown keys itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneOptions {
    /// Global or per-layer ranking. Unset, each method uses its paper's
    /// (`prunelab methods`).
    pub scope: Option<Scope>,
    /// Per-layer score normalisation before a global ranking (a method whose
    /// paper normalises, S3, always does).
    pub normalize: Normalize,
    /// Iterative selection: the share of the *target measure* (MACs,
    /// params, units) removed per round, the survivors' scores renormalised
    /// between rounds. `None`: one shot (or the method's own: S3's
    /// `energy.step`).
    pub step: Option<f32>,
    /// HRank-style fixed pruning rates, one per prunable layer (overrides `target`).
    pub rates: Option<Vec<f32>>,
    /// Epochs of fine-tuning after pruning (after-training methods). Unset:
    /// the `finetune_recipe`'s share of the training epochs.
    pub finetune_epochs: Option<usize>,
    /// Learning rate for fine-tuning (default: the `finetune_recipe`'s
    /// factor × the training config's `lr`).
    pub finetune_lr: Option<f64>,
    /// Where unset fine-tuning settings come from: one shared recipe for
    /// every method (the default: comparisons need it) or each method's
    /// paper's (`paper`; [`super::recipe`]).
    pub finetune_recipe: Recipe,
    /// Batches used to score (S3's `limit`, SNIP/GraSP batches). Unset: the
    /// method's paper's.
    pub score_batches: Option<usize>,
    pub score_batch_size: usize,
    /// Structured after-training methods: prune in this many steps, each
    /// followed by its share of the fine-tuning and re-scoring (1: one shot).
    pub iterative_steps: usize,
    /// How the steps' targets grow to the final one.
    pub iterative_schedule: IterativeSchedule,
    /// Layer-collapse protection and shape control for structured methods
    /// (`max_layer_ratio`, `ignore_layers`, `layer_ratios`, `round_to`).
    #[serde(flatten)]
    pub protect: Protection,
    /// Each method's own options by method name, as set (laid over the
    /// method's defaults when it reads them, [`PruneOptions::of`]).
    #[serde(flatten)]
    pub methods: BTreeMap<String, serde_json::Value>,
}

impl PruneOptions {
    /// The shared options at their defaults, no method tables.
    pub fn shared_defaults() -> Self {
        PruneOptions {
            scope: None,
            normalize: Normalize::None,
            step: None,
            rates: None,
            finetune_epochs: None,
            finetune_lr: None,
            finetune_recipe: Recipe::Shared,
            score_batches: None,
            score_batch_size: 128,
            iterative_steps: 1,
            iterative_schedule: IterativeSchedule::Geometric,
            protect: Protection::default(),
            methods: BTreeMap::new(),
        }
    }

    /// Method `name`'s own options: its defaults with the table set here laid over them.
    pub fn of<T: Default + Serialize + DeserializeOwned>(&self, name: &str) -> Result<T> {
        let mut value = serde_json::to_value(T::default()).expect("plain data");
        if let Some(set) = self.methods.get(name) {
            merge(&mut value, set);
        }
        serde_json::from_value(value)
            .map_err(|e| Error::config(&format!("prune.{name}"), "", e.to_string()))
    }

    /// Changes method `name`'s own options through their type.
    pub fn update<T: Default + Serialize + DeserializeOwned>(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut T),
    ) -> &mut Self {
        let mut options: T = self.of(name).expect("the table parses as its type");
        change(&mut options);
        self.set(name, &options);
        self
    }

    /// Sets method `name`'s own options.
    pub fn set<T: Serialize>(&mut self, name: &str, options: &T) {
        self.methods.insert(
            name.to_string(),
            serde_json::to_value(options).expect("plain data"),
        );
    }
}

/// `over` laid over `base`: objects key by key, anything else replaced
/// (nulls leave the base as it is).
pub fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) if !o.is_null() => *b = o.clone(),
        _ => {}
    }
}

/// What `prunelab prune` and `prunelab run` do to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PruneConfig {
    /// A name from `prunelab methods`.
    pub method: String,
    /// `sparsity=F`, `macs=F`, `params=F`, `latency=F` or `blocks=N`.
    pub target: Target,
    #[serde(flatten)]
    pub options: PruneOptions,
}

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            method: "l1".into(),
            target: Target::Macs(0.5),
            options: PruneOptions::default(),
        }
    }
}
