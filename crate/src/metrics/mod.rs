//! Measures of a model's cost: parameters, MACs, bytes.

pub mod bytes;
pub mod count;
