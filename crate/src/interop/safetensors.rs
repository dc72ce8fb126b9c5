//! safetensors in and out (the `safetensors` crate, the one burn's store
//! uses). Written files carry PyTorch's names and layouts — PyTorch loads
//! them with `model.load_state_dict(safetensors.torch.load_file(path))` —
//! and, in their metadata, the architecture (`prunelab.spec`), so a pruned
//! network reloads in prunelab without being described again.

use std::borrow::Cow;
use std::collections::HashMap;

use ::safetensors::SafeTensors;
use ::safetensors::tensor::{Dtype, View};
use burn::tensor::{bf16, f16};

use super::names::{self, Naming};
use super::state_dict::{Named, StateDict};
use crate::base::error::{Error, Result};
use crate::model::Model;
use crate::model::masks::WeightMasks;

/// The tensors and metadata of a safetensors file; floats of any width
/// become `f32`, other types are kept by name only.
pub fn read(bytes: &[u8]) -> std::result::Result<StateDict, String> {
    let not_readable = |e: ::safetensors::SafeTensorError| {
        format!("not a readable safetensors file ({e}); was it cut short?")
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(not_readable)?;
    // The format keeps every tensor inside the file and disjoint
    // (`deserialize` checks it); what they become as floats must fit too.
    let file = SafeTensors::deserialize(bytes).map_err(not_readable)?;
    let allocated: u64 = file
        .tensors()
        .iter()
        .map(|(_, v)| v.shape().iter().product::<usize>() as u64 * 4)
        .sum();
    crate::io::budget::check_tensors(bytes.len() as u64, allocated, bytes.len() as u64)?;
    let mut dict = StateDict {
        metadata: meta.metadata().clone().unwrap_or_default(),
        ..StateDict::default()
    };
    let mut tensors = file.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, view) in tensors {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => {
                dict.others.push(name);
                continue;
            }
        };
        dict.floats.push(Named {
            name,
            shape: view.shape().to_vec(),
            values,
        });
    }
    Ok(dict)
}

/// One tensor to write.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// `model` (weight masks applied) as a safetensors file under PyTorch's names.
pub async fn write(
    model: &Model,
    masks: Option<&WeightMasks>,
    notes: serde_json::Value,
) -> Result<Vec<u8>> {
    let pack = super::state_dict::tensors(model, masks).await?;
    let naming = Naming::default_for(&model.spec);
    let table = names::table(&model.spec, &naming);
    let mut tensors: Vec<(String, Raw)> = Vec::new();
    for key in &table.keys {
        let (shape, values) = pack.get(&key.ours).ok_or_else(|| {
            Error::Execution(format!("export: the model has no tensor `{}`", key.ours))
        })?;
        let (shape, values) = match key.transposed {
            true => (
                vec![shape[1], shape[0]],
                super::state_dict::transpose(values, shape[0], shape[1]),
            ),
            false => (shape.to_vec(), values.to_vec()),
        };
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((
            key.theirs.clone(),
            Raw {
                dtype: Dtype::F32,
                shape,
                data,
            },
        ));
    }
    for counter in &table.counters {
        tensors.push((
            counter.theirs.clone(),
            Raw {
                dtype: Dtype::I64,
                shape: vec![],
                data: 0i64.to_le_bytes().to_vec(),
            },
        ));
    }
    let size = crate::metrics::bytes::size(&model.spec, masks);
    let metadata = HashMap::from([
        // What safetensors.torch writes: the tensors are PyTorch's.
        ("format".to_string(), "pt".to_string()),
        (
            "prunelab.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "prunelab.spec".to_string(),
            serde_json::to_string(&model.spec).expect("plain data"),
        ),
        (
            "prunelab.naming".to_string(),
            format!(
                "classifier={}, projection={}",
                naming.classifier, naming.projection
            ),
        ),
        ("prunelab.notes".to_string(), notes.to_string()),
        (
            "prunelab.nonzero_params".to_string(),
            size.nonzero_params.to_string(),
        ),
        ("prunelab.sparse_bytes".to_string(), size.bytes.to_string()),
    ]);
    let bytes =
        ::safetensors::serialize(tensors.iter().map(|(n, r)| (n.clone(), r)), Some(metadata))
            .map_err(|e| Error::Execution(format!("writing safetensors failed: {e}")))?;
    Ok(with_sorted_header(bytes))
}

/// The file with its JSON header's keys in sorted order. The crate writes
/// its metadata map in `HashMap` order, so exports of one model differed
/// from run to run in the header alone. The sorted header holds the same
/// keys and values, so it has the same length and every tensor offset
/// stands; a header that would not round-trip that way is left as written.
fn with_sorted_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return bytes;
    };
    let Some(header) = bytes
        .get(8..8 + len)
        .and_then(|h| std::str::from_utf8(h).ok())
    else {
        return bytes;
    };
    let text = header.trim_end_matches(' ');
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return bytes;
    };
    let sorted = sorted_keys(value).to_string();
    if sorted.len() == text.len() {
        bytes[8..8 + sorted.len()].copy_from_slice(sorted.as_bytes());
    }
    bytes
}

/// `value` with every object's keys inserted in sorted order (serde_json
/// keeps insertion order when a dependency turns on `preserve_order`).
fn sorted_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted_keys(v)))
                    .collect(),
            )
        }
        other => other,
    }
}
