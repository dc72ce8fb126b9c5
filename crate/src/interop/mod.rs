//! Models in and out of prunelab: PyTorch checkpoints (`.pt`, through burn's
//! own reader) and safetensors in, safetensors and ONNX out, beside
//! prunelab's own `.plm` (docs/interop.md).
//!
//! Import reads a file's tensors by name ([`StateDict`]), finds the
//! architecture (the file's own `prunelab.spec`, the one configured, or one
//! read off a CIFAR ResNet's keys and shapes), maps the names through
//! [`names::table`] and loads the model as a `.plm` is loaded. Anything that
//! does not fit — a missing key, an unexpected one, a shape — is reported
//! together, in the file's own names.

pub mod names;
pub mod onnx;
mod proto;
#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
pub mod pytorch;
pub mod torch;
pub mod safetensors;
mod import;
mod state_dict;
#[cfg(test)]
mod tests;
pub mod pretrained;

use std::path::Path;

use burn::tensor::Device;

use crate::base::error::{Error, Result};
use crate::model::masks::WeightMasks;
use crate::model::{Model, ModelSpec};
use import::bad_file;

pub use import::{Loaded, guess_resnet, import};
pub use state_dict::{Named, StateDict};

/// The file formats prunelab reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// prunelab's own tensor pack (also carries weight masks).
    Plm,
    Safetensors,
    /// `torch.save(model.state_dict())`: read only, natively.
    Pytorch,
    /// Written only.
    Onnx,
}

impl Format {
    /// What `bytes` are, from their first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"PRUNELAB") {
            return Some(Format::Plm);
        }
        // safetensors first: a little-endian u64 header length (whose low
        // byte may well be 0x80, a pickle's first byte), then a JSON object.
        if bytes.len() > 8 && bytes[8] == b'{' {
            let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
            if n <= (bytes.len() - 8) as u64 {
                return Some(Format::Safetensors);
            }
        }
        // torch.save: a ZIP archive (since PyTorch 1.6), or a bare pickle
        // (PROTO opcode 0x80, then protocol 2 to 5).
        if bytes.starts_with(b"PK\x03\x04")
            || (bytes.len() > 1 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]))
        {
            return Some(Format::Pytorch);
        }
        None
    }

    /// What to write to `path` (given as `flag`), from its extension.
    pub fn for_path(path: &Path, flag: &str) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext.to_ascii_lowercase().as_str() {
            "plm" => Ok(Format::Plm),
            "safetensors" => Ok(Format::Safetensors),
            "onnx" => Ok(Format::Onnx),
            _ => Err(Error::config(
                flag,
                path.display().to_string(),
                "name the file .plm (prunelab, keeps weight masks), .safetensors \
                 (PyTorch names, loads with safetensors.torch.load_file) or .onnx (ONNX Runtime)"
                    .to_string(),
            )),
        }
    }
}

/// Reads a `.plm`, a safetensors or (natively) a PyTorch checkpoint.
/// `configured` is the architecture the caller set up; a foreign file
/// without prunelab's metadata is read as it, or, if it does not fit, as
/// the CIFAR ResNet its keys describe.
pub fn read_model(
    bytes: &[u8],
    path: &Path,
    configured: Option<&ModelSpec>,
    device: &Device,
) -> Result<Loaded> {
    let bad = |problem| bad_file(path, problem);
    let dict = match Format::sniff(bytes) {
        Some(Format::Plm) => {
            let (model, notes) = crate::io::model_file::from_bytes(bytes, path, device)?;
            return Ok(Loaded {
                model,
                notes,
                read_as: None,
            });
        }
        Some(Format::Safetensors) => safetensors::read(bytes).map_err(bad)?,
        #[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
        Some(Format::Pytorch) => pytorch::read(path, bytes.len() as u64).map_err(bad)?,
        // The page has no files to hand burn-store's reader: its own, from bytes.
        #[cfg(not(all(not(target_arch = "wasm32"), feature = "native")))]
        Some(Format::Pytorch) => torch::read(bytes).map_err(bad)?,
        Some(Format::Onnx) | None => {
            return Err(bad(
                "not a prunelab model (.plm), a safetensors file or a PyTorch checkpoint (.pt)"
                    .into(),
            ));
        }
    };
    let loaded = import(&dict, path, configured, device)?;
    Ok(published_input(loaded, bytes))
}

/// A published checkpoint (known by its bytes) records nothing but tensors:
/// it gets the input normalisation it was trained with.
fn published_input(mut loaded: Loaded, bytes: &[u8]) -> Loaded {
    if loaded.model.spec.input().is_none()
        && let Some(published) = pretrained::recognise(bytes)
    {
        loaded.model.spec = loaded.model.spec.clone().with_input(Some(published.input));
        loaded.read_as = Some(format!(
            "{}; the published {} checkpoint ({:.2}% on CIFAR-10), so its input is normalised \
             with {} mean/std as it was trained (--normalize overrides)",
            loaded.read_as.unwrap_or_default(),
            published.name,
            100.0 * published.accuracy,
            published.input.describe()
        ));
    }
    loaded
}

/// Writes `model` as `format`: the bytes, and what the file costs to ship
/// (dense, and sparse for a weight-pruned model).
pub async fn export(
    model: &Model,
    masks: Option<&WeightMasks>,
    notes: serde_json::Value,
    format: Format,
) -> Result<Vec<u8>> {
    match format {
        Format::Plm => crate::io::model_file::to_bytes_with_masks(model, masks, notes).await,
        Format::Safetensors => safetensors::write(model, masks, notes).await,
        Format::Onnx => onnx::write(model, masks, notes).await,
        Format::Pytorch => Err(Error::config(
            "save",
            ".pt",
            "prunelab writes safetensors for PyTorch: \
             model.load_state_dict(safetensors.torch.load_file(PATH))"
                .to_string(),
        )),
    }
}

/// The size report every export prints: dense bytes, and for a weight-pruned
/// model its nonzeros and its sparse size (`metrics::bytes`).
pub fn size_line(model: &Model, masks: Option<&WeightMasks>) -> String {
    let size = crate::metrics::bytes::size(&model.spec, masks);
    match masks {
        Some(m) if m.kept() < m.total() => format!(
            "{} of {} parameters nonzero; stored dense (zeros included): {} bytes, sparse: {} bytes",
            size.nonzero_params, size.params, size.dense_bytes, size.bytes
        ),
        _ => format!("{} parameters, {} bytes", size.params, size.dense_bytes),
    }
}
