//! Measures of a model's cost: parameters, MACs, bytes, measured latency.

pub mod bytes;
pub mod count;
pub mod energy;
pub mod latency;
pub mod memory;
