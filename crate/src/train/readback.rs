//! When the training loop reads its figures back from the device, and
//! replaying what a caller read for it.

use burn::tensor::Tensor;

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
pub(super) enum Pending {
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
    pub(super) pending: Vec<Pending>,
    pub(super) index: Option<usize>,
}
