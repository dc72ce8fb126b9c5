//! What a storage type (`torch.FloatStorage`, …) holds: its element width,
//! and whether it is read as floats.

/// Bytes per element of a storage type; `None` for a type not known here.
pub fn element_width(kind: &str) -> Option<usize> {
    Some(match kind.rsplit('.').next()? {
        "FloatStorage" | "IntStorage" => 4,
        "DoubleStorage" | "LongStorage" => 8,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "ByteStorage" | "CharStorage" | "BoolStorage" => 1,
        _ => return None,
    })
}

/// Whether a storage type's tensors are read as floats (the rest are
/// listed as "other", as BatchNorm's counters are).
pub fn is_float(kind: &str) -> bool {
    matches!(
        kind.rsplit('.').next(),
        Some("FloatStorage" | "DoubleStorage" | "HalfStorage" | "BFloat16Storage")
    )
}
