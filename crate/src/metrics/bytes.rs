//! What a model costs to ship: its size in bytes, dense or sparse.
//!
//! Prunable weights (conv and linear) are encoded per layer in the smallest of
//! three formats; everything else (biases, BN) is dense `f32`:
//! - dense: 4 bytes per weight;
//! - bitmap: one bit per weight + 4 bytes per kept weight;
//! - CSR: 4 bytes per kept weight + its column index (1, 2 or 4 bytes, the
//!   smallest type that holds the row length) + 4 bytes per row pointer
//!   (rows = output units: conv filters, linear outputs).

use serde::{Deserialize, Serialize};

use crate::metrics::count::count;
use crate::model::ModelSpec;
use crate::model::masks::WeightMasks;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeReport {
    /// All parameters as dense f32.
    pub dense_bytes: u64,
    /// Prunable weights as bitmaps (others dense).
    pub bitmap_bytes: u64,
    /// Prunable weights as CSR (others dense).
    pub csr_bytes: u64,
    /// Each layer in its smallest encoding.
    pub bytes: u64,
    pub nonzero_params: u64,
    pub params: u64,
}

fn csr_index_bytes(cols: usize) -> u64 {
    match cols {
        0..=256 => 1,
        257..=65_536 => 2,
        _ => 4,
    }
}

/// Sizes of one layer: (dense, bitmap, csr).
pub fn layer_bytes(n: usize, kept: usize, rows: usize) -> (u64, u64, u64) {
    let (n, kept, rows) = (n as u64, kept as u64, rows.max(1) as u64);
    let dense = 4 * n;
    let bitmap = n.div_ceil(8) + 4 * kept;
    let csr = kept * (4 + csr_index_bytes((n / rows) as usize)) + 4 * (rows + 1);
    (dense, bitmap, csr)
}

/// The size of `spec` with `masks` (none: dense).
pub fn size(spec: &ModelSpec, masks: Option<&WeightMasks>) -> SizeReport {
    let params = count(spec).params;
    let Some(masks) = masks else {
        return SizeReport {
            dense_bytes: 4 * params,
            bitmap_bytes: 4 * params,
            csr_bytes: 4 * params,
            bytes: 4 * params,
            nonzero_params: params,
            params,
        };
    };
    let prunable = masks.total() as u64;
    let other = params.saturating_sub(prunable);
    let (mut bitmap, mut csr, mut best) = (4 * other, 4 * other, 4 * other);
    for l in &masks.layers {
        let kept = l.keep.iter().filter(|&&k| k).count();
        let (d, b, c) = layer_bytes(l.keep.len(), kept, l.rows);
        bitmap += b;
        csr += c;
        best += d.min(b).min(c);
    }
    SizeReport {
        dense_bytes: 4 * params,
        bitmap_bytes: bitmap,
        csr_bytes: csr,
        bytes: best,
        nonzero_params: other + masks.kept() as u64,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_cost_what_the_formulas_say() {
        // 1000 weights in 10 rows of 100, 100 kept.
        let (d, b, c) = layer_bytes(1000, 100, 10);
        assert_eq!(d, 4000);
        assert_eq!(b, 125 + 400);
        assert_eq!(c, 100 * (4 + 1) + 4 * 11);
        // Nearly dense: the dense encoding wins.
        let (d, b, c) = layer_bytes(1000, 990, 10);
        assert!(d < b && d < c);
        assert_eq!(csr_index_bytes(300), 2);
    }
}
