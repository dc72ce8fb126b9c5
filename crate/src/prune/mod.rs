//! Pruning. Three separate concerns, as in Torch-Pruning:
//! - *what* to cut — criteria score units, blocks or weights (one file each);
//! - *how much, where* — [`select`] turns scores and a [`target::Target`] into a
//!   [`plan::Plan`] (structured) or [`masks`] (weight level);
//! - *how to cut* — [`surgery`] builds the smaller network (coupling rules
//!   live there).
//!
//! A [`Method`] ([`method`]: the contract) is one file: its description and
//! defaults, its own options and its scores; the [`pipeline`] runs it unless
//! its schedule is its own (S1's one pass, S4's rewinding, IMP's rounds).
//! [`METHODS`] is the one registry the CLI, configs, sweeps, the lab and the
//! page read. A new criterion is one file, one line below, its tests and its
//! docs entry.

pub mod capture;
pub mod energy;
pub mod flexrel;
pub mod fpgm;
pub mod gates;
pub mod gradients;
pub mod grasp;
pub mod group_magnitude;
pub mod hrank;
pub mod imp;
pub mod l1;
pub mod lamp;
pub mod lottery;
pub mod lrp;
pub mod magnitude;
pub mod masks;
pub mod method;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod polar;
pub mod polarization;
pub mod random;
pub mod recipe;
pub mod select;
pub mod slimming;
pub mod snip;
pub mod surgery;
pub mod target;
pub mod taylor;

pub use method::{
    BoxFuture, CheckOptions, Finetune, Granularity, Job, Knob, Method, MethodInfo, OptionsSpec,
    Outcome, Phase, Scores, Scoring, StatedDefault, catalog, defaults,
};
pub use options::{IterativeSchedule, PruneConfig, PruneOptions};
pub use target::Target;

use crate::error::{Error, Result};
use crate::model::ModelSpec;

/// Every method, seed methods first: the registry.
pub static METHODS: &[&dyn Method] = &[
    &polarization::Polarization,
    &flexrel::FlexRel,
    &energy::Energy,
    &lottery::Lottery,
    &random::Random,
    &l1::L1,
    &magnitude::Magnitude,
    &hrank::HRank,
    &snip::Snip,
    &imp::Imp,
    &taylor::Taylor,
    &fpgm::Fpgm,
    &lamp::Lamp,
    &slimming::Slimming,
    &polar::PolarMethod,
    &group_magnitude::GroupMagnitude,
];

/// The method called `name`.
pub fn by_name(name: &str) -> Result<&'static dyn Method> {
    METHODS
        .iter()
        .copied()
        .find(|m| m.info().name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = METHODS.iter().map(|m| m.info().name).collect();
            Error::config(
                "method",
                name,
                format!("choose one of {}", names.join(", ")),
            )
        })
}

/// Refuses, from the spec alone (before any training), a method that cannot
/// meet `target` on `spec`: one that needs residual blocks on a model
/// without them, a target of the wrong kind for what it removes, more
/// blocks than the model has, or a share no plan reaches. Sweeps and
/// experiments run it for every run up front (the probe's M10).
pub fn check_feasible(
    method: &dyn Method,
    options: &PruneOptions,
    spec: &ModelSpec,
    target: &Target,
) -> Result<()> {
    let info = method.info();
    method.check_model(spec)?;
    if options.iterative_steps > 1 && matches!(target, Target::Blocks(_) | Target::Latency(_)) {
        return Err(Error::config(
            "iterative_steps",
            options.iterative_steps,
            "iterative schedules are for macs=, params= and sparsity= targets",
        ));
    }
    if options.protect.residual_stream {
        if spec.stream_groups().is_empty() {
            return Err(Error::config(
                "residual_stream",
                true,
                format!(
                    "{} has no residual stream (use a resnet or resmlp)",
                    spec.name()
                ),
            ));
        }
        if method.removes(options)? != Granularity::Channels {
            return Err(Error::config(
                "residual_stream",
                true,
                format!(
                    "{} does not rank channels by scores; the streams are pruned by channel \
                     criteria (l1, taylor, fpgm, hrank, energy, slimming, polar, random)",
                    info.name
                ),
            ));
        }
    }
    let blocks = spec.removable_blocks().len();
    if info.needs_blocks && blocks == 0 {
        return Err(Error::config(
            "method",
            info.name,
            format!(
                "it removes residual blocks; {} has none (use a resnet)",
                spec.name()
            ),
        ));
    }
    let fits = match (method.removes(options)?, target) {
        (Granularity::Blocks, Target::Blocks(n)) if (1..=blocks).contains(n) => Ok(()),
        (Granularity::Blocks, Target::Blocks(_)) if blocks == 0 => Err(Error::config(
            "target",
            target,
            format!(
                "{} has no residual blocks to remove (use a resnet)",
                spec.name()
            ),
        )),
        (Granularity::Blocks, Target::Blocks(_)) => Err(Error::config(
            "target",
            target,
            format!(
                "{} has {blocks} removable blocks: use blocks=1 to {blocks}",
                spec.name()
            ),
        )),
        (Granularity::Blocks, _) => Err(Error::config(
            "target",
            target,
            format!("{} removes residual blocks: use blocks=N", info.name),
        )),
        (Granularity::Channels, _) => select::check_reachable(spec, target, &options.protect),
        (Granularity::Weights, _) => pipeline::weight_sparsity(target, spec).map(|_| ()),
        (Granularity::Structure, Target::Macs(_) | Target::Params(_)) => Ok(()),
        (Granularity::Structure, _) => Err(Error::config(
            "target",
            target,
            format!("{} takes macs=F or params=F (the share removed)", info.name),
        )),
    };
    fits?;
    // Reachable, so now whether it means anything (S4: blocks=p of p candidates).
    method.check_target(options, spec, target)
}
