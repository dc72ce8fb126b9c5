//! The registry: every method, seed methods first — the one list the CLI,
//! configs, sweeps, the lab and the page read — with lookup by name, the
//! feasibility check every run passes before anything trains, the catalog
//! (`prunelab methods`, the page, the docs), and the shared options'
//! defaults and checks, which need the list.

use serde::Serialize;

use super::contract::{Finetune, Granularity, Method, MethodInfo, Phase};
use super::criteria::{
    energy, fpgm, group_magnitude, hrank, l1, lamp, magnitude, random, snip, taylor,
};
use super::options::{PruneOptions, merge};
use super::pruner::target::Target;
use super::pruner::{apply, select};
use super::schedules::{flexrel, imp, lottery, polar, s1, slimming};
use crate::base::error::{Error, Result};
use crate::model::ModelSpec;

/// Every method, seed methods first: the registry.
pub static METHODS: &[&dyn Method] = &[
    &s1::Polarization,
    &flexrel::FlexRel,
    &energy::ENERGY,
    &lottery::Lottery,
    &random::RANDOM,
    &l1::L1,
    &magnitude::MAGNITUDE,
    &hrank::HRANK,
    &snip::SNIP,
    &imp::Imp,
    &taylor::TAYLOR,
    &fpgm::FPGM,
    &lamp::LAMP,
    &slimming::Slimming,
    &polar::PolarMethod,
    &group_magnitude::GROUP_MAGNITUDE,
];

/// The methods that remove channels under their default options.
fn channel_methods() -> Vec<&'static str> {
    let defaults = PruneOptions::default();
    METHODS
        .iter()
        .filter(|m| m.removes(&defaults).ok() == Some(Granularity::Channels))
        .map(|m| m.info().name)
        .collect()
}

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
/// experiments run it for every run up front.
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
                     criteria ({})",
                    info.name,
                    channel_methods().join(", ")
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
        (Granularity::Weights, _) => apply::weight_sparsity(target, spec).map(|_| ()),
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
                recipe(crate::prune::recipe::SHARED),
                crate::prune::recipe::SHARED.source,
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
    crate::prune::registry::METHODS
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

impl PruneOptions {
    /// Checks every method table against its method's options type.
    pub fn check(&self) -> Result<()> {
        // Shared ranges, so a typo fails at once and not after the dense training.
        if let Some(e) = self.finetune_epochs
            && e > 100_000
        {
            return Err(Error::config("finetune_epochs", e, "use 0 to 100000"));
        }
        if let Some(lr) = self.finetune_lr
            && !(lr > 0.0 && lr <= 10.0)
        {
            return Err(Error::config(
                "finetune_lr",
                lr,
                "use a rate in (0, 10], or leave it out for the method's default",
            ));
        }
        if !(1..=65_536).contains(&self.score_batch_size) {
            return Err(Error::config(
                "score_batch_size",
                self.score_batch_size,
                "use 1 to 65536 examples per scoring batch",
            ));
        }
        if let Some(n) = self.score_batches
            && !(1..=100_000).contains(&n)
        {
            return Err(Error::config("score_batches", n, "use 1 to 100000"));
        }
        self.protect.check()?;
        if !(1..=100).contains(&self.iterative_steps) {
            return Err(Error::config(
                "iterative_steps",
                self.iterative_steps,
                "use 1 (one shot) to 100",
            ));
        }
        for (name, table) in &self.methods {
            let method = crate::prune::registry::by_name(name)?;
            if let Some(spec) = method.info().options {
                let mut value = (spec.defaults)();
                merge(&mut value, table);
                (spec.check)(&value).map_err(|e| match e {
                    // A range check names its own field (`polarization.temperature`).
                    Error::Config { ref field, .. } if field.starts_with(&format!("{name}.")) => e,
                    e => Error::config(&format!("prune.{name}"), table, e.to_string()),
                })?;
            }
        }
        Ok(())
    }
}

impl Default for PruneOptions {
    /// The shared defaults and every registered method's own table.
    fn default() -> Self {
        let mut options = PruneOptions::shared_defaults();
        for m in crate::prune::registry::METHODS {
            if let Some(spec) = m.info().options {
                options
                    .methods
                    .insert(m.info().name.to_string(), (spec.defaults)());
            }
        }
        options
    }
}
