//! Results: what a run writes to `--out`, and the human-readable tables.

pub mod boundary;
pub mod plot;
pub mod table;

use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::tensor::Device;

use crate::base::error::Result;
use crate::base::events::EpochMetrics;
use crate::config::RunConfig;
use crate::data::Split;
use crate::metrics::bytes::size;
use crate::metrics::count::{ModelCount, count};
pub use crate::metrics::latency::Latency;
use crate::model::Model;
use crate::model::masks::WeightMasks;
use crate::train::evaluate;

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
    /// Joules of the run on a metered device (`None`: not metered), and
    /// per phase in `energy`.
    #[serde(flatten)]
    pub metered: crate::metrics::energy::Metered,
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: String,
    pub label: String,
    /// The method's target; none (`-`) on the dense row.
    pub target: crate::prune::RowTarget,
    pub phase: String,
    /// Test accuracy, 0..1.
    pub test_accuracy: f32,
    pub test_loss: f32,
    /// Accuracy minus the dense model's, in points (0..100 scale).
    pub delta_vs_dense: f32,
    pub params: u64,
    pub macs: u64,
    /// Smallest encoding (dense, bitmap or CSR per layer).
    pub bytes: u64,
    pub nonzero_params: u64,
    pub params_reduction: f64,
    pub macs_reduction: f64,
    pub bytes_reduction: f64,
    pub wall_seconds: f64,
    pub train_epochs: usize,
    /// `conv1 16→9` lines and removed blocks.
    pub plan: Vec<String>,
    /// Joules this row took on a metered device (`metrics::energy`: the
    /// method, its fine-tuning and its measurement); `None`: not metered.
    #[serde(flatten)]
    pub metered: crate::metrics::energy::Metered,
    /// Measured forward latency on the run's device (`metrics::latency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Dense latency over this row's at the training batch, both timed in
    /// this row's process in alternation (`paired`: the median of the
    /// per-round ratios): the speed-up actually measured, beside
    /// `1 / (1 − macs_reduction)` predicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    /// The paired timing `speedup` comes from, with its interquartile range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<crate::metrics::latency::Paired>,
    /// What the row trained after (or instead of) pruning, as one line
    /// (`fine-tune 15 ep @ 0.002 cosine`), and stage by stage.
    #[serde(default)]
    pub recipe: String,
    #[serde(default)]
    pub stages: Vec<crate::prune::contract::Stage>,
    /// How the method ranked what it removed (`global`, `per-layer`,
    /// `global, l1-normalised`, `blocks`, `learned gates`).
    #[serde(default)]
    pub scope: String,
    pub history: Vec<EpochMetrics>,
    pub details: serde_json::Value,
    /// The method's own judgement against the dense row (S4: Eq. 1's
    /// winning-ticket test), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<serde_json::Value>,
}

/// What a finished model is worth: its test accuracy and loss (a read of the
/// test split, for the report), parameters (non-zero under `masks`), MACs and
/// the bytes of its smallest encoding. The one measurement every report
/// (comparison rows, the page's sizes) makes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub test_accuracy: f32,
    pub test_loss: f32,
    /// All parameters of the (cut) architecture.
    pub params: u64,
    pub nonzero_params: u64,
    pub macs: u64,
    pub bytes: u64,
}

pub async fn measure(
    model: &Model,
    masks: Option<&WeightMasks>,
    split: &Split,
    eval_batch_size: usize,
    device: &Device,
) -> Result<Measured> {
    let (test_loss, test_accuracy) = evaluate(
        &model.valid(),
        split.test(),
        split.norm,
        eval_batch_size,
        device,
    )
    .await?;
    let counted = count(&model.spec);
    // A weight-level model is sized by the zeros it holds, not by the mask
    // that came with it (`WeightMasks::held_by`).
    let held = match masks {
        Some(_) => Some(WeightMasks::held_by(model).await?),
        None => None,
    };
    let sized = size(&model.spec, held.as_ref());
    Ok(Measured {
        test_accuracy,
        test_loss,
        params: counted.params,
        nonzero_params: sized.nonzero_params,
        macs: counted.macs,
        bytes: sized.bytes,
    })
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
        // Counts under a thousand are whole: "218 params", not "218.00".
        _ if v.fract() == 0.0 => return format!("{v:.0}"),
        _ => (v, ""),
    };
    format!("{value:.2}{unit}")
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_counts_are_whole_below_a_thousand_and_scaled_above() {
        assert_eq!(human(218.0), "218");
        assert_eq!(human(0.5), "0.50");
        assert_eq!(human(1_234_567.0), "1.23M");
        assert_eq!(human(40_551_040.0), "40.55M");
    }
}
