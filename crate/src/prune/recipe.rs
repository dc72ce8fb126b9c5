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

use serde::{Deserialize, Serialize};

use super::method::{Finetune, Granularity, Method, MethodInfo, Phase};
use super::options::PruneOptions;
use super::select::Scope;
use crate::train::TrainConfig;

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
            schedule: name(&config.schedule),
        }
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
            let s = super::pipeline::ranking(info, options);
            match s.normalize {
                super::select::Normalize::None => name(&s.scope),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_read_as_people_write_them() {
        let train = TrainConfig {
            epochs: 60,
            lr: 0.02,
            ..TrainConfig::default()
        };
        let options = PruneOptions::default();
        let info = crate::prune::by_name("l1").unwrap().info();
        // Shared: a quarter of 60 epochs at a tenth of 0.02, whatever l1's paper says.
        let stages = default_stages(info, &options, &train);
        assert_eq!(describe(&stages), "fine-tune 15 ep @ 0.002 cosine");
        // Li et al.'s own recipe, on request: 0.01× the rate.
        let paper = PruneOptions {
            finetune_recipe: Recipe::Paper,
            ..PruneOptions::default()
        };
        assert_eq!(
            describe(&default_stages(info, &paper, &train)),
            "fine-tune 15 ep @ 2e-4 cosine"
        );
        assert_eq!(
            describe(&[Stage::of("fine-tune", &TrainConfig { epochs: 0, ..train })]),
            "none"
        );
    }
}
