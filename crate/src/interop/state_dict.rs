//! What a foreign checkpoint holds, by its own names, and a model's tensors
//! the way the writers read them.

use std::collections::HashMap;

use crate::base::error::Result;
use crate::io::pack::{self, Pack};
use crate::model::Model;
use crate::model::masks::WeightMasks;

/// A float tensor read from a foreign file.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// What a checkpoint holds, by its own names.
#[derive(Debug, Default)]
pub struct StateDict {
    pub floats: Vec<Named>,
    /// Tensors of other types (BatchNorm's `num_batches_tracked` counters).
    pub others: Vec<String>,
    /// safetensors' `__metadata__` (prunelab writes `prunelab.spec` there).
    pub metadata: HashMap<String, String>,
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// A model's tensors by module path, with weight masks applied (a
/// weight-pruned model exports its zeros).
pub(crate) async fn tensors(model: &Model, masks: Option<&WeightMasks>) -> Result<Pack> {
    let mut pack = Pack::new(crate::io::model_file::KIND, serde_json::Value::Null);
    match masks {
        Some(m) => pack::push_module(&mut pack, "", &m.apply(model)).await?,
        None => pack::push_module(&mut pack, "", model).await?,
    }
    Ok(pack)
}
