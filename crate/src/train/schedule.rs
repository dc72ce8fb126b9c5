//! Learning-rate schedules: small pure functions of training progress.

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` at each epoch in `milestones`.
    Multistep,
    /// Cosine annealing from `lr` to 0 over the run, per step.
    #[default]
    Cosine,
}

impl std::str::FromStr for Schedule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "constant" => Ok(Schedule::Constant),
            "multistep" => Ok(Schedule::Multistep),
            "cosine" => Ok(Schedule::Cosine),
            _ => Err(Error::config(
                "schedule",
                s,
                "choose constant, multistep or cosine",
            )),
        }
    }
}

/// The learning rate at `epoch` (0-based) after `step` of `steps` batches.
// Plain numbers in, one number out: a struct for them would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn learning_rate(
    schedule: &Schedule,
    base: f64,
    epochs: usize,
    milestones: &[usize],
    gamma: f64,
    epoch: usize,
    step: usize,
    steps: usize,
) -> f64 {
    match schedule {
        Schedule::Constant => base,
        Schedule::Multistep => {
            let passed = milestones.iter().filter(|&&m| epoch >= m).count();
            base * gamma.powi(passed as i32)
        }
        Schedule::Cosine => {
            let total = (epochs * steps).max(1) as f64;
            let done = (epoch * steps + step) as f64;
            0.5 * base * (1.0 + (std::f64::consts::PI * done / total).cos())
        }
    }
}

/// `lr` scaled by the linear warm-up over the first `warmup_epochs`: step
/// `k` of the warm-up's `n` runs at `(k + 1) / n` of it.
pub fn warmed(lr: f64, warmup_epochs: usize, epoch: usize, step: usize, steps: usize) -> f64 {
    let n = warmup_epochs * steps;
    let done = epoch * steps + step;
    if done < n {
        lr * (done + 1) as f64 / n as f64
    } else {
        lr
    }
}
