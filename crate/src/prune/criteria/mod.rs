//! What to cut: one file per scoring method (its formula and one static
//! value), and what they share — the batches they read ([`capture`]) and
//! the gradients some of them need ([`gradients`]).

use crate::base::error::Result;
use crate::base::host::BoxFuture;
use crate::model::ModelSpec;
use crate::prune::contract::Stage;
use crate::prune::contract::{Granularity, Job, Method, MethodInfo, Outcome, Scores, Scoring};
use crate::prune::options::PruneOptions;
use crate::prune::recipe::default_stages;
use crate::train::TrainConfig;

pub mod bn_scale;
pub mod capture;
pub mod energy;
pub mod fpgm;
pub mod gradients;
pub mod group_magnitude;
pub mod hrank;
pub mod l1;
pub mod lamp;
pub mod magnitude;
pub mod random;
pub mod snip;
pub mod taylor;

/// A criterion's formula: the scores of a model's units, weights or blocks.
pub type ScoreFn = for<'a> fn(Scoring<'a>) -> BoxFuture<'a, Result<Scores>>;

/// A scoring method: its description, its formula, and the two things a
/// criterion may add. Each criterion file is its formula and one `static`
/// of this type; [`Method`] is implemented once, here — select, cut or
/// mask, then fine-tune or train, through the pipeline.
pub struct Criterion {
    pub info: &'static MethodInfo,
    pub score: ScoreFn,
    /// What a run removes when an option decides (random's `random.unit`).
    pub removes: Option<fn(&PruneOptions) -> Result<Granularity>>,
    /// A model it refuses beyond `needs_blocks`.
    pub check_model: Option<fn(&ModelSpec) -> Result<()>>,
}

impl Criterion {
    pub const fn new(info: &'static MethodInfo, score: ScoreFn) -> Self {
        Criterion {
            info,
            score,
            removes: None,
            check_model: None,
        }
    }
}

impl Method for Criterion {
    fn info(&self) -> &'static MethodInfo {
        self.info
    }

    fn score<'a>(&'a self, s: Scoring<'a>) -> BoxFuture<'a, Result<Scores>> {
        (self.score)(s)
    }

    fn removes(&self, options: &PruneOptions) -> Result<Granularity> {
        self.removes
            .map_or(Ok(self.info.granularity), |f| f(options))
    }

    fn check_model(&self, spec: &ModelSpec) -> Result<()> {
        self.check_model.map_or(Ok(()), |f| f(spec))
    }

    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        crate::prune::pipeline::run(self, job)
    }

    fn stages(&self, options: &PruneOptions, train: &TrainConfig) -> Vec<Stage> {
        default_stages(self.info, options, train)
    }
}
