//! Looking at the shown model: the last pruning report, the model as a file,
//! test images with predictions, and measured latency.

use burn::module::Module;
use serde::Serialize;

use super::session::{Lab, PruneReport};
use crate::base::error::Result;
use crate::base::host;
use crate::metrics::count::count;
use crate::metrics::latency::{forward_ms, per_layer};

impl Lab {
    /// The current pruned view's report, if any.
    pub fn view_report(&self) -> Option<PruneReport> {
        self.view.as_ref().map(|v| v.report.clone())
    }

    /// The shown model as a `.plm` file the CLI loads.
    pub async fn model_file(&self) -> Result<Vec<u8>> {
        Ok(self.export(crate::interop::Format::Plm).await?.0)
    }

    /// The shown model as `format` (`.plm`, safetensors or ONNX), with a
    /// line saying what it costs (dense and, weight-pruned, sparse).
    pub async fn export(&self, format: crate::interop::Format) -> Result<(Vec<u8>, String)> {
        let masks = self.view.as_ref().and_then(|v| v.masks.clone());
        let shown = self.shown();
        let bytes = crate::interop::export(
            &shown,
            masks.as_ref(),
            serde_json::to_value(&self.config).expect("plain data"),
            format,
        )
        .await?;
        Ok((bytes, crate::interop::size_line(&shown, masks.as_ref())))
    }

    /// The first `n` test inputs (fewer if the set is smaller), normalised.
    fn first_test(&self, test: &crate::data::Dataset, n: usize) -> burn::tensor::Tensor<4> {
        let indices: Vec<usize> = (0..n.min(test.len())).collect();
        crate::data::loader::make_batch(
            test,
            &indices,
            self.split.norm.as_ref(),
            None,
            &self.device.device,
        )
        .x
    }

    /// The first `n` test images with the shown model's predictions.
    pub async fn examples(&self, n: usize) -> Result<Examples> {
        let test = self.split.test();
        let n = n.min(test.len());
        let indices: Vec<usize> = (0..n).collect();
        let probs = burn::tensor::activation::softmax(
            self.shown().valid().forward(self.first_test(test, n)),
            1,
        );
        let values = host::floats(probs).await?;
        let k = test.classes;
        let (mut predictions, mut confidence) = (Vec::new(), Vec::new());
        for row in values.chunks_exact(k) {
            let (best, p) = row
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            predictions.push(best as u16);
            confidence.push(p);
        }
        let images = match &test.select(&indices).features {
            crate::data::Features::Bytes(b) => b.clone(),
            crate::data::Features::Floats(_) => Vec::new(),
        };
        Ok(Examples {
            images,
            labels: test.labels[..n].to_vec(),
            predictions,
            confidence,
        })
    }

    /// Forward-pass time of the shown and the dense model on `batch` test
    /// inputs: the median of `repeats` runs after one warm-up
    /// ([`forward_ms`], as every result row measures it).
    pub async fn latency(&self, batch: usize, repeats: usize) -> Result<Latency> {
        let x = self.first_test(self.split.test(), batch);
        let shown = self.shown().valid();
        let dense = self
            .dense
            .clone()
            .unwrap_or_else(|| self.trainer.model.clone())
            .valid();
        let batch = x.dims()[0];
        let device = &self.device.device;
        let shown_layers = per_layer(&shown.spec, batch, device, repeats).await?;
        let layers = per_layer(&dense.spec, batch, device, repeats)
            .await?
            .into_iter()
            .map(|d| LayerLatency {
                shown_ms: shown_layers
                    .iter()
                    .find(|s| s.name == d.name)
                    .map_or(0.0, |s| s.ms),
                dense_ms: d.ms,
                name: d.name,
            })
            .collect();
        Ok(Latency {
            batch,
            shown_macs: count(&shown.spec).macs,
            dense_macs: count(&dense.spec).macs,
            shown_ms: forward_ms(&shown, x.clone(), 1, repeats).await?,
            dense_ms: forward_ms(&dense, x, 1, repeats).await?,
            layers,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Examples {
    /// `[n, 3, 32, 32]` bytes.
    pub images: Vec<u8>,
    pub labels: Vec<u16>,
    pub predictions: Vec<u16>,
    pub confidence: Vec<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub batch: usize,
    pub shown_ms: f64,
    pub dense_ms: f64,
    pub shown_macs: u64,
    pub dense_macs: u64,
    /// Each conv and linear layer timed alone (a removed block's: 0).
    pub layers: Vec<LayerLatency>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerLatency {
    pub name: String,
    pub dense_ms: f64,
    pub shown_ms: f64,
}
