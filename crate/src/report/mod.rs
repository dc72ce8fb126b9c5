//! Results: what a run writes to `--out`, and the human-readable tables.

pub mod boundary;
pub mod plot;
pub mod table;

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::events::EpochMetrics;
use crate::metrics::count::ModelCount;

/// The JSON result of `prunelab train`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainResult {
    pub prunelab: String,
    pub date: String,
    pub model: String,
    /// What ran the kernels, e.g. `cpu (burn flex)` or `vulkan (NVIDIA H100)`.
    pub device: String,
    pub params: u64,
    pub macs: u64,
    /// Final test accuracy, 0..1.
    pub test_accuracy: f32,
    pub test_loss: f32,
    pub wall_seconds: f64,
    pub train_examples: usize,
    /// Held out from the training data for selection (`data.valid_fraction`).
    #[serde(default)]
    pub valid_examples: usize,
    pub test_examples: usize,
    pub epochs: Vec<EpochMetrics>,
    pub config: RunConfig,
}

/// `prunelab info` as text: one row per layer, then the totals.
pub fn count_table(count: &ModelCount) -> String {
    let mut out = format!(
        "{:<28} {:<10} {:<20} {:>12} {:>14}\n",
        "layer", "kind", "shape", "params", "MACs"
    );
    for l in &count.layers {
        out += &format!(
            "{:<28} {:<10} {:<20} {:>12} {:>14}\n",
            l.name, l.kind, l.shape, l.params, l.macs
        );
    }
    out += &format!(
        "{:<60} {:>12} {:>14}\ntotal: {} params, {} MACs (1 MAC = one multiply-accumulate)\n",
        "total",
        count.params,
        count.macs,
        human(count.params as f64),
        human(count.macs as f64)
    );
    out
}

/// `1234567` → `1.23M`.
pub fn human(v: f64) -> String {
    let (value, unit) = match v.abs() {
        x if x >= 1e9 => (v / 1e9, "G"),
        x if x >= 1e6 => (v / 1e6, "M"),
        x if x >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    format!("{value:.2}{unit}")
}
