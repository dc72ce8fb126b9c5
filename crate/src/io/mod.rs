//! Bytes in and out: the tensor pack format and atomic file writes.

#[cfg(not(target_arch = "wasm32"))]
pub mod atomic;
pub mod model_file;
pub mod pack;
