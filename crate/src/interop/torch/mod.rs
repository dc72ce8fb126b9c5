//! PyTorch checkpoints read from bytes, without Python and without a file
//! system: what the page reads when a `.pt`/`.th` is dropped on it. Both
//! containers (`container`), a state_dict's tensors through a small pickle
//! machine (`pickle`), nested checkpoints (`{"state_dict": …}`) with dotted
//! names as burn-store gives them, so the import's prefix detection and
//! name mapping are the CLI's. The command-line prunelab reads `.pt` through
//! burn-store's reader (`super::pytorch`); tests hold the two equal on the
//! fixtures and the published checkpoints.
//!
//! Every size is checked before anything is allocated: each view lies
//! inside its storage, each storage inside the file, and the tensors
//! together against the file's size and the free memory (the budget every
//! model reader shares, `io::budget`).

mod container;
mod dtype;
mod pickle;

use std::rc::Rc;

use burn::tensor::{bf16, f16};

use super::state_dict::{Named, StateDict};
use dtype::{element_width, is_float};
use pickle::{Value, View};

/// The tensors under `v` by dotted name: a dict's keys joined with `.`.
fn flatten(v: &Value, prefix: &str, depth: usize, out: &mut Vec<(String, Rc<View>)>) {
    if depth > 32 {
        return;
    }
    match v {
        Value::Tensor(t) => out.push((prefix.to_string(), t.clone())),
        Value::Dict(d) => {
            for (k, v) in d.borrow().iter() {
                let key = match k {
                    Value::Str(s) => s.to_string(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(v, &name, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// The elements a view reaches: its largest index + 1 (0 when empty).
fn reach(t: &View) -> Option<u64> {
    if t.shape.contains(&0) {
        return Some(0);
    }
    t.shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&n, &s)| {
            a.checked_add((n as u64 - 1).checked_mul(s as u64)?)
        })?
        .checked_add(1)
}

/// A view's values, row-major, as f32.
fn values(t: &View, bytes: &[u8], width: usize) -> Vec<f32> {
    // The element decoder, chosen once per tensor (not per element).
    let decode: fn(&[u8]) -> f32 = match t.storage.kind.rsplit('.').next() {
        Some("FloatStorage") => |b| f32::from_le_bytes(b.try_into().expect("4 bytes")),
        Some("DoubleStorage") => |b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
        Some("HalfStorage") => |b| f16::from_le_bytes([b[0], b[1]]).to_f32(),
        _ => |b| bf16::from_le_bytes([b[0], b[1]]).to_f32(),
    };
    let read = |i: usize| decode(&bytes[i * width..(i + 1) * width]);
    let numel: usize = t.shape.iter().product();
    // Row-major strides (what a state_dict holds): one run of the storage.
    let mut expected = 1;
    let contiguous = t.shape.iter().zip(&t.stride).rev().all(|(&n, &s)| {
        let ok = n == 1 || s == expected;
        expected *= n;
        ok
    });
    if contiguous {
        return (0..numel).map(|i| read(t.offset as usize + i)).collect();
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = t.offset as usize
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.push(read(at));
        // The next index, last dimension fastest.
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

/// The tensors of a `torch.save` checkpoint held in `bytes`.
pub fn read(bytes: &[u8]) -> Result<StateDict, String> {
    let opened = container::open(bytes)?;
    let mut named = Vec::new();
    flatten(&opened.root, "", 0, &mut named);
    if named.is_empty() {
        return Err(
            "no tensors in it (a whole pickled model is not read: save model.state_dict())".into(),
        );
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    // Sized from the shapes, before any value is read (as burn-store's reader is).
    let (mut stored, mut allocated) = (0u64, 0u64);
    for (name, t) in &named {
        let Some(width) = element_width(&t.storage.kind) else {
            continue;
        };
        let range = opened.storages.get(&t.storage.key).ok_or_else(|| {
            format!(
                "tensor `{name}`: storage {} is not in the file",
                t.storage.key
            )
        })?;
        let available = (range.len() / width) as u64;
        if reach(t).is_none_or(|r| r > available.min(t.storage.numel)) {
            return Err(format!(
                "tensor `{name}` reaches past the end of its storage ({} elements)",
                available.min(t.storage.numel)
            ));
        }
        let numel = t
            .shape
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d as u64));
        stored = stored.saturating_add(numel.saturating_mul(width as u64));
        allocated = allocated.saturating_add(numel.saturating_mul(4));
    }
    crate::io::budget::check_tensors(stored, allocated, bytes.len() as u64)?;
    let mut dict = StateDict::default();
    for (name, t) in named {
        match element_width(&t.storage.kind) {
            Some(width) if is_float(&t.storage.kind) => {
                let range = opened.storages[&t.storage.key].clone();
                dict.floats.push(Named {
                    shape: t.shape.clone(),
                    values: values(&t, &bytes[range], width),
                    name,
                });
            }
            _ => dict.others.push(name),
        }
    }
    Ok(dict)
}

#[cfg(all(test, not(target_arch = "wasm32"), feature = "native"))]
mod tests;
