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
    /// Keep each step's loss on the device and read the steps of one
    /// [`advance`] call together ([`Trainer::flush`]): a GPU stalls on every
    /// read back, so a page frame of many steps reads once, not once per step.
    /// A non-finite loss then stops the run at the read, naming its step.
    pub defer_reads: bool,
    pending: Vec<PendingStep>,
    order: Option<(usize, Vec<usize>)>,
}

/// A step whose statistics (data loss, hits, whole loss) are still on the device.
struct PendingStep {
    stats: Tensor<1>,
    epoch: usize,
    step: u64,
    lr: f64,
    images: usize,
    start: f64,
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
            defer_reads: false,
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
        if self.defer_reads {
            let p = &mut self.progress;
            p.step += 1;
            p.batch += 1;
            self.pending.push(PendingStep {
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

    /// Reads the deferred steps' statistics in one read back, adds them to
    /// the epoch's sums and emits their `Step` events in order (see
    /// `defer_reads`; nothing to do otherwise). Their time is the calls'
    /// wall time shared evenly: a GPU step's own time is not observable
    /// without the reads this avoids.
    pub async fn flush(&mut self, sink: &mut dyn Sink) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let values = host::floats(Tensor::cat(
            pending.iter().map(|p| p.stats.clone()).collect(),
            0,
        ))
        .await?;
        let seconds = (clock::now() - pending[0].start) / pending.len() as f64;
        for (p, v) in pending.iter().zip(values.chunks(3)) {
            let (loss, hits, total) = (v[0], v[1], v[2]);
            if !total.is_finite() {
                return Err(Error::NonFiniteLoss {
                    value: total,
                    epoch: p.epoch,
                    step: p.step,
                });
            }
            let progress = &mut self.progress;
            progress.loss_sum += loss as f64 * p.images as f64;
            progress.correct_sum += hits as f64;
            progress.seen += p.images;
            progress.epoch_seconds += seconds;
            sink.emit(Event::Step {
                epoch: p.epoch,
                step: p.step,
                loss,
                accuracy: hits / p.images as f32,
                lr: p.lr,
                images_per_second: p.images as f64 / seconds.max(1e-9),
            });
        }
        Ok(())
    }

    /// Evaluates on the test set and closes the epoch.
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
        let p = &mut self.progress;
        let seen = p.seen.max(1) as f64;
        let metrics = EpochMetrics {
            epoch: p.epoch + 1,
            train_loss: (p.loss_sum / seen) as f32,
            train_accuracy: (p.correct_sum / seen) as f32,
            test_loss,
            test_accuracy,
            lr: self
                .config
                .lr_at(p.epoch, p.batch.saturating_sub(1), p.batch.max(1)),
            seconds: p.epoch_seconds,
        };
        p.history.push(metrics.clone());
        p.epoch += 1;
        p.batch = 0;
        p.loss_sum = 0.0;
        p.correct_sum = 0.0;
        p.seen = 0;
        p.epoch_seconds = 0.0;
        Ok(metrics)
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
/// epochs it closed.
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
                if !stepper.trainer().defer_reads {
                    stepper.trainer().emit_step(&stats, sink);
                }
                done += 1;
            }
        }
        let trainer = stepper.trainer();
        if trainer.progress.batch >= per_epoch {
            trainer.flush(sink).await?;
            closed.push(trainer.close_epoch(split, device, sink).await?);
        }
    }
    stepper.trainer().flush(sink).await?;
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
    if data.is_empty() {
        return Ok((0.0, 0.0));
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
    let values = host::floats(totals.expect("at least one batch")).await?;
    let n = data.len() as f32;
    Ok((values[0] / n, values[1] / n))
}
