//! The training loop: one optimisation step at a time, epochs closed with
//! their test figures, everything a checkpoint needs kept in [`Progress`].

use super::config::TrainConfig;
use super::eval::{evaluate, evaluation_totals};
use super::optim::Optimizer;
use super::readback::{Pending, ReadBacks};
use super::step::{Progress, StepStats, Trainable, correct, cross_entropy};
use crate::base::clock;
use crate::base::error::{Error, Result};
use crate::base::events::{EpochMetrics, Event, Sink};
use crate::base::host::{self};
use crate::base::interrupt;
use crate::data::augment::Normalization;
use crate::data::loader::Loader;
use crate::data::{Dataset, Split};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};

pub struct Trainer<M: Trainable> {
    pub model: M,
    pub optim: Optimizer,
    pub config: TrainConfig,
    pub seed: u64,
    pub progress: Progress,
    /// When the loop reads its figures back from the device.
    pub reads: ReadBacks,
    pub(super) pending: Vec<Pending>,
    order: Option<(usize, Vec<usize>)>,
    /// The energy counter when this epoch's first step began
    /// ([`EpochMetrics::joules`]); `None` between epochs.
    epoch_energy: Option<Option<f64>>,
}

impl<M: Trainable> Trainer<M> {
    /// `model` must live on an autodiff device.
    pub fn new(model: M, config: TrainConfig, seed: u64) -> Self {
        Trainer {
            optim: Optimizer::new(config.optimizer_settings()),
            model,
            config,
            seed,
            progress: Progress::default(),
            reads: ReadBacks::EachStep,
            pending: Vec::new(),
            order: None,
            epoch_energy: None,
        }
    }

