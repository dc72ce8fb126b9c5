//! The tensor pack: prunelab's one file format for models and checkpoints,
//! written and read identically by the CLI and the page (so a model pruned in
//! the browser continues natively, and the other way round).
//!
//! Layout (little-endian):
//! `b"PRUNELAB"` · format version `u32` · header length `u64` · header (JSON:
//! `kind`, `meta`, and a table of tensors with name, shape and element offset)
//! · the tensors as `f32` · FNV-1a-64 checksum `u64` of everything before it.
//! A file is one unit: it is checked whole before anything is used, so a
//! reader never mixes parts of two writes.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::host;
use crate::model::params;

const MAGIC: &[u8; 8] = b"PRUNELAB";
/// Bumped when the layout changes; readers refuse newer versions by name.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    kind: String,
    meta: serde_json::Value,
    tensors: Vec<Entry>,
}

/// Named `f32` tensors plus JSON metadata.
#[derive(Debug, Clone, Default)]
pub struct Pack {
    pub kind: String,
    pub meta: serde_json::Value,
    pub entries: Vec<Entry>,
    pub data: Vec<f32>,
}

/// FNV-1a, 64 bits: the pack checksum and the sweep run ids.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Pack {
    pub fn new(kind: &str, meta: serde_json::Value) -> Self {
        Pack {
            kind: kind.into(),
            meta,
            ..Pack::default()
        }
    }

    pub fn push(&mut self, name: impl Into<String>, shape: Vec<usize>, values: &[f32]) {
        self.entries.push(Entry {
            name: name.into(),
            shape,
            offset: self.data.len(),
        });
        self.data.extend_from_slice(values);
    }

    /// The first tensor under `prefix` holding NaN or infinite values, and
    /// how many.
    pub fn first_non_finite(&self, prefix: &str) -> Option<(&str, usize)> {
        self.entries
            .iter()
            .filter(|e| e.name.starts_with(prefix))
            .find_map(|e| {
                let len: usize = e.shape.iter().product();
                let bad = self.data[e.offset..e.offset + len]
                    .iter()
                    .filter(|v| !v.is_finite())
                    .count();
                (bad > 0).then_some((e.name.as_str(), bad))
            })
    }

    /// The shape and values of tensor `name`.
    pub fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.entries.iter().find(|e| e.name == name).map(|e| {
            let len: usize = e.shape.iter().product();
            (e.shape.as_slice(), &self.data[e.offset..e.offset + len])
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&Header {
            kind: self.kind.clone(),
            meta: self.meta.clone(),
            tensors: self.entries.clone(),
        })
        .expect("a pack header is plain JSON");
        let mut out = Vec::with_capacity(28 + header.len() + 4 * self.data.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for v in &self.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses and fully validates a pack read from `path`.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Pack> {
        let bad = |problem: String| Error::BadCheckpoint {
            path: path.to_path_buf(),
            problem,
        };
        if bytes.len() < 28 || &bytes[..8] != MAGIC {
            return Err(bad(
                "not a prunelab model or checkpoint (no PRUNELAB header); \
                 pass a file written by `prunelab train --checkpoint` or `prunelab prune --save`"
                    .into(),
            ));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        // The checksum first: a flipped bit in the version field is
        // corruption, not a file from another prunelab.
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if fnv1a(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
            let newer = if version > FORMAT_VERSION {
                format!(
                    " (or it was written by a newer prunelab: it says file format {version}, \
                     this build reads up to {FORMAT_VERSION})"
                )
            } else {
                String::new()
            };
            return Err(bad(format!(
                "the checksum does not match: the file is truncated or corrupted ({} bytes){newer}; \
                 use an earlier checkpoint or re-create it",
                bytes.len()
            )));
        }
        if version == 0 {
            return Err(bad(
                "file format 0 was never written by a released prunelab; re-create the file".into(),
            ));
        }
        if version > FORMAT_VERSION {
            return Err(bad(format!(
                "written by a newer prunelab (file format {version}, this build reads up to {FORMAT_VERSION}); upgrade prunelab"
            )));
        }
        let header_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let data_start = 20usize
            .checked_add(header_len)
            .filter(|&s| s <= body.len())
            .ok_or_else(|| bad("the header length points past the end of the file".into()))?;
        let header: Header = serde_json::from_slice(&body[20..data_start])
            .map_err(|e| bad(format!("the header is not valid JSON: {e}")))?;
        let raw = &body[data_start..];
        if raw.len() % 4 != 0 {
            return Err(bad(
                "the tensor data is not a whole number of f32 values".into()
            ));
        }
        let data: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // Each entry inside the data section, and no two sharing a value:
        // the sum of the entries' sizes is then at most the bytes the file
        // really holds, which is what every size check downstream trusts
        // (an entry listed many times at one offset would inflate it).
        let mut spans = Vec::with_capacity(header.tensors.len());
        for e in &header.tensors {
            let len = e.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let end = len.and_then(|l| e.offset.checked_add(l));
            match end {
                Some(end) if end <= data.len() => spans.push((e.offset, end, &e.name)),
                _ => {
                    return Err(bad(format!(
                        "tensor `{}` lies outside the data section",
                        e.name
                    )));
                }
            }
        }
        spans.sort();
        for pair in spans.windows(2) {
            let ((_, end, first), (start, _, second)) = (&pair[0], &pair[1]);
            if start < end {
                return Err(bad(format!(
                    "tensors `{first}` and `{second}` share stored values (their ranges overlap): \
                     the file was not written by prunelab; re-create it"
                )));
            }
        }
        Ok(Pack {
            kind: header.kind,
            meta: header.meta,
            entries: header.tensors,
            data,
        })
    }
}

/// Every float tensor's shape in `module`, by path (nothing is read).
pub fn shapes<M: Module>(module: &M) -> std::collections::HashMap<String, Vec<usize>> {
    let mut out = std::collections::HashMap::new();
    params::visit(module, None, |path, shape, _, _| {
        out.insert(path.to_string(), shape.to_vec());
    });
    out
}

/// Adds every float tensor of `module` to `pack`, each name prefixed by `prefix`.
pub async fn push_module<M: Module>(pack: &mut Pack, prefix: &str, module: &M) -> Result<()> {
    let mut found = Vec::new();
    params::visit(module, None, |path, shape, value, _| {
        found.push((path.to_string(), shape.to_vec(), value));
    });
    for (name, shape, tensor) in found {
        let values = host::floats(tensor).await?;
        pack.push(format!("{prefix}{name}"), shape, &values);
    }
    Ok(())
}

/// Replaces every float tensor of `module` by the pack's tensor of the same
/// path (under `prefix`); a missing tensor or a shape mismatch is an error.
pub fn load_module<M: Module>(module: M, pack: &Pack, prefix: &str, path: &Path) -> Result<M> {
    let mut error = None;
    let module = params::map(module, None, |path, shape, value, _| {
        let name = format!("{prefix}{path}");
        let problem = match pack.get(&name) {
            None => format!("tensor `{name}` is missing"),
            Some((file, _)) if file != shape => {
                format!("tensor `{name}` has shape {file:?}, the model expects {shape:?}")
            }
            Some((_, values)) => {
                let n = values.len();
                return Some(Tensor::from_data(
                    TensorData::new(values.to_vec(), [n]),
                    &value.device(),
                ));
            }
        };
        error.get_or_insert(problem);
        None
    });
    match error {
        None => Ok(module),
        Some(problem) => Err(Error::BadCheckpoint {
            path: path.to_path_buf(),
            problem: format!("{problem}; the file does not match this architecture"),
        }),
    }
}
