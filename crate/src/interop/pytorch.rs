//! PyTorch checkpoints (`torch.save(model.state_dict(), path)`, ZIP or
//! legacy pickle), read through burn's own reader (`burn-store`'s
//! `PytorchReader`), without Python. Nested checkpoints
//! (`{"state_dict": …, "epoch": …}`) come out with dotted names, which the
//! import's prefix detection strips.

use std::path::Path;

use burn::tensor::{bf16, f16};
use burn_store::pytorch::PytorchReader;

use super::state_dict::{Named, StateDict};

use burn_store::pytorch_reader::DType;

/// The tensors of the checkpoint at `path`, whose bytes number `file_len`
/// (as the caller read them); floats of any width become `f32`.
pub fn read(path: &Path, file_len: u64) -> std::result::Result<StateDict, String> {
    let reader = PytorchReader::new(path)
        .map_err(|e| format!("not a PyTorch checkpoint this reader understands ({e})"))?;
    let mut dict = StateDict::default();
    let mut tensors: Vec<_> = reader.into_tensors().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let width = |dtype: &DType| match dtype {
        DType::F32 => Some(4u64),
        DType::F64 => Some(8),
        DType::F16 | DType::BF16 => Some(2),
        _ => None,
    };
    // Sized from the shapes alone, before any storage is read: a deflated
    // storage, or one read under many names, would otherwise be unpacked
    // (and copied per name) before anything compared it with the file.
    let (mut stored, mut allocated) = (0u64, 0u64);
    for (_, tensor) in &tensors {
        if let Some(w) = width(&tensor.dtype()) {
            let numel = tensor
                .shape()
                .iter()
                .fold(1u64, |a, &d| a.saturating_mul(d as u64));
            stored = stored.saturating_add(numel.saturating_mul(w));
            allocated = allocated.saturating_add(numel.saturating_mul(4));
        }
    }
    crate::io::budget::check_tensors(stored, allocated, file_len)?;
    for (name, tensor) in tensors {
        let Some(width) = width(&tensor.dtype()) else {
            dict.others.push(name);
            continue;
        };
        let width = width as usize;
        let bytes = tensor
            .read()
            .map_err(|e| format!("tensor `{name}` cannot be read: {e}"))?;
        // The reader hands out native-endian bytes.
        let values = bytes
            .chunks_exact(width)
            .map(|b| match tensor.dtype() {
                DType::F32 => f32::from_ne_bytes(b.try_into().expect("4 bytes")),
                DType::F64 => f64::from_ne_bytes(b.try_into().expect("8 bytes")) as f32,
                DType::F16 => f16::from_ne_bytes([b[0], b[1]]).to_f32(),
                _ => bf16::from_ne_bytes([b[0], b[1]]).to_f32(),
            })
            .collect();
        dict.floats.push(Named {
            name,
            shape: tensor.shape().to_vec(),
            values,
        });
    }
    Ok(dict)
}
