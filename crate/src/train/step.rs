//! What the loop needs from a model ([`Trainable`]), the loss and hits it
//! counts, and what a step and a run report.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::base::events::EpochMetrics;
use crate::data::loader::Batch;
use crate::model::Model;

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
