//! What a training run does: epochs, batches, the optimizer and the schedule.

use serde::{Deserialize, Serialize};

use super::optim::{OptimizerKind, OptimizerSettings};
use super::schedule::Schedule;
use crate::base::error::{Error, Result};

/// The most epochs a run (or a checkpoint's progress) may have.
pub const MAX_EPOCHS: usize = 100_000;
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Epochs at which a multistep schedule multiplies the rate by `gamma`.
    pub milestones: Vec<usize>,
    pub gamma: f64,
    pub eval_batch_size: usize,
    /// Epochs over which the rate rises linearly from about zero to the
    /// schedule's (Goyal et al. 2017): deep ResNets at SGD's 0.1 can
    /// diverge in their first steps (He et al. 2016 warm ResNet-110 up).
    /// Left out of a config when 0, so older run ids stay the same.
    #[serde(skip_serializing_if = "is_zero")]
    pub warmup_epochs: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            batch_size: 128,
            lr: 0.1,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine,
            milestones: vec![],
            gamma: 0.1,
            eval_batch_size: 500,
            warmup_epochs: 0,
        }
    }
}

impl TrainConfig {
    pub fn optimizer_settings(&self) -> OptimizerSettings {
        OptimizerSettings {
            kind: self.optimizer,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            ..OptimizerSettings::default()
        }
    }

    /// The learning rate at `step` of `steps` in `epoch`.
    pub fn lr_at(&self, epoch: usize, step: usize, steps: usize) -> f64 {
        let lr = crate::train::schedule::learning_rate(
            &self.schedule,
            self.lr,
            self.epochs,
            &self.milestones,
            self.gamma,
            epoch,
            step,
            steps,
        );
        crate::train::schedule::warmed(lr, self.warmup_epochs, epoch, step, steps)
    }

    /// Range checks with messages that say what would work.
    pub fn validate(&self) -> Result<()> {
        let t = self;
        let check = |ok: bool, field: &str, value: String, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(field, value, reason))
            }
        };
        check(
            (1..=MAX_EPOCHS).contains(&t.epochs),
            "train.epochs",
            t.epochs.to_string(),
            "use 1 to 100000",
        )?;
        check(
            (1..=65_536).contains(&t.batch_size),
            "train.batch_size",
            t.batch_size.to_string(),
            "use 1 to 65536",
        )?;
        check(
            t.lr.is_finite() && t.lr > 0.0 && t.lr <= 10.0,
            "train.lr",
            t.lr.to_string(),
            "use a positive rate up to 10",
        )?;
        check(
            (0.0..1.0).contains(&t.momentum),
            "train.momentum",
            t.momentum.to_string(),
            "use a value in [0, 1)",
        )?;
        check(
            t.weight_decay.is_finite() && t.weight_decay >= 0.0,
            "train.weight_decay",
            t.weight_decay.to_string(),
            "use a value >= 0",
        )?;
        check(
            t.gamma > 0.0 && t.gamma <= 1.0,
            "train.gamma",
            t.gamma.to_string(),
            "use a factor in (0, 1]",
        )?;
        check(
            t.eval_batch_size >= 1,
            "train.eval_batch_size",
            t.eval_batch_size.to_string(),
            "use at least 1",
        )?;
        check(
            !t.nesterov || t.momentum > 0.0,
            "train.nesterov",
            "true".into(),
            "Nesterov needs momentum > 0",
        )?;
        Ok(())
    }
}
