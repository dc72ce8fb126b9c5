//! Taking a run forward: [`advance`] by steps or to an epoch's end for
//! anything that steps a [`Trainer`] (a plain one, or S1's pass), and
//! [`evaluate`] on a data set.

use super::readback::ReadBacks;
use super::step::{StepStats, Trainable};
use super::trainer::Trainer;
use crate::base::error::{Error, Result};
use crate::base::events::{EpochMetrics, Sink};
use crate::base::host::BoxFuture;
use crate::data::Split;
use crate::data::loader::Loader;
use burn::tensor::Device;

/// What takes a training run one step further: a plain [`Trainer`], or a
/// run that prepares each step first (S1's schedule and freeze).
pub trait Stepper {
    type Model: Trainable;
    fn trainer(&mut self) -> &mut Trainer<Self::Model>;
    /// The next step of the current epoch (`None`: the epoch has no batches left).
    fn next_step<'a>(
        &'a mut self,
        loader: &'a Loader<'a>,
        split: &'a Split,
        device: &'a Device,
    ) -> BoxFuture<'a, Result<Option<StepStats>>>;
}

impl<M: Trainable> Stepper for Trainer<M> {
    type Model = M;
    fn trainer(&mut self) -> &mut Trainer<M> {
        self
    }
    fn next_step<'a>(
        &'a mut self,
        loader: &'a Loader<'a>,
        _split: &'a Split,
        device: &'a Device,
    ) -> BoxFuture<'a, Result<Option<StepStats>>> {
        Box::pin(self.step(loader, device))
    }
}

/// How far [`advance`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// This many optimisation steps (or the end of the run).
    Steps(usize),
    /// The end of the current epoch.
    EpochEnd,
}

/// The one training loop: optimisation steps until `until`, closing each
/// epoch the moment its last batch is done (evaluated, with its `Epoch`
/// event); every step emits a `Step` event. The CLI's training, every
/// method's training and the page all advance through it. Returns the
/// epochs it closed (none with [`ReadBacks::ByCaller`]: their events come
/// with the caller's flush).
pub async fn advance<S: Stepper>(
    stepper: &mut S,
    split: &Split,
    augment: bool,
    device: &Device,
    until: Until,
    sink: &mut dyn Sink,
) -> Result<Vec<EpochMetrics>> {
    let mut closed = Vec::new();
    let mut done = 0;
    while !stepper.trainer().finished() {
        match until {
            Until::Steps(n) if done >= n => break,
            Until::EpochEnd if !closed.is_empty() => break,
            _ => {}
        }
        let trainer = stepper.trainer();
        let loader = trainer.loader(&split.train, split.norm, augment);
        let per_epoch = loader.batches_per_epoch();
        if trainer.progress.batch < per_epoch {
            if let Some(stats) = stepper.next_step(&loader, split, device).await? {
                if stepper.trainer().reads == ReadBacks::EachStep {
                    stepper.trainer().emit_step(&stats, sink);
                }
                done += 1;
            }
        }
        let trainer = stepper.trainer();
        if trainer.progress.batch >= per_epoch {
            if trainer.reads == ReadBacks::ByCaller {
                trainer.queue_epoch(split, device);
            } else {
                trainer.flush(sink).await?;
                closed.push(trainer.close_epoch(split, device, sink).await?);
            }
        }
    }
    if stepper.trainer().reads != ReadBacks::ByCaller {
        stepper.trainer().flush(sink).await?;
    }
    Ok(closed)
}

impl<M: Trainable> Trainer<M> {
    /// Runs the rest of the current epoch, emitting a `Step` event per batch
    /// and an `Epoch` event at the end.
    pub async fn run_epoch(
        &mut self,
        split: &Split,
        augment: bool,
        device: &Device,
        sink: &mut dyn Sink,
    ) -> Result<EpochMetrics> {
        let closed = advance(self, split, augment, device, Until::EpochEnd, sink).await?;
        closed
            .into_iter()
            .next()
            .ok_or_else(|| Error::Execution("the run had no epoch left to train".into()))
    }
}
