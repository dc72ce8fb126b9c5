//! The training loop: one struct for every device and every model. It never
//! prints — each step and epoch becomes an [`Event`] — and it never reads a
//! tensor synchronously, so the same code runs in the browser.

pub mod checkpoint;
pub mod config;
pub mod optim;
pub mod schedule;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::data::augment::Normalization;
use crate::data::loader::{Batch, Loader};
use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::events::{EpochMetrics, Event, Sink};
use crate::host::{self, BoxFuture};
use crate::interrupt;
use crate::model::Model;
pub use config::TrainConfig;
use optim::Optimizer;

/// What the loop needs from a model: a training loss and an inference forward.
pub trait Trainable: Module + Sized {
    /// Training loss (a `[1]` tensor) and the logits it came from.
    fn loss(&self, batch: &Batch) -> (Tensor<1>, Tensor<2>);
    /// Logits for inference (called on the `valid()` copy).
    fn logits(&self, x: Tensor<4>) -> Tensor<2>;
}

impl Trainable for Model {
    fn loss(&self, batch: &Batch) -> (Tensor<1>, Tensor<2>) {
        let logits = self.forward(batch.x.clone());
        (cross_entropy(logits.clone(), batch.y.clone()), logits)
    }

    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward(x)
    }
}

/// Mean cross-entropy of `logits` `[N, K]` against class indices `[N]`.
pub fn cross_entropy(logits: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
    let picked = log_softmax(logits, 1).gather(1, y.unsqueeze_dim(1));
    picked.mean().neg()
}

/// How many rows of `logits` pick the labelled class, as a `[1]` float tensor.
pub fn correct(logits: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
    let predicted: Tensor<1, Int> = logits.argmax(1).squeeze_dim(1);
    predicted.equal(y).float().sum()
}

/// Loss and accuracy of one step.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepStats {
    /// Cross-entropy of the batch (the data loss; a model's regularisers,
    /// such as S1's, are trained on but not reported here).
    pub loss: f32,
    pub accuracy: f32,
    pub lr: f64,
    pub seconds: f64,
    pub images: usize,
}

/// Progress through a run, saved in checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs finished.
    pub epoch: usize,
    /// Next batch within the current epoch.
    pub batch: usize,
    /// Optimisation steps taken in the whole run.
    pub step: u64,
    /// Sums over the current epoch so far.
    pub loss_sum: f64,
    pub correct_sum: f64,
    pub seen: usize,
    pub epoch_seconds: f64,
    pub history: Vec<EpochMetrics>,
}

pub struct Trainer<M: Trainable> {
    pub model: M,
    pub optim: Optimizer,
    pub config: TrainConfig,
    pub seed: u64,
    pub progress: Progress,
    /// When the loop reads its figures back from the device.
    pub reads: ReadBacks,
    pending: Vec<Pending>,
    order: Option<(usize, Vec<usize>)>,
}

/// When the training loop reads figures back from the device. A GPU stalls
/// on every read back, so the page's WebGPU frames batch them; the result —
/// events, sums, history, weights — is the same run in every mode
/// (`crate/tests/engine/training.rs`). A non-finite loss stops the run at the read
/// that sees it, naming its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadBacks {
    /// Each step's loss and accuracy after the step, each epoch's test
    /// figures when it closes (the CLI, the CPU).
    #[default]
    EachStep,
    /// The steps of one [`advance`] call together at its end (and before an
    /// epoch closes); each epoch's test figures when it closes.
    EachCall,
    /// Nothing until the caller asks: steps and epoch closings wait on the
    /// device, [`advance`] returns no epochs, and [`Trainer::queue_flush`]
    /// puts them in the caller's own read (the page reads a frame's
    /// training and views at once), [`Trainer::replay`] then emits their
    /// `Step` and `Epoch` events in order.
    ByCaller,
}

/// Figures still on the device, in the order the run made them.
enum Pending {
    /// A step's data loss, hits and whole loss.
    Step {
        stats: Tensor<1>,
        epoch: usize,
        step: u64,
        lr: f64,
        images: usize,
        start: f64,
    },
    /// A closed epoch's test loss sum and hits (`None`: no test set).
    Epoch {
        totals: Option<Tensor<1>>,
        examples: usize,
        epoch: usize,
        lr: f64,
    },
}

/// A [`Trainer`]'s deferred figures, queued in a caller's [`host::Reads`].
pub struct QueuedFlush {
    pending: Vec<Pending>,
    index: Option<usize>,
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
    fn next_epoch(&mut self) -> (usize, f64) {
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
    fn epoch_metrics(
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
    fn queue_epoch(&mut self, split: &Split, device: &Device) {
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

/// Mean loss and accuracy of `model` on `data` (no gradients, BN in eval mode).
pub async fn evaluate<M: Trainable>(
    model: &M,
    data: &Dataset,
    norm: Option<Normalization>,
    batch_size: usize,
    device: &Device,
) -> Result<(f32, f32)> {
    let Some(totals) = evaluation_totals(model, data, norm, batch_size, device) else {
        return Ok((0.0, 0.0));
    };
    let values = host::floats(totals).await?;
    let n = data.len() as f32;
    Ok((values[0] / n, values[1] / n))
}

/// The summed loss and hits of `model` on `data`, still on the device
/// (`None` for no data).
fn evaluation_totals<M: Trainable>(
    model: &M,
    data: &Dataset,
    norm: Option<Normalization>,
    batch_size: usize,
    device: &Device,
) -> Option<Tensor<1>> {
    if data.is_empty() {
        return None;
    }
    let loader = Loader::sequential(data, norm, batch_size);
    let order = loader.order(0);
    // Sums stay on the device; one read at the end keeps the GPU busy.
    let mut totals: Option<Tensor<1>> = None;
    for index in 0..loader.batches_per_epoch() {
        let batch = loader.batch(&order, 0, index, device);
        let logits = model.logits(batch.x.clone());
        let loss = cross_entropy(logits.clone(), batch.y.clone()) * batch.len as f32;
        let both = Tensor::cat(vec![loss, correct(logits, batch.y)], 0);
        totals = Some(match totals {
            Some(t) => t + both,
            None => both,
        });
    }
    totals
}
