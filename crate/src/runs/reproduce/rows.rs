//! A reproduction's report as data: our rows over seeds ([`Ours`], each
//! figure a [`Stat`]), beside the paper's published rows.

use serde::Serialize;

use super::published::Published;
use super::{Budget, Seed};

/// Mean and spread (sample standard deviation; 0 for one seed).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub sd: f64,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(Stat { mean, sd })
    }
}

/// One of our rows, over the seeds that ran it.
#[derive(Debug, Clone, Serialize)]
pub struct Ours {
    pub label: String,
    pub method: String,
    pub target: crate::prune::RowTarget,
    /// The architecture (a reproduction may run more than one: S4).
    pub model: String,
    /// How it ranked and what it trained after pruning (the first seed's;
    /// the same for every seed of a row).
    pub scope: String,
    pub recipe: String,
    pub seeds: usize,
    /// Percent.
    pub accuracy: Stat,
    /// Points against our own dense model of the same seed.
    pub delta: Stat,
    pub params_removed: Stat,
    pub flops_removed: Stat,
    /// Bytes to ship the model, removed (the weight methods' "bandwidth").
    pub bytes_removed: Stat,
    /// Measured forward (inference) speed-up over the dense model at the
    /// training batch, both timed in one process in alternation.
    pub speedup: Option<Stat>,
    /// Training time of the dense model over this row's, for rows that
    /// train the whole budget themselves (at initialisation: S4's claim).
    pub train_speedup: Option<Stat>,
    /// Where the cut went, per stage (S3: the kept widths; S4: the blocks
    /// removed), averaged over seeds.
    pub structure: Option<String>,
    /// Seconds of training (the dense model's own, or the method's training
    /// and fine-tuning), from the epochs' clocks.
    pub train_seconds: Stat,
    /// Not metered by this build (docs/metrics.md).
    pub energy_joules: Option<Stat>,
    /// What the method reports about itself (S2: bandwidth saved against
    /// δ = 0; S4: the winning-ticket test).
    pub details: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: Seed,
    pub budget: Budget,
    pub title: String,
    pub claim: &'static str,
    /// Our dense model of each architecture the reproduction runs (the
    /// paper's first).
    pub dense: Vec<Ours>,
    pub ours: Vec<Ours>,
    pub published: Vec<Published>,
    pub verdict: String,
    /// Runs of the sweep not (yet) in the results.
    pub missing: usize,
}
