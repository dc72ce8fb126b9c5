//! S1 — consensus gates with a polarizing regulariser, one training pass
//! (Zhi et al., "Learning a Consensus Sub-Network with Polarization
//! Regularization and One Pass Training", arXiv 2302.10798).
//!
//! Binary gates ([`gates`], static or input-conditioned) sit on every
//! prunable channel group and on every removable residual block. One
//! training pass minimises
//!
//! `L = CE + λ_pol(t) · R_pol(ḡ) + λ_sp · (C(b̄)/C₀ − (1 − target(t)))²`
//!
//! where `ḡ` are the batch-mean soft gates, `b̄` the batch-mean hard ones
//! (straight-through), `C(b̄)` the MACs (or params) of the gated network —
//! each gate weighted by what it costs — and `C₀` the dense cost. By default
//! the spreading polarizer `R_pol = −mean|ḡ − mean ḡ|` (after Zhuang et al.,
//! NeurIPS 2020, with t = 0 since the sparsity term sets the level) pushes
//! gates above the mean up and those below it down; `polarizer = "bowl"`
//! uses `mean ḡ(1 − ḡ)`. Dynamic gates add `mean|g − ḡ|` so that samples
//! agree. The polarizer drives every gate to 0 or 1; the sparsity term
//! moves the network to the user's target.
//!
//! Details that keep the pass from collapsing: the sparsity term's gradient
//! is taken through the *soft* cost `C(σ(z))` (its value stays the hard
//! `C(b̄)`): through hard gates a closed block with closed channels has zero
//! gradient and could never reopen. The budget and `λ_pol(t)` ramp in over
//! the first `polarize_after` share of the pass (the kept share falls from 1
//! to 1 − target), so gates close in order of importance rather than all at
//! once; τ anneals geometrically to `final_temperature` until the freeze.
//! Gate logits take normalised steps, `gate_step · g / rms(G)` with `G` the
//! gradient of *all* gates together (so each gate moves by its pull relative
//! to the others), following the learning-rate schedule. The schedule runs
//! by optimisation step, so a pass of one or two epochs works too.
//!
//! **The freeze.** At `freeze_at` of the pass the consensus is taken (static:
//! the open gates; dynamic: the gates most training samples open) and
//! recorded as what the regulariser *learned*: its kept cost, its distance
//! from the target, how many gates were undecided. With `settle = true` —
//! a last resort, off by default — gates are then flipped until the budget
//! is met: channels first (reopened highest first while the network keeps
//! too little, closed lowest first while it keeps too much), blocks reopened
//! (highest first) only when channels alone cannot reach the budget; the
//! number of flips is reported. The gates are then fixed and the weights
//! train on under that sub-network for the rest of the pass. After the pass
//! the gates are dropped and the network is cut where they are closed: the
//! cut network computes exactly what the frozen gated one did, so there is
//! no fine-tuning. The paper's exact formulas are not public; these are our
//! reading of its abstract, every coefficient an option (docs/methods.md).

pub mod consensus;
pub mod cost;
pub mod gates;
pub mod loss;
pub mod options;
pub mod run;
pub mod settle;
pub mod steps;

pub use consensus::{GateState, gate_state, plan_from_gates, plan_from_open};
pub use cost::{Cost, Measure};
pub use gates::{GateKind, GateValues, GatedModel, Gates};
pub use loss::Polarized;
pub use options::{INFO, PolarizationOptions, Polarizer};
pub use run::{GateReport, PolarizationRun, freeze_event};
pub use settle::{Learned, Settled};

use crate::base::error::Result;
use crate::base::events::Event;
use crate::prune::contract::{BoxFuture, Job, Method, MethodInfo, Outcome};
use crate::prune::options::PruneOptions;
use crate::train::TrainConfig;

pub struct Polarization;

impl Method for Polarization {
    fn info(&self) -> &'static MethodInfo {
        &INFO
    }

    /// One gated pass from θ₀; no fine-tuning.
    fn stages(
        &self,
        options: &PruneOptions,
        train: &TrainConfig,
    ) -> Vec<crate::prune::contract::Stage> {
        let epochs = options
            .of::<PolarizationOptions>(INFO.name)
            .ok()
            .and_then(|o| o.epochs)
            .unwrap_or(train.epochs);
        vec![crate::prune::contract::Stage::of(
            "gated pass from θ₀",
            &TrainConfig {
                epochs,
                ..train.clone()
            },
        )]
    }

    fn run<'a>(&'a self, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let device = job.device.autodiff();
            // A fork: the pass trains its model in place, and the model it
            // was handed (θ₀ in a comparison) must stay as it was.
            let mut run = PolarizationRun::new(
                job.model.deep_fork(),
                job.target,
                job.options.of::<PolarizationOptions>(INFO.name)?,
                job.train.clone(),
                job.split.train.len(),
                job.seed,
                &device,
            )?;
            let was_frozen = |run: &PolarizationRun| run.frozen();
            while !run.finished() {
                let before = was_frozen(&run);
                let (_, r) = run
                    .run_epoch(job.split, job.augment, &device, &mut *job.sink)
                    .await?;
                if !before && run.frozen() {
                    job.sink.emit(freeze_event(&run));
                }
                let total = r.units.iter().map(Vec::len).sum::<usize>() + r.blocks.len();
                job.sink.emit(Event::Phase {
                    name: "gates".into(),
                    detail: format!(
                        "{} of {total} gates decided, {:.1}% of the cost kept{}",
                        total - r.undecided,
                        100.0 * r.kept,
                        if r.frozen { ", frozen" } else { "" }
                    ),
                });
            }
            let frozen_before = run.frozen();
            let outcome = run.finish(job.split, &device).await;
            if let (false, Ok(o)) = (frozen_before, &outcome) {
                job.sink.emit(Event::Phase {
                    name: "freeze".into(),
                    detail: format!("at the end of the pass: {}", o.details["learned"]),
                });
            }
            outcome
        })
    }
}