    pub fn loader<'a>(
        &self,
        data: &'a Dataset,
        norm: Option<Normalization>,
        augment: bool,
    ) -> Loader<'a> {
        Loader {
            data,
            norm,
            batch_size: self.config.batch_size,
            shuffle: true,
            augment,
            seed: self.seed,
        }
    }

    pub fn finished(&self) -> bool {
        self.progress.epoch >= self.config.epochs
    }

    /// Runs the next batch of the current epoch. Returns `None` when the
    /// epoch has no batches left (call [`Trainer::end_epoch`]).
    pub async fn step(
        &mut self,
        loader: &Loader<'_>,
        device: &Device,
    ) -> Result<Option<StepStats>> {
        let steps = loader.batches_per_epoch();
        let p = &self.progress;
        if p.batch >= steps {
            return Ok(None);
        }
        if interrupt::requested() {
            return Err(Error::Interrupted {
                step: p.step,
                saved: "nothing was saved by this loop".into(),
                resumable: false,
            });
        }
        let (epoch, index) = (p.epoch, p.batch);
        if self.order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.order = Some((epoch, loader.order(epoch)));
        }
        let start = clock::now();
        self.epoch_energy
            .get_or_insert_with(crate::metrics::energy::mark);
        let batch = loader.batch(&self.order.as_ref().unwrap().1, epoch, index, device);
        let lr = self.config.lr_at(epoch, index, steps);
        let (loss, logits) = self.model.loss(&batch);
        let logits = logits.detach();
        // Reported: the data loss (cross-entropy), whatever regularisers the
        // model adds to what it trains on; checked: the whole loss.
        let data_loss = cross_entropy(logits.clone(), batch.y.clone());
        let hits = correct(logits, batch.y.clone());
        let stats = Tensor::cat(vec![data_loss, hits, loss.clone().detach()], 0);
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        if self.reads != ReadBacks::EachStep {
            let p = &mut self.progress;
            p.step += 1;
            p.batch += 1;
            self.pending.push(Pending::Step {
                stats,
                epoch: epoch + 1,
                step: p.step,
                lr,
                images: batch.len,
                start,
            });
            // The figures come with `flush`'s events.
            return Ok(Some(StepStats {
                loss: f32::NAN,
                accuracy: f32::NAN,
                lr,
                seconds: 0.0,
                images: batch.len,
            }));
        }
        let values = host::floats(stats).await?;
        let (loss, hits, total) = (values[0], values[1], values[2]);
        let p = &mut self.progress;
        p.step += 1;
        if !total.is_finite() {
            return Err(Error::NonFiniteLoss {
                value: total,
                epoch: epoch + 1,
                step: p.step,
            });
        }
        let seconds = clock::now() - start;
        p.batch += 1;
        p.loss_sum += loss as f64 * batch.len as f64;
        p.correct_sum += hits as f64;
        p.seen += batch.len;
        p.epoch_seconds += seconds;
        Ok(Some(StepStats {
            loss,
            accuracy: hits / batch.len as f32,
            lr,
            seconds,
            images: batch.len,
        }))
    }

    pub async fn end_epoch(
        &mut self,
        test: &Dataset,
        norm: Option<Normalization>,
        device: &Device,
    ) -> Result<EpochMetrics> {
        let (test_loss, test_accuracy) = evaluate(
            &self.model.valid(),
            test,
            norm,
            self.config.eval_batch_size,
            &device.clone().without_autodiff(),
        )
        .await?;
        let (epoch, lr) = self.next_epoch();
        Ok(self.epoch_metrics(epoch, lr, test_loss, test_accuracy))
    }

    /// Moves the counters to the next epoch; returns the closed epoch's
    /// number (from 1) and its last learning rate.
    pub(super) fn next_epoch(&mut self) -> (usize, f64) {
        let p = &mut self.progress;
        let lr = self
            .config
            .lr_at(p.epoch, p.batch.saturating_sub(1), p.batch.max(1));
        p.epoch += 1;
        p.batch = 0;
        (p.epoch, lr)
    }

    /// The closed epoch's figures from its sums (then reset) and test
    /// figures, added to the history.
    pub(super) fn epoch_metrics(
        &mut self,
        epoch: usize,
        lr: f64,
        test_loss: f32,
        test_accuracy: f32,
    ) -> EpochMetrics {
        let p = &mut self.progress;
        let seen = p.seen.max(1) as f64;
        let metrics = EpochMetrics {
            epoch,
            train_loss: (p.loss_sum / seen) as f32,
            train_accuracy: (p.correct_sum / seen) as f32,
            test_loss,
            test_accuracy,
            lr,
            seconds: p.epoch_seconds,
            joules: self
                .epoch_energy
                .take()
                .and_then(crate::metrics::energy::since),
        };
        p.history.push(metrics.clone());
        p.loss_sum = 0.0;
        p.correct_sum = 0.0;
        p.seen = 0;
        p.epoch_seconds = 0.0;
        metrics
    }

    /// Closes the epoch without reading: its test figures stay on the
    /// device until the caller's flush ([`ReadBacks::ByCaller`]).
    pub(super) fn queue_epoch(&mut self, split: &Split, device: &Device) {
        let test = split.test();
        let totals = evaluation_totals(
            &self.model.valid(),
            test,
            split.norm,
            self.config.eval_batch_size,
            &device.clone().without_autodiff(),
        );
        let (epoch, lr) = self.next_epoch();
        self.pending.push(Pending::Epoch {
            totals,
            examples: test.len(),
            epoch,
            lr,
        });
    }
    /// The `Step` event for the step just taken.
    pub fn emit_step(&self, stats: &StepStats, sink: &mut dyn Sink) {
        sink.emit(Event::Step {
            epoch: self.progress.epoch + 1,
            step: self.progress.step,
            loss: stats.loss,
            accuracy: stats.accuracy,
            lr: stats.lr,
            images_per_second: stats.images as f64 / stats.seconds.max(1e-9),
        });
    }

    /// [`Trainer::end_epoch`] on the split's test set, with its `Epoch` event.
    pub async fn close_epoch(
        &mut self,
        split: &Split,
        device: &Device,
        sink: &mut dyn Sink,
    ) -> Result<EpochMetrics> {
        let metrics = self.end_epoch(split.test(), split.norm, device).await?;
        sink.emit(Event::Epoch(metrics.clone()));
        Ok(metrics)
    }
}
