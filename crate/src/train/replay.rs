//! Reading a run's deferred figures back: in one read of its own
//! ([`Trainer::flush`]) or in a caller's ([`Trainer::queue_flush`], then
//! [`Trainer::replay`]).

use super::readback::{Pending, QueuedFlush};
use super::{Trainable, Trainer};
use crate::base::clock;
use crate::base::error::{Error, Result};
use crate::base::events::{Event, Sink};
use crate::base::host::{self};
use burn::tensor::Tensor;

impl<M: Trainable> Trainer<M> {
    /// Reads the deferred figures in one read back and emits their events
    /// in order (nothing to do when nothing waits; see [`ReadBacks`]).
    pub async fn flush(&mut self, sink: &mut dyn Sink) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut reads = host::Reads::default();
        let queued = self.queue_flush(&mut reads);
        let values = reads.read().await?;
        self.replay(queued, &values, sink)
    }

    /// Puts the deferred figures into `reads` (one tensor), for a caller
    /// that reads more at the same time; then [`Trainer::replay`].
    pub fn queue_flush(&mut self, reads: &mut host::Reads) -> QueuedFlush {
        let pending = std::mem::take(&mut self.pending);
        let parts: Vec<Tensor<1>> = pending
            .iter()
            .filter_map(|p| match p {
                Pending::Step { stats, .. } => Some(stats.clone().without_autodiff()),
                Pending::Epoch { totals, .. } => totals.clone(),
            })
            .collect();
        let index = (!parts.is_empty()).then(|| reads.add(Tensor::cat(parts, 0)));
        QueuedFlush { pending, index }
    }

    /// Adds the read figures of `queued` to the run, in order: each step to
    /// its epoch's sums (and a `Step` event), each closed epoch to the
    /// history (and an `Epoch` event). A step's time is the wall time since
    /// the first deferred step shared evenly: a GPU step's own time is not
    /// observable without the reads this avoids.
    pub fn replay(
        &mut self,
        queued: QueuedFlush,
        values: &[Vec<f32>],
        sink: &mut dyn Sink,
    ) -> Result<()> {
        let values = queued.index.map(|i| values[i].as_slice()).unwrap_or(&[]);
        let steps = queued
            .pending
            .iter()
            .filter(|p| matches!(p, Pending::Step { .. }))
            .count();
        let first = queued.pending.iter().find_map(|p| match p {
            Pending::Step { start, .. } => Some(*start),
            _ => None,
        });
        let seconds = first.map_or(0.0, |t| (clock::now() - t) / steps.max(1) as f64);
        let mut at = 0;
        for p in &queued.pending {
            match p {
                Pending::Step {
                    epoch,
                    step,
                    lr,
                    images,
                    ..
                } => {
                    let v = &values[at..at + 3];
                    at += 3;
                    let (loss, hits, total) = (v[0], v[1], v[2]);
                    if !total.is_finite() {
                        return Err(Error::NonFiniteLoss {
                            value: total,
                            epoch: *epoch,
                            step: *step,
                        });
                    }
                    let progress = &mut self.progress;
                    progress.loss_sum += loss as f64 * *images as f64;
                    progress.correct_sum += hits as f64;
                    progress.seen += images;
                    progress.epoch_seconds += seconds;
                    sink.emit(Event::Step {
                        epoch: *epoch,
                        step: *step,
                        loss,
                        accuracy: hits / *images as f32,
                        lr: *lr,
                        images_per_second: *images as f64 / seconds.max(1e-9),
                    });
                }
                Pending::Epoch {
                    totals,
                    examples,
                    epoch,
                    lr,
                } => {
                    let (test_loss, test_accuracy) = match totals {
                        Some(_) => {
                            let n = *examples as f32;
                            at += 2;
                            (values[at - 2] / n, values[at - 1] / n)
                        }
                        None => (0.0, 0.0),
                    };
                    let metrics = self.epoch_metrics(*epoch, *lr, test_loss, test_accuracy);
                    sink.emit(Event::Epoch(metrics));
                }
            }
        }
        Ok(())
    }
}
