//! What a row trains after (or instead of) pruning, and how it ranks: the two
//! things that must be equal across a comparison before its accuracies say
//! anything about criteria.
//!
//! Every after-training method fine-tunes with **one shared recipe** unless
//! the run sets `finetune_epochs` / `finetune_lr` (for every row in `[prune]`,
//! or for one row on purpose in its entry) or asks for each method's paper's
//! own with `finetune_recipe = "paper"` (`prunelab methods` lists them). The
//! per-paper rates differ by 100× (Li et al. retrain at 0.01× the training
//! rate, network slimming at 1×), so a comparison that gave each method its
//! own ranked the fine-tuning, not the criteria. Each result row carries its
//! [`Stage`]s and its ranking scope, so a table shows both.

use serde::Serialize;

use crate::prune::contract::{Finetune, Granularity, Method, MethodInfo, Phase, Stage};
use crate::prune::options::PruneOptions;
use crate::prune::options::Recipe;
use crate::prune::pruner::select::Scope;
use crate::train::TrainConfig;

/// The shared fine-tuning: a quarter of the training epochs at a tenth of
/// the training rate, with the training schedule.
pub const SHARED: Finetune = Finetune {
    share: 0.25,
    lr_factor: 0.1,
    source: "ours: one recipe for every row of a comparison — a quarter of the training epochs \
             at a tenth of the training rate (HRank, S3's code and Torch-Pruning's CIFAR \
             benchmarks all fine-tune at 0.1× the rate they trained at)",
};

/// The fine-tuning an after-training method with `info` runs under
/// `options`, from the training settings `train`.
pub fn finetune_config(
    info: &MethodInfo,
    options: &PruneOptions,
    train: &TrainConfig,
) -> TrainConfig {
    let f = match options.finetune_recipe {
        Recipe::Shared => SHARED,
        Recipe::Paper => info.finetune.unwrap_or(SHARED),
    };
    TrainConfig {
        epochs: options
            .finetune_epochs
            .unwrap_or((f.share as f64 * train.epochs as f64).round() as usize),
        lr: options.finetune_lr.unwrap_or(train.lr * f.lr_factor),
        // A trained model at a fraction of the rate needs no warm-up.
        warmup_epochs: 0,
        ..train.clone()
    }
}

/// `fine-tune 20 ep @ 0.002 cosine; …` (`none` for no training at all).
pub fn describe(stages: &[Stage]) -> String {
    if stages.iter().all(|s| s.epochs == 0) {
        return "none".into();
    }
    stages
        .iter()
        .filter(|s| s.epochs > 0)
        .map(|s| {
            format!(
                "{} {} ep @ {} {}",
                s.what,
                s.epochs,
                short(s.lr),
                s.schedule
            )
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// A rate as people write it: 0.002, 1e-4.
fn short(lr: f64) -> String {
    if lr != 0.0 && lr.abs() < 1e-3 {
        format!("{lr:e}")
    } else {
        let s = format!("{lr:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The default stages of a method by its phase: after training, the
/// fine-tuning; at initialisation, the pruned network trained for the whole
/// budget. Methods with a schedule of their own say theirs
/// ([`Method::stages`]).
pub fn default_stages(
    info: &MethodInfo,
    options: &PruneOptions,
    train: &TrainConfig,
) -> Vec<Stage> {
    match info.phase {
        Phase::AfterTraining => vec![Stage::of(
            "fine-tune",
            &finetune_config(info, options, train),
        )],
        Phase::AtInit => vec![Stage::of("train from θ₀", train)],
        Phase::DuringTraining | Phase::Iterative => vec![Stage::of("own schedule", train)],
    }
}

/// How a method's run ranks what it removes: `global`, `per-layer`
/// (structured, with the normalisation when it is not `none`), `blocks`, or
/// `learned gates` (S1).
pub fn scope(method: &dyn Method, options: &PruneOptions) -> String {
    let info = method.info();
    match method.removes(options) {
        Ok(Granularity::Channels) => {
            let s = info.select_options(options);
            match s.normalize {
                crate::prune::pruner::select::Normalize::None => name(&s.scope),
                n => format!("{}, {}-normalised", name(&s.scope), name(&n)),
            }
        }
        Ok(Granularity::Weights) => name(
            &options
                .scope
                .or(info.scope.map(|(s, _)| s))
                .unwrap_or(Scope::Global),
        ),
        Ok(Granularity::Blocks) => "blocks".into(),
        Ok(Granularity::Structure) => "learned gates".into(),
        Err(_) => "-".into(),
    }
}

/// A plain enum's serde name, as the tables print it.
fn name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
