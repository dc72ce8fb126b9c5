//! The native GPU path's tests (Vulkan; on a CPU-only machine through
//! SwiftShader, skipped with a message when no driver is there): kept out of
//! `engine` because they set the process's Vulkan environment, and because
//! `bench/gpu-kit.sh` ships this binary alone to the GPU machine.

#[path = "../common/mod.rs"]
mod common;

mod conv_gemm;
mod vulkan;
