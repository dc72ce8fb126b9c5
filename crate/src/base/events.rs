//! Progress events. The engine never prints: it hands these to a sink, and each
//! front door renders them its own way (progress bars in the CLI, charts in the
//! page, JSON lines in a log).

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A run is about to start on `device`.
    RunStarted {
        device: String,
        model: String,
        params: u64,
        macs: u64,
        epochs: usize,
        steps_per_epoch: usize,
    },
    /// One optimisation step finished.
    Step {
        epoch: usize,
        step: u64,
        loss: f32,
        accuracy: f32,
        lr: f64,
        images_per_second: f64,
    },
    /// One epoch finished and was evaluated.
    Epoch(EpochMetrics),
    /// A phase of a pruning method (scoring, cutting, fine-tuning) started or ended.
    Phase { name: String, detail: String },
    /// Something a user should read (a fallback, a skipped step).
    Notice { text: String },
}

/// What one epoch achieved; also kept in the run's result file.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub test_loss: f32,
    pub test_accuracy: f32,
    pub lr: f64,
    pub seconds: f64,
    /// What the epoch (its steps and its evaluation) took on a metered
    /// device; what a comparison charges to training or fine-tuning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joules: Option<f64>,
}

/// Anything that receives events.
pub trait Sink {
    fn emit(&mut self, event: Event);
}

impl<F: FnMut(Event)> Sink for F {
    fn emit(&mut self, event: Event) {
        self(event)
    }
}

/// A sink that drops every event (tests, nested runs).
pub struct Quiet;

impl Sink for Quiet {
    fn emit(&mut self, _event: Event) {}
}
