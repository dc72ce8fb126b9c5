//! Bytes in and out: the tensor pack format, atomic file writes and the
//! measurement cache.

#[cfg(not(target_arch = "wasm32"))]
pub mod atomic;
#[cfg(not(target_arch = "wasm32"))]
pub mod cache;
pub mod budget;
pub mod model_file;
pub mod pack;
