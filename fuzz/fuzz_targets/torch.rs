#![no_main]
//! PyTorch checkpoints from bytes (`interop::torch`, the page's reader): the
//! ZIP and legacy containers, the pickle machine, views of storages.
//! Seeds: tests/interop/fixtures/*.pt and the hostile ones.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = prunelab::interop::torch::read(data);
});
