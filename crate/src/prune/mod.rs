//! Pruning, along Torch-Pruning's three questions, one folder each:
//! - *what* to cut — [`criteria`]: one file per scoring method, its formula
//!   and one `static` (the trait is implemented once for all of them);
//! - *how much, where* — [`pruner`]: scores and a [`Target`] become a plan
//!   (structured) or masks (weight level), and [`pruner::surgery`] builds the
//!   smaller network;
//! - *when* — [`pipeline`] (score → select → cut or mask → fine-tune or
//!   train) for every criterion, and [`schedules`] for the methods whose
//!   schedule is their own (S1's one pass, FlexRel's choice, S4's lottery,
//!   IMP's rounds, slimming and Polar).
//!
//! [`contract`] is what a method is; [`registry`] lists every method (the one
//! list the CLI, configs, sweeps, the lab and the page read); [`recipe`] is
//! what a comparison's rows train after pruning. A new criterion is one file
//! in `criteria/`, one line in the registry and its closed-form test.
//!
//! This file only declares and re-exports (older paths such as
//! `prune::select` or `prune::polarization` name the same modules).

pub mod contract;
pub mod criteria;
pub mod options;
pub mod pipeline;
pub mod pruner;
pub mod recipe;
pub mod registry;
pub mod schedules;

pub use contract::{
    BoxFuture, CheckOptions, Finetune, Granularity, Job, Knob, Method, MethodInfo, OptionsSpec,
    Outcome, Phase, Scores, Scoring,
};
pub use criteria::{
    capture, energy, fpgm, gradients, group_magnitude, hrank, l1, lamp, magnitude, random, snip,
    taylor,
};
pub use options::{IterativeSchedule, PruneConfig, PruneOptions};
pub use pruner::target::{RowTarget, Target};
pub use pruner::{masks, plan, select, surgery, target};
pub use registry::{METHODS, StatedDefault, by_name, catalog, check_feasible, defaults};
pub use schedules::flexrel::lrp;
pub use schedules::lottery::grasp;
pub use schedules::s1 as polarization;
pub use schedules::s1::gates;
pub use schedules::{flexrel, imp, lottery, polar, slimming};
